//! Benchmark probe: reads four fields and sets two tags (a typical enrichment), the two
//! tags in one `set-tags` call.

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
