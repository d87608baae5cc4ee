#!/bin/sh
# Out of memory through the program: `gpt2in encode` loading GPT-2's files
# under a shrinking address-space limit (ulimit -v) must either work or
# exit 2 with one "out of memory" line -- never die of a signal (it
# segfaulted once: stb_ds's growth did not check realloc). The library's
# every allocation failure is tested one by one in test_alloc_fail (fault
# build); this is the same seen from outside, in the normal build (the
# sanitizers reserve terabytes of address space and cannot run under ulimit -v).
set -u
: "${GPT2IN:=build/gpt2in}" "${SANITIZED:=0}"
if [ "$SANITIZED" = 1 ]; then
    echo "skipped: ulimit -v and the sanitizers do not mix (normal build only)"
    exit 77
fi
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
fail=0 oom=0 ok=0
nostart=0
# GPT-2's files, and the same vocabulary as a tokenizer.json (jansson's own
# allocations: its failure once gave an empty message)
set -- --encoder gpt2_weights/encoder.json --merges gpt2_weights/vocab.bpe
hf=
if /usr/bin/python3 tests/gen_vocab_fixtures.py "$tmp" >/dev/null 2>&1 && [ -f "$tmp/gpt2.tokenizer.json" ]; then
    hf=$tmp/gpt2.tokenizer.json
else
    echo "note: no /usr/bin/python3 to write a tokenizer.json; only GPT-2's files are loaded"
fi
for kb in 8000 12000 16000 20000 24000 28000 32000 40000 48000 64000 \
          ${hf:+hf8000 hf12000 hf16000 hf20000 hf24000 hf28000 hf32000 hf40000 hf48000 hf64000}; do
    case $kb in
    hf*) kb=${kb#hf}; set -- --vocab "$hf" ;;
    esac
    # Below some limit the program cannot even start: the dynamic loader and
    # the shared libraries' initialisers (libstdc++) die of a
    # signal before main. That is not the loader under test; skip the limit.
    if ! sh -c 'ulimit -v $1 && "$2" --version; exit $?' sh $kb "$GPT2IN" >/dev/null 2>&1; then
        nostart=$((nostart + 1))
        continue
    fi
    (ulimit -v $kb && echo hi | "$GPT2IN" encode "$@") >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 0 ]; then
        [ "$(cat "$tmp/out")" = "5303 198" ] || { echo "FAIL: ulimit -v $kb: wrong ids: $(cat "$tmp/out")"; fail=1; }
        ok=$((ok + 1))
    elif [ $rc -eq 2 ] && [ "$(wc -l < "$tmp/err")" -eq 1 ] && grep -q 'out of memory' "$tmp/err"; then
        oom=$((oom + 1))
    elif [ $rc -eq 2 ] && [ "$1" = --vocab ] && [ "$(wc -l < "$tmp/err")" -eq 1 ] && ! grep -q -- '-1:-1: *$' "$tmp/err"; then
        # jansson's lexer takes a failed allocation for an invalid token
        # (README, Dependencies): a message with a cause and a place, not empty
        oom=$((oom + 1))
    elif [ $rc -eq 127 ] || [ $rc -eq 126 ]; then
        :  # the program itself could not start under this limit
    else
        echo "FAIL: ulimit -v $kb, $*: exit $rc: $(head -c 300 "$tmp/err")"
        fail=1
    fi
done
echo "oom: $ok runs worked, $oom ran out of memory cleanly, $nostart limits too low to start"
[ $oom -gt 0 ] || { echo "FAIL: no limit made the vocabulary's loading run out of memory"; fail=1; }
exit $fail
