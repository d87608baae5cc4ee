#!/bin/sh
# Batches of ids [B, T]: a 2-D .npy, a JSON list of lists and blank-line-
# separated text rows (files and stdin) give embed's x [B, T, C] with the
# positions starting again in every row; --dtype f16/bf16 and --format
# safetensors/raw; verify against a [B, T, C] reference; step sums the
# gradients over the batch (SGD and SparseAdam, with positions). Every
# expected value comes from NumPy / PyTorch (tests/gen_shapes_refs.py).
# Needs /usr/bin/python3 with NumPy and torch, else exit 77.
set -u
G=${GPT2IN:-build/gpt2in}
PY=/usr/bin/python3
if ! $PY -c 'import numpy, torch' 2>/dev/null; then
    echo "skipped: /usr/bin/python3 with NumPy and torch is not available (make deps installs them)"
    exit 77
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/gpt2in-shapes-batch.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# run DESCRIPTION CMD...: CMD must exit 0
run() {
    what=$1; shift
    "$@" 2>"$T/err" || { fail "$what: exit $? ($(head -c 300 "$T/err"))"; }
}
$PY tests/gen_shapes_refs.py gen "$T" || { echo "gen_shapes_refs.py gen failed"; exit 2; }
M=$T/model.safetensors
E="$G embed --weights $M --positions --pos-offset 3"

# ---- embed: every batch format, from a file and from stdin ---------------------
run "embed ids.npy" $E -o "$T/out_npy.npy" "$T/ids.npy"
run "embed ids.json" $E -o "$T/out_json.npy" "$T/ids.json"
run "embed ids.txt" $E -o "$T/out_txt.npy" "$T/ids.txt"
run "embed ids_u2.npy" $E -o "$T/out_u2.npy" "$T/ids_u2.npy"
for f in npy json txt; do
    run "embed stdin $f" $E -o "$T/out_stdin_$f.npy" <"$T/ids.$f"
done
# to a pipe: the header is written once all ids are read
$E <"$T/ids.json" 2>"$T/err" | cat >"$T/out_pipe.npy" || fail "embed to a pipe: $(cat "$T/err")"
run "embed without positions" "$G" embed --weights "$M" -o "$T/out_nopos.npy" "$T/ids.json"
run "embed --dtype f16" $E --dtype f16 -o "$T/out_f16.npy" "$T/ids.npy"
run "embed safetensors f32" $E --format safetensors -o "$T/out_st_f32.safetensors" "$T/ids.npy"
run "embed safetensors f16" $E --format safetensors --dtype f16 -o "$T/out_st_f16.safetensors" "$T/ids.npy"
run "embed safetensors bf16" $E --format safetensors --dtype bf16 -o "$T/out_st_bf16.safetensors" "$T/ids.npy"
$E --format safetensors --dtype bf16 <"$T/ids.txt" 2>"$T/err" | cat >"$T/out_st_pipe.safetensors" ||
    fail "embed safetensors to a pipe: $(cat "$T/err")"
run "embed raw bf16" $E --format raw --dtype bf16 -o "$T/out_raw_bf16.bin" "$T/ids.txt"

# ---- verify: the batch against NumPy's [B, T, C], bit for bit ------------------
for f in npy json txt; do
    "$G" verify --weights "$M" --positions --pos-offset 3 --ids "$T/ids.$f" --ref "$T/x_pos.npy" \
        --atol 0 --rtol 0 >"$T/out" 2>"$T/err" || fail "verify ids.$f: exit $? ($(cat "$T/err"))"
    grep -q "identical" "$T/out" || fail "verify ids.$f: not identical: $(cat "$T/out")"
done
# the same ids flattened into one sequence are positions 3..17: no longer the reference
"$G" verify --weights "$M" --positions --ids "$T/ids.json" --ref "$T/x_pos.npy" >"$T/out" 2>&1
[ $? -eq 1 ] || fail "verify with another pos-offset should be outside tolerance: $(cat "$T/out")"
grep -q "batch row 0, token 0" "$T/out" || fail "verify: the first mismatch is not named by batch row: $(cat "$T/out")"
# a safetensors reference, named by its only tensor
run "verify safetensors ref" >/dev/null "$G" verify --weights "$M" --positions --pos-offset 3 --ids "$T/ids.npy" \
    --ref "$T/out_st_f32.safetensors" --atol 0 --rtol 0

# ---- step: gradients summed over the batch -------------------------------------
run "step sgd" "$G" step --weights "$M" --ids "$T/ids.json" --dout "$T/dout.npy" --optimizer sgd \
    --lr 0.1 --positions --pos-offset 3 --out "$T/sgd.safetensors"
run "step adam" "$G" step --weights "$M" --ids "$T/ids.txt" --dout "$T/dout.npy" --optimizer adam \
    --lr 0.01 --positions --pos-offset 3 --state "$T/state.safetensors" --out "$T/adam.safetensors"

$PY tests/gen_shapes_refs.py check "$T" || fail "outputs differ from NumPy / PyTorch (above)"

# ---- shapes that do not fit ----------------------------------------------------
$PY -c "import numpy as np; np.save('$T/d2.npy', np.zeros((15, 8), '<f4')); np.save('$T/d3.npy', np.zeros((5, 3, 8), '<f4'))"
"$G" step --weights "$M" --ids "$T/ids.json" --dout "$T/d3.npy" --optimizer sgd --lr 0.1 \
    --out "$T/no.safetensors" 2>"$T/err" >/dev/null
[ $? -eq 2 ] && grep -q "must be float32 \[3, 5, 8\]" "$T/err" || fail "step: a [5, 3, 8] dout passed: $(cat "$T/err")"
"$G" step --weights "$M" --ids "$T/ids.json" --dout "$T/d2.npy" --optimizer sgd --lr 0.1 \
    --out "$T/no.safetensors" 2>"$T/err" >/dev/null
[ $? -eq 2 ] && grep -q "\[3, 5, 8\]" "$T/err" || fail "step: a flat [B*T, C] dout for a batch passed: $(cat "$T/err")"
"$G" verify --weights "$M" --ids "$T/ids.json" --ref "$T/d2.npy" >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q "the ids give \[3, 5, 8\]" "$T/err" || fail "verify: a [15, 8] ref for a batch: $(cat "$T/err")"
[ -e "$T/no.safetensors" ] && fail "step left an output after an error"
# a row longer than the position table: named by its row and column
printf '[[1, 2], [3, 4]]' >"$T/two.json"
"$G" embed --weights "$M" --positions --pos-offset 15 "$T/two.json" >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q "position 16" "$T/err" || fail "embed: position past wpe: $(cat "$T/err")"

# a failed run (an id past the table, rows of unequal length: found after
# rows were written) leaves an existing output as it was
cp "$T/out_st_f32.safetensors" "$T/keep.safetensors"
printf '[[1, 2], [3, 99]]' >"$T/far.json"
printf '[[1, 2], [3, 4, 5]]' >"$T/ragged.json"
for f in far ragged; do
    for fmt in safetensors npy; do
        "$G" embed --weights "$M" --format $fmt -o "$T/keep.safetensors" "$T/$f.json" 2>"$T/err"
        [ $? -eq 2 ] || fail "embed $f.json --format $fmt: not exit 2"
        cmp -s "$T/keep.safetensors" "$T/out_st_f32.safetensors" || fail "embed $f.json --format $fmt changed its output"
    done
done
grep -q "row 1 has more ids than row 0 (2)" "$T/err" || fail "ragged rows: $(cat "$T/err")"

[ $fails -eq 0 ] && echo "shapes batch: all checks passed"
[ $fails -eq 0 ]
