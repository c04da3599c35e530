//! The envelope every output line or batch element carries, and the redaction of env
//! values at serialization (the `[record]` section). The envelope's id comes from
//! [`EventIds`].

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{ContainerRecord, EventIds, Lifecycle, Timestamp};

/// `[record]`: how records are serialized in outputs and the API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordConfig {
    /// `redact` (default) keeps env names and replaces their values; `include` keeps values.
    pub env_values: EnvValues,
}

/// Whether env values leave the agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvValues {
    /// Names kept, values replaced by [`REDACTED`].
    #[default]
    Redact,
    /// Values serialized as they are.
    Include,
}

/// What a redacted env value is replaced with.
pub const REDACTED: &str = "<redacted>";

/// One event as sent: `{"id","event","time","node","record"}`.
#[derive(Debug, Serialize)]
pub struct Envelope<'a> {
    /// Unique event id; receivers deduplicate by it (delivery is at-least-once).
    pub id: &'a str,
    /// `added`, `updated` or `removed`.
    pub event: Lifecycle,
    /// When the agent emitted the event (RFC 3339).
    pub time: Timestamp,
    /// The node's name.
    pub node: &'a str,
    /// The record after the plugin chain, env values redacted unless configured otherwise.
    pub record: &'a ContainerRecord,
}

/// An event serialized once and shared by every output it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The envelope's id.
    pub id: String,
    /// The envelope as one line of JSON (no trailing newline).
    pub json: Arc<str>,
    /// The event and its record (env values redacted as configured), for outputs that
    /// encode their own format (`otlp`); `None` when no such output is configured.
    pub event: Option<Arc<EventRecord>>,
}

/// One event's parts, as the envelope holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// `added`, `updated` or `removed`.
    pub event: Lifecycle,
    /// When the agent emitted it.
    pub time: Timestamp,
    /// The record after the chain, redacted as configured.
    pub record: ContainerRecord,
}

/// The record as it may leave the agent: env values replaced unless `include`.
pub fn redacted(record: &ContainerRecord, env_values: EnvValues) -> Cow<'_, ContainerRecord> {
    if env_values == EnvValues::Include || record.env.is_empty() {
        return Cow::Borrowed(record);
    }
    let mut copy = record.clone();
    for value in copy.env.values_mut() {
        *value = REDACTED.to_string();
    }
    Cow::Owned(copy)
}

/// Serializes one event into its envelope; with `keep_record`, also keeps its parts
/// ([`Encoded::event`]).
///
/// # Errors
/// Only if serde_json fails on the record, which has no non-string map keys; kept a
/// `Result` so that a future field cannot turn into a panic.
pub fn encode(
    ids: &EventIds,
    event: Lifecycle,
    record: &ContainerRecord,
    node: &str,
    env_values: EnvValues,
    keep_record: bool,
) -> Result<Encoded, serde_json::Error> {
    let id = ids.next_id();
    let record = redacted(record, env_values);
    let time = Timestamp::now();
    let json = serde_json::to_string(&Envelope {
        id: &id,
        event,
        time,
        node,
        record: &record,
    })?;
    Ok(Encoded {
        id,
        json: json.into(),
        event: keep_record.then(|| {
            Arc::new(EventRecord {
                event,
                time,
                record: record.into_owned(),
            })
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_with_env() -> ContainerRecord {
        let mut r = ContainerRecord {
            id: "c1".into(),
            ..Default::default()
        };
        r.env.insert("PASSWORD".into(), "hunter2".into());
        r.env.insert("PATH".into(), "/bin".into());
        r
    }

    #[test]
    fn envelope_has_the_five_keys_and_redacts_env_by_default() -> Result<(), serde_json::Error> {
        let ids = EventIds::new();
        let e = encode(
            &ids,
            Lifecycle::Added,
            &record_with_env(),
            "node-1",
            EnvValues::Redact,
            true,
        )?;
        let v: serde_json::Value = serde_json::from_str(&e.json)?;
        let keys: Vec<&str> = v
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(keys.len(), 5, "{keys:?}");
        assert_eq!(v["id"], e.id.as_str());
        assert_eq!(v["event"], "added");
        assert_eq!(v["node"], "node-1");
        assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_eq!(v["record"]["id"], "c1");
        assert_eq!(v["record"]["env"]["PASSWORD"], REDACTED);
        assert_eq!(v["record"]["env"]["PATH"], REDACTED);
        assert!(!e.json.contains("hunter2"));
        let kept = e.event.as_ref().map(|k| k.record.env["PASSWORD"].clone());
        assert_eq!(
            kept.as_deref(),
            Some(REDACTED),
            "the kept record is redacted too"
        );
        Ok(())
    }

    #[test]
    fn include_keeps_env_values() -> Result<(), serde_json::Error> {
        let e = encode(
            &EventIds::new(),
            Lifecycle::Removed,
            &record_with_env(),
            "n",
            EnvValues::Include,
            false,
        )?;
        assert!(e.event.is_none());
        let v: serde_json::Value = serde_json::from_str(&e.json)?;
        assert_eq!(v["record"]["env"]["PASSWORD"], "hunter2");
        assert_eq!(v["event"], "removed");
        Ok(())
    }
}
