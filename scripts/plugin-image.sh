#!/usr/bin/env bash
# Packs a plugin directory (`.wasm` files and their `.toml` sidecars) into an OCI image
# archive, for the DaemonSet's init container to copy into the agent's plugin directory.
#
#   scripts/plugin-image.sh DIR [--out DIR] [--name REF] [--compile-with GANNET]
#
#   DIR            the plugin directory, as the agent reads it (NN-name.wasm, NN-name.toml)
#   --out DIR      where gannet-plugins-image.tar goes (default: target/image); its path
#                  is printed
#   --name REF     the image reference (default docker.io/library/gannet-plugins:<version>;
#                  teams tag their own, e.g. registry.example.com/team/gannet-plugins:2026-12-07)
#   --compile-with GANNET
#                  also precompile every plugin with this gannet binary (`gannet plugin
#                  compile --cache-dir`) into /plugin-cache, which the init container copies
#                  into the agent's cache: the agent then compiles nothing, which matters
#                  for Python and JavaScript plugins (a compile needs ~400 MB, more than
#                  the pod's memory limit). Use the binary of the agent image you deploy:
#                  artifacts are keyed by engine, and another version's are ignored.
#
# The image holds the files under /plugins and Debian's static busybox at /bin/busybox,
# whose `cp` the init container runs (deploy/daemonset.yaml). Reproducible as
# scripts/image.sh is (precompiled artifacts are as reproducible as Cranelift's output).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/oci.sh
. "$ROOT/scripts/lib/oci.sh"

die() { echo "scripts/plugin-image.sh: error: $*" >&2; exit 1; }
usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; }

SRC=""
OUT="$ROOT/target/image"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n1)"
NAME="docker.io/library/gannet-plugins:$VERSION"
COMPILER=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || die "--out needs a directory"; OUT="$2"; shift 2 ;;
    --name) [ $# -ge 2 ] || die "--name needs an image reference"; NAME="$2"; shift 2 ;;
    --compile-with) [ $# -ge 2 ] || die "--compile-with needs a gannet binary"; COMPILER="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$SRC" ] || die "one plugin directory only (got $SRC and $1)"; SRC="$1"; shift ;;
  esac
done
[ -n "$SRC" ] || { usage >&2; die "missing the plugin directory"; }
[ -d "$SRC" ] || die "$SRC is not a directory"
if [ ! -x /bin/busybox ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static >/dev/null
fi
[ -x /bin/busybox ] || die "/bin/busybox not found: install busybox-static"
# `ldd` succeeds only on a dynamic executable: the image has no libraries for one.
if ldd /bin/busybox >/dev/null 2>&1; then die "/bin/busybox is dynamically linked: install busybox-static"; fi
[ -z "$COMPILER" ] || [ -x "$COMPILER" ] || die "--compile-with $COMPILER: not an executable"

shopt -s nullglob
plugins=("$SRC"/*.wasm)
[ ${#plugins[@]} -gt 0 ] || die "$SRC has no .wasm file: nothing to ship"

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d "$OUT/.plugin-image.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
R="$WORK/rootfs"
mkdir -p "$R/bin" "$R/plugins"
install -m 0755 /bin/busybox "$R/bin/busybox"
# The plugin files only: .wasm and the .toml sidecars, flat, as the agent reads them.
for f in "$SRC"/*.wasm "$SRC"/*.toml; do
  install -m 0644 "$f" "$R/plugins/$(basename "$f")"
done
find "$R" -type d -exec chmod 0755 {} +
if [ -n "$COMPILER" ]; then
  # The agent's cache directory is 0700 (it refuses a group- or other-writable one).
  "$COMPILER" plugin compile --cache-dir "$R/plugin-cache" "${plugins[@]}" >&2
  chmod 0700 "$R/plugin-cache"
  find "$R/plugin-cache" -type f -exec chmod 0600 {} +
fi

# The entrypoint is the init container's command in deploy/daemonset.yaml.
CONFIG=$(printf '{"Entrypoint":["/bin/busybox","sh","-c","cp -R /plugins/. /etc/gannet/plugins/ && if [ -d /plugin-cache ]; then cp -R /plugin-cache/. /var/cache/gannet/plugins/; fi"],"Env":["PATH=/bin"],"User":"0:0","WorkingDir":"/","Labels":{"org.opencontainers.image.title":"gannet-plugins","org.opencontainers.image.version":"%s"}}' "$VERSION")
DIGEST=$(oci_archive "$R" "$NAME" "$CONFIG" "$WORK/gannet-plugins-image.tar" scripts/plugin-image.sh)
mv "$WORK/gannet-plugins-image.tar" "$OUT/gannet-plugins-image.tar"
echo "scripts/plugin-image.sh: $NAME ($DIGEST, ${#plugins[@]} plugins, $(du -h "$OUT/gannet-plugins-image.tar" | cut -f1))" >&2
echo "$OUT/gannet-plugins-image.tar"
