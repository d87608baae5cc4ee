#!/bin/sh
# make bench: runs every tests/bench/bench_*.sh in turn. Each runs gpt2in and
# its peers side by side in one run and prints figures and ratios.
set -u
cd "$(dirname "$0")/../.." || exit 2
status=0
for s in tests/bench/bench_*.sh; do
    [ -f "$s" ] || continue
    echo "== $s"
    sh "$s" || status=1
    echo
done
exit $status
