//! The `gannet:plugin` versions served side by side: which one a component was built
//! against, its pre-instantiated bindings, and calls to its `handler` exports.
//!
//! Owns the only code that differs per version on the export side: everything past here
//! (instances, the chain) sees one [`Bindings`] type and one [`Verdict`]. The imports of
//! every version are implemented once, in `imports`, and all are in the one linker,
//! so a chain may mix plugins of different versions.

use wasmtime::component::HasSelf;
use wasmtime::component::{InstancePre, Linker, Resource};
use wasmtime::Store;

use super::host_state::HostState;
use super::wit::{v0_1, v0_2, ContainerHandle, SERVED_VERSIONS};
use crate::record::Lifecycle;

/// A `gannet:plugin` version the host serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WitVersion {
    /// `gannet:plugin@0.1.0`.
    V0_1,
    /// `gannet:plugin@0.2.0` (current).
    V0_2,
}

impl WitVersion {
    /// The served version `version` names (`0.2.0`), if it is one.
    pub fn served(version: &str) -> Option<Self> {
        match version {
            "0.1.0" => Some(Self::V0_1),
            "0.2.0" => Some(Self::V0_2),
            _ => None,
        }
    }

    /// The version as written in WIT (`0.2.0`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V0_1 => SERVED_VERSIONS[0],
            Self::V0_2 => SERVED_VERSIONS[1],
        }
    }
}

/// What `process` returned on `ok`, whatever the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `pass`.
    Pass,
    /// `drop`.
    Drop,
    /// `route(outputs)`.
    Route(Vec<String>),
}

/// Adds the imports of every served version to `linker`.
///
/// # Errors
/// wasmtime's error when a definition clashes.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v0_1::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    v0_2::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    Ok(())
}

/// A component's `handler` exports, checked against its version, ready to instantiate.
#[derive(Clone)]
pub enum BindingsPre {
    /// Built against 0.1.0.
    V0_1(v0_1::PluginPre<HostState>),
    /// Built against 0.2.0.
    V0_2(v0_2::PluginPre<HostState>),
}

impl BindingsPre {
    /// Checks the exports of `pre` against `version`'s world.
    ///
    /// # Errors
    /// wasmtime's reason when the exports do not match.
    pub fn new(version: WitVersion, pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        Ok(match version {
            WitVersion::V0_1 => Self::V0_1(v0_1::PluginPre::new(pre)?),
            WitVersion::V0_2 => Self::V0_2(v0_2::PluginPre::new(pre)?),
        })
    }

    /// Instantiates the component in `store`.
    ///
    /// # Errors
    /// A trap in its start functions, or a limit hit.
    pub fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Bindings> {
        Ok(match self {
            Self::V0_1(pre) => Bindings::V0_1(pre.instantiate(store)?),
            Self::V0_2(pre) => Bindings::V0_2(pre.instantiate(store)?),
        })
    }
}

/// An instantiated component's `handler` exports.
pub enum Bindings {
    /// Built against 0.1.0.
    V0_1(v0_1::Plugin),
    /// Built against 0.2.0.
    V0_2(v0_2::Plugin),
}

impl Bindings {
    /// Calls `init(config)`.
    ///
    /// # Errors
    /// A trap (deadline, memory limit, or the guest's own).
    pub fn call_init(
        &self,
        store: &mut Store<HostState>,
        config: &str,
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            Self::V0_1(b) => b.gannet_plugin_handler().call_init(store, config),
            Self::V0_2(b) => b.gannet_plugin_handler().call_init(store, config),
        }
    }

    /// Calls `process(event, record)`.
    ///
    /// # Errors
    /// A trap (deadline, memory limit, or the guest's own).
    pub fn call_process(
        &self,
        store: &mut Store<HostState>,
        event: Lifecycle,
        record: Resource<ContainerHandle>,
    ) -> wasmtime::Result<Result<Verdict, String>> {
        /// One version's `process` call: the same code over that version's types.
        macro_rules! process {
            ($bindings:expr, $version:ident) => {{
                use $version::gannet::plugin::types::{Lifecycle as L, Verdict as V};
                let event = match event {
                    Lifecycle::Added => L::Added,
                    Lifecycle::Updated => L::Updated,
                    Lifecycle::Removed => L::Removed,
                };
                let handler = $bindings.gannet_plugin_handler();
                let result = handler.call_process(store, event, record)?;
                Ok(result.map(|verdict| match verdict {
                    V::Pass => Verdict::Pass,
                    V::Drop => Verdict::Drop,
                    V::Route(outputs) => Verdict::Route(outputs),
                }))
            }};
        }
        match self {
            Self::V0_1(b) => process!(b, v0_1),
            Self::V0_2(b) => process!(b, v0_2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_version_names_itself() {
        for version in SERVED_VERSIONS {
            let served = WitVersion::served(version);
            assert_eq!(served.map(WitVersion::as_str), Some(*version));
        }
        assert_eq!(WitVersion::served("0.3.0"), None);
        assert_eq!(WitVersion::served("1.0.0"), None);
    }
}
