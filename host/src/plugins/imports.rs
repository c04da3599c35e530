//! The host imports of every served WIT version: the `types`, `host` and `container`
//! interfaces, implemented once (`serve_imports!`) over each version's generated types,
//! on [`HostState`]. A newer version only adds methods; every method reads and edits the
//! same lent record the same way in every version.

use std::collections::BTreeMap;

use wasmtime::component::Resource;

use super::host_state::HostState;
use super::select;
use super::undo::EditableMap;
use super::wit::ContainerHandle;
use crate::record::ContainerState;

/// The handle every `container` method gets.
pub(super) type Handle = Resource<ContainerHandle>;
/// What every host method returns: a `wasmtime::Error` traps the guest.
pub(super) type R<T> = wasmtime::Result<T>;

/// The `types`, `host` and `container` imports of one served WIT version, in a module
/// `$module`, for the bindings module `$version` of `wit`. Every version reads and edits
/// the same record the same way, so each method is written once, here, over that
/// version's generated types; `{ ... }` holds the methods only that version has.
macro_rules! serve_imports {
    ($module:ident, $version:ident { $($extra:tt)* }) => {
        mod $module {
            use super::*;
            use crate::plugins::wit::$version::gannet::plugin::{container, host, types};

            /// Every key/value of a map, in key order.
            fn key_values(map: &BTreeMap<String, String>) -> Vec<types::KeyValue> {
                map.iter()
                    .map(|(k, v)| types::KeyValue {
                        key: k.clone(),
                        value: v.clone(),
                    })
                    .collect()
            }

            fn to_wit_state(state: ContainerState) -> types::ContainerState {
                match state {
                    ContainerState::Created => types::ContainerState::Created,
                    ContainerState::Running => types::ContainerState::Running,
                    ContainerState::Exited => types::ContainerState::Exited,
                    ContainerState::Unknown => types::ContainerState::Unknown,
                }
            }


            impl types::Host for HostState {}
            impl container::Host for HostState {}

            impl host::Host for HostState {
                fn log(&mut self, level: types::Level, message: String) -> R<()> {
                    let level = match level {
                        types::Level::Trace => tracing::Level::TRACE,
                        types::Level::Debug => tracing::Level::DEBUG,
                        types::Level::Info => tracing::Level::INFO,
                        types::Level::Warn => tracing::Level::WARN,
                        types::Level::Error => tracing::Level::ERROR,
                    };
                    self.context.log_line(level, &message);
                    Ok(())
                }

                fn node_name(&mut self) -> R<String> {
                    Ok(self.context.node_name.to_string())
                }
            }

            impl container::HostContainer for HostState {
                fn id(&mut self, h: Handle) -> R<String> {
                    Ok(self.check(&h)?.id.clone())
                }
                fn name(&mut self, h: Handle) -> R<String> {
                    Ok(self.check(&h)?.name.clone())
                }
                fn state(&mut self, h: Handle) -> R<types::ContainerState> {
                    Ok(to_wit_state(self.check(&h)?.state))
                }
                fn pid(&mut self, h: Handle) -> R<u32> {
                    Ok(self.check(&h)?.pid)
                }
                fn created(&mut self, h: Handle) -> R<Option<String>> {
                    Ok(self.check(&h)?.created.map(|t| t.to_string()))
                }
                fn started(&mut self, h: Handle) -> R<Option<String>> {
                    Ok(self.check(&h)?.started.map(|t| t.to_string()))
                }
                fn finished(&mut self, h: Handle) -> R<Option<String>> {
                    Ok(self.check(&h)?.finished.map(|t| t.to_string()))
                }
                fn exit_code(&mut self, h: Handle) -> R<Option<i32>> {
                    Ok(self.check(&h)?.exit_code)
                }
                fn reason(&mut self, h: Handle) -> R<Option<String>> {
                    Ok(self.check(&h)?.reason.clone())
                }
                fn restart_count(&mut self, h: Handle) -> R<u32> {
                    Ok(self.check(&h)?.restart_count)
                }
                fn sandbox_id(&mut self, h: Handle) -> R<String> {
                    Ok(self.check(&h)?.sandbox_id.clone())
                }
                fn runtime_name(&mut self, h: Handle) -> R<String> {
                    Ok(self.check(&h)?.runtime_name.clone())
                }
                fn snapshotter(&mut self, h: Handle) -> R<Option<String>> {
                    Ok(self.check(&h)?.snapshotter.clone())
                }
                fn image(&mut self, h: Handle) -> R<String> {
                    Ok(self.check(&h)?.image.clone())
                }
                fn image_digest(&mut self, h: Handle) -> R<Option<String>> {
                    Ok(self.check(&h)?.image_digest.clone())
                }
                fn log_path(&mut self, h: Handle) -> R<String> {
                    Ok(self.check(&h)?.log_path.clone())
                }
                fn log_format(&mut self, h: Handle) -> R<String> {
                    Ok(self.check(&h)?.log_format.clone())
                }
                fn cgroup_path(&mut self, h: Handle) -> R<Option<String>> {
                    Ok(self.check(&h)?.cgroup_path.clone())
                }
                fn hosts_path(&mut self, h: Handle) -> R<Option<String>> {
                    Ok(self.check(&h)?.hosts_path.clone())
                }
                fn hostname_path(&mut self, h: Handle) -> R<Option<String>> {
                    Ok(self.check(&h)?.hostname_path.clone())
                }
                fn hostname(&mut self, h: Handle) -> R<Option<String>> {
                    Ok(self.check(&h)?.hostname.clone())
                }
                fn upper_dir(&mut self, h: Handle) -> R<Option<String>> {
                    Ok(self.check(&h)?.upper_dir.clone())
                }
                fn rootfs_dir(&mut self, h: Handle) -> R<Option<String>> {
                    Ok(self.check(&h)?.rootfs_dir.clone())
                }
                fn namespace(&mut self, h: Handle) -> R<String> {
                    Ok(self.check(&h)?.k8s.namespace.clone())
                }
                fn pod_name(&mut self, h: Handle) -> R<String> {
                    Ok(self.check(&h)?.k8s.pod_name.clone())
                }
                fn pod_uid(&mut self, h: Handle) -> R<String> {
                    Ok(self.check(&h)?.k8s.pod_uid.clone())
                }
                fn container_name(&mut self, h: Handle) -> R<String> {
                    Ok(self.check(&h)?.k8s.container_name.clone())
                }
                fn is_sandbox(&mut self, h: Handle) -> R<bool> {
                    Ok(self.check(&h)?.k8s.is_sandbox)
                }

                fn select(&mut self, h: Handle, fields: Vec<types::Field>) -> R<types::Selection> {
                    let max_bytes = self.answer_limit();
                    let gannet_record::Selection { text, spans } =
                        select::select(self.check(&h)?, fields, max_bytes)?;
                    Ok(types::Selection { text, spans })
                }

                fn label(&mut self, h: Handle, key: String) -> R<Option<String>> {
                    Ok(self.check(&h)?.labels.get(&key).cloned())
                }
                fn label_values(&mut self, h: Handle, keys: Vec<String>) -> R<Vec<Option<String>>> {
                    self.bounded_values(&h, &keys, "label-values", |r| &r.labels)
                }
                fn labels(&mut self, h: Handle) -> R<Vec<types::KeyValue>> {
                    Ok(key_values(&self.check(&h)?.labels))
                }
                fn pod_label(&mut self, h: Handle, key: String) -> R<Option<String>> {
                    Ok(self.check(&h)?.k8s.pod_labels.get(&key).cloned())
                }
                fn pod_label_values(&mut self, h: Handle, keys: Vec<String>) -> R<Vec<Option<String>>> {
                    self.bounded_values(&h, &keys, "pod-label-values", |r| &r.k8s.pod_labels)
                }
                fn pod_labels(&mut self, h: Handle) -> R<Vec<types::KeyValue>> {
                    Ok(key_values(&self.check(&h)?.k8s.pod_labels))
                }
                fn annotation(&mut self, h: Handle, key: String) -> R<Option<String>> {
                    Ok(self.check(&h)?.annotations.get(&key).cloned())
                }
                fn annotation_values(&mut self, h: Handle, keys: Vec<String>) -> R<Vec<Option<String>>> {
                    self.bounded_values(&h, &keys, "annotation-values", |r| &r.annotations)
                }
                fn annotations(&mut self, h: Handle) -> R<Vec<types::KeyValue>> {
                    Ok(key_values(&self.check(&h)?.annotations))
                }
                fn pod_annotation(&mut self, h: Handle, key: String) -> R<Option<String>> {
                    Ok(self.check(&h)?.k8s.pod_annotations.get(&key).cloned())
                }
                fn pod_annotation_values(&mut self, h: Handle, keys: Vec<String>) -> R<Vec<Option<String>>> {
                    self.bounded_values(&h, &keys, "pod-annotation-values", |r| {
                        &r.k8s.pod_annotations
                    })
                }
                fn pod_annotations(&mut self, h: Handle) -> R<Vec<types::KeyValue>> {
                    Ok(key_values(&self.check(&h)?.k8s.pod_annotations))
                }
                fn env(&mut self, h: Handle, name: String) -> R<Option<String>> {
                    Ok(self.check(&h)?.env.get(&name).cloned())
                }
                fn env_values(&mut self, h: Handle, names: Vec<String>) -> R<Vec<Option<String>>> {
                    self.bounded_values(&h, &names, "env-values", |r| &r.env)
                }
                fn env_names(&mut self, h: Handle) -> R<Vec<String>> {
                    Ok(self.check(&h)?.env.keys().cloned().collect())
                }
                fn env_matching(&mut self, h: Handle, patterns: Vec<String>) -> R<Vec<types::KeyValue>> {
                    self.prepare_globs(&h, &patterns)?;
                    Ok(self
                        .record
                        .env
                        .iter()
                        .filter(|(k, _)| self.globs.is_match(k))
                        .map(|(k, v)| types::KeyValue {
                            key: k.clone(),
                            value: v.clone(),
                        })
                        .collect())
                }
                fn envs(&mut self, h: Handle) -> R<Vec<types::KeyValue>> {
                    Ok(key_values(&self.check(&h)?.env))
                }
                fn mounts(&mut self, h: Handle) -> R<Vec<types::Mount>> {
                    Ok(self
                        .check(&h)?
                        .mounts
                        .iter()
                        .map(|m| types::Mount {
                            source: m.source.clone(),
                            destination: m.destination.clone(),
                            kind: m.kind.clone(),
                        })
                        .collect())
                }
                fn tag(&mut self, h: Handle, key: String) -> R<Option<String>> {
                    Ok(self.check(&h)?.tags.get(&key).cloned())
                }
                fn tags(&mut self, h: Handle) -> R<Vec<types::KeyValue>> {
                    Ok(key_values(&self.check(&h)?.tags))
                }
                fn to_json(&mut self, h: Handle) -> R<String> {
                    Ok(serde_json::to_string(self.check(&h)?)?)
                }

                fn set_tag(&mut self, h: Handle, key: String, value: String) -> R<()> {
                    let (record, undo) = self.edit(&h)?;
                    undo.set(record, EditableMap::Tags, key, value);
                    Ok(())
                }
                fn set_tags(&mut self, h: Handle, tags: Vec<types::KeyValue>) -> R<()> {
                    let (record, undo) = self.edit(&h)?;
                    for types::KeyValue { key, value } in tags {
                        undo.set(record, EditableMap::Tags, key, value);
                    }
                    Ok(())
                }
                fn remove_tag(&mut self, h: Handle, key: String) -> R<bool> {
                    let (record, undo) = self.edit(&h)?;
                    Ok(undo.remove(record, EditableMap::Tags, &key))
                }
                fn set_label(&mut self, h: Handle, key: String, value: String) -> R<()> {
                    let (record, undo) = self.edit(&h)?;
                    undo.set(record, EditableMap::Labels, key, value);
                    Ok(())
                }
                fn remove_label(&mut self, h: Handle, key: String) -> R<bool> {
                    let (record, undo) = self.edit(&h)?;
                    Ok(undo.remove(record, EditableMap::Labels, &key))
                }
                fn remove_env(&mut self, h: Handle, name: String) -> R<bool> {
                    let (record, undo) = self.edit(&h)?;
                    Ok(undo.remove(record, EditableMap::Env, &name))
                }
                fn mask_env(&mut self, h: Handle, name: String, mask: String) -> R<bool> {
                    let (record, undo) = self.edit(&h)?;
                    Ok(undo.replace(record, EditableMap::Env, &name, &mask))
                }
                fn remove_env_matching(&mut self, h: Handle, patterns: Vec<String>) -> R<u32> {
                    self.prepare_globs(&h, &patterns)?;
                    let globs = &self.globs;
                    Ok(self
                        .undo
                        .remove_matching(&mut self.record, EditableMap::Env, |k| globs.is_match(k)))
                }
                fn mask_env_matching(&mut self, h: Handle, patterns: Vec<String>, mask: String) -> R<u32> {
                    self.prepare_globs(&h, &patterns)?;
                    let globs = &self.globs;
                    Ok(self.undo.replace_matching(
                        &mut self.record,
                        EditableMap::Env,
                        |k| globs.is_match(k),
                        &mask,
                    ))
                }

                fn drop(&mut self, h: Handle) -> R<()> {
                    // The host owns the record; dropping a handle only frees its table slot.
                    self.table.delete(h)?;
                    Ok(())
                }

            $($extra)*
            }
        }
    };
}

serve_imports!(serve_0_1, v0_1 {});

serve_imports!(serve_0_2, v0_2 {
    fn pod_start_time(&mut self, h: Handle) -> R<Option<String>> {
        Ok(self.check(&h)?.k8s.pod_start_time.map(|t| t.to_string()))
    }
    fn pod_ips(&mut self, h: Handle) -> R<Vec<String>> {
        Ok(self.check(&h)?.k8s.pod_ips.clone())
    }
    fn owner(&mut self, h: Handle) -> R<types::Owner> {
        let o = &self.check(&h)?.k8s.owner;
        Ok(types::Owner {
            replicaset: o.replicaset.clone(),
            deployment: o.deployment.clone(),
            statefulset: o.statefulset.clone(),
            daemonset: o.daemonset.clone(),
            job: o.job.clone(),
            cronjob: o.cronjob.clone(),
        })
    }
    fn resources(&mut self, h: Handle) -> R<types::Resources> {
        let r = &self.check(&h)?.resources;
        Ok(types::Resources {
            cpu_request_millis: r.cpu_request_millis,
            cpu_limit_millis: r.cpu_limit_millis,
            memory_request_bytes: r.memory_request_bytes,
            memory_limit_bytes: r.memory_limit_bytes,
        })
    }
    fn ports(&mut self, h: Handle) -> R<Vec<types::Port>> {
        Ok(self
            .check(&h)?
            .ports
            .iter()
            .map(|p| types::Port {
                name: p.name.clone(),
                container_port: p.container_port,
                protocol: p.protocol.clone(),
            })
            .collect())
    }
});
