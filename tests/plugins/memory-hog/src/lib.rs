//! Allocates without bound in `process`: only the memory limit stops it.

use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};

#[plugin]
fn process(_event: Lifecycle, _record: &Container) -> Result<Verdict> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
    }
}
