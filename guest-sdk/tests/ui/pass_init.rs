use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};

#[derive(serde::Deserialize)]
struct Config {
    limit: u32,
}

struct State {
    limit: u32,
}

fn prepare(config: Config) -> Result<State> {
    if config.limit == 0 {
        gannet_guest::bail!("limit must be positive");
    }
    Ok(State { limit: config.limit })
}

#[plugin(init = prepare)]
fn process(_event: Lifecycle, record: &Container, state: &State) -> Result<Verdict> {
    Ok(if record.restart_count() > state.limit { Verdict::Drop } else { Verdict::Pass })
}

fn main() {}
