#!/bin/sh
# nexlab: a placeholder. The reproducible build writes the real agent into the image
# after the setup (so a cached setup serves every agent); it never boots with this one.
echo "nexlab: placeholder agent" >&2
exit 1
