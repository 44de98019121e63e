#!/bin/sh
# Debian's PostgreSQL server: the store tests start a throwaway cluster from its binaries.
exec sh "$(dirname "$0")/apt-install-if-missing.sh" ensure-postgres postgresql \
    '/usr/lib/postgresql/*/bin/pg_ctl'
