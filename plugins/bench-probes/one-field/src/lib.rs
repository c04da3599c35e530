//! Benchmark probe: reads one field (the namespace) and decides on it.

use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};

/// Drops `kube-system`, passes the rest.
#[plugin]
pub fn process(_event: Lifecycle, record: &Container) -> Result<Verdict> {
    Ok(if record.namespace() == "kube-system" {
        Verdict::Drop
    } else {
        Verdict::Pass
    })
}
