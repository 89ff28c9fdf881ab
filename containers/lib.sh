# containers/lib.sh — settings and helpers of the tunsec container lab (sourced by lab.sh).
# Every setting can be overridden from the environment.
#
# The engine is podman (default) or docker: TUNSEC_CONTAINER_ENGINE=docker|podman.
# Podman state is private to the lab: CONTAINERS_CONF / CONTAINERS_STORAGE_CONF point at
# $LAB_ART/conf, so images, containers and networks live under $LAB_ART (and $LAB_RUN),
# never in /var/lib/containers or /etc/containers. Use `containers/lab.sh podman ...` to run
# podman with that configuration. Docker: the daemon at $DOCKER_HOST if it is set, else a
# private dockerd the lab starts on demand (data-root $LAB_ART/docker, socket and pid file in
# $LAB_RUN) and stops in `down`. Use `containers/lab.sh docker ...` to talk to it.

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$LAB_DIR/.." && pwd)"

LAB_ART="${LAB_ART:-/var/tmp/tunsec-lab}"      # base tarball, podman storage, PKI, configs
LAB_RUN="${LAB_RUN:-/run/tunsec-lab}"          # podman runroot and tmp (tmpfs)

export CONTAINERS_CONF="$LAB_ART/conf/containers.conf"
export CONTAINERS_STORAGE_CONF="$LAB_ART/conf/storage.conf"

ENGINE="${TUNSEC_CONTAINER_ENGINE:-podman}"
case "$ENGINE" in podman | docker) ;; *) echo "TUNSEC_CONTAINER_ENGINE must be podman or docker, not '$ENGINE'" >&2; exit 2 ;; esac
DOCKER_BIN="${DOCKER_BIN:-docker}"
DOCKERD_BIN="${DOCKERD_BIN:-dockerd}"
DOCKERD_PID="$LAB_RUN/dockerd.pid"
if [ -z "${DOCKER_HOST:-}" ]; then
  export DOCKER_HOST="unix://$LAB_RUN/docker.sock"
  LAB_DOCKERD=1   # the lab's own daemon: started and stopped by lab.sh
else
  LAB_DOCKERD=0   # somebody else's daemon: used as it is, never stopped
fi

SUITE="${SUITE:-bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SECURITY="${DEBIAN_SECURITY:-http://deb.debian.org/debian-security}"

DEBIAN_IMAGE="${DEBIAN_IMAGE:-localhost/tunsec-lab/debian:bookworm}"     # mmdebstrap, imported
NODE_IMAGE="${NODE_IMAGE:-localhost/tunsec-lab/node:22-bookworm}"         # + Node 22 (below)
NODE_DEV_IMAGE="${NODE_DEV_IMAGE:-localhost/tunsec-lab/node-dev:22-bookworm}"  # + npm, headers
SS_IMAGE="${SS_IMAGE:-localhost/tunsec-lab/strongswan:bookworm}"
TUNSEC_IMAGE="${TUNSEC_IMAGE:-localhost/tunsec:latest}"
# Node for the images: the official Node 22 linux build the repository's `node` devDependency
# pins, binary and headers, unpacked into $LAB_ART/node-dist by scripts/node-dist.sh (npm's
# cache); NODE_BIN overrides it (its headers must be at ../include/node). npm: the host's.
NODE_BIN="${NODE_BIN:-}"
NPM_DIR="${NPM_DIR:-$(dirname "$(dirname "$(readlink -f "$(command -v npm 2>/dev/null || echo /usr/bin/npm)")")")}"

NET="${NET:-tunsec-lab}"
SUBNET="${SUBNET:-10.81.0.0/24}"
GATEWAY="${GATEWAY:-10.81.0.1}"
SS_IP="${SS_IP:-10.81.0.2}"
TS_IP="${TS_IP:-10.81.0.3}"
SS_CTR="${SS_CTR:-tunsec-lab-strongswan}"
TS_CTR="${TS_CTR:-tunsec-lab-tunsec}"
COMPOSE_PROJECT="${COMPOSE_PROJECT:-tunsec-lab}"
COMPOSE_NET="${COMPOSE_NET:-tunsec-lab-compose}"
SS_ID="${SS_ID:-strongswan.lab.tunsec.test}"
TS_ID="${TS_ID:-tunsec.lab.tunsec.test}"
CONN="${CONN:-lab}"
IKE_PROPOSAL="${IKE_PROPOSAL:-aes128gcm16-prfsha384-ecp384bp}"
ESP_PROPOSAL="${ESP_PROPOSAL:-aes128gcm16-ecp384bp}"

# Capabilities of the tunsec container: NET_ADMIN (TUN device, routes, rules, SO_MARK) and the
# TUN device, nothing else. The lab's SAs are UDP-encapsulated, so the raw ESP sockets (NET_RAW,
# which podman >= 4 does not grant by default) are not needed: without it tunsec warns and goes on.
TS_CAPS=(--cap-add NET_ADMIN --device /dev/net/tun)
SS_CAPS=(--cap-add NET_ADMIN --device /dev/net/tun)

log() { printf '[lab %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'; }

require_prereqs() {
  [ "$(id -u)" = 0 ] || die "must run as root (rootful $ENGINE, TUN devices)"
  local p missing=() progs=(runc mmdebstrap ip)
  if [ "$ENGINE" = podman ]; then progs+=(podman iptables-save); else progs+=("$DOCKER_BIN"); [ "$LAB_DOCKERD" = 0 ] || progs+=("$DOCKERD_BIN"); fi
  for p in "${progs[@]}"; do command -v "$p" >/dev/null || missing+=("$p"); done
  [ -z "$NODE_BIN" ] || [ -x "$NODE_BIN" ] || missing+=("node (NODE_BIN=$NODE_BIN)")
  command -v npm >/dev/null || missing+=(npm)
  [ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]} (run scripts/setup-system.sh as root)"
}

# The private engine and storage configuration. Findings on the test VMs (see also
# /work/shared/reference/container-lab): crun refuses this host's hybrid cgroups -> runc;
# podman asks for RLIMIT_NOFILE 1048576 and NPROC above what root may set here (no
# CAP_SYS_RESOURCE) -> the current hard limits; no systemd -> cgroupfs and a file event log.
write_engine_conf() {
  local nofile nproc
  nofile="$(ulimit -Hn)"; [ "$nofile" = unlimited ] && nofile=1048576
  nproc="$(ulimit -Hu)"; { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
  mkdir -p "$LAB_ART/conf" "$LAB_ART/storage" "$LAB_ART/networks" "$LAB_RUN"
  cat > "$LAB_ART/conf/containers.conf.new" <<EOC
# generated by containers/lib.sh (tunsec lab)
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$LAB_RUN/libpod"
[network]
network_backend = "netavark"
network_config_dir = "$LAB_ART/networks"
EOC
  cat > "$LAB_ART/conf/storage.conf.new" <<EOC
# generated by containers/lib.sh (tunsec lab)
[storage]
driver = "overlay"
graphroot = "$LAB_ART/storage"
runroot = "$LAB_RUN/storage"
EOC
  mv "$LAB_ART/conf/containers.conf.new" "$LAB_ART/conf/containers.conf"
  mv "$LAB_ART/conf/storage.conf.new" "$LAB_ART/conf/storage.conf"
}

build_ulimits() {
  local nofile nproc
  nofile="$(ulimit -Hn)"; [ "$nofile" = unlimited ] && nofile=1048576
  nproc="$(ulimit -Hu)"; { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
  echo "--ulimit nofile=$nofile:$nofile --ulimit nproc=$nproc:$nproc"
}

# netavark creates iptables chains (NETAVARK_*) on first use of a network and never removes
# them. Once no podman bridge is left on the host, delete the jumps to them, then the chains.
remove_netavark_fw() {
  local ipt t c
  if ip -br link show type bridge 2>/dev/null | grep -q '^podman'; then
    log "a podman bridge is still present: netavark's firewall chains kept"; return 0
  fi
  for ipt in iptables ip6tables; do
    command -v "$ipt-save" >/dev/null || continue
    for t in filter nat mangle; do
      { "$ipt-save" -t "$t" 2>/dev/null | grep -E '^-A [A-Za-z_-]+ .*NETAVARK' || true; } | sed 's/^-A /-D /' |
        while read -r rule; do eval "$ipt -t $t $rule" 2>/dev/null || true; done
      for c in $("$ipt-save" -t "$t" 2>/dev/null | awk '/^:NETAVARK/ {print substr($1,2)}'); do
        "$ipt" -t "$t" -F "$c" 2>/dev/null || true
      done
      for c in $("$ipt-save" -t "$t" 2>/dev/null | awk '/^:NETAVARK/ {print substr($1,2)}'); do
        "$ipt" -t "$t" -X "$c" 2>/dev/null || true
      done
    done
  done
}

# ------------------------------------------------------------------------------ engine
# ctr: the selected engine. DOCKER_BUILDKIT=0: the classic builder ships with dockerd itself
# (BuildKit needs the separate buildx plugin with newer CLIs) and takes --network host and
# --ulimit as podman does.
ctr() {
  if [ "$ENGINE" = docker ]; then DOCKER_BUILDKIT=0 "$DOCKER_BIN" "$@"; else podman "$@"; fi
}
image_exists() { ctr image inspect "$1" >/dev/null 2>&1; }
container_exists() { ctr container inspect "$1" >/dev/null 2>&1; }
network_exists() { ctr network inspect "$1" >/dev/null 2>&1; }
# remove_container NAME GRACE_S: SIGTERM first, so that tunsec sends its DELETEs
remove_container() {
  if [ "$ENGINE" = docker ]; then
    ctr stop -t "$2" "$1" >/dev/null 2>&1 || true
    ctr rm -f "$1" >/dev/null
  else
    # (podman without systemd complains that it cannot remove a healthcheck timer it never made)
    podman rm -f -t "$2" "$1" 2>&1 >/dev/null | { grep -v 'unable to get systemd connection' >&2 || true; }
  fi
}

dockerd_pid() { # the lab's dockerd, if its pid file names a running dockerd
  local pid
  pid="$(cat "$DOCKERD_PID" 2>/dev/null || true)"
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] && echo "$pid"
}

# The lab's own dockerd (no systemd here): private data-root, exec-root, socket and containerd
# namespaces, so it neither meets nor disturbs a docker installation on the host. The lab's
# networks are internal (no NAT) and RUN steps use the host network, so dockerd needs no
# iptables rules, no docker0 bridge and no ip_forward change: --iptables=false --bridge=none
# --ip-forward=false leave the host's firewall and sysctls as they were.
ensure_engine() {
  [ "$ENGINE" = docker ] || return 0
  ctr version >/dev/null 2>&1 && return 0
  [ "$LAB_DOCKERD" = 1 ] || die "no docker daemon answers at DOCKER_HOST=$DOCKER_HOST"
  [ -z "$(dockerd_pid)" ] || die "dockerd $(dockerd_pid) ($DOCKERD_PID) runs but does not answer at $DOCKER_HOST"
  local t0 i
  t0=$(now)
  mkdir -p "$LAB_ART/docker" "$LAB_RUN/docker"
  rm -f "$DOCKERD_PID"
  setsid "$DOCKERD_BIN" --data-root "$LAB_ART/docker" --exec-root "$LAB_RUN/docker" \
    --pidfile "$DOCKERD_PID" -H "$DOCKER_HOST" --group root \
    --containerd-namespace tunsec-lab --containerd-plugins-namespace tunsec-lab-plugins \
    --storage-driver overlay2 --iptables=false --ip6tables=false --ip-forward=false --bridge=none \
    </dev/null >>"$LAB_ART/dockerd.log" 2>&1 &
  for i in $(seq 1 300); do
    ctr version >/dev/null 2>&1 && { log "dockerd $(dockerd_pid) started in $(elapsed "$t0") s ($DOCKER_HOST, log $LAB_ART/dockerd.log)"; return 0; }
    sleep 0.1
  done
  tail -20 "$LAB_ART/dockerd.log" >&2 || true
  die "dockerd did not come up (log: $LAB_ART/dockerd.log)"
}

stop_engine() { # the lab's own dockerd, found by its pid file
  [ "$ENGINE" = docker ] && [ "$LAB_DOCKERD" = 1 ] || return 0
  local pid i
  pid="$(dockerd_pid)" || return 0
  kill "$pid"
  for i in $(seq 1 300); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  [ ! -d "/proc/$pid" ] || die "dockerd $pid still running 30 s after SIGTERM"
  # dockerd bind-mounts the host's network namespace at <exec-root>/netns/default and leaves
  # it mounted when it exits
  local m
  while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done \
    < <(awk -v r="$LAB_RUN/docker/" 'index($5,r)==1 {print $5}' /proc/self/mountinfo | sort -r)
  log "stopped dockerd $pid"
}
