//! The host side of the `select` accessor: the generated WIT `field` types of every served
//! version to `gannet_record`'s.
//!
//! Owns only the conversions. What each field reads and how the answer is packed (one
//! string plus byte ranges) live in `gannet_record::select`, which the guest SDK's test
//! mock runs too, so a plugin's unit tests see what the agent answers.

use gannet_record::{AnswerTooLarge, Field};

use super::wit::{v0_1, v0_2};
use crate::record::ContainerRecord;

gannet_record::from_wit_field!(v0_1::gannet::plugin::types::Field; 0.1.0);
gannet_record::from_wit_field!(v0_2::gannet::plugin::types::Field);

/// The values of `fields` (the `field` type of any served version) in `record`, packed:
/// see [`gannet_record::select`]. The fields' keys move into the crate's type; nothing is
/// copied.
///
/// # Errors
/// [`AnswerTooLarge`] when the values come to more than `max_bytes`.
pub fn select<F: Into<Field>>(
    record: &ContainerRecord,
    fields: Vec<F>,
    max_bytes: usize,
) -> Result<gannet_record::Selection, AnswerTooLarge> {
    let fields: Vec<Field> = fields.into_iter().map(Into::into).collect();
    gannet_record::select(record, &fields, max_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use v0_2::gannet::plugin::types;

    /// The WIT case of `field`: the inverse of the `From` above, written out separately.
    fn to_wit(field: &Field) -> types::Field {
        use types::Field as Wit;
        match field.clone() {
            Field::Id => Wit::Id,
            Field::Name => Wit::Name,
            Field::State => Wit::State,
            Field::Pid => Wit::Pid,
            Field::Created => Wit::Created,
            Field::Started => Wit::Started,
            Field::Finished => Wit::Finished,
            Field::ExitCode => Wit::ExitCode,
            Field::Reason => Wit::Reason,
            Field::RestartCount => Wit::RestartCount,
            Field::SandboxId => Wit::SandboxId,
            Field::RuntimeName => Wit::RuntimeName,
            Field::Snapshotter => Wit::Snapshotter,
            Field::Image => Wit::Image,
            Field::ImageDigest => Wit::ImageDigest,
            Field::LogPath => Wit::LogPath,
            Field::LogFormat => Wit::LogFormat,
            Field::CgroupPath => Wit::CgroupPath,
            Field::HostsPath => Wit::HostsPath,
            Field::HostnamePath => Wit::HostnamePath,
            Field::Hostname => Wit::Hostname,
            Field::UpperDir => Wit::UpperDir,
            Field::RootfsDir => Wit::RootfsDir,
            Field::Namespace => Wit::Namespace,
            Field::PodName => Wit::PodName,
            Field::PodUid => Wit::PodUid,
            Field::ContainerName => Wit::ContainerName,
            Field::IsSandbox => Wit::IsSandbox,
            Field::Label(key) => Wit::Label(key),
            Field::PodLabel(key) => Wit::PodLabel(key),
            Field::Annotation(key) => Wit::Annotation(key),
            Field::PodAnnotation(key) => Wit::PodAnnotation(key),
            Field::Env(name) => Wit::Env(name),
            Field::Tag(key) => Wit::Tag(key),
            Field::PodIp => Wit::PodIp,
            Field::PodStartTime => Wit::PodStartTime,
            Field::ReplicasetName => Wit::ReplicasetName,
            Field::DeploymentName => Wit::DeploymentName,
            Field::StatefulsetName => Wit::StatefulsetName,
            Field::DaemonsetName => Wit::DaemonsetName,
            Field::JobName => Wit::JobName,
            Field::CronjobName => Wit::CronjobName,
            Field::CpuRequestMillis => Wit::CpuRequestMillis,
            Field::CpuLimitMillis => Wit::CpuLimitMillis,
            Field::MemoryRequestBytes => Wit::MemoryRequestBytes,
            Field::MemoryLimitBytes => Wit::MemoryLimitBytes,
        }
    }

    /// The WIT case name of a generated `Field`, from its `Debug` form
    /// (`Field::PodLabel("k")` is `pod-label`).
    fn case_name(field: &types::Field) -> String {
        let debug = format!("{field:?}");
        let variant = debug.strip_prefix("Field::").unwrap_or(&debug);
        let variant = variant.split('(').next().unwrap_or_default();
        let mut name = String::new();
        for c in variant.chars() {
            if c.is_ascii_uppercase() && !name.is_empty() {
                name.push('-');
            }
            name.push(c.to_ascii_lowercase());
        }
        name
    }

    #[test]
    fn every_wit_field_maps_to_the_crate_field_of_its_name_and_back() {
        let cases = gannet_record::wit_names::cases(
            include_str!("../../../wit/plugin.wit"),
            "variant field",
        );
        assert_eq!(cases.len(), Field::NAMES.len(), "{cases:?}");
        for name in &cases {
            let field = Field::from_name(name, "k");
            assert!(
                field.is_some(),
                "WIT field `{name}` has no gannet_record::Field"
            );
            let Some(field) = field else { continue };
            let wit = to_wit(&field);
            assert_eq!(case_name(&wit), *name, "the generated case of `{name}`");
            assert_eq!(Field::from(wit), field, "`{name}` there and back");
        }
    }

    #[test]
    fn select_converts_the_generated_types() -> Result<(), AnswerTooLarge> {
        let mut record = ContainerRecord::default();
        record.k8s.namespace = "shop".into();
        record.env.insert("LEVEL".into(), "debug".into());
        let fields = vec![
            types::Field::Namespace,
            types::Field::Env("LEVEL".into()),
            types::Field::Tag("none".into()),
        ];
        let s = select(&record, fields, usize::MAX)?;
        assert_eq!(s.text, "shopdebug");
        assert_eq!(s.spans, [4, 4 << 32 | 5, gannet_record::ABSENT]);
        Ok(())
    }
}
