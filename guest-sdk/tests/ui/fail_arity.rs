use gannet_guest::{plugin, Container, Result, Verdict};

#[plugin]
fn process(_record: &Container) -> Result<Verdict> {
    Ok(Verdict::Pass)
}

fn main() {}
