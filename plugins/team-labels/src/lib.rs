//! `team-labels`: copies chosen pod labels and pod annotations into tags, so outputs can
//! route and group by team without knowing Kubernetes.
//!
//! Each configured source key names the tag it is copied to. A source the pod lacks gets
//! `default_value` when one is set, and no tag otherwise. The record always passes.

use std::collections::BTreeMap;

use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};
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

/// The config split into key lists, so each record costs one host call per source kind.
#[derive(Debug)]
pub struct Copies {
    label_keys: Vec<String>,
    label_tags: Vec<String>,
    annotation_keys: Vec<String>,
    annotation_tags: Vec<String>,
    default_value: Option<String>,
}

/// Checks the config once: there must be something to copy and no empty tag names.
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
    let (label_keys, label_tags) = config.pod_labels.into_iter().unzip();
    let (annotation_keys, annotation_tags) = config.pod_annotations.into_iter().unzip();
    Ok(Copies {
        label_keys,
        label_tags,
        annotation_keys,
        annotation_tags,
        default_value: config.default_value,
    })
}

/// The (tag, value) pairs for one group of keys: the value read, else the default, else
/// no tag.
fn pairs<'a>(
    tags: &'a [String],
    values: Vec<Option<String>>,
    default: Option<&'a str>,
) -> impl Iterator<Item = (&'a str, String)> {
    tags.iter().zip(values).filter_map(move |(tag, value)| {
        value
            .or_else(|| default.map(str::to_string))
            .map(|v| (tag.as_str(), v))
    })
}

/// Sets the configured tags (in one host call) and passes the record on.
#[plugin(init = prepare)]
pub fn process(_event: Lifecycle, record: &mut Container, copies: &Copies) -> Result<Verdict> {
    let default = copies.default_value.as_deref();
    let labels = if copies.label_keys.is_empty() {
        Vec::new()
    } else {
        record.pod_label_values(&copies.label_keys)
    };
    let annotations = if copies.annotation_keys.is_empty() {
        Vec::new()
    } else {
        record.pod_annotation_values(&copies.annotation_keys)
    };
    let tags: Vec<(&str, String)> = pairs(&copies.label_tags, labels, default)
        .chain(pairs(&copies.annotation_tags, annotations, default))
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
