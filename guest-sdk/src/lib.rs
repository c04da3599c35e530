//! The Gannet guest SDK: write a Gannet plugin in a few lines of Rust.
//!
//! A Gannet plugin is a WebAssembly component that sees every container record the agent
//! discovers and decides what becomes of it: pass it on (perhaps with new tags or masked
//! env vars), drop it, or route it to named outputs. This crate owns the typed API a
//! plugin author uses ([`Container`], [`Lifecycle`], [`Verdict`], [`log`], [`node_name`])
//! and the [`plugin`] attribute that exports a function as the plugin. It hands everything
//! else to the host through the `gannet:plugin@0.2.0` WIT contract (`wit/plugin.wit`).
//!
//! ```
//! use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};
//! use serde::Deserialize;
//!
//! /// Keeps only the namespaces listed in the sidecar's `[config]`.
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config {
//!     namespaces: Vec<String>,
//! }
//!
//! #[plugin]
//! fn process(_event: Lifecycle, record: &mut Container, config: &Config) -> Result<Verdict> {
//!     let namespace = record.namespace();
//!     if config.namespaces.contains(&namespace) {
//!         record.set_tag("kept-by", "namespace-filter");
//!         Ok(Verdict::Pass)
//!     } else {
//!         Ok(Verdict::Drop)
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! Build with `cargo build --target wasm32-wasip2 --release`; the `.wasm` in
//! `target/wasm32-wasip2/release/` is the plugin. On the host target (`cargo test`) the
//! same code compiles against [`testing::MockContainer`], so plugin logic is unit-tested
//! without wasm.
//!
//! Plugins are stateless: the host may replace an instance at any time (after a trap, a
//! deadline or a reload) and runs `init` again on the new one. Keep nothing between calls
//! that you could not rebuild from the config.

mod container;
mod error;
mod host;
mod keys;
mod selection;
mod types;

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

#[doc(hidden)]
pub mod __private;

/// The wit-bindgen output for `gannet:plugin@0.2.0` (`wit/plugin.wit`). Not part of the API: use the typed
/// wrappers at the crate root.
#[allow(unsafe_code, missing_docs, clippy::all)]
#[doc(hidden)]
pub mod wit {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../wit/plugin.wit",
        pub_export_macro: true,
        export_macro_name: "__export_plugin",
        default_bindings_module: "gannet_guest::wit",
    });
}

/// The SDK's name and version, as stamped into every plugin built with it.
pub const SDK_STAMP: &str = concat!("gannet-guest ", env!("CARGO_PKG_VERSION"));

/// `SDK_STAMP` as a fixed-size array, for the custom section.
#[cfg(target_arch = "wasm32")]
const fn stamp_bytes<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// The custom section `gannet-sdk` of every plugin built with this SDK: the SDK's version,
/// which `gannet plugin check` shows, so an operator can tell which SDK built a plugin.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
#[used]
#[link_section = "gannet-sdk"]
static SDK_STAMP_SECTION: [u8; SDK_STAMP.len()] = stamp_bytes(SDK_STAMP);

pub use container::Container;
pub use error::{Context, Error, Result};
pub use host::{log, node_name};
pub use keys::{KeyList, KeyStr, Keys};
pub use selection::{Field, FieldList, FieldSet, Selection, Slot};
pub use types::{ContainerState, Level, Lifecycle, Mount, Owner, Port, Resources, Verdict};

/// Exports a function as the plugin's `process`, with typed config checked once in `init`.
///
/// The function must look like one of these (names are free, types are not):
///
/// ```text
/// fn process(event: Lifecycle, record: &mut Container) -> Result<Verdict>
/// fn process(event: Lifecycle, record: &mut Container, config: &Config) -> Result<Verdict>
/// ```
///
/// `record` may also be `&Container` when the plugin only reads. `Config` is any type
/// that implements `serde::Deserialize`: the host hands the sidecar's `[config]` table to
/// `init` as JSON, the SDK parses it once per instance, and a bad config is refused
/// (the plugin is not loaded and the operator sees serde's message, which names the
/// field). Without a config parameter, the plugin refuses any non-empty config.
///
/// When the config needs work before use (compiling regexes, say), name a function that
/// turns the parsed config into the state `process` receives:
///
/// ```
/// use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct Config { prefix: String }
///
/// struct Prefix { lower: String }
///
/// fn prepare(config: Config) -> Result<Prefix> {
///     if config.prefix.is_empty() {
///         gannet_guest::bail!("config `prefix` is empty; give a pod name prefix");
///     }
///     Ok(Prefix { lower: config.prefix.to_lowercase() })
/// }
///
/// #[plugin(init = prepare)]
/// fn process(_event: Lifecycle, record: &Container, state: &Prefix) -> Result<Verdict> {
///     Ok(if record.pod_name().starts_with(&state.lower) { Verdict::Pass } else { Verdict::Drop })
/// }
/// # fn main() {}
/// ```
///
/// A signature that breaks these rules is a compile error at the offending part, and the
/// message states the rule. The generated glue never panics: a config that does not parse
/// and a `process` error both become the WIT `err`, which the host logs and counts.
pub use gannet_guest_macro::plugin;

/// Returns early from a plugin function with an [`Error`] built like `format!`.
///
/// ```
/// fn check(port: u32) -> gannet_guest::Result<u32> {
///     if port == 0 {
///         gannet_guest::bail!("port {port} is not valid; use 1-65535");
///     }
///     Ok(port)
/// }
/// assert!(check(0).is_err());
/// assert_eq!(check(80).ok(), Some(80));
/// ```
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return ::core::result::Result::Err($crate::Error::msg(::std::format!($($arg)*)))
    };
}
