#!/bin/bash
# containers/lab.sh — tunsec ↔ strongSwan in containers (rootful podman or docker, offline),
# see docs/containers.md. TUNSEC_CONTAINER_ENGINE=docker|podman (default podman).
#
#   lab.sh build            images: Debian 12 base (mmdebstrap, cached in $LAB_ART), node 22
#                           (the node devDependency), strongSwan, tunsec (./Containerfile); prints sizes
#   lab.sh up               network, throwaway CA, strongSwan then tunsec container; tunsec
#                           initiates (TS_START=none: it only answers); prints both sides' SAs
#   lab.sh status           containers and both sides' SAs
#   lab.sh down             containers, networks, netavark iptables chains, generated PKI and
#                           configs (PURGE=1: also images, podman storage, the base tarball)
#   lab.sh compose-up|compose-down   the same lab with containers/compose.yaml (podman-compose)
#   lab.sh podman ARGS...   podman with the lab's private configuration
#   lab.sh docker ARGS...   docker with the lab's daemon (its own dockerd unless DOCKER_HOST is set)
#   lab.sh engine ARGS...   the selected engine (podman or docker) with the lab's configuration
#   lab.sh tunsec ARGS...   `tunsec ARGS` in the tunsec container (status, list-sas, check, ...)
#   lab.sh swanctl ARGS...  `swanctl ARGS` in the strongSwan container
#
# Needs root, podman (or docker.io), runc, mmdebstrap (scripts/system-packages.txt) and Debian's
# apt mirror (no container registry). Everything it makes lives in $LAB_ART and $LAB_RUN.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ------------------------------------------------------------------------------ build
build_debian() {
  local tar="$LAB_ART/debian-$SUITE.tar" t0
  if [ ! -s "$tar" ]; then
    t0=$(now)
    log "mmdebstrap $SUITE (variant apt) from $DEBIAN_MIRROR -> $tar"
    # the dpkg excludes stay in the image (/etc/dpkg/dpkg.cfg.d), so later apt-get installs
    # in the Containerfiles skip documentation too
    mmdebstrap --quiet --variant=apt --format=tar \
      --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' \
      "$SUITE" "$tar.tmp" \
      "deb $DEBIAN_MIRROR $SUITE main" "deb $DEBIAN_MIRROR $SUITE-updates main" \
      "deb $DEBIAN_SECURITY $SUITE-security main"
    mv "$tar.tmp" "$tar"
    ctr rmi -f "$DEBIAN_IMAGE" >/dev/null 2>&1 || true
    log "base tarball $(du -h "$tar" | cut -f1) in $(elapsed "$t0") s"
  fi
  if ! image_exists "$DEBIAN_IMAGE"; then
    t0=$(now)
    local quiet=()
    [ "$ENGINE" = docker ] || quiet=(--quiet)
    ctr import "${quiet[@]}" --change 'CMD ["/bin/bash"]' "$tar" "$DEBIAN_IMAGE" >/dev/null
    log "imported $DEBIAN_IMAGE in $(elapsed "$t0") s"
  fi
}

# Node ($NODE_BIN with the headers beside it) and the host's npm as a build context for containers/node.
node_context() {
  local ctx="$LAB_ART/node-ctx" prefix npm inc
  prefix="$(dirname "$(dirname "$NODE_BIN")")"
  npm="$NPM_DIR"; inc="$prefix/include/node"
  [ -d "$npm" ] || die "npm not found at $npm (NODE_BIN=$NODE_BIN)"
  [ -f "$inc/node_api.h" ] || die "node headers not found at $inc (NODE_BIN=$NODE_BIN)"
  local stamp; stamp="stripped $("$NODE_BIN" --version) $(stat -c %Y "$NODE_BIN") $(md5sum < "$npm/package.json" | cut -c1-8) $(md5sum < /etc/ssl/certs/ca-certificates.crt 2>/dev/null | cut -c1-8)"
  if [ "$(cat "$ctx/.stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$ctx"; mkdir -p "$ctx/bin" "$ctx/lib/node_modules" "$ctx/include"
    # The official linux-x64 build carries its symbol table (~18 MB of 125): the image does not need it.
    strip -o "$ctx/bin/node" "$NODE_BIN" || die "cannot strip $NODE_BIN (binutils)"
    cp -a "$npm" "$ctx/lib/node_modules/npm"
    cp -a "$inc" "$ctx/include/node"
    mkdir -p "$ctx/etc"
    if [ -s /etc/ssl/certs/ca-certificates.crt ]; then cp /etc/ssl/certs/ca-certificates.crt "$ctx/etc/host-ca.crt"; else : > "$ctx/etc/host-ca.crt"; fi
    echo "$stamp" > "$ctx/.stamp"
  fi
  echo "$ctx"
}

pbuild() {
  # docker format: podman drops HEALTHCHECK from OCI images (docker builds nothing else). RUN
  # steps use the host network (apt, npm registry): no NAT bridge, so no netavark rules and no
  # ip_forward change.
  local fmt=()
  [ "$ENGINE" = docker ] || fmt=(--format docker)
  # shellcheck disable=SC2046
  ctr build --quiet "${fmt[@]}" --network host $(build_ulimits) "$@" >/dev/null
}

image_mb() { ctr image inspect --format '{{.Size}}' "$1" | awk '{printf "%.1f", $1/1e6}'; }

cmd_build() {
  require_prereqs
  write_engine_conf
  ensure_engine
  local t0 t ctx
  t0=$(now)
  build_debian
  if [ -z "$NODE_BIN" ]; then
    NODE_BIN="$("$REPO_DIR/scripts/node-dist.sh" "$LAB_ART/node-dist")/bin/node" || die "cannot unpack Node 22 (scripts/node-dist.sh)"
  fi
  ctx="$(node_context)"
  t=$(now)
  pbuild --build-arg DEBIAN_IMAGE="$DEBIAN_IMAGE" --target node -t "$NODE_IMAGE" -f "$LAB_DIR/node/Containerfile" "$ctx"
  pbuild --build-arg DEBIAN_IMAGE="$DEBIAN_IMAGE" --target node-dev -t "$NODE_DEV_IMAGE" -f "$LAB_DIR/node/Containerfile" "$ctx"
  log "node images ($("$NODE_BIN" --version) from $NODE_BIN) in $(elapsed "$t") s"
  t=$(now)
  pbuild --build-arg DEBIAN_IMAGE="$DEBIAN_IMAGE" -t "$SS_IMAGE" -f "$LAB_DIR/strongswan/Containerfile" "$LAB_DIR/strongswan"
  log "strongSwan image in $(elapsed "$t") s"
  t=$(now)
  pbuild --build-arg BASE_IMAGE="$NODE_DEV_IMAGE" --build-arg RUNTIME_IMAGE="$NODE_IMAGE" \
    -t "$TUNSEC_IMAGE" -f "$REPO_DIR/Containerfile" "$REPO_DIR"
  log "tunsec image in $(elapsed "$t") s"
  local deb node ts
  deb=$(image_mb "$DEBIAN_IMAGE"); node=$(image_mb "$NODE_IMAGE"); ts=$(image_mb "$TUNSEC_IMAGE")
  echo "image sizes (MB): debian base $deb, node base $node, tunsec $ts;" \
    "tunsec over the Debian base $(awk -v a="$ts" -v b="$deb" 'BEGIN{printf "%.1f", a-b}') MB" \
    "(node $("$NODE_BIN" --version) $(awk -v a="$node" -v b="$deb" 'BEGIN{printf "%.1f", a-b}') MB + iproute2 and tunsec $(awk -v a="$ts" -v b="$node" 'BEGIN{printf "%.1f", a-b}') MB)"
  log "build done in $(elapsed "$t0") s"
}

images_present() {
  local i
  for i in "$DEBIAN_IMAGE" "$NODE_IMAGE" "$SS_IMAGE" "$TUNSEC_IMAGE"; do image_exists "$i" || return 1; done
}

# ------------------------------------------------------------------------------ PKI + configs
make_pki() {
  local pki="$LAB_ART/pki"
  [ -s "$pki/ca.pem" ] && return 0
  rm -rf "$pki"; mkdir -p "$pki"
  # ECDSA P-384 throughout, made with strongSwan's pki inside its image (no network)
  ctr run --rm --network none -v "$pki:/pki" \
    -e SS_ID="$SS_ID" -e TS_ID="$TS_ID" -e SS_IP="$SS_IP" -e TS_IP="$TS_IP" "$SS_IMAGE" \
    bash -euo pipefail -c '
      pki --gen --type ecdsa --size 384 --outform pem > /pki/ca-key.pem
      pki --self --ca --lifetime 30 --in /pki/ca-key.pem --type ecdsa \
          --dn "C=CH, O=tunsec lab, CN=tunsec lab throwaway CA" --outform pem > /pki/ca.pem
      for side in strongswan tunsec; do
        if [ $side = strongswan ]; then id=$SS_ID ip=$SS_IP; else id=$TS_ID ip=$TS_IP; fi
        pki --gen --type ecdsa --size 384 --outform pem > /pki/$side-key.pem
        pki --pub --in /pki/$side-key.pem --type ecdsa |
          pki --issue --lifetime 30 --cacert /pki/ca.pem --cakey /pki/ca-key.pem \
              --dn "C=CH, O=tunsec lab, CN=$side" --san "$id" --san "$ip" \
              --flag serverAuth --flag clientAuth --outform pem > /pki/$side-cert.pem
      done
      chmod 600 /pki/*key.pem' 2> >(grep -vE '^$|failed to (load|connect to syslog)' >&2 || true)
  log "throwaway CA and certificates (ECDSA P-384) in $pki"
}

# write_configs DIR MODE: MODE ip (fixed addresses: lab.sh up) or dns (compose: the
# strongSwan side finds tunsec by its service name, tunsec answers anyone the CA vouches for)
write_configs() {
  local dir="$1" mode="$2" pki="$LAB_ART/pki"
  rm -rf "$dir"; mkdir -p "$dir/tunsec/x509" "$dir/tunsec/x509ca" "$dir/tunsec/private" \
    "$dir/swanctl/x509" "$dir/swanctl/x509ca" "$dir/swanctl/private"
  cp "$pki/ca.pem" "$dir/tunsec/x509ca/ca.pem"; cp "$pki/ca.pem" "$dir/swanctl/x509ca/ca.pem"
  cp "$pki/tunsec-cert.pem" "$dir/tunsec/x509/cert.pem"
  install -m 600 "$pki/tunsec-key.pem" "$dir/tunsec/private/key.pem"
  cp "$pki/strongswan-cert.pem" "$dir/swanctl/x509/cert.pem"
  install -m 600 "$pki/strongswan-key.pem" "$dir/swanctl/private/key.pem"
  local ts_local ts_remote ts_start ss_addrs
  if [ "$mode" = ip ]; then
    ts_local="\"$TS_IP\""; ts_remote="\"$SS_IP\""; ts_start="${TS_START:-start}"
    ss_addrs="local_addrs = $SS_IP
    remote_addrs = $TS_IP"
  else
    ts_local="\"%any\""; ts_remote="\"%any\""; ts_start=none
    ss_addrs="remote_addrs = tunsec"
  fi
  cat > "$dir/tunsec/tunsec.yaml" <<EOC
# tunsec side of the container lab (generated by containers/lab.sh, mode $mode)
# tunnel mode and ESP-in-UDP: what strongSwan's kernel-libipsec can do
daemon:
  log: { default: 1, ike: 1 }
authorities:
  cacerts: [x509ca/ca.pem]
secrets:
  private-tunsec:
    file: private/key.pem
connections:
  $CONN:
    local_addrs: $ts_local
    remote_addrs: $ts_remote
    proposals: $IKE_PROPOSAL!
    encap: yes
    keyingtries: 0
    local:
      certs: [x509/cert.pem]
      id: $TS_ID
    remote:
      id: $SS_ID
    children:
      $CONN:
        mode: tunnel
        local_ts: dynamic
        remote_ts: dynamic
        esp_proposals: $ESP_PROPOSAL!
        start_action: $ts_start
EOC
  chmod 600 "$dir/tunsec/tunsec.yaml"
  cat > "$dir/swanctl/swanctl.conf" <<EOC
# strongSwan side of the container lab (generated by containers/lab.sh, mode $mode)
connections {
  $CONN {
    version = 2
    $ss_addrs
    proposals = $IKE_PROPOSAL
    encap = yes
    local {
      auth = pubkey
      certs = cert.pem
      id = $SS_ID
    }
    remote {
      auth = pubkey
      id = $TS_ID
    }
    children {
      $CONN {
        mode = tunnel
        esp_proposals = $ESP_PROPOSAL
        start_action = none
      }
    }
  }
}
EOC
}

# ------------------------------------------------------------------------------ up / down
wait_log() { # CONTAINER PATTERN TIMEOUT_S  (logs captured first: `podman logs | grep -q` trips pipefail)
  local c="$1" pat="$2" i out
  for i in $(seq 1 $(( $3 * 10 ))); do
    out="$(ctr logs "$c" 2>&1 || true)"
    grep -q -- "$pat" <<<"$out" && return 0
    [ "$(ctr container inspect -f '{{.State.Running}}' "$c" 2>/dev/null)" = true ] || break
    sleep 0.1
  done
  ctr logs "$c" 2>&1 | tail -50 >&2 || true
  die "$c: no '$pat' in its log"
}

# Without systemd podman cannot schedule the image's HEALTHCHECK (it logs errors on every
# start and stop); the check is then run on demand: `lab.sh podman healthcheck run NAME`.
# dockerd schedules health checks itself.
health_args() {
  if [ "$ENGINE" = docker ] || [ -d /run/systemd/system ]; then return 0; fi
  echo --health-interval=disable
}

start_strongswan() {
  if container_exists "$SS_CTR"; then remove_container "$SS_CTR" 5; fi
  ctr run -d --name "$SS_CTR" --hostname strongswan --network "$NET" --ip "$SS_IP" \
    "${SS_CAPS[@]}" -v "$LAB_ART/lab/swanctl:/etc/swanctl:ro" "$SS_IMAGE" >/dev/null
  wait_log "$SS_CTR" 'lab-charon: ready' 20
}

start_tunsec() {
  if container_exists "$TS_CTR"; then remove_container "$TS_CTR" 10; fi
  ctr run -d --name "$TS_CTR" --hostname tunsec --network "$NET" --ip "$TS_IP" \
    "${TS_CAPS[@]}" $(health_args) -v "$LAB_ART/lab/tunsec:/etc/tunsec:ro" "$TUNSEC_IMAGE" >/dev/null
}

cmd_up() {
  require_prereqs
  write_engine_conf
  ensure_engine
  images_present || cmd_build
  if ! network_exists "$NET"; then
    # internal: no NAT, no route out, no DNS (fixed addresses; docker's embedded DNS cannot be
    # turned off, the lab does not use it)
    local dns=(--disable-dns)
    [ "$ENGINE" = podman ] || dns=()
    ctr network create --internal "${dns[@]}" --subnet "$SUBNET" --gateway "$GATEWAY" "$NET" >/dev/null
    log "network $NET ($SUBNET, internal, $ENGINE)"
  fi
  make_pki
  write_configs "$LAB_ART/lab" ip
  start_strongswan
  log "strongSwan container $SS_CTR at $SS_IP: charon loaded"
  local t0 ms
  t0=$(date +%s%3N)
  start_tunsec
  if [ "${TS_START:-start}" = start ]; then
    wait_log "$TS_CTR" '"event":"child_established"' 30
    # the daemon's own timestamp of the event, against the moment `podman run` was called
    local line
    line="$(ctr logs "$TS_CTR" 2>&1 | grep '"event":"child_established"' || true)"
    ms=$(date -d "$(sed -E -n '1s/^\{"time":"([^"]+)".*/\1/p' <<<"$line")" +%s%3N)
    echo "container start -> CHILD_SA installed: $((ms - t0)) ms"
  else
    wait_log "$TS_CTR" '"event":"daemon_started"' 30
  fi
  cmd_status
}

cmd_status() {
  ctr ps -a --filter "name=tunsec-lab-" --format '{{.Names}}  {{.Status}}  {{.Image}}'
  if container_exists "$TS_CTR"; then echo "--- tunsec list-sas ($TS_CTR)"; ctr exec "$TS_CTR" tunsec list-sas || true; fi
  if container_exists "$SS_CTR"; then echo "--- swanctl --list-sas ($SS_CTR)"; ctr exec "$SS_CTR" swanctl --list-sas 2>/dev/null || true; fi
}

compose() {
  # with docker: `docker compose -f containers/compose.yaml` (see the file); not run by the lab
  [ "$ENGINE" = podman ] || die "compose-up/compose-down run podman-compose only (TUNSEC_CONTAINER_ENGINE=podman)"
  command -v podman-compose >/dev/null || die "podman-compose missing (run scripts/setup-system.sh as root)"
  TUNSEC_LAB_DIR="$LAB_ART" TUNSEC_IMAGE="$TUNSEC_IMAGE" STRONGSWAN_IMAGE="$SS_IMAGE" \
    podman-compose -p "$COMPOSE_PROJECT" -f "$LAB_DIR/compose.yaml" "$@"
}

cmd_compose_up() {
  [ "$ENGINE" = podman ] || die "compose-up runs podman-compose only (with docker: \`docker compose -f containers/compose.yaml\`, see the file)"
  require_prereqs
  write_engine_conf
  images_present || cmd_build
  make_pki
  write_configs "$LAB_ART/compose" dns
  local t0 i
  t0=$(now)
  compose up -d >"$LAB_ART/compose-up.out" 2>&1 || { cat "$LAB_ART/compose-up.out" >&2; die "podman-compose up failed"; }
  for i in $(seq 1 300); do
    podman exec "$SS_CTR" swanctl --list-sas 2>/dev/null | grep -q INSTALLED && break
    sleep 0.1
  done
  podman exec "$SS_CTR" swanctl --list-sas 2>/dev/null | grep -q INSTALLED ||
    { podman logs "$SS_CTR" 2>&1 | tail -30 >&2; podman logs "$TS_CTR" 2>&1 | tail -30 >&2; die "no CHILD_SA after compose up"; }
  echo "compose up -> CHILD_SA installed: $(elapsed "$t0") s"
  cmd_status
}

# netavark's DNS server (aardvark-dns) leaves by itself once no network needs it, but not at once:
# wait for it, and stop it if it still runs with no network configuration left to serve.
AARDVARK_DIR=/run/containers/networks/aardvark-dns
stop_idle_aardvark() {
  local dir=$AARDVARK_DIR pid=$1 i
  [ -n "$pid" ] && [ "$pid" -gt 1 ] 2>/dev/null || return 0
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  if [ -z "$(find "$dir" -mindepth 1 -maxdepth 1 ! -name aardvark.pid ! -name '*.lock' -print -quit)" ] && grep -q aardvark "/proc/$pid/comm" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    log "stopped idle aardvark-dns ($pid)"
  fi
}

cmd_down() {
  if [ "$ENGINE" = docker ]; then down_docker; else down_podman; fi
  rm -rf "$LAB_ART/pki" "$LAB_ART/lab" "$LAB_ART/compose" "$LAB_ART/compose-up.out"
  if [ "${PURGE:-0}" = 1 ]; then
    # containers/storage may keep its overlay directory bind-mounted
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done \
      < <(awk -v a="$LAB_ART" -v r="$LAB_RUN" 'index($5,a)==1 || index($5,r)==1 {print $5}' /proc/self/mountinfo | sort -r)
    rm -rf "$LAB_ART" "$LAB_RUN"
    log "purged $LAB_ART and $LAB_RUN"
  fi
  log "down"
}

down_podman() {
  local c n aardvark
  # its PID before the networks go (it may remove the file on its way out)
  aardvark="$(cat "$AARDVARK_DIR/aardvark.pid" 2>/dev/null || true)"
  if [ -f "$CONTAINERS_CONF" ]; then
    if command -v podman-compose >/dev/null && [ -n "$(podman ps -a -q --filter "label=io.podman.compose.project=$COMPOSE_PROJECT")" ]; then
      compose down -t 10 >/dev/null 2>&1 || true
    fi
    for c in "$TS_CTR" "$SS_CTR"; do
      # tunsec first and with time to send its DELETEs
      if podman container exists "$c"; then remove_container "$c" 10; log "removed container $c"; fi
    done
    for n in "$NET" "$COMPOSE_NET"; do
      if podman network exists "$n"; then podman network rm -f "$n" >/dev/null; log "removed network $n"; fi
    done
    if [ "${PURGE:-0}" = 1 ]; then podman rmi -a -f >/dev/null 2>&1 || true; fi
  fi
  stop_idle_aardvark "$aardvark"
  [ "${KEEP_FW:-0}" = 1 ] || remove_netavark_fw
}

# containers and network, then the lab's own dockerd (its images stay in $LAB_ART/docker
# unless PURGE=1); a daemon that is not running is not started for this
down_docker() {
  local c
  if ctr version >/dev/null 2>&1; then
    for c in "$TS_CTR" "$SS_CTR"; do
      if container_exists "$c"; then remove_container "$c" 10; log "removed container $c"; fi
    done
    if network_exists "$NET"; then ctr network rm "$NET" >/dev/null; log "removed network $NET"; fi
  fi
  stop_engine
}

case "${1:-}" in
  build) cmd_build ;;
  up) cmd_up ;;
  status) cmd_status ;;
  down) cmd_down ;;
  compose-up) cmd_compose_up ;;
  compose-down) cmd_down ;;
  podman) shift; exec podman "$@" ;;
  docker) shift; ENGINE=docker; ctr "$@" ;;
  engine) shift; ctr "$@" ;;
  tunsec) shift; ctr exec "$TS_CTR" tunsec "$@" ;;
  swanctl) shift; ctr exec "$SS_CTR" swanctl "$@" ;;
  *) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
