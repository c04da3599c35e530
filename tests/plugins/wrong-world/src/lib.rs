//! A component of another world: it exports `run` and none of `gannet:plugin/handler`.
wit_bindgen::generate!({
    inline: "
        package other:thing@1.0.0;
        world other {
            export run: func() -> u32;
        }
    ",
    world: "other",
});

struct Plugin;
export!(Plugin);

impl Guest for Plugin {
    fn run() -> u32 {
        42
    }
}
