#!/usr/bin/env bash
# Builds Gannet's container image with no Docker engine: an OCI image archive that
# `ctr -n k8s.io images import` (or `docker load`, `podman load`) takes.
#
#   scripts/image.sh [--out DIR] [--binary PATH] [--name REF] [--rootfs-only DIR]
#
#   --out DIR      where gannet-image.tar goes (default: target/image); its path is printed
#   --binary PATH  the gannet binary to pack (default: `cargo build --release -p gannet`,
#                  then target/release/gannet). The e2e tests pack their debug build.
#   --name REF     the image reference (default docker.io/library/gannet:<version>, which is
#                  what the manifest's `image: gannet:<version>` resolves to)
#   --rootfs-only DIR
#                  write the image's file tree into DIR and stop (deploy/Dockerfile copies
#                  it into a FROM scratch image, so both ways give the same files)
#
# The image is the glibc binary with exactly the shared libraries `ldd` lists, Debian's CA
# bundle (for https:// outputs with no tls.ca_file), /etc/passwd and /etc/group, and the
# directories the manifest mounts over. No shell, no package manager. Why glibc and not a
# static musl build: deploy/README.md ("The image").
#
# Reproducible: one layer, files sorted, owner 0:0, mtime 0, gzip -n, a fixed created
# time (scripts/lib/oci.sh), so the same binary and Debian packages give the same digest.
# deploy/Dockerfile builds the same file tree for those who have Docker.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/oci.sh
. "$ROOT/scripts/lib/oci.sh"

die() { echo "scripts/image.sh: error: $*" >&2; exit 1; }
usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; }

OUT="$ROOT/target/image"
BINARY=""
ROOTFS_ONLY=""
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n1)"
NAME="docker.io/library/gannet:$VERSION"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || die "--out needs a directory"; OUT="$2"; shift 2 ;;
    --binary) [ $# -ge 2 ] || die "--binary needs a path"; BINARY="$2"; shift 2 ;;
    --name) [ $# -ge 2 ] || die "--name needs an image reference"; NAME="$2"; shift 2 ;;
    --rootfs-only) [ $# -ge 2 ] || die "--rootfs-only needs a directory"; ROOTFS_ONLY="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

for tool in tar gzip sha256sum ldd dpkg; do
  command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install tar gzip coreutils libc-bin dpkg)"
done
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
if [ ! -f "$CA_BUNDLE" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates >/dev/null
fi
[ -f "$CA_BUNDLE" ] || die "$CA_BUNDLE not found: install ca-certificates"

if [ -z "$BINARY" ]; then
  (cd "$ROOT" && cargo build --release -p gannet --locked)
  BINARY="${CARGO_TARGET_DIR:-$ROOT/target}/release/gannet"
fi
[ -x "$BINARY" ] || die "$BINARY is not an executable (build gannet first, or drop --binary)"

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d "$OUT/.image.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
R="$WORK/rootfs"

# The directories the DaemonSet mounts over (a read-only root cannot grow them) and /tmp.
mkdir -p "$R"/{usr/local/bin,etc/ssl/certs,etc/gannet/plugins,host,run/containerd,run/gannet,var/cache/gannet/plugins,tmp}
install -m 0755 "$BINARY" "$R/usr/local/bin/gannet"
# Exactly the shared libraries the binary loads, at the paths the loader looks for them.
# `ldd` prints "name => /path (addr)" for libraries and "/path (addr)" for the loader.
while read -r lib; do
  [ -f "$lib" ] || die "ldd named $lib, which is not a file"
  mkdir -p "$R$(dirname "$lib")"
  install -m 0755 "$(readlink -f "$lib")" "$R$lib"
done < <(ldd "$BINARY" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
install -m 0644 "$CA_BUNDLE" "$R/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' > "$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$R/etc/group"
chmod 0644 "$R/etc/passwd" "$R/etc/group"
find "$R" -type d -exec chmod 0755 {} +
chmod 1777 "$R/tmp"
if [ -n "$ROOTFS_ONLY" ]; then
  mkdir -p "$ROOTFS_ONLY"
  cp -a "$R/." "$ROOTFS_ONLY/"
  echo "$ROOTFS_ONLY"
  exit 0
fi

CONFIG=$(printf '{"Entrypoint":["/usr/local/bin/gannet"],"Cmd":["run","--config","/etc/gannet/gannet.toml"],"Env":["PATH=/usr/local/bin:/usr/bin:/bin"],"User":"0:0","WorkingDir":"/","ExposedPorts":{"9464/tcp":{}},"Labels":{"org.opencontainers.image.title":"gannet","org.opencontainers.image.version":"%s","org.opencontainers.image.description":"Gannet node agent: container discovery with WebAssembly plugins"}}' "$VERSION")
DIGEST=$(oci_archive "$R" "$NAME" "$CONFIG" "$WORK/gannet-image.tar" scripts/image.sh)
mv "$WORK/gannet-image.tar" "$OUT/gannet-image.tar"
echo "scripts/image.sh: $NAME ($DIGEST, $(du -h "$OUT/gannet-image.tar" | cut -f1))" >&2
echo "$OUT/gannet-image.tar"
