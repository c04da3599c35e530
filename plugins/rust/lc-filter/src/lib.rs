//! `lc-filter`: the container filters of iLogtail / LoongCollector, with the same config
//! keys and semantics, so a migrating team keeps its filter config.
//!
//! A record passes when every configured group matches, and is dropped otherwise:
//!
//! - `K8sNamespaceRegex`, `K8sPodRegex`, `K8sContainerRegex`: the namespace, pod name and
//!   container name (within the pod) must match the regex (an unanchored search, as Go's
//!   `MatchString`; anchor with `^...$` for a whole-name match).
//! - `IncludeK8sLabel` / `ExcludeK8sLabel` (pod labels), `IncludeEnv` / `ExcludeEnv`
//!   (env vars), `IncludeContainerLabel` / `ExcludeContainerLabel` (container labels):
//!   maps of key to value. A value starting with `^` is a regex matched against the
//!   record's value; an empty value means "the key exists"; any other value must be equal.
//!   Includes are OR'd within a group (one match is enough; an empty include map accepts
//!   everything); any exclude match rejects.
//! - Pause (sandbox) containers never match: they are always dropped.

use std::collections::BTreeMap;

use gannet_guest::{
    plugin, Container, Field, FieldSet, Lifecycle, Result, Selection, Slot, Verdict,
};
use regex::Regex;
use serde::Deserialize;

/// The sidecar's `[config]`: iLogtail's `ContainerFilters` keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Config {
    /// Regex the Kubernetes namespace must match.
    #[serde(default, rename = "K8sNamespaceRegex")]
    pub k8s_namespace_regex: Option<String>,
    /// Regex the pod name must match.
    #[serde(default, rename = "K8sPodRegex")]
    pub k8s_pod_regex: Option<String>,
    /// Regex the container name (within the pod) must match.
    #[serde(default, rename = "K8sContainerRegex")]
    pub k8s_container_regex: Option<String>,
    /// Pod labels of which at least one must match.
    #[serde(default, rename = "IncludeK8sLabel")]
    pub include_k8s_label: BTreeMap<String, String>,
    /// Pod labels of which none may match.
    #[serde(default, rename = "ExcludeK8sLabel")]
    pub exclude_k8s_label: BTreeMap<String, String>,
    /// Env vars of which at least one must match.
    #[serde(default)]
    pub include_env: BTreeMap<String, String>,
    /// Env vars of which none may match.
    #[serde(default)]
    pub exclude_env: BTreeMap<String, String>,
    /// Container labels of which at least one must match.
    #[serde(default)]
    pub include_container_label: BTreeMap<String, String>,
    /// Container labels of which none may match.
    #[serde(default)]
    pub exclude_container_label: BTreeMap<String, String>,
}

/// How one configured value matches the record's value.
#[derive(Debug)]
pub enum ValueMatch {
    /// Empty value in the config: the key must exist.
    Exists,
    /// A value starting with `^`: the regex must match.
    Regex(Regex),
    /// Any other value: equality.
    Equals(String),
}

impl ValueMatch {
    fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exists => true,
            Self::Regex(re) => re.is_match(value),
            Self::Equals(v) => v == value,
        }
    }
}

/// One include/exclude pair, compiled: where each key's value sits in the selection and
/// how it matches.
#[derive(Debug, Default)]
pub struct Group {
    /// (slot in the selection, matcher) for includes.
    include: Vec<(Slot, ValueMatch)>,
    /// (slot in the selection, matcher) for excludes.
    exclude: Vec<(Slot, ValueMatch)>,
}

impl Group {
    /// Compiles one include/exclude pair, adding each key's field to `fields` (once).
    fn build(
        name: &str,
        include: &BTreeMap<String, String>,
        exclude: &BTreeMap<String, String>,
        field: fn(String) -> Field,
        fields: &mut FieldSet,
    ) -> Result<Self> {
        let mut group = Self::default();
        for (map, side) in [(include, "Include"), (exclude, "Exclude")] {
            for (key, value) in map {
                let matcher = if value.is_empty() {
                    ValueMatch::Exists
                } else if value.starts_with('^') {
                    ValueMatch::Regex(Regex::new(value).map_err(|e| {
                        gannet_guest::Error::msg(format!(
                            "config `{side}{name}` key {key:?}: invalid regex: {e}"
                        ))
                    })?)
                } else {
                    ValueMatch::Equals(value.clone())
                };
                let slot = fields.add(field(key.clone()));
                if side == "Include" {
                    group.include.push((slot, matcher));
                } else {
                    group.exclude.push((slot, matcher));
                }
            }
        }
        Ok(group)
    }

    /// True when the selected values pass this group.
    fn accepts(&self, values: &Selection) -> bool {
        let hit = |(slot, m): &(Slot, ValueMatch)| values.at(*slot).is_some_and(|v| m.matches(v));
        (self.include.is_empty() || self.include.iter().any(hit)) && !self.exclude.iter().any(hit)
    }
}

/// The compiled filter `process` runs.
#[derive(Debug)]
pub struct Filter {
    /// Everything `process` reads, fetched in one `select`: the sandbox flag and the
    /// container name, then what the name regexes and the groups need.
    fields: FieldSet,
    /// Where the sandbox flag is in the selection.
    is_sandbox: Slot,
    /// Where the container name is in the selection.
    container_name: Slot,
    /// (slot in the selection, regex) for the namespace, pod and container regexes.
    names: Vec<(Slot, Regex)>,
    /// The label, env and container-label groups that are configured.
    groups: Vec<Group>,
}

/// Compiles a name regex, if configured, reading `field` (added to `fields`, once).
fn name_regex(
    key: &str,
    pattern: &Option<String>,
    field: Field,
    fields: &mut FieldSet,
) -> Result<Option<(Slot, Regex)>> {
    let Some(pattern) = pattern.as_deref().filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let regex = Regex::new(pattern)
        .map_err(|e| gannet_guest::Error::msg(format!("config `{key}`: invalid regex: {e}")))?;
    Ok(Some((fields.add(field), regex)))
}

/// Compiles the config once per instance; a bad regex refuses the config, naming the key.
pub fn prepare(config: Config) -> Result<Filter> {
    let mut fields = FieldSet::new();
    let is_sandbox = fields.add(Field::IsSandbox);
    let container_name = fields.add(Field::ContainerName);
    let names = [
        (
            "K8sNamespaceRegex",
            &config.k8s_namespace_regex,
            Field::Namespace,
        ),
        ("K8sPodRegex", &config.k8s_pod_regex, Field::PodName),
        (
            "K8sContainerRegex",
            &config.k8s_container_regex,
            Field::ContainerName,
        ),
    ]
    .into_iter()
    .filter_map(|(key, pattern, field)| name_regex(key, pattern, field, &mut fields).transpose())
    .collect::<Result<Vec<_>>>()?;
    let groups = [
        (
            "K8sLabel",
            &config.include_k8s_label,
            &config.exclude_k8s_label,
            Field::PodLabel as fn(String) -> Field,
        ),
        ("Env", &config.include_env, &config.exclude_env, Field::Env),
        (
            "ContainerLabel",
            &config.include_container_label,
            &config.exclude_container_label,
            Field::Label,
        ),
    ]
    .into_iter()
    .filter(|(_, include, exclude, _)| !include.is_empty() || !exclude.is_empty())
    .map(|(name, include, exclude, field)| Group::build(name, include, exclude, field, &mut fields))
    .collect::<Result<Vec<_>>>()?;
    Ok(Filter {
        fields,
        is_sandbox,
        container_name,
        names,
        groups,
    })
}

/// Passes the record when it matches every configured filter, drops it otherwise. Reads
/// everything it needs in one call into the host.
#[plugin(init = prepare)]
pub fn process(_event: Lifecycle, record: &Container, filter: &Filter) -> Result<Verdict> {
    let values = record.select(&filter.fields);
    if values.at(filter.is_sandbox) == Some("true")
        || values.at(filter.container_name) == Some("POD")
    {
        return Ok(Verdict::Drop);
    }
    let matched = filter
        .names
        .iter()
        .all(|(slot, re)| re.is_match(values.at(*slot).unwrap_or_default()))
        && filter.groups.iter().all(|g| g.accepts(&values));
    Ok(if matched {
        Verdict::Pass
    } else {
        Verdict::Drop
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gannet_guest::testing::{self, MockContainer};

    fn filter(json: &str) -> Result<Filter> {
        prepare(testing::config(json)?)
    }

    fn run(filter: &Filter, mock: MockContainer) -> Result<Verdict> {
        process(Lifecycle::Added, &Container::from(mock), filter)
    }

    fn pod(namespace: &str, pod: &str, container: &str) -> MockContainer {
        MockContainer::new()
            .namespace(namespace)
            .pod_name(pod)
            .container_name(container)
    }

    #[test]
    fn empty_config_passes_everything_but_pause() -> Result<()> {
        let f = filter("{}")?;
        assert_eq!(run(&f, pod("a", "b", "c"))?, Verdict::Pass);
        assert_eq!(run(&f, pod("a", "b", "POD"))?, Verdict::Drop);
        assert_eq!(run(&f, pod("a", "b", "c").sandbox(true))?, Verdict::Drop);
        Ok(())
    }

    #[test]
    fn name_regexes_are_unanchored_searches_and_anded() -> Result<()> {
        let f = filter(r#"{"K8sNamespaceRegex":"^(prod|stage)$","K8sPodRegex":"web"}"#)?;
        assert_eq!(run(&f, pod("prod", "my-web-1", "app"))?, Verdict::Pass);
        assert_eq!(run(&f, pod("production", "web", "app"))?, Verdict::Drop);
        assert_eq!(run(&f, pod("stage", "api", "app"))?, Verdict::Drop);
        let f = filter(r#"{"K8sContainerRegex":"^nginx"}"#)?;
        assert_eq!(run(&f, pod("x", "y", "nginx-sidecar"))?, Verdict::Pass);
        assert_eq!(run(&f, pod("x", "y", "app"))?, Verdict::Drop);
        Ok(())
    }

    #[test]
    fn includes_are_ored_and_values_equal_regex_or_exist() -> Result<()> {
        let f = filter(r#"{"IncludeK8sLabel":{"app":"web","tier":"^back","canary":""}}"#)?;
        let base = || pod("ns", "p", "c");
        assert_eq!(run(&f, base().pod_label("app", "web"))?, Verdict::Pass);
        assert_eq!(run(&f, base().pod_label("app", "web2"))?, Verdict::Drop);
        assert_eq!(run(&f, base().pod_label("tier", "backend"))?, Verdict::Pass);
        assert_eq!(
            run(&f, base().pod_label("tier", "frontend"))?,
            Verdict::Drop
        );
        assert_eq!(run(&f, base().pod_label("canary", "no"))?, Verdict::Pass);
        assert_eq!(run(&f, base())?, Verdict::Drop);
        Ok(())
    }

    #[test]
    fn any_exclude_rejects_even_when_included() -> Result<()> {
        let f = filter(r#"{"IncludeEnv":{"LOG":""},"ExcludeEnv":{"DEBUG":"1","STAGE":"^test"}}"#)?;
        let base = || pod("ns", "p", "c").env("LOG", "on");
        assert_eq!(run(&f, base())?, Verdict::Pass);
        assert_eq!(run(&f, base().env("DEBUG", "1"))?, Verdict::Drop);
        assert_eq!(run(&f, base().env("DEBUG", "0"))?, Verdict::Pass);
        assert_eq!(run(&f, base().env("STAGE", "testing"))?, Verdict::Drop);
        assert_eq!(run(&f, pod("ns", "p", "c"))?, Verdict::Drop);
        Ok(())
    }

    #[test]
    fn groups_are_anded() -> Result<()> {
        let f = filter(
            r#"{"IncludeContainerLabel":{"logging":"true"},"ExcludeK8sLabel":{"team":"infra"},
                "K8sNamespaceRegex":"^prod$"}"#,
        )?;
        let ok = pod("prod", "p", "c").label("logging", "true");
        assert_eq!(run(&f, ok.clone())?, Verdict::Pass);
        assert_eq!(
            run(&f, ok.clone().pod_label("team", "infra"))?,
            Verdict::Drop
        );
        assert_eq!(run(&f, ok.clone().namespace("dev"))?, Verdict::Drop);
        assert_eq!(run(&f, pod("prod", "p", "c"))?, Verdict::Drop);
        Ok(())
    }

    #[test]
    fn the_same_key_may_be_included_and_excluded() -> Result<()> {
        let f = filter(r#"{"IncludeK8sLabel":{"app":""},"ExcludeK8sLabel":{"app":"^debug"}}"#)?;
        let base = || pod("ns", "p", "c");
        assert_eq!(run(&f, base().pod_label("app", "web"))?, Verdict::Pass);
        assert_eq!(
            run(&f, base().pod_label("app", "debug-shell"))?,
            Verdict::Drop
        );
        Ok(())
    }

    #[test]
    fn bad_regex_and_unknown_key_refuse_the_config() {
        let err = filter(r#"{"IncludeEnv":{"A":"^("}}"#).err();
        let msg = err
            .map(gannet_guest::Error::into_message)
            .unwrap_or_default();
        assert!(
            msg.starts_with("config `IncludeEnv` key \"A\": invalid regex"),
            "{msg}"
        );
        let err = filter(r#"{"K8sNamespaceRegx":"x"}"#).err();
        let msg = err
            .map(gannet_guest::Error::into_message)
            .unwrap_or_default();
        assert!(msg.contains("unknown field `K8sNamespaceRegx`"), "{msg}");
    }
}
