//! A well-behaved plugin exercising accessors and mutators: tags the record with its
//! config string and the node name, masks env vars matching `*SECRET*`, and routes or
//! drops by the container label `route` / `drop`. Also reads several annotations and env
//! vars in one call each, reads a mix of fields with one `select`, and sets tags in one
//! batch.
wit_bindgen::generate!({ path: "../../../wit", world: "plugin" });

use exports::gannet::plugin::handler::Guest;
use gannet::plugin::container::Container;
use gannet::plugin::types::{Lifecycle, Verdict};

struct Plugin;
export!(Plugin);

use gannet::plugin::host;

static mut CONFIG: String = String::new();

impl Guest for Plugin {
    fn init(config: String) -> Result<(), String> {
        #[allow(static_mut_refs)]
        unsafe {
            CONFIG = config;
        }
        host::log(gannet::plugin::types::Level::Info, "tagger ready");
        Ok(())
    }
    fn process(event: Lifecycle, record: &Container) -> Result<Verdict, String> {
        #[allow(static_mut_refs)]
        let config = unsafe { CONFIG.clone() };
        record.set_tag("config", &config);
        record.set_tag("node", &host::node_name());
        record.set_tag(
            "event",
            match event {
                Lifecycle::Added => "added",
                Lifecycle::Updated => "updated",
                Lifecycle::Removed => "removed",
            },
        );
        record.set_tag("namespace", &record.namespace());
        // The several-keys reads and the batch write, as `key=value|missing` lists.
        let show = |values: Vec<Option<String>>| {
            values
                .into_iter()
                .map(|v| v.unwrap_or_else(|| "-".to_string()))
                .collect::<Vec<_>>()
                .join(",")
        };
        let annotations =
            show(record.annotation_values(&["owner".to_string(), "missing".to_string()]));
        let envs = show(record.env_values(&["HOME".to_string(), "MISSING".to_string()]));
        record.set_tags(&[
            gannet::plugin::types::KeyValue {
                key: "annotations".into(),
                value: annotations,
            },
            gannet::plugin::types::KeyValue {
                key: "envs".into(),
                value: envs,
            },
            gannet::plugin::types::KeyValue {
                key: "twice".into(),
                value: "first".into(),
            },
            gannet::plugin::types::KeyValue {
                key: "twice".into(),
                value: "second".into(),
            },
        ]);
        let masked = record.mask_env_matching(&["*SECRET*".to_string()], "***");
        record.set_tag("masked", &masked.to_string());
        // Many reads in one call; they see this call's own edits (the mask, the tags).
        use gannet::plugin::types::Field;
        let fields = [
            Field::Namespace,
            Field::Env("DB_SECRET".into()),
            Field::Tag("twice".into()),
            Field::Annotation("missing".into()),
            Field::Id,
            Field::IsSandbox,
            Field::Label("app".into()),
        ];
        let selection = record.select(&fields);
        let selected: Vec<String> = selection
            .spans
            .iter()
            .map(|&span| {
                if span == u64::MAX {
                    return "-".to_string();
                }
                let (start, len) = ((span >> 32) as usize, (span & 0xffff_ffff) as usize);
                selection
                    .text
                    .get(start..start + len)
                    .unwrap_or("bad span")
                    .to_string()
            })
            .collect();
        record.set_tag("selected", &selected.join(","));
        if record.label("drop").is_some() {
            return Ok(Verdict::Drop);
        }
        match record.label("route") {
            Some(output) => Ok(Verdict::Route(vec![output])),
            None => Ok(Verdict::Pass),
        }
    }
}
