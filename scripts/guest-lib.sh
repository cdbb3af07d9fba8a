# scripts/guest-lib.sh -- what the QEMU test guests share (sourced by scripts/v2-guest.sh and
# scripts/systemd-guest.sh): the packages, the cached kernel and initramfs, the accelerator,
# the per-run control directory, QEMU with its shares, and the result.
#
# A guest boots Debian's kernel (the one linux-image-amd64 depends on) with an initramfs that
# only loads the virtio/9p/overlay modules, mounts the control share and runs its `stage2`
# (written per run by the calling script, so changing it needs no rebuild). Before the
# command, the guest loads the modules its tests need beyond those (GUEST_MODULES) from the
# cached module tree, which stage2 binds at /lib/modules/<kver>. The shares:
#   guestctl   the control dir ($CTL): stage2, cmd.sh (the command), rc, timings
#   guestroot  the host root, read-only (stage2 puts a tmpfs overlay over it)
#   guestcwd   the caller's CWD, read-WRITE, mounted at the same path
# and two virtio ports, guestout/guesterr, carrying the command's stdout and stderr.
#
# The caller sets GUEST (its name, for messages), sources this file, then calls, in order:
#   guest_knobs PREFIX; (its own checks of its arguments and the host)
#   guest_prepare COMMAND...; guest_ctl MARKER EXTRA_ENV_FILTER;
#   (writes "$CTL/stage2" and whatever else it needs there)
#   guest_run "KERNEL ARGS"; guest_finish
# guest_finish exits with COMMAND's status (125 = the guest failed before running it,
# 124 = timeout).

die() { echo "$GUEST: $*" >&2; exit 125; }
log() { if [ "$GUEST_VERBOSE" = 1 ]; then echo "$GUEST: $*" >&2; fi; }
now() { date +%s.%N; }
q() { printf '%q' "$1"; }
T0=$(now)

# Loaded in the guest before the command: the socket diag modules CRIU needs to dump a
# container's sockets ("sockets: Diag module missing" without them; Debian builds them as
# modules and only loads them on demand), and tun, which `criu check` asks for; loop
# (no /dev/loop-control without it: no udev or tmpfiles here makes the node on demand)
# and bfq, for runc_cgroups::per_device_io_weight_for_bfq (a loop device under BFQ); loop
# also for the ext4 image the id-mapped mount tests use (common::IdmapCapableDir).
GUEST_MODULES="tun unix_diag inet_diag tcp_diag udp_diag raw_diag netlink_diag af_packet_diag loop bfq"

# ---------------------------------------------------------------- knobs and preparation
# guest_knobs PREFIX: GUEST_MEM GUEST_CPUS GUEST_TIMEOUT GUEST_ACCEL GUEST_CACHE
# GUEST_KERNEL_PKG GUEST_VERBOSE GUEST_CONSOLE_LOG from the caller's environment's
# PREFIX_MEM (MiB, 1536) PREFIX_CPUS (2) PREFIX_TIMEOUT (s, 1800) PREFIX_ACCEL (auto|kvm|tcg)
# PREFIX_CACHE (/var/cache/rsrun-guest) PREFIX_KERNEL_PKG (the one linux-image-amd64 depends
# on) PREFIX_VERBOSE (0) PREFIX_CONSOLE_LOG (none).
guest_knobs() {
  local knob var
  for knob in MEM=1536 CPUS=2 TIMEOUT=1800 ACCEL=auto CACHE=/var/cache/rsrun-guest \
              KERNEL_PKG= VERBOSE=0 CONSOLE_LOG=; do
    var=$1_${knob%%=*}
    printf -v "GUEST_${knob%%=*}" '%s' "${!var:-${knob#*=}}"
  done
}

# guest_prepare COMMAND...: COMMAND ($CMD) to run as root from the caller's CWD ($HOST_CWD),
# with the packages, CRIU, the kernel and the accelerator ready.
guest_prepare() {
  [ "$(id -u)" = 0 ] || die "must run as root"
  CMD="$*"
  HOST_CWD=$(pwd -P)
  guest_packages
  guest_criu
  guest_kernel
  guest_accel
}

# ---------------------------------------------------------------- packages
apt_retry() { # apt may be locked by a concurrent installer: wait and retry
  local i
  for i in $(seq 1 30); do
    if DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 -q "$@"; then return 0; fi
    echo "$GUEST: apt-get $* failed (attempt $i), retrying in 10s" >&2; sleep 10
  done
  return 1
}
APT_UPDATED=0
apt_update_once() { [ $APT_UPDATED = 1 ] || { apt_retry update >&2 || die "apt-get update failed"; APT_UPDATED=1; }; }

guest_packages() {
  local missing=()
  command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
  { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || missing+=(busybox-static)
  command -v xz >/dev/null || missing+=(xz-utils)
  [ -x /usr/sbin/depmod ] || [ -x /sbin/depmod ] || missing+=(kmod)   # the guest's modprobe is the host's kmod
  if [ ${#missing[@]} -gt 0 ]; then
    apt_update_once
    apt_retry install -y --no-install-recommends "${missing[@]}" >&2 || die "cannot install ${missing[*]}"
  fi
  BUSYBOX=/bin/busybox
}

# CRIU 4.1 for the checkpoint tests (scripts/criu.sh installs it into /opt/rsrun-criu on the
# host, which the guest sees through its read-only root; nothing when it is there).
guest_criu() {
  "$(dirname "${BASH_SOURCE[0]}")/criu.sh" >&2 || die "scripts/criu.sh failed"
}

# ---------------------------------------------------------------- kernel + initramfs (cached)
# Sets KC (the cache dir of the kernel package), KVER and KERNEL.
guest_kernel() {
  mkdir -p "$GUEST_CACHE"
  if [ -z "$GUEST_KERNEL_PKG" ]; then
    resolve() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
    GUEST_KERNEL_PKG=$(resolve || true)
    if [ -z "$GUEST_KERNEL_PKG" ]; then apt_update_once; GUEST_KERNEL_PKG=$(resolve || true); fi
    [ -n "$GUEST_KERNEL_PKG" ] || die "cannot resolve the linux-image-amd64 dependency"
  fi
  KC="$GUEST_CACHE/$GUEST_KERNEL_PKG"
  if [ ! -f "$KC/kver" ]; then
    exec 9>"$GUEST_CACHE/.lock"; flock 9
    [ -f "$KC/kver" ] || { log "preparing $GUEST_KERNEL_PKG in $KC"; build_kernel_cache; }
    flock -u 9; exec 9>&-
  fi
  KVER=$(cat "$KC/kver")
  KERNEL="$KC/vmlinux"; [ -f "$KERNEL" ] || KERNEL="$KC/vmlinuz"
  T_PREP=$(now)
}

build_kernel_cache() {
  local tmp deb root kver mdir want m ir
  tmp=$(mktemp -d "$GUEST_CACHE/.build.XXXXXX")
  ( cd "$tmp" && chmod 777 . && { apt-get download -q "$GUEST_KERNEL_PKG" >&2 || { apt_update_once; apt-get download -q "$GUEST_KERNEL_PKG" >&2; }; } ) \
    || { rm -rf "$tmp"; die "apt-get download $GUEST_KERNEL_PKG failed"; }
  deb=$(ls "$tmp"/*.deb)
  root="$tmp/root"; dpkg-deb -x "$deb" "$root"
  if [ -d "$root/lib/modules" ]; then mdir="$root/lib/modules"; else mdir="$root/usr/lib/modules"; fi
  kver=$(ls "$mdir" | head -1)
  # The module tree for the guest's /lib/modules/<kver>; kmod's depmod also writes the
  # *.bin indexes the guest's (the host's) modprobe needs.
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
    line=$(grep -E "(^|/)${m//_/[_-]}\.ko(\.xz)?:" "$dep" | head -1) || die "module $m not found in $GUEST_KERNEL_PKG"
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

# ---------------------------------------------------------------- accelerator
# A PVM /dev/kvm (kvm_pvm) cannot run a stock kernel: TCG there. Sets ACCEL.
guest_accel() {
  if [ "$GUEST_ACCEL" = auto ]; then
    if [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; } && [ ! -d /sys/module/kvm_pvm ]; then
      GUEST_ACCEL=kvm; else GUEST_ACCEL=tcg; fi
  fi
  if [ "$GUEST_ACCEL" = kvm ]; then ACCEL=(-accel kvm -cpu host); else ACCEL=(-accel tcg,thread=multi -cpu max); fi
}

# ---------------------------------------------------------------- per-run control dir
# guest_ctl MARKER FILTER: makes $CTL with cmd.sh, which exports the caller's environment
# (minus PWD & co and the variables FILTER matches), MARKER (`NAME=value`, tells the tests
# where they run), goes to the caller's CWD and runs COMMAND ($CMD) under bash -c.
guest_ctl() {
  local marker=$1 filter=${2:-}
  CTL=$(mktemp -d "/tmp/$GUEST.XXXXXX")
  QPID=""
  trap guest_cleanup EXIT
  trap 'exit 130' INT; trap 'exit 143' TERM
  {
    export -p | grep -Ev "^declare -[a-zA-Z-]* (PWD|OLDPWD|SHLVL|_|HOSTNAME|TMPDIR|XDG_RUNTIME_DIR${filter:+|$filter})(=|\$)" || true
    echo "export $marker"
    echo "cd -- $(q "$HOST_CWD") || exit 126"
    echo "exec /bin/bash -c $(q "$CMD")"
  } > "$CTL/cmd.sh"
  : > "$CTL/out"; : > "$CTL/err"
  CONSOLE="$CTL/console.log"
}
guest_cleanup() { [ -n "$QPID" ] && kill "$QPID" 2>/dev/null; rm -rf "$CTL"; }

# The shell code that runs the command inside the guest (after its boot), with its output
# on the virtio ports; it leaves the status in /run/guest/rc.
guest_run_cmd_script() {
  cat <<'RUNCMD'
cat /proc/uptime > /run/guest/t_start
OUT=/dev/null; ERR=/dev/null
for d in /sys/class/virtio-ports/*; do
  case "$(cat $d/name)" in guestout) OUT=/dev/${d##*/};; guesterr) ERR=/dev/${d##*/};; esac
done
RUNCMD
  echo "for m in $GUEST_MODULES; do"
  cat <<'RUNCMD'
  modprobe "$m" 2>>$ERR || echo "guest: modprobe $m failed" >>$ERR
done
rc=0
/bin/bash /run/guest/cmd.sh </dev/null >$OUT 2>$ERR || rc=$?
sync
echo $rc > /run/guest/rc
cat /proc/uptime > /run/guest/t_end
RUNCMD
}

# ---------------------------------------------------------------- QEMU
# guest_run "KERNEL ARGS": boots the guest, streams the command's output, waits for it.
guest_run() {
  local cwd_share=()
  [ "$HOST_CWD" != / ] && cwd_share=(-fsdev "local,id=fscwd,path=${HOST_CWD//,/,,},security_model=passthrough,multidevs=remap"
                                     -device virtio-9p-pci,fsdev=fscwd,mount_tag=guestcwd)
  timeout -k 10 "$GUEST_TIMEOUT" qemu-system-x86_64 \
    -nodefaults -no-user-config -display none -no-reboot -machine pc "${ACCEL[@]}" \
    -smp "$GUEST_CPUS" -m "$GUEST_MEM" \
    -kernel "$KERNEL" -initrd "$KC/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1 mitigations=off $1" \
    -serial "file:$CONSOLE" \
    -fsdev "local,id=fsctl,path=$CTL,security_model=none" -device virtio-9p-pci,fsdev=fsctl,mount_tag=guestctl \
    -fsdev "local,id=fsroot,path=/,security_model=none,readonly=on,multidevs=remap" \
    -device virtio-9p-pci,fsdev=fsroot,mount_tag=guestroot \
    "${cwd_share[@]}" \
    -device virtio-serial-pci \
    -chardev "file,id=cout,path=$CTL/out,append=on" -device virtserialport,chardev=cout,name=guestout \
    -chardev "file,id=cerr,path=$CTL/err,append=on" -device virtserialport,chardev=cerr,name=guesterr \
    </dev/null >"$CTL/qemu.log" 2>&1 &
  QPID=$!
  tail -q -c +1 -f --pid=$QPID "$CTL/out" & local t1=$!
  tail -q -c +1 -f --pid=$QPID "$CTL/err" >&2 & local t2=$!
  QRC=0; wait $QPID || QRC=$?
  QPID=""
  wait $t1 $t2 2>/dev/null || true
  T_END=$(now)
}

# The command's status; the console when the guest failed (or GUEST_VERBOSE=1); timings.
guest_finish() {
  local rc
  if [ -f "$CTL/rc" ]; then rc=$(cat "$CTL/rc"); else rc=125; fi
  [ $QRC = 124 ] && rc=124
  if [ ! -f "$CTL/rc" ] || [ "$rc" = 125 ] || [ "$GUEST_VERBOSE" = 1 ]; then
    { echo "----- $GUEST: qemu rc=$QRC, guest console:"; cat "$CTL/qemu.log" "$CONSOLE"; echo "-----"; } >&2
  fi
  [ -n "${GUEST_CONSOLE_LOG:-}" ] && cp "$CONSOLE" "$GUEST_CONSOLE_LOG"
  if [ -f "$CTL/t_start" ]; then
    log "accel=$GUEST_ACCEL kernel=$GUEST_KERNEL_PKG($KVER) cpus=$GUEST_CPUS mem=${GUEST_MEM}M;" \
        "prep=$(awk "BEGIN{print $T_PREP - $T0}")s guest-uptime@stage2=$(cut -d' ' -f1 "$CTL/t_init" 2>/dev/null)s" \
        "@command-start=$(cut -d' ' -f1 "$CTL/t_start")s @command-end=$(cut -d' ' -f1 "$CTL/t_end" 2>/dev/null)s" \
        "total-wall=$(awk "BEGIN{print $T_END - $T0}")s rc=$rc"
  fi
  exit "$rc"
}
