#!/bin/sh
# test_example - build/example_transformer, the library as the front of a
# hand-written model: its analytic gradient (head + embed_backward_dense +
# embed_backward_positions) must match finite differences of the loss, and
# the loss must go down step after step, from a random table and from a
# table file made by `gpt2in init`.
set -u
B=${B:-build}
G=${GPT2IN:-$B/gpt2in}
X=$B/example_transformer
[ -x "$X" ] || { echo "FAIL: $X is not built"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/gpt2in-example.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

check_run() { # name args...
    name=$1; shift
    "$X" "$@" >"$T/out.txt" 2>&1; rc=$?
    cat "$T/out.txt"
    [ $rc -eq 0 ] || fail "$name: exit $rc"
    grep -q '^gradient check: ok' "$T/out.txt" || fail "$name: no passing gradient check"
    [ "$(grep -c 'MISMATCH' "$T/out.txt")" -eq 0 ] || fail "$name: gradient mismatch"
    [ "$(grep -c '  ok$' "$T/out.txt")" -ge 16 ] || fail "$name: fewer than 16 entries checked"
    # every step's loss below the previous one, and well below the start
    grep '^step ' "$T/out.txt" | awk '{print $4}' >"$T/loss.txt"
    [ "$(wc -l <"$T/loss.txt")" -ge 6 ] || fail "$name: too few steps printed"
    awk 'NR > 1 && $1 >= prev { bad = 1 } { if (NR == 1) first = $1; prev = $1 }
         END { exit !(bad != 1 && prev < first - 0.1) }' "$T/loss.txt" ||
        fail "$name: the loss did not go down: $(tr '\n' ' ' <"$T/loss.txt")"
}

check_run "random table, Adam" --check --steps 8
check_run "random table, SGD" --check --steps 8 --sgd
"$G" init --out "$T/w.safetensors" --channels 24 --ctx 64 --seed 11 >/dev/null || fail "gpt2in init"
check_run "gpt2in init table" --check --steps 8 --weights "$T/w.safetensors" \
    "One two three. One two three. One two three four."
grep -q '^text: 1[0-9] tokens' "$T/out.txt" || fail "the given text was not used"
echo "test_example: ok"
