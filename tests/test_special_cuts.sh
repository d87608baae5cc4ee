#!/bin/sh
# <|endoftext|> across the places where gpt2in cuts text, through the
# program, against npm tiktoken: one token at each offset across the stream's
# block edge (1 MiB with one thread, 2 MiB with two), and 2 MB texts dense in
# the token and its prefixes behind pads that move every part boundary of 2,
# 3 and 7 threads across the unit. Each text under --special allow (ids and
# --offsets, from a file and from stdin, and count), --special text, and the
# default error (exit 2, the right byte). Texts and ids:
# tests/oracle/special_cuts.js. The library's own cuts (stream write sizes,
# bpe_safe_cut, every offset) are tests/test_bpe_cuts.c, which also runs
# under the sanitizers; this one (a minute of tiktoken) runs in the normal
# build only.
set -u
: "${GPT2IN:=build/gpt2in}" "${SANITIZED:=0}"
[ -x "$GPT2IN" ] || { echo "skipped: $GPT2IN is not built"; exit 77; }
[ "$SANITIZED" = 1 ] && { echo "skipped: the normal build runs it (test_bpe_cuts covers the library under ASan)"; exit 77; }
sh tests/oracle/install.sh || exit $?
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
fails=0 n=0
fail() { fails=$((fails + 1)); echo "FAIL: $*"; }
ids() { tr -s ' \t\r\n' '\n' | sed '/^$/d'; }

node tests/oracle/special_cuts.js "$tmp" > "$tmp/cases" || { echo "special_cuts.js failed"; exit 2; }
k=0
while read -r name threads; do
    f=$tmp/$name
    cut -d' ' -f1 "$f.allow" > "$f.allow_ids"
    for t in $threads; do
        n=$((n + 1))
        "$GPT2IN" encode --threads "$t" --special allow --offsets "$f.txt" 2>"$tmp/err" | tr '\t' ' ' > "$tmp/got" &&
            cmp -s "$tmp/got" "$f.allow" || fail "$name, --threads $t --special allow --offsets: $(diff "$f.allow" "$tmp/got" | head -n 3 | tr '\n' ' ') $(cat "$tmp/err")"
    done
    # the other ways in, each with one of the text's thread counts in turn
    set -- $threads
    k=$((k + 1)); shift $((k % $#)); t=$1
    what="$name, --threads $t"
    n=$((n + 1))
    "$GPT2IN" encode --threads "$t" --special allow < "$f.txt" 2>"$tmp/err" | ids > "$tmp/got" &&
        cmp -s "$tmp/got" "$f.allow_ids" || fail "$what --special allow from stdin: ids differ $(cat "$tmp/err")"
    if [ -f "$f.text" ]; then
        n=$((n + 1))
        "$GPT2IN" encode --threads "$t" --special text "$f.txt" 2>"$tmp/err" | ids > "$tmp/got" &&
            cmp -s "$tmp/got" "$f.text" || fail "$what --special text: ids differ $(cat "$tmp/err")"
    fi
    n=$((n + 1))
    c=$("$GPT2IN" count --threads "$t" --special allow "$f.txt" 2>&1)
    [ "$c" = "$(wc -l < "$f.allow" | tr -d ' ')" ] || fail "$what count --special allow: $c"
    n=$((n + 1))
    "$GPT2IN" encode --threads "$t" "$f.txt" > /dev/null 2>"$tmp/err"
    rc=$?
    [ $rc -eq 2 ] && grep -q "at byte $(cat "$f.error")\b" "$tmp/err" ||
        fail "$what default policy: exit $rc, want 2 and the token at byte $(cat "$f.error"): $(cat "$tmp/err")"
done < "$tmp/cases"
echo "$n checks on $(wc -l < "$tmp/cases" | tr -d ' ') texts, $fails failed"
[ $fails -eq 0 ]
