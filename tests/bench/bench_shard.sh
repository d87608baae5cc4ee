#!/bin/sh
# gpt2in shard's throughput: MB/s of document text, from the input files to
# finished llm.c shards and manifest (fsyncs included), against
#   encode    the tokenizer alone on the same text: `gpt2in encode --format
#             u16 FILE > /dev/null`, one document, the same --threads, the
#             text read from a file as shard reads it
#   fineweb   llm.c's fineweb.py pipeline (tests/bench/fineweb_style.py:
#             Python multiprocessing, imap over JSON lines, numpy shards)
#             with the project's Python package as its encoder (the tiktoken
#             Python package cannot be installed here; npm tiktoken encodes
#             ~5 MB/s a thread in make bench's tokenizer table)
#   jansson   json_loadb of every line alone, no tokenizing (what parsing
#             JSON Lines costs; tests/bench/bench_shard_json.c)
# on make bench's corpora (tests/bench/make_corpora.py: English, code, eight
# languages), each as
#   whole     one plain text file, one document
#   files     plain text files, one document each (the text cut into ~4 KB
#             at line ends, as for JSON Lines)
#   lines     one plain text file, --split-lines (a line is a document)
#   jsonl     JSON Lines (the same ~4 KB documents), raw, zstd (-3) and gzip (-6)
# The documents' text is the same bytes in every form.
# One thread: --threads 1, one encoding thread (shard's reading, hashing
# and writing run in its main thread beside it, on another core when there
# is one: they must not be the bottleneck), the fineweb pipeline with one
# worker process; all cores: --threads 0 / nproc worker processes. Not
# pinned. The jansson column is pinned to one core. Best of BENCH_ROUNDS
# (default 3) alternating rounds: each round runs every contender on every
# corpus in turn. MB = 10^6 bytes of text.
set -u
cd "$(dirname "$0")/../.." || exit 2
GPT2IN=${GPT2IN:-build/gpt2in}
B=$(dirname "$GPT2IN")
PY=/usr/bin/python3
ROUNDS=${BENCH_ROUNDS:-3}
[ -x "$GPT2IN" ] || { echo "bench_shard: $GPT2IN is not built (make)"; exit 2; }
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
NP=$(nproc)
PIN=
if command -v taskset > /dev/null 2>&1 && [ "$NP" -gt 1 ]; then PIN="taskset -c $((NP - 1))"; fi

corp=$tmp/corpora
if ! { sh tools/deps.sh install-bench > /dev/null 2>&1; $PY tests/bench/make_corpora.py "$corp" > /dev/null 2>&1; }; then
    echo "bench_shard: make_corpora.py's packages are missing (sh tools/deps.sh install-bench)"; exit 2
fi
names=${BENCH_CORPORA:-"english code multilingual"}
# JSON Lines of the same text: ~4 KB documents cut at line ends; a line's
# newline stays with it, so the documents' bytes add up to the text's.
for c in $names; do
    $PY - "$corp/$c.txt" "$corp/$c.jsonl" "$corp/$c.files" <<'PY'
import json, os, sys
text = open(sys.argv[1], encoding="utf-8").read()
docs, doc, n = [], [], 0
for line in text.splitlines(keepends=True):
    doc.append(line); n += len(line)
    if n >= 4000:
        docs.append("".join(doc)); doc = []; n = 0
if doc:
    docs.append("".join(doc))
with open(sys.argv[2], "w", encoding="utf-8") as f:
    for d in docs:
        f.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
os.makedirs(sys.argv[3])
for i, d in enumerate(docs):
    with open(os.path.join(sys.argv[3], "%06d.txt" % i), "w", encoding="utf-8") as f:
        f.write(d)
PY
    zstd -q -3 "$corp/$c.jsonl" -o "$corp/$c.jsonl.zst" || exit 2
    gzip -6 -c "$corp/$c.jsonl" > "$corp/$c.jsonl.gz" || exit 2
done
have_py=1
root=$(pwd)
case $B in /*) root= ;; esac  # an absolute build folder
(cd tools/python && GPT2IN_LIB="$root/$B/libgpt2in.a" $PY setup.py -q build --build-base "$tmp/pybuild" \
    --build-lib "$tmp/py" > "$tmp/pybuild.log" 2>&1) || { have_py=0; echo "(the Python package does not build: no fineweb column)"; }
have_json=1
${CC:-cc} -O2 -o "$tmp/bench_json" tests/bench/bench_shard_json.c -ljansson 2> /dev/null || have_json=0

# ns CMD...: wall time of one run in ns (the command's output is dropped)
ns() {
    t0=$(date +%s%N)
    "$@" > /dev/null 2> "$tmp/err" || { cat "$tmp/err" >&2; return 1; }
    t1=$(date +%s%N)
    echo $((t1 - t0))
}
keep_best() { # KEY NS
    f=$tmp/best.$1
    if [ ! -f "$f" ] || [ "$2" -lt "$(cat "$f")" ]; then echo "$2" > "$f"; fi
}
run() { # KEY PIN? CMD...
    key=$1; shift
    rm -rf "$tmp/o" "$tmp/p"
    t=$(ns "$@") || { echo "bench_shard: failed: $*" >&2; return 1; }
    keep_best "$key" "$t"
}
load0=$(cut -d' ' -f1-3 /proc/loadavg)
r=0
while [ $r -lt "$ROUNDS" ]; do
    for c in $names; do
        for T in 1 0; do
            procs=$T; [ $T = 0 ] && procs=$NP
            run "$c.encode.$T" "$GPT2IN" encode --threads $T --format u16 "$corp/$c.txt"
            run "$c.whole.$T" "$GPT2IN" shard --quiet --threads $T --out "$tmp/o" "$corp/$c.txt"
            run "$c.files.$T" "$GPT2IN" shard --quiet --threads $T --out "$tmp/o" "$corp/$c.files"/*.txt
            run "$c.text.$T" "$GPT2IN" shard --quiet --threads $T --split-lines --out "$tmp/o" "$corp/$c.txt"
            run "$c.jsonl.$T" "$GPT2IN" shard --quiet --threads $T --out "$tmp/o" "$corp/$c.jsonl"
            run "$c.zst.$T" "$GPT2IN" shard --quiet --threads $T --out "$tmp/o" "$corp/$c.jsonl.zst"
            run "$c.gz.$T" "$GPT2IN" shard --quiet --threads $T --out "$tmp/o" "$corp/$c.jsonl.gz"
            [ $have_py = 1 ] && run "$c.fineweb.$T" env PYTHONPATH="$tmp/py" $PY tests/bench/fineweb_style.py \
                "$corp/$c.jsonl" "$tmp/p" $procs
        done
        [ $have_json = 1 ] && run "$c.jansson.1" $PIN "$tmp/bench_json" "$corp/$c.jsonl"
    done
    r=$((r + 1))
done

# The Python pipeline's tokens equal gpt2in shard's (shards concatenated).
same() { # CORPUS
    [ $have_py = 1 ] || { echo "-"; return; }
    rm -rf "$tmp/o" "$tmp/p"
    "$GPT2IN" shard --quiet --out "$tmp/o" "$corp/$1.jsonl" &&
        env PYTHONPATH="$tmp/py" $PY tests/bench/fineweb_style.py "$corp/$1.jsonl" "$tmp/p" "$NP" &&
        $PY -c 'import glob, sys, numpy as np
a = [np.fromfile(f, dtype="<u2", offset=1024) for f in sorted(glob.glob(sys.argv[1] + "/*.bin"))]
b = [np.fromfile(f, dtype="<u2", offset=1024) for f in sorted(glob.glob(sys.argv[2] + "/*.bin"))]
print("yes" if np.array_equal(np.concatenate(a), np.concatenate(b)) else "NO")' "$tmp/o" "$tmp/p"
}

mbs() { # KEY BYTES
    f=$tmp/best.$1
    [ -f "$f" ] || { printf '%8s' -; return; }
    awk -v b="$2" -v t="$(cat "$f")" 'BEGIN { printf "%8.1f", b / (t / 1e9) / 1e6 }'
}
ratio() { # KEY-A KEY-B: B's time over A's (speed of A relative to B)
    [ -f "$tmp/best.$1" ] && [ -f "$tmp/best.$2" ] || { printf '%7s' -; return; }
    awk -v a="$(cat "$tmp/best.$1")" -v b="$(cat "$tmp/best.$2")" 'BEGIN { printf "%6.2fx", b / a }'
}
echo "machine: $NP cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); load $(cut -d' ' -f1-3 /proc/loadavg) (at the start: $load0)"
echo "best of $ROUNDS alternating rounds; MB/s of document text (MB = 10^6 bytes); x: shard's speed over encode's"
kinds="whole files text jsonl zst gz"
for T in 1 0; do
    [ $T = 1 ] && echo "one encoding thread (--threads 1; fineweb: one worker process):" ||
        echo "all cores (--threads 0; fineweb: $NP worker processes):"
    printf '%-13s %5s | %6s | %14s %14s %14s %14s %14s %14s | %7s %7s %8s\n' corpus MB encode whole files \
        "text lines" jsonl jsonl.zst jsonl.gz fineweb jansson jsonl/fw
    for c in $names; do
        bytes=$(stat -c %s "$corp/$c.txt")
        printf '%-13s %5.1f | %6s |' "$c" "$(awk -v b="$bytes" 'BEGIN { print b / 1e6 }')" \
            "$(mbs "$c.encode.$T" "$bytes" | tr -d ' ')"
        for k in $kinds; do
            printf ' %6s %7s' "$(mbs "$c.$k.$T" "$bytes" | tr -d ' ')" "$(ratio "$c.$k.$T" "$c.encode.$T" | tr -d ' ')"
        done
        printf ' | %7s %7s %8s\n' "$(mbs "$c.fineweb.$T" "$bytes" | tr -d ' ')" \
            "$([ $T = 1 ] && mbs "$c.jansson.1" "$bytes" | tr -d ' ' || printf -)" \
            "$(ratio "$c.jsonl.$T" "$c.fineweb.$T" | tr -d ' ')"
    done
done
echo "(whole: the corpus as one document; files: ~4 KB documents, one a file; text lines: --split-lines;"
echo " jsonl/fw: shard's JSON Lines speed over the fineweb.py pipeline's)"
for c in $names; do echo "$c: fineweb pipeline's tokens equal gpt2in shard's: $(same "$c")"; done
