//! Edits the record (tag, label, env), then traps: every edit must be discarded.
wit_bindgen::generate!({ path: "../../../wit", world: "plugin" });

use exports::gannet::plugin::handler::Guest;
use gannet::plugin::container::Container;
use gannet::plugin::types::{Lifecycle, Verdict};

struct Plugin;
export!(Plugin);

impl Guest for Plugin {
    fn init(_config: String) -> Result<(), String> {
        Ok(())
    }
    fn process(_event: Lifecycle, record: &Container) -> Result<Verdict, String> {
        record.set_tag("mutated", "yes");
        record.remove_label("app");
        record.mask_env_matching(&["*".to_string()], "gone");
        if record.tag("mutated").as_deref() == Some("yes") {
            core::arch::wasm32::unreachable();
        }
        Ok(Verdict::Pass)
    }
}
