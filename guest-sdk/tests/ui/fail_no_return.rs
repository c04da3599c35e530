use gannet_guest::{plugin, Container, Lifecycle};

#[plugin]
fn process(_event: Lifecycle, _record: &Container) {}

fn main() {}
