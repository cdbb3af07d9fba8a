#!/usr/bin/env bash
# systemd-guest.sh [--v2|--hybrid] 'COMMAND' -- run COMMAND as root in a throwaway QEMU guest
# whose PID 1 is the host's own systemd (/lib/systemd/systemd), for the tests of rsrun's
# systemd cgroup driver (this host's PID 1 is not systemd).
#
#   --v2      (default) pure cgroup v2: systemd.unified_cgroup_hierarchy=1
#   --hybrid  a v1/hybrid systemd host: systemd.unified_cgroup_hierarchy=0 (v1 controllers,
#             name=systemd, and the cgroup2 `unified` mount)
#
# The kernel, initramfs, shares and QEMU are scripts/guest-lib.sh's. Here:
#   /          the host root over 9p, read-only, under a tmpfs overlay (writes are thrown away)
#   $PWD       the host's CWD, read-WRITE over 9p, at the same path; COMMAND starts there
#   /run/guest the control dir shared with this script (the command, its exit status)
#   init       stage2 switches root to the overlay and execs systemd with
#              systemd.unit=rsrun-guest.target: basic.target (so dbus.socket, sockets.target
#              and the system slices are up as on any host) plus rsrun-guest.service, which runs
#              COMMAND and powers the guest off with its status. Units a test does not need
#              (timers, journald, udev, the host's docker/podman/containerd, ...) are masked
#              so that the boot is short. AppArmor is off (apparmor=0): Docker and Podman
#              ask for their default profile where it is on, and rsrun does not apply
#              AppArmor profiles yet.
# Boot time here (TCG, 2 vCPUs, a loaded host): ~2 s to stage 2, ~2.6 s more from systemd to
# the command; 6.5 s wall for `true`, on v2 and hybrid alike (SD_VERBOSE=1 prints them).
# COMMAND runs under `bash -c` with the caller's exported environment, stdin=/dev/null; its
# stdout/stderr are streamed here; the script exits with COMMAND's status (125 = the guest
# failed before running it, 124 = timeout).
#
# Env: SD_MEM (MiB, 1536) SD_CPUS (2) SD_TIMEOUT (s, 1800) SD_ACCEL (auto|kvm|tcg)
#      SD_CACHE (/var/cache/rsrun-guest) SD_KERNEL_PKG SD_APPEND (extra kernel args)
#      SD_VERBOSE=1 (timings and the guest console on stderr) SD_CONSOLE_LOG=path
set -euo pipefail

CGMODE=v2
case "${1:-}" in
  --v2) CGMODE=v2; shift ;;
  --hybrid) CGMODE=hybrid; shift ;;
esac

GUEST=systemd-guest
. "$(dirname "$0")/guest-lib.sh"
guest_knobs SD

[ $# -ge 1 ] || die "usage: $0 [--v2|--hybrid] 'COMMAND'"
[ -x /lib/systemd/systemd ] || die "/lib/systemd/systemd not found (install systemd and dbus)"
[ -e /lib/systemd/system/dbus.socket ] || die "dbus.socket not found (install dbus)"
guest_prepare "$@"
guest_ctl "SYSTEMD_GUEST=$CGMODE" 'NOTIFY_SOCKET|INVOCATION_ID|JOURNAL_STREAM|LISTEN_[A-Z]*|SYSTEMD_[A-Z_]*'

# Units the tests do not need: masked (a symlink to /dev/null in the overlay's /etc).
MASK="timers.target apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer
 fstrim.timer man-db.timer podman-auto-update.timer
 systemd-journald.service systemd-journald.socket systemd-journald-dev-log.socket
 systemd-journald-audit.socket systemd-journal-flush.service systemd-journal-catalog-update.service
 systemd-udevd.service systemd-udev-trigger.service systemd-udev-settle.service
 systemd-timesyncd.service apparmor.service systemd-pstore.service systemd-firstboot.service
 systemd-random-seed.service systemd-repart.service systemd-sysusers.service
 systemd-tmpfiles-setup.service systemd-tmpfiles-setup-dev.service systemd-tmpfiles-clean.timer
 systemd-update-utmp.service systemd-update-done.service systemd-machine-id-commit.service
 systemd-binfmt.service proc-sys-fs-binfmt_misc.automount systemd-modules-load.service
 kmod-static-nodes.service systemd-sysctl.service systemd-remount-fs.service
 systemd-pcrphase.service systemd-pcrphase-sysinit.service ldconfig.service
 systemd-hwdb-update.service systemd-boot-system-token.service
 sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount sys-fs-fuse-connections.mount
 dev-hugepages.mount tmp.mount systemd-ask-password-console.path systemd-ask-password-wall.path
 systemd-initctl.socket cryptsetup.target veritysetup.target integritysetup.target swap.target
 docker.socket docker.service podman.socket podman.service containerd.service e2scrub_reap.service
 getty.target console-getty.service serial-getty@ttyS0.service systemd-logind.service
 dbus-org.freedesktop.timesync1.service"

# Stage 2 of the guest's boot, run by the initramfs: the root overlay, the shares, the
# units, then systemd as PID 1.
cat > "$CTL/stage2" <<STAGE2
P9="trans=virtio,version=9p2000.L,msize=262144"
fail() { echo "guest-init: \$*" >/dev/ttyS0; echo 125 > /ctl/rc; poweroff -f; }
cat /proc/uptime > /ctl/t_init
mount -t 9p -o \$P9,ro,cache=loose guestroot /lower || fail "mount the host root"
mount -t tmpfs -o mode=755 tmpfs /upper && mkdir -p /upper/u /upper/w
mount -t overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w overlay /newroot || fail "overlay"
R=/newroot
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs \$R/run
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs \$R/tmp
mkdir -p \$R/run/guest && mount --move /ctl \$R/run/guest || fail "move ctl"
KV=\$(uname -r)
if [ -d "\$R$KC/lib/modules/\$KV" ]; then mkdir -p \$R/lib/modules/\$KV && mount --bind "\$R$KC/lib/modules/\$KV" \$R/lib/modules/\$KV; fi
CWD=$(q "$HOST_CWD")
if [ "\$CWD" != / ]; then mkdir -p "\$R\$CWD" && mount -t 9p -o \$P9,cache=mmap guestcwd "\$R\$CWD" || fail "mount cwd"; fi
E=\$R/etc/systemd/system
for u in $(echo $MASK); do rm -f \$E/\$u; ln -s /dev/null \$E/\$u; done
cat > \$E/rsrun-guest.target <<UNIT
[Unit]
Description=rsrun test guest
Requires=basic.target rsrun-guest.service
After=basic.target rsrun-guest.service
AllowIsolate=yes
UNIT
cat > \$E/rsrun-guest.service <<UNIT
[Unit]
Description=rsrun test command
Requires=dbus.socket
After=basic.target dbus.socket
SuccessAction=poweroff-immediate
FailureAction=poweroff-immediate
[Service]
Type=oneshot
ExecStart=/bin/bash /run/guest/run-cmd
StandardInput=null
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
UNIT
rm -f \$R/.dockerenv \$R/run/.containerenv
echo rsrun-guest > \$R/etc/hostname
umount /proc /sys /dev 2>/dev/null
exec switch_root \$R /lib/systemd/systemd
STAGE2

# Run by rsrun-guest.service: COMMAND, then systemd powers the guest off.
{ guest_run_cmd_script; echo "exit 0"; } > "$CTL/run-cmd"

if [ $CGMODE = v2 ]; then CGARGS="systemd.unified_cgroup_hierarchy=1"
else CGARGS="systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=0"; fi
guest_run "apparmor=0 $CGARGS fstab=no systemd.show_status=0 systemd.log_level=warning systemd.log_target=kmsg systemd.firstboot=0 systemd.hostname=rsrun-guest systemd.unit=rsrun-guest.target ${SD_APPEND:-}"
guest_finish
