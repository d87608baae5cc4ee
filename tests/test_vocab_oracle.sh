#!/bin/sh
# The Hugging Face and GGUF readers against independent implementations:
# - tokenizer.json vocabularies (GPT-2's, GPT-2's with the Sequence
#   pre-tokenizer, and one whose ids are a permutation of GPT-2's) encode
#   the committed fixture texts (valid UTF-8, joined by <|endoftext|>) to the
#   ids Hugging Face tokenizers gives (npm @anush008/tokenizers, Rust core);
# - a tiktoken rank file with GPT-2's single bytes at other ranks encodes
#   as npm tiktoken built from that file;
# - what gpt2in reads from GGUF files (token count, end-of-text id, token
#   bytes) is what npm @huggingface/gguf reads from them.
# Fixtures: tests/gen_vocab_fixtures.py. Skips (77) when the pinned npm
# oracle cannot be installed.
set -u
[ "${GPT2IN_CHECK:-0}" = 1 ] && { echo "skipped: not in make check (needs the npm oracle)"; exit 77; }
: "${GPT2IN:=build/gpt2in}"
[ -x "$GPT2IN" ] || { echo "skipped: $GPT2IN is not built"; exit 77; }
PY=/usr/bin/python3
[ -x $PY ] || { echo "skipped: /usr/bin/python3 is missing"; exit 77; }
sh tests/oracle/install.sh || exit $?
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
fail=0
die() { echo "FAIL: $*"; fail=1; }

$PY tests/gen_vocab_fixtures.py "$tmp" || { echo "FAIL: gen_vocab_fixtures.py"; exit 1; }
$PY - "$tmp" <<'EOF' || exit 2
import glob, os, sys
texts = []
for t in sorted(glob.glob("tests/fixtures/tokenizer/*.txt")):
    b = open(t, "rb").read()
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        continue
    if b"<|endoftext|>" not in b:
        texts.append(b)
open(os.path.join(sys.argv[1], "corpus.txt"), "wb").write(b"<|endoftext|>".join(texts))
EOF

# The sanitizer pass takes the permuted file only (each load takes a while).
toks="gpt2.tokenizer.json seq.tokenizer.json perm.tokenizer.json"
[ "${SANITIZED:-0}" = 1 ] && toks=perm.tokenizer.json
n_toks=0
for tok in $toks; do
    n_toks=$((n_toks + 1))
    node tests/oracle/vocab_hf.js "$tmp/$tok" "$tmp/corpus.txt" > "$tmp/hf.ids" || { die "$tok: the oracle failed"; continue; }
    "$GPT2IN" encode --special allow --vocab "$tmp/$tok" "$tmp/corpus.txt" | tr ' ' '\n' > "$tmp/got.ids" ||
        { die "$tok: encode failed"; continue; }
    cmp -s "$tmp/hf.ids" "$tmp/got.ids" ||
        die "$tok: ids differ from Hugging Face tokenizers': $(diff "$tmp/hf.ids" "$tmp/got.ids" | head -n 4 | tr '\n' ' ')"
done
n_hf=$(wc -l < "$tmp/hf.ids")

# tiktoken built from the permuted rank file itself (its single bytes at
# other ranks, its lines shuffled)
node tests/oracle/vocab_tiktoken.js "$tmp/perm.tiktoken" "$tmp/corpus.txt" > "$tmp/tk.ids" || die "perm.tiktoken: the oracle failed"
"$GPT2IN" encode --special allow --vocab "$tmp/perm.tiktoken" "$tmp/corpus.txt" | tr ' ' '\n' > "$tmp/got.ids" ||
    die "perm.tiktoken: encode failed"
cmp -s "$tmp/tk.ids" "$tmp/got.ids" ||
    die "perm.tiktoken: ids differ from tiktoken's: $(diff "$tmp/tk.ids" "$tmp/got.ids" | head -n 4 | tr '\n' ' ')"

for g in gpt2.gguf perm.gguf; do
    node tests/oracle/vocab_gguf.js "$tmp/$g" 0 1 2 255 256 1000 13272 30000 50255 50256 > "$tmp/ref.json" ||
        { die "$g: the oracle failed"; continue; }
    # the same facts as gpt2in reads them: the special id, the range of ids,
    # and the sample tokens' bytes, all in one decode
    eot=$(printf '<|endoftext|>' | "$GPT2IN" encode --special allow --vocab "$tmp/$g")
    range=$(echo 50257 | "$GPT2IN" decode --vocab "$tmp/$g" 2>&1 >/dev/null | sed -n 's/.*(0\.\.\([0-9]*\)).*/\1/p')
    echo 0 1 2 255 256 1000 13272 30000 50255 50256 |
        "$GPT2IN" decode --vocab "$tmp/$g" > "$tmp/bytes.bin"
    msg=$($PY - "$tmp/ref.json" "$tmp/bytes.bin" "$eot" "$range" <<'EOF'
import json, sys
ref = json.load(open(sys.argv[1]))
ids = [0, 1, 2, 255, 256, 1000, 13272, 30000, 50255, 50256]
got = open(sys.argv[2], "rb").read().hex()
bad = []
if ref["model"] != "gpt2": bad.append("the oracle reads model %r" % ref["model"])
if ref["control"] != [ref["eos"]]: bad.append("control tokens %s, eos %s" % (ref["control"], ref["eos"]))
if str(ref["eos"]) != sys.argv[3]: bad.append("end of text: gpt2in %s, @huggingface/gguf %s" % (sys.argv[3], ref["eos"]))
if sys.argv[4] != str(ref["n_tokens"] - 1): bad.append("ids 0..%s, @huggingface/gguf has %d tokens" % (sys.argv[4], ref["n_tokens"]))
want = "".join(ref["bytes"][str(i)] for i in ids)
if got != want: bad.append("tokens %s: gpt2in decodes %s, @huggingface/gguf reads %s" % (ids, got, want))
print("; ".join(bad))
EOF
)
    [ -z "$msg" ] || die "$g: $msg"
done

[ $fail -eq 0 ] && echo "vocab oracle: $n_toks tokenizer.json x $n_hf ids as Hugging Face tokenizers', a permuted .tiktoken as tiktoken's, 2 GGUF headers as @huggingface/gguf reads them"
exit $fail
