//! Refuses every config in `init`, with a message the host must show verbatim.

use gannet_guest::{plugin, Container, Error, Lifecycle, Result, Verdict};
use serde::de::IgnoredAny;

/// Refuses whatever config it is given (a typed config would word the error itself).
fn refuse(_config: IgnoredAny) -> Result<()> {
    Err(Error::msg(
        "missing key `namespaces`; add it under [config]",
    ))
}

#[plugin(init = refuse)]
fn process(_event: Lifecycle, _record: &Container, _state: &()) -> Result<Verdict> {
    Ok(Verdict::Pass)
}
