//! Discovery tests: the config, expectations, the fingerprint, the dirty set, and the
//! loop's handlers driven directly.

use std::collections::HashMap;
use std::path::Path;

use super::fetch::{exited_from_event, kernel_saw_oom_kill, oom_killed_reason};
use super::*;
use crate::record::ContainerRecord;

impl Runner {
    /// A loop that is not running (no runtime), to drive its handlers directly.
    fn for_tests() -> Self {
        let d = Discovery::new(Config::default());
        let (events, _) = mpsc::channel(1);
        Runner {
            exits: ExitWatch::new(d.nudge_tx.clone(), Path::new("/"), false),
            config: d.config,
            ready: d.ready,
            table: d.table,
            nudges: d.nudge_rx,
            nudge_tx: d.nudge_tx,
            events,
            state: SyncState::new(),
            ctx: None,
            fetches: JoinSet::new(),
            limit: Arc::new(Semaphore::new(1)),
            warned_not_containerd: false,
            first_sync: FirstSync::NotYet,
            cri_api: None,
            warned_poll_fallback: false,
            event_source: None,
            stream_up: watch::channel(false).1,
        }
    }
}

#[tokio::test]
async fn the_list_runs_rarely_only_while_the_event_stream_is_up() {
    let mut runner = Runner::for_tests();
    let config = Config::default();
    // No event source (poll mode, or before the first connect): the short period.
    assert_eq!(runner.sync_period(), config.sync_period_secs);
    let (up, stream_up) = watch::channel(false);
    runner.stream_up = stream_up;
    runner.event_source = Some((CancellationToken::new(), tokio::spawn(async {})));
    assert_eq!(
        runner.sync_period(),
        config.sync_period_secs,
        "stream not up yet"
    );
    up.send_replace(true);
    assert_eq!(runner.sync_period(), config.events_sync_period_secs);
    up.send_replace(false);
    assert_eq!(runner.sync_period(), config.sync_period_secs, "stream lost");
    // A long sync_period_secs is never shortened by the events period.
    up.send_replace(true);
    runner.config.sync_period_secs = Duration::from_secs(3600);
    assert_eq!(runner.sync_period(), Duration::from_secs(3600));
}

#[test]
fn config_defaults_match_the_documented_values() {
    let c = Config::default();
    assert_eq!(c.sync_period_secs, Duration::from_secs(3));
    assert_eq!(c.events_sync_period_secs, Duration::from_secs(60));
    assert_eq!(c.resync_period_secs, Duration::from_secs(300));
    assert_eq!(c.shutdown_grace_period_secs, Duration::from_secs(10));
    assert!(c.validate().is_ok());
}

#[test]
fn config_parses_from_toml_and_rejects_unknown_keys() -> Result<(), Box<dyn std::error::Error>> {
    let c: Config = toml::from_str(
        "socket = \"/x.sock\"\nsync_period_secs = 5\npid_start_tolerance_ms = 500\nmax_concurrent_fetches = 4\n",
    )?;
    assert_eq!(c.socket.as_deref(), Some(std::path::Path::new("/x.sock")));
    assert_eq!(c.sync_period_secs, Duration::from_secs(5));
    assert_eq!(c.pid_start_tolerance_ms, Duration::from_millis(500));
    assert_eq!(
        c.resync_period_secs,
        Duration::from_secs(300),
        "unset keys keep defaults"
    );
    let err = toml::from_str::<Config>("sync_period = 5")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("unknown field `sync_period`"), "{err}");
    let err = toml::from_str::<Config>("socket_flag = \"/y\"")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("unknown field"),
        "the flag is not a file key: {err}"
    );
    Ok(())
}

#[test]
fn out_of_bounds_values_are_rejected_with_the_field_and_the_fix() {
    let err = |c: Config| {
        c.validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert_eq!(
        err(Config {
            max_concurrent_fetches: 0,
            ..Config::default()
        }),
        "config field max_concurrent_fetches = \"0\": must be from 1 to 256 (the default is 16)"
    );
    assert_eq!(
        err(Config {
            sync_period_secs: Duration::ZERO,
            ..Config::default()
        }),
        "config field sync_period_secs = \"0\": must be at least 1 (the default is 3)"
    );
    assert_eq!(
        err(Config {
            resync_period_secs: Duration::from_secs(2),
            ..Config::default()
        }),
        "config field resync_period_secs = \"2\": must be at least sync_period_secs (3): a full resync is also a sync (the default is 300)"
    );
}

#[test]
fn sync_mode_defaults_to_events_and_parses_poll() -> Result<(), Box<dyn std::error::Error>> {
    assert_eq!(Config::default().sync_mode, SyncMode::Events);
    assert_eq!(Config::default().event_fetch_rate_per_sec, 200);
    let c: Config = toml::from_str("sync_mode = \"poll\"\nevent_fetch_rate_per_sec = 50\n")?;
    assert_eq!(c.sync_mode, SyncMode::Poll);
    assert_eq!(c.event_fetch_rate_per_sec, 50);
    assert!(toml::from_str::<Config>("sync_mode = \"push\"").is_err());
    assert_eq!("events".parse::<SyncMode>()?, SyncMode::Events);
    let err = "Poll"
        .parse::<SyncMode>()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(err, "sync mode \"Poll\" is not known; use events or poll");
    assert_eq!(SyncMode::Poll.to_string(), "poll");
    Ok(())
}

fn record(state: ContainerState, pid: u32, exit_code: Option<i32>) -> ContainerRecord {
    ContainerRecord {
        state,
        pid,
        exit_code,
        ..ContainerRecord::default()
    }
}

#[test]
fn expectations_agree_only_with_what_the_event_announced() {
    let created = record(ContainerState::Created, 0, None);
    let running = record(ContainerState::Running, 42, None);
    let running_no_pid = record(ContainerState::Running, 0, None);
    let exited = record(ContainerState::Exited, 0, Some(137));
    let dead_but_cri_running = record(ContainerState::Exited, 0, None);
    assert!(Expect::Any.agrees(&created));
    assert!(!Expect::Running.agrees(&created), "the start race");
    assert!(!Expect::Running.agrees(&running_no_pid));
    assert!(Expect::Running.agrees(&running));
    assert!(Expect::Running.agrees(&exited), "already over");
    let exit = Expect::Exited {
        exit_code: 137,
        exited_at_nanos: 0,
    };
    assert!(!exit.agrees(&running));
    assert!(
        !exit.agrees(&dead_but_cri_running),
        "CRI has not noticed yet"
    );
    assert!(exit.agrees(&exited));
    assert!(!Expect::Gone.agrees(&running));
    assert!(
        !Expect::Gone.agrees(&dead_but_cri_running),
        "a pidfd exit waits for CRI's code"
    );
    assert!(Expect::Gone.agrees(&exited));
}

#[test]
fn an_exit_cri_has_not_seen_takes_the_event_facts() {
    let mut dead = record(ContainerState::Exited, 0, None);
    exited_from_event(&mut dead, 137, 1_700_000_000_000_000_000);
    assert_eq!(dead.exit_code, Some(137));
    assert_eq!(dead.reason.as_deref(), Some("Error"));
    assert_eq!(
        dead.finished.map(|t| t.unix_nanos),
        Some(1_700_000_000_000_000_000)
    );
    let mut alive = record(ContainerState::Running, 42, None);
    exited_from_event(&mut alive, 137, 1);
    assert_eq!(alive.exit_code, None, "a live pid is not overruled");
    let mut confirmed = record(ContainerState::Exited, 0, Some(3));
    exited_from_event(&mut confirmed, 137, 1);
    assert_eq!(confirmed.exit_code, Some(3), "CRI's code wins");
}

#[test]
fn an_oom_kill_makes_the_exit_read_oom_killed_as_cri_will() {
    // CRI has not noticed the exit yet: the event's facts, and OOMKilled.
    let mut dead = record(ContainerState::Exited, 0, None);
    exited_from_event(&mut dead, 137, 7);
    oom_killed_reason(&mut dead, true);
    assert_eq!(dead.exit_code, Some(137));
    assert_eq!(dead.reason.as_deref(), Some("OOMKilled"));
    // CRI already says EXITED but its OOM handler has not run yet (reason Error).
    let mut exited = record(ContainerState::Exited, 0, Some(137));
    exited.reason = Some("Error".into());
    oom_killed_reason(&mut exited, true);
    assert_eq!(exited.reason.as_deref(), Some("OOMKilled"));
    // No OOM event: CRI's reason stands.
    let mut plain = record(ContainerState::Exited, 0, Some(137));
    plain.reason = Some("Error".into());
    oom_killed_reason(&mut plain, false);
    assert_eq!(plain.reason.as_deref(), Some("Error"));
    // A child OOM-killed in a container that keeps running: no exit reason invented.
    let mut alive = record(ContainerState::Running, 42, None);
    oom_killed_reason(&mut alive, true);
    assert_eq!(alive.reason, None);
}

#[test]
fn an_exit_reads_oom_killed_when_the_kernel_counted_a_kill_in_its_cgroup() -> std::io::Result<()> {
    // The `/tasks/oom` event never came and CRI's reason is not there yet.
    let host = tempfile::tempdir()?;
    let oom_control = |kills: u32| format!("under_oom 0\noom_kill {kills}\n");
    oom::write_v1_memory_cgroup(host.path(), "/pods/p1/killed", &oom_control(1))?;
    oom::write_v1_memory_cgroup(host.path(), "/pods/p1/calm", &oom_control(0))?;
    let root = crate::liveness::HostRoot::new(host.path());
    let exited = |cgroup: &str| {
        let mut r = record(ContainerState::Exited, 0, None);
        exited_from_event(&mut r, 137, 7);
        r.cgroup_path = Some(cgroup.into());
        r
    };
    let mut killed = exited("/pods/p1/killed");
    assert!(kernel_saw_oom_kill(&root, &killed));
    oom_killed_reason(&mut killed, true);
    assert_eq!(killed.reason.as_deref(), Some("OOMKilled"));
    // No kill counted, the cgroup already deleted, or no cgroup known: the event's reason.
    assert!(!kernel_saw_oom_kill(&root, &exited("/pods/p1/calm")));
    assert!(!kernel_saw_oom_kill(&root, &exited("/pods/p1/deleted")));
    let mut unknown = exited("/pods/p1/killed");
    unknown.cgroup_path = None;
    assert!(!kernel_saw_oom_kill(&root, &unknown));
    // A running container is not judged by its cgroup (a child may have been killed).
    let mut alive = record(ContainerState::Running, 42, None);
    alive.cgroup_path = Some("/pods/p1/killed".into());
    assert!(!kernel_saw_oom_kill(&root, &alive));
    Ok(())
}

#[test]
fn an_oom_nudge_flags_the_container_for_its_exit() {
    let mut r = Runner::for_tests();
    r.state.mark_dirty("a", "sb");
    assert!(!r.on_nudge(Nudge::OomKilled { id: "a".into() }));
    assert_eq!(r.state.tracked.get("a").map(|t| t.oom_killed), Some(true));
    // Unknown (not yet listed): tracked from here, flagged, to be fetched.
    assert!(!r.on_nudge(Nudge::OomKilled { id: "b".into() }));
    assert_eq!(r.state.tracked.get("b").map(|t| t.oom_killed), Some(true));
    assert!(r.state.dirty.contains("b"));
    // Finished with: ignored.
    r.state.history.insert("c".into());
    assert!(!r.on_nudge(Nudge::OomKilled { id: "c".into() }));
    assert!(!r.state.tracked.contains_key("c"));
}

#[test]
fn a_pending_exit_is_not_weakened_by_vaguer_news() {
    let mut s = SyncState::new();
    s.mark_dirty_expecting(
        "a",
        "",
        Expect::Exited {
            exit_code: 1,
            exited_at_nanos: 0,
        },
    );
    s.mark_dirty("a", "sb");
    assert_eq!(
        s.tracked.get("a").map(|t| t.expect),
        Some(Expect::Exited {
            exit_code: 1,
            exited_at_nanos: 0
        })
    );
    s.mark_dirty_expecting("a", "", Expect::Running);
    assert_eq!(s.tracked.get("a").map(|t| t.expect), Some(Expect::Running));
}

#[test]
fn a_pidfd_exit_is_outranked_by_the_exit_event_and_outranks_vaguer_news() {
    let mut s = SyncState::new();
    s.mark_dirty_expecting("a", "", Expect::Gone);
    s.mark_dirty("a", "");
    assert_eq!(s.tracked.get("a").map(|t| t.expect), Some(Expect::Gone));
    let event = Expect::Exited {
        exit_code: 137,
        exited_at_nanos: 5,
    };
    s.mark_dirty_expecting("a", "", event);
    s.mark_dirty_expecting("a", "", Expect::Gone);
    assert_eq!(s.tracked.get("a").map(|t| t.expect), Some(event));
}

fn summary(state: CriState, attempt: u32) -> ContainerSummary {
    ContainerSummary {
        id: "c".into(),
        state: Some(state),
        attempt,
        labels: HashMap::from([("a".to_owned(), "1".to_owned())]),
        ..Default::default()
    }
}

#[test]
fn fingerprint_changes_with_state_attempt_sandbox_and_liveness() {
    let base = fingerprint(&summary(CriState::Running, 0), None, Some(Liveness::Alive));
    assert_eq!(
        base,
        fingerprint(&summary(CriState::Running, 0), None, Some(Liveness::Alive))
    );
    assert_ne!(
        base,
        fingerprint(&summary(CriState::Exited, 0), None, Some(Liveness::Alive))
    );
    assert_ne!(
        base,
        fingerprint(&summary(CriState::Running, 1), None, Some(Liveness::Alive))
    );
    assert_ne!(
        base,
        fingerprint(&summary(CriState::Running, 0), None, Some(Liveness::Gone))
    );
    assert_eq!(
        base,
        fingerprint(&summary(CriState::Running, 0), None, None)
    );
    let sb = SandboxSummary {
        ready: true,
        ..Default::default()
    };
    assert_ne!(
        base,
        fingerprint(
            &summary(CriState::Running, 0),
            Some(&sb),
            Some(Liveness::Alive)
        )
    );
}

#[test]
fn mark_dirty_grows_the_generation_and_fills_the_dirty_set() {
    let mut s = SyncState::new();
    s.mark_dirty("a", "sb");
    let first = s.tracked.get("a").map(|t| t.wanted).unwrap_or(0);
    s.mark_dirty("a", "");
    let second = s.tracked.get("a").map(|t| t.wanted).unwrap_or(0);
    assert!(second > first);
    assert!(s.dirty.contains("a"));
    assert_eq!(
        s.tracked.get("a").map(|t| t.sandbox_id.as_str()),
        Some("sb")
    );
}

#[tokio::test]
async fn a_host_root_without_the_nodes_proc_fails_the_sync_before_any_runtime_call() {
    let Ok(empty) = tempfile::tempdir() else {
        panic!("no temp dir");
    };
    let config = Config {
        host_root: empty.path().to_path_buf(),
        socket: Some("/nonexistent/containerd.sock".into()),
        ..Config::default()
    };
    let listed = state::list_runtime(config, None, false, true, tokio::time::Instant::now()).await;
    let Err(error) = listed.result else {
        panic!("a sync with an empty host root succeeded");
    };
    assert!(
        matches!(error, DiscoveryError::HostRootWithoutProc { .. }),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.contains("proc/stat") && text.contains("hostPath /"),
        "{text}"
    );
}
