//! Reading many values in one host call: [`Field`] names a value, [`FieldSet`] is the list
//! a plugin builds once (each field answering by its [`Slot`]), [`Selection`] holds what
//! one [`Container::select`](crate::Container::select) call read.
//!
//! Owns the typed view of the WIT `selection`: every value arrives in one string with a
//! byte range per field, so reading ten values costs one call into the host and two
//! allocations, not ten of each.

use std::borrow::Cow;

use crate::wit::gannet::plugin::types as wit;

/// The packed span of a field the record has no value for.
const ABSENT: u64 = u64::MAX;

/// Defines [`Field`], its conversion to the WIT `field` and (for tests) back, from one
/// list: the record's own fields, then (after `;`) the keyed ones with the name of their
/// constructor, then (after `;`) the fields `gannet:plugin@0.2.0` added. The conversion
/// back matches every WIT case, so a case the WIT adds and `Field` lacks fails to compile
/// (the tests).
macro_rules! fields {
    (
        $(#[$meta:meta])*
        pub enum Field {
            $( $(#[$plain_doc:meta])* $plain:ident, )*
            ;
            $( $(#[$keyed_doc:meta])* $keyed:ident($ctor:ident), )*
            ;
            $( $(#[$new_doc:meta])* $new:ident, )*
        }
    ) => {
        $(#[$meta])*
        pub enum Field {
            $( $(#[$plain_doc])* $plain, )*
            $( $(#[$keyed_doc])* $keyed(String), )*
            $( $(#[$new_doc])* $new, )*
        }

        impl Field {
            $(
                #[doc = concat!("`Field::", stringify!($keyed), "(key.into())`.")]
                pub fn $ctor(key: impl Into<String>) -> Self {
                    Self::$keyed(key.into())
                }
            )*

            /// The key, for a field that is one key of one of the record's maps.
            ///
            /// ```
            /// use gannet_guest::Field;
            /// assert_eq!(Field::pod_label("team").key(), Some("team"));
            /// assert_eq!(Field::Namespace.key(), None);
            /// ```
            pub fn key(&self) -> Option<&str> {
                match self {
                    $( Self::$keyed(key) => Some(key), )*
                    $( Self::$plain )|* $( | Self::$new )* => None,
                }
            }

            /// The WIT `field` this is, for the host.
            pub(crate) fn into_wit(self) -> wit::Field {
                match self {
                    $( Self::$plain => wit::Field::$plain, )*
                    $( Self::$keyed(key) => wit::Field::$keyed(key), )*
                    $( Self::$new => wit::Field::$new, )*
                }
            }

            /// The `Field` a WIT `field` is: the inverse of `into_wit`.
            #[cfg(test)]
            fn from_wit(field: wit::Field) -> Self {
                match field {
                    $( wit::Field::$plain => Self::$plain, )*
                    $( wit::Field::$keyed(key) => Self::$keyed(key), )*
                    $( wit::Field::$new => Self::$new, )*
                }
            }
        }
    };
}

fields! {
    /// One value [`Container::select`](crate::Container::select) can read: a field of the
    /// record (`Field::Namespace`) or one key of one of its maps (`Field::pod_label("app")`,
    /// which is `Field::PodLabel("app".into())`). Every value comes back as text: numbers
    /// in decimal, `IsSandbox` as `true`/`false`, `State` as its name (`running`), times in
    /// RFC 3339.
    ///
    /// The cases are those of the WIT `field` variant of `gannet:plugin@0.2.0`
    /// (`wit/plugin.wit`), in its order. The SDK's own type, not the generated one, so it
    /// compares (`==`), hashes and may gain cases (`#[non_exhaustive]`: a `match` on it
    /// needs a `_` arm). It becomes the WIT type when a [`FieldSet`] adds it, once: build the
    /// set in your `init` function and `select` hands it to the host with no conversion.
    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    #[non_exhaustive]
    pub enum Field {
        /// Full container id.
        Id,
        /// Container name from the runtime.
        Name,
        /// Current state: `created`, `running`, `exited` or `unknown`.
        State,
        /// Host pid of the container's process (`0` when it has none).
        Pid,
        /// Creation time.
        Created,
        /// Start time.
        Started,
        /// Finish time.
        Finished,
        /// Exit code, once exited.
        ExitCode,
        /// The runtime's reason for the exit.
        Reason,
        /// The kubelet's restart count.
        RestartCount,
        /// The pod sandbox id.
        SandboxId,
        /// Runtime name.
        RuntimeName,
        /// Snapshotter.
        Snapshotter,
        /// Image name.
        Image,
        /// Image reference or digest.
        ImageDigest,
        /// Host path of the container's log file.
        LogPath,
        /// Log file format.
        LogFormat,
        /// Cgroup path.
        CgroupPath,
        /// Host path of the container's `/etc/hosts`.
        HostsPath,
        /// Host path of the container's `/etc/hostname`.
        HostnamePath,
        /// The container's hostname.
        Hostname,
        /// Overlay upper directory.
        UpperDir,
        /// The container's root filesystem on the host.
        RootfsDir,
        /// Kubernetes namespace.
        Namespace,
        /// Pod name.
        PodName,
        /// Pod uid.
        PodUid,
        /// Container name within the pod.
        ContainerName,
        /// `true` for the pod's sandbox (pause) container, else `false`.
        IsSandbox,
        ;
        /// One container label, by key: `Field::label("...")`.
        Label(label),
        /// One pod label, by key: `Field::pod_label("...")`.
        PodLabel(pod_label),
        /// One container annotation, by key: `Field::annotation("...")`.
        Annotation(annotation),
        /// One pod annotation, by key: `Field::pod_annotation("...")`.
        PodAnnotation(pod_annotation),
        /// One env var, by name: `Field::env("...")`.
        Env(env),
        /// One tag, by key: `Field::tag("...")`.
        Tag(tag),
        ;
        /// The pod's first IP. Since `gannet:plugin@0.2.0`.
        PodIp,
        /// When the pod started on this node. Since `gannet:plugin@0.2.0`.
        PodStartTime,
        /// The ReplicaSet that owns the pod. Since `gannet:plugin@0.2.0`.
        ReplicasetName,
        /// The Deployment that owns the pod. Since `gannet:plugin@0.2.0`.
        DeploymentName,
        /// The StatefulSet that owns the pod. Since `gannet:plugin@0.2.0`.
        StatefulsetName,
        /// The DaemonSet that owns the pod. Since `gannet:plugin@0.2.0`.
        DaemonsetName,
        /// The Job that owns the pod. Since `gannet:plugin@0.2.0`.
        JobName,
        /// The CronJob that owns the pod. Since `gannet:plugin@0.2.0`.
        CronjobName,
        /// CPU request in millicores. Since `gannet:plugin@0.2.0`.
        CpuRequestMillis,
        /// CPU limit in millicores. Since `gannet:plugin@0.2.0`.
        CpuLimitMillis,
        /// Memory request in bytes. Since `gannet:plugin@0.2.0`.
        MemoryRequestBytes,
        /// Memory limit in bytes. Since `gannet:plugin@0.2.0`.
        MemoryLimitBytes,
    }
}

/// The fields one [`Container::select`](crate::Container::select) reads, built once (in
/// your `init` function): [`add`](Self::add) hands back the [`Slot`] where that field's
/// value will be in every [`Selection`], so there are no positions to keep track of, and
/// a field added twice is read once. Each field becomes the WIT type as it is added, so
/// `select(&fields)` hands the list to the host as it is, with no conversion or copy.
///
/// ```
/// # use gannet_guest::testing::MockContainer;
/// use gannet_guest::{Field, FieldSet};
///
/// let mut fields = FieldSet::new();
/// let namespace = fields.add(Field::Namespace);
/// let team = fields.add(Field::pod_label("team"));
/// assert_eq!(fields.add(Field::Namespace), namespace); // already there: same slot
///
/// let record = gannet_guest::Container::from(
///     MockContainer::new().namespace("shop").pod_label("team", "payments"),
/// );
/// let values = record.select(&fields);
/// assert_eq!(values.at(namespace), Some("shop"));
/// assert_eq!(values.at(team), Some("payments"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct FieldSet {
    /// The fields, in slot order: what `add` compares against.
    fields: Vec<Field>,
    /// The same fields as the WIT type, in the same order: what `select` hands the host.
    wit: Vec<wit::Field>,
}

/// Where one field of a [`FieldSet`] is in each [`Selection`] read with that set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot(usize);

impl FieldSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `field` (unless it is already in the set) and returns its slot.
    pub fn add(&mut self, field: Field) -> Slot {
        if let Some(index) = self.fields.iter().position(|f| *f == field) {
            return Slot(index);
        }
        self.wit.push(field.clone().into_wit());
        self.fields.push(field);
        Slot(self.fields.len() - 1)
    }

    /// The fields, in slot order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// How many fields the set reads.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when the set reads nothing.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl AsRef<[Field]> for FieldSet {
    fn as_ref(&self) -> &[Field] {
        &self.fields
    }
}

impl FromIterator<Field> for FieldSet {
    /// The set of these fields; a field listed twice is read once (so a slot is not
    /// always the field's position in the list: keep the slots `add` returns for that).
    fn from_iter<I: IntoIterator<Item = Field>>(fields: I) -> Self {
        let mut set = Self::new();
        for field in fields {
            set.add(field);
        }
        set
    }
}

/// What [`Container::select`](crate::Container::select) takes: a [`FieldSet`], handed to
/// the host as it is, or a list of [`Field`]s (`Vec<Field>`, `[Field; N]`, `[Field]`, or a
/// reference to one), which is converted to the WIT type on every call (one copy of each
/// key). Sealed.
pub trait FieldList: sealed::Sealed {
    /// The fields as the WIT binding takes them.
    #[doc(hidden)]
    fn wit_fields(&self) -> Cow<'_, [wit::Field]>;
}

mod sealed {
    pub trait Sealed {}
}

/// The WIT form of an ad-hoc list, made for one call.
fn converted(fields: &[Field]) -> Cow<'static, [wit::Field]> {
    Cow::Owned(fields.iter().cloned().map(Field::into_wit).collect())
}

impl sealed::Sealed for FieldSet {}
impl FieldList for FieldSet {
    fn wit_fields(&self) -> Cow<'_, [wit::Field]> {
        Cow::Borrowed(&self.wit)
    }
}

impl sealed::Sealed for [Field] {}
impl FieldList for [Field] {
    fn wit_fields(&self) -> Cow<'_, [wit::Field]> {
        converted(self)
    }
}

impl<const N: usize> sealed::Sealed for [Field; N] {}
impl<const N: usize> FieldList for [Field; N] {
    fn wit_fields(&self) -> Cow<'_, [wit::Field]> {
        converted(self)
    }
}

impl sealed::Sealed for Vec<Field> {}
impl FieldList for Vec<Field> {
    fn wit_fields(&self) -> Cow<'_, [wit::Field]> {
        converted(self)
    }
}

impl<T: FieldList + ?Sized> sealed::Sealed for &T {}
impl<T: FieldList + ?Sized> FieldList for &T {
    fn wit_fields(&self) -> Cow<'_, [wit::Field]> {
        (**self).wit_fields()
    }
}

/// The values one [`Container::select`](crate::Container::select) call read, in the order
/// of the fields asked for.
///
/// ```
/// # use gannet_guest::testing::MockContainer;
/// use gannet_guest::Field;
/// let record = gannet_guest::Container::from(
///     MockContainer::new().namespace("shop").pod_label("app", "web"),
/// );
/// // An ad-hoc list, converted for this one call; a `FieldSet` is converted once.
/// let fields = [Field::Namespace, Field::pod_label("app"), Field::pod_label("tier")];
/// let values = record.select(&fields);
/// assert_eq!(values.get(0), Some("shop"));
/// assert_eq!(values.get(1), Some("web"));
/// assert_eq!(values.get(2), None); // no such label
/// assert_eq!(values.iter().collect::<Vec<_>>(), [Some("shop"), Some("web"), None]);
/// ```
#[derive(Debug, Clone)]
pub struct Selection(wit::Selection);

impl Selection {
    pub(crate) fn from_wit(selection: wit::Selection) -> Self {
        Self(selection)
    }

    /// The value of the `index`th field asked for; `None` when the record has no such
    /// value (or there was no `index`th field).
    pub fn get(&self, index: usize) -> Option<&str> {
        let span = *self.0.spans.get(index)?;
        if span == ABSENT {
            return None;
        }
        let start = usize::try_from(span >> 32).ok()?;
        let end = start.checked_add(usize::try_from(span & 0xffff_ffff).ok()?)?;
        self.0.text.get(start..end)
    }

    /// The value of the field at `slot` of the [`FieldSet`] this was read with; `None`
    /// when the record has no such value.
    pub fn at(&self, slot: Slot) -> Option<&str> {
        self.get(slot.0)
    }

    /// How many fields were asked for.
    pub fn len(&self) -> usize {
        self.0.spans.len()
    }

    /// True when no field was asked for.
    pub fn is_empty(&self) -> bool {
        self.0.spans.is_empty()
    }

    /// Every value, in the order of the fields asked for.
    pub fn iter(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// `PodLabel("k")` -> `pod-label`: the kebab-case WIT name of a `Field`'s case, from its
/// `Debug` form (the SDK's or the generated one). For the tests of both.
#[cfg(test)]
pub(crate) fn case_name(debug: &str) -> String {
    let variant = debug.strip_prefix("Field::").unwrap_or(debug);
    let mut name = String::new();
    for c in variant.split('(').next().unwrap_or_default().chars() {
        if c.is_ascii_uppercase() && !name.is_empty() {
            name.push('-');
        }
        name.push(c.to_ascii_lowercase());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::MockContainer;
    use crate::Container;

    #[test]
    fn a_set_keeps_one_slot_per_distinct_field() {
        let mut set = FieldSet::new();
        let a = set.add(Field::pod_label("a"));
        let b = set.add(Field::PodLabel("b".into()));
        let ns = set.add(Field::Namespace);
        assert_eq!(set.add(Field::PodLabel("a".into())), a);
        assert_ne!(set.add(Field::label("a")), a);
        assert_eq!(set.add(Field::Namespace), ns);
        assert_ne!(set.add(Field::env("a")), set.add(Field::tag("a")));
        assert_eq!(set.add(Field::tag("a")), Slot(5));
        assert_eq!((a, b, ns), (Slot(0), Slot(1), Slot(2)));
        assert_eq!(set.len(), 6);
        // The WIT list `select` hands over is the curated one, converted, slot for slot.
        let back: Vec<Field> = set.wit.iter().cloned().map(Field::from_wit).collect();
        assert_eq!(back, set.fields());
        assert!(matches!(set.wit_fields(), Cow::Borrowed(_)));
    }

    #[test]
    fn a_set_with_repeats_reads_each_slot_right() {
        let record = Container::from(
            MockContainer::new()
                .namespace("shop")
                .pod_label("a", "pl")
                .label("a", "l"),
        );
        let set: FieldSet = [
            Field::pod_label("a"),
            Field::Namespace,
            Field::pod_label("a"),
            Field::label("a"),
        ]
        .into_iter()
        .collect();
        assert_eq!(set.len(), 3);
        let values = record.select(&set);
        assert_eq!(
            values.iter().collect::<Vec<_>>(),
            [Some("pl"), Some("shop"), Some("l")]
        );
        // A plain list reads by position, repeats included, converted for the call.
        let list = vec![
            Field::pod_label("a"),
            Field::Namespace,
            Field::pod_label("a"),
        ];
        assert!(matches!(list.wit_fields(), Cow::Owned(_)));
        let values = record.select(&list);
        assert_eq!(
            values.iter().collect::<Vec<_>>(),
            [Some("pl"), Some("shop"), Some("pl")]
        );
    }

    #[test]
    fn every_field_converts_to_the_wit_case_of_its_name() {
        // Every case, in the order of the WIT `field` variant; each key differs.
        let all = [
            Field::Id,
            Field::Name,
            Field::State,
            Field::Pid,
            Field::Created,
            Field::Started,
            Field::Finished,
            Field::ExitCode,
            Field::Reason,
            Field::RestartCount,
            Field::SandboxId,
            Field::RuntimeName,
            Field::Snapshotter,
            Field::Image,
            Field::ImageDigest,
            Field::LogPath,
            Field::LogFormat,
            Field::CgroupPath,
            Field::HostsPath,
            Field::HostnamePath,
            Field::Hostname,
            Field::UpperDir,
            Field::RootfsDir,
            Field::Namespace,
            Field::PodName,
            Field::PodUid,
            Field::ContainerName,
            Field::IsSandbox,
            Field::label("k-label"),
            Field::pod_label("k-pod-label"),
            Field::annotation("k-annotation"),
            Field::pod_annotation("k-pod-annotation"),
            Field::env("k-env"),
            Field::tag("k-tag"),
            Field::PodIp,
            Field::PodStartTime,
            Field::ReplicasetName,
            Field::DeploymentName,
            Field::StatefulsetName,
            Field::DaemonsetName,
            Field::JobName,
            Field::CronjobName,
            Field::CpuRequestMillis,
            Field::CpuLimitMillis,
            Field::MemoryRequestBytes,
            Field::MemoryLimitBytes,
        ];
        let names: Vec<String> = all.iter().map(|f| case_name(&format!("{f:?}"))).collect();
        assert_eq!(
            names,
            gannet_record::Field::NAMES,
            "every WIT case, once, in order"
        );
        let converted = all.clone().wit_fields().into_owned();
        for (field, wit) in all.into_iter().zip(converted) {
            let name = case_name(&format!("{field:?}"));
            assert_eq!(case_name(&format!("{wit:?}")), name, "{field:?} -> {wit:?}");
            let key = field.key().map(str::to_string);
            if let Some(key) = &key {
                assert_eq!(*key, format!("k-{name}"), "the constructor's key");
            }
            let want = gannet_record::Field::from_name(&name, key.as_deref().unwrap_or("-"));
            assert_eq!(
                Some(gannet_record::Field::from(wit.clone())),
                want,
                "{name}"
            );
            assert_eq!(Field::from_wit(wit), field, "{name} round trip");
        }
    }

    #[test]
    fn ranges_that_do_not_fit_the_text_read_as_missing() {
        let selection = Selection::from_wit(wit::Selection {
            text: "abc".into(),
            spans: vec![1 << 32 | 2, 2 << 32 | 5, u64::MAX - 1, ABSENT],
        });
        assert_eq!(selection.len(), 4);
        assert_eq!(selection.get(0), Some("bc"));
        assert_eq!(selection.get(1), None);
        assert_eq!(selection.get(2), None);
        assert_eq!(selection.get(3), None);
        assert_eq!(selection.get(4), None);
    }

    #[test]
    fn packing_keeps_order_and_empty_values() -> Result<(), gannet_record::AnswerTooLarge> {
        // Packed by the host's own code.
        let mut record = gannet_record::ContainerRecord::default();
        record.tags.insert("a".into(), "a".into());
        record.tags.insert("e".into(), String::new());
        record.tags.insert("bc".into(), "bc".into());
        let fields = ["a", "none", "e", "bc"].map(|k| gannet_record::Field::Tag(k.into()));
        let gannet_record::Selection { text, spans } =
            gannet_record::select(&record, &fields, usize::MAX)?;
        let selection = Selection::from_wit(wit::Selection { text, spans });
        assert_eq!(
            selection.iter().collect::<Vec<_>>(),
            [Some("a"), None, Some(""), Some("bc")]
        );
        assert!(!selection.is_empty());
        Ok(())
    }
}
