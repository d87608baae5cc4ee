#!/bin/sh
# Installs the test oracle (npm tiktoken, exact version from package-lock.json)
# into tests/oracle/node_modules once. Exit 0 = ready, 77 = cannot be had here
# (no Node/npm or the npm registry is not reachable); the last line says why.
# Usage from a test:  sh tests/oracle/install.sh || exit $?
dir=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null 2>&1 || { echo "skipped: node is not installed (apt-get install nodejs npm)"; exit 77; }
# Ready when every dependency is installed at the version the lock pins.
installed() {
    node -e '
        const d = process.argv[1], lock = require(d + "/package-lock.json").packages;
        for (const name of Object.keys(require(d + "/package.json").dependencies)) {
            const want = lock["node_modules/" + name];
            let have = null;
            try { have = require(d + "/node_modules/" + name + "/package.json").version; } catch (e) {}
            if (!want || have !== want.version) process.exit(1);
        }' "$dir" 2>/dev/null
}
installed && exit 0
command -v npm >/dev/null 2>&1 || { echo "skipped: npm is not installed (apt-get install npm)"; exit 77; }
# Two processes may get here at once (normal and sanitizer runs): one installs.
lock="$dir/.install.lock"
if ! mkdir "$lock" 2>/dev/null; then
    i=0
    while [ -d "$lock" ] && [ $i -lt 120 ]; do sleep 1; i=$((i + 1)); done
    installed && exit 0
    mkdir "$lock" 2>/dev/null || { echo "skipped: another npm install of the oracle is stuck ($lock)"; exit 77; }
fi
log=$(mktemp)
(cd "$dir" && timeout 300 npm ci --no-audit --no-fund --loglevel=error \
    --fetch-retries=1 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=10000) >"$log" 2>&1
rc=$?
rmdir "$lock"
if [ $rc -ne 0 ] || ! installed; then
    tail -n 5 "$log" >&2
    rm -f "$log"
    echo "skipped: npm registry not reachable (npm ci of tests/oracle failed)"
    exit 77
fi
rm -f "$log"
exit 0
