use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};

#[plugin]
fn process(_event: Lifecycle, record: &Container) -> Result<Verdict> {
    Ok(if record.is_sandbox() { Verdict::Drop } else { Verdict::Pass })
}

fn main() {}
