#!/bin/sh
# Long pieces: the library alone (tests/bench/bench_bpe_lib.c, text in
# memory) on pathological inputs of 1 MB and 4 MB, one thread, and the
# ratio of the two times (4 when linear, 16 when quadratic; the aim is
# at most 4.5), then the same inputs of 10 MB on one thread and on all
# cores (does one long piece get shared?).
#
# Inputs (each one line, generated here with a fixed seed):
#   letters  random a-z             digits   random 0-9 (one number piece)
#   cjk      random CJK ideographs  base64   random base64 alphabet
#   a        aaaa...                equals   ====...
#   spaces   one run of spaces      ab       abab...
#   zeros    0000... (GPT-2 has tokens of up to 16 zeros)
#   a_b      aaab aaab ... without spaces: aaabaaab...
# Options (environment): BENCH_ROUNDS (default 3), LIB (default
# build/libgpt2in.a; several, separated by spaces, are timed in the same
# rounds, one after the other, to compare builds), KINDS (default all of
# the above), BIG_MB (default 10).
set -u
cd "$(dirname "$0")/../.." || exit 2
LIB=${LIB:-build/libgpt2in.a}
ROUNDS=${BENCH_ROUNDS:-3}
KINDS=${KINDS:-letters digits cjk base64 a equals spaces ab zeros a_b}
BIG_MB=${BIG_MB:-10}
PY=/usr/bin/python3
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
nlib=0
for lib in $LIB; do
    [ -f "$lib" ] || { echo "bench_bpe_long: $lib is not built (make)"; exit 2; }
    nlib=$((nlib + 1))
    ${CC:-cc} -O2 -Ibpe -o "$tmp/bench_lib$nlib" tests/bench/bench_bpe_lib.c "$lib" -lutf8proc -ljansson -lm -pthread ||
        { echo "bench_bpe_long: cannot build tests/bench/bench_bpe_lib.c against $lib"; exit 2; }
    echo "library $nlib: $lib"
done

gen() { # KIND MB FILE
    $PY - "$1" "$2" "$3" <<'EOF'
import random, sys
kind, mb, path = sys.argv[1], float(sys.argv[2]), sys.argv[3]
n = int(mb * 1000 * 1000)
r = random.Random(5)
if kind == "letters":
    data = bytes(r.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(n))
elif kind == "digits":
    data = bytes(r.choice(b"0123456789") for _ in range(n))
elif kind == "cjk":
    data = "".join(chr(r.randrange(0x4E00, 0x9FA0)) for _ in range(n // 3)).encode()
elif kind == "base64":
    a = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    data = bytes(r.choice(a) for _ in range(n))
else:
    unit = {"a": b"a", "equals": b"=", "spaces": b" ", "ab": b"ab", "zeros": b"0", "a_b": b"aaab"}[kind]
    data = (unit * (n // len(unit) + 1))[:n]
open(path, "wb").write(data)
EOF
}

echo "library alone, one thread, best of $ROUNDS; machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %4s %10s %10s %8s\n' input lib "1 MB" "4 MB" "4MB/1MB"
worst=0
for kind in $KINDS; do
    gen "$kind" 1 "$tmp/$kind.1"
    gen "$kind" 4 "$tmp/$kind.4"
    # rounds alternate the sizes and the libraries, so a slow spell hits all
    : > "$tmp/times"
    r=0
    while [ $r -lt "$ROUNDS" ]; do
        k=1
        while [ $k -le $nlib ]; do
            for size in 1 4; do
                "$tmp/bench_lib$k" 1 "$tmp/$kind.$size" | awk -v k=$k -v s=$size 'NF == 5 { print k, s, $4 }' >> "$tmp/times"
            done
            k=$((k + 1))
        done
        r=$((r + 1))
    done
    k=1
    while [ $k -le $nlib ]; do
        set -- $(awk -v k=$k '$1 == k { if (!($2 in m) || $3 < m[$2]) m[$2] = $3 } END { print m[1], m[4] }' "$tmp/times")
        ratio=$(awk -v a="$2" -v b="$1" 'BEGIN { printf "%.2f", a / b }')
        printf '%-8s %4s %5.1f MB/s %5.1f MB/s %7sx\n' "$kind" "$k" "$(awk -v s="$1" 'BEGIN { print 1 / s }')" \
            "$(awk -v s="$2" 'BEGIN { print 4 / s }')" "$ratio"
        worst=$(awk -v a="$ratio" -v b="$worst" 'BEGIN { print (a > b ? a : b) }')
        k=$((k + 1))
    done
done
echo "worst 4MB/1MB: ${worst}x (target <= 4.5)"
echo
echo "$BIG_MB MB of one piece: one thread and all cores (library alone, best of $ROUNDS)"
printf '%-8s %4s %10s %10s %8s\n' input lib "1 thread" "all cores" "all/1t"
for kind in digits cjk a; do
    gen "$kind" "$BIG_MB" "$tmp/$kind.big"
    k=1
    while [ $k -le $nlib ]; do
        set -- $("$tmp/bench_lib$k" "$ROUNDS" "$tmp/$kind.big" | awk 'NF == 5 { print $2, $4, $5 }')
        printf '%-8s %4s %5.1f MB/s %5.1f MB/s %7sx\n' "$kind" "$k" "$(awk -v b="$1" -v s="$2" 'BEGIN { print b / 1e6 / s }')" \
            "$(awk -v b="$1" -v s="$3" 'BEGIN { print b / 1e6 / s }')" "$(awk -v a="$2" -v b="$3" 'BEGIN { printf "%.2f", a / b }')"
        k=$((k + 1))
    done
    rm -f "$tmp/$kind.big"
done
