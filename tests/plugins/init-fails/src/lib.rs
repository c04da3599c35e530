//! Refuses every config in `init`.
wit_bindgen::generate!({ path: "../../../wit", world: "plugin" });

use exports::gannet::plugin::handler::Guest;
use gannet::plugin::container::Container;
use gannet::plugin::types::{Lifecycle, Verdict};

struct Plugin;
export!(Plugin);

impl Guest for Plugin {
    fn init(_config: String) -> Result<(), String> {
        Err("missing key `namespaces`; add it under [config]".to_string())
    }
    fn process(_event: Lifecycle, _record: &Container) -> Result<Verdict, String> {
        Ok(Verdict::Pass)
    }
}
