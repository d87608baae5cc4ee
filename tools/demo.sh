#!/bin/sh
# demo.sh - `make demo`: GPT-2's input stage, and how an embedding table
# goes from random to meaningful, with this project's own pieces.
#   1. text -> token ids (the tokenizer)
#   2. ids -> vectors (the embedding layer), shape and a few values
#   3. at initialisation the vectors mean nothing: cat is no nearer kitten than car
#   4. a short word2vec skip-gram run on tools/demo_corpus.txt gives them meaning
#   5. the picture: build/demo/embeddings.svg (before: embeddings_init.svg)
#   6. the same table as the front of a tiny trained model (example_transformer)
# Uses gpt2_weights/model.safetensors too when it has been downloaded
# (gpt2_weights/download.sh). Everything it writes goes to build/demo/.
set -u
cd "$(dirname "$0")/.." || exit 2
B=${B:-build}
G=$B/gpt2in
D=$B/demo
[ -x "$G" ] || { echo "demo: $G is not built; run 'make demo' (or make first)"; exit 2; }
mkdir -p "$D"
die() { echo "demo: $*" >&2; exit 1; }
section() { printf '\n== %s ==\n\n' "$*"; }
start=$(date +%s)

SENTENCE="The cat sat with the kitten."
REAL=gpt2_weights/model.safetensors

section "1. Text to token ids (byte-level BPE, exactly as GPT-2 / tiktoken)"
echo "text: \"$SENTENCE\""
printf '%s' "$SENTENCE" | "$G" encode >"$D/ids.txt" || die "encode failed"
echo "ids:  $(cat "$D/ids.txt")"
echo "tokens:"
for id in $(cat "$D/ids.txt"); do
    tok=$(echo "$id" | "$G" decode) || die "decode failed"
    printf '  %6s  "%s"\n' "$id" "$tok"
done
echo "(a leading space belongs to the word: \" cat\" is one token, \"cat\" another)"

section "2. Token ids to vectors (the embedding layer: one row of wte per id)"
if [ -f "$REAL" ]; then
    W=$REAL
    echo "weights: $REAL (the real GPT-2 small checkpoint)"
else
    W=$D/init.safetensors
    if [ ! -f "$W" ]; then
        "$G" init --out "$W" --seed 0 >/dev/null || die "init failed"
    fi
    echo "weights: $W"
    echo "  NOTE: gpt2_weights/model.safetensors is not here (gpt2_weights/download.sh fetches"
    echo "  it), so this is a GPT-2-shaped table made by 'gpt2in init': wte 50257 x 768 and wpe"
    echo "  1024 x 768, every value drawn from Normal(0, 0.02) -- the table as training STARTS."
fi
"$G" embed --weights "$W" --positions --format text "$D/ids.txt" >"$D/x.txt" || die "embed failed"
T=$(wc -l <"$D/x.txt")
Cn=$(head -n 1 "$D/x.txt" | wc -w)
echo "x = wte[ids] + wpe[positions]: shape [$T, $Cn]"
awk -v n=6 '{ printf "  x[%d] = [", NR - 1; for (i = 1; i <= n; i++) printf "%s%+.4f", (i > 1 ? ", " : ""), $i; printf ", ... (%d more)]\n", NF - n }' "$D/x.txt"

if [ -f "$REAL" ]; then
    section "2b. The real GPT-2 table already knows a lot"
    "$G" similar --weights "$REAL" cat kitten
    "$G" similar --weights "$REAL" cat car
    "$G" neighbors --weights "$REAL" -k 5 cat
    W=$D/init.safetensors
    [ -f "$W" ] || "$G" init --out "$W" --seed 0 >/dev/null || die "init failed"
    echo
    echo "Below, the story starts over from a random table ($W), as training does."
fi

section "3. At initialisation the vectors mean nothing"
echo "Random rows point in unrelated directions: every cosine is near 0, whatever the words."
"$G" similar --weights "$W" cat kitten
"$G" similar --weights "$W" cat car
"$G" similar --weights "$W" dog puppy
echo "neighbors of \"cat\" are arbitrary tokens:"
"$G" neighbors --weights "$W" -k 5 cat | sed -n '2,$p'
"$G" plot --weights "$W" --out "$D/embeddings_init.svg" --title "At initialisation: random vectors, no structure" \
    cat,kitten dog,puppy car,truck apple,banana king,queen,prince,princess man,woman,boy,girl 2>/dev/null ||
    die "plot failed"

section "4. Training gives them meaning: word2vec skip-gram on tools/demo_corpus.txt"
echo "Each token's row is pulled towards the tokens around it and pushed from random others."
echo "Words used in the same places (cat/kitten, dog/puppy, car/truck) end up pointing alike."
echo "(rows updated through embed_forward / embed_backward_sparse / embed_sgd; a few seconds)"
echo
"$G" train-skipgram --weights "$W" --corpus tools/demo_corpus.txt --out "$D/tuned.safetensors" \
    --pairs cat:kitten,dog:puppy,car:truck,king:queen,cat:car,dog:truck || die "train-skipgram failed"
echo
"$G" neighbors --weights "$D/tuned.safetensors" -k 5 cat
echo
"$G" analogy --weights "$D/tuned.safetensors" -k 3 king man woman

section "5. The picture"
"$G" plot --weights "$D/tuned.safetensors" --out "$D/embeddings.svg" \
    --title "After a few seconds of skip-gram: related words sit together" \
    cat,kitten dog,puppy car,truck apple,banana king,queen,prince,princess man,woman,boy,girl ||
    die "plot failed"
echo "after training: $D/embeddings.svg"
echo "before (random): $D/embeddings_init.svg"
echo "(open them in a browser; 'rsvg-convert FILE.svg -o FILE.png' makes a PNG)"

section "6. The same layer at the front of a tiny model (build/example_transformer)"
echo "text -> ids -> x = wte[ids] + wpe -> logits = x wte^T -> next-token loss -> backward -> Adam"
"$B/example_transformer" --steps 12 --check | grep -v '^  d loss' || die "example_transformer failed"

echo
echo "demo finished in $(( $(date +%s) - start )) s; files in $D/"
