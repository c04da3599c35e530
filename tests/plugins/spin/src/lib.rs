//! Loops forever in `process`: only the deadline stops it.

use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};

#[plugin]
fn process(_event: Lifecycle, _record: &Container) -> Result<Verdict> {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}
