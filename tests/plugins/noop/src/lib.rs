//! Does nothing: the cheapest possible plugin (for the call-cost benchmark).
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
    fn process(_event: Lifecycle, _record: &Container) -> Result<Verdict, String> {
        Ok(Verdict::Pass)
    }
}
