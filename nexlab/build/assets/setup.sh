#!/bin/sh
# nexlab's setup script. It runs as root inside a container of the base image
# and changes that container's own root, which becomes the new root filesystem
# (nexlab exports it through the engine and keeps what a guest needs). The agent
# is at /usr/local/bin/agent and its OpenRC service at /etc/init.d/agent (the nex
# recipe). It works with busybox (Alpine) and with Debian's dash and coreutils.
#
# Progress lines "nexlab-step: N/M text" drive the progress bar; the last step
# (export) runs outside the container.
set -eu

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

step 5 "finish"
# The copy and the files the engine injects (hostname, hosts, resolv.conf,
# /dev, /proc, /sys) are nexlab's, in step 6 outside the container, which also
# leaves caches, package lists and logs out. Deleting the big ones here only
# makes the engine's export smaller (tens of MB after an apt-get update).
rm -rf /var/cache/apt/* /var/lib/apt/lists/* /var/cache/apk/* 2>/dev/null || true
mkdir -p /home/nex
chown 1000:1000 /home/nex
chmod 0750 /home/nex
# Root runs these at boot: they must not be owned or writable by nex.
chown 0:0 /usr/local/bin/agent /etc/init.d/agent
chmod 0755 /usr/local/bin/agent /etc/init.d/agent
echo "setup done"
