//! Sets a tag, then returns `err`: the tag must be discarded.
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
        record.set_tag("process-err", "leaked");
        Err("cannot handle this record".to_string())
    }
}
