//! A container's CPU and memory settings and its declared ports, from what CRI and the
//! runtime spec carry: `ContainerStatus.resources.linux` when the runtime reports it, else
//! the spec's `linux.resources`; ports from the kubelet's `io.kubernetes.container.ports`
//! annotation.

use serde::Deserialize;

use crate::record::{ContainerPort, Resources};
use crate::runtime::cri::LinuxResources;

/// The kubelet's annotation with the container's ports, as JSON.
pub const PORTS_ANNOTATION: &str = "io.kubernetes.container.ports";
/// The kubelet gives a container without a CPU request 2 shares, the cgroup minimum.
const MIN_CPU_SHARES: i64 = 2;
/// The unified key under which the kubelet's MemoryQoS sets the memory request.
const MEMORY_MIN: &str = "memory.min";

/// Requests and limits from `linux` (the kubelet's conversions inverted: shares are
/// `millis * 1024 / 1000`, the quota is `millis * period / 1000`).
pub fn resources_from(linux: Option<&LinuxResources>) -> Resources {
    let Some(l) = linux else {
        return Resources::default();
    };
    let positive = |v: i64| u64::try_from(v).ok().filter(|v| *v > 0);
    Resources {
        cpu_request_millis: (l.cpu_shares > MIN_CPU_SHARES)
            .then(|| positive(l.cpu_shares))
            .flatten()
            .map(|shares| (shares * 1000).div_ceil(1024)),
        cpu_limit_millis: match (positive(l.cpu_quota), positive(l.cpu_period)) {
            (Some(quota), Some(period)) => Some((quota * 1000).div_ceil(period)),
            _ => None,
        },
        memory_request_bytes: l
            .unified
            .get(MEMORY_MIN)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|v| *v > 0),
        memory_limit_bytes: positive(l.memory_limit_bytes),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KubeletPort {
    #[serde(default)]
    name: Option<String>,
    container_port: u16,
    #[serde(default)]
    protocol: Option<String>,
}

/// The ports of the kubelet's annotation value; `Err` names what is wrong with it (no
/// value is quoted).
pub fn ports_from(annotation: Option<&str>) -> Result<Vec<ContainerPort>, String> {
    let Some(text) = annotation else {
        return Ok(Vec::new());
    };
    let ports: Vec<KubeletPort> = serde_json::from_str(text).map_err(|e| {
        format!(
            "{PORTS_ANNOTATION}: not a list of ports (line {} column {})",
            e.line(),
            e.column()
        )
    })?;
    Ok(ports
        .into_iter()
        .map(|p| ContainerPort {
            name: p.name.filter(|n| !n.is_empty()),
            container_port: p.container_port,
            protocol: p
                .protocol
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "TCP".to_owned()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_conversions_are_inverted() {
        // requests.cpu 250m -> 256 shares; limits.cpu 500m -> quota 50000 of 100000.
        let r = resources_from(Some(&LinuxResources {
            cpu_period: 100_000,
            cpu_quota: 50_000,
            cpu_shares: 256,
            memory_limit_bytes: 134_217_728,
            unified: [("memory.min".to_string(), "67108864".to_string())].into(),
        }));
        assert_eq!(r.cpu_request_millis, Some(250));
        assert_eq!(r.cpu_limit_millis, Some(500));
        assert_eq!(r.memory_limit_bytes, Some(134_217_728));
        assert_eq!(r.memory_request_bytes, Some(67_108_864));
    }

    #[test]
    fn best_effort_has_no_requests_or_limits() {
        let r = resources_from(Some(&LinuxResources {
            cpu_period: 100_000,
            cpu_quota: -1,
            cpu_shares: 2,
            ..Default::default()
        }));
        assert_eq!(r, Resources::default());
        assert_eq!(resources_from(None), Resources::default());
    }

    #[test]
    fn ports_annotation_is_read() -> Result<(), String> {
        let ports = ports_from(Some(
            r#"[{"name":"http","containerPort":8080,"protocol":"TCP"},{"containerPort":53,"protocol":"UDP"}]"#,
        ))?;
        assert_eq!(ports.len(), 2);
        assert_eq!(ports[0].name.as_deref(), Some("http"));
        assert_eq!(ports[0].container_port, 8080);
        assert_eq!(ports[1].name, None);
        assert_eq!(ports[1].protocol, "UDP");
        assert_eq!(ports_from(None)?, Vec::new());
        Ok(())
    }

    #[test]
    fn bad_ports_annotation_is_named_without_its_value() {
        let e = ports_from(Some(r#"[{"containerPort":"secret-ish"}]"#))
            .err()
            .unwrap_or_default();
        assert!(e.starts_with(PORTS_ANNOTATION), "{e}");
        assert!(!e.contains("secret-ish"), "{e}");
        let too_big = ports_from(Some(r#"[{"containerPort":70000}]"#));
        assert!(too_big.is_err());
    }
}
