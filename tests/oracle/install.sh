#!/bin/sh
# Installs the test oracle (npm tiktoken, exact version from package-lock.json)
# into tests/oracle/node_modules once. Exit 0 = ready, 77 = cannot be had here
# (no Node/npm or the npm registry is not reachable); the last line says why.
# Usage from a test:  sh tests/oracle/install.sh || exit $?
dir=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null 2>&1 || { echo "skipped: node is not installed (apt-get install nodejs npm)"; exit 77; }
if [ -f "$dir/node_modules/tiktoken/package.json" ] &&
   node -e 'process.exit(require(process.argv[1]).version === require(process.argv[2]).packages["node_modules/tiktoken"].version ? 0 : 1)' \
        "$dir/node_modules/tiktoken/package.json" "$dir/package-lock.json" 2>/dev/null; then
    exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "skipped: npm is not installed (apt-get install npm)"; exit 77; }
# Two processes may get here at once (normal and sanitizer runs): one installs.
lock="$dir/.install.lock"
if ! mkdir "$lock" 2>/dev/null; then
    i=0
    while [ -d "$lock" ] && [ $i -lt 120 ]; do sleep 1; i=$((i + 1)); done
    [ -f "$dir/node_modules/tiktoken/package.json" ] && exit 0
    mkdir "$lock" 2>/dev/null || { echo "skipped: another npm install of the oracle is stuck ($lock)"; exit 77; }
fi
log=$(mktemp)
(cd "$dir" && timeout 300 npm ci --no-audit --no-fund --loglevel=error \
    --fetch-retries=1 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=10000) >"$log" 2>&1
rc=$?
rmdir "$lock"
if [ $rc -ne 0 ] || [ ! -f "$dir/node_modules/tiktoken/package.json" ]; then
    tail -n 5 "$log" >&2
    rm -f "$log"
    echo "skipped: npm registry not reachable (npm ci of tests/oracle failed)"
    exit 77
fi
rm -f "$log"
exit 0
