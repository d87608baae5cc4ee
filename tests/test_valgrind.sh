#!/bin/sh
# Runs a representative set of gpt2in invocations under valgrind's memcheck
# (--error-exitcode=3 --leak-check=full): encode/count/decode in every
# format and error path, inspect, init, embed and verify on small inputs.
# Any invalid read/write, use of uninitialised memory or leak fails the
# suite. Commands the program does not have are skipped one by one.
# Only in the normal build (valgrind cannot run ASan binaries).
set -u
if [ "${SANITIZED:-0}" = 1 ]; then
    echo "skipped in the sanitized pass (valgrind runs the normal build)"
    exit 77
fi
if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind is not installed (apt-get install valgrind); skipped"
    exit 77
fi
G=${GPT2IN:-build/gpt2in}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0 runs=0

has() { # command: does the program know it?
    "$G" "$1" --help >/dev/null 2>&1
}

# vg WANT_EXIT STDIN_FILE ARGS... : runs gpt2in under memcheck; WANT_EXIT is
# the exit status the command must give (0, or 2 for bad input).
vg() {
    want=$1 in=$2
    shift 2
    runs=$((runs + 1))
    valgrind -q --error-exitcode=3 --leak-check=full --show-leak-kinds=definite,indirect,possible \
        --errors-for-leak-kinds=definite,indirect,possible \
        --log-file="$T/vg.log" "$G" "$@" <"$in" >"$T/out" 2>"$T/err"
    rc=$?
    if [ $rc -ne "$want" ] || [ -s "$T/vg.log" ]; then
        fails=$((fails + 1))
        echo "FAIL (exit $rc, want $want): gpt2in $* < $(basename "$in")"
        sed 's/^/    /' "$T/vg.log" | head -n 40
        head -n 5 "$T/err" | sed 's/^/    stderr: /'
    else
        echo "ok   (exit $rc): gpt2in $* < $(basename "$in")"
    fi
}

# inputs
printf 'Hello world! It'"'"'s 2024; naïve café, 日本語, 😀.\n\n  def f(x):\n\treturn x  \n' >"$T/text.txt"
printf 'ok \377\376 bad \303 end \355\240\200 x\n' >"$T/invalid.txt"
printf 'before <|endoftext|> after' >"$T/eot.txt"
: >"$T/empty.txt"
head -c 3000 /dev/zero | tr '\0' '=' >"$T/long.txt"
printf '31373 995 0 50256 13 198\n' >"$T/ids.txt"
printf '31373 99999 13\n' >"$T/badid.txt"
printf '31373 -5\n' >"$T/negid.txt"
printf '31373 abc\n' >"$T/junkid.txt"

if has encode; then
    for fmt in text u16 u32 npy json llmc; do
        vg 0 "$T/text.txt" encode --format $fmt
    done
    for f in invalid.txt empty.txt long.txt; do
        vg 0 "$T/$f" encode --format npy
    done
    vg 0 "$T/text.txt" encode --offsets
    # 2.7 MB: the stream cuts 2 MB blocks and two threads share each block
    i=0
    while [ $i -lt 14 ]; do cat "$T/text.txt" "$T/text.txt" "$T/text.txt" "$T/text.txt"; i=$((i + 1)); done >"$T/x.txt"
    i=0
    while [ $i -lt 600 ]; do cat "$T/x.txt"; i=$((i + 1)); done >"$T/big.txt"
    vg 0 "$T/big.txt" encode --threads 2 --format u32
    vg 0 "$T/text.txt" encode --threads 2 --format u32
    vg 0 "$T/eot.txt" encode --special allow
    vg 0 "$T/eot.txt" encode --special text
    vg 2 "$T/eot.txt" encode
    vg 2 "$T/invalid.txt" encode --strict
    vg 2 /dev/null encode --no-such-flag
    vg 2 /dev/null encode "$T/does-not-exist.txt"
    vg 0 /dev/null encode --encoder gpt2_weights/encoder.json --merges gpt2_weights/vocab.bpe \
        "$T/text.txt"
    printf '{"a": 0' >"$T/bad.json"
    vg 2 /dev/null encode --encoder "$T/bad.json" --merges gpt2_weights/vocab.bpe "$T/text.txt"
fi
if has count; then
    vg 0 "$T/text.txt" count
    vg 0 "$T/invalid.txt" count
fi
if has decode; then
    vg 0 "$T/ids.txt" decode
    "$G" encode --format npy <"$T/text.txt" >"$T/ids.npy"
    "$G" encode --format llmc <"$T/text.txt" >"$T/ids.llmc"
    "$G" encode --format json <"$T/text.txt" >"$T/ids.json"
    "$G" encode --format u16 <"$T/text.txt" >"$T/ids.u16"
    vg 0 "$T/ids.npy" decode --input-format npy
    vg 0 "$T/ids.llmc" decode --input-format llmc
    vg 0 "$T/ids.json" decode --input-format json
    vg 0 "$T/ids.u16" decode --input-format u16
    vg 2 "$T/badid.txt" decode
    vg 2 "$T/negid.txt" decode
    vg 2 "$T/junkid.txt" decode
    head -c 300 "$T/ids.llmc" >"$T/short.llmc"
    vg 2 "$T/short.llmc" decode --input-format llmc
fi
W="$T/w.safetensors"
if has init; then
    vg 0 /dev/null init --out "$W" --vocab 50257 --ctx 64 --channels 8 --seed 3
else
    W=""
fi
if has inspect; then
    [ -n "$W" ] && vg 0 /dev/null inspect "$W" && vg 0 /dev/null inspect --json "$W"
    [ -f "$T/ids.npy" ] && vg 0 /dev/null inspect "$T/ids.npy"
    vg 2 /dev/null inspect "$T/text.txt"
    if [ -n "$W" ]; then
        head -c 200 "$W" >"$T/trunc.safetensors"
        vg 2 /dev/null inspect "$T/trunc.safetensors"
    fi
fi
if has embed && [ -n "$W" ]; then
    vg 0 "$T/ids.txt" embed --weights "$W" --format f32
    vg 0 "$T/ids.txt" embed --weights "$W" --format text --positions
    vg 0 "$T/ids.txt" embed --weights "$W" -o "$T/ref.npy"
    vg 2 "$T/badid.txt" embed --weights "$W"
    if has verify; then
        vg 0 /dev/null verify --weights "$W" --ids "$T/ids.txt" --ref "$T/ref.npy"
        vg 1 /dev/null verify --weights "$W" --ids "$T/ids.txt" --ref "$T/ref.npy" --positions
    fi
fi
echo "$runs runs under valgrind, $fails failed"
[ $runs -gt 0 ] || { echo "no gpt2in command to run"; exit 77; }
[ $fails -eq 0 ]
