#!/bin/sh
# Formats told by their first bytes (embed_detect), never by file names:
#  1. ids in every format, from files named wrongly and from stdin, read
#     without --input-format (u16/u32 have no magic: they need it, and say
#     so); an explicit --input-format wins; encode --format F | decode.
#  2. A file of the wrong kind is named for what it is (weights, zip,
#     gzip, a tokenizer as ids; a safetensors file as dout; GGUF as ref).
#  3. The malformed catalogue of the new inputs (tests/gen_shapes_files.py:
#     ragged JSON and text rows, empty rows, 3-D .npy, wrong dtypes, huge
#     counts): exit 2, one line naming the file and the reason, for decode
#     and embed, from a file and from stdin.
#  4. inspect describes every format, from a file and from stdin.
# Needs /usr/bin/python3 with NumPy (the fixtures' writer), else exit 77.
set -u
G=${GPT2IN:-build/gpt2in}
PY=/usr/bin/python3
$PY -c 'import numpy' 2>/dev/null || { echo "skipped: /usr/bin/python3 with NumPy is needed"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/gpt2in-shapes-detect.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT
fails=0 n=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
$PY tests/gen_shapes_files.py "$T" || { echo "gen_shapes_files.py failed"; exit 2; }
D=$T/good
# bad2 WHAT WANT CMD: CMD (a shell command) exits 2 with one line on stderr,
# starting "gpt2in: " and holding WANT, nothing on stdout
bad2() {
    n=$((n + 1))
    sh -c "$3" >"$T/out" 2>"$T/err" </dev/null
    rc=$?
    if [ $rc -ne 2 ]; then fail "$1: exit $rc, expected 2 ($(head -c 300 "$T/err"))"
    elif [ "$(wc -l <"$T/err")" -ne 1 ]; then fail "$1: not one line on stderr: $(head -c 300 "$T/err")"
    elif ! grep -q '^gpt2in: ' "$T/err"; then fail "$1: does not start with 'gpt2in: ': $(cat "$T/err")"
    elif ! grep -qF -- "$2" "$T/err"; then fail "$1: message lacks '$2': $(cat "$T/err")"
    fi
}

# ---- 1. ids: every format, renamed and on stdin --------------------------------
for f in ids.txt ids.json ids.npy ids.llmc ids_batch.npy ids_batch.json ids_batch.txt; do
    n=$((n + 1))
    cp "$D/$f" "$T/renamed.dat"
    want=$(printf "\"#\$%%&'" | od -An -tx1)  # GPT-2's tokens 1..6
    got=$("$G" decode "$T/renamed.dat" 2>"$T/err" | od -An -tx1) || fail "decode $f renamed: $(cat "$T/err")"
    [ "$got" = "$want" ] || fail "decode $f renamed: $got, expected $want"
    got=$("$G" decode <"$D/$f" 2>"$T/err" | od -An -tx1) || fail "decode $f on stdin: $(cat "$T/err")"
    [ "$got" = "$want" ] || fail "decode $f on stdin: $got"
done
# a UTF-8 byte order mark before text or JSON ids (as the detection allows)
for f in ids.txt ids.json ids_batch.json ids_batch.txt; do
    n=$((n + 1))
    { printf '\357\273\277'; cat "$D/$f"; } >"$T/bom.dat"
    want=$(printf "\"#\$%%&'" | od -An -tx1)
    got=$("$G" decode "$T/bom.dat" 2>"$T/err" | od -An -tx1) || fail "decode $f after a BOM: $(cat "$T/err")"
    [ "$got" = "$want" ] || fail "decode $f after a BOM: $got, expected $want"
    fmt=${f##*.}; [ "$fmt" = txt ] && fmt=text
    got=$("$G" decode --input-format $fmt <"$T/bom.dat" 2>"$T/err" | od -An -tx1) ||
        fail "decode --input-format $fmt $f after a BOM: $(cat "$T/err")"
    [ "$got" = "$want" ] || fail "decode --input-format $fmt $f after a BOM: $got"
done
for f in text json npy llmc; do
    n=$((n + 1))
    got=$(printf 'Hello, batch world' | "$G" encode --format $f | "$G" decode 2>"$T/err")
    [ "$got" = "Hello, batch world" ] || fail "encode --format $f | decode: '$got' ($(cat "$T/err"))"
done
# (raw ids with a zero byte early: "!" is id 0; other raw ids may look like text by chance)
for f in u16 u32; do
    bad2 "encode --format $f | decode" "--input-format u16 or u32" \
        "printf '!Hello' | \"$G\" encode --format $f | \"$G\" decode"
    got=$(printf '!Hello' | "$G" encode --format $f | "$G" decode --input-format $f)
    [ "$got" = '!Hello' ] || fail "decode --input-format $f: '$got'"
done
# an explicit --input-format wins over what the bytes say
bad2 "text read as json" "expected '['" "\"$G\" decode --input-format json \"$D/ids.txt\""
bad2 "npy read as text" "is not a token id" "\"$G\" decode --input-format text \"$D/ids.npy\""
got=$("$G" decode --input-format u16 "$D/ids.u16" | od -An -tx1)
[ "$got" = "$(printf "\"#\$%%&'" | od -An -tx1)" ] ||
    fail "decode --input-format u16: $got"
# the same through embed: a batch from stdin gives [B, T, C]
"$G" embed --weights "$D/model.safetensors" <"$D/ids_batch.txt" -o "$T/x.npy" 2>"$T/err" ||
    fail "embed of a text batch on stdin: $(cat "$T/err")"
$PY -c "import numpy as np, sys; a = np.load('$T/x.npy'); sys.exit(a.shape != (2, 3, 4))" ||
    fail "embed of a text batch on stdin: not [2, 3, 4]"

# ---- 2. files of the wrong kind, named for what they are -----------------------
bad2 "safetensors as ids" "model.safetensors is a safetensors file, not token ids" "\"$G\" decode \"$D/model.safetensors\""
bad2 "llm.c checkpoint as ids" "is an llm.c model checkpoint, not token ids" "\"$G\" decode \"$D/model.llmc\""
bad2 "GGUF as ids" "is a GGUF file, not token ids" "\"$G\" embed --weights \"$D/model.safetensors\" \"$D/model.gguf\""
bad2 "tokenizer as ids" "is an llm.c tokenizer file, not token ids" "\"$G\" decode \"$D/tokenizer.llmc\""
bad2 "zip as ids (stdin)" "<stdin> is a zip archive" "\"$G\" decode < \"$D/notes.zip\""
bad2 "gzip as ids" "is gzip-compressed data, not token ids" "\"$G\" decode \"$D/notes.gz\""
bad2 "safetensors as dout" "model.safetensors is a safetensors file, not a NumPy array" \
    "\"$G\" step --weights \"$D/model.safetensors\" --ids \"$D/ids.txt\" --dout \"$D/model.safetensors\" --optimizer sgd --lr 1 --out \"$T/o.safetensors\""
bad2 "GGUF as ref" "model.gguf is a GGUF file, not a NumPy array or a safetensors file" \
    "\"$G\" verify --weights \"$D/model.safetensors\" --ids \"$D/ids.txt\" --ref \"$D/model.gguf\""
bad2 "npy as FILE:TENSOR" "x.npy is a NumPy array (.npy), not a safetensors file" \
    "\"$G\" verify --weights \"$D/model.safetensors\" --ids \"$D/ids.txt\" --ref \"$T/x.npy:x\""
bad2 "bf16 in npy" "no bfloat16" "\"$G\" embed --weights \"$D/model.safetensors\" --dtype bf16 \"$D/ids.txt\""
bad2 "unknown dtype" "unknown --dtype" "\"$G\" embed --weights \"$D/model.safetensors\" --dtype f8 \"$D/ids.txt\""

# ---- 3. the malformed catalogue, from files and from stdin ----------------------
tab=$(printf '\t')
nbad=0
while IFS="$tab" read -r name want opts; do
    nbad=$((nbad + 1))
    case $want in
    *"row 1 has"*)  # decode only concatenates rows: unequal ones are no error there
        "$G" decode "$T/bad/$name" >/dev/null 2>"$T/err" || fail "decode of ragged bad/$name: $(cat "$T/err")" ;;
    *)
        bad2 "decode bad/$name" "$want" "\"$G\" decode $opts \"$T/bad/$name\""
        grep -qF "bad/$name" "$T/err" || fail "decode bad/$name: the message does not name the file" ;;
    esac
    bad2 "embed bad/$name (stdin)" "$want" \
        "\"$G\" embed --weights \"$D/model.safetensors\" $opts -o \"$T/bad.npy\" < \"$T/bad/$name\""
    grep -qF "<stdin>" "$T/err" || fail "embed bad/$name: the message does not name <stdin>"
    [ -e "$T/bad.npy" ] && { fail "embed bad/$name left an output"; rm -f "$T/bad.npy"; }
done <"$T/bad.txt"
[ $nbad -ge 15 ] || fail "only $nbad malformed files"

# ---- 4. inspect: every format, file and stdin ------------------------------------
for spec in "ids.txt:ids: 6, shape [6]" "ids.json:ids: 6, shape [6]" "ids.llmc:an llm.c token shard" \
    "ids_batch.txt:shape [2, 3] (a batch [B, T])" "ids_batch.json:shape [2, 3]" \
    "ids_batch.npy:shape: [2, 3]" "model.safetensors:wte.weight  F32 [10, 4]" \
    "model.llmc:maxT 8, V 10, L 1, heads 1, C 4, Vp 16" "model.llmc:wte  F32 [16, 4]" \
    "model.gguf:token_embd.weight  F32 [10, 4]" "model.gguf:a GGUF file, version 3" \
    "tokenizer.llmc:tokens: 258; end-of-text id 257" "model.npy:shape: [10, 4]"; do
    f=${spec%%:*} want=${spec#*:}
    n=$((n + 1))
    "$G" inspect "$D/$f" >"$T/out" 2>"$T/err" || fail "inspect $f: $(cat "$T/err")"
    grep -qF -- "$want" "$T/out" || fail "inspect $f: '$want' not in: $(head -5 "$T/out")"
    "$G" inspect <"$D/$f" >"$T/out" 2>"$T/err" || fail "inspect <$f: $(cat "$T/err")"
    grep -qF -- "$want" "$T/out" || fail "inspect <$f: '$want' not in: $(head -5 "$T/out")"
    "$G" inspect --json - <"$D/$f" >"$T/out" 2>"$T/err" || fail "inspect --json <$f: $(cat "$T/err")"
    $PY -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/out" || fail "inspect --json $f: not JSON"
done
got=$(printf '[[1, 2], [3]]' | "$G" decode | od -An -tx1)
[ "$got" = "$(printf '"#$' | od -An -tx1)" ] || fail "decode of ragged rows: $got"
bad2 "inspect of a zip" "is a zip archive" "\"$G\" inspect \"$D/notes.zip\""
: > "$T/empty.txt"
bad2 "inspect of an empty file" "empty.txt is empty" "\"$G\" inspect \"$T/empty.txt\""
bad2 "inspect of an empty stdin" "<stdin> is empty" "\"$G\" inspect < /dev/null"
bad2 "inspect of a ragged batch" "row 1 has 1 ids but row 0 has 2" "\"$G\" inspect < \"$T/bad/ragged.json\""
# ids on stdin are streamed, not held: 80 MB of them under a 60 MB address space
# (AddressSanitizer reserves far more address space: not under it)
if [ "${SANITIZED:-0}" = 0 ]; then
    n=$((n + 1))
    got=$(ulimit -v 60000; yes "1 2" | head -c 80000000 | "$G" inspect 2>&1 | tail -n 1)
    [ "$got" = "ids: 40000000, shape [40000000], largest id 2" ] || fail "inspect of 80 MB of ids on stdin: $got"
fi

echo "shapes detect: $n checks, $fails failed"
[ $fails -eq 0 ]
