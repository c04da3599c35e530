//! Edits the record (tag, label, env), then traps: every edit must be discarded.

use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};

#[plugin]
fn process(_event: Lifecycle, record: &mut Container) -> Result<Verdict> {
    record.set_tag("mutated", "yes");
    record.remove_label("app");
    record.mask_env_matching(&["*".to_string()], "gone");
    if record.tag("mutated").as_deref() == Some("yes") {
        // A bare trap, without a panic message: only the edits before it matter.
        core::arch::wasm32::unreachable();
    }
    Ok(Verdict::Pass)
}
