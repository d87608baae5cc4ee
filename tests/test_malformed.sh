#!/bin/sh
# The malformed-file catalogue (tests/fixtures/malformed, written by
# tests/gen_malformed.py): every bad/ file must make `gpt2in inspect` exit 2
# with exactly one line on stderr, "gpt2in: " + a message containing the
# expected text (so each file fails for the reason it was made for), nothing
# on stdout and no sanitizer report; every good/ file must be accepted, in
# text and --json form (the JSON checked by Python's parser when available).
set -u
: "${GPT2IN:=build/gpt2in}"
dir=tests/fixtures/malformed
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0 nbad=0 ngood=0

while IFS='	' read -r file want; do
    [ -n "$file" ] || continue
    nbad=$((nbad + 1))
    "$GPT2IN" inspect "$dir/$file" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    lines=$(wc -l <"$tmp/err")
    if [ $rc -ne 2 ]; then
        echo "FAIL $file: exit $rc, want 2"; fail=1
    elif [ "$lines" -ne 1 ]; then
        echo "FAIL $file: $lines lines on stderr, want 1:"; sed 's/^/    /' "$tmp/err"; fail=1
    elif ! grep -qF -- "$want" "$tmp/err"; then
        echo "FAIL $file: message lacks '$want':"; sed 's/^/    /' "$tmp/err"; fail=1
    elif ! grep -q '^gpt2in: ' "$tmp/err"; then
        echo "FAIL $file: message does not start with 'gpt2in: '"; fail=1
    elif [ -s "$tmp/out" ]; then
        echo "FAIL $file: wrote to stdout"; fail=1
    fi
done <"$dir/expected.txt"

for f in "$dir"/good/*; do
    ngood=$((ngood + 1))
    for mode in "" --json; do
        if ! "$GPT2IN" inspect $mode "$f" >"$tmp/out" 2>"$tmp/err"; then
            echo "FAIL $f ($mode): rejected:"; sed 's/^/    /' "$tmp/err"; fail=1
        elif [ -s "$tmp/err" ]; then
            echo "FAIL $f ($mode): wrote to stderr"; fail=1
        elif [ "$mode" = --json ] && [ -x /usr/bin/python3 ] &&
            ! /usr/bin/python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/out"; then
            echo "FAIL $f: --json output is not JSON"; fail=1
        fi
    done
done

# the catalogue itself must be there: a test that checks nothing cannot fail
if [ $nbad -lt 40 ] || [ $ngood -lt 10 ]; then
    echo "FAIL only $nbad bad and $ngood good files"; fail=1
fi
echo "malformed: $nbad bad files rejected, $ngood good files accepted"
exit $fail
