use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};

#[plugin]
fn process<T>(_event: Lifecycle, _record: &Container) -> Result<Verdict> {
    Ok(Verdict::Pass)
}

fn main() {}
