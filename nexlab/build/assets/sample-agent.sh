#!/bin/sh
# nexlab's sample agent: a stand-in for nex-agent that proves the service runs.
# It says hello on the console and then heartbeats into its log.
echo "nexlab sample agent started as $(id -un) (pid $$)" >/dev/console 2>/dev/null || true
echo "nexlab sample agent started as $(id -un) (pid $$)"
while :; do
    sleep 30
    echo "heartbeat $(date -u +%Y-%m-%dT%H:%M:%SZ)"
done
