//! Reading a TOML file (the agent config, a plugin sidecar) into its typed form, with an
//! error that says where: the line, the dotted key, and what the parser expected.
//!
//! Owns [`parse`]. `toml` alone names the line but, for a value of the wrong type, not the
//! key; `serde_path_to_error` (already in the tree through axum) tracks the key.

use serde::de::DeserializeOwned;

/// Why a TOML document does not fit its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TomlError {
    /// 1-based line of the problem.
    pub line: usize,
    /// What is wrong, on one line, starting with the key when it is known
    /// (``key `runtime.event_fetch_rate_per_sec`: invalid type: ...``).
    pub message: String,
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset.min(text.len()))
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses `text` as a `T`.
///
/// # Errors
/// [`TomlError`] for a syntax error, an unknown key, or a value of the wrong type.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, TomlError> {
    let at = |e: &toml::de::Error| e.span().map_or(1, |span| line_of(text, span.start));
    let document = toml::Deserializer::parse(text).map_err(|e| TomlError {
        line: at(&e),
        message: one_line(e.message()),
    })?;
    serde_path_to_error::deserialize(document).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let message = one_line(inner.message());
        // The root prints as "."; a top-level unknown key already names itself.
        let names_itself = !key.contains('.') && message.contains(&format!("`{key}`"));
        let message = if key == "." || key.is_empty() || names_itself {
            message
        } else {
            format!("key `{key}`: {message}")
        };
        TomlError {
            line: at(&inner),
            message,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: Option<String>,
        runtime: Option<Runtime>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Runtime {
        rate: Option<u32>,
    }

    #[test]
    fn a_wrong_type_names_the_dotted_key_and_the_line() {
        let e = parse::<Doc>("name = \"x\"\n\n[runtime]\nrate = \"fast\"\n")
            .err()
            .map(|e| (e.line, e.message));
        assert_eq!(
            e,
            Some((
                4,
                "key `runtime.rate`: invalid type: string \"fast\", expected u32".to_string()
            ))
        );
    }

    #[test]
    fn unknown_keys_and_syntax_errors_keep_the_parser_message_and_line() {
        let unknown = parse::<Doc>("[runtime]\nrtae = 5\n").err();
        assert!(
            unknown
                .as_ref()
                .is_some_and(|e| e.line == 2 && e.message.contains("unknown field `rtae`")),
            "{unknown:?}"
        );
        let nested = parse::<Doc>("[runtime]\nrtae = 5\n")
            .err()
            .map(|e| e.message);
        assert!(
            nested
                .as_deref()
                .is_some_and(|m| m.starts_with("key `runtime.rtae`: unknown field `rtae`")),
            "a nested unknown key says which table: {nested:?}"
        );
        let top = parse::<Doc>("nmae = 5\n").err().map(|e| e.message);
        assert!(
            top.as_deref()
                .is_some_and(|m| m.starts_with("unknown field `nmae`")),
            "a top-level one is not named twice: {top:?}"
        );
        let syntax = parse::<Doc>("name = \"x\"\nname = = 1\n").err();
        assert!(syntax.as_ref().is_some_and(|e| e.line == 2), "{syntax:?}");
    }
}
