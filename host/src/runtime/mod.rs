//! The clients of the container runtime, all on its one unix socket: CRI ([`cri`]: the
//! containers and pods, versions negotiated, every call with a timeout), containerd's
//! native API ([`containerd`]: upper dirs, sandbox kinds, the event subscription), the
//! native event stream turned into nudges for discovery ([`events`]), and the metrics of
//! every call ([`metrics`]). Nothing here builds a record or decides a container's state:
//! discovery does, from what these clients return.

pub mod containerd;
pub mod cri;
pub mod events;
pub mod metrics;
