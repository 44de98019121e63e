#!/bin/sh
# Debian's Node.js, for the playground's JavaScript unit tests (`node --test`, Node >= 18).
sh "$(dirname "$0")/apt-install-if-missing.sh" ensure-node nodejs /usr/bin/node /usr/local/bin/node
if command -v node >/dev/null 2>&1; then
    major=$(node -p 'process.versions.node.split(".")[0]')
    if [ "$major" -lt 18 ]; then
        echo "ensure-node: node $(node --version) has no test runner; Node 18 or later is needed" >&2
        exit 1
    fi
fi
