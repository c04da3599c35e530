use gannet_guest::{plugin, Container, Lifecycle, Verdict};

#[plugin]
fn process(_event: Lifecycle, _record: &Container) -> Verdict {
    Verdict::Pass
}

fn main() {}
