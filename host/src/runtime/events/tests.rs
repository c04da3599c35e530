//! Event-source tests: decoding recorded and built envelopes, coalescing, the rate cap.

use containerd_client::events::{
    ContainerCreate, ContainerDelete, TaskDelete, TaskExit, TaskOom, TaskStart,
};
use prost::Message;

use super::*;

fn encode<M: Message>(m: &M) -> Vec<u8> {
    m.encode_to_vec()
}

#[test]
fn task_start_and_exit_decode_by_topic() -> Result<(), RuntimeEventsError> {
    let start = encode(&TaskStart {
        container_id: "c1".into(),
        pid: 42,
    });
    assert_eq!(
        RuntimeEvent::decode("/tasks/start", &start)?,
        Some(RuntimeEvent::TaskStart {
            container_id: "c1".into(),
            pid: 42
        })
    );
    let exit = encode(&TaskExit {
        container_id: "c1".into(),
        id: "c1".into(),
        pid: 42,
        exit_status: 137,
        exited_at: None,
    });
    let event = RuntimeEvent::decode("/tasks/exit", &exit)?;
    assert_eq!(
        event.as_ref().and_then(RuntimeEvent::signal),
        Some((
            "c1",
            Signal::Exited {
                exit_code: 137,
                exited_at_nanos: 0
            }
        ))
    );
    Ok(())
}

#[test]
fn an_exec_exit_is_not_a_lifecycle_event() -> Result<(), RuntimeEventsError> {
    let exec_exit = encode(&TaskExit {
        container_id: "c1".into(),
        id: "exec-probe-7".into(),
        pid: 99,
        exit_status: 0,
        exited_at: None,
    });
    let event = RuntimeEvent::decode("/tasks/exit", &exec_exit)?;
    assert!(event.is_some(), "decodes");
    assert_eq!(event.as_ref().and_then(RuntimeEvent::signal), None);
    let exec_delete = encode(&TaskDelete {
        container_id: "c1".into(),
        id: "exec-probe-7".into(),
        pid: 99,
        exit_status: 0,
        exited_at: None,
    });
    assert_eq!(RuntimeEvent::decode("/tasks/delete", &exec_delete)?, None);
    Ok(())
}

#[test]
fn container_events_and_unknown_topics() -> Result<(), RuntimeEventsError> {
    let delete = encode(&ContainerDelete { id: "c9".into() });
    let event = RuntimeEvent::decode("/containers/delete", &delete)?;
    assert_eq!(
        event.as_ref().and_then(RuntimeEvent::signal),
        Some(("c9", Signal::Changed))
    );
    let create = encode(&ContainerCreate {
        id: "c9".into(),
        image: "busybox".into(),
        runtime: None,
    });
    let event = RuntimeEvent::decode("/containers/create", &create)?;
    assert_eq!(
        event.as_ref().and_then(RuntimeEvent::signal),
        Some(("c9", Signal::Created))
    );
    assert_eq!(Signal::Created.expect(), None, "nothing to fetch at create");
    assert_eq!(
        RuntimeEvent::decode("/snapshot/remove", b"\x0a\x01k")?,
        None
    );
    Ok(())
}

#[test]
fn a_payload_of_the_wrong_shape_is_a_decode_error() {
    // Field 1 declared as a varint where TaskStart has a string.
    let err = RuntimeEvent::decode("/tasks/start", &[0x08, 0x01])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("containerd event on topic /tasks/start has a payload that does not decode as TaskStart"),
        "{err}"
    );
}

#[test]
fn the_recorded_lab_sample_decodes_and_filters() -> Result<(), Box<dyn std::error::Error>> {
    // The lab's sample, re-encoded with prost from its JSON form.
    let sample = include_str!("../../../../tests/fixtures/containerd-1.6-native-events.jsonl");
    let mut signals = Vec::new();
    for line in sample.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let topic = v["topic"].as_str().unwrap_or_default();
        let e = &v["event"];
        let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
        let n = |k: &str| u32::try_from(e[k].as_u64().unwrap_or(0)).unwrap_or(0);
        let bytes = match topic {
            "/tasks/start" => encode(&TaskStart {
                container_id: s("container_id"),
                pid: n("pid"),
            }),
            "/tasks/exit" => encode(&TaskExit {
                container_id: s("container_id"),
                id: s("id"),
                pid: n("pid"),
                exit_status: n("exit_status"),
                exited_at: None,
            }),
            "/tasks/delete" => encode(&TaskDelete {
                container_id: s("container_id"),
                id: s("id"),
                pid: n("pid"),
                exit_status: n("exit_status"),
                exited_at: None,
            }),
            "/containers/create" | "/containers/delete" => encode(&ContainerDelete { id: s("id") }),
            _ => Vec::new(),
        };
        if let Some((id, signal)) = RuntimeEvent::decode(topic, &bytes)?
            .as_ref()
            .and_then(RuntimeEvent::signal)
        {
            signals.push((id.to_owned(), signal));
        }
    }
    assert!(
        signals.iter().any(|(_, s)| *s
            == Signal::Exited {
                exit_code: 137,
                exited_at_nanos: 0
            }),
        "kill -9 exit seen: {signals:?}"
    );
    assert!(signals.iter().any(|(_, s)| *s == Signal::Started));
    Ok(())
}

#[test]
fn pending_set_coalesces_and_keeps_the_exit() {
    let p = Pending::default();
    p.push("a", Signal::Started);
    p.push("b", Signal::Started);
    p.push(
        "a",
        Signal::Exited {
            exit_code: 3,
            exited_at_nanos: 0,
        },
    );
    p.push("a", Signal::Changed);
    p.request_resync();
    assert!(matches!(p.pop(), Some(Popped::Resync)));
    match p.pop() {
        Some(Popped::Id(id, signal, oom_killed)) => {
            assert!(!oom_killed);
            assert_eq!(id, "a");
            assert_eq!(
                signal,
                Signal::Exited {
                    exit_code: 3,
                    exited_at_nanos: 0
                }
            );
        }
        _ => panic!("a pending"),
    }
    assert!(matches!(p.pop(), Some(Popped::Id(id, Signal::Started, false)) if id == "b"));
    assert!(p.pop().is_none(), "one entry per id");
}

#[test]
fn merge_prefers_news_over_a_create_and_an_exit_over_a_delete() {
    assert_eq!(
        Signal::merge(Signal::Created, Signal::Started),
        Signal::Started
    );
    assert_eq!(
        Signal::merge(Signal::Started, Signal::Created),
        Signal::Started
    );
    assert_eq!(
        Signal::merge(
            Signal::Exited {
                exit_code: 1,
                exited_at_nanos: 0
            },
            Signal::Changed
        ),
        Signal::Exited {
            exit_code: 1,
            exited_at_nanos: 0
        }
    );
    assert_eq!(
        Signal::merge(
            Signal::Exited {
                exit_code: 1,
                exited_at_nanos: 0
            },
            Signal::Started
        ),
        Signal::Started,
        "a restart after the exit wins"
    );
}

#[test]
fn an_oom_kill_survives_coalescing_with_the_exit_in_either_order() {
    let exit = Signal::Exited {
        exit_code: 137,
        exited_at_nanos: 5,
    };
    for events in [
        [Signal::OomKilled, exit, Signal::Changed],
        [exit, Signal::OomKilled, Signal::Changed],
    ] {
        let p = Pending::default();
        for e in events {
            p.push("a", e);
        }
        match p.pop() {
            Some(Popped::Id(id, signal, oom_killed)) => {
                assert_eq!(id, "a");
                assert_eq!(signal, exit, "the exit code is kept: {events:?}");
                assert!(oom_killed, "the OOM kill is kept: {events:?}");
            }
            _ => panic!("a pending"),
        }
        assert!(p.pop().is_none());
    }
    // An OOM kill alone is a fetch, flagged.
    let p = Pending::default();
    p.push("b", Signal::OomKilled);
    assert!(matches!(p.pop(), Some(Popped::Id(id, Signal::OomKilled, true)) if id == "b"));
    assert_eq!(Signal::OomKilled.expect(), Some(Expect::Any));
}

#[test]
fn the_oom_event_decodes_to_an_oom_kill() -> Result<(), RuntimeEventsError> {
    let oom = encode(&TaskOom {
        container_id: "c1".into(),
    });
    let event = RuntimeEvent::decode("/tasks/oom", &oom)?;
    assert_eq!(
        event.as_ref().and_then(RuntimeEvent::signal),
        Some(("c1", Signal::OomKilled))
    );
    Ok(())
}

#[test]
fn a_stream_that_keeps_ending_at_once_backs_off_then_falls_back_to_polling() {
    let mut retry = Resubscribe::new();
    assert!(retry.worth_telling());
    let quick = Duration::from_millis(10);
    let waits: Vec<NextTry> = (0..QUICK_ENDS_BEFORE_POLLING)
        .map(|_| retry.ended(quick))
        .collect();
    assert_eq!(
        waits,
        [
            NextTry::After(Duration::from_millis(100)),
            NextTry::After(Duration::from_millis(200)),
            NextTry::After(Duration::from_millis(400)),
            NextTry::After(Duration::from_millis(800)),
            NextTry::FallBackToPolling,
        ]
    );
    assert!(
        !retry.worth_telling(),
        "no log line per end while it keeps ending"
    );
    // Polling: one try every POLLING_RETRY, and no second fallback line.
    assert_eq!(retry.ended(quick), NextTry::After(POLLING_RETRY));
    // A stream that lasts brings back the normal path at once.
    assert_eq!(retry.ended(SHORT_STREAM), NextTry::After(Duration::ZERO));
    assert!(retry.worth_telling());
    assert_eq!(
        retry.ended(quick),
        NextTry::After(Duration::from_millis(100))
    );
}
