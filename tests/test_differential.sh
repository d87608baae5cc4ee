#!/bin/sh
# Differential test: tens of thousands of random strings (all Unicode planes,
# whitespace/apostrophe/digit/mark/letter/emoji classes, long runs, some invalid
# bytes) through gpt2in and through npm tiktoken; every difference is printed
# with the string, both id lists and the first differing piece.
# A run is seeded and prints its seed; GPT2IN_DIFF_SEED=N repeats it,
# GPT2IN_DIFF_N=N sets the number of strings. Details: tests/oracle/differential.js.
set -u
: "${GPT2IN:=build/gpt2in}" "${SANITIZED:=0}"
[ -x "$GPT2IN" ] || { echo "skipped: $GPT2IN is not built"; exit 77; }
sh tests/oracle/install.sh || exit $?
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
# utf8proc's view of every code point, to leave out the ones whose Unicode
# version differs between gpt2in (utf8proc) and tiktoken's regex.
${CC:-cc} -O1 -Ibpe -o "$tmp/uclass" tests/oracle/uclass.c -lutf8proc || { echo "cannot build tests/oracle/uclass.c"; exit 2; }
"$tmp/uclass" > "$tmp/uclass.txt" || exit 2
GPT2IN=$GPT2IN SANITIZED=$SANITIZED exec node tests/oracle/differential.js "$tmp/uclass.txt"
