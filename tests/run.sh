#!/bin/sh
# Runs every test suite once per build (build/, then build-asan/ under
# AddressSanitizer and UBSan) and ends with one summary line.
# A suite is a C program build/tests/test_* or a script tests/test_*.sh;
# exit 0 = passed, 77 = skipped (it says why), anything else = failed.
# Scripts get $B (the build folder), $GPT2IN (the program), $SANITIZED (0/1:
# built with -fsanitize=address) and $FAULTS (0/1: built with -DGPT2IN_FAULTS,
# the fault injection hooks), both read from $B/cflags.
# Usage: sh tests/run.sh [NAME-FILTER]
# GPT2IN_BUILDS: the build folders (default "build build-asan"). On a machine
# with two cores or more the builds' passes run side by side (each suite's
# line is printed when it ends); GPT2IN_SERIAL=1 runs them one after another.
# GPT2IN_CHECK=1 (make check): the suites in CHECK_SKIP below (fuzzing, huge
# inputs, valgrind, the tiktoken oracle, long generated streams, PyTorch
# references) are skipped with "skipped: not in make check"; a suite with a
# slow part may skip just that part when GPT2IN_CHECK is 1.
set -u
cd "$(dirname "$0")/.." || exit 2
filter=${1:-}
builds=${GPT2IN_BUILDS:-build build-asan}
logdir=${TMPDIR:-/tmp}/gpt2in-tests.$$
mkdir -p "$logdir"
pass=0 fail=0 skip=0 failed=""
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export GPT2IN_CHECK=${GPT2IN_CHECK:-0}
CHECK_SKIP="test_fuzz.sh test_huge.sh test_valgrind.sh test_differential.sh test_special_cuts.sh
test_embed_refs.sh test_hostile_input.sh test_bpe_cuts"

# 1 when the build's compile line ($b/cflags, written by the Makefile) has $2.
built_with() {
    if [ -f "$1/cflags" ]; then grep -q -e "$2" "$1/cflags" && echo 1 || echo 0
    else [ "$1" = build-asan ] && echo 1 || echo 0; fi
}

run_one() { # build name command...
    b=$1; name=$2; shift 2
    case "$name" in *"$filter"*) ;; *) return ;; esac
    if [ "$GPT2IN_CHECK" = 1 ]; then
        for c in $CHECK_SKIP; do
            if [ "$c" = "$name" ]; then
                skip=$((skip + 1)); printf 'SKIP  %-28s %-11s %s\n' "$name" "$b" "skipped: not in make check"
                return
            fi
        done
    fi
    log="$logdir/$(echo "$b-$name" | tr '/' '_').log"
    start=$(date +%s)
    B=$b GPT2IN=$b/gpt2in SANITIZED=$(built_with "$b" -fsanitize=address) \
        FAULTS=$(built_with "$b" -DGPT2IN_FAULTS) "$@" >"$log" 2>&1 </dev/null
    rc=$?
    secs=$(( $(date +%s) - start ))
    if [ $rc -eq 0 ]; then
        pass=$((pass + 1)); printf 'PASS  %-28s %-11s %3ss\n' "$name" "$b" "$secs"
    elif [ $rc -eq 77 ]; then
        skip=$((skip + 1)); printf 'SKIP  %-28s %-11s %s\n' "$name" "$b" "$(tail -n 1 "$log")"
    else
        fail=$((fail + 1)); failed="$failed $b/$name"
        # one write, so that a pass running beside this one does not cut into it
        printf 'FAIL  %-28s %-11s %3ss (exit %s)\n%s\n' "$name" "$b" "$secs" "$rc" \
            "$(tail -n 25 "$log" | sed 's/^/      | /')"
    fi
}

# A build's counts file: $logdir/counts.<the build's path with / as _>.
counts_of() { echo "$logdir/counts.$(echo "$1" | tr / _)"; }

# One build's pass.
run_build() {
    b=$1
    for t in "$b"/tests/test_*; do
        [ -x "$t" ] || continue
        run_one "$b" "$(basename "$t")" "$t"
    done
    for s in tests/test_*.sh; do
        [ -f "$s" ] || continue
        run_one "$b" "$(basename "$s" .sh).sh" sh "$s"
    done
    echo "$pass $fail $skip $failed" > "$(counts_of "$b")"
}

for b in $builds; do
    [ -x "$b/gpt2in" ] || { echo "run.sh: $b/gpt2in is not built (run make test)"; exit 2; }
done
if [ "${GPT2IN_SERIAL:-0}" = 1 ] || [ "$(nproc 2>/dev/null || echo 1)" -lt 2 ]; then
    for b in $builds; do (run_build "$b"); done
else
    for b in $builds; do (run_build "$b") & done
    wait
fi
for b in $builds; do
    [ -f "$(counts_of "$b")" ] || { echo "run.sh: the pass of $b did not finish"; fail=$((fail + 1)); continue; }
    read -r p f k fl < "$(counts_of "$b")"
    pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + k))
    [ -n "$fl" ] && failed="$failed $fl"
done

rm -rf "$logdir"
echo
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
