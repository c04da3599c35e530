//! Benchmark probe: reads four fields and sets two tags (a typical enrichment): the four
//! reads in one `select` call, the two tags in one `set-tags` call.

use gannet_guest::{plugin, Container, Field, FieldSet, Lifecycle, Result, Verdict};
use serde::Deserialize;

/// The probe takes no config.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The fields read, built (and converted for the host) once per instance; no field
/// repeats, so each one's slot is its position.
pub struct Fields(FieldSet);

/// Builds the field set (the probe has no config).
pub fn prepare(_config: Config) -> Result<Fields> {
    Ok(Fields(FieldSet::from_iter([
        Field::Namespace,
        Field::PodName,
        Field::pod_label("app"),
        Field::Image,
    ])))
}

/// Tags `owner` (namespace/pod) and `app` (pod label or image).
#[plugin(init = prepare)]
pub fn process(_event: Lifecycle, record: &mut Container, fields: &Fields) -> Result<Verdict> {
    let values = record.select(&fields.0);
    let owner = format!(
        "{}/{}",
        values.get(0).unwrap_or_default(),
        values.get(1).unwrap_or_default()
    );
    let app = values.get(2).or(values.get(3)).unwrap_or_default();
    record.set_tags([("owner", owner.as_str()), ("app", app)]);
    Ok(Verdict::Pass)
}
