#!/usr/bin/env bash
# Install the Debian packages rsrun's demo and tests need, when they are missing.
set -euo pipefail
need=()
[ -x /bin/busybox ] || need+=(busybox-static)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
[ -e /usr/include/seccomp.h ] || need+=(libseccomp-dev)
[ -e /usr/share/containers/seccomp.json ] || need+=(golang-github-containers-common)
command -v containerd >/dev/null 2>&1 || need+=(containerd)
command -v umoci >/dev/null 2>&1 || need+=(umoci)
[ -x /usr/sbin/dockerd ] || need+=(docker.io)
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
# The benchmark harness (make bench, and its smoke run in make test).
command -v hyperfine >/dev/null 2>&1 || need+=(hyperfine)
command -v crun >/dev/null 2>&1 || need+=(crun)
[ -x /usr/bin/time ] || need+=(time)
command -v cc >/dev/null 2>&1 || need+=(gcc)
command -v strace >/dev/null 2>&1 || need+=(strace)
# Rootless tests: newuidmap/newgidmap for maps of more than one id.
command -v newuidmap >/dev/null 2>&1 || need+=(uidmap)
# Not in a minimal Debian: ip (named network namespaces in the tests), ps and pgrep
# (rsrun ps, and the tests looking for a container's processes).
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v pgrep >/dev/null 2>&1 || need+=(procps)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "deps: need root to install: ${need[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
# CRIU for checkpoint/restore: Debian 12's 3.17 cannot run on this kernel, so a private
# CRIU 4.1 from Debian 13 (scripts/criu.sh says how; nothing when it is there).
"$(dirname "$0")/criu.sh"
