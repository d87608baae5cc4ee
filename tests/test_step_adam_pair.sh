#!/bin/sh
# gpt2in step --optimizer adam when the weights cannot be written (a full
# disk, injected by a -DGPT2IN_FAULTS build's GPT2IN_TEST_FAIL_WRITE_AFTER):
# the state and the weights both stay as they were, the very same files (not
# rewritten: a put-back would need the space that just ran out), no
# temporary file is left, and the step then runs.
set -u
: "${GPT2IN:=build/gpt2in}"
[ -x "$GPT2IN" ] || { echo "skipped: $GPT2IN is not built"; exit 77; }
[ "${FAULTS:-0}" = 1 ] || { echo "skipped: a build without -DGPT2IN_FAULTS"; exit 77; }
d=$(mktemp -d) || exit 2
trap 'rm -rf "$d"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
G=$GPT2IN
# weights bigger than the state (the layers' tensors are copied), so that
# one byte limit lets the state be written and not the weights
"$G" init --full --vocab 100 --ctx 64 --channels 24 --layers 2 --heads 1 --out "$d/w.safetensors" || exit 2
echo 1 > "$d/one.txt"
"$G" embed --weights "$d/w.safetensors" -o "$d/dout.npy" "$d/one.txt" || exit 2
step() { "$G" step --weights "$d/w.safetensors" --ids "$d/one.txt" --dout "$d/dout.npy" --optimizer adam \
    --lr 0.01 --state "$d/st.safetensors" --out "$d/w.safetensors"; }
step || bad "step 1: exit $?"
ssize=$(wc -c < "$d/st.safetensors"); wsize=$(wc -c < "$d/w.safetensors")
[ "$wsize" -gt $((ssize + 1000)) ] || bad "test setup: weights ($wsize) not bigger than the state ($ssize)"
before=$(ls -i "$d/st.safetensors" "$d/w.safetensors"; cat "$d/st.safetensors" "$d/w.safetensors" | cksum)
GPT2IN_TEST_FAIL_WRITE_AFTER=$((ssize + 500)) step 2> "$d/err"; rc=$?
[ $rc -eq 2 ] || bad "weights not writable: exit $rc, expected 2"
[ "$(wc -l < "$d/err")" -eq 1 ] && grep -q "nothing was changed" "$d/err" ||
    bad "weights not writable: not one line saying nothing changed: $(cat "$d/err")"
after=$(ls -i "$d/st.safetensors" "$d/w.safetensors"; cat "$d/st.safetensors" "$d/w.safetensors" | cksum)
[ "$before" = "$after" ] || bad "weights not writable: the files changed (or were rewritten): $before / $after"
[ -z "$(ls -A "$d" | grep '\.tmp\.')" ] || bad "weights not writable: temporary files left: $(ls -A "$d")"
step 2> "$d/err" || bad "the step after the failed one: exit $?: $(cat "$d/err")"
[ $fail -eq 0 ] && echo "ok: step adam keeps its pair when the weights cannot be written"
exit $fail
