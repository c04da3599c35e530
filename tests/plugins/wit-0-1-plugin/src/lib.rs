//! A plugin built as one was before `gannet:plugin@0.2.0`: straight from the frozen
//! `wit/0.1.0/plugin.wit` with wit-bindgen (the guest SDK now builds against the current
//! version). The host must keep serving it unchanged.
//!
//! It reads with `select` (the 0.1.0 `field` variant) and `pod-label`, tags the record
//! with what it read (`wit = 0.1.0`, `team`, `ns`), and routes `shop` to `v01`.

#[allow(missing_docs, unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit/0.1.0/plugin.wit",
        world: "plugin",
    });
}

use bindings::exports::gannet::plugin::handler::{Container, Guest, Lifecycle, Verdict};
use bindings::gannet::plugin::types::Field;

struct Plugin;
bindings::export!(Plugin with_types_in bindings);

impl Guest for Plugin {
    fn init(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn process(_event: Lifecycle, record: &Container) -> Result<Verdict, String> {
        let selection = record.select(&[Field::Namespace, Field::PodName]);
        let namespace = span(&selection.text, selection.spans.first().copied());
        let team = record.pod_label("team").unwrap_or_default();
        record.set_tag("wit", "0.1.0");
        record.set_tag("ns", &namespace);
        record.set_tag("team", &team);
        Ok(if namespace == "shop" {
            Verdict::Route(vec!["v01".to_string()])
        } else {
            Verdict::Pass
        })
    }
}

/// The value a packed span points at in `text` (empty when absent).
fn span(text: &str, span: Option<u64>) -> String {
    match span {
        Some(span) if span != u64::MAX => {
            let start = (span >> 32) as usize;
            let len = (span & 0xffff_ffff) as usize;
            text.get(start..start + len).unwrap_or_default().to_string()
        }
        _ => String::new(),
    }
}
