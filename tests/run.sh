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
# with two cores or more each build has a lane and the lanes run side by
# side (each suite's line is printed when it ends): a lane runs its build's
# suites, the slow ones first, then helps with the other builds' suites not
# started yet, so that the lanes end together; GPT2IN_SERIAL=1 runs the
# builds one after another. The end says how long each lane took and which
# suites were the slowest.
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
pass=0 fail=0 skip=0 failed="" lanes=""
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export GPT2IN_CHECK=${GPT2IN_CHECK:-0}
CHECK_SKIP="test_fuzz.sh test_huge.sh test_valgrind.sh test_differential.sh test_special_cuts.sh
test_embed_refs.sh test_hostile_input.sh test_bpe_cuts"
# Run first in each lane, the slowest first (the rest follow by name).
SLOW_FIRST="test_python.sh test_differential.sh test_valgrind.sh test_special_cuts.sh
test_shard_cli.sh test_tokenizer_stream.sh test_fuzz.sh test_hostile_input.sh
test_shapes_detect.sh test_bpe_cuts test_init.sh test_malformed.sh test_step_semantics.sh
test_proc_special test_shard_big.sh test_shard_dask.sh test_huge.sh test_shapes_batch.sh
test_vocab_formats test_output_safety.sh test_alloc_fail test_embed_cli.sh test_bpe"
# Never run beside another suite of the same build: they write into the
# build's folder ($B/python, make install's $B/gpt2in.pc) or read what
# another writes there.
NO_STEAL="test_python.sh
test_embed_verify_tol.sh
test_install.sh
test_install_dask.sh"

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
    echo "$secs $name $b" >> "$logdir/times"
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

# A lane's files: $logdir/<what>.<the build's path with / as _>.
file_of() { echo "$logdir/$1.$(echo "$2" | tr / _)"; }

# Each build's queue of suites, one name a line: the slow ones first (so
# that the two lanes end together), then the programs, then the scripts.
make_queue() {
    q=$(file_of queue "$1")
    : >"$q"
    for n in $SLOW_FIRST; do
        case "$n" in *"$filter"*) ;; *) continue ;; esac
        case "$n" in *.sh) [ -f "tests/$n" ] ;; *) [ -x "$1/tests/$n" ] ;; esac && echo "$n" >>"$q"
    done
    slow=" $(echo $SLOW_FIRST) "
    for t in "$1"/tests/test_* tests/test_*.sh; do
        n=${t##*/}
        case "$n" in *"$filter"*) ;; *) continue ;; esac
        case "$slow" in *" $n "*) continue ;; esac
        case "$n" in *.sh) [ -f "$t" ] ;; *) [ -x "$t" ] ;; esac && echo "$n" >>"$q"
    done
}

# Takes the first suite of build $1's queue (with $2 = steal: the first
# that may run beside another suite of its build) into $item.
take() {
    q=$(file_of queue "$1")
    until mkdir "$logdir/lock" 2>/dev/null; do sleep 0.2; done
    if [ "${2:-}" = steal ]; then
        item=$(grep -vxF -e "$NO_STEAL" "$q" | head -n 1)
    else
        item=$(head -n 1 "$q")
    fi
    [ -n "$item" ] && { grep -vxF "$item" "$q" >"$q.t"; mv "$q.t" "$q"; }
    rmdir "$logdir/lock"
    [ -n "$item" ]
}

run_item() { # build name
    case "$2" in
        *.sh) run_one "$1" "$2" sh "tests/$2" ;;
        *) run_one "$1" "$2" "$1/tests/$2" ;;
    esac
}

# One lane: its build's suites, then (side by side with the other lanes)
# the suites the other builds have not started yet.
run_lane() {
    lane=$1
    lane_start=$(date +%s)
    while take "$lane"; do run_item "$lane" "$item"; done
    if [ "${GPT2IN_SERIAL:-0}" != 1 ]; then
        for o in $builds; do
            [ "$o" = "$lane" ] && continue
            while take "$o" steal; do run_item "$o" "$item"; done
        done
    fi
    echo "$(( $(date +%s) - lane_start )) $pass $fail $skip $failed" > "$(file_of counts "$lane")"
}

for b in $builds; do
    [ -x "$b/gpt2in" ] || { echo "run.sh: $b/gpt2in is not built (run make test)"; exit 2; }
    make_queue "$b"
done
if [ "${GPT2IN_SERIAL:-0}" = 1 ] || [ "$(nproc 2>/dev/null || echo 1)" -lt 2 ]; then
    GPT2IN_SERIAL=1
    for b in $builds; do (run_lane "$b"); done
else
    for b in $builds; do (run_lane "$b") & done
    wait
fi
for b in $builds; do
    [ -f "$(file_of counts "$b")" ] || { echo "run.sh: the lane of $b did not finish"; fail=$((fail + 1)); continue; }
    read -r secs p f k fl < "$(file_of counts "$b")"
    pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + k))
    [ -n "$fl" ] && failed="$failed $fl"
    lanes="$lanes  $b ${secs}s"
done

echo
if [ -s "$logdir/times" ]; then
    # where the time went: each lane (side by side, the longest is the
    # critical path) and the slowest suites
    echo "lanes:$lanes"
    echo "slowest:"
    sort -rn "$logdir/times" | head -n 12 | awk '{ printf "  %4ss  %-28s %s\n", $1, $2, $3 }'
fi
rm -rf "$logdir"
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
