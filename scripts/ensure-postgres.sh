#!/bin/sh
# Installs Debian's PostgreSQL server (the store tests start a throwaway cluster from its
# binaries) only when initdb/pg_ctl are missing. Without root (or password-less sudo) it only
# warns: the PostgreSQL half of the store tests then skips, saying why.
set -eu
export DEBIAN_FRONTEND=noninteractive
for bin in /usr/lib/postgresql/*/bin; do
    if [ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ]; then
        exit 0
    fi
done
if [ "$(id -u)" -eq 0 ]; then
    apt-get update && apt-get install -y -q postgresql
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get update && sudo -E apt-get install -y -q postgresql
else
    echo "ensure-postgres: PostgreSQL server binaries are missing and this user cannot install" \
        "them; the PostgreSQL tests will be skipped (as root: apt-get install -y postgresql)" >&2
fi
