//! `route-by-namespace`: sends each record to the outputs its Kubernetes namespace maps
//! to.
//!
//! A namespace in `routes` gets a `route` verdict to its outputs. Any other namespace gets
//! `fallback` when it is set, and passes unchanged (keeping its current destinations)
//! otherwise.

use std::collections::BTreeMap;

use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};
use serde::Deserialize;

/// The sidecar's `[config]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Namespace -> names of the outputs its records go to.
    pub routes: BTreeMap<String, Vec<String>>,
    /// Outputs for namespaces not in `routes`; without it they pass unchanged.
    #[serde(default)]
    pub fallback: Option<Vec<String>>,
}

/// Checks the config once: no empty output lists, no empty output names.
pub fn prepare(config: Config) -> Result<Config> {
    let fallback = config.fallback.iter().map(|f| ("(fallback)", f));
    let routes = config.routes.iter().map(|(n, f)| (n.as_str(), f));
    for (namespace, outputs) in routes.chain(fallback) {
        if outputs.is_empty() || outputs.iter().any(String::is_empty) {
            gannet_guest::bail!(
                "config route for namespace {namespace:?} has no output or an empty output name; list output names"
            );
        }
    }
    Ok(config)
}

/// Routes by namespace.
#[plugin(init = prepare)]
pub fn process(_event: Lifecycle, record: &Container, config: &Config) -> Result<Verdict> {
    let namespace = record.namespace();
    Ok(
        match config.routes.get(&namespace).or(config.fallback.as_ref()) {
            Some(outputs) => Verdict::Route(outputs.clone()),
            None => Verdict::Pass,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use gannet_guest::testing::{self, MockContainer};

    fn run(json: &str, namespace: &str) -> Result<Verdict> {
        let config = prepare(testing::config(json)?)?;
        let record = Container::from(MockContainer::new().namespace(namespace));
        process(Lifecycle::Added, &record, &config)
    }

    const ROUTES: &str = r#"{"routes":{"payments":["audit","archive"],"kube-system":["ops"]}"#;

    #[test]
    fn mapped_namespaces_route_to_their_outputs() -> Result<()> {
        assert_eq!(
            run(&format!("{ROUTES}}}"), "payments")?,
            Verdict::route(["audit", "archive"])
        );
        assert_eq!(
            run(&format!("{ROUTES}}}"), "kube-system")?,
            Verdict::route(["ops"])
        );
        Ok(())
    }

    #[test]
    fn unmapped_namespace_passes_or_takes_the_fallback() -> Result<()> {
        assert_eq!(run(&format!("{ROUTES}}}"), "web")?, Verdict::Pass);
        let with_fallback = format!(r#"{ROUTES},"fallback":["default"]}}"#);
        assert_eq!(run(&with_fallback, "web")?, Verdict::route(["default"]));
        assert_eq!(
            run(&with_fallback, "payments")?,
            Verdict::route(["audit", "archive"])
        );
        Ok(())
    }

    #[test]
    fn empty_output_list_and_missing_routes_are_refused() {
        let msg = |json: &str| {
            run(json, "x")
                .err()
                .map(gannet_guest::Error::into_message)
                .unwrap_or_default()
        };
        assert!(msg(r#"{"routes":{"a":[]}}"#).starts_with("config route for namespace \"a\""));
        assert!(msg(r#"{"routes":{},"fallback":[""]}"#).contains("\"(fallback)\""));
        assert!(msg("{}").contains("missing field `routes`"));
    }
}
