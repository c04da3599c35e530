#!/bin/sh
# Validates deploy/daemonset.yaml with kubernetes-validate (PyPI), installed into a venv:
# a stock Debian refuses system-wide pip installs. Needs python3-venv.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv=${GANNET_VALIDATE_VENV:-${TMPDIR:-/tmp}/gannet-kubernetes-validate}
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    # Debian's python3 needs python3-venv for `-m venv`; install it when missing.
    if command -v dpkg >/dev/null && ! dpkg -s python3-venv >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet kubernetes-validate
fi
"$venv/bin/kubernetes-validate" --strict "$here/daemonset.yaml"
# The validator must catch a mistake: a misspelled field is refused.
broken=$(mktemp)
trap 'rm -f "$broken"' EXIT
sed 's/terminationGracePeriodSeconds/terminationGracePeriodSecs/' "$here/daemonset.yaml" > "$broken"
if "$venv/bin/kubernetes-validate" --strict "$broken" >/dev/null 2>&1; then
    echo "validate.sh: kubernetes-validate accepted a misspelled field" >&2
    exit 1
fi
echo "validate.sh: ok"
