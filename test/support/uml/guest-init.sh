#!/bin/sh
# PID 1 of a tunsec test guest (User-Mode Linux, started by test/support/uml.ts).
#
# Root is the host's / over hostfs, read-only. The kernel command line passes
# (as environment) GUEST_STATE: the host directory of this guest, mounted
# read-write at /mnt/state; GUEST_IP4 / GUEST_IP6; GUEST_MODULES (the module
# tree); GUEST_LOAD (modules loaded at boot, comma-separated); GUEST_ON_DEMAND=0
# (no on-demand module loading by the kernel).
#
# Before it says ready, the guest checks that its kernel can create the ESP SAs
# the tests need (esp_check below); if it cannot, /mnt/state/failed says why
# and the guest powers off, which the host turns into a boot error.
#
# After setup this becomes the command agent: the host writes jobs as
# /mnt/state/jobs/<id>.sh; each runs once in the background, its output goes
# to /mnt/state/done/<id>.out and its exit status, last, to <id>.rc.
# A file jobs/poweroff stops the guest.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HOME=/root
LANG=C
export PATH HOME LANG
umask 022
# No XSTATE switching in this UML (see xstate-shim.c): keep userspace off AVX.
GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX,-AVX2,-FMA,-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD,-AVX_Fast_Unaligned_Load
OPENSSL_ia32cap="~0x1000000000000000:~0x5e42d0230020"
export GLIBC_TUNABLES OPENSSL_ia32cap

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
for d in /tmp /run /var /mnt; do mount -t tmpfs -o mode=755 tmpfs "$d"; done
chmod 1777 /tmp
mkdir -p /var/tmp /var/log /var/lib /var/cache /run/lock /mnt/state /mnt/mods/lib
chmod 1777 /var/tmp
ln -s /run /var/run
mount -t hostfs -o "$GUEST_STATE" hostfs /mnt/state
exec >/mnt/state/init.log 2>&1
mkdir -p /mnt/state/jobs /mnt/state/done
echo "init: start $(cut -d' ' -f1 /proc/uptime) kernel $(uname -r)"

power_off() {
  rm -f /mnt/state/ready
  echo "init: poweroff"
  kill -TERM -1 2>/dev/null
  sleep 0.3
  sync
  umount /mnt/state 2>/dev/null
  echo o > /proc/sysrq-trigger
  sleep 5
  exec poweroff -f
}

# The host has no modules for this kernel: modprobe (and the kernel's
# on-demand loader) use the package's tree through a private root, with an
# empty configuration directory instead of the host's /etc/modprobe.d (the
# guest must not depend on what the host has configured). The kernel starts
# its loader with an environment of its own (HOME, TERM, PATH): without the
# AVX limits above, kmod's glibc takes AVX-512 string functions whose
# registers this UML does not preserve, and loads on demand fail at random
# (getopt: "invalid option -- 'q'"). The wrapper carries the limits.
ln -s "${GUEST_MODULES:-/usr/lib/uml/modules}" /mnt/mods/lib/modules
mkdir -p /mnt/mods/etc/modprobe.d
{
  echo '#!/bin/sh'
  echo "GLIBC_TUNABLES='$GLIBC_TUNABLES'"
  echo "OPENSSL_ia32cap='$OPENSSL_ia32cap'"
  echo 'export GLIBC_TUNABLES OPENSSL_ia32cap'
  echo 'exec /sbin/modprobe -C /mnt/mods/etc/modprobe.d -d /mnt/mods "$@"'
} > /run/modprobe
chmod 755 /run/modprobe
if [ "$GUEST_ON_DEMAND" = 0 ]; then
  echo > /proc/sys/kernel/modprobe
else
  echo /run/modprobe > /proc/sys/kernel/modprobe
fi
modprobe_failed=
for m in $(echo "$GUEST_LOAD" | tr , ' '); do
  /run/modprobe "$m" || modprobe_failed="$modprobe_failed $m"
done
[ -n "$modprobe_failed" ] && echo "init: modprobe failed:$modprobe_failed"

# ESP check: the SA the tests install, AES-GCM-16 (rfc4106(gcm(aes)), 128-bit
# ICV) in transport mode, IPv4 and IPv6, added and deleted. The kernel
# allocates the AEAD and its IV generator (seqiv, which takes the default
# RNG, stdrng: drbg) when the SA is added, so a missing crypto module shows
# here, by name, instead of as failing tests later.
esp_check() { # src dst
  out=$(ip xfrm state add src "$1" dst "$2" proto esp spi 0x7e57 mode transport \
    aead 'rfc4106(gcm(aes))' 0x000102030405060708090a0b0c0d0e0f10111213 128 2>&1) ||
    { echo "ip xfrm state add src $1 dst $2 proto esp ... aead 'rfc4106(gcm(aes))' ... 128: $out"; return 1; }
  out=$(ip xfrm state delete src "$1" dst "$2" proto esp spi 0x7e57 2>&1) ||
    { echo "ip xfrm state delete src $1 dst $2 proto esp spi 0x7e57: $out"; return 1; }
}
boot_failed() { # message
  {
    echo "$1"
    if grep -q '^name *: stdrng$' /proc/crypto; then
      echo 'stdrng (the default RNG seqiv takes): present'
    else
      echo 'stdrng (the default RNG seqiv takes): missing, drbg not loaded'
    fi
    echo "modprobe failed:${modprobe_failed:- none}"
    echo "modules: $(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"
    echo "/proc/crypto: $(sed -n 's/^name *: //p' /proc/crypto | sort -u | tr '\n' ' ')"
  } > /mnt/state/failed.part
  mv /mnt/state/failed.part /mnt/state/failed
  sed 's/^/init: /' /mnt/state/failed
  power_off
}
for pair in '192.0.2.1 192.0.2.2' '2001:db8::1 2001:db8::2'; do
  # shellcheck disable=SC2086 # two words: src dst
  msg=$(esp_check $pair) || boot_failed "ESP check failed: $msg"
done
echo "init: ESP check passed (rfc4106(gcm(aes)), IPv4 and IPv6)"

hostname tunsec-uml
ip link set lo up
# The vector NIC's TSO/GSO path loses segments (TCP crawls): off.
ethtool -K vec0 tso off gso off || echo "init: ethtool failed"
ip link set vec0 up
[ -n "$GUEST_IP4" ] && ip addr add "$GUEST_IP4" dev vec0
[ -n "$GUEST_IP6" ] && ip addr add "$GUEST_IP6" dev vec0 nodad
ip -br addr
echo "init: ready $(cut -d' ' -f1 /proc/uptime)"
: > /mnt/state/ready

cd /tmp
mkdir -p /run/jobs
while :; do
  for job in $(ls /mnt/state/jobs); do
    case "$job" in
      poweroff)
        rm -f /mnt/state/jobs/poweroff
        power_off ;;
      *.sh)
        [ -e "/run/jobs/$job" ] && continue
        : > "/run/jobs/$job"
        ( sh "/mnt/state/jobs/$job" > "/mnt/state/done/$job.out" 2>&1 < /dev/null
          echo $? > "/mnt/state/done/$job.rc.part"
          mv "/mnt/state/done/$job.rc.part" "/mnt/state/done/$job.rc" ) & ;;
    esac
  done
  sleep 0.05
done
