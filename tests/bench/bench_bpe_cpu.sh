#!/bin/sh
# bench_bpe_cpu.sh ROUNDS FILE LIB.a...: libraries side by side by thread CPU
# time (tests/bench/bench_bpe_cpu.c): each round runs every library in turn
# on one core (the best of 3 runs each; odd rounds in reverse order), then
# prints each library's best and median MB/s (10^6 bytes), and for each
# library after the first its time over the first's within each round
# (median of the rounds) and how many rounds it won: under load the bests
# and medians of a whole run can disagree where the paired rounds do not.
# The load before and after. For telling builds apart on a VM whose speed
# moves between runs of the same code.
set -u
[ $# -ge 3 ] || { echo "usage: bench_bpe_cpu.sh ROUNDS FILE LIB.a..."; exit 2; }
cd "$(dirname "$0")/../.." || exit 2
rounds=$1 file=$2; shift 2
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
k=0
for lib in "$@"; do
    k=$((k + 1))
    ${CC:-cc} -O2 -Ibpe -o "$tmp/cpu$k" tests/bench/bench_bpe_cpu.c "$lib" -lutf8proc -ljansson -lm -pthread ||
        { echo "bench_bpe_cpu: cannot link $lib"; exit 2; }
done
pin=
command -v taskset > /dev/null 2>&1 && [ "$(nproc)" -gt 1 ] && pin="taskset -c $(($(nproc) - 1))"
bytes=$(wc -c < "$file")
echo "load $(cut -d' ' -f1-3 /proc/loadavg) at the start; $rounds rounds on $file ($bytes bytes)"
r=0
while [ $r -lt "$rounds" ]; do
    order=$(seq 1 $#)
    [ $((r % 2)) = 1 ] && order=$(seq $# -1 1)
    for k in $order; do
        echo "$r $k $($pin "$tmp/cpu$k" "$file" 3)" >> "$tmp/res" || exit 2
    done
    r=$((r + 1))
done
k=0
for lib in "$@"; do
    k=$((k + 1))
    awk -v k=$k -v b="$bytes" '$2 == k { print b / $3 / 1e6 }' "$tmp/res" | sort -n |
        awk -v l="$lib" '{ a[NR] = $1 } END { printf "%-40s best %6.1f  median %6.1f MB/s", l, a[NR], a[int((NR + 1) / 2)] }'
    if [ $k -gt 1 ]; then
        awk -v k=$k '$2 == 1 { t1[$1] = $3 } $2 == k { tk[$1] = $3 }
                     END { for (r in tk) print tk[r] / t1[r] }' "$tmp/res" | sort -g |
            awk '{ a[NR] = $1; won += $1 < 1 } END { printf "  time / the first: median %.3f, won %d of %d rounds", a[int((NR + 1) / 2)], won, NR }'
    fi
    echo
done
echo "load $(cut -d' ' -f1-3 /proc/loadavg) at the end"
