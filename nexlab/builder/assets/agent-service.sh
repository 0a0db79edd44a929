#!/bin/sh
# The Nex agent under busybox init or sysvinit without OpenRC: an inittab
# "respawn" entry runs this script, which runs the agent as nex:nex with its
# logs in /home/nex (the OpenRC service's contract). init restarts it when it
# ends; the lines on the console say whether the agent started or died.
AGENT=/usr/local/bin/agent
HOME_DIR=/home/nex
FAILURES=/run/nexlab-agent.failures
RESPAWN_DELAY=2
RESPAWN_MAX=5

say() { echo "nexlab-agent: $*" >/dev/console 2>/dev/null || echo "nexlab-agent: $*"; }

as_nex() {
    # util-linux's setpriv changes ids without a shell in between; busybox's
    # setpriv cannot, so busybox su it is (as root it asks for no password).
    if setpriv --help 2>&1 | grep -q -- --reuid; then
        exec setpriv --reuid=1000 --regid=1000 --clear-groups "$@"
    else
        exec su -s /bin/sh -c 'exec "$0" "$@"' nex "$@"
    fi
}

if [ "${1:-}" = sysinit ]; then
    # busybox init (or sysvinit) without OpenRC: nothing else may mount the kernel's filesystems.
    mountpoint -q /proc || mount -t proc proc /proc
    mountpoint -q /sys || mount -t sysfs sysfs /sys
    mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
    mkdir -p /dev/pts /dev/shm
    mountpoint -q /dev/pts || mount -t devpts devpts /dev/pts
    mountpoint -q /run || mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
    hostname -F /etc/hostname 2>/dev/null || true
    exit 0
fi

failures=$(cat "$FAILURES" 2>/dev/null || echo 0)
if [ "$failures" -ge "$RESPAWN_MAX" ]; then
    say "ERROR: agent respawned too many times, giving up (see $HOME_DIR/err.log)"
    # init would respawn an exiting script at once, for ever.
    exec sleep 2147483647
fi

say "Starting agent"
cd "$HOME_DIR" || cd /
(HOME=$HOME_DIR USER=nex LOGNAME=nex as_nex "$AGENT") >>"$HOME_DIR/nex.log" 2>>"$HOME_DIR/err.log" &
pid=$!
sleep 1
if kill -0 "$pid" 2>/dev/null; then
    echo 0 >"$FAILURES"
    say "agent started (pid $pid)"
    wait "$pid"
    status=$?
    say "ERROR: agent exited with status $status, restarting"
else
    wait "$pid"
    status=$?
    echo $((failures + 1)) >"$FAILURES"
    say "ERROR: agent exited during start-up with status $status (see $HOME_DIR/err.log)"
fi
sleep "$RESPAWN_DELAY"
