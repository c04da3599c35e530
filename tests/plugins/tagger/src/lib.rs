//! A well-behaved plugin exercising accessors and mutators: tags the record with its
//! config (as JSON) and the node name, masks env vars matching `*SECRET*`, and routes or
//! drops by the container label `route` / `drop`. Also reads several annotations and env
//! vars in one call each, reads a mix of fields with one `select`, and sets tags in one
//! batch.

use gannet_guest::{log, node_name, plugin, Container, Field, Level, Lifecycle, Result, Verdict};

/// What `init` keeps for every `process` call of this instance.
struct Remembered {
    /// The sidecar's `[config]` as JSON text (`{"team":"a"}`), tagged onto every record.
    config: String,
    /// The fields the one `select` reads: record fields and map keys, some missing.
    fields: Vec<Field>,
}

/// Takes any config and keeps it as text.
fn remember(config: serde_json::Value) -> Result<Remembered> {
    log(Level::Info, "tagger ready");
    Ok(Remembered {
        config: config.to_string(),
        fields: vec![
            Field::Namespace,
            Field::Env("DB_SECRET".into()),
            Field::Tag("twice".into()),
            Field::Annotation("missing".into()),
            Field::Id,
            Field::IsSandbox,
            Field::Label("app".into()),
        ],
    })
}

/// `a,b,-`: the values in order, `-` for a missing one.
fn show(values: Vec<Option<String>>) -> String {
    values
        .into_iter()
        .map(|v| v.unwrap_or_else(|| "-".to_string()))
        .collect::<Vec<_>>()
        .join(",")
}

#[plugin(init = remember)]
fn process(event: Lifecycle, record: &mut Container, state: &Remembered) -> Result<Verdict> {
    record.set_tag("config", &state.config);
    record.set_tag("node", &node_name());
    record.set_tag("event", event.as_str());
    let namespace = record.namespace();
    record.set_tag("namespace", &namespace);
    // The several-keys reads and the batch write (a later pair with the same key wins).
    let annotations = show(record.annotation_values(&["owner".to_string(), "missing".to_string()]));
    let envs = show(record.env_values(&["HOME".to_string(), "MISSING".to_string()]));
    record.set_tags([
        ("annotations", annotations),
        ("envs", envs),
        ("twice", "first".to_string()),
        ("twice", "second".to_string()),
    ]);
    let masked = record.mask_env_matching(&["*SECRET*".to_string()], "***");
    record.set_tag("masked", &masked.to_string());
    // Many reads in one call; they see this call's own edits (the mask, the tags).
    let selection = record.select(&state.fields);
    let selected: Vec<&str> = selection.iter().map(|v| v.unwrap_or("-")).collect();
    record.set_tag("selected", &selected.join(","));
    // What gannet:plugin@0.2.0 added: the pod's IPs, its owner and the resources.
    let owner = record.owner().deployment.unwrap_or_else(|| "-".to_string());
    let cpu = record
        .resources()
        .cpu_limit_millis
        .map_or("-".to_string(), |m| m.to_string());
    let ips = record.pod_ips().join(" ");
    record.set_tag("since-0.2", &format!("{ips}|{owner}|{cpu}"));
    if record.label("drop").is_some() {
        return Ok(Verdict::Drop);
    }
    Ok(match record.label("route") {
        Some(output) => Verdict::Route(vec![output]),
        None => Verdict::Pass,
    })
}
