#!/bin/sh
# GPT-2's vocabulary in every file format gpt2in reads (--vocab), written by
# tests/gen_vocab_fixtures.py (independent Python): tokenizer.json (merges as
# strings, as pairs, the Sequence pre-tokenizer), vocab.json + merges.txt,
# tiktoken, GGUF, llm.c's gpt2_tokenizer.bin. The ids of the committed
# fixtures (tests/fixtures/tokenizer, from npm tiktoken) are the reference:
# GPT-2's own files must give exactly them, permuted files them mapped
# through the permutation; decoding must give the text back (llm.c's files
# decode only). Then the command line's refusals: one line, exit status 2.
# The Hugging Face and GGUF readers' own references: test_vocab_oracle.sh.
set -u
: "${GPT2IN:=build/gpt2in}"
[ -x "$GPT2IN" ] || { echo "skipped: $GPT2IN is not built"; exit 77; }
PY=/usr/bin/python3
[ -x $PY ] || { echo "skipped: /usr/bin/python3 is missing"; exit 77; }
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
fail=0
die() { echo "FAIL: $*"; fail=1; }

$PY tests/gen_vocab_fixtures.py "$tmp" || { echo "FAIL: gen_vocab_fixtures.py"; exit 1; }

# One corpus: every fixture text but those holding <|endoftext|>, joined by
# it; with --special allow each text ends as at end of input, so the ids are
# the texts' ids with 50256 between.
$PY - "$tmp" <<'EOF' || exit 2
import glob, os, sys
tmp = sys.argv[1]
texts, ids = [], []
for t in sorted(glob.glob("tests/fixtures/tokenizer/*.txt")):
    if os.path.basename(t).startswith("special_"):
        continue
    if texts:
        ids.append(50256)
    texts.append(open(t, "rb").read())
    ids += [int(x) for x in open(t[:-4] + ".ids").read().split()]
open(os.path.join(tmp, "corpus.txt"), "wb").write(b"<|endoftext|>".join(texts))
open(os.path.join(tmp, "want.ids"), "w").write(" ".join(map(str, ids)) + "\n")
EOF

# check NAME GOT PERM: GOT (ids) equals want.ids mapped through PERM (or as is)
check() {
    $PY - "$tmp/want.ids" "$2" "$3" <<'EOF'
import sys
want = [int(x) for x in open(sys.argv[1]).read().split()]
got = [int(x) for x in open(sys.argv[2]).read().split()]
if sys.argv[3] != "-":
    perm = [int(x) for x in open(sys.argv[3]).read().split()]
    want = [perm[i] for i in want]
if got != want:
    n = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), min(len(got), len(want)))
    print("%d ids, want %d; first difference at index %d: %s, want %s" % (
        len(got), len(want), n, got[n:n + 5], want[n:n + 5]))
    sys.exit(1)
EOF
}

# Each load builds the tables (about a second); make check and the
# sanitizer pass take the permuted files and GPT-2's GGUF only.
specs="perm.tokenizer.json:-:perm_hf.txt perm.vocab.json:perm.merges.txt:perm_hf.txt perm.tiktoken:-:perm_tiktoken.txt
gpt2.gguf:-:- perm.gguf:-:perm_hf.txt"
[ "${GPT2IN_CHECK:-0}" = 1 ] || [ "${SANITIZED:-0}" = 1 ] ||
    specs="$specs gpt2.tokenizer.json:-:- seq.tokenizer.json:-:- gpt2.tiktoken:-:-"
n_specs=0
for spec in $specs; do
    n_specs=$((n_specs + 1))
    IFS=: read -r vocab merges perm <<EOS
$spec
EOS
    [ "$perm" = - ] || perm=$tmp/$perm
    if [ "$merges" = - ]; then set -- --vocab "$tmp/$vocab"; else set -- --vocab "$tmp/$vocab" --merges "$tmp/$merges"; fi
    if ! "$GPT2IN" encode --special allow "$@" "$tmp/corpus.txt" > "$tmp/got.ids" 2> "$tmp/err"; then
        die "$vocab: encode failed: $(cat "$tmp/err")"
        continue
    fi
    msg=$(check "$vocab" "$tmp/got.ids" "$perm") || die "$vocab: $msg"
    [ "$perm" = - ] && continue  # GPT-2's ids decode as the built-in table does
    "$GPT2IN" decode "$@" "$tmp/got.ids" > "$tmp/back.txt" 2> "$tmp/err" || die "$vocab: decode failed: $(cat "$tmp/err")"
    cmp -s "$tmp/back.txt" "$tmp/corpus.txt" || die "$vocab: decode does not give the corpus back"
done

# llm.c: decoding tables
$PY - "$tmp" <<'EOF' || exit 2
import sys
tmp = sys.argv[1]
want = [int(x) for x in open(tmp + "/want.ids").read().split()]
perm = [int(x) for x in open(tmp + "/perm_hf.txt").read().split()]
open(tmp + "/perm.ids", "w").write(" ".join(str(perm[i]) for i in want) + "\n")
EOF
for spec in "gpt2_tokenizer_v1.bin want.ids" "gpt2_tokenizer_v2.bin want.ids" "perm_tokenizer_v2.bin perm.ids"; do
    set -- $spec
    "$GPT2IN" decode --vocab "$tmp/$1" "$tmp/$2" > "$tmp/back.txt" 2> "$tmp/err" || die "$1: decode failed: $(cat "$tmp/err")"
    cmp -s "$tmp/back.txt" "$tmp/corpus.txt" || die "$1: decode does not give the corpus back"
done

# refusals through the command line: one line naming the file, status 2
refused() {  # WANT ARGS...
    want=$1
    shift
    printf 'x' | timeout 120 "$GPT2IN" "$@" > /dev/null 2> "$tmp/err"
    rc=$?
    [ $rc -eq 2 ] || die "$*: exit status $rc, want 2"
    [ "$(wc -l < "$tmp/err")" -eq 1 ] || die "$*: not one line: $(cat "$tmp/err")"
    grep -qF -- "$want" "$tmp/err" || die "$*: '$(cat "$tmp/err")' lacks '$want'"
}
head -c 5000 "$tmp/gpt2.gguf" > "$tmp/cut.gguf"
refused "cut.gguf: at byte" encode --vocab "$tmp/cut.gguf"
head -c 2000 "$tmp/gpt2_tokenizer_v2.bin" > "$tmp/cut.bin"
refused "cut.bin: at byte 8: 50257 tokens cannot fit in the 976 bytes" decode --vocab "$tmp/cut.bin"
head -c 200000 "$tmp/gpt2_tokenizer_v2.bin" > "$tmp/cut.bin"
refused "truncated: token 2" decode --vocab "$tmp/cut.bin"
refused "perm.vocab.json: no \"model\" object (a vocab.json goes with a merges.txt)" encode --vocab "$tmp/perm.vocab.json"
refused "perm.tokenizer.json is a tokenizer.json, which holds its merges" encode --vocab "$tmp/perm.tokenizer.json" \
    --merges "$tmp/perm.merges.txt"
refused "a merges file goes only with a vocab.json" encode --vocab "$tmp/gpt2.gguf" --merges "$tmp/perm.merges.txt"
refused "--vocab and --encoder both name a vocabulary" encode --vocab "$tmp/gpt2.gguf" --encoder gpt2_weights/encoder.json \
    --merges gpt2_weights/vocab.bpe
sed 's/"normalizer": null/"normalizer": {"type": "Lowercase"}/' "$tmp/gpt2.tokenizer.json" > "$tmp/lower.json"
refused "lower.json: normalizer is type \"Lowercase\"; GPT-2 has none" encode --vocab "$tmp/lower.json"
printf '\223NUMPY\001\000' > "$tmp/x.npy"
refused "x.npy is a NumPy array, not a vocabulary" encode --vocab "$tmp/x.npy"
printf 'hello\n' > "$tmp/hello.txt"
refused "hello.txt: not a vocabulary file gpt2in reads" decode --vocab "$tmp/hello.txt"
printf 'YWJj 0\n' > "$tmp/short.tiktoken"
refused "short.tiktoken: no token for byte 0x00" count --vocab "$tmp/short.tiktoken"
# a rank file split by other blanks (a tab, two spaces, trailing blanks) reads
# as tiktoken's line.split() does: the same ids
sed 's/ /\t/' "$tmp/gpt2.tiktoken" > "$tmp/tab.tiktoken"
sed 's/ /  /; s/$/ /' "$tmp/gpt2.tiktoken" > "$tmp/two.tiktoken"
printf 'Hello world, 12345 tokens!' | "$GPT2IN" encode --vocab "$tmp/gpt2.tiktoken" > "$tmp/tk.want" 2>&1
for f in tab two; do
    cmp -s "$tmp/$f.tiktoken" "$tmp/gpt2.tiktoken" && die "$f.tiktoken: sed changed nothing"
    printf 'Hello world, 12345 tokens!' | "$GPT2IN" encode --vocab "$tmp/$f.tiktoken" > "$tmp/tk.got" 2>&1
    cmp -s "$tmp/tk.want" "$tmp/tk.got" || die "$f.tiktoken: $(cat "$tmp/tk.got") != $(cat "$tmp/tk.want")"
done
# "dropout": 0.0 means no dropout, as null does: read, same ids
sed 's/"dropout": null/"dropout": 0.0/' "$tmp/gpt2.tokenizer.json" > "$tmp/drop0.json"
grep -q '"dropout": 0.0' "$tmp/drop0.json" || die "drop0.json: no dropout key to change"
printf 'Hello world' | "$GPT2IN" encode --vocab "$tmp/drop0.json" > "$tmp/drop0.ids" 2>&1 &&
    [ "$(cat "$tmp/drop0.ids")" = "15496 995" ] || die "dropout 0.0: $(cat "$tmp/drop0.ids")"
sed 's/"dropout": null/"dropout": 0.1/' "$tmp/gpt2.tokenizer.json" > "$tmp/drop1.json"
refused "drop1.json: model.dropout is a number; GPT-2's BPE has none" encode --vocab "$tmp/drop1.json"
# an id written as a real number (1.0, 1e0, 1.5) is refused as one, as serde refuses it
printf '{"a": 0, "b": 1.0}' > "$tmp/real.json"; : > "$tmp/empty.merges"
refused 'real.json: vocabulary["b"]: the id is not written as an integer; 2 tokens need ids 0..1' \
    encode --vocab "$tmp/real.json" --merges "$tmp/empty.merges"
# an added token that is also an ordinary (byte-level) token of model.vocab: refused by name
# (the vocabulary image keeps the two kinds of token apart), not with a false message later
sed 's/"special": true}]/"special": true}, {"id": 262, "content": "\\u0120the", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}]/' \
    "$tmp/gpt2.tokenizer.json" > "$tmp/the.json"
grep -q '"id": 262, "content"' "$tmp/the.json" || die "the.json: sed added no token"
refused 'added_tokens[1] "Ġthe" (id 262) is also model.vocab'"'"'s byte-level token " the"' encode --vocab "$tmp/the.json"
# inspect describes a vocabulary as --vocab reads it, and names a vocab.json or merges.txt alone
for f in gpt2.tokenizer.json gpt2.tiktoken; do
    "$GPT2IN" inspect "$tmp/$f" > "$tmp/insp" 2>&1 || die "inspect $f: $(cat "$tmp/insp")"
    grep -q "tokens: 50257, the longest 128 bytes; end-of-text id 50256" "$tmp/insp" || die "inspect $f: $(cat "$tmp/insp")"
done
"$GPT2IN" inspect --json "$tmp/multi.tokenizer.json" > "$tmp/insp" 2>&1 || die "inspect --json multi: $(cat "$tmp/insp")"
$PY -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(not (d["format"] == "vocabulary" and len(d["special_tokens"]) > 1))' \
    "$tmp/insp" || die "inspect --json multi.tokenizer.json: $(cat "$tmp/insp")"
# ... also from stdin (a JSON object or a tiktoken line is not ids: read whole)
for f in gpt2.tokenizer.json gpt2.tiktoken; do
    "$GPT2IN" inspect < "$tmp/$f" > "$tmp/insp" 2>&1 || die "inspect < $f: $(cat "$tmp/insp")"
    grep -q "tokens: 50257, the longest 128 bytes; end-of-text id 50256" "$tmp/insp" || die "inspect < $f: $(cat "$tmp/insp")"
done
# a token longer than a loader takes is refused by name, not as bad base64
$PY -c 'import base64, sys; open(sys.argv[2], "wb").write(open(sys.argv[1], "rb").read() + base64.b64encode(b"z" * 3073) + b" 50256\n")' \
    "$tmp/gpt2.tiktoken" "$tmp/long.tiktoken"
refused 'long.tiktoken:50257:1: a token of 4100 base64 characters, more than the 4096 of a token' encode --vocab "$tmp/long.tiktoken"
# an llm.c tokenizer --vocab refuses, inspect refuses too: end of text -1
$PY -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[12:16] = b"\xff" * 4; open(sys.argv[2], "wb").write(b)' \
    "$tmp/gpt2_tokenizer_v2.bin" "$tmp/eotm1.bin"
refused 'eotm1.bin: at byte 12: end-of-text id -1 is not a token id' inspect "$tmp/eotm1.bin"
refused 'eotm1.bin: at byte 12: end-of-text id -1 is not a token id' decode --vocab "$tmp/eotm1.bin"
refused 'perm.vocab.json: no "model" object' inspect "$tmp/perm.vocab.json"
refused 'perm.merges.txt: a merges.txt' inspect "$tmp/perm.merges.txt"
# a special token that is blanks or holds a bidi override is shown quoted and escaped when found
sed 's/"special": true}]/"special": true}, {"id": 50257, "content": "  ", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": false}, {"id": 50258, "content": "x\\u202e", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}]/' \
    "$tmp/gpt2.tokenizer.json" > "$tmp/blank.json"
printf 'a  b' | "$GPT2IN" encode --vocab "$tmp/blank.json" > /dev/null 2> "$tmp/err"
grep -qF 'the special token "  " is in the text at byte 1' "$tmp/err" || die "a blank special token: $(cat "$tmp/err")"
printf 'ax\342\200\256b' | "$GPT2IN" encode --vocab "$tmp/blank.json" > /dev/null 2> "$tmp/err"
grep -qF 'the special token "x\xE2\x80\xAE" is in the text at byte 1' "$tmp/err" || die "a bidi special token: $(od -c "$tmp/err" | head -3)"
# vocab.bpe is checked against encoder.json's ids as tiktoken's loader checks
# them: the k-th line makes the k-th merged token, none missing or extra
W=gpt2_weights
head -n 1000 $W/vocab.bpe > "$tmp/short.bpe"
head -n 1 $W/vocab.bpe > "$tmp/version.bpe"
sed '30001d' $W/vocab.bpe > "$tmp/drop.bpe"
awk 'NR == 500 { held = $0; next } NR == 501 { print; print held; next } { print }' $W/vocab.bpe > "$tmp/swap.bpe"
{ cat $W/vocab.bpe; printf '\304\240 t\n'; } > "$tmp/extra.bpe"
refused "short.bpe: ends at line 1000, but no merge makes id 1255" encode --encoder $W/encoder.json --merges "$tmp/short.bpe"
refused "version.bpe: ends at line 1, but no merge makes id 256" encode --encoder $W/encoder.json --merges "$tmp/version.bpe"
refused "makes id 30256, but the next token of encoder.json a merge makes is id 30255" \
    encode --encoder $W/encoder.json --merges "$tmp/drop.bpe"
refused "swap.bpe:500: the merge of" encode --encoder $W/encoder.json --merges "$tmp/swap.bpe"
refused "extra.bpe:50002: one merge too many" encode --encoder $W/encoder.json --merges "$tmp/extra.bpe"
# ... but <|startoftext|>, which tiktoken's loader also leaves out, needs no merge
$PY -c 'import json, sys; e = json.load(open(sys.argv[1])); e["<|startoftext|>"] = len(e); json.dump(e, open(sys.argv[2], "w"))' \
    $W/encoder.json "$tmp/sot.json"
[ "$(printf 'hello world' | "$GPT2IN" encode --encoder "$tmp/sot.json" --merges $W/vocab.bpe 2>&1)" = "31373 995" ] ||
    die "encoder.json with <|startoftext|>: $(printf 'hello world' | "$GPT2IN" encode --encoder "$tmp/sot.json" --merges $W/vocab.bpe 2>&1)"
# an endless stream is refused at a bound, not read until memory runs out
refused "/dev/zero: more than 256 MiB from a stream: not a vocabulary" encode --vocab /dev/zero
refused "/dev/zero: more than 256 MiB from a stream" encode --encoder /dev/zero --merges gpt2_weights/vocab.bpe

[ $fail -eq 0 ] && echo "vocab files: $n_specs vocabularies x $(wc -w < "$tmp/want.ids") ids as tiktoken's, 3 llm.c decodes, 22 refusals"
exit $fail
