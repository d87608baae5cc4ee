#!/bin/sh
# A file size limit (ulimit -f) is a write error like a full disk: one line
# "write error", exit 2, the old file kept and no temporary file left; not
# SIGXFSZ killing the command (exit 153, no message, the temporary left).
set -u
: "${GPT2IN:=build/gpt2in}"
[ -x "$GPT2IN" ] || { echo "skipped: $GPT2IN is not built"; exit 77; }
d=$(mktemp -d) || exit 2
trap 'rm -rf "$d"' EXIT
fail=0
bad() { printf 'FAIL: %s\n' "$*"; fail=1; }
G=$GPT2IN
"$G" init --vocab 1000 --ctx 64 --channels 24 --out "$d/keep.safetensors" || exit 2
cp "$d/keep.safetensors" "$d/orig"
limited() { # WHAT CMD...: under a 100-block limit, CMD fails with one "write error" line
    what=$1; shift
    (ulimit -f 100 && exec "$@") > /dev/null 2> "$d/err"; rc=$?
    [ $rc -eq 2 ] || bad "$what under ulimit -f: exit $rc, expected 2: $(head -c 300 "$d/err")"
    [ "$(wc -l < "$d/err")" -eq 1 ] && grep -q "write error" "$d/err" ||
        bad "$what under ulimit -f: not one write error line: $(head -c 300 "$d/err")"
}
limited "init over a file" "$G" init --out "$d/keep.safetensors"
cmp -s "$d/keep.safetensors" "$d/orig" || bad "init under ulimit -f: the old file changed"
head -c 3000000 /dev/zero | tr '\0' 'a' | sed 's/aaaa/a b /g' > "$d/t.txt"
(ulimit -f 100000 && exec "$G" encode --format npy "$d/t.txt" > "$d/t.npy") || bad "test setup: encode"
limited "encode > file" sh -c 'exec "$0" encode --format npy "$1" > "$2"' "$G" "$d/t.txt" "$d/t2.npy"
limited "shard" "$G" shard --quiet --out "$d/sh" "$d/t.txt"
left=$(ls -A "$d" "$d/sh" 2> /dev/null | grep '\.tmp\.')
[ -z "$left" ] || bad "temporary files left: $left"
[ $fail -eq 0 ] && echo "ok: a file size limit is a write error"
exit $fail
