#!/bin/sh
# Runs the libFuzzer targets built in build-fuzz/fuzz/ (make fuzz-bin).
#   sh tests/fuzz/run.sh [SECONDS [TARGET...]]
# First replays every saved crash in tests/fuzz/regressions/<target>/ (each
# must now pass), then fuzzes each target for SECONDS (default
# $FUZZ_SECONDS or 60), two targets at a time (one per core). New inputs go
# to build-fuzz/corpus/<target>/; the committed tests/fuzz/corpus/ is only
# read. A crash leaves its input in build-fuzz/crashes/ and fails the run.
set -u
cd "$(dirname "$0")/../.." || exit 2
secs=${1:-${FUZZ_SECONDS:-60}}
[ $# -gt 0 ] && shift
all="encode pieces safetensors npy vocab vocab_files table_llmc table_gguf table_npy"
[ -f tools/cli_ids.c ] && all="$all ids"
targets=${*:-$all}
F=build-fuzz
mkdir -p $F/crashes $F/logs
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=$F/logs/status.$$
: >"$status"

fuzz_one() { # target
    t=$1 bin=$F/fuzz/fuzz_$1
    if [ ! -x "$bin" ]; then
        echo "fuzz_$t: not built" | tee -a "$status"
        return
    fi
    mkdir -p "$F/corpus/$t"
    # 1. regressions: every saved crash input must pass now
    regs=$(ls tests/fuzz/regressions/"$t"/* 2>/dev/null)
    if [ -n "$regs" ]; then
        # shellcheck disable=SC2086
        if ! "$bin" -runs=1 $regs >"$F/logs/$t.replay.log" 2>&1; then
            echo "fuzz_$t: FAILED replaying tests/fuzz/regressions/$t (log: $F/logs/$t.replay.log)" \
                | tee -a "$status"
            tail -n 30 "$F/logs/$t.replay.log"
            return
        fi
    fi
    # 2. fuzz; libFuzzer writes new inputs only into the first folder
    # encode does a dozen encodings per input, and traced comparisons make
    # long pieces slow: smaller inputs keep it near 1000 runs a second
    maxlen=16384
    [ "$t" = encode ] && maxlen=4096
    "$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2560 -max_len=$maxlen \
        -print_final_stats=1 -artifact_prefix="$F/crashes/$t-" \
        "$F/corpus/$t" tests/fuzz/corpus/"$t" >"$F/logs/$t.log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$F/logs/$t.log" | tail -n 1)
    if [ $rc -eq 0 ]; then
        echo "fuzz_$t: ${runs:-?} runs in ${secs}s, $(ls "$F/corpus/$t" | wc -l) corpus inputs, no failure" \
            | tee -a "$status"
    else
        echo "fuzz_$t: FAILED (exit $rc) after ${runs:-?} runs; input in $F/crashes/, log $F/logs/$t.log" \
            | tee -a "$status"
        grep -m 1 -A 25 -E 'ERROR: |runtime error|check failed|==ERROR|deadly signal' "$F/logs/$t.log"
    fi
}

# Two lanes, one per core.
lane() { for t in "$@"; do fuzz_one "$t"; done; }
set -- $targets
a="" b="" i=0
for t in "$@"; do
    if [ $((i % 2)) -eq 0 ]; then a="$a $t"; else b="$b $t"; fi
    i=$((i + 1))
done
# shellcheck disable=SC2086
lane $a &
pa=$!
# shellcheck disable=SC2086
lane $b
wait $pa
if grep -q -e FAILED -e 'not built' "$status"; then
    rm -f "$status"
    echo "fuzz: FAILED"
    exit 1
fi
rm -f "$status"
exit 0
