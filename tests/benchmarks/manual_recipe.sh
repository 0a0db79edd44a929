#!/usr/bin/env bash
# The seed's manual recipe (Nex docs, "Root filesystem"), as a baseline for benchmarks:
# dd + mkfs.ext4 + mount + docker run with the setup and tar copy + umount.
# The setup does the same work as nexlab's on an offline base that already has OpenRC
# (no apk add): runlevel links, getty, nex user, tar copy, empty dirs, ownership.
# Usage: manual_recipe.sh IMAGE_TAG OUTPUT SIZE_MIB AGENT SERVICE [DIRS]
# DIRS: what is copied (default "bin etc lib lib64 root sbin usr home var"; the seed's
# own list is "bin etc lib root sbin usr").
set -euo pipefail
image=$1 output=$2 size_mib=$3 agent=$4 service=$5 dirs=${6:-bin etc lib lib64 root sbin usr home var}
mnt=$(mktemp -d /tmp/manual-rootfs.XXXXXX)
trap 'umount "$mnt" 2>/dev/null || true; rmdir "$mnt"' EXIT
dd if=/dev/zero of="$output" bs=1M count="$size_mib" status=none
mkfs.ext4 -q -F "$output"
mount "$output" "$mnt"
docker run -i --rm --network none -e DIRS="$dirs" -v "$mnt:/my-rootfs" -v "$agent:/usr/local/bin/agent" \
    -v "$service:/etc/init.d/agent" "$image" sh <<'SETUP'
set -e
mkdir -p /etc/runlevels/boot /etc/runlevels/sysinit
ln -sf /etc/init.d/agent /etc/runlevels/boot/agent
grep -q ttyS0 /etc/inittab || echo "T0:2345:respawn:/sbin/getty -L 115200 ttyS0 vt100" >>/etc/inittab
echo ttyS0 >/etc/securetty
grep -q '^nex:' /etc/passwd || { groupadd -g 1000 nex; useradd -u 1000 -g nex -M nex; }
for d in $DIRS; do [ -e /$d ] && tar c "/$d" 2>/dev/null | tar x -C /my-rootfs; done
for dir in dev proc run sys tmp; do mkdir -p /my-rootfs/${dir}; done
chmod 1777 /my-rootfs/tmp
mkdir -p /my-rootfs/home/nex/ && chown 1000:1000 /my-rootfs/home/nex/
SETUP
umount "$mnt"
