//! `team-labels`: copies chosen pod labels and pod annotations into tags, so outputs can
//! route and group by team without knowing Kubernetes.
//!
//! Each configured source key names the tag it is copied to. A source the pod lacks gets
//! `default_value` when one is set, and no tag otherwise. The record always passes.

use std::collections::BTreeMap;

use gannet_guest::{plugin, Container, Field, FieldSet, Lifecycle, Result, Slot, Verdict};
use serde::Deserialize;

/// The sidecar's `[config]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Pod label key -> tag name.
    #[serde(default)]
    pub pod_labels: BTreeMap<String, String>,
    /// Pod annotation key -> tag name.
    #[serde(default)]
    pub pod_annotations: BTreeMap<String, String>,
    /// Tag value for a source key the pod lacks; without it, no tag is set.
    #[serde(default)]
    pub default_value: Option<String>,
}

/// The config as one field set, so each record costs one host call to read and one to tag.
#[derive(Debug)]
pub struct Copies {
    /// The pod labels and pod annotations to read (one `select` per record), converted
    /// for the host once, here.
    fields: FieldSet,
    /// Where each source is in the selection, and the tag it is copied to.
    tags: Vec<(Slot, String)>,
    /// Tag value for a source the pod lacks.
    default_value: Option<String>,
}

/// Checks the config once per instance: at least one key, and no empty tag name.
pub fn prepare(config: Config) -> Result<Copies> {
    if config.pod_labels.is_empty() && config.pod_annotations.is_empty() {
        gannet_guest::bail!(
            "config has neither `pod_labels` nor `pod_annotations`; name at least one key to copy"
        );
    }
    for (key, tag) in config.pod_labels.iter().chain(&config.pod_annotations) {
        if tag.is_empty() {
            gannet_guest::bail!("config key {key:?} maps to an empty tag name; give a tag name");
        }
    }
    let mut fields = FieldSet::new();
    let tags = config
        .pod_labels
        .into_iter()
        .map(|(key, tag)| (Field::pod_label(key), tag))
        .chain(
            config
                .pod_annotations
                .into_iter()
                .map(|(key, tag)| (Field::pod_annotation(key), tag)),
        )
        .map(|(field, tag)| (fields.add(field), tag))
        .collect();
    Ok(Copies {
        fields,
        tags,
        default_value: config.default_value,
    })
}

/// Copies the configured pod labels and annotations into tags: one call into the host to
/// read them all, one to set the tags.
#[plugin(init = prepare)]
pub fn process(_event: Lifecycle, record: &mut Container, copies: &Copies) -> Result<Verdict> {
    let default = copies.default_value.as_deref();
    let values = record.select(&copies.fields);
    let tags: Vec<(&str, &str)> = copies
        .tags
        .iter()
        .filter_map(|(slot, tag)| values.at(*slot).or(default).map(|v| (tag.as_str(), v)))
        .collect();
    record.set_tags(tags);
    Ok(Verdict::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gannet_guest::testing::{self, MockContainer};

    fn run(json: &str, mock: MockContainer) -> Result<(Verdict, BTreeMap<String, String>)> {
        let copies = prepare(testing::config(json)?)?;
        let mut record = Container::from(mock);
        let verdict = process(Lifecycle::Updated, &mut record, &copies)?;
        Ok((verdict, record.into_mock().tags))
    }

    #[test]
    fn copies_labels_and_annotations_with_default_for_missing() -> Result<()> {
        let (verdict, tags) = run(
            r#"{"pod_labels":{"app.kubernetes.io/team":"team","cost-center":"cost_center"},
                "pod_annotations":{"owner":"owner"},"default_value":"unknown"}"#,
            MockContainer::new()
                .pod_label("app.kubernetes.io/team", "payments")
                .pod_annotation("owner", "alice@example.com"),
        )?;
        assert_eq!(verdict, Verdict::Pass);
        let want: BTreeMap<String, String> = [
            ("team", "payments"),
            ("cost_center", "unknown"),
            ("owner", "alice@example.com"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(tags, want);
        Ok(())
    }

    #[test]
    fn without_default_missing_sources_set_no_tag() -> Result<()> {
        let (_, tags) = run(
            r#"{"pod_labels":{"team":"team","tier":"tier"}}"#,
            MockContainer::new().pod_label("team", "a"),
        )?;
        assert_eq!(tags.get("team").map(String::as_str), Some("a"));
        assert!(!tags.contains_key("tier"));
        Ok(())
    }

    #[test]
    fn container_labels_are_not_pod_labels() -> Result<()> {
        let (_, tags) = run(
            r#"{"pod_labels":{"team":"team"}}"#,
            MockContainer::new().label("team", "wrong-source"),
        )?;
        assert!(tags.is_empty());
        Ok(())
    }

    #[test]
    fn empty_config_is_refused() {
        let msg = run("{}", MockContainer::new())
            .err()
            .map(gannet_guest::Error::into_message)
            .unwrap_or_default();
        assert!(msg.starts_with("config has neither `pod_labels`"), "{msg}");
    }
}
