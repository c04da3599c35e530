use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};

struct Config;

#[plugin]
fn process(_event: Lifecycle, _record: &Container, _config: &mut Config) -> Result<Verdict> {
    Ok(Verdict::Pass)
}

fn main() {}
