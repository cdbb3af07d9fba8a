#!/usr/bin/env bash
# Build a busybox bundle under ./demo and run a container from it with rsrun.
set -euo pipefail
RSRUN=$(realpath "${1:-target/release/rsrun}")
DEMO=$(pwd)/demo
BUNDLE=$DEMO/bundle
ROOT=$DEMO/state

rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/rootfs"/{bin,proc,sys,dev,tmp,etc,root}
cp /bin/busybox "$BUNDLE/rootfs/bin/"
for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -sf busybox "$BUNDLE/rootfs/bin/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$BUNDLE/rootfs/etc/passwd"

cd "$BUNDLE"
"$RSRUN" spec
# rsrun spec writes runc's default (an interactive sh); run a script instead.
sed -i 's/"terminal": true/"terminal": false/' config.json
sed -i 's|^\t\t\t"sh"$|\t\t\t"sh", "-c", "echo \\"hello from $(hostname), pid $$, uid $(id -u)\\"; grep -E \\"^(CapEff\|NoNewPrivs)\\" /proc/self/status; echo mounts:; cut -d\\" \\" -f5,9 /proc/self/mountinfo \| head -8"|' config.json

echo "+ rsrun --root $ROOT run demo"
"$RSRUN" --root "$ROOT" run demo
