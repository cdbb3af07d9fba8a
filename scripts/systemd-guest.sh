#!/usr/bin/env bash
# systemd-guest.sh [--v2|--hybrid] 'COMMAND' -- run COMMAND as root in a throwaway QEMU guest
# whose PID 1 is the host's own systemd (/lib/systemd/systemd), for the tests of rsrun's
# systemd cgroup driver (this host's PID 1 is not systemd).
#
#   --v2      (default) pure cgroup v2: systemd.unified_cgroup_hierarchy=1
#   --hybrid  a v1/hybrid systemd host: systemd.unified_cgroup_hierarchy=0 (v1 controllers,
#             name=systemd, and the cgroup2 `unified` mount)
#
# How the guest is made:
#   kernel     Debian's linux-image (the one linux-image-amd64 depends on), cached uncompressed
#              in $SD_CACHE; the initramfs is busybox + the virtio/9p/overlay modules.
#   /          the host root over 9p, read-only, under a tmpfs overlay (writes are thrown away)
#   $PWD       the host's CWD, read-WRITE over 9p, at the same path; COMMAND starts there
#   /run/guest the control dir shared with this script (the command, its exit status)
#   init       the initramfs switches root to the overlay and execs systemd with
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

SD_MEM=${SD_MEM:-1536}
SD_CPUS=${SD_CPUS:-2}
SD_TIMEOUT=${SD_TIMEOUT:-1800}
SD_ACCEL=${SD_ACCEL:-auto}
SD_CACHE=${SD_CACHE:-/var/cache/rsrun-guest}
SD_KERNEL_PKG=${SD_KERNEL_PKG:-}
SD_VERBOSE=${SD_VERBOSE:-0}

die() { echo "systemd-guest: $*" >&2; exit 125; }
log() { if [ "$SD_VERBOSE" = 1 ]; then echo "systemd-guest: $*" >&2; fi; }
now() { date +%s.%N; }
T0=$(now)

[ $# -ge 1 ] || die "usage: $0 [--v2|--hybrid] 'COMMAND'"
[ "$(id -u)" = 0 ] || die "must run as root"
[ -x /lib/systemd/systemd ] || die "/lib/systemd/systemd not found (install systemd and dbus)"
[ -e /lib/systemd/system/dbus.socket ] || die "dbus.socket not found (install dbus)"
CMD="$*"
HOST_CWD=$(pwd -P)

# ---------------------------------------------------------------- packages
apt_retry() {
  local i
  for i in $(seq 1 30); do
    if DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 -q "$@"; then return 0; fi
    echo "systemd-guest: apt-get $* failed (attempt $i), retrying in 10s" >&2; sleep 10
  done
  return 1
}
APT_UPDATED=0
apt_update_once() { [ $APT_UPDATED = 1 ] || { apt_retry update >&2 || die "apt-get update failed"; APT_UPDATED=1; }; }
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || missing+=(busybox-static)
command -v xz >/dev/null || missing+=(xz-utils)
[ -x /usr/sbin/depmod ] || [ -x /sbin/depmod ] || missing+=(kmod)
if [ ${#missing[@]} -gt 0 ]; then
  apt_update_once
  apt_retry install -y --no-install-recommends "${missing[@]}" >&2 || die "cannot install ${missing[*]}"
fi
BUSYBOX=/bin/busybox

# ---------------------------------------------------------------- kernel + initramfs (cached)
mkdir -p "$SD_CACHE"
if [ -z "$SD_KERNEL_PKG" ]; then
  resolve() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
  SD_KERNEL_PKG=$(resolve || true)
  if [ -z "$SD_KERNEL_PKG" ]; then apt_update_once; SD_KERNEL_PKG=$(resolve || true); fi
  [ -n "$SD_KERNEL_PKG" ] || die "cannot resolve the linux-image-amd64 dependency"
fi
KC="$SD_CACHE/$SD_KERNEL_PKG"

# The initramfs only loads the modules and mounts the control share; the rest of the boot
# (stage2, below) comes from the control dir, so changing it needs no rebuild.
build_kernel_cache() {
  local tmp deb root kver mdir want m ir
  tmp=$(mktemp -d "$SD_CACHE/.build.XXXXXX")
  ( cd "$tmp" && chmod 777 . && { apt-get download -q "$SD_KERNEL_PKG" >&2 || { apt_update_once; apt-get download -q "$SD_KERNEL_PKG" >&2; }; } ) \
    || { rm -rf "$tmp"; die "apt-get download $SD_KERNEL_PKG failed"; }
  deb=$(ls "$tmp"/*.deb)
  root="$tmp/root"; dpkg-deb -x "$deb" "$root"
  if [ -d "$root/lib/modules" ]; then mdir="$root/lib/modules"; else mdir="$root/usr/lib/modules"; fi
  kver=$(ls "$mdir" | head -1)
  mkdir -p "$tmp/kc/lib/modules"; mv "$mdir/$kver" "$tmp/kc/lib/modules/$kver"
  PATH=$PATH:/usr/sbin:/sbin depmod -b "$tmp/kc" "$kver" 2>/dev/null \
    || "$BUSYBOX" depmod -b "$tmp/kc" "$kver" || die "depmod failed"
  # An uncompressed ELF vmlinux (PVH entry) skips seconds of in-guest decompression under TCG.
  local k="$root/boot/vmlinuz-$kver" pos
  cp "$k" "$tmp/kc/vmlinuz"
  pos=$(LC_ALL=C grep -abo $'\xfd7zXZ\x00' "$k" | head -1 | cut -d: -f1 || true)
  if [ -n "$pos" ] && tail -c +$((pos+1)) "$k" | xz -dc > "$tmp/kc/vmlinux" 2>/dev/null; [ -s "$tmp/kc/vmlinux" ] \
     && head -c4 "$tmp/kc/vmlinux" | grep -q ELF; then :; else rm -f "$tmp/kc/vmlinux"; fi
  ir="$tmp/ir"; mkdir -p "$ir"/{bin,dev,proc,sys,newroot,lower,upper,ctl} "$ir/lib/modules/$kver"
  cp "$BUSYBOX" "$ir/bin/busybox"
  want="virtio_pci 9pnet_virtio 9p overlay virtio_console"
  local dep="$tmp/kc/lib/modules/$kver/modules.dep" todo=$want seen="" line f
  : > "$ir/lib/modules/$kver/modules.dep"
  while [ -n "$todo" ]; do
    set -- $todo; m=$1; shift; todo="$*"
    case " $seen " in *" $m "*) continue;; esac; seen="$seen $m"
    line=$(grep -E "(^|/)${m//_/[_-]}\.ko(\.xz)?:" "$dep" | head -1) || die "module $m not found in $SD_KERNEL_PKG"
    echo "$line" >> "$ir/lib/modules/$kver/modules.dep"
    f=${line%%:*}; mkdir -p "$ir/lib/modules/$kver/$(dirname "$f")"; cp "$tmp/kc/lib/modules/$kver/$f" "$ir/lib/modules/$kver/$f"
    for f in ${line#*:}; do f=${f##*/}; todo="$todo ${f%%.ko*}"; done
  done
  echo "$want" > "$ir/modules.list"
  cat > "$ir/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.list); do modprobe "$m" || echo "guest-init: modprobe $m failed" >/dev/ttyS0; done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 guestctl /ctl \
  || { echo "guest-init: mount ctl failed" >/dev/ttyS0; poweroff -f; }
exec sh /ctl/stage2
INIT
  chmod 755 "$ir/init"
  ( cd "$ir" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null ) | gzip -1 > "$tmp/kc/initrd.gz"
  echo "$kver" > "$tmp/kc/kver"
  rm -rf "$KC"; mv "$tmp/kc" "$KC"; rm -rf "$tmp"
}
if [ ! -f "$KC/kver" ]; then
  exec 9>"$SD_CACHE/.lock"; flock 9
  [ -f "$KC/kver" ] || { log "preparing $SD_KERNEL_PKG in $KC"; build_kernel_cache; }
  flock -u 9; exec 9>&-
fi
KVER=$(cat "$KC/kver")
KERNEL="$KC/vmlinux"; [ -f "$KERNEL" ] || KERNEL="$KC/vmlinuz"
T_PREP=$(now)

# ---------------------------------------------------------------- accelerator
# A PVM /dev/kvm (kvm_pvm) cannot run a stock kernel: TCG there.
if [ "$SD_ACCEL" = auto ]; then
  if [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; } && [ ! -d /sys/module/kvm_pvm ]; then
    SD_ACCEL=kvm; else SD_ACCEL=tcg; fi
fi
if [ "$SD_ACCEL" = kvm ]; then ACCEL=(-accel kvm -cpu host); else ACCEL=(-accel tcg,thread=multi -cpu max); fi

# ---------------------------------------------------------------- per-run control dir
CTL=$(mktemp -d /tmp/systemd-guest.XXXXXX)
QPID=""
cleanup() { [ -n "$QPID" ] && kill "$QPID" 2>/dev/null; rm -rf "$CTL"; }
trap cleanup EXIT
trap 'exit 130' INT; trap 'exit 143' TERM
q() { printf '%q' "$1"; }
{
  export -p | grep -Ev '^declare -[a-zA-Z-]* (PWD|OLDPWD|SHLVL|_|HOSTNAME|TMPDIR|XDG_RUNTIME_DIR|NOTIFY_SOCKET|INVOCATION_ID|JOURNAL_STREAM|LISTEN_[A-Z]*|SYSTEMD_[A-Z_]*)(=|$)' || true
  echo "export SYSTEMD_GUEST=$CGMODE"
  echo "cd -- $(q "$HOST_CWD") || exit 126"
  echo "exec /bin/bash -c $(q "$CMD")"
} > "$CTL/cmd.sh"

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

# Run by rsrun-guest.service: COMMAND with its output on the virtio ports, then the status.
cat > "$CTL/run-cmd" <<'RUNCMD'
cat /proc/uptime > /run/guest/t_start
OUT=/dev/null; ERR=/dev/null
for d in /sys/class/virtio-ports/*; do
  case "$(cat $d/name)" in guestout) OUT=/dev/${d##*/};; guesterr) ERR=/dev/${d##*/};; esac
done
rc=0
/bin/bash /run/guest/cmd.sh </dev/null >$OUT 2>$ERR || rc=$?
sync
echo $rc > /run/guest/rc
cat /proc/uptime > /run/guest/t_end
exit 0
RUNCMD
: > "$CTL/out"; : > "$CTL/err"
CONSOLE="$CTL/console.log"

if [ $CGMODE = v2 ]; then CGARGS="systemd.unified_cgroup_hierarchy=1"
else CGARGS="systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=0"; fi
CWD_SHARE=()
[ "$HOST_CWD" != / ] && CWD_SHARE=(-fsdev "local,id=fscwd,path=${HOST_CWD//,/,,},security_model=passthrough,multidevs=remap"
                                   -device virtio-9p-pci,fsdev=fscwd,mount_tag=guestcwd)
timeout -k 10 "$SD_TIMEOUT" qemu-system-x86_64 \
  -nodefaults -no-user-config -display none -no-reboot -machine pc "${ACCEL[@]}" \
  -smp "$SD_CPUS" -m "$SD_MEM" \
  -kernel "$KERNEL" -initrd "$KC/initrd.gz" \
  -append "console=ttyS0 quiet panic=-1 mitigations=off apparmor=0 $CGARGS fstab=no systemd.show_status=0 systemd.log_level=warning systemd.log_target=kmsg systemd.firstboot=0 systemd.hostname=rsrun-guest systemd.unit=rsrun-guest.target ${SD_APPEND:-}" \
  -serial "file:$CONSOLE" \
  -fsdev "local,id=fsctl,path=$CTL,security_model=none" -device virtio-9p-pci,fsdev=fsctl,mount_tag=guestctl \
  -fsdev "local,id=fsroot,path=/,security_model=none,readonly=on,multidevs=remap" \
  -device virtio-9p-pci,fsdev=fsroot,mount_tag=guestroot \
  "${CWD_SHARE[@]}" \
  -device virtio-serial-pci \
  -chardev "file,id=cout,path=$CTL/out,append=on" -device virtserialport,chardev=cout,name=guestout \
  -chardev "file,id=cerr,path=$CTL/err,append=on" -device virtserialport,chardev=cerr,name=guesterr \
  </dev/null >"$CTL/qemu.log" 2>&1 &
QPID=$!
tail -q -c +1 -f --pid=$QPID "$CTL/out" & T1=$!
tail -q -c +1 -f --pid=$QPID "$CTL/err" >&2 & T2=$!
qrc=0; wait $QPID || qrc=$?
QPID=""
wait $T1 $T2 2>/dev/null || true
T_END=$(now)

if [ -f "$CTL/rc" ]; then rc=$(cat "$CTL/rc"); else rc=125; fi
[ $qrc = 124 ] && rc=124
if [ ! -f "$CTL/rc" ] || [ "$rc" = 125 ] || [ "$SD_VERBOSE" = 1 ]; then
  { echo "----- systemd-guest: qemu rc=$qrc, guest console:"; cat "$CTL/qemu.log" "$CONSOLE"; echo "-----"; } >&2
fi
[ -n "${SD_CONSOLE_LOG:-}" ] && cp "$CONSOLE" "$SD_CONSOLE_LOG"
if [ -f "$CTL/t_start" ]; then
  log "cgroup=$CGMODE accel=$SD_ACCEL kernel=$KVER cpus=$SD_CPUS mem=${SD_MEM}M;" \
      "prep=$(awk "BEGIN{print $T_PREP - $T0}")s guest-uptime@stage2=$(cut -d' ' -f1 "$CTL/t_init")s" \
      "@command-start=$(cut -d' ' -f1 "$CTL/t_start")s @command-end=$(cut -d' ' -f1 "$CTL/t_end" 2>/dev/null)s" \
      "total-wall=$(awk "BEGIN{print $T_END - $T0}")s rc=$rc"
fi
exit "$rc"
