#!/bin/sh
# Usage: apt-install-if-missing.sh NAME PACKAGE FILE...
# Installs the Debian PACKAGE unless one of the FILEs (shell globs allowed) is already
# executable. Without root (or password-less sudo) it only warns: the tests that need it then
# skip, saying why.
set -eu
export DEBIAN_FRONTEND=noninteractive
name=$1 package=$2
shift 2
for pattern in "$@"; do
    for file in $pattern; do
        if [ -x "$file" ]; then
            exit 0
        fi
    done
done
if [ "$(id -u)" -eq 0 ]; then
    apt-get update && apt-get install -y -q "$package"
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get update && sudo -E apt-get install -y -q "$package"
else
    echo "$name: $package is missing and this user cannot install it; the tests that need it" \
        "will be skipped (as root: apt-get update && apt-get install -y $package)" >&2
fi
