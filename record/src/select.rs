//! The `select` accessor: many values of the record in one host call.
//!
//! Owns [`Field`] (the names of the values one can read, in the order of the WIT `field`
//! variant), reading a field from a record ([`value`]) and packing the answer as one string
//! plus byte ranges ([`select`]), so the guest pays two allocations for the whole answer
//! instead of one per value (each allocation is a call back into the guest). Also owns
//! [`AnswerTooLarge`], the bound on what any read may make the host build.

use std::borrow::Cow;

use crate::record::ContainerRecord;

/// The span of a field the record has no value for.
pub const ABSENT: u64 = u64::MAX;

/// Why the host refuses to answer a read: the values asked for would not fit the
/// plugin's memory (a plugin asking for the same value a million times).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{accessor}: the values come to more than {limit} bytes, more than the plugin's memory could take")]
pub struct AnswerTooLarge {
    /// The accessor that was called.
    pub accessor: &'static str,
    /// The most bytes the values may come to.
    pub limit: usize,
}

/// Defines [`Field`], its table of WIT names and [`from_wit_field!`](crate::from_wit_field)
/// from one list: the record's own fields of `gannet:plugin@0.1.0`, then (after `;`) its
/// keyed ones, then (after `; since 0.2.0:`) the fields that version added, each with its
/// WIT case name. `$d` is a `$`, so the generated macro can have metavariables.
macro_rules! fields {
    (
        $d:tt
        $(#[$meta:meta])*
        pub enum Field {
            $( $(#[$plain_doc:meta])* $plain:ident = $plain_name:literal, )*
            ;
            $( $(#[$keyed_doc:meta])* $keyed:ident(String) = $keyed_name:literal, )*
            ; since 0.2.0:
            $( $(#[$new_doc:meta])* $new:ident = $new_name:literal, )*
        }
    ) => {
        $(#[$meta])*
        pub enum Field {
            $( $(#[$plain_doc])* $plain, )*
            $( $(#[$keyed_doc])* $keyed(String), )*
            $( $(#[$new_doc])* $new, )*
        }

        impl Field {
            /// The WIT case name of every field, in the order of the WIT `field` variant
            /// of the current version: the record's own fields, the keyed ones, then the
            /// fields added since 0.1.0.
            pub const NAMES: &'static [&'static str] =
                &[$($plain_name,)* $($keyed_name,)* $($new_name,)*];

            /// The WIT case names of `gannet:plugin@0.1.0`'s `field` variant, in order.
            pub const NAMES_0_1: &'static [&'static str] = &[$($plain_name,)* $($keyed_name,)*];

            /// The WIT case name of this field (`pod-label` for `Field::PodLabel(_)`).
            pub fn name(&self) -> &'static str {
                match self {
                    $( Self::$plain => $plain_name, )*
                    $( Self::$keyed(_) => $keyed_name, )*
                    $( Self::$new => $new_name, )*
                }
            }

            /// The field whose WIT case name is `name`, with `key` as its key when it is
            /// one key of a map (`key` is ignored otherwise); `None` for an unknown name.
            pub fn from_name(name: &str, key: &str) -> Option<Self> {
                match name {
                    $( $plain_name => Some(Self::$plain), )*
                    $( $keyed_name => Some(Self::$keyed(key.to_string())), )*
                    $( $new_name => Some(Self::$new), )*
                    _ => None,
                }
            }

            /// The key, for a field that is one key of one of the record's maps.
            pub fn key(&self) -> Option<&str> {
                match self {
                    $( Self::$plain => None, )*
                    $( Self::$new => None, )*
                    $( Self::$keyed(key) => Some(key), )*
                }
            }
        }

        /// `impl From<W> for gannet_record::Field`, for the WIT `field` variant `W` that a
        /// WIT binding generator made (the host's and the guest SDK's each make their own
        /// type): of the current version, or with `; 0.1.0` of `gannet:plugin@0.1.0`. A
        /// case missing on either side fails to compile.
        #[doc(hidden)]
        #[macro_export]
        macro_rules! from_wit_field {
            ($d($d wit:ident)::+) => {
                impl ::core::convert::From<$d($d wit)::+> for $crate::Field {
                    fn from(field: $d($d wit)::+) -> Self {
                        use $d($d wit)::+ as Wit;
                        match field {
                            $( Wit::$plain => Self::$plain, )*
                            $( Wit::$keyed(key) => Self::$keyed(key), )*
                            $( Wit::$new => Self::$new, )*
                        }
                    }
                }
            };
            ($d($d wit:ident)::+ ; 0.1.0) => {
                impl ::core::convert::From<$d($d wit)::+> for $crate::Field {
                    fn from(field: $d($d wit)::+) -> Self {
                        use $d($d wit)::+ as Wit;
                        match field {
                            $( Wit::$plain => Self::$plain, )*
                            $( Wit::$keyed(key) => Self::$keyed(key), )*
                        }
                    }
                }
            };
        }
    };
}

fields! {
    $
    /// One value [`select`] can read: a field of the record, or one key of one of its maps.
    /// Every value comes back as text: numbers in decimal, `IsSandbox` as `true` or
    /// `false`, `State` as its name (`running`), times in RFC 3339.
    ///
    /// The cases are those of the WIT `field` variant (`wit/plugin.wit`), in its order;
    /// a test checks [`Field::NAMES`] against the WIT file.
    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    pub enum Field {
        /// Full container id.
        Id = "id",
        /// Container name from the runtime.
        Name = "name",
        /// Current state: `created`, `running`, `exited` or `unknown`.
        State = "state",
        /// Host pid of the container's process (`0` when it has none).
        Pid = "pid",
        /// Creation time.
        Created = "created",
        /// Start time.
        Started = "started",
        /// Finish time.
        Finished = "finished",
        /// Exit code, once exited.
        ExitCode = "exit-code",
        /// The runtime's reason for the exit.
        Reason = "reason",
        /// The kubelet's restart count.
        RestartCount = "restart-count",
        /// The pod sandbox id.
        SandboxId = "sandbox-id",
        /// Runtime name.
        RuntimeName = "runtime-name",
        /// Snapshotter.
        Snapshotter = "snapshotter",
        /// Image name.
        Image = "image",
        /// Image reference or digest.
        ImageDigest = "image-digest",
        /// Host path of the container's log file.
        LogPath = "log-path",
        /// Log file format.
        LogFormat = "log-format",
        /// Cgroup path.
        CgroupPath = "cgroup-path",
        /// Host path of the container's `/etc/hosts`.
        HostsPath = "hosts-path",
        /// Host path of the container's `/etc/hostname`.
        HostnamePath = "hostname-path",
        /// The container's hostname.
        Hostname = "hostname",
        /// Overlay upper directory.
        UpperDir = "upper-dir",
        /// The container's root filesystem on the host.
        RootfsDir = "rootfs-dir",
        /// Kubernetes namespace.
        Namespace = "namespace",
        /// Pod name.
        PodName = "pod-name",
        /// Pod uid.
        PodUid = "pod-uid",
        /// Container name within the pod.
        ContainerName = "container-name",
        /// `true` for the pod's sandbox (pause) container, else `false`.
        IsSandbox = "is-sandbox",
        ;
        /// One container label.
        Label(String) = "label",
        /// One pod label.
        PodLabel(String) = "pod-label",
        /// One container annotation.
        Annotation(String) = "annotation",
        /// One pod annotation.
        PodAnnotation(String) = "pod-annotation",
        /// One env var.
        Env(String) = "env",
        /// One tag.
        Tag(String) = "tag",
        ; since 0.2.0:
        /// The pod's first IP.
        PodIp = "pod-ip",
        /// When the pod started on this node.
        PodStartTime = "pod-start-time",
        /// The ReplicaSet that owns the pod.
        ReplicasetName = "replicaset-name",
        /// The Deployment that owns the pod.
        DeploymentName = "deployment-name",
        /// The StatefulSet that owns the pod.
        StatefulsetName = "statefulset-name",
        /// The DaemonSet that owns the pod.
        DaemonsetName = "daemonset-name",
        /// The Job that owns the pod.
        JobName = "job-name",
        /// The CronJob that owns the pod.
        CronjobName = "cronjob-name",
        /// CPU request in millicores.
        CpuRequestMillis = "cpu-request-millis",
        /// CPU limit in millicores.
        CpuLimitMillis = "cpu-limit-millis",
        /// Memory request in bytes.
        MemoryRequestBytes = "memory-request-bytes",
        /// Memory limit in bytes.
        MemoryLimitBytes = "memory-limit-bytes",
    }
}

/// What [`select`] read: every value found, back to back in one string, and for each field
/// asked for (in order) where its value lies in that string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// The values, concatenated.
    pub text: String,
    /// One entry per field asked for: the value's byte range in `text` packed as
    /// `start << 32 | len`, or [`ABSENT`] when the record has no such value.
    pub spans: Vec<u64>,
}

/// The value of `field` in `record` as text, or `None` when the record has none.
///
/// This is what `select` packs and what each single-value accessor answers, written out
/// as text.
pub fn value<'r>(record: &'r ContainerRecord, field: &Field) -> Option<Cow<'r, str>> {
    let text = |s: &'r String| Some(Cow::Borrowed(s.as_str()));
    let maybe = |s: &'r Option<String>| s.as_deref().map(Cow::Borrowed);
    let number = |n: Option<u64>| n.map(|n| Cow::Owned(n.to_string()));
    match field {
        Field::Id => text(&record.id),
        Field::Name => text(&record.name),
        Field::State => Some(Cow::Borrowed(record.state.as_str())),
        Field::Pid => Some(Cow::Owned(record.pid.to_string())),
        Field::Created => record.created.map(|t| Cow::Owned(t.to_string())),
        Field::Started => record.started.map(|t| Cow::Owned(t.to_string())),
        Field::Finished => record.finished.map(|t| Cow::Owned(t.to_string())),
        Field::ExitCode => record.exit_code.map(|c| Cow::Owned(c.to_string())),
        Field::Reason => maybe(&record.reason),
        Field::RestartCount => Some(Cow::Owned(record.restart_count.to_string())),
        Field::SandboxId => text(&record.sandbox_id),
        Field::RuntimeName => text(&record.runtime_name),
        Field::Snapshotter => maybe(&record.snapshotter),
        Field::Image => text(&record.image),
        Field::ImageDigest => maybe(&record.image_digest),
        Field::LogPath => text(&record.log_path),
        Field::LogFormat => text(&record.log_format),
        Field::CgroupPath => maybe(&record.cgroup_path),
        Field::HostsPath => maybe(&record.hosts_path),
        Field::HostnamePath => maybe(&record.hostname_path),
        Field::Hostname => maybe(&record.hostname),
        Field::UpperDir => maybe(&record.upper_dir),
        Field::RootfsDir => maybe(&record.rootfs_dir),
        Field::Namespace => text(&record.k8s.namespace),
        Field::PodName => text(&record.k8s.pod_name),
        Field::PodUid => text(&record.k8s.pod_uid),
        Field::ContainerName => text(&record.k8s.container_name),
        Field::IsSandbox => Some(Cow::Borrowed(if record.k8s.is_sandbox {
            "true"
        } else {
            "false"
        })),
        Field::Label(key) => record.labels.get(key).and_then(text),
        Field::PodLabel(key) => record.k8s.pod_labels.get(key).and_then(text),
        Field::Annotation(key) => record.annotations.get(key).and_then(text),
        Field::PodAnnotation(key) => record.k8s.pod_annotations.get(key).and_then(text),
        Field::Env(name) => record.env.get(name).and_then(text),
        Field::Tag(key) => record.tags.get(key).and_then(text),
        Field::PodIp => record.k8s.pod_ips.first().and_then(text),
        Field::PodStartTime => record.k8s.pod_start_time.map(|t| Cow::Owned(t.to_string())),
        Field::ReplicasetName => maybe(&record.k8s.owner.replicaset),
        Field::DeploymentName => maybe(&record.k8s.owner.deployment),
        Field::StatefulsetName => maybe(&record.k8s.owner.statefulset),
        Field::DaemonsetName => maybe(&record.k8s.owner.daemonset),
        Field::JobName => maybe(&record.k8s.owner.job),
        Field::CronjobName => maybe(&record.k8s.owner.cronjob),
        Field::CpuRequestMillis => number(record.resources.cpu_request_millis),
        Field::CpuLimitMillis => number(record.resources.cpu_limit_millis),
        Field::MemoryRequestBytes => number(record.resources.memory_request_bytes),
        Field::MemoryLimitBytes => number(record.resources.memory_limit_bytes),
    }
}

/// The values of `fields` in `record`, packed: one string and a range per field.
///
/// `max_bytes` bounds what the host builds: a plugin asking for the same large field a
/// million times gets an error (a trap) instead of making the agent allocate for it. Pass
/// the plugin's memory limit: the answer could not be copied into its memory anyway.
///
/// # Errors
/// [`AnswerTooLarge`] when the values come to more than `max_bytes` (or 4 GiB, the
/// reach of the WIT type's 32-bit ranges).
pub fn select(
    record: &ContainerRecord,
    fields: &[Field],
    max_bytes: usize,
) -> Result<Selection, AnswerTooLarge> {
    let limit = max_bytes.min(u32::MAX as usize);
    let too_large = AnswerTooLarge {
        accessor: "select",
        limit,
    };
    let mut text = String::with_capacity((32 * fields.len()).min(limit));
    let mut spans = Vec::with_capacity(fields.len());
    for field in fields {
        let span = match value(record, field) {
            Some(value) => {
                if text.len() + value.len() > limit {
                    return Err(too_large);
                }
                let start = u32::try_from(text.len()).map_err(|_| too_large.clone())?;
                let len = u32::try_from(value.len()).map_err(|_| too_large.clone())?;
                text.push_str(&value);
                u64::from(start) << 32 | u64::from(len)
            }
            None => ABSENT,
        };
        spans.push(span);
    }
    Ok(Selection { text, spans })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ContainerState;

    /// The value a span points at, as the guest SDK reads it.
    fn at(selection: &Selection, i: usize) -> Option<&str> {
        let span = *selection.spans.get(i)?;
        if span == ABSENT {
            return None;
        }
        let start = (span >> 32) as usize;
        selection
            .text
            .get(start..start + (span & 0xffff_ffff) as usize)
    }

    #[test]
    fn fields_of_every_kind_are_packed_in_order() -> Result<(), AnswerTooLarge> {
        let mut r = ContainerRecord {
            id: "abc".into(),
            state: ContainerState::Running,
            pid: 42,
            exit_code: None,
            ..Default::default()
        };
        r.k8s.namespace = "shop".into();
        r.k8s.pod_labels.insert("app".into(), "web".into());
        r.env.insert("EMPTY".into(), String::new());
        r.tags.insert("team".into(), "payments".into());
        let fields = [
            Field::Namespace,
            Field::PodLabel("app".into()),
            Field::PodLabel("missing".into()),
            Field::Env("EMPTY".into()),
            Field::Pid,
            Field::State,
            Field::IsSandbox,
            Field::ExitCode,
            Field::Tag("team".into()),
            Field::Id,
        ];
        let s = select(&r, &fields, usize::MAX)?;
        assert_eq!(s.spans.len(), fields.len());
        let got: Vec<Option<&str>> = (0..fields.len()).map(|i| at(&s, i)).collect();
        assert_eq!(
            got,
            vec![
                Some("shop"),
                Some("web"),
                None,
                Some(""),
                Some("42"),
                Some("running"),
                Some("false"),
                None,
                Some("payments"),
                Some("abc"),
            ]
        );
        assert_eq!(s.text, "shopweb42runningfalsepaymentsabc");
        Ok(())
    }

    #[test]
    fn a_request_beyond_the_limit_is_refused_before_it_is_built() {
        let r = ContainerRecord {
            image: "x".repeat(100),
            ..Default::default()
        };
        let fields = vec![Field::Image; 1000];
        assert!(select(&r, &fields, 100_000).is_ok());
        let refused = select(&r, &fields, 99_999).err().map(|e| e.limit);
        assert_eq!(refused, Some(99_999));
    }

    #[test]
    fn the_fields_added_in_0_2_read_pod_owner_and_resources() -> Result<(), AnswerTooLarge> {
        let mut r = ContainerRecord::default();
        r.k8s.pod_ips = vec!["10.1.0.7".into(), "fd00::7".into()];
        r.k8s.owner.deployment = Some("web".into());
        r.resources.cpu_limit_millis = Some(500);
        let fields = [
            Field::PodIp,
            Field::DeploymentName,
            Field::StatefulsetName,
            Field::CpuLimitMillis,
            Field::MemoryLimitBytes,
            Field::PodStartTime,
        ];
        let s = select(&r, &fields, usize::MAX)?;
        let got: Vec<Option<&str>> = (0..fields.len()).map(|i| at(&s, i)).collect();
        assert_eq!(
            got,
            vec![Some("10.1.0.7"), Some("web"), None, Some("500"), None, None]
        );
        Ok(())
    }

    #[test]
    fn an_empty_request_gets_an_empty_answer() -> Result<(), AnswerTooLarge> {
        let s = select(&ContainerRecord::default(), &[], usize::MAX)?;
        assert!(s.text.is_empty() && s.spans.is_empty());
        Ok(())
    }

    #[test]
    fn field_names_are_those_of_the_wit_variant_in_order() {
        let wit = include_str!("../../wit/plugin.wit");
        let cases = crate::wit_names::cases(wit, "variant field");
        assert_eq!(
            cases,
            Field::NAMES,
            "wit/plugin.wit `variant field` vs Field"
        );
        let wit = include_str!("../../wit/0.1.0/plugin.wit");
        let cases = crate::wit_names::cases(wit, "variant field");
        assert_eq!(
            cases,
            Field::NAMES_0_1,
            "wit/0.1.0/plugin.wit `variant field` vs Field"
        );
    }

    #[test]
    fn every_name_makes_the_field_of_that_name() {
        for name in Field::NAMES {
            let field = Field::from_name(name, "k");
            assert_eq!(field.as_ref().map(Field::name), Some(*name));
            let keyed = field.as_ref().and_then(Field::key).is_some();
            assert_eq!(keyed, field.as_ref().is_some_and(|f| f.key() == Some("k")));
        }
        assert_eq!(Field::from_name("no-such-field", "k"), None);
        assert_eq!(
            Field::from_name("pod-label", "app"),
            Some(Field::PodLabel("app".into()))
        );
    }
}
