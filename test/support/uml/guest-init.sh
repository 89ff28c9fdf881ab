#!/bin/sh
# PID 1 of a tunsec test guest (User-Mode Linux, started by test/support/uml.ts).
#
# Root is the host's / over hostfs, read-only. The kernel command line passes
# (as environment) GUEST_STATE: the host directory of this guest, mounted
# read-write at /mnt/state; GUEST_IP4 / GUEST_IP6 / GUEST_MODULES.
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

# The host has no modules for this kernel: modprobe (and the kernel's
# auto-loader) use the package's tree through a private root.
ln -s "${GUEST_MODULES:-/usr/lib/uml/modules}" /mnt/mods/lib/modules
printf '#!/bin/sh\nexec /sbin/modprobe -d /mnt/mods "$@"\n' > /run/modprobe
chmod 755 /run/modprobe
echo /run/modprobe > /proc/sys/kernel/modprobe
for m in ipv6 xfrm_user xfrm_algo esp4 esp6 gcm ghash_generic ctr seqiv echainiv authenc sha512_generic hmac; do
  /run/modprobe "$m" || echo "init: modprobe $m failed"
done

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
        rm -f /mnt/state/jobs/poweroff /mnt/state/ready
        echo "init: poweroff"
        kill -TERM -1 2>/dev/null
        sleep 0.3
        sync
        umount /mnt/state 2>/dev/null
        echo o > /proc/sysrq-trigger
        sleep 5
        exec poweroff -f ;;
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
