//! Benchmark probe: reads four fields and sets two tags (a typical enrichment).

use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};

/// Tags `owner` (namespace/pod) and `app` (pod label or image).
#[plugin]
pub fn process(_event: Lifecycle, record: &mut Container) -> Result<Verdict> {
    let namespace = record.namespace();
    let pod = record.pod_name();
    let app = record.pod_label("app");
    let image = record.image();
    record.set_tag("owner", &format!("{namespace}/{pod}"));
    record.set_tag("app", app.as_deref().unwrap_or(&image));
    Ok(Verdict::Pass)
}
