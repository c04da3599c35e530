//! A lifecycle event as an OpenTelemetry entity event (`specification/entities/
//! entity-events.md`, status Development): one OTLP LogRecord whose `event_name` is
//! `entity.state` (added, updated, re-reported) or `entity.delete` (removed), with the
//! container's identity, its description in semantic-convention attributes (v1.42; Gannet's
//! own fields under `gannet.`, plugin tags under their own keys) and its `part_of` link to
//! its pod. `docs/otlp.md` is the mapping table; keep the two in step.

use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::record::{ContainerRecord, EventRecord, Lifecycle};

/// `entity.type` of every event Gannet sends.
pub const ENTITY_TYPE: &str = "container";
/// `event_name` of added, updated and re-reported containers.
pub const STATE_EVENT: &str = "entity.state";
/// `event_name` of removed containers.
pub const DELETE_EVENT: &str = "entity.delete";
/// The attribute carrying the envelope's event id (receivers deduplicate by it).
pub const EVENT_ID_ATTRIBUTE: &str = "gannet.event.id";

fn string(v: impl Into<String>) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(v.into())),
    }
}

fn int(v: i64) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::IntValue(v)),
    }
}

fn boolean(v: bool) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::BoolValue(v)),
    }
}

fn array(values: Vec<AnyValue>) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::ArrayValue(ArrayValue { values })),
    }
}

fn map(values: Vec<KeyValue>) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::KvlistValue(KeyValueList { values })),
    }
}

fn kv(key: impl Into<String>, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(value),
        ..Default::default()
    }
}

/// Attributes in insertion order; a later key replaces an earlier one (plugin tags win).
#[derive(Default)]
struct Attributes(Vec<KeyValue>);

impl Attributes {
    fn put(&mut self, key: impl Into<String>, value: AnyValue) {
        let key = key.into();
        match self.0.iter_mut().find(|k| k.key == key) {
            Some(existing) => existing.value = Some(value),
            None => self.0.push(kv(key, value)),
        }
    }

    fn put_str(&mut self, key: &str, value: &str) {
        if !value.is_empty() {
            self.put(key, string(value));
        }
    }

    fn put_opt(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.put_str(key, v);
        }
    }
}

/// The image reference split as the conventions want it: `name` without tag or digest,
/// the tag when there is one.
fn split_image(image: &str) -> (&str, Option<&str>) {
    let without_digest = image.split_once('@').map_or(image, |(n, _)| n);
    // A ':' after the last '/' starts the tag; one before it is a registry port.
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].rfind(':') {
        Some(i) => {
            let at = last_slash + i;
            (&without_digest[..at], Some(&without_digest[at + 1..]))
        }
        None => (without_digest, None),
    }
}

/// The container's descriptive attributes (`entity.description`).
fn description(r: &ContainerRecord) -> Vec<KeyValue> {
    let mut a = Attributes::default();
    // Semantic conventions, stable ones first.
    let (image_name, tag) = split_image(&r.image);
    a.put_str("container.image.name", image_name);
    if let Some(tag) = tag.filter(|t| !t.is_empty()) {
        a.put("container.image.tags", array(vec![string(tag)]));
    }
    match r.image_digest.as_deref() {
        Some(d) if d.contains('@') => {
            a.put("container.image.repo_digests", array(vec![string(d)]));
        }
        Some(d) => a.put_str("container.image.id", d),
        None => {}
    }
    let k = &r.k8s;
    a.put_str("k8s.namespace.name", &k.namespace);
    a.put_str("k8s.pod.name", &k.pod_name);
    a.put_str("k8s.pod.uid", &k.pod_uid);
    if let Some(ip) = k.pod_ips.first() {
        a.put_str("k8s.pod.ip", ip);
    }
    if let Some(t) = k.pod_start_time {
        a.put("k8s.pod.start_time", string(t.to_string()));
    }
    a.put_str("k8s.container.name", &k.container_name);
    a.put(
        "k8s.container.restart_count",
        int(i64::from(r.restart_count)),
    );
    for (key, value) in &k.pod_labels {
        a.put(format!("k8s.pod.label.{key}"), string(value.as_str()));
    }
    for (key, value) in &k.pod_annotations {
        a.put(format!("k8s.pod.annotation.{key}"), string(value.as_str()));
    }
    a.put_str("k8s.node.name", &k.node_name);
    let o = &k.owner;
    a.put_opt("k8s.replicaset.name", o.replicaset.as_deref());
    a.put_opt("k8s.deployment.name", o.deployment.as_deref());
    a.put_opt("k8s.statefulset.name", o.statefulset.as_deref());
    a.put_opt("k8s.daemonset.name", o.daemonset.as_deref());
    a.put_opt("k8s.job.name", o.job.as_deref());
    a.put_opt("k8s.cronjob.name", o.cronjob.as_deref());
    // Development-status conventions.
    a.put_str("container.name", &r.name);
    a.put_str("container.runtime.name", &r.runtime_name);
    for (key, value) in &r.labels {
        a.put(format!("container.label.{key}"), string(value.as_str()));
    }
    a.put_opt(
        "k8s.container.status.last_terminated_reason",
        r.reason.as_deref(),
    );
    // Gannet's own fields.
    a.put_str("gannet.state", r.state.as_str());
    a.put("gannet.pid", int(i64::from(r.pid)));
    if let Some(code) = r.exit_code {
        a.put("gannet.exit_code", int(i64::from(code)));
    }
    for (key, t) in [
        ("gannet.created", r.created),
        ("gannet.started", r.started),
        ("gannet.finished", r.finished),
    ] {
        if let Some(t) = t {
            a.put(key, string(t.to_string()));
        }
    }
    a.put_str("gannet.sandbox_id", &r.sandbox_id);
    a.put("gannet.is_sandbox", boolean(k.is_sandbox));
    if k.pod_ips.len() > 1 {
        a.put(
            "gannet.pod_ips",
            array(k.pod_ips.iter().map(|ip| string(ip.as_str())).collect()),
        );
    }
    a.put_opt("gannet.snapshotter", r.snapshotter.as_deref());
    a.put_str("gannet.log_path", &r.log_path);
    a.put_str("gannet.log_format", &r.log_format);
    a.put_opt("gannet.cgroup_path", r.cgroup_path.as_deref());
    a.put_opt("gannet.upper_dir", r.upper_dir.as_deref());
    a.put_opt("gannet.rootfs_dir", r.rootfs_dir.as_deref());
    a.put_opt("gannet.hosts_path", r.hosts_path.as_deref());
    a.put_opt("gannet.hostname_path", r.hostname_path.as_deref());
    a.put_opt("gannet.hostname", r.hostname.as_deref());
    let res = &r.resources;
    for (key, v) in [
        (
            "gannet.resources.cpu_request_millis",
            res.cpu_request_millis,
        ),
        ("gannet.resources.cpu_limit_millis", res.cpu_limit_millis),
        (
            "gannet.resources.memory_request_bytes",
            res.memory_request_bytes,
        ),
        (
            "gannet.resources.memory_limit_bytes",
            res.memory_limit_bytes,
        ),
    ] {
        if let Some(v) = v {
            a.put(key, int(i64::try_from(v).unwrap_or(i64::MAX)));
        }
    }
    if !r.ports.is_empty() {
        let ports = r
            .ports
            .iter()
            .map(|p| {
                let mut fields = vec![
                    kv("container_port", int(i64::from(p.container_port))),
                    kv("protocol", string(p.protocol.as_str())),
                ];
                if let Some(name) = &p.name {
                    fields.push(kv("name", string(name.as_str())));
                }
                map(fields)
            })
            .collect();
        a.put("gannet.ports", array(ports));
    }
    for (key, value) in &r.annotations {
        a.put(format!("gannet.annotation.{key}"), string(value.as_str()));
    }
    for (key, value) in &r.env {
        a.put(format!("gannet.env.{key}"), string(value.as_str()));
    }
    if !r.mounts.is_empty() {
        let mounts = r
            .mounts
            .iter()
            .map(|m| {
                map(vec![
                    kv("source", string(m.source.as_str())),
                    kv("destination", string(m.destination.as_str())),
                    kv("type", string(m.kind.as_str())),
                ])
            })
            .collect();
        a.put("gannet.mounts", array(mounts));
    }
    // Plugin tags, under their own keys, as the plugin set them.
    for (key, value) in &r.tags {
        a.put(key.as_str(), string(value.as_str()));
    }
    a.0
}

/// The LogRecord of one event. `report_interval_secs` goes into `entity.report.interval`
/// of state events; `event_id` into [`EVENT_ID_ATTRIBUTE`].
pub fn log_record(ev: &EventRecord, event_id: &str, report_interval_secs: u64) -> LogRecord {
    let r = &ev.record;
    let time = u64::try_from(ev.time.unix_nanos).unwrap_or(0);
    let mut attributes = vec![
        kv("entity.type", string(ENTITY_TYPE)),
        kv(
            "entity.id",
            map(vec![kv("container.id", string(r.id.as_str()))]),
        ),
    ];
    let event_name = match ev.event {
        Lifecycle::Removed => {
            let reason = match r.reason.as_deref() {
                Some(reason) => reason.to_ascii_lowercase(),
                None => "terminated".to_owned(),
            };
            attributes.push(kv("entity.delete.reason", string(reason)));
            DELETE_EVENT
        }
        Lifecycle::Added | Lifecycle::Updated => {
            attributes.push(kv("entity.description", map(description(r))));
            if !r.k8s.pod_uid.is_empty() {
                attributes.push(kv(
                    "entity.relationships",
                    array(vec![map(vec![
                        kv("relationship.type", string("part_of")),
                        kv("entity.type", string("k8s.pod")),
                        kv(
                            "entity.id",
                            map(vec![kv("k8s.pod.uid", string(r.k8s.pod_uid.as_str()))]),
                        ),
                    ])]),
                ));
            }
            attributes.push(kv(
                "entity.report.interval",
                int(i64::try_from(report_interval_secs).unwrap_or(i64::MAX)),
            ));
            STATE_EVENT
        }
    };
    attributes.push(kv(EVENT_ID_ATTRIBUTE, string(event_id)));
    LogRecord {
        time_unix_nano: time,
        observed_time_unix_nano: time,
        event_name: event_name.to_owned(),
        attributes,
        ..Default::default()
    }
}

/// One `ResourceLogs` holding `records`, its resource describing the emitter.
pub fn resource_logs(node: &str, records: Vec<LogRecord>) -> ResourceLogs {
    let version = env!("CARGO_PKG_VERSION");
    ResourceLogs {
        resource: Some(Resource {
            attributes: vec![
                kv("service.name", string("gannet")),
                kv("service.version", string(version)),
                kv("k8s.node.name", string(node)),
            ],
            ..Default::default()
        }),
        scope_logs: vec![ScopeLogs {
            scope: Some(InstrumentationScope {
                name: "gannet".to_owned(),
                version: version.to_owned(),
                ..Default::default()
            }),
            log_records: records,
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ContainerState, Owner, Timestamp};

    fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
        attrs
            .iter()
            .find(|k| k.key == key)
            .and_then(|k| k.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    fn text<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
        match find(attrs, key) {
            Some(any_value::Value::StringValue(s)) => Some(s),
            _ => None,
        }
    }

    fn kvlist<'a>(attrs: &'a [KeyValue], key: &str) -> &'a [KeyValue] {
        match find(attrs, key) {
            Some(any_value::Value::KvlistValue(l)) => &l.values,
            _ => &[],
        }
    }

    fn sample() -> ContainerRecord {
        let mut r = ContainerRecord {
            id: "c1".into(),
            name: "web".into(),
            state: ContainerState::Running,
            image: "registry.local:5000/shop/web:1.2".into(),
            image_digest: Some("registry.local:5000/shop/web@sha256:abc".into()),
            restart_count: 2,
            runtime_name: "containerd".into(),
            ..Default::default()
        };
        r.k8s.pod_uid = "uid-1".into();
        r.k8s.pod_name = "web-7d4b9c8f6d-x2k9q".into();
        r.k8s.namespace = "shop".into();
        r.k8s.pod_ips = vec!["10.1.0.5".into(), "fd00::5".into()];
        r.k8s.pod_labels.insert("app".into(), "web".into());
        r.k8s.owner = Owner {
            replicaset: Some("web-7d4b9c8f6d".into()),
            deployment: Some("web".into()),
            ..Default::default()
        };
        r.env.insert("PASSWORD".into(), "<redacted>".into());
        r.tags.insert("team".into(), "payments".into());
        r.tags.insert("k8s.namespace.name".into(), "renamed".into());
        r
    }

    #[test]
    fn added_is_a_state_event_with_identity_description_and_pod_link() {
        let ev = EventRecord {
            event: Lifecycle::Added,
            time: Timestamp {
                unix_nanos: 1_000_000_007,
            },
            record: sample(),
        };
        let lr = log_record(&ev, "ev-1", 300);
        assert_eq!(lr.event_name, STATE_EVENT);
        assert_eq!(lr.time_unix_nano, 1_000_000_007);
        let a = &lr.attributes;
        assert_eq!(text(a, "entity.type"), Some("container"));
        assert_eq!(text(kvlist(a, "entity.id"), "container.id"), Some("c1"));
        assert_eq!(text(a, EVENT_ID_ATTRIBUTE), Some("ev-1"));
        assert!(matches!(
            find(a, "entity.report.interval"),
            Some(any_value::Value::IntValue(300))
        ));
        let d = kvlist(a, "entity.description");
        assert_eq!(
            text(d, "container.image.name"),
            Some("registry.local:5000/shop/web")
        );
        assert_eq!(text(d, "k8s.pod.ip"), Some("10.1.0.5"));
        assert_eq!(text(d, "k8s.deployment.name"), Some("web"));
        assert_eq!(text(d, "k8s.replicaset.name"), Some("web-7d4b9c8f6d"));
        assert_eq!(text(d, "k8s.pod.label.app"), Some("web"));
        assert_eq!(text(d, "gannet.env.PASSWORD"), Some("<redacted>"));
        assert_eq!(text(d, "team"), Some("payments"), "a tag under its own key");
        assert_eq!(
            text(d, "k8s.namespace.name"),
            Some("renamed"),
            "a plugin's tag wins over the mapped field"
        );
        assert!(matches!(
            find(d, "k8s.container.restart_count"),
            Some(any_value::Value::IntValue(2))
        ));
        let rel = match find(a, "entity.relationships") {
            Some(any_value::Value::ArrayValue(v)) => v.values.clone(),
            _ => Vec::new(),
        };
        assert_eq!(rel.len(), 1);
        let Some(any_value::Value::KvlistValue(link)) = rel[0].value.as_ref() else {
            panic!("relationship is not a map");
        };
        assert_eq!(text(&link.values, "relationship.type"), Some("part_of"));
        assert_eq!(text(&link.values, "entity.type"), Some("k8s.pod"));
        assert_eq!(
            text(kvlist(&link.values, "entity.id"), "k8s.pod.uid"),
            Some("uid-1")
        );
    }

    #[test]
    fn removed_is_a_delete_event_without_description() {
        let mut record = sample();
        record.reason = Some("OOMKilled".into());
        let ev = EventRecord {
            event: Lifecycle::Removed,
            time: Timestamp::now(),
            record,
        };
        let lr = log_record(&ev, "ev-2", 300);
        assert_eq!(lr.event_name, DELETE_EVENT);
        assert!(find(&lr.attributes, "entity.description").is_none());
        assert_eq!(
            text(&lr.attributes, "entity.delete.reason"),
            Some("oomkilled")
        );
        assert_eq!(
            text(kvlist(&lr.attributes, "entity.id"), "container.id"),
            Some("c1")
        );
    }

    #[test]
    fn image_references_split_at_the_tag_not_the_port() {
        assert_eq!(split_image("busybox"), ("busybox", None));
        assert_eq!(split_image("busybox:1.36"), ("busybox", Some("1.36")));
        assert_eq!(split_image("reg:5000/a/b"), ("reg:5000/a/b", None));
        assert_eq!(split_image("reg:5000/a/b:v1"), ("reg:5000/a/b", Some("v1")));
        assert_eq!(split_image("a/b:v1@sha256:x"), ("a/b", Some("v1")));
    }

    #[test]
    fn resource_names_the_emitter() {
        let rl = resource_logs("node-a", vec![]);
        let attrs = rl.resource.map(|r| r.attributes).unwrap_or_default();
        assert_eq!(text(&attrs, "service.name"), Some("gannet"));
        assert_eq!(text(&attrs, "k8s.node.name"), Some("node-a"));
    }
}
