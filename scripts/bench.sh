#!/usr/bin/env bash
# make bench: rsrun, crun and runc side by side (hyperfine), every runtime behind the
# same wrapper; medians and ratios go to bench/RESULTS.md. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
ROUNDS=${ROUNDS:-5}
PARALLEL_RUNS=${PARALLEL_RUNS:-10}
RSRUN=$(realpath "${1:-target/release/rsrun}")
WORK=$(pwd)/bench/work
OUT=${BENCH_OUT:-$(pwd)/bench/RESULTS.md}
WRAP=$WORK/wrap
rm -rf "$WORK"; mkdir -p "$WORK"

for p in hyperfine crun runc cc; do
    command -v $p >/dev/null || { echo "bench: $p is missing (apt-get install hyperfine crun runc gcc)" >&2; exit 1; }
done
cc -O2 -Wall -o "$WRAP" bench/wrap.c
hyperfine -N --warmup 10 --runs 100 --style none --export-json "$WORK/wrap.json" "$WRAP /bin/true" /bin/true >/dev/null 2>&1
WRAP_COST=$(python3 -c "import json; r=json.load(open('$WORK/wrap.json'))['results']; print(f'{(r[0][\"median\"]-r[1][\"median\"])*1000:.1f}')")
declare -A BIN=([rsrun]=$RSRUN [crun]=$(command -v crun) [runc]=$(command -v runc))
RUNTIMES=(rsrun crun runc)

# A busybox bundle; config.json per scenario.
B=$WORK/bundle
mkdir -p $B/rootfs/{bin,proc,sys,dev,tmp,etc}
cp /bin/busybox $B/rootfs/bin/
for a in sh true sleep; do ln -sf busybox $B/rootfs/bin/$a; done
"$RSRUN" spec --bundle $B
python3 - "$B" <<'PY'
import json, sys, copy
b = sys.argv[1]
s = json.load(open(f"{b}/config.json"))
s["process"]["terminal"] = False
s["ociVersion"] = "1.0.2-dev"  # crun 1.8 knows only 1.0.x
s["linux"]["namespaces"] = [n for n in s["linux"]["namespaces"] if n["type"] != "cgroup"]
def write(name, args, extra=None):
    t = copy.deepcopy(s)
    t["process"]["args"] = args
    if extra: extra(t)
    json.dump(t, open(f"{b}/{name}.json", "w"))
write("true", ["/bin/true"])
write("sleep", ["/bin/sleep", "1000"])
def secure(t):
    t["linux"]["namespaces"].append({"type": "user"})
    t["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    t["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    names = ["acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module",
             "finit_module", "get_kernel_syms", "get_mempolicy", "init_module", "ioperm", "iopl", "kcmp",
             "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "mount", "move_pages",
             "name_to_handle_at", "nfsservctl", "open_by_handle_at", "perf_event_open", "personality",
             "pivot_root", "process_vm_readv", "process_vm_writev", "ptrace", "query_module", "quotactl",
             "reboot", "request_key", "set_mempolicy", "setns", "settimeofday", "swapon", "swapoff", "sysfs"]
    t["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": [n], "action": "SCMP_ACT_ERRNO", "errnoRet": 1} for n in names]}
write("secure", ["/bin/true"], secure)
PY
use() { cp "$B/$1.json" "$B/config.json"; }

declare -A MED
bench() { # bench NAME PREPARE CMD (with @R@ for the runtime binary and @ROOT@ for its root)
    local name=$1 prep=$2 cmd=$3 args=() rt
    for rt in "${RUNTIMES[@]}"; do
        local root=$WORK/root-$rt
        local c=${cmd//@R@/$WRAP ${BIN[$rt]} --root $root}
        local p=${prep//@R@/$WRAP ${BIN[$rt]} --root $root}
        args+=(--command-name "$rt" --prepare "${p:-true}" "$c")
    done
    # ROUNDS rounds of RUNS/ROUNDS runs per runtime, the runtimes taking turns, so that a
    # slow minute of a shared machine does not land on one runtime only; the median is
    # taken over every sample of a runtime.
    local round per=$(( (RUNS + ROUNDS - 1) / ROUNDS ))
    for round in $(seq "$ROUNDS"); do
        hyperfine -N --warmup 3 --runs "$per" --style none --export-json "$WORK/$name.$round.json" "${args[@]}" >/dev/null 2>&1 \
            || hyperfine --warmup 3 --runs "$per" --style none --export-json "$WORK/$name.$round.json" "${args[@]}" >/dev/null
    done
    for rt in "${RUNTIMES[@]}"; do
        MED[$name,$rt]=$(python3 - "$rt" "$WORK/$name".*.json <<'PY'
import json, statistics, sys
rt, files = sys.argv[1], sys.argv[2:]
times = [t for f in files for r in json.load(open(f))["results"] if r["command"] == rt for t in r["times"]]
print(statistics.median(times) * 1000)
PY
)
    done
    echo "bench: $name: rsrun ${MED[$name,rsrun]} ms, crun ${MED[$name,crun]} ms, runc ${MED[$name,runc]} ms" >&2
}
cleanup_all() { local rt; for rt in "${RUNTIMES[@]}"; do $WRAP ${BIN[$rt]} --root $WORK/root-$rt delete -f $1 >/dev/null 2>&1 || true; done; }

cd "$B"
use true
bench run "" "@R@ run --bundle $B b-run"
# The same with a pause between runs, as a node starts containers: kernel work deferred
# to an RCU grace period (cgroup v1 attach, mount teardown) is no longer shared.
bench run-spaced "sleep 0.05" "@R@ run --bundle $B b-runs"
bench create "@R@ delete -f b-create" "@R@ create --bundle $B b-create"
cleanup_all b-create
use sleep
bench start "sh -c '@R@ delete -f b-start >/dev/null 2>&1; @R@ create --bundle $B b-start'" "@R@ start b-start"
cleanup_all b-start
for rt in "${RUNTIMES[@]}"; do $WRAP ${BIN[$rt]} --root $WORK/root-$rt run -d --bundle $B b-state >/dev/null 2>&1 </dev/null; done
bench state "" "@R@ state b-state"
# state never enters a namespace: also measured without the wrapper.
WRAP_SAVED=$WRAP; WRAP=""
bench state-direct "" "@R@ state b-state"
WRAP=$WRAP_SAVED
bench exec "" "@R@ exec b-state /bin/true"
cleanup_all b-state
use true
bench delete "sh -c '@R@ delete -f b-del >/dev/null 2>&1; @R@ run -d --bundle $B b-del >/dev/null 2>&1 </dev/null; sleep 0.05'" "@R@ delete b-del"
use sleep
bench delete-force "sh -c '@R@ run -d --bundle $B b-delf >/dev/null 2>&1 </dev/null'" "@R@ delete --force b-delf"
use secure
bench run-userns-seccomp "" "@R@ run --bundle $B b-sec"
use true
RUNS_SAVED=$RUNS; RUNS=$PARALLEL_RUNS
bench parallel-50x8 "" "sh -c 'seq 50 | xargs -P8 -I{} @R@ run --bundle $B p{} >/dev/null'"
RUNS=$RUNS_SAVED

# Peak RSS of the create process and of the waiting init.
declare -A RSS_CREATE RSS_INIT
use sleep
for rt in "${RUNTIMES[@]}"; do
    root=$WORK/root-$rt
    $WRAP ${BIN[$rt]} --root $root delete -f b-rss >/dev/null 2>&1 || true
    /usr/bin/time -v -o $WORK/time.$rt $WRAP ${BIN[$rt]} --root $root create --bundle $B b-rss </dev/null >/dev/null 2>&1
    RSS_CREATE[$rt]=$(awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print $2}' $WORK/time.$rt)
    pid=$($WRAP ${BIN[$rt]} --root $root state b-rss | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
    RSS_INIT[$rt]=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
    $WRAP ${BIN[$rt]} --root $root delete -f b-rss >/dev/null 2>&1 || true
done

# Work per operation, one run each: syscalls (strace -f -c over the runtime and every
# process it starts, the container's own included) and minor page faults (/usr/bin/time:
# the runtime and the children it waited for; a created init is not waited for).
command -v strace >/dev/null || { echo "bench: strace is missing (apt-get install strace)" >&2; exit 1; }
declare -A SYSCALLS FAULTS
work() { # work NAME PREPARE CMD [FOLLOW], with @R@ for the runtime binary and its root
    local name=$1 prep=$2 cmd=$3 follow=${4:--f} rt
    for rt in "${RUNTIMES[@]}"; do
        local r="${BIN[$rt]} --root $WORK/root-$rt"
        [ -z "$prep" ] || $WRAP sh -c "${prep//@R@/$r}" >/dev/null 2>&1 </dev/null || true
        # shellcheck disable=SC2086 # the command is words, split on purpose
        $WRAP strace $follow -c -o "$WORK/strace.$name.$rt" ${cmd//@R@/$r} >/dev/null 2>&1 </dev/null
        SYSCALLS[$name,$rt]=$(awk '$NF == "total" {print $4}' "$WORK/strace.$name.$rt")
        [ -z "$prep" ] || $WRAP sh -c "${prep//@R@/$r}" >/dev/null 2>&1 </dev/null || true
        # shellcheck disable=SC2086
        /usr/bin/time -f %R -o "$WORK/faults.$name.$rt" $WRAP ${cmd//@R@/$r} >/dev/null 2>&1 </dev/null
        FAULTS[$name,$rt]=$(tail -1 "$WORK/faults.$name.$rt")
    done
}
use true
work run "@R@ delete -f w-run" "@R@ run --bundle $B w-run"
# The created init outlives create and would keep strace -f waiting: the create
# process only (its init's work is in run's count).
work create "@R@ delete -f w-c" "@R@ create --bundle $B w-c" "-q"
use sleep
work start "@R@ delete -f w-s; @R@ create --bundle $B w-s" "@R@ start w-s"
work state "" "@R@ state w-s"
work exec "" "@R@ exec w-s /bin/true"
work delete-force "@R@ delete -f w-s; @R@ run -d --bundle $B w-s" "@R@ delete --force w-s"
for rt in "${RUNTIMES[@]}"; do $WRAP ${BIN[$rt]} --root $WORK/root-$rt delete -f w-c >/dev/null 2>&1 || true; done

ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
{
    echo "# rsrun benchmark"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%MZ) · $(uname -r) · $(nproc) cores · $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
    echo "rsrun $("$RSRUN" --version | head -1 | awk '{print $3}') · $(crun --version | head -1) · $(runc --version | head -1)"
    echo
    echo "Medians of $RUNS runs in $ROUNDS interleaved rounds (hyperfine; $PARALLEL_RUNS for the parallel run), every runtime behind the same"
    echo "wrapper (bench/wrap.c: a private mount namespace without the cgroup2 \`unified\` mount;"
    echo "$WRAP_COST ms by itself) except state-direct."
    echo
    echo "| operation | rsrun | crun | runc | rsrun/crun | rsrun/runc |"
    echo "|---|---:|---:|---:|---:|---:|"
    for op in run run-spaced create start state state-direct delete delete-force exec run-userns-seccomp parallel-50x8; do
        r=${MED[$op,rsrun]}; c=${MED[$op,crun]}; u=${MED[$op,runc]}
        printf '| %s | %.1f ms | %.1f ms | %.1f ms | %s | %s |\n' "$op" "$r" "$c" "$u" "$(ratio $r $c)" "$(ratio $r $u)"
    done
    printf '| peak RSS of create | %s KiB | %s KiB | %s KiB | %s | %s |\n' "${RSS_CREATE[rsrun]}" "${RSS_CREATE[crun]}" "${RSS_CREATE[runc]}" "$(ratio ${RSS_CREATE[rsrun]} ${RSS_CREATE[crun]})" "$(ratio ${RSS_CREATE[rsrun]} ${RSS_CREATE[runc]})"
    printf '| peak RSS of the waiting init | %s KiB | %s KiB | %s KiB | %s | %s |\n' "${RSS_INIT[rsrun]}" "${RSS_INIT[crun]}" "${RSS_INIT[runc]}" "$(ratio ${RSS_INIT[rsrun]} ${RSS_INIT[crun]})" "$(ratio ${RSS_INIT[rsrun]} ${RSS_INIT[runc]})"
    sz() { stat -c %s "$1"; }
    printf '| binary size | %s KiB | %s KiB | %s KiB | %s | %s |\n' $(( $(sz $RSRUN)/1024 )) $(( $(sz ${BIN[crun]})/1024 )) $(( $(sz ${BIN[runc]})/1024 )) "$(ratio $(sz $RSRUN) $(sz ${BIN[crun]}))" "$(ratio $(sz $RSRUN) $(sz ${BIN[runc]}))"
    echo
    echo "Work per operation (one run each): syscalls of the runtime and everything it starts"
    echo "(create: the runtime process only), and minor page faults of the runtime and the"
    echo "children it waited for."
    echo
    echo "| operation | rsrun syscalls | crun syscalls | runc syscalls | rsrun faults | crun faults | runc faults |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for op in run create start state exec delete-force; do
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$op" "${SYSCALLS[$op,rsrun]}" "${SYSCALLS[$op,crun]}" "${SYSCALLS[$op,runc]}" "${FAULTS[$op,rsrun]}" "${FAULTS[$op,crun]}" "${FAULTS[$op,runc]}"
    done
    echo
    libs=$( (ldd "$RSRUN" 2>/dev/null || true) | awk '/=>|ld-linux/ {print $1}' | tr '\n' ' ')
    echo "Dynamic libraries of rsrun: ${libs:-none (static binary)}"
} > "$OUT"
cat "$OUT"

# The table must be complete: every row, three numbers each, and the binary static.
missing=0
for op in run run-spaced create start state state-direct delete delete-force exec run-userns-seccomp parallel-50x8; do
    grep -Eq "^\| $op \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ \| [0-9.]+ \|$" "$OUT" || { echo "bench: no complete row for $op" >&2; missing=1; }
done
for row in "peak RSS of create" "peak RSS of the waiting init" "binary size"; do
    grep -Eq "^\| $row \| [0-9]+ KiB \| [0-9]+ KiB \| [0-9]+ KiB \|" "$OUT" || { echo "bench: no complete row for $row" >&2; missing=1; }
done
for op in run create start state exec delete-force; do
    grep -Eq "^\| $op( \| [0-9]+){6} \|$" "$OUT" || { echo "bench: no complete work row for $op" >&2; missing=1; }
done
grep -q "^Dynamic libraries of rsrun: none (static binary)$" "$OUT" || { echo "bench: the release binary is not static" >&2; missing=1; }
exit $missing
