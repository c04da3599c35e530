//! The container's env as the record shows it: `KEY=VALUE` entries, minus the variables
//! Kubernetes service links inject.

use std::collections::BTreeMap;

/// True for a variable that Kubernetes service links inject, by its exact shape:
/// `KUBERNETES_*`; `X_SERVICE_HOST`, `X_SERVICE_PORT`, `X_SERVICE_PORT_*`; `X_PORT` whose
/// value is a `tcp://`, `udp://` or `sctp://` URL; `X_PORT_<n>_<PROTO>` and its `_PROTO`,
/// `_PORT` and `_ADDR` forms. Look-alikes such as `APP_PORT=8080` are kept.
pub fn is_service_link_env(name: &str, value: &str) -> bool {
    if name.starts_with("KUBERNETES_") {
        return true;
    }
    for suffix in ["_SERVICE_HOST", "_SERVICE_PORT"] {
        if let Some(prefix) = name.strip_suffix(suffix) {
            if is_env_service_name(prefix) {
                return true;
            }
        }
    }
    for (at, _) in name.match_indices("_SERVICE_PORT_") {
        let (prefix, port_name) = (&name[..at], &name[at + "_SERVICE_PORT_".len()..]);
        if is_env_service_name(prefix) && is_env_service_name(port_name) {
            return true;
        }
    }
    if let Some(prefix) = name.strip_suffix("_PORT") {
        if is_env_service_name(prefix)
            && ["tcp://", "udp://", "sctp://"]
                .iter()
                .any(|s| value.starts_with(s))
        {
            return true;
        }
    }
    for (at, _) in name.match_indices("_PORT_") {
        let (prefix, rest) = (&name[..at], &name[at + "_PORT_".len()..]);
        if is_env_service_name(prefix) && is_port_proto_tail(rest) {
            return true;
        }
    }
    false
}

/// `<n>_<PROTO>` optionally followed by `_PROTO`, `_PORT` or `_ADDR`.
fn is_port_proto_tail(rest: &str) -> bool {
    let Some((number, tail)) = rest.split_once('_') else {
        return false;
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (proto, form) = match tail.split_once('_') {
        Some((p, f)) => (p, Some(f)),
        None => (tail, None),
    };
    matches!(proto, "TCP" | "UDP" | "SCTP")
        && matches!(form, None | Some("PROTO" | "PORT" | "ADDR"))
}

/// A service name as the kubelet writes it into env names: upper case, digits, `_`.
fn is_env_service_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// `KEY=VALUE` strings -> map, minus service-link variables. A later duplicate wins.
pub fn env_map<'a>(entries: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, String> {
    entries
        .into_iter()
        .filter_map(|e| {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            (!k.is_empty() && !is_service_link_env(k, v)).then(|| (k.to_owned(), v.to_owned()))
        })
        .collect()
}
