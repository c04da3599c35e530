#!/usr/bin/env bash
# A private, registry-free containerd for Gannet's end-to-end tests (root, Debian).
#
#   containerd.sh deps                 apt-get install what the harness needs, when missing
#   containerd.sh images DIR           build the pause and busybox OCI image archives into DIR
#   containerd.sh up LAB               start a containerd whose config, socket, root, state, runc
#                                      root and pod-cgroup root all belong to LAB; import images
#   containerd.sh down LAB             stop it by pid, kill its shims and containers by pid,
#                                      unmount, remove its shim sockets, cgroups and pod
#                                      network (bridge, namespaces), rm -rf LAB
#   containerd.sh restart LAB          stop containerd alone (containers keep running), start it
#   containerd.sh stop-daemon LAB      stop containerd alone, by pid
#   containerd.sh start-daemon LAB     start containerd again with the LAB's config
#   containerd.sh import LAB ARCHIVE...  import OCI image archives (scripts/image.sh) into LAB
#   containerd.sh host-root LAB [empty]  make LAB/host-root, a stand-in for the node's /
#                                      (shared mounts, /proc inside) for a pod's hostPath `/`;
#                                      with `empty`, LAB/empty-host-root: an empty one
#   containerd.sh reap-after PID LAB   wait until process PID exits, then `down LAB`
#                                      (tears down a lab that a test process started)
#
# After `up`: CRI v1/v1alpha2 and the containerd native API on unix://LAB/containerd.sock,
# namespace k8s.io; images localhost/gannet-test/pause:1.0 and localhost/gannet-test/busybox:1.0;
# pods should use cgroup_parent /$(cat LAB/cgroup-root)/pod<uid>.
#
# Pod networking: host-network pods need nothing. For pods in their own network namespace
# (CRI NamespaceMode POD), `up` configures CNI from Debian's containernetworking-plugins
# (/usr/lib/cni, symlinked into LAB/cni/bin): a `bridge` network with `host-local` IPAM
# (LAB/cni/net.d/10-gannet.conflist; addresses kept in LAB/cni/ipam), plus the `loopback`
# that containerd adds itself. Labs run side by side, so each has its own bridge and subnet,
# derived from a hash of the lab path: bridge gnt<6 hex> and a free 10.<200-249>.<0-255>.0/24
# (probed against `ip route`, under a lock); `up` creates the bridge with the gateway
# .1 on it, which claims the subnet, and writes LAB/pod-network (bridge=, subnet=,
# gateway=, network=). isGateway true, ipMasq false: no iptables rules, no NAT, so pods reach
# the host and each other, not the outside world. The bridge plugin turns on
# net.ipv4.ip_forward (host-wide) at the first pod; nothing turns it off again, since
# another lab may rely on it. Without /usr/lib/cni/bridge (run `deps`), `up` warns and
# the lab has host networking only. Pod network namespaces are mounted under LAB/state
# (netns_mounts_under_state_dir), so CRI removes them when a pod is stopped and `down`
# unmounts those it did not (pods never stopped through CRI), with its other mounts; it also
# deletes any /run/netns/cni-* holding an address of the subnet, the bridge's ports, the
# bridge, and the CNI result cache of the lab's sandboxes (/var/lib/cni/results).
#
# Env: GANNET_E2E_IMAGES  directory of prebuilt image archives (default LAB/images; built when
#                         missing). SNAPSHOTTER  overlayfs (default) or native.
#
# Never kills by name: a system containerd, or another lab, may run beside this one.
# Recipe and measurements: the containerd lab report (shared/containerd-lab/README.md).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PAUSE_IMAGE="localhost/gannet-test/pause:1.0"
BUSYBOX_IMAGE="localhost/gannet-test/busybox:1.0"
SNAPSHOTTER="${SNAPSHOTTER:-overlayfs}"
# Marker that makes a directory a lab: `down` refuses to rm -rf anything else.
MARKER=".gannet-lab"
# Pod networking: the CNI plugins a lab links into LAB/cni/bin, from containernetworking-plugins.
CNI_DIR=/usr/lib/cni
CNI_PLUGINS=(bridge host-local loopback)
# Where libcni caches each ADD result (containerd's CRI sets no cache dir of its own).
CNI_CACHE=/var/lib/cni
# Held while a lab picks a free subnet and claims it by creating its bridge.
CNI_LOCK=/run/lock/gannet-lab-cni.lock
PACKAGES=(containerd runc busybox-static gcc libc6-dev protobuf-compiler containernetworking-plugins iproute2)

say() { echo "containerd.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------
# deps
deps() {
  local need=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  for p in containerd ctr runc gcc strip tar gzip sha256sum ip flock; do
    command -v "$p" >/dev/null || die "$p not found after installing ${PACKAGES[*]}"
  done
  [ -x /bin/busybox ] || die "/bin/busybox not found: install busybox-static"
  for p in "${CNI_PLUGINS[@]}"; do
    [ -x "$CNI_DIR/$p" ] || die "$CNI_DIR/$p not found: install containernetworking-plugins"
  done
}

# ---------------------------------------------------------------------------------------
# images: OCI image-layout tar archives (scripts/lib/oci.sh: deterministic, ctr-importable)
# shellcheck source=../../scripts/lib/oci.sh
. "$HERE/../../scripts/lib/oci.sh"

images() {
  local out="$1" work a
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  work="$(mktemp -d "$out/.build.XXXXXX")"
  # pause: the sandbox's infra process, static so the image needs nothing else.
  mkdir -p "$work/pause"
  gcc -static -O2 -o "$work/pause/pause" "$HERE/pause.c"
  strip "$work/pause/pause"
  chmod 755 "$work/pause" "$work/pause/pause"
  oci_archive "$work/pause" "$PAUSE_IMAGE" \
    '{"Entrypoint":["/pause"],"Env":["PATH=/bin"],"User":"0"}' "$work/pause.tar" \
    tests/harness/containerd.sh >/dev/null
  # busybox: Debian's static busybox plus one symlink per applet.
  local bb="$work/busybox"
  mkdir -p "$bb"/{bin,dev,etc,proc,sys,tmp,var/log,root,data}
  chmod 755 "$bb" "$bb"/{bin,dev,etc,var,var/log,data}
  chmod 555 "$bb/proc" "$bb/sys"
  chmod 1777 "$bb/tmp"
  chmod 700 "$bb/root"
  cp /bin/busybox "$bb/bin/busybox"
  chmod 755 "$bb/bin/busybox"
  for a in $(/bin/busybox --list | sort -u); do
    [ "$a" = busybox ] || ln -s busybox "$bb/bin/$a"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$bb/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$bb/etc/group"
  chmod 644 "$bb/etc/passwd" "$bb/etc/group"
  oci_archive "$bb" "$BUSYBOX_IMAGE" \
    '{"Cmd":["/bin/sh"],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"WorkingDir":"/"}' \
    "$work/busybox.tar" tests/harness/containerd.sh >/dev/null
  # Publish atomically: concurrent labs may share one image directory.
  mv "$work/pause.tar" "$out/pause.tar"
  mv "$work/busybox.tar" "$out/busybox.tar"
  rm -rf "$work"
}

# ---------------------------------------------------------------------------------------
# lab paths and the containerd daemon

# lab_dir ARG: the absolute lab path (no trailing slash); refuses "/" and relative surprises.
lab_dir() {
  [ -n "${1:-}" ] || die "missing LAB argument"
  local d
  d="$(realpath -m "$1")"
  case "$d" in /) die "refusing LAB=/" ;; esac
  echo "$d"
}

cgroup_root_of() {
  cat "$1/cgroup-root" 2>/dev/null || echo "gannet-$(basename "$1")"
}

write_config() {
  local lab="$1"
  [ -n "$lab" ] || die "write_config: empty lab path"
  cat > "$lab/config.toml" <<EOF
# Rendered by tests/harness/containerd.sh for the lab $lab (containerd 1.6/1.7, config v2).
version = 2
root = "$lab/root"
state = "$lab/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]
[grpc]
  address = "$lab/containerd.sock"
[ttrpc]
  address = "$lab/containerd.sock.ttrpc"
[debug]
  address = ""
  level = "info"
[metrics]
  address = ""
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$lab/opt"
  [plugins."io.containerd.grpc.v1.cri"]
    # Imported at start-up: no registry is reachable, and CRI would try to pull a missing one.
    sandbox_image = "$PAUSE_IMAGE"
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false
    disable_apparmor = true
    systemd_cgroup = false
    # Required where root lacks CAP_SYS_RESOURCE: clamp oom_score_adj to containerd's own,
    # instead of failing RunPodSandbox when runc cannot lower it for the pause (-998).
    restrict_oom_score_adj = true
    # Pod network namespaces under LAB/state (not /run/netns): they belong to the lab, and
    # down unmounts them with its other mounts.
    netns_mounts_under_state_dir = true
    [plugins."io.containerd.grpc.v1.cri".cni]
      # bridge + host-local (and loopback) symlinked from /usr/lib/cni by up, with one
      # conflist in conf_dir; both empty when the plugins are missing (host network only).
      bin_dir = "$lab/cni/bin"
      conf_dir = "$lab/cni/net.d"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "$SNAPSHOTTER"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          Root = "$lab/runc"
          SystemdCgroup = false
EOF
}

# daemon_pid LAB: the pid in LAB/containerd.pid if that process is alive and is containerd.
daemon_pid() {
  local p
  p="$(cat "$1/containerd.pid" 2>/dev/null || true)"
  [ -n "$p" ] || return 1
  [ "$(basename "$(readlink "/proc/$p/exe" 2>/dev/null || true)")" = containerd ] || return 1
  echo "$p"
}

log_tail() { tail -n 30 "$1/containerd.log" 2>/dev/null | sed 's/^/  | /' >&2 || true; }

start_daemon() {
  local lab="$1" sock="$1/containerd.sock" pid i
  [ -f "$lab/config.toml" ] || die "$lab has no config.toml: run \`up $lab\` first"
  if daemon_pid "$lab" >/dev/null; then die "containerd of $lab already runs (pid $(daemon_pid "$lab"))"; fi
  rm -f "$sock" "$sock.ttrpc"
  # setsid: its own session, so it outlives this script and no terminal signal reaches it.
  # The log is appended to, so a restart keeps the history.
  setsid containerd --config "$lab/config.toml" >> "$lab/containerd.log" 2>&1 < /dev/null &
  pid=$!
  echo "$pid" > "$lab/containerd.pid"
  for i in $(seq 1 400); do
    if [ -S "$sock" ] && ctr --address "$sock" version >/dev/null 2>&1; then
      daemon_pid "$lab" >/dev/null || die "pid $pid of $lab is not containerd"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      say "containerd of $lab died at start; the end of $lab/containerd.log:"
      log_tail "$lab"
      exit 1
    fi
    sleep 0.05
  done
  say "containerd of $lab did not answer on $sock within 20 s; the end of its log:"
  log_tail "$lab"
  exit 1
}

stop_daemon() {
  local lab="$1" pid i
  if pid="$(daemon_pid "$lab")"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 200); do
      alive "$pid" || break
      sleep 0.05
    done
    if alive "$pid"; then
      say "containerd pid $pid ignored SIGTERM for 10 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$lab/containerd.pid"
}

# import_images LAB ARCHIVE...: imports OCI archives into LAB's k8s.io namespace (where CRI
# sees them), unpacked for the lab's snapshotter.
import_images() {
  local lab="$1" a
  shift
  for a in "$@"; do
    [ -f "$a" ] || die "no image archive $a"
    ctr --address "$lab/containerd.sock" -n k8s.io images import --snapshotter "$SNAPSHOTTER" "$a" >/dev/null
  done
}

# host_root LAB: LAB/host-root, a stand-in for the node's root filesystem as a pod's hostPath
# `/` sees it: a bind of / (not recursive) with /proc, and the filesystem holding LAB when
# it is not /, bound inside, all made shared mounts, as on a systemd host (a hostPath
# mounted with HostToContainer propagation must come from a shared or slave mount, and
# this machine's / may be private). With `empty`: LAB/empty-host-root, an empty shared
# mount, for a node that lacks what the manifest mounts. Prints the path; `down` unmounts
# it with the lab's other mounts. Idempotent.
host_root() {
  local lab="$1" r="$1/host-root" fs
  if [ "${2:-}" = empty ]; then
    # An empty node root (a node missing what the manifest mounts), shared all the same.
    r="$lab/empty-host-root"
    if ! awk -v r="$r" '$5 == r' /proc/self/mountinfo | grep -q .; then
      mkdir -p "$r"
      mount --bind "$r" "$r"
      mount --make-shared "$r"
    fi
    echo "$r"
    return
  fi
  if awk -v r="$r" '$5 == r' /proc/self/mountinfo | grep -q .; then echo "$r"; return; fi
  mkdir -p "$r"
  mount --bind / "$r"
  mount --bind /proc "$r/proc"
  fs="$(findmnt -n -o TARGET --target "$lab")"
  if [ "$fs" != / ]; then mount --bind "$fs" "$r$fs"; fi
  mount --make-shared "$r"
  mount --make-shared "$r/proc"
  if [ "$fs" != / ]; then mount --make-shared "$r$fs"; fi
  echo "$r"
}

up() {
  local lab
  [ "$(id -u)" = 0 ] || die "run as root: containerd, runc and the pod cgroups need it"
  lab="$(lab_dir "$1")"
  mkdir -p "$lab"
  if [ -n "$(ls -A "$lab")" ] && [ ! -f "$lab/$MARKER" ]; then
    die "$lab is not empty and not a lab: choose an empty or new directory"
  fi
  if daemon_pid "$lab" >/dev/null; then die "containerd of $lab already runs (pid $(daemon_pid "$lab"))"; fi
  touch "$lab/$MARKER"
  mkdir -p "$lab"/{root,state,opt,runc,cni/bin,cni/net.d,logs,hostdata}
  # One pod-cgroup root per lab: tearing one lab down never touches another's cgroups.
  [ -f "$lab/cgroup-root" ] || echo "gannet-$(basename "$lab")" > "$lab/cgroup-root"
  write_config "$lab"
  pod_network_up "$lab"
  local imgs="${GANNET_E2E_IMAGES:-$lab/images}"
  if [ ! -f "$imgs/pause.tar" ] || [ ! -f "$imgs/busybox.tar" ]; then images "$imgs"; fi
  start_daemon "$lab"
  local sock="$lab/containerd.sock" i
  if ! ctr --address "$sock" plugins ls 2>/dev/null | grep -Eq 'io\.containerd\.grpc\.v1[[:space:]]+cri[[:space:]].*ok'; then
    say "the CRI plugin of $lab did not load; the end of its log:"
    log_tail "$lab"
    exit 1
  fi
  import_images "$lab" "$imgs/pause.tar" "$imgs/busybox.tar"
  local net="host network only"
  [ -f "$lab/pod-network" ] && net="pod network $(net_field "$lab" subnet) on $(net_field "$lab" bridge)"
  say "up: $lab (pid $(daemon_pid "$lab"), socket $sock, namespace k8s.io, cgroup root $(cgroup_root_of "$lab"), $net)"
  echo "$sock"
}

# ---------------------------------------------------------------------------------------
# pod networking: one bridge and one /24 per lab (see the header)

# lab_hash LAB: hex digits fixed for a lab path.
lab_hash() { printf '%s' "$1" | sha256sum | cut -c1-64; }

# net_field LAB KEY: a value of LAB/pod-network (empty when the lab has none).
net_field() { sed -n "s/^$2=//p" "$1/pod-network" 2>/dev/null || true; }

# bridge_of LAB / network_of LAB: the lab's bridge and CNI network names, recorded by `up`;
# derived from the path again if the record is gone.
bridge_of() {
  local b
  b="$(net_field "$1" bridge)"
  echo "${b:-gnt$(lab_hash "$1" | cut -c1-6)}"
}
network_of() {
  local n
  n="$(net_field "$1" network)"
  echo "${n:-gannet-$(lab_hash "$1" | cut -c1-6)}"
}

# ip4_int A.B.C.D: the address as a 32-bit integer.
ip4_int() {
  local a b c d
  IFS=. read -r a b c d <<< "$1"
  echo $(( (a << 24) | (b << 16) | (c << 8) | d ))
}

# subnet_in_use NET/24: whether an IPv4 route (any table) or address of this host overlaps it.
subnet_in_use() {
  local want dst addr len m mask
  want="$(ip4_int "${1%/*}")"
  while read -r dst; do
    case "$dst" in "" | default) continue ;; esac
    addr="${dst%/*}"
    len=32
    [ "$addr" = "$dst" ] || len="${dst#*/}"
    # Two prefixes overlap when they agree on the bits of the shorter one.
    m=$(( len < 24 ? len : 24 ))
    mask=$(( m == 0 ? 0 : (0xffffffff << (32 - m)) & 0xffffffff ))
    [ $(( $(ip4_int "$addr") & mask )) = $(( want & mask )) ] && return 0
  done < <(
    ip -4 route show table all | awk '{ d = $1; if (d ~ /^(unicast|local|broadcast|anycast|multicast|unreachable|blackhole|prohibit|throw|nat)$/) d = $2; print d }'
    ip -4 -o addr show | awk '{ print $4 }'
  )
  return 1
}

# pod_network_up LAB: link the plugins, pick and claim the lab's subnet (its bridge, with
# the gateway address), write the conflist and LAB/pod-network.
pod_network_up() {
  local lab="$1" p hash br name n a b subnet="" gw lock
  for p in "${CNI_PLUGINS[@]}"; do
    if [ ! -x "$CNI_DIR/$p" ]; then
      say "no $CNI_DIR/$p (containernetworking-plugins; \`deps\` installs it): $lab has host networking only"
      return 0
    fi
  done
  command -v ip >/dev/null || { say "no ip (iproute2): $lab has host networking only"; return 0; }
  for p in "${CNI_PLUGINS[@]}"; do ln -sfn "$CNI_DIR/$p" "$lab/cni/bin/$p"; done
  hash="$(lab_hash "$lab")"
  br="gnt${hash:0:6}"
  name="gannet-${hash:0:6}"
  mkdir -p "$(dirname "$CNI_LOCK")"
  exec {lock}> "$CNI_LOCK"
  flock -w 60 "$lock" || die "could not lock $CNI_LOCK within 60 s"
  # A bridge of this very path, left by a lab that was never torn down: start afresh.
  if ip link show "$br" >/dev/null 2>&1; then ip link del "$br"; fi
  # 10.200.0.0-10.249.255.0: 12800 /24s, probed from the path's hash on.
  local seed=$(( 16#${hash:6:8} ))
  for n in $(seq 0 511); do
    n=$(( (seed + n) % 12800 ))
    a=$(( 200 + n / 256 ))
    b=$(( n % 256 ))
    if ! subnet_in_use "10.$a.$b.0/24"; then subnet="10.$a.$b.0/24"; break; fi
  done
  [ -n "$subnet" ] || die "no free /24 in 10.200.0.0-10.249.255.255 for the pods of $lab (ip route)"
  gw="10.$a.$b.1"
  # The bridge now, not at the first pod: its route claims the subnet for this lab.
  ip link add "$br" type bridge
  ip addr add "$gw/24" dev "$br"
  ip link set "$br" up
  exec {lock}>&-
  printf 'bridge=%s\nsubnet=%s\ngateway=%s\nnetwork=%s\n' "$br" "$subnet" "$gw" "$name" > "$lab/pod-network"
  mkdir -p "$lab/cni/ipam"
  cat > "$lab/cni/net.d/10-gannet.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$name",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$br",
      "isGateway": true,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$subnet", "gateway": "$gw" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$lab/cni/ipam"
      }
    }
  ]
}
EOF
}

# pod_netns_of LAB: the network namespaces (/run/netns/...) of the lab's sandboxes, from
# the runtime specs of its task bundles (read before the bundles go).
pod_netns_of() {
  local f
  for f in "$1"/state/io.containerd.runtime.v2.task/*/*/config.json; do
    [ -f "$f" ] && grep -oE '"/(var/)?run/netns/[^"/]+"' "$f" | tr -d '"'
  done
  return 0
}

# pod_network_down LAB NETNS...: remove what CRI would have removed had the pods been
# stopped through it (their network namespaces, CNI result cache), then the bridge.
pod_network_down() {
  local lab="$1" br name prefix ns l
  shift
  br="$(bridge_of "$lab")"
  name="$(network_of "$lab")"
  command -v ip >/dev/null || return 0
  # Namespaces named by the bundles, and any cni-* namespace holding an address of the subnet.
  prefix="$(net_field "$lab" subnet)"
  prefix="${prefix%0/24}"
  for ns in "$@" /run/netns/cni-*; do
    [ -e "$ns" ] || continue
    case " $* " in
      *" $ns "*) ;;
      *)
        [ -n "$prefix" ] || continue
        ip -n "$(basename "$ns")" -4 -o addr show 2>/dev/null | grep -qF " inet $prefix" || continue
        ;;
    esac
    umount "$ns" 2>/dev/null || umount -l "$ns" 2>/dev/null || true
    rm -f "$ns"
  done
  if ip link show "$br" >/dev/null 2>&1; then
    # Ports left on the bridge (veths whose pod namespace is gone end with it, the rest here).
    for l in $(ip -o link show master "$br" 2>/dev/null | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
      ip link del "$l" 2>/dev/null || true
    done
    ip link del "$br" 2>/dev/null || true
  fi
  rm -f "$CNI_CACHE/results/$name-"* 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------
# down: leave no process, mount, shim socket or cgroup of this lab behind

# ancestors: this shell and every process above it (never killed, even if their cmdline names the lab)
ancestors() {
  local p=$$
  while [ -n "$p" ] && [ "$p" != 0 ]; do
    echo "$p"
    p="$(awk '/^PPid:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)"
  done
}

# lab_pids LAB CGROUP_ROOT: pids of the lab's containers and shims (never by name).
lab_pids() {
  local lab="$1" cgroot="$2" f p d cmd
  # 1. every process in the lab's pod cgroups (containers, and anything exec'd into them)
  for d in "/sys/fs/cgroup/$cgroot" /sys/fs/cgroup/*/"$cgroot"; do
    [ -d "$d" ] || continue
    find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null || true
  done
  # 2. task inits recorded in the bundles, if they are still in one of the lab's cgroups
  for f in "$lab"/state/io.containerd.runtime.v2.task/*/*/init.pid; do
    [ -f "$f" ] || continue
    p="$(cat "$f" 2>/dev/null || true)"
    [ -n "$p" ] && grep -q "/$cgroot/" "/proc/$p/cgroup" 2>/dev/null && echo "$p"
  done
  # 3. shims: their cwd is a task bundle under the lab, their cmdline names the lab's socket;
  #    and gannet processes a dead test process left pointing at the lab
  #    (find -lname reads the /proc symlinks without a process per pid)
  find /proc -mindepth 2 -maxdepth 2 -name cwd -lname "$lab/state/*" 2>/dev/null | cut -d/ -f3
  for d in $(find /proc -mindepth 2 -maxdepth 2 -name exe \( -lname '*/containerd*' -o -lname '*/gannet' \) 2>/dev/null | cut -d/ -f3); do
    cmd="$(tr '\0' ' ' < "/proc/$d/cmdline" 2>/dev/null || true)"
    case "$cmd" in *"$lab/"*) echo "$d" ;; esac
  done
}

alive() { # alive PID: exists and is not a zombie
  local st
  st="$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null || true)"
  [ -n "$st" ] && [ "$st" != Z ]
}

down() {
  local lab cgroot
  lab="$(lab_dir "$1")"
  [ -d "$lab" ] || return 0
  [ -f "$lab/$MARKER" ] || [ -z "$(ls -A "$lab")" ] || die "$lab is not a lab (no $MARKER): not removing it"
  cgroot="$(cgroup_root_of "$lab")"
  stop_daemon "$lab"

  local keep victims=() p i s
  keep=" $(ancestors | tr '\n' ' ') "
  for p in $(lab_pids "$lab" "$cgroot" | sort -un); do
    case "$keep" in *" $p "*) continue ;; esac
    victims+=("$p")
  done
  # Shim sockets live outside the lab (/run/containerd/s/<hash>); each bundle's `address` names one.
  local socks=()
  for f in "$lab"/state/io.containerd.runtime.v2.task/*/*/address; do
    [ -f "$f" ] && socks+=("$(sed 's#^unix://##' "$f")")
  done
  # Pod network namespaces and sandbox ids, while the bundles that name them are there.
  local netns=() ids=()
  mapfile -t netns < <(pod_netns_of "$lab" | sort -u)
  for f in "$lab"/state/io.containerd.runtime.v2.task/*/*/; do
    [ -d "$f" ] && ids+=("$(basename "$f")")
  done
  if [ ${#victims[@]} -gt 0 ]; then
    kill -KILL "${victims[@]}" 2>/dev/null || true
    for i in $(seq 1 100); do
      local left=0
      for p in "${victims[@]}"; do alive "$p" && left=1; done
      [ $left = 0 ] && break
      sleep 0.05
    done
  fi
  # Unmount everything below the lab (rootfs overlays, sandbox shm), deepest first.
  for i in 1 2 3; do
    awk -v lab="$lab/" 'index($5, lab) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
    awk -v lab="$lab/" 'index($5, lab) == 1' /proc/self/mountinfo | grep -q . || break
    sleep 0.2
  done
  for s in "${socks[@]}"; do
    case "$s" in /run/containerd/s/*) rm -f "$s" ;; esac
  done
  # With every process gone: the pod network namespaces, the bridge, the CNI result cache.
  pod_network_down "$lab" "${netns[@]}"
  for i in "${ids[@]}"; do rm -f "$CNI_CACHE/results/cni-loopback-$i-lo"; done
  local bridge
  bridge="$(bridge_of "$lab")"
  # Pod cgroups: runc removes each container's, nobody removes the pod level (kubelet's job).
  for i in 1 2 3 4 5; do
    local busy=0 c
    for c in "/sys/fs/cgroup/$cgroot" /sys/fs/cgroup/*/"$cgroot"; do
      [ -d "$c" ] || continue
      find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true
      [ -d "$c" ] && busy=1
    done
    [ $busy = 0 ] && break
    sleep 0.2
  done
  rm -rf "$lab" 2>/dev/null || true

  # Verify: name whatever is left, and fail.
  local problems=()
  for p in "${victims[@]}"; do alive "$p" && problems+=("process $p ($(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null))"); done
  while read -r m; do [ -n "$m" ] && problems+=("mount $m"); done < <(awk -v lab="$lab/" 'index($5, lab) == 1 {print $5}' /proc/self/mountinfo)
  for s in "${socks[@]}"; do [ -e "$s" ] && problems+=("shim socket $s"); done
  for c in "/sys/fs/cgroup/$cgroot" /sys/fs/cgroup/*/"$cgroot"; do [ -d "$c" ] && problems+=("cgroup $c"); done
  for s in "${netns[@]}"; do [ -e "$s" ] && problems+=("network namespace $s"); done
  if command -v ip >/dev/null && ip link show "$bridge" >/dev/null 2>&1; then problems+=("bridge $bridge"); fi
  [ -e "$lab" ] && problems+=("directory $lab")
  if [ ${#problems[@]} -gt 0 ]; then
    say "down $lab left behind:"
    printf '  %s\n' "${problems[@]}" >&2
    exit 1
  fi
}

# reap-after PID LAB: tear LAB down once PID (identified by its start time) has exited.
reap_after() {
  local pid="$1" lab start now
  lab="$(lab_dir "$2")"
  # Field 22 of /proc/PID/stat (start time) tells PID from a later process reusing it.
  # Only the process decides: the lab may not exist yet (its `up` may still be running).
  start="$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f20 || true)"
  while :; do
    now="$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f20 || true)"
    [ -n "$now" ] && [ "$now" = "$start" ] || break
    sleep 0.5
  done
  down "$lab"
}

cmd="${1:-}"
case "$cmd" in
  deps) deps ;;
  images) [ -n "${2:-}" ] || die "usage: $0 images DIR"; images "$2" ;;
  up) up "${2:-}" ;;
  down) down "${2:-}" ;;
  restart) lab="$(lab_dir "${2:-}")"; stop_daemon "$lab"; start_daemon "$lab" ;;
  stop-daemon) stop_daemon "$(lab_dir "${2:-}")" ;;
  start-daemon) start_daemon "$(lab_dir "${2:-}")" ;;
  host-root) host_root "$(lab_dir "${2:-}")" "${3:-}" ;;
  import) [ -n "${3:-}" ] || die "usage: $0 import LAB ARCHIVE..."; lab="$(lab_dir "$2")"; shift 2; import_images "$lab" "$@" ;;
  reap-after) [ -n "${2:-}" ] && [ -n "${3:-}" ] || die "usage: $0 reap-after PID LAB"; reap_after "$2" "$3" ;;
  *) echo "usage: $0 deps | images DIR | up LAB | down LAB | restart LAB | stop-daemon LAB | start-daemon LAB | import LAB ARCHIVE... | host-root LAB [empty] | reap-after PID LAB" >&2; exit 2 ;;
esac
