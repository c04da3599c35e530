//! A well-behaved plugin exercising accessors and mutators: tags the record with its
//! config (as JSON) and the node name, masks env vars matching `*SECRET*`, and routes or
//! drops by the container label `route` / `drop`. Also reads several annotations and env
//! vars in one call each, reads a mix of fields with one `select`, and sets tags in one
//! batch.

use gannet_guest::{
    log, node_name, plugin, Container, Field, FieldSet, Keys, Level, Lifecycle, Result, Verdict,
};

/// What `init` keeps for every `process` call of this instance.
struct Remembered {
    /// The sidecar's `[config]` as JSON text (`{"team":"a"}`), tagged onto every record.
    config: String,
    /// The fields the one `select` reads: record fields and map keys, some missing (no
    /// field repeats, so each slot is its position).
    fields: FieldSet,
    /// The env var names `env_values` reads, built once.
    envs: Keys,
}

/// Takes any config and keeps it as text.
fn remember(config: serde_json::Value) -> Result<Remembered> {
    log(Level::Info, "tagger ready");
    Ok(Remembered {
        config: config.to_string(),
        fields: FieldSet::from_iter([
            Field::Namespace,
            Field::env("DB_SECRET"),
            Field::tag("twice"),
            Field::annotation("missing"),
            Field::Id,
            Field::IsSandbox,
            Field::label("app"),
        ]),
        envs: Keys::new(["HOME", "MISSING"]),
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
    // An ad-hoc `&str` list (copied for the call) and a `Keys` built once.
    let annotations = show(record.annotation_values(&["owner", "missing"]));
    let envs = show(record.env_values(&state.envs));
    record.set_tags([
        ("annotations", annotations),
        ("envs", envs),
        ("twice", "first".to_string()),
        ("twice", "second".to_string()),
    ]);
    let masked = record.mask_env_matching(&["*SECRET*".to_string()], "***"); // a `[String; 1]`
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
