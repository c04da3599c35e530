use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};

fn prepare(_config: ()) -> Result<()> {
    Ok(())
}

#[plugin(init = prepare)]
fn process(_event: Lifecycle, _record: &Container) -> Result<Verdict> {
    Ok(Verdict::Pass)
}

fn main() {}
