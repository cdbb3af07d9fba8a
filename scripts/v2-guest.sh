#!/usr/bin/env bash
# scripts/v2-guest.sh 'COMMAND' -- rsrun's pure cgroup v2 test lane (make test-v2): run
# COMMAND as root inside a throwaway QEMU guest whose kernel (Debian's linux-image-*-amd64)
# runs pure cgroup v2 (cgroup_no_v1=all; cpuset cpu io memory hugetlb pids rdma misc on the
# unified hierarchy, all enabled in the root cgroup.subtree_control).
#
# The kernel, initramfs, shares and QEMU are scripts/guest-lib.sh's. Guest view of the host:
#   /            host root, read-only 9p + tmpfs overlay (writes are thrown away)
#   $PWD         host CWD, read-WRITE 9p (same path as on the host); command starts here
#   /tmp /run    fresh tmpfs;  /sys/fs/cgroup  cgroup2;  /lib/modules/<guest kver> guest modules
# stage2 switches root to the overlay with bash as PID 1 (not a chroot: the kernel refuses
# CLONE_NEWUSER to a chrooted process, so user namespaces work here as on a host).
# COMMAND runs under `bash -c` with the caller's exported environment, stdin=/dev/null.
# stdout/stderr of COMMAND are streamed to this script's stdout/stderr; the script exits
# with COMMAND's exit status (125 = harness failure, 124 = timeout).
#
# Env knobs: V2_MEM (MiB, 1536)  V2_CPUS (2)  V2_TIMEOUT (s, 1800)  V2_ACCEL (auto|kvm|tcg)
#            V2_CACHE (/var/cache/rsrun-guest)  V2_KERNEL_PKG (e.g. linux-image-6.1.0-56-amd64)
#            V2_APPEND (extra kernel args)  V2_VERBOSE=1 (timings + guest console log on stderr)
#            V2_CONSOLE_LOG=path (keep console log)
set -euo pipefail

GUEST=v2-guest
. "$(dirname "$0")/guest-lib.sh"
guest_knobs V2

[ $# -ge 1 ] || die "usage: $0 'COMMAND'"
guest_prepare "$@"
guest_ctl V2_GUEST=1

# Stage 2 of the guest's boot, run by the initramfs: the root overlay, the kernel's file
# systems and the shares on it, then bash as PID 1 there (run-cmd).
cat > "$CTL/stage2" <<STAGE2
P9="trans=virtio,version=9p2000.L,msize=262144"
fail() { echo "v2-init: \$*" >/dev/ttyS0; echo 125 > /ctl/rc; sync; poweroff -f; }
cat /proc/uptime > /ctl/t_init
mount -t 9p -o \$P9,ro,cache=loose guestroot /lower || fail "mount the host root"
mount -t tmpfs -o mode=755 tmpfs /upper && mkdir -p /upper/u /upper/w
mount -t overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w overlay /newroot || fail "overlay"
R=/newroot
mount -t proc proc \$R/proc; mount -t sysfs sysfs \$R/sys; mount -t devtmpfs devtmpfs \$R/dev
mkdir -p \$R/dev/pts \$R/dev/shm \$R/dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666 devpts \$R/dev/pts; mount -t tmpfs -o mode=1777 tmpfs \$R/dev/shm
mount -t mqueue mqueue \$R/dev/mqueue 2>/dev/null
mount -t cgroup2 -o nsdelegate cgroup2 \$R/sys/fs/cgroup || fail "cgroup2"
for c in \$(cat \$R/sys/fs/cgroup/cgroup.controllers); do echo "+\$c" > \$R/sys/fs/cgroup/cgroup.subtree_control; done
KV=\$(uname -r)
if [ -d "\$R$KC/lib/modules/\$KV" ]; then mkdir -p \$R/lib/modules/\$KV && mount --bind "\$R$KC/lib/modules/\$KV" \$R/lib/modules/\$KV; fi
mount -t tmpfs -o mode=755 tmpfs \$R/run; mount -t tmpfs -o mode=1777 tmpfs \$R/tmp
mkdir -p \$R/run/guest && mount --move /ctl \$R/run/guest || fail "move ctl"
CWD=$(q "$HOST_CWD")
if [ "\$CWD" != / ]; then mkdir -p "\$R\$CWD" && mount -t 9p -o \$P9,cache=mmap guestcwd "\$R\$CWD" || fail "mount cwd"; fi
hostname v2guest; ip link set lo up
rm -f \$R/.dockerenv \$R/run/.containerenv
umount /proc /sys /dev 2>/dev/null
exec switch_root \$R /bin/bash /run/guest/run-cmd
STAGE2

# PID 1 of the guest: COMMAND (bash reaps the orphans reparented to it), then power off.
{
  echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  guest_run_cmd_script
  echo "umount $(q "$HOST_CWD") 2>/dev/null"
  echo "exec /bin/busybox poweroff -f"
} > "$CTL/run-cmd"

guest_run "cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 ${V2_APPEND:-}"
guest_finish
