//! Does nothing: the cheapest possible plugin.

use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};

#[plugin]
fn process(_event: Lifecycle, _record: &Container) -> Result<Verdict> {
    Ok(Verdict::Pass)
}
