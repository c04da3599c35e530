//! Benchmark probe: passes every record without reading it (the cost of a call).

use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};

/// Passes.
#[plugin]
pub fn process(_event: Lifecycle, _record: &Container) -> Result<Verdict> {
    Ok(Verdict::Pass)
}
