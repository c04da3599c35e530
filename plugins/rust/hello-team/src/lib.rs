//! hello-team: drops records of skipped namespaces and tags the rest with their team.

use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};
use serde::Deserialize;

/// The sidecar's `[config]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Namespaces whose records are dropped.
    pub skip_namespaces: Vec<String>,
    /// The tag value when the pod has no `team` label.
    pub default_team: String,
}

/// Drops records of skipped namespaces; tags the others with `team`.
#[plugin]
pub fn process(_event: Lifecycle, record: &mut Container, config: &Config) -> Result<Verdict> {
    if config.skip_namespaces.contains(&record.namespace()) {
        return Ok(Verdict::Drop);
    }
    let team = record
        .pod_label("team")
        .unwrap_or_else(|| config.default_team.clone());
    record.set_tag("team", &team);
    Ok(Verdict::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gannet_guest::testing::{self, MockContainer};

    fn config() -> Result<Config> {
        testing::config(r#"{"skip_namespaces": ["kube-system"], "default_team": "unowned"}"#)
    }

    #[test]
    fn tags_the_team_or_the_default() -> Result<()> {
        let mut record = Container::from(MockContainer::new().pod_label("team", "payments"));
        assert_eq!(
            process(Lifecycle::Added, &mut record, &config()?)?,
            Verdict::Pass
        );
        assert_eq!(record.tag("team").as_deref(), Some("payments"));

        let mut record = Container::from(MockContainer::new());
        process(Lifecycle::Added, &mut record, &config()?)?;
        assert_eq!(record.tag("team").as_deref(), Some("unowned"));
        Ok(())
    }

    #[test]
    fn drops_skipped_namespaces() -> Result<()> {
        let mut record = Container::from(MockContainer::new().namespace("kube-system"));
        assert_eq!(
            process(Lifecycle::Added, &mut record, &config()?)?,
            Verdict::Drop
        );
        Ok(())
    }
}
