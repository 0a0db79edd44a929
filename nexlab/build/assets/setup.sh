#!/bin/sh
# nexlab's setup script. It runs as root inside the base image, with the new
# root filesystem bind-mounted at $ROOTFS, the agent at /usr/local/bin/agent and
# its OpenRC service at /etc/init.d/agent (the nex recipe). It works with
# busybox (Alpine) and with Debian's dash and coreutils.
#
# Progress lines "nexlab-step: N/M text" drive the progress bar; a line
# "nexlab-needs-kib: N" tells nexlab the content does not fit.
set -eu

ROOTFS=${NEXLAB_ROOTFS:-/my-rootfs}
COPY_DIRS="bin etc lib lib64 root sbin usr home var"
MAKE_DIRS="dev proc run sys var tmp"
STEPS=6

step() { echo "nexlab-step: $1/$STEPS $2"; }
warn() { echo "nexlab-warning: $*"; }
have() { command -v "$1" >/dev/null 2>&1; }

step 1 "packages"
if [ -x /sbin/openrc-run ] || [ -x /usr/sbin/openrc-run ]; then
    echo "OpenRC is already installed"
elif [ "${NEXLAB_NETWORK:-}" = none ]; then
    warn "no OpenRC in this base image and no network to install it (use --network bridge); the image will not boot to the agent"
elif have apk; then
    apk add --no-cache openrc util-linux || warn "cannot install openrc with apk (no package repository reachable?); the image will not boot to the agent"
elif have apt-get; then
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openrc sysvinit-core util-linux; } \
        || warn "cannot install openrc with apt-get; the image will not boot to the agent"
else
    warn "no OpenRC and no known package manager in this base image"
fi

step 2 "user nex (1000:1000)"
if ! grep -q '^nex:' /etc/group; then
    if have groupadd; then groupadd -g 1000 nex; else addgroup -g 1000 -S nex; fi
fi
if ! grep -q '^nex:' /etc/passwd; then
    if have useradd; then useradd -u 1000 -g nex -d /home/nex -s /bin/sh -M nex
    else adduser -u 1000 -S -D -H -h /home/nex -s /bin/sh -G nex nex; fi
fi
nex_ids="$(id -u nex):$(id -g nex)"
if [ "$nex_ids" != "1000:1000" ]; then
    echo "nexlab-error: user nex is $nex_ids in this base image, the agent needs 1000:1000"
    exit 3
fi
# The root account gets no password: nobody can log in on the console with a
# known one (the nex recipe's root:root is the first thing an attacker tries).
if have usermod; then usermod -p '*' root; else sed -i 's/^root:[^:]*:/root:*:/' /etc/shadow; fi

step 3 "user script"
if [ -f /nexlab/user-script ]; then
    echo "running the user script"
    sh /nexlab/user-script
fi

step 4 "console and services"
# A getty on the serial console, whichever init the base uses.
if [ -f /etc/init.d/agetty ]; then
    ln -sf agetty /etc/init.d/agetty.ttyS0
fi
# Only without OpenRC's agetty.ttyS0: two gettys on one line fight over it.
# Commented-out examples (Debian's "#T0:...ttyS0") do not count.
if [ -f /etc/inittab ] && [ ! -f /etc/init.d/agetty.ttyS0 ] && ! grep -q '^[^#]*ttyS0' /etc/inittab; then
    if have agetty; then getty=agetty; else getty=getty; fi
    if grep -q '^tty1::' /etc/inittab; then   # busybox init
        echo "ttyS0::respawn:/sbin/$getty -L 115200 ttyS0 vt100" >>/etc/inittab
    else                                     # sysvinit
        echo "T0:2345:respawn:/sbin/$getty -L 115200 ttyS0 vt100" >>/etc/inittab
    fi
fi
grep -qx ttyS0 /etc/securetty 2>/dev/null || echo ttyS0 >>/etc/securetty
# Runlevel links are what rc-update writes; making them directly also works
# when OpenRC itself could not be installed.
enable() {
    if [ -f "/etc/init.d/$1" ] || [ "$1" = agent ]; then
        mkdir -p "/etc/runlevels/$2"
        ln -sf "/etc/init.d/$1" "/etc/runlevels/$2/$1"
    fi
}
for service in devfs procfs sysfs; do enable "$service" sysinit; done
[ -f /etc/init.d/agetty.ttyS0 ] && enable agetty.ttyS0 default
enable agent boot
# Debian's OpenRC runs "openrc sysinit" from rcS and "openrc default" for
# runlevels 2-5 but never "openrc boot", so the agent in the boot runlevel would
# never start. Gentoo's inittab runs it between the two; do the same.
if [ -f /etc/inittab ] && ! grep -q '^[^#]*openrc boot' /etc/inittab \
    && { [ -x /sbin/openrc ] || [ -x /usr/sbin/openrc ]; }; then
    case "$(readlink -f /sbin/init)" in
    */busybox)   # busybox init: sysinit entries run in order, before "wait" ones
        echo "::sysinit:/sbin/openrc boot" >>/etc/inittab ;;
    *)           # sysvinit: bootwait runs after sysinit, before the runlevel
        echo "rb::bootwait:/sbin/openrc boot" >>/etc/inittab ;;
    esac
fi

step 5 "copy"
# One cp -a for everything: faster than a tar pipe per directory, and GNU cp
# also keeps xattrs (file capabilities). Owners, modes, times and links are kept.
sources=""
for dir in $COPY_DIRS; do
    if [ -e "/$dir" ] || [ -L "/$dir" ]; then sources="$sources /$dir"; fi
done
# shellcheck disable=SC2086 # word splitting of $sources is intended
if ! cp -a $sources "$ROOTFS/" 2>/tmp/nexlab-copy.err; then
    if grep -q 'No space left' /tmp/nexlab-copy.err; then
        # Measured only when it did not fit: du costs time on every good build.
        # shellcheck disable=SC2086
        needed_kib=$(du -skcx $sources | tail -n 1 | cut -f1)
        # shellcheck disable=SC2086
        needed_inodes=$(find $sources | wc -l)
        echo "content: ${needed_kib} KiB in ${needed_inodes} files does not fit in the image"
        echo "nexlab-needs: ${needed_kib} ${needed_inodes}"
        exit 75
    fi
    cat /tmp/nexlab-copy.err
    exit 4
fi
# Caches, logs and package lists are rebuilt at run time and only cost space.
rm -rf "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apk/* \
    "$ROOTFS"/var/log/apt/* "$ROOTFS"/var/tmp/*

step 6 "finish"
for dir in $MAKE_DIRS; do mkdir -p "$ROOTFS/$dir"; done
chmod 1777 "$ROOTFS/tmp"
mkdir -p "$ROOTFS/home/nex"
chown 1000:1000 "$ROOTFS/home/nex"
chmod 0750 "$ROOTFS/home/nex"
# Root runs these at boot: they must not be owned or writable by nex.
chown 0:0 "$ROOTFS/usr/local/bin/agent" "$ROOTFS/etc/init.d/agent"
chmod 0755 "$ROOTFS/usr/local/bin/agent" "$ROOTFS/etc/init.d/agent"
# Docker bind-mounts these into every container; the guest gets its own.
echo nex >"$ROOTFS/etc/hostname"
printf '127.0.0.1\tlocalhost nex\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOTFS/etc/hosts"
rm -f "$ROOTFS/etc/resolv.conf"
ln -s /proc/net/pnp "$ROOTFS/etc/resolv.conf"   # DNS from the kernel's ip= configuration, as nex does
rm -f "$ROOTFS/.dockerenv"
echo "rootfs ready"
