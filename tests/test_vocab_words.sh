#!/bin/sh
# The word commands (similar, neighbors, analogy, plot, train-skipgram)
# tokenize with --vocab FILE when given: with a vocabulary whose ids are a
# permutation of GPT-2's (tests/gen_vocab_fixtures.py), "cat" and "dog" are
# rows perm[3797] and perm[3290] of the table, not 3797 and 3290. The
# expected cosines come from NumPy over the safetensors file.
set -u
: "${GPT2IN:=build/gpt2in}"
[ -x "$GPT2IN" ] || { echo "skipped: $GPT2IN is not built"; exit 77; }
PY=/usr/bin/python3
$PY -c "import numpy" 2>/dev/null || { echo "skipped: /usr/bin/python3 has no numpy"; exit 77; }
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
fail=0
die() { echo "FAIL: $*"; fail=1; }

$PY tests/gen_vocab_fixtures.py "$tmp" >/dev/null || { echo "FAIL: gen_vocab_fixtures.py"; exit 1; }
"$GPT2IN" init --out "$tmp/w.safetensors" --seed 7 || { echo "FAIL: init"; exit 1; }

# want PERM_OR_DASH: the cosine of " cat" and " dog"'s rows, by NumPy
want() {
    $PY - "$tmp/w.safetensors" "$1" <<'PYEOF'
import json, struct, sys
import numpy as np
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
meta = json.loads(raw[8:8 + n])["wte.weight"]
a, b = meta["data_offsets"]
wte = np.frombuffer(raw[8 + n + a:8 + n + b], "<f4").reshape(meta["shape"])
cat, dog = 3797, 3290
if sys.argv[2] != "-":
    perm = [int(x) for x in open(sys.argv[2]).read().split()]
    cat, dog = perm[cat], perm[dog]
x, y = wte[cat].astype(np.float64), wte[dog].astype(np.float64)
print("%.6f" % (x @ y / np.linalg.norm(x) / np.linalg.norm(y)))
PYEOF
}

# got OUTPUT: the number after "= "
num() { sed -n 's/.*= *//p' | head -n 1; }

w_gpt2=$(want -)
w_perm=$(want "$tmp/perm_hf.txt")
[ "$w_gpt2" != "$w_perm" ] || die "the permutation leaves cat/dog's cosine as it is: no test"
g_gpt2=$("$GPT2IN" similar --weights "$tmp/w.safetensors" cat dog | num)
g_perm=$("$GPT2IN" similar --weights "$tmp/w.safetensors" --vocab "$tmp/perm.tokenizer.json" cat dog | num)
close() { $PY -c "import sys; sys.exit(abs(float(sys.argv[1]) - float(sys.argv[2])) > 2e-6)" "$1" "$2"; }
close "$g_gpt2" "$w_gpt2" || die "similar, built-in vocabulary: $g_gpt2, want $w_gpt2"
close "$g_perm" "$w_perm" || die "similar --vocab perm.tokenizer.json: $g_perm, want $w_perm"

# neighbors names tokens by the vocabulary given: " cat"'s nearest token is
# printed with its text, so the same table read through both vocabularies
# names the same rows with the same strings.
"$GPT2IN" neighbors --weights "$tmp/w.safetensors" -k 3 --vocab "$tmp/perm.tokenizer.json" cat \
    >"$tmp/n.txt" || die "neighbors --vocab failed"
grep -q '(id ' "$tmp/n.txt" || die "neighbors --vocab printed no tokens: $(cat "$tmp/n.txt")"

# A bad vocabulary is one line and status 2.
printf 'not a vocabulary' >"$tmp/bad.json"
"$GPT2IN" similar --weights "$tmp/w.safetensors" --vocab "$tmp/bad.json" cat dog 2>"$tmp/err"
st=$?
[ $st -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] || die "bad --vocab: status $st, $(cat "$tmp/err")"
"$GPT2IN" plot --weights "$tmp/w.safetensors" --vocab "$tmp/perm.tokenizer.json" --out "$tmp/p.svg" \
    cat dog car 2>/dev/null || die "plot --vocab failed"
[ -s "$tmp/p.svg" ] || die "plot --vocab wrote nothing"
exit $fail
