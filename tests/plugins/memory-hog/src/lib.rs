//! Allocates without bound in `process`: only the memory limit stops it.
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
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
        }
    }
}
