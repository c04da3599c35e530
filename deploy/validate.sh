#!/usr/bin/env bash
# Validates the DaemonSet manifest against the Kubernetes schemas with kubernetes-validate
# (PyPI), installed into a private venv: a stock Debian refuses system-wide pip installs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${GANNET_VALIDATE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/gannet/validate-venv}"
if ! dpkg -s python3-venv >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'kubernetes-validate==1.37.0'
fi
# --strict: unknown fields are errors, not warnings.
"$venv/bin/kubernetes-validate" --strict "$here/daemonset.yaml"
