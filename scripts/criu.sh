#!/usr/bin/env bash
# Install CRIU 4.1.1 (Debian 13's package) privately into /opt/rsrun-criu, for
# `rsrun checkpoint` / `rsrun restore` and their tests.
#
# Debian 12's criu 3.17 cannot start on kernels >= 6.13 (the vDSO is mapped in parts
# there; CRIU learnt that in 4.1). Debian 13's criu needs Debian 13's libc, so the
# package and its dependencies are downloaded with apt-get from a sources list and an
# apt state of their own (the system's apt setup and installed packages stay as they
# are), unpacked with dpkg-deb -x into /opt/rsrun-criu/root, and run through that tree's
# own dynamic loader with --library-path: the system's libc is never touched.
#
# /opt/rsrun-criu/criu is the wrapper rsrun runs (rsrun looks for $RSRUN_CRIU, then
# criu on PATH when it is 4.x, then this). Running this script again does nothing
# when the wrapper already answers with the wanted version.
set -euo pipefail

want=4.1.1
# What counts as installed: any CRIU from 4.1 on (Debian 13 may move to a later 4.x).
good='^Version: 4\.([1-9]|[1-9][0-9])(\.|$)'
dest=${RSRUN_CRIU_DIR:-/opt/rsrun-criu}

if "$dest/criu" --version 2>/dev/null | grep -qE "$good"; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "criu.sh: need root to install CRIU $want into $dest" >&2
    exit 1
fi

multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
work=$(mktemp -d /tmp/rsrun-criu.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/apt/etc" "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/debs"
cat >"$work/apt/etc/trixie.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# Nothing counts as installed (status /dev/null): the closure below is every package
# criu needs, libc included, all from Debian 13.
apt_opts=(
    -o "Dir::Etc::SourceList=/dev/null"
    -o "Dir::Etc::SourceParts=$work/apt/etc"
    -o "Dir::State::Lists=$work/apt/lists"
    -o "Dir::Cache=$work/apt/cache"
    -o "Dir::State::status=/dev/null"
    -o "APT::Sandbox::User=root"
)
apt-get "${apt_opts[@]}" -qq update
pkgs=$(apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests \
    --no-conflicts --no-breaks --no-replaces --no-enhances criu |
    grep -v -e '^ ' -e '^<' | sort -u)
(cd "$work/debs" && apt-get "${apt_opts[@]}" -qq download $pkgs 2>/dev/null)

stage="$dest.new"
rm -rf "$stage"
mkdir -p "$stage/root"
for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$stage/root"
done
libdir="/usr/lib/$multiarch"
loader=$(cd "$stage/root$libdir" && ls ld-linux*.so.* | head -1)
cat >"$stage/criu" <<EOF
#!/bin/sh
# CRIU $want from Debian 13 with its own libc (installed by rsrun's scripts/criu.sh).
root=$dest/root
exec "\$root$libdir/$loader" --argv0 criu --library-path "\$root$libdir" "\$root/usr/sbin/criu" "\$@"
EOF
chmod 755 "$stage/criu"
# The wrapper points at $dest: check it there, after the swap.
rm -rf "$dest.old"
[ -e "$dest" ] && mv "$dest" "$dest.old"
mv "$stage" "$dest"
rm -rf "$dest.old"
if ! "$dest/criu" --version | grep -qE "$good"; then
    echo "criu.sh: $dest/criu does not run:" >&2
    "$dest/criu" --version >&2 || true
    exit 1
fi
echo "criu.sh: CRIU $want installed in $dest"
