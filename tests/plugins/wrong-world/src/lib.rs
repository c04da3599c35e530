//! A component of another world: it exports `run` and none of `gannet:plugin/handler`.
//!
//! Malformed on purpose, so it cannot use the guest SDK (which always exports the Gannet
//! world): it uses wit-bindgen directly, with a world of its own.

#[allow(missing_docs, unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        inline: "
            package other:thing@1.0.0;
            world other {
                export run: func() -> u32;
            }
        ",
        world: "other",
    });
}

struct Plugin;
bindings::export!(Plugin with_types_in bindings);

impl bindings::Guest for Plugin {
    fn run() -> u32 {
        42
    }
}
