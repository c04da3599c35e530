//! Benchmark probe: the same work as `four-reads`, written with one accessor call per
//! field (four calls into the host instead of one `select`), the two tags in one
//! `set-tags` call.

use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};

/// Tags `owner` (namespace/pod) and `app` (pod label or image).
#[plugin]
pub fn process(_event: Lifecycle, record: &mut Container) -> Result<Verdict> {
    let namespace = record.namespace();
    let pod = record.pod_name();
    let app = record.pod_label("app");
    let image = record.image();
    let owner = format!("{namespace}/{pod}");
    record.set_tags([("owner", owner), ("app", app.unwrap_or(image))]);
    Ok(Verdict::Pass)
}
