#!/bin/sh
# nexlab's sample agent: a stand-in for nex-agent that proves the service runs.
# It says hello and then heartbeats into its log (/home/nex/nex.log under OpenRC).
echo "nexlab sample agent started as $(id -un) (pid $$)"
while :; do
    sleep 30
    echo "heartbeat $(date -u +%Y-%m-%dT%H:%M:%SZ)"
done
