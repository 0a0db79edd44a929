#!/bin/sh
# The setup script of the second demo image (make demo): slim the base the
# way many users do, and add a configuration file. `nexlab diff` then shows
# what was removed and added, and how the sizes of directories and packages moved.
set -eu
rm -rf /usr/share/doc/* /usr/share/man/* /usr/share/info/*
mkdir -p /etc/nex
printf 'log_level: info\nworkload_dir: /home/nex\n' > /etc/nex/agent.yaml
