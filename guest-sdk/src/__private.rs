//! Support for the code `#[plugin]` generates. Not part of the API.
//!
//! Owns config parsing for `init`, the per-instance state slot and the `process`
//! trampoline. Nothing here panics: every failure becomes the WIT `err` string.

use std::cell::RefCell;
use std::thread::LocalKey;

use crate::error::Error;

/// The per-instance state: the parsed config (or what `init = ...` made of it).
pub type Slot<S> = RefCell<Option<S>>;

/// What `init` says when the config does not parse.
const CONFIG_PREFIX: &str = "invalid plugin config";

/// Parses the config JSON into `C`; the error is what the operator sees, so it names the
/// key (as the sidecar's `[config]` spells it) rather than a position in JSON the
/// operator never wrote.
pub fn parse_config<C: serde::de::DeserializeOwned>(json: &str) -> Result<C, String> {
    let mut document = serde_json::Deserializer::from_str(json);
    let config = serde_path_to_error::deserialize(&mut document).map_err(|e| {
        let key = e.path().to_string();
        let message = e.into_inner().to_string();
        // serde_json ends with " at line L column C" of the host-made JSON: meaningless here.
        let message = match message.rfind(" at line ") {
            Some(at) => &message[..at],
            None => &message[..],
        };
        let names_itself = !key.contains('.') && message.contains(&format!("`{key}`"));
        if key == "." || key.is_empty() || names_itself {
            format!("{CONFIG_PREFIX}: {message}")
        } else {
            format!("{CONFIG_PREFIX}: key `{key}`: {message}")
        }
    })?;
    document
        .end()
        .map_err(|e| format!("{CONFIG_PREFIX}: {e}"))?;
    Ok(config)
}

/// A plugin without a config parameter takes no config: only `{}` (or nothing).
pub fn parse_no_config(json: &str) -> Result<(), String> {
    let trimmed = json.trim();
    if trimmed.is_empty() || trimmed == "null" {
        return Ok(());
    }
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(trimmed).map_err(|e| format!("{CONFIG_PREFIX}: {e}"))?;
    if map.is_empty() {
        Ok(())
    } else {
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        Err(format!(
            "{CONFIG_PREFIX}: this plugin takes no config, but got key(s) {}; remove the [config] table from its sidecar",
            keys.join(", ")
        ))
    }
}

/// Turns a user function's result into the WIT form.
pub fn into_wit<T>(result: Result<T, Error>) -> Result<T, String> {
    result.map_err(Error::into_message)
}

/// Stores the state made by `init`, replacing any earlier one.
pub fn store<S: 'static>(slot: &'static LocalKey<Slot<S>>, state: S) -> Result<(), String> {
    slot.with(|cell| match cell.try_borrow_mut() {
        Ok(mut cell) => {
            *cell = Some(state);
            Ok(())
        }
        Err(_) => Err("init called while process was running".to_string()),
    })
}

/// Runs `f` with the state `init` stored; an error if `init` has not succeeded.
pub fn with_state<S: 'static, R>(
    slot: &'static LocalKey<Slot<S>>,
    f: impl FnOnce(&S) -> Result<R, String>,
) -> Result<R, String> {
    slot.with(|cell| match cell.try_borrow() {
        Ok(state) => match state.as_ref() {
            Some(state) => f(state),
            None => Err("process called before a successful init".to_string()),
        },
        Err(_) => Err("process called while init was running".to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_config_accepts_empty_and_refuses_keys() {
        assert_eq!(parse_no_config("{}"), Ok(()));
        assert_eq!(parse_no_config(""), Ok(()));
        let err = parse_no_config(r#"{"mask":"x"}"#).err().unwrap_or_default();
        assert!(
            err.contains("takes no config, but got key(s) mask"),
            "{err}"
        );
    }

    #[test]
    fn bad_config_names_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct C {
            a: u32,
        }
        let err = parse_config::<C>(r#"{"a":"x"}"#).err().unwrap_or_default();
        assert_eq!(
            err,
            "invalid plugin config: key `a`: invalid type: string \"x\", expected u32"
        );
        let err = parse_config::<C>(r#"{"b":1}"#).err().unwrap_or_default();
        assert!(
            err.starts_with("invalid plugin config: unknown field `b`") && !err.contains("line"),
            "{err}"
        );
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Outer {
            inner: C,
        }
        let err = parse_config::<Outer>(r#"{"inner":{"a":-1}}"#)
            .err()
            .unwrap_or_default();
        assert!(err.contains("key `inner.a`: invalid value"), "{err}");
    }

    thread_local! {
        static SLOT: Slot<u32> = const { RefCell::new(None) };
    }

    #[test]
    fn state_is_needed_before_process() {
        let before = with_state(&SLOT, |s| Ok(*s));
        assert_eq!(
            before,
            Err("process called before a successful init".to_string())
        );
        assert_eq!(store(&SLOT, 7), Ok(()));
        assert_eq!(with_state(&SLOT, |s| Ok(*s + 1)), Ok(8));
    }
}
