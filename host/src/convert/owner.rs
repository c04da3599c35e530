//! The workload that owns a pod, derived from the labels the Kubernetes controllers put on
//! their pods and from the pod's name. No API server is asked, so every answer is an
//! inference from naming conventions; `docs/record.md` states each rule.

use std::collections::BTreeMap;

use crate::record::Owner;

/// Set by the Deployment controller on its ReplicaSets' pods.
const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// Set by the StatefulSet controller: the pod's own name.
const STATEFULSET_POD_NAME: &str = "statefulset.kubernetes.io/pod-name";
/// Set by the StatefulSet and DaemonSet controllers.
const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";
/// Set by the DaemonSet controller.
const POD_TEMPLATE_GENERATION: &str = "pod-template-generation";
/// Set by the Job controller (1.27+), and its older form.
const JOB_NAME_LABELS: [&str; 2] = ["batch.kubernetes.io/job-name", "job-name"];
/// The CronJob controller names each Job `<cronjob>-<scheduled time in minutes since the
/// epoch>`: eight digits or more for any time after 1970-03-11.
const CRONJOB_SUFFIX_MIN_DIGITS: usize = 8;

/// The owner of pod `pod_name` with `labels`, by these rules, first match wins:
/// - `pod-template-hash = H` and a name `<rs>-<suffix>` where `<rs>` ends in `-H`:
///   ReplicaSet `<rs>`, Deployment `<rs>` minus `-H`;
/// - `statefulset.kubernetes.io/pod-name` equal to the pod name and `controller-revision-hash`
///   present, with a name `<sts>-<ordinal>`: StatefulSet `<sts>`;
/// - `controller-revision-hash` and `pod-template-generation`, with a name `<ds>-<suffix>`:
///   DaemonSet `<ds>`;
/// - a Job name label: Job; and when that name is `<cj>-<8+ digits>`, CronJob `<cj>`.
pub fn derive_owner(pod_name: &str, labels: &BTreeMap<String, String>) -> Owner {
    let label = |k: &str| labels.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let mut owner = Owner::default();
    if let Some(hash) = label(POD_TEMPLATE_HASH) {
        if let Some((rs, _suffix)) = pod_name.rsplit_once('-') {
            if let Some(deployment) = rs.strip_suffix(hash).and_then(|d| d.strip_suffix('-')) {
                if !deployment.is_empty() {
                    owner.replicaset = Some(rs.to_owned());
                    owner.deployment = Some(deployment.to_owned());
                }
            }
        }
        return owner;
    }
    if label(STATEFULSET_POD_NAME) == Some(pod_name) && label(CONTROLLER_REVISION_HASH).is_some() {
        if let Some((sts, ordinal)) = pod_name.rsplit_once('-') {
            if !sts.is_empty() && !ordinal.is_empty() && ordinal.bytes().all(|b| b.is_ascii_digit())
            {
                owner.statefulset = Some(sts.to_owned());
            }
        }
        return owner;
    }
    if label(CONTROLLER_REVISION_HASH).is_some() && label(POD_TEMPLATE_GENERATION).is_some() {
        if let Some((ds, suffix)) = pod_name.rsplit_once('-') {
            if !ds.is_empty() && !suffix.is_empty() {
                owner.daemonset = Some(ds.to_owned());
            }
        }
        return owner;
    }
    if let Some(job) = JOB_NAME_LABELS.iter().find_map(|k| label(k)) {
        owner.job = Some(job.to_owned());
        if let Some((cronjob, time)) = job.rsplit_once('-') {
            if !cronjob.is_empty()
                && time.len() >= CRONJOB_SUFFIX_MIN_DIGITS
                && time.bytes().all(|b| b.is_ascii_digit())
            {
                owner.cronjob = Some(cronjob.to_owned());
            }
        }
    }
    owner
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn deployment_pod_gives_replicaset_and_deployment() {
        let o = derive_owner(
            "web-7d4b9c8f6d-x2k9q",
            &labels(&[("pod-template-hash", "7d4b9c8f6d"), ("app", "web")]),
        );
        assert_eq!(o.replicaset.as_deref(), Some("web-7d4b9c8f6d"));
        assert_eq!(o.deployment.as_deref(), Some("web"));
        assert_eq!(o.statefulset, None);
    }

    #[test]
    fn deployment_name_with_dashes_keeps_them() {
        let o = derive_owner(
            "shop-api-v2-5f6b7c-abcde",
            &labels(&[("pod-template-hash", "5f6b7c")]),
        );
        assert_eq!(o.deployment.as_deref(), Some("shop-api-v2"));
    }

    #[test]
    fn template_hash_not_in_the_name_gives_nothing() {
        let o = derive_owner("renamed-pod", &labels(&[("pod-template-hash", "abc")]));
        assert_eq!(o, Owner::default());
    }

    #[test]
    fn statefulset_pod_gives_statefulset() {
        let o = derive_owner(
            "db-12",
            &labels(&[
                ("statefulset.kubernetes.io/pod-name", "db-12"),
                ("controller-revision-hash", "db-6c7d8f"),
            ]),
        );
        assert_eq!(o.statefulset.as_deref(), Some("db"));
        assert_eq!(o.daemonset, None);
    }

    #[test]
    fn statefulset_label_for_another_name_gives_nothing() {
        let o = derive_owner(
            "db-x",
            &labels(&[
                ("statefulset.kubernetes.io/pod-name", "db-x"),
                ("controller-revision-hash", "h"),
            ]),
        );
        assert_eq!(o, Owner::default());
    }

    #[test]
    fn daemonset_pod_gives_daemonset() {
        let o = derive_owner(
            "gannet-8xk2p",
            &labels(&[
                ("controller-revision-hash", "6b8f7d5c9"),
                ("pod-template-generation", "3"),
            ]),
        );
        assert_eq!(o.daemonset.as_deref(), Some("gannet"));
    }

    #[test]
    fn job_and_cronjob() {
        let o = derive_owner(
            "backup-29012345-q8w7e",
            &labels(&[("batch.kubernetes.io/job-name", "backup-29012345")]),
        );
        assert_eq!(o.job.as_deref(), Some("backup-29012345"));
        assert_eq!(o.cronjob.as_deref(), Some("backup"));
        let plain = derive_owner("migrate-abcde", &labels(&[("job-name", "migrate")]));
        assert_eq!(plain.job.as_deref(), Some("migrate"));
        assert_eq!(plain.cronjob, None);
        let short = derive_owner("x-1", &labels(&[("job-name", "x-1234")]));
        assert_eq!(
            short.cronjob, None,
            "a short number is not a scheduled time"
        );
    }

    #[test]
    fn bare_pod_has_no_owner() {
        assert_eq!(
            derive_owner("debug", &labels(&[("app", "x")])),
            Owner::default()
        );
    }
}
