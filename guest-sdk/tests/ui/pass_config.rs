use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    tag: String,
}

#[plugin]
fn process(_event: Lifecycle, record: &mut Container, config: &Config) -> Result<Verdict> {
    let pod = record.pod_name();
    record.set_tag(&config.tag, &pod);
    Ok(Verdict::Pass)
}

fn main() {}
