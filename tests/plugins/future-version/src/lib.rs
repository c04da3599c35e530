//! A component built against a `gannet:plugin` version no Gannet serves (9.0.0): the host
//! must refuse it, naming the version it wants and the versions served.

#[allow(missing_docs, unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        inline: "
            package gannet:plugin@9.0.0;
            interface handler {
                init: func(config: string) -> result<_, string>;
            }
            world plugin {
                export handler;
            }
        ",
        world: "plugin",
    });
}

struct Plugin;
bindings::export!(Plugin with_types_in bindings);

impl bindings::exports::gannet::plugin::handler::Guest for Plugin {
    fn init(_config: String) -> Result<(), String> {
        Ok(())
    }
}
