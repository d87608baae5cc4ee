#!/bin/sh
# Instructions a byte of bpe_encode (one thread, text in memory) on the
# benchmark's corpora, counted by callgrind: unlike a clock, the count does
# not depend on the machine's load, so two builds can be compared on a busy
# machine. Only bpe_encode is counted (--toggle-collect), not reading the
# file or the parallel run of tests/bench/bench_bpe_lib.c.
#
#   sh tests/bench/bench_bpe_instr.sh [CORPORA_DIR]
#
# CORPORA_DIR: what tests/bench/make_corpora.py wrote (built into a
# temporary folder when not given). LIB="a.a b.a" compares libraries
# (default: build/libgpt2in.a). Needs valgrind.
set -u
cd "$(dirname "$0")/../.." || exit 2
command -v valgrind > /dev/null 2>&1 || { echo "bench_bpe_instr: valgrind is not installed"; exit 2; }
LIBS=${LIB:-build/libgpt2in.a}
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
corp=${1:-}
if [ -z "$corp" ]; then
    sh tools/deps.sh install-bench || { echo "bench_bpe_instr: the corpora's packages cannot be installed"; exit 2; }
    corp=$tmp/corpora
    /usr/bin/python3 tests/bench/make_corpora.py "$corp" > /dev/null || exit 2
fi
k=0
for lib in $LIBS; do
    k=$((k + 1))
    ${CC:-cc} -O2 -Ibpe -o "$tmp/lib$k" tests/bench/bench_bpe_lib.c "$lib" -lutf8proc -lm -pthread ||
        { echo "bench_bpe_instr: cannot build tests/bench/bench_bpe_lib.c against $lib"; exit 2; }
done
printf '%-16s' corpus
for lib in $LIBS; do printf ' %28s' "$lib"; done
echo
for f in "$corp"/*.txt; do
    [ "$(basename "$f")" = MANIFEST.txt ] && continue
    bytes=$(wc -c < "$f")
    printf '%-16s' "$(basename "$f" .txt)"
    k=0
    for lib in $LIBS; do
        k=$((k + 1))
        ir=$(valgrind --tool=callgrind --toggle-collect=bpe_encode --callgrind-out-file=/dev/null \
            "$tmp/lib$k" 0 "$f" 2>&1 >/dev/null | sed -n 's/.*Collected : *\([0-9]*\).*/\1/p')
        [ -n "$ir" ] || { echo " callgrind failed"; exit 2; }
        printf ' %28s' "$(awk -v i="$ir" -v b="$bytes" 'BEGIN { printf "%.1f a byte (%.0fM)", i / b, i / 1e6 }')"
    done
    echo
done
