//! Panics (a trap) on every record, after writing to stderr.

use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};

#[plugin]
fn process(_event: Lifecycle, record: &Container) -> Result<Verdict> {
    panic!("trap plugin refuses {}", record.id());
}
