#!/bin/sh
# Debian's Chromium, for the playground's browser tests.
exec sh "$(dirname "$0")/apt-install-if-missing.sh" ensure-chromium chromium /usr/bin/chromium
