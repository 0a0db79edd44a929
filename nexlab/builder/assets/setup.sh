#!/bin/sh
# nexlab's setup script. It runs as root inside a container of the base image
# and changes that container's own root, which becomes the new root filesystem
# (nexlab exports it through the engine and keeps what a guest needs). The agent
# is at /usr/local/bin/agent and its service at $NEXLAB_SERVICE for the base's
# init, $NEXLAB_INIT: openrc (/etc/init.d/agent, the nex recipe), systemd (a
# unit), busybox or sysvinit (an inittab entry running a wrapper). It works with
# busybox (Alpine) and with Debian's dash and coreutils.
#
# Progress lines "nexlab-step: N/M text" drive the progress bar; the last step
# (export) runs outside the container.
set -eu

# The init and its service path, written by nexlab once it read them from this container.
[ ! -f /nexlab/env ] || . /nexlab/env
INIT=${NEXLAB_INIT:-openrc}
SERVICE=${NEXLAB_SERVICE:-/etc/init.d/agent}
STEPS=6

step() { echo "nexlab-step: $1/$STEPS $2"; }
warn() { echo "nexlab-warning: $*"; }
fail() { echo "nexlab-error: $*"; exit 3; }
have() { command -v "$1" >/dev/null 2>&1; }

# On a local engine nexlab writes the agent and its service into /nexlab (a directory of
# this container's own, see nexlab.builder.layers.place_inputs): moved here where they go.
place() {
    [ -f "$1" ] || return 0
    { mkdir -p "${2%/*}" && mv -f "$1" "$2"; } 2>/dev/null \
        || fail "cannot copy nexlab's setup files into this base image: ${2%/*} is not a directory"
}
place /nexlab/agent /usr/local/bin/agent
place /nexlab/service "$SERVICE"

step 1 "packages"
if [ "$INIT" != openrc ]; then
    echo "init: $INIT, nothing to install"
elif [ -x /sbin/openrc-run ] || [ -x /usr/sbin/openrc-run ]; then
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
# Another user or group already holding 1000 would make useradd/addgroup fail
# with their own words, or give nex another id: say what is in the way.
name_of() { awk -F: -v id="$2" '$3 == id { print $1; exit }' "$1"; }
group_1000=$(name_of /etc/group 1000)
user_1000=$(name_of /etc/passwd 1000)
if [ -n "$group_1000" ] && [ "$group_1000" != nex ]; then
    fail "gid 1000 is already group '$group_1000' in this base image; the agent needs nex as 1000:1000 (renumber it in the base image)"
fi
if [ -n "$user_1000" ] && [ "$user_1000" != nex ]; then
    fail "uid 1000 is already user '$user_1000' in this base image; the agent needs nex as 1000:1000 (renumber it in the base image)"
fi
if ! grep -q '^nex:' /etc/group; then
    if have groupadd; then groupadd -g 1000 nex; else addgroup -g 1000 -S nex; fi
fi
if ! grep -q '^nex:' /etc/passwd; then
    if have useradd; then useradd -u 1000 -g nex -d /home/nex -s /bin/sh -M nex
    else adduser -u 1000 -S -D -H -h /home/nex -s /bin/sh -G nex nex; fi
fi
nex_ids="$(id -u nex):$(id -g nex)"
if [ "$nex_ids" != "1000:1000" ]; then
    fail "user nex is $nex_ids in this base image, the agent needs 1000:1000"
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
if have agetty; then getty=agetty; else getty=getty; fi
grep -qx ttyS0 /etc/securetty 2>/dev/null || echo ttyS0 >>/etc/securetty
# A getty on ttyS0 from inittab (busybox init, sysvinit), unless one is there;
# commented-out examples (Debian's "#T0:...ttyS0") do not count.
inittab_getty() {
    if [ -f /etc/inittab ] && ! grep -q '^[^#]*ttyS0' /etc/inittab; then
        if grep -q '^tty1::' /etc/inittab || [ "$INIT" = busybox ]; then   # busybox init
            echo "ttyS0::respawn:/sbin/$getty -L 115200 ttyS0 vt100" >>/etc/inittab
        else                                                             # sysvinit
            echo "T0:2345:respawn:/sbin/$getty -L 115200 ttyS0 vt100" >>/etc/inittab
        fi
    fi
}

install_openrc() {
    if [ -f /etc/init.d/agetty ]; then
        ln -sf agetty /etc/init.d/agetty.ttyS0
    fi
    # Only without OpenRC's agetty.ttyS0: two gettys on one line fight over it.
    [ -f /etc/init.d/agetty.ttyS0 ] || inittab_getty
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
}

install_systemd() {
    units=/etc/systemd/system
    mkdir -p "$units/multi-user.target.wants" "$units/getty.target.wants"
    ln -sf "$SERVICE" "$units/multi-user.target.wants/agent.service"
    # No graphical target in a microVM.
    for lib in /lib /usr/lib; do
        if [ -f "$lib/systemd/system/multi-user.target" ]; then
            ln -sf "$lib/systemd/system/multi-user.target" "$units/default.target"
            break
        fi
    done
    # The stock serial-getty@.service binds to dev-ttyS0.device, which only udev
    # announces: without udev (minbase) boot waits 90 s for it and the getty
    # never starts. An instance unit of its own takes precedence over the template.
    cat >"$units/serial-getty@ttyS0.service" <<UNIT
# nexlab: the serial console's getty, without the wait for udev's dev-ttyS0.device.
[Unit]
Description=Serial Getty on ttyS0
After=systemd-user-sessions.service getty-pre.target
Before=getty.target
IgnoreOnIsolate=yes
ConditionPathExists=/dev/ttyS0

[Service]
ExecStart=-/sbin/$getty -L 115200 ttyS0 vt100
Type=idle
Restart=always
UtmpIdentifier=ttyS0
TTYPath=/dev/ttyS0
TTYReset=yes
TTYVHangup=yes
IgnoreSIGPIPE=no
SendSIGHUP=yes

[Install]
WantedBy=getty.target
UNIT
    ln -sf "$units/serial-getty@ttyS0.service" "$units/getty.target.wants/serial-getty@ttyS0.service"
}

install_inittab() {
    [ -f /etc/inittab ] || fail "$INIT init without /etc/inittab: nothing would start the agent"
    if [ "$INIT" = busybox ]; then
        # Alpine's inittab runs OpenRC, which a minirootfs does not have.
        if ! [ -x /sbin/openrc ]; then
            sed -i 's|^\(::[a-z]*:/sbin/openrc\)|#\1|' /etc/inittab
        fi
        # Without OpenRC nothing mounts the kernel's filesystems.
        grep -q 'agent-service sysinit' /etc/inittab \
            || echo "::sysinit:$SERVICE sysinit" >>/etc/inittab
        grep -q "^[^#]*respawn:$SERVICE\$" /etc/inittab || echo "::respawn:$SERVICE" >>/etc/inittab
    else
        # After rcS (if there is one): it mounts only what is not mounted yet.
        grep -q 'agent-service sysinit' /etc/inittab || echo "as::sysinit:$SERVICE sysinit" >>/etc/inittab
        grep -q "^[^#]*respawn:$SERVICE\$" /etc/inittab || echo "ag:2345:respawn:$SERVICE" >>/etc/inittab
    fi
    inittab_getty
}

case "$INIT" in
openrc) install_openrc ;;
systemd) install_systemd ;;
busybox | sysvinit) install_inittab ;;
*) fail "unknown init $INIT" ;;
esac

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
chown 0:0 /usr/local/bin/agent "$SERVICE"
chmod 0755 /usr/local/bin/agent
if [ "$INIT" = systemd ]; then chmod 0644 "$SERVICE"; else chmod 0755 "$SERVICE"; fi
echo "setup done"
