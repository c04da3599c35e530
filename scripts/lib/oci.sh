# shellcheck shell=bash
# OCI image archives without a Docker engine: one layer from a directory, written as an OCI
# image layout in a tar file that `ctr images import` takes. Sourced by scripts/image.sh,
# scripts/plugin-image.sh and tests/harness/containerd.sh.
#
# Deterministic: names sorted, owner 0:0, every mtime 0, `gzip -n` (no name, no time), and
# fixed created times, so the same rootfs gives the same digests with the same tar and gzip.

# Tar options that make a layer depend only on the files' names, modes and contents.
OCI_TAR_FLAGS=(--sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 --format=gnu)

oci_sha() { sha256sum "$1" | cut -d' ' -f1; }
oci_size() { stat -c %s "$1"; }

# oci_blob FILE LAYOUT: moves FILE into LAYOUT/blobs/sha256/<digest>; prints the digest (hex).
oci_blob() {
  local d
  d="$(oci_sha "$1")"
  mv "$1" "$2/blobs/sha256/$d"
  echo "$d"
}

# oci_archive ROOTFS REF CONFIG_JSON OUT [CREATED_BY]: a one-layer image of the directory
# ROOTFS, named REF (the full reference, e.g. docker.io/library/gannet:0.1.0), with the
# image config CONFIG_JSON (Entrypoint, Cmd, Env, User, Labels...), written to OUT. Prints
# the manifest digest (sha256:...).
oci_archive() {
  local rootfs="$1" ref="$2" img_config="$3" out="$4" created_by="${5:-scripts/lib/oci.sh}"
  local work layout arch diff_id layer layer_size cfg cfg_size man man_size
  work="$(mktemp -d "$(dirname "$out")/.oci.XXXXXX")"
  layout="$work/layout"
  mkdir -p "$layout/blobs/sha256"
  arch="$(dpkg --print-architecture)"
  # shellcheck disable=SC2012 # names are plain ASCII; ls sorts them
  tar "${OCI_TAR_FLAGS[@]}" -C "$rootfs" -cf "$work/layer.tar" $(ls -A "$rootfs")
  diff_id="$(oci_sha "$work/layer.tar")"
  gzip -n -6 -c "$work/layer.tar" > "$work/layer.tar.gz"
  layer_size="$(oci_size "$work/layer.tar.gz")"
  layer="$(oci_blob "$work/layer.tar.gz" "$layout")"
  printf '{"architecture":"%s","config":%s,"created":"1970-01-01T00:00:00Z","history":[{"created":"1970-01-01T00:00:00Z","created_by":"%s"}],"os":"linux","rootfs":{"diff_ids":["sha256:%s"],"type":"layers"}}' \
    "$arch" "$img_config" "$created_by" "$diff_id" > "$work/config.json"
  cfg_size="$(oci_size "$work/config.json")"
  cfg="$(oci_blob "$work/config.json" "$layout")"
  printf '{"config":{"digest":"sha256:%s","mediaType":"application/vnd.oci.image.config.v1+json","size":%s},"layers":[{"digest":"sha256:%s","mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":%s}],"mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}' \
    "$cfg" "$cfg_size" "$layer" "$layer_size" > "$work/manifest.json"
  man_size="$(oci_size "$work/manifest.json")"
  man="$(oci_blob "$work/manifest.json" "$layout")"
  printf '{"manifests":[{"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"},"digest":"sha256:%s","mediaType":"application/vnd.oci.image.manifest.v1+json","platform":{"architecture":"%s","os":"linux"},"size":%s}],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}' \
    "$ref" "${ref##*:}" "$man" "$arch" "$man_size" > "$layout/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
  chmod 755 "$layout" "$layout/blobs" "$layout/blobs/sha256"
  chmod 644 "$layout"/blobs/sha256/* "$layout/index.json" "$layout/oci-layout"
  tar "${OCI_TAR_FLAGS[@]}" -C "$layout" -cf "$work/image.tar" blobs index.json oci-layout
  mv "$work/image.tar" "$out"
  rm -rf "$work"
  echo "sha256:$man"
}
