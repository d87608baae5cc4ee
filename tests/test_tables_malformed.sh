#!/bin/sh
# The malformed catalogue of the llm.c, GGUF and .npy table readers
# (tests/gen_tables_malformed.py: truncated files, wrong magics and
# versions, sizes that overflow, counts that do not match the file, ...):
# `gpt2in embed --weights` refuses each with exit 2 and one line naming the
# file and what is wrong, and reads every good file. The same files seed the
# fuzz_table_* targets (tests/fuzz/corpus/table_*).
set -u
: "${GPT2IN:=build/gpt2in}"
PY=/usr/bin/python3
$PY -c 'import numpy' 2>/dev/null || { echo "skip: /usr/bin/python3 with numpy is needed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
$PY tests/gen_tables_malformed.py "$tmp/m" || { echo "FAIL generating the catalogue"; exit 1; }
echo 0 >"$tmp/ids.txt"
nbad=0 ngood=0
for f in "$tmp"/m/good/*; do
    "$GPT2IN" embed --weights "$f" --input-format text -o "$tmp/out.npy" "$tmp/ids.txt" 2>"$tmp/err" ||
        { echo "FAIL good/${f##*/} was refused: $(cat "$tmp/err")"; fail=1; }
    ngood=$((ngood + 1))
done
tab=$(printf '\t')
while IFS="$tab" read -r name why; do
    f=$tmp/m/$name
    "$GPT2IN" embed --weights "$f" --input-format text -o "$tmp/out.npy" "$tmp/ids.txt" 2>"$tmp/err"
    rc=$?
    if [ $rc -ne 2 ] || [ "$(wc -l <"$tmp/err")" -ne 1 ]; then
        echo "FAIL $name: exit $rc, $(cat "$tmp/err")"; fail=1
    elif ! grep -qF -- "$why" "$tmp/err"; then
        echo "FAIL $name: message lacks '$why':"; echo "    $(cat "$tmp/err")"; fail=1
    elif ! grep -qF -- "${f##*/}" "$tmp/err"; then
        echo "FAIL $name: message does not name the file: $(cat "$tmp/err")"; fail=1
    fi
    nbad=$((nbad + 1))
done <"$tmp/m/expect.txt"
echo "tables malformed: $nbad bad files refused, $ngood good files read"
exit $fail
