//! `redact-env`: masks or removes env vars whose names look secret, before any output
//! sees them.
//!
//! Names are matched in the host against glob patterns (`*` matches any run of
//! characters; matching is case-sensitive), so a record costs one host call whatever its
//! size. The record always passes.

use gannet_guest::{plugin, Container, Keys, Lifecycle, Result, Verdict};
use serde::Deserialize;

/// Patterns used when the config gives no `patterns`.
pub const DEFAULT_PATTERNS: &[&str] = &["*PASSWORD*", "*SECRET*", "*TOKEN*", "*_KEY"];

/// What `mask` replaces a value with by default.
pub const DEFAULT_MASK: &str = "******";

/// What to do with a matching env var.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Replace the value with `mask` (the name stays visible).
    #[default]
    Mask,
    /// Remove the variable.
    Remove,
}

/// The sidecar's `[config]` (all keys optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Glob patterns of secret env names; replaces the defaults
    /// (`*PASSWORD*`, `*SECRET*`, `*TOKEN*`, `*_KEY`).
    #[serde(default)]
    pub patterns: Option<Vec<String>>,
    /// More patterns, added to `patterns` (or to the defaults).
    #[serde(default)]
    pub extra_patterns: Vec<String>,
    /// `mask` (default) or `remove`.
    #[serde(default)]
    pub action: Action,
    /// The replacement value for `mask` (default `******`).
    #[serde(default)]
    pub mask: Option<String>,
}

/// The checked config.
#[derive(Debug)]
pub struct Redaction {
    /// The patterns, handed to the host on every call with no copy.
    patterns: Keys,
    action: Action,
    mask: String,
}

/// Checks the config once: at least one pattern, none empty.
pub fn prepare(config: Config) -> Result<Redaction> {
    let mut patterns = config
        .patterns
        .unwrap_or_else(|| DEFAULT_PATTERNS.iter().map(|p| p.to_string()).collect());
    patterns.extend(config.extra_patterns);
    if patterns.is_empty() {
        gannet_guest::bail!(
            "config `patterns` is empty; give at least one pattern or omit the key"
        );
    }
    if patterns.iter().any(String::is_empty) {
        gannet_guest::bail!("config `patterns` holds an empty pattern; remove it");
    }
    if config.action == Action::Remove && config.mask.is_some() {
        gannet_guest::bail!("config `mask` is set but `action` is \"remove\"; drop one of them");
    }
    Ok(Redaction {
        patterns: Keys::new(patterns),
        action: config.action,
        mask: config.mask.unwrap_or_else(|| DEFAULT_MASK.to_string()),
    })
}

/// Masks or removes the matching env vars and passes the record on.
#[plugin(init = prepare)]
pub fn process(_event: Lifecycle, record: &mut Container, r: &Redaction) -> Result<Verdict> {
    match r.action {
        Action::Mask => record.mask_env_matching(&r.patterns, &r.mask),
        Action::Remove => record.remove_env_matching(&r.patterns),
    };
    Ok(Verdict::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gannet_guest::testing::{self, MockContainer};
    use std::collections::BTreeMap;

    fn secrets() -> MockContainer {
        MockContainer::new()
            .env("DB_PASSWORD", "hunter2")
            .env("GITHUB_TOKEN", "ghp_x")
            .env("AWS_SECRET_ACCESS_KEY", "s")
            .env("API_KEY", "k")
            .env("API_KEYS_URL", "http://keys")
            .env("HOME", "/root")
    }

    fn run(json: &str) -> Result<BTreeMap<String, String>> {
        let r = prepare(testing::config(json)?)?;
        let mut record = Container::from(secrets());
        assert_eq!(process(Lifecycle::Added, &mut record, &r)?, Verdict::Pass);
        Ok(record.into_mock().env)
    }

    #[test]
    fn defaults_mask_secret_names_only() -> Result<()> {
        let env = run("{}")?;
        for name in [
            "DB_PASSWORD",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "API_KEY",
        ] {
            assert_eq!(
                env.get(name).map(String::as_str),
                Some(DEFAULT_MASK),
                "{name}"
            );
        }
        assert_eq!(
            env.get("API_KEYS_URL").map(String::as_str),
            Some("http://keys")
        );
        assert_eq!(env.get("HOME").map(String::as_str), Some("/root"));
        Ok(())
    }

    #[test]
    fn remove_action_with_own_patterns() -> Result<()> {
        let env = run(r#"{"patterns":["*TOKEN*"],"extra_patterns":["HOME"],"action":"remove"}"#)?;
        let names: Vec<&str> = env.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "API_KEY",
                "API_KEYS_URL",
                "AWS_SECRET_ACCESS_KEY",
                "DB_PASSWORD"
            ]
        );
        Ok(())
    }

    #[test]
    fn custom_mask() -> Result<()> {
        let env = run(r#"{"mask":"<redacted>"}"#)?;
        assert_eq!(env.get("API_KEY").map(String::as_str), Some("<redacted>"));
        Ok(())
    }

    #[test]
    fn contradictory_or_empty_config_is_refused() {
        let msg = |json: &str| {
            run(json)
                .err()
                .map(gannet_guest::Error::into_message)
                .unwrap_or_default()
        };
        assert!(msg(r#"{"patterns":[]}"#).starts_with("config `patterns` is empty"));
        assert!(msg(r#"{"action":"remove","mask":"x"}"#).starts_with("config `mask` is set"));
        assert!(msg(r#"{"action":"hide"}"#).contains("unknown variant `hide`"));
    }
}
