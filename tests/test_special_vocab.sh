#!/bin/sh
# Vocabularies with several special tokens, against Hugging Face tokenizers
# (npm @anush008/tokenizers, pinned in tests/oracle): a RoBERTa-style
# tokenizer.json (tests/gen_vocab_fixtures.py --multi: ids permuted, "<s>",
# "<pad>", "</s>", "<unk>" in the vocabulary, "<sep>" sharing "<s" with
# "<s>", "<|endoftext|>", "<mask>", a non-special " hello world" and "d<s"
# past it, the last four "normalized", which Hugging Face matches in a
# second pass) and the same vocabulary as GGUF (control and user-defined
# tokens, one pass: its reference is the tokenizer.json with one pass).
# Texts: the fixture texts with special tokens, their prefixes and runs of
# them spliced in (tests/oracle/specials_text.py), and 3 MB of that text
# again and again, each time ended by <|endoftext|> (so its ids are the
# text's ids and the token's again and again).
#   --special allow  Hugging Face's ids (added tokens split leftmost-longest),
#                    1, 2, 3 and 7 threads, from a file and from stdin, both
#                    vocabularies (a special token at every byte across the
#                    stream's block edge: tests/test_vocab_formats.c)
#   --special text   Hugging Face's ids with no added tokens
#   error (default)  exit 2 naming the leftmost special token and its byte
# Skips (77) when the pinned npm oracle cannot be installed.
set -u
[ "${GPT2IN_CHECK:-0}" = 1 ] && { echo "skipped: not in make check (needs the npm oracle)"; exit 77; }
: "${GPT2IN:=build/gpt2in}" "${SANITIZED:=0}"
[ -x "$GPT2IN" ] || { echo "skipped: $GPT2IN is not built"; exit 77; }
PY=/usr/bin/python3
[ -x $PY ] || { echo "skipped: /usr/bin/python3 is missing"; exit 77; }
sh tests/oracle/install.sh || exit $?
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
fails=0 n=0
fail() { fails=$((fails + 1)); echo "FAIL: $*"; }
ids() { tr -s ' \t\r\n' '\n' | sed '/^$/d'; }
same() { # NAME WANT GOT
    n=$((n + 1))
    cmp -s "$2" "$3" || fail "$1: ids differ from Hugging Face tokenizers': $(diff "$2" "$3" | head -n 4 | tr '\n' ' ')"
}

$PY tests/gen_vocab_fixtures.py "$tmp" --multi || { echo "FAIL: gen_vocab_fixtures.py --multi"; exit 1; }
# the sanitizer build: a smaller text (the same kinds of places)
big=3000000
[ "$SANITIZED" = 1 ] && big=600000
$PY tests/oracle/specials_text.py "$tmp" $big || { echo "FAIL: specials_text.py"; exit 1; }
J=$tmp/multi.tokenizer.json G=$tmp/multi.gguf

# --special allow: the texts one by one (each ends as at end of input), then the big one
node tests/oracle/vocab_hf.js "$J" "$tmp/small.txt" > "$tmp/small.hf" || { echo "FAIL: the oracle failed"; exit 1; }
"$GPT2IN" encode --special allow --vocab "$J" "$tmp/small.txt" | ids > "$tmp/got"
same "tokenizer.json, small texts" "$tmp/small.hf" "$tmp/got"
node tests/oracle/vocab_hf.js "$tmp/multi_one.tokenizer.json" "$tmp/small.txt" > "$tmp/small1.hf" ||
    { echo "FAIL: the oracle failed"; exit 1; }
"$GPT2IN" encode --special allow --vocab "$G" "$tmp/small.txt" | ids > "$tmp/got"
same "GGUF, small texts" "$tmp/small1.hf" "$tmp/got"
cmp -s "$tmp/small.hf" "$tmp/small1.hf" && fail "the texts do not tell one pass from two"
eot=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["<|endoftext|>"])' "$tmp/multi_specials.json")
reps=$($PY -c 'import os,sys; print(os.path.getsize(sys.argv[1]) // (os.path.getsize(sys.argv[2]) + 13))' "$tmp/big.txt" "$tmp/small.txt")
for h in small small1; do
    i=0
    while [ $i -lt "$reps" ]; do cat "$tmp/$h.hf"; echo "$eot"; i=$((i + 1)); done > "$tmp/big_$h.hf"
done
mv "$tmp/big_small.hf" "$tmp/big.hf"
for t in 1 2 3 7; do
    "$GPT2IN" encode --threads $t --special allow --vocab "$J" "$tmp/big.txt" | ids > "$tmp/got"
    same "tokenizer.json, --threads $t" "$tmp/big.hf" "$tmp/got"
done
for t in 1 3; do
    "$GPT2IN" encode --threads $t --special allow --vocab "$G" < "$tmp/big.txt" | ids > "$tmp/got"
    same "GGUF from stdin, --threads $t" "$tmp/big_small1.hf" "$tmp/got"
done

# --special text: the ids of the same vocabulary without added tokens
node tests/oracle/vocab_hf.js "$tmp/multi_text.tokenizer.json" "$tmp/small.txt" > "$tmp/text.hf" ||
    { echo "FAIL: the oracle failed"; exit 1; }
for v in "$J" "$G"; do
    "$GPT2IN" encode --special text --vocab "$v" "$tmp/small.txt" | ids > "$tmp/got"
    same "$(basename "$v") --special text" "$tmp/text.hf" "$tmp/got"
done

# the default: an error naming the leftmost special token and its byte
TAB=$(printf '\t')
while IFS=$TAB read -r at tok file; do
    n=$((n + 1))
    "$GPT2IN" encode --threads 2 --vocab "$J" "$tmp/$file" > /dev/null 2> "$tmp/err"
    rc=$?
    # a token with a blank is shown quoted (one of visible ASCII as it is)
    case $tok in *" "*) shown="\"$tok\"" ;; *) shown=$tok ;; esac
    [ $rc -eq 2 ] && grep -qF "the special token $shown is in the text at byte $at" "$tmp/err" ||
        fail "$file: exit $rc, want 2 and '$tok' at byte $at: $(cat "$tmp/err")"
done < "$tmp/errors.txt"

echo "$n checks of several special tokens against Hugging Face tokenizers, $fails failed"
[ $fails -eq 0 ]
