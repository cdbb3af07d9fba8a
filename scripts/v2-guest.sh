#!/usr/bin/env bash
# scripts/v2-guest.sh 'COMMAND' -- rsrun's pure cgroup v2 test lane (make test-v2): run
# COMMAND as root inside a throwaway QEMU guest
# whose kernel (Debian bookworm linux-image-*-amd64) runs pure cgroup v2
# (cgroup_no_v1=all; cpuset cpu io memory hugetlb pids rdma misc on the unified
# hierarchy, all enabled in the root cgroup.subtree_control).
#
# Guest view of the host:
#   /            host root, read-only 9p + tmpfs overlay (writes are thrown away)
#   $PWD         host CWD, read-WRITE 9p (same path as on the host); command starts here
#   /tmp /run    fresh tmpfs;  /sys/fs/cgroup  cgroup2;  /lib/modules/<guest kver> guest modules
# COMMAND runs under `bash -c` with the caller's exported environment, stdin=/dev/null.
# stdout/stderr of COMMAND are streamed to this script's stdout/stderr; the script exits
# with COMMAND's exit status (125 = harness failure, 124 = timeout).
#
# Env knobs: V2_MEM (MiB, 1536)  V2_CPUS (2)  V2_TIMEOUT (s, 1800)  V2_ACCEL (auto|kvm|tcg)
#            V2_CACHE (/var/cache/v2-guest)  V2_KERNEL_PKG (e.g. linux-image-6.1.0-56-amd64)
#            V2_APPEND (extra kernel args)  V2_VERBOSE=1 (timings + guest console log on stderr)  V2_CONSOLE_LOG=path (keep console log)
set -euo pipefail

V2_MEM=${V2_MEM:-1536}
V2_CPUS=${V2_CPUS:-2}
V2_TIMEOUT=${V2_TIMEOUT:-1800}
V2_ACCEL=${V2_ACCEL:-auto}
V2_CACHE=${V2_CACHE:-/var/cache/v2-guest}
V2_KERNEL_PKG=${V2_KERNEL_PKG:-}
V2_VERBOSE=${V2_VERBOSE:-0}

die() { echo "v2-guest: $*" >&2; exit 125; }
log() { if [ "$V2_VERBOSE" = 1 ]; then echo "v2-guest: $*" >&2; fi; }
now() { date +%s.%N; }
T0=$(now)

[ $# -ge 1 ] || die "usage: $0 'COMMAND'"
[ "$(id -u)" = 0 ] || die "must run as root"
CMD="$*"
HOST_CWD=$(pwd -P)

# ---------------------------------------------------------------- packages
apt_retry() { # apt may be locked by a concurrent installer: wait and retry
  local i
  for i in $(seq 1 30); do
    if DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 -q "$@"; then return 0; fi
    echo "v2-guest: apt-get $* failed (attempt $i), retrying in 10s" >&2; sleep 10
  done
  return 1
}
APT_UPDATED=0
apt_update_once() { [ $APT_UPDATED = 1 ] || { apt_retry update >&2 || die "apt-get update failed"; APT_UPDATED=1; }; }

missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx modprobe \
  && ! ldd /bin/busybox >/dev/null 2>&1 || missing+=(busybox-static)
command -v xz >/dev/null || missing+=(xz-utils)
[ -x /usr/sbin/depmod ] || [ -x /sbin/depmod ] || missing+=(kmod)   # guest `modprobe` is the host's kmod
if [ ${#missing[@]} -gt 0 ]; then
  apt_update_once
  apt_retry install -y --no-install-recommends "${missing[@]}" >&2 || die "cannot install ${missing[*]}"
fi
BUSYBOX=/bin/busybox

# ---------------------------------------------------------------- kernel + initramfs (cached)
mkdir -p "$V2_CACHE"
if [ -z "$V2_KERNEL_PKG" ]; then
  resolve() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
  V2_KERNEL_PKG=$(resolve || true)
  if [ -z "$V2_KERNEL_PKG" ]; then apt_update_once; V2_KERNEL_PKG=$(resolve || true); fi
  [ -n "$V2_KERNEL_PKG" ] || die "cannot resolve linux-image-amd64 dependency"
fi
KC="$V2_CACHE/$V2_KERNEL_PKG"

build_kernel_cache() {
  local tmp deb root kver mdir want m ir
  tmp=$(mktemp -d "$V2_CACHE/.build.XXXXXX")
  ( cd "$tmp" && chmod 777 . && { apt-get download -q "$V2_KERNEL_PKG" >&2 || { apt_update_once; apt-get download -q "$V2_KERNEL_PKG" >&2; }; } ) \
    || { rm -rf "$tmp"; die "apt-get download $V2_KERNEL_PKG failed"; }
  deb=$(ls "$tmp"/*.deb)
  root="$tmp/root"; dpkg-deb -x "$deb" "$root"
  if [ -d "$root/lib/modules" ]; then mdir="$root/lib/modules"; else mdir="$root/usr/lib/modules"; fi
  kver=$(ls "$mdir" | head -1)
  # module tree for the guest's /lib/modules/<kver>
  mkdir -p "$tmp/kc/lib/modules"; mv "$mdir/$kver" "$tmp/kc/lib/modules/$kver"
  # kmod depmod also writes the *.bin indexes the guest's (host's) kmod modprobe needs
  PATH=$PATH:/usr/sbin:/sbin depmod -b "$tmp/kc" "$kver" 2>/dev/null \
    || "$BUSYBOX" depmod -b "$tmp/kc" "$kver" || die "depmod failed"
  # Uncompressed ELF vmlinux (PVH entry): skips the ~8 s in-guest xz decompression under TCG
  local k="$root/boot/vmlinuz-$kver" pos
  cp "$k" "$tmp/kc/vmlinuz"
  pos=$(LC_ALL=C grep -abo $'\xfd7zXZ\x00' "$k" | head -1 | cut -d: -f1 || true)
  if [ -n "$pos" ] && tail -c +$((pos+1)) "$k" | xz -dc > "$tmp/kc/vmlinux" 2>/dev/null; [ -s "$tmp/kc/vmlinux" ] \
     && head -c4 "$tmp/kc/vmlinux" | grep -q ELF; then :; else rm -f "$tmp/kc/vmlinux"; fi
  # initramfs: static busybox + virtio/9p/overlay modules + /init
  ir="$tmp/ir"; mkdir -p "$ir"/{bin,dev,proc,sys,newroot,lower,upper,ctl} "$ir/lib/modules/$kver"
  cp "$BUSYBOX" "$ir/bin/busybox"
  want="virtio_pci 9pnet_virtio 9p overlay virtio_console"
  local dep="$tmp/kc/lib/modules/$kver/modules.dep" todo=$want seen="" line f
  : > "$ir/lib/modules/$kver/modules.dep"
  while [ -n "$todo" ]; do
    set -- $todo; m=$1; shift; todo="$*"
    case " $seen " in *" $m "*) continue;; esac; seen="$seen $m"
    line=$(grep -E "(^|/)${m//_/[_-]}\.ko(\.xz)?:" "$dep" | head -1) || die "module $m not found in $V2_KERNEL_PKG"
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
fail() { echo "v2-init: $*" >/dev/ttyS0; echo 125 > /ctl/rc 2>/dev/null; sync; poweroff -f; }
for m in $(cat /modules.list); do modprobe "$m" || echo "v2-init: modprobe $m failed" >/dev/ttyS0; done
P9="trans=virtio,version=9p2000.L,msize=262144"
mount -t 9p -o $P9 v2ctl /ctl || fail "mount ctl"
cat /proc/uptime > /ctl/t_mods
. /ctl/params
mount -t 9p -o $P9,ro,cache=loose v2root /lower || fail "mount host root"
mount -t tmpfs -o mode=755 tmpfs /upper && mkdir -p /upper/u /upper/w
mount -t overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w overlay /newroot || fail "overlay"
R=/newroot
mount -t proc proc $R/proc; mount -t sysfs sysfs $R/sys; mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm $R/dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666 devpts $R/dev/pts; mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
mount -t mqueue mqueue $R/dev/mqueue 2>/dev/null
mount -t cgroup2 -o nsdelegate cgroup2 $R/sys/fs/cgroup || fail "cgroup2"
for c in $(cat $R/sys/fs/cgroup/cgroup.controllers); do echo "+$c" > $R/sys/fs/cgroup/cgroup.subtree_control; done
KV=$(uname -r)
if [ -d "$R$V2_KMODS" ]; then mkdir -p $R/lib/modules/$KV && mount --bind "$R$V2_KMODS" $R/lib/modules/$KV; fi
mount -t tmpfs -o mode=755 tmpfs $R/run; mount -t tmpfs -o mode=1777 tmpfs $R/tmp
if [ -n "$V2_CWD" ] && [ "$V2_CWD" != / ]; then
  mkdir -p "$R$V2_CWD" && mount -t 9p -o $P9,cache=mmap v2cwd "$R$V2_CWD" || fail "mount cwd"
fi
hostname v2guest; ip link set lo up
cp /ctl/cmd.sh $R/run/.v2-cmd.sh
OUT=/dev/null; ERR=/dev/null
for d in /sys/class/virtio-ports/*; do
  case "$(cat $d/name)" in v2out) OUT=/dev/${d##*/};; v2err) ERR=/dev/${d##*/};; esac
done
cat /proc/uptime > /ctl/t_start
chroot $R /bin/bash /run/.v2-cmd.sh </dev/null >$OUT 2>$ERR
echo $? > /ctl/rc
cat /proc/uptime > /ctl/t_end
sync
umount "$R$V2_CWD" 2>/dev/null
poweroff -f
INIT
  chmod 755 "$ir/init"
  ( cd "$ir" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null ) | gzip -1 > "$tmp/kc/initrd.gz"
  echo "$kver" > "$tmp/kc/kver"
  rm -rf "$KC"; mv "$tmp/kc" "$KC"; rm -rf "$tmp"
}
if [ ! -f "$KC/kver" ]; then
  exec 9>"$V2_CACHE/.lock"; flock 9
  [ -f "$KC/kver" ] || { log "preparing $V2_KERNEL_PKG in $KC"; build_kernel_cache; }
  flock -u 9; exec 9>&-
fi
KVER=$(cat "$KC/kver")
KERNEL="$KC/vmlinux"; [ -f "$KERNEL" ] || KERNEL="$KC/vmlinuz"
T_PREP=$(now)

# ---------------------------------------------------------------- accelerator
# On hosts whose /dev/kvm is PVM (kvm_pvm, e.g. Firecracker sandboxes with nested_pvm=1) a stock
# kernel cannot run under KVM (needs a PVM guest kernel) -> use TCG there.
if [ "$V2_ACCEL" = auto ]; then
  if [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; } && [ ! -d /sys/module/kvm_pvm ]; then
    V2_ACCEL=kvm; else V2_ACCEL=tcg; fi
fi
if [ "$V2_ACCEL" = kvm ]; then ACCEL=(-accel kvm -cpu host); else ACCEL=(-accel tcg,thread=multi -cpu max); fi

# ---------------------------------------------------------------- per-run control dir
CTL=$(mktemp -d /tmp/v2guest.XXXXXX)
QPID=""
cleanup() { [ -n "$QPID" ] && kill "$QPID" 2>/dev/null; rm -rf "$CTL"; }
trap cleanup EXIT
trap 'exit 130' INT; trap 'exit 143' TERM
q() { printf '%q' "$1"; }
{
  export -p | grep -Ev '^declare -[a-zA-Z-]* (PWD|OLDPWD|SHLVL|_|HOSTNAME|TMPDIR|XDG_RUNTIME_DIR)(=|$)' || true
  echo "export V2_GUEST=1"
  echo "cd -- $(q "$HOST_CWD") || exit 126"
  echo "exec /bin/bash -c $(q "$CMD")"
} > "$CTL/cmd.sh"
{ echo "V2_CWD=$(q "$HOST_CWD")"; echo "V2_KMODS=$(q "$KC/lib/modules/$KVER")"; } > "$CTL/params"
: > "$CTL/out"; : > "$CTL/err"
CONSOLE="$CTL/console.log"

CWD_SHARE=()
[ "$HOST_CWD" != / ] && CWD_SHARE=(-fsdev "local,id=fscwd,path=${HOST_CWD//,/,,},security_model=passthrough,multidevs=remap"
                                   -device virtio-9p-pci,fsdev=fscwd,mount_tag=v2cwd)
timeout -k 10 "$V2_TIMEOUT" qemu-system-x86_64 \
  -nodefaults -no-user-config -display none -no-reboot -machine pc "${ACCEL[@]}" \
  -smp "$V2_CPUS" -m "$V2_MEM" \
  -kernel "$KERNEL" -initrd "$KC/initrd.gz" \
  -append "console=ttyS0 quiet panic=-1 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 mitigations=off ${V2_APPEND:-}" \
  -serial "file:$CONSOLE" \
  -fsdev "local,id=fsctl,path=$CTL,security_model=none" -device virtio-9p-pci,fsdev=fsctl,mount_tag=v2ctl \
  -fsdev "local,id=fsroot,path=/,security_model=none,readonly=on,multidevs=remap" \
  -device virtio-9p-pci,fsdev=fsroot,mount_tag=v2root \
  "${CWD_SHARE[@]}" \
  -device virtio-serial-pci \
  -chardev "file,id=cout,path=$CTL/out,append=on" -device virtserialport,chardev=cout,name=v2out \
  -chardev "file,id=cerr,path=$CTL/err,append=on" -device virtserialport,chardev=cerr,name=v2err \
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
if [ ! -f "$CTL/rc" ] || [ "$V2_VERBOSE" = 1 ]; then
  { echo "----- v2-guest: qemu rc=$qrc, guest console:"; cat "$CTL/qemu.log" "$CONSOLE"; echo "-----"; } >&2
fi
[ -n "${V2_CONSOLE_LOG:-}" ] && cp "$CONSOLE" "$V2_CONSOLE_LOG"
if [ -f "$CTL/t_start" ]; then
  log "accel=$V2_ACCEL kernel=$V2_KERNEL_PKG($KVER) cpus=$V2_CPUS mem=${V2_MEM}M;" \
      "prep=$(awk "BEGIN{print $T_PREP - $T0}")s guest-uptime@modules=$(cut -d' ' -f1 "$CTL/t_mods")s" \
      "@command-start=$(cut -d' ' -f1 "$CTL/t_start")s @command-end=$(cut -d' ' -f1 "$CTL/t_end" 2>/dev/null)s" \
      "total-wall=$(awk "BEGIN{print $T_END - $T0}")s rc=$rc"
fi
exit "$rc"
