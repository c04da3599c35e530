//! Sets a tag, then returns `err`: the tag must be discarded.

use gannet_guest::{plugin, Container, Error, Lifecycle, Result, Verdict};

#[plugin]
fn process(_event: Lifecycle, record: &mut Container) -> Result<Verdict> {
    record.set_tag("process-err", "leaked");
    Err(Error::msg("cannot handle this record"))
}
