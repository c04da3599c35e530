use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};

#[plugin]
async fn process(_event: Lifecycle, _record: &Container) -> Result<Verdict> {
    Ok(Verdict::Pass)
}

fn main() {}
