#!/bin/bash
# The strongSwan container's entrypoint: writes strongswan.conf for kernel-libipsec, runs
# charon in the foreground (log on stderr), loads /etc/swanctl once the vici socket is up,
# and initiates $INITIATE (a child name) if set. SIGTERM stops charon (which deletes its SAs).
# With arguments, runs them instead (pki, a shell).
set -euo pipefail
if [ $# -gt 0 ]; then exec "$@"; fi
[ -c /dev/net/tun ] || { echo "lab-charon: no /dev/net/tun (run with --device /dev/net/tun)" >&2; exit 1; }
mark="${FWMARK:-0x42}"
# kernel-libipsec has to come before kernel-netlink: the first kernel-ipsec backend loaded
# is used, and kernel-netlink then only handles addresses, routes and rules. charon's own
# sockets carry SO_MARK $mark and skip the routing table that sends the peer into ipsec0.
cat > /etc/strongswan.conf <<EOC
charon {
  load_modular = no
  load = random nonce openssl aes gcm sha1 sha2 hmac kdf pem pkcs1 pkcs8 x509 revocation constraints pubkey kernel-libipsec kernel-netlink socket-default vici
  install_routes = yes
  plugins {
    kernel-libipsec { allow_peer_ts = yes }
    kernel-netlink { fwmark = !$mark }
    socket-default { fwmark = $mark }
  }
  filelog {
    stderr {
      time_format = %Y-%m-%dT%H:%M:%S
      ike_name = yes
      flush_line = yes
      default = 1
      ike = ${LOG_IKE:-1}
      chd = ${LOG_CHD:-1}
      knl = ${LOG_KNL:-1}
      cfg = ${LOG_CFG:-1}
    }
  }
  syslog { daemon { default = -1 } auth { default = -1 } }
}
swanctl {
  load = pem pkcs1 pkcs8 x509 revocation constraints pubkey openssl random
}
EOC
/usr/lib/ipsec/charon &
charon=$!
trap 'kill -TERM "$charon" 2>/dev/null || true; wait "$charon" || true; exit 0' TERM INT
for _ in $(seq 1 100); do [ -S /var/run/charon.vici ] && break; sleep 0.05; done
[ -S /var/run/charon.vici ] || { echo "lab-charon: charon did not start" >&2; exit 1; }
swanctl --load-all --noprompt >&2
echo "lab-charon: ready" >&2
if [ -n "${INITIATE:-}" ]; then
  # retried: in compose the peer may not be listening yet
  for i in 1 2 3 4 5 6 7 8 9 10; do
    swanctl --initiate --child "$INITIATE" --timeout 10 >&2 && break
    echo "lab-charon: initiate $INITIATE failed (attempt $i), retrying" >&2; sleep 1
  done
fi
wait "$charon"
