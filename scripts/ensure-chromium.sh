#!/bin/sh
# Installs Debian's Chromium (used by the playground's browser tests) only when it is missing.
# Without root (or password-less sudo) it only warns: those tests then skip, saying why.
set -eu
export DEBIAN_FRONTEND=noninteractive
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    apt-get update && apt-get install -y -q chromium
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get update && sudo -E apt-get install -y -q chromium
else
    echo "ensure-chromium: /usr/bin/chromium is missing and this user cannot install it;" \
        "the browser tests will be skipped (as root: apt-get update && apt-get install -y chromium)" >&2
fi
