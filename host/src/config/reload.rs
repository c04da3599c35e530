//! What SIGHUP may change, declared per field, and the check that refuses the rest.
//!
//! [`RELOADABLE`] lists, section by section, the fields a reload applies; `outputs` is
//! rebuilt whole. A change to any other field is refused with "restart required", naming
//! the field, so a new field needs a restart until it is listed here on purpose.

use serde_json::Value;

use super::{Config, ConfigError};

/// The fields SIGHUP applies, by section. Every other field of these sections needs a
/// restart; every field of `outputs` is reloadable (the outputs are rebuilt).
pub const RELOADABLE: &[(&str, &[&str])] = &[
    // Read at the drain, which always uses the newest config.
    ("runtime", &["shutdown_grace_period_secs"]),
    ("plugins", &[]),
    // The outputs and the API serialize with the new value from the next event.
    ("record", &["env_values"]),
    ("api", &[]),
    // Switched live by the log layer.
    ("logging", &["format", "level"]),
];

/// The section rebuilt whole on reload.
const REBUILT: &str = "outputs";

/// Whether `new` may replace `old` without a restart.
///
/// # Errors
/// [`ConfigError::RestartRequired`] naming the first field that differs and is not in
/// [`RELOADABLE`].
pub fn check_reloadable(old: &Config, new: &Config) -> Result<(), ConfigError> {
    let (Ok(Value::Object(old)), Ok(Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        // A config always serializes; if it ever did not, a restart is the safe answer.
        return Err(restart_required("config"));
    };
    for (section, old_section) in &old {
        if section == REBUILT {
            continue;
        }
        let reloadable = RELOADABLE
            .iter()
            .find(|(name, _)| name == section)
            .map_or(&[][..], |(_, fields)| *fields);
        let new_section = new.get(section);
        match (old_section, new_section) {
            (Value::Object(old_fields), Some(Value::Object(new_fields))) => {
                for (field, old_value) in old_fields {
                    if new_fields.get(field) != Some(old_value)
                        && !reloadable.contains(&field.as_str())
                    {
                        return Err(restart_required(&format!("{section}.{field}")));
                    }
                }
            }
            (old_value, new_value) if new_value != Some(old_value) => {
                return Err(restart_required(section));
            }
            _ => {}
        }
    }
    Ok(())
}

fn restart_required(field: &str) -> ConfigError {
    ConfigError::RestartRequired {
        field: field.to_string(),
        reloadable: reloadable_list(),
    }
}

/// `runtime.shutdown_grace_period_secs, record.env_values, ..., outputs`.
fn reloadable_list() -> String {
    let mut names: Vec<String> = RELOADABLE
        .iter()
        .flat_map(|(section, fields)| fields.iter().map(move |f| format!("{section}.{f}")))
        .collect();
    names.push(REBUILT.to_string());
    names.join(", ")
}
