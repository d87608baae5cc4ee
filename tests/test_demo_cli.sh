#!/bin/sh
# test_demo_cli - gpt2in similar, neighbors, analogy, plot and train-skipgram
# on a small GPT-2-vocabulary table (50257 x 32, made by `gpt2in init`).
# The similarities and rankings are checked against NumPy (reading the
# safetensors file and GPT-2's encoder.json itself); skip-gram must pull
# cat/kitten and dog/puppy together and leave cat/car apart; outputs are
# deterministic for a seed; errors exit 2 with one line.
set -u
G=${GPT2IN:-build/gpt2in}
PY=/usr/bin/python3
T=$(mktemp -d "${TMPDIR:-/tmp}/gpt2in-demo-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }
[ -x "$PY" ] && "$PY" -c 'import numpy' 2>/dev/null || { echo "skip: /usr/bin/python3 with numpy is needed (apt-get install python3-numpy)"; exit 77; }

"$G" init --out "$T/small.safetensors" --channels 32 --ctx 16 --seed 7 >/dev/null || fail "gpt2in init"

# A NumPy reader for the checks: prints what is asked of the table.
cat >"$T/ref.py" <<'EOF'
import json, struct, sys
import numpy as np

def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        assert v["dtype"] == "F32"
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype="<f4").reshape(v["shape"])
    return out

enc = json.load(open("gpt2_weights/encoder.json"))
def tid(word):                      # " word" as one GPT-2 token (Ġ = space)
    return enc["\u0120" + word]

def cos(a, b):
    a = a.astype(np.float64); b = b.astype(np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

def top(w, q, k, excl):
    w = w.astype(np.float64); q = q.astype(np.float64)
    s = w @ q / np.linalg.norm(w, axis=1) / np.linalg.norm(q)
    s[list(excl)] = -np.inf
    idx = np.argsort(-s, kind="stable")[:k]
    return [(int(i), float(s[i])) for i in idx]

cmd = sys.argv[1]
t = load(sys.argv[2])
w = t["wte.weight"]
if cmd == "cos":
    print("%.6f" % cos(w[tid(sys.argv[3])], w[tid(sys.argv[4])]))
elif cmd == "neighbors":
    a = tid(sys.argv[3])
    for i, s in top(w, w[a], int(sys.argv[4]), [a]):
        print(i, "%.4f" % s)
elif cmd == "analogy":
    a, b, c = (tid(x) for x in sys.argv[3:6])
    q = w[a].astype(np.float64) - w[b] + w[c]
    for i, s in top(w, q, int(sys.argv[6]), [a, b, c]):
        print(i, "%.4f" % s)
elif cmd == "samerest":            # every tensor but wte equal; wte rows outside the text equal
    u = load(sys.argv[3])
    assert sorted(t) == sorted(u), "tensor names differ"
    for k in t:
        if k != "wte.weight":
            assert np.array_equal(t[k], u[k]), k + " changed"
    changed = np.nonzero(np.any(t["wte.weight"] != u["wte.weight"], axis=1))[0]
    print(len(changed), int(changed.max()) if len(changed) else -1)
EOF
ref() { (cd "$(dirname "$0")/.." && "$PY" "$T/ref.py" "$@"); }
W=$T/small.safetensors

# ---- similar -----------------------------------------------------------------
out=$("$G" similar --weights "$W" cat kitten) || fail "similar exited $?"
echo "$out" | grep -q '^cosine("cat", "kitten") = -\{0,1\}[0-9]\.[0-9]\{6\}$' || fail "similar output: $out"
got=${out##* = }
want=$(ref cos "$W" cat kitten)
"$PY" -c "import sys; sys.exit(abs($got - $want) > 2e-6)" || fail "similar cat kitten: $got, NumPy $want"

# ---- neighbors: ids and scores as NumPy ranks them -----------------------------
"$G" neighbors --weights "$W" -k 5 cat >"$T/nb.txt" || fail "neighbors exited $?"
head -n 1 "$T/nb.txt" | grep -q '^nearest to "cat" by cosine:$' || fail "neighbors header: $(head -n 1 "$T/nb.txt")"
[ "$(wc -l <"$T/nb.txt")" -eq 6 ] || fail "neighbors -k 5 printed $(wc -l <"$T/nb.txt") lines"
sed -n '2,$p' "$T/nb.txt" | sed 's/.*  \([-0-9.]*\)  ".*"  (id \([0-9]*\))$/\2 \1/' >"$T/nb_got.txt"
ref neighbors "$W" cat 5 >"$T/nb_want.txt"
cmp -s "$T/nb_got.txt" "$T/nb_want.txt" || { paste "$T/nb_got.txt" "$T/nb_want.txt"; fail "neighbors differ from NumPy"; }

# ---- analogy ---------------------------------------------------------------------
"$G" analogy --weights "$W" -k 4 king man woman >"$T/an.txt" || fail "analogy exited $?"
head -n 1 "$T/an.txt" | grep -q '^"king" - "man" + "woman" is nearest to:$' || fail "analogy header"
sed -n '2,$p' "$T/an.txt" | sed 's/.*  \([-0-9.]*\)  ".*"  (id \([0-9]*\))$/\2 \1/' >"$T/an_got.txt"
ref analogy "$W" king man woman 4 >"$T/an_want.txt"
cmp -s "$T/an_got.txt" "$T/an_want.txt" || { paste "$T/an_got.txt" "$T/an_want.txt"; fail "analogy differs from NumPy"; }

# ---- several tokens: a note, the mean; readable escaping ----------------------------
"$G" similar --weights "$W" 'naïve"x' cat >/dev/null 2>"$T/note.txt" || fail "multi-token similar failed"
grep -q '^note: "naïve\\"x" is 3 tokens \[" naïve", "\\"", "x"\]; using their mean$' "$T/note.txt" ||
    fail "multi-token note: $(cat "$T/note.txt")"
"$G" similar --weights "$W" --as-typed cat ' cat' >"$T/typed.txt" 2>&1 || fail "--as-typed failed"
grep -q '^cosine("cat", " cat") = ' "$T/typed.txt" || fail "--as-typed: $(cat "$T/typed.txt")"
grep -q '= 1.000000' "$T/typed.txt" && fail "--as-typed looked up \" cat\" for \"cat\""

# ---- errors: exit 2, one line naming the problem ---------------------------------------
expect_err() { # pattern command...
    pat=$1; shift
    "$@" >/dev/null 2>"$T/err.txt"; rc=$?
    [ $rc -eq 2 ] || fail "$* exited $rc, not 2"
    [ "$(wc -l <"$T/err.txt")" -eq 1 ] || fail "$*: not one line: $(cat "$T/err.txt")"
    grep -q "^gpt2in: .*$pat" "$T/err.txt" || fail "$*: message: $(cat "$T/err.txt")"
}
expect_err 'weights' "$G" similar cat kitten
expect_err 'wants 2 words, got 1' "$G" similar --weights "$W" cat
expect_err 'no-such' "$G" neighbors --weights "$T/no-such.safetensors" cat
expect_err '-k wants' "$G" neighbors --weights "$W" -k 0 cat
expect_err 'unknown option' "$G" analogy --weights "$W" --bogus a b c
expect_err 'at least 3 words' "$G" plot --weights "$W" --out "$T/x.svg" cat dog
expect_err 'corpus' "$G" train-skipgram --weights "$W" --out "$T/x.safetensors"
# similar of a word whose row is all zeros or NaN: no cosine, as neighbors refuses it
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    /usr/bin/python3 -c '
import json, struct, sys, numpy as np
V, C = 50257, 8
w = np.ones((V, C), np.float32); w[220] = 0; w[3797] = np.nan    # " " and " cat"
h = json.dumps({"wte.weight": {"dtype": "F32", "shape": [V, C], "data_offsets": [0, V * C * 4]}}).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + w.tobytes())' "$T/zero.safetensors"
    expect_err 'the vector of "" is all zeros' "$G" similar --weights "$T/zero.safetensors" "" dog
    expect_err 'the vector of "cat" is not finite' "$G" similar --weights "$T/zero.safetensors" dog cat
fi
# a base whose kind cannot hold the run's settings is refused before any training
"$G" init --format llmc --vocab 300 --ctx 4 --channels 8 --layers 1 --out "$T/base.bin" 2>/dev/null ||
    fail "init --format llmc"
"$G" train-skipgram --weights "$T/base.bin" --corpus tools/demo_corpus.txt --out "$T/x.bin" >"$T/sg0.txt" 2>"$T/err.txt"
[ $? -eq 2 ] && grep -q '^gpt2in: .*no place' "$T/err.txt" || fail "train-skipgram on an llm.c base: $(cat "$T/err.txt")"
[ -s "$T/sg0.txt" ] && fail "train-skipgram on an llm.c base trained before refusing it"
[ -e "$T/x.svg" ] && fail "a failed plot left a file"

# ---- plot: well-formed SVG, every word labelled, deterministic -----------------------
"$G" plot --weights "$W" --out "$T/p.svg" cat,kitten dog,puppy car,truck 'a<b&c' 2>/dev/null || fail "plot exited $?"
"$G" plot --weights "$W" --out "$T/p2.svg" cat,kitten dog,puppy car,truck 'a<b&c' 2>/dev/null || fail "plot exited $?"
cmp -s "$T/p.svg" "$T/p2.svg" || fail "plot is not deterministic"
"$PY" - "$T/p.svg" <<'EOF' || fail "plot: SVG check"
import sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == ns + "svg", root.tag
texts = [t.text for t in root.iter(ns + "text")]
for w in ["cat", "kitten", "dog", "puppy", "car", "truck", "a<b&c"]:
    assert w in texts, "no label " + w
circles = list(root.iter(ns + "circle"))
assert len(circles) == 7, len(circles)
xs = {c.get("cx") for c in circles}
assert len(xs) > 1, "all points in one place"
assert len({c.get("fill") for c in circles}) == 4, "groups should have 4 colours"
EOF
if command -v rsvg-convert >/dev/null 2>&1; then
    rsvg-convert "$T/p.svg" -o "$T/p.png" || fail "rsvg-convert cannot render the plot"
fi

# ---- train-skipgram: learns the pairs, keeps everything else, deterministic ------------
C="tools/demo_corpus.txt"
"$G" train-skipgram --weights "$W" --corpus "$C" --out "$T/t1.safetensors" --epochs 2 --seed 5 \
    >"$T/sg1.txt" 2>"$T/sg1.err" || { cat "$T/sg1.err"; fail "train-skipgram exited"; }
"$G" train-skipgram --weights "$W" --corpus "$C" --out "$T/t2.safetensors" --epochs 2 --seed 5 \
    >"$T/sg2.txt" 2>/dev/null || fail "train-skipgram (2) exited"
cmp -s "$T/t1.safetensors" "$T/t2.safetensors" || fail "train-skipgram is not deterministic for a seed"
cmp -s "$T/sg1.txt" "$T/sg2.txt" || fail "train-skipgram output differs between runs"
for s in 5 6; do     # a short run is enough to see that the seed matters
    "$G" train-skipgram --weights "$W" --corpus "$C" --out "$T/s$s.safetensors" --epochs 1 \
        --max-tokens 3000 --seed $s >/dev/null 2>&1 || fail "train-skipgram (seed $s) exited"
done
cmp -s "$T/s5.safetensors" "$T/s6.safetensors" && fail "another seed gave the same table"
cat "$T/sg1.txt"
head -n 1 "$T/sg1.txt" | grep -q '^cosine similarity  *before  *after$' || fail "skip-gram table header"
ck=$(grep '^"cat" ~ "kitten"' "$T/sg1.txt" | awk '{print $NF}')
dp=$(grep '^"dog" ~ "puppy"' "$T/sg1.txt" | awk '{print $NF}')
cc=$(grep '^"cat" ~ "car"' "$T/sg1.txt" | awk '{print $NF}')
[ -n "$ck" ] && [ -n "$dp" ] && [ -n "$cc" ] || fail "skip-gram: pairs missing"
"$PY" -c "import sys; sys.exit(not ($ck > $cc + 0.3 and $dp > $cc + 0.3 and $ck > 0.6))" ||
    fail "skip-gram did not learn: cat~kitten $ck, dog~puppy $dp, cat~car $cc"
# the file's own similarity agrees with what was printed
after=$(ref cos "$T/t1.safetensors" cat kitten)
"$PY" -c "import sys; sys.exit(abs($after - $ck) > 1e-3)" || fail "saved table: cat~kitten $after, printed $ck"
# wpe untouched, wte changed only on the corpus's rows (all < 50256 here), not everywhere
rest=$(ref samerest "$W" "$T/t1.safetensors") || fail "saved file differs beyond wte"
set -- $rest
distinct=$(sed -n 's/^train-skipgram: [0-9]* tokens (\([0-9]*\) distinct).*/\1/p' "$T/sg1.err")
[ -n "$distinct" ] && [ "$distinct" -gt 100 ] || fail "no token count on stderr: $(head -n 1 "$T/sg1.err")"
[ "$1" -eq "$distinct" ] || fail "skip-gram changed $1 rows of wte; the text has $distinct distinct tokens"
grep -q '^epoch 2/2  loss [0-9.]*' "$T/sg1.err" || fail "no progress lines: $(cat "$T/sg1.err")"
echo "test_demo_cli: ok"
