#!/bin/sh
# Tokenizer throughput on real text: gpt2in (the library alone and the whole
# process, one thread and all cores) against npm tiktoken (the Rust core
# compiled to WebAssembly) on the same corpora, in alternating rounds, then
# gpt2in on pathological inputs (one long piece each) and the whole-process
# time of a tiny encode.
#
# Corpora: tests/bench/make_corpora.py, from documentation, manual pages
# and sources that Debian packages ship (tools/deps.sh install-bench):
# 20 MB of English prose, 20 MB of code, 16 MB in eight languages, 10 MB of
# base64 on one line. Nothing repeated; the manifest (sources, sha256,
# distinct words) is printed.
#
# What is timed (best over the rounds; each round runs every contender on
# every corpus in turn, so a slow spell of the VM hits them alike):
#   library   bpe_encode / bpe_encode_parallel on the text in memory
#             (tests/bench/bench_bpe_lib.c), beside memcpy's bandwidth
#             and a gauge of the core's speed at the time (dependent loads)
#   process   `gpt2in encode --format u32 FILE > /dev/null` (start-up,
#             reading, encoding, writing ids), timed by spawn_time.c;
#             one-thread runs pinned to one core
#   tiktoken  encode_ordinary(text) alone inside Node (no reading, no UTF-8
#             decoding, no start-up), after a warm-up
# MB = 10^6 bytes. Options (environment): BENCH_ROUNDS (default 3).
set -u
cd "$(dirname "$0")/../.." || exit 2
GPT2IN=${GPT2IN:-build/gpt2in}
[ -x "$GPT2IN" ] || { echo "bench_bpe: $GPT2IN is not built (make)"; exit 2; }
PY=/usr/bin/python3
GEN=tests/oracle/stream_gen.py
ROUNDS=${BENCH_ROUNDS:-3}
LIB=$(dirname "$GPT2IN")/libgpt2in.a
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
have_node=1
sh tests/oracle/install.sh > "$tmp/install.log" 2>&1 || { have_node=0; echo "tiktoken: $(tail -n 1 "$tmp/install.log")"; }

# One-thread runs all go to the same core, the library's and the process's:
# on this project's VMs the two cores at times differ in speed by up to 2x,
# which would otherwise decide the ratios below as much as the inputs do.
PIN=
if command -v taskset > /dev/null 2>&1 && [ "$(nproc)" -gt 1 ]; then PIN="taskset -c $(($(nproc) - 1))"; fi

now() { date +%s%N; }
# The process alone is timed by tests/bench/spawn_time.c (posix_spawn, then
# wait): timing it from the shell with date(1) would add two more process
# starts, about 7 ms here, to every figure - a third of a 1 MB input's time.
spawn=
if ${CC:-cc} -O2 -o "$tmp/spawn_time" tests/bench/spawn_time.c 2> /dev/null; then spawn=$tmp/spawn_time; fi
# best_of N CMD...: the shortest wall time of N runs, in seconds. With
# PINNED=1, on the one core (the timer is pinned, not the command: taskset
# in front of it would add a process start to each figure, ~3 ms here)
best_of() {
    runs=$1; shift
    pin=
    [ "${PINNED:-0}" = 1 ] && pin=$PIN
    if [ -n "$spawn" ]; then
        $pin "$spawn" "$runs" /dev/null "$@" | awk '{ for (i = 1; i < NF; i++) if ($i == "min") { printf "%.6f", $(i + 1) / 1e3; ok = 1 } }
                                            END { exit !ok }'
        return
    fi
    best=
    i=0
    while [ $i -lt "$runs" ]; do
        t0=$(now); $pin "$@" > /dev/null || return 1; t1=$(now)
        d=$((t1 - t0))
        if [ -z "$best" ] || [ $d -lt "$best" ]; then best=$d; fi
        i=$((i + 1))
    done
    awk -v ns="$best" 'BEGIN { printf "%.6f", ns / 1e9 }'
}
# in_turn ROUNDS FILE...: the best one-thread whole-process time of encoding
# each FILE, in seconds, one a line; the files are taken in turn, ROUNDS
# times, three runs each time (a single run here is at times 2 ms slower)
in_turn() {
    rounds=$1; shift
    r=0
    while [ $r -lt "$rounds" ]; do
        for f in "$@"; do
            t=$(PINNED=1 best_of 3 "$GPT2IN" encode --threads 1 --format u32 "$f") || return 1
            printf '%s ' "$t"
        done
        echo
        r=$((r + 1))
    done | awk '{ for (i = 1; i <= NF; i++) if (NR == 1 || $i < m[i]) m[i] = $i } END { for (i = 1; i <= NF; i++) print m[i] }'
}
minus() { awk -v a="$1" -v b="$2" 'BEGIN { print a - b }'; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", b / 1e6 / s; else printf "inf" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }

sh tools/deps.sh install-bench || { echo "bench_bpe: the corpora's packages cannot be installed"; exit 2; }
corp=$tmp/corpora
$PY tests/bench/make_corpora.py "$corp" > /dev/null || exit 2
${CC:-cc} -O2 -Ibpe -o "$tmp/bench_lib" tests/bench/bench_bpe_lib.c "$LIB" -lutf8proc -lm -pthread ||
    { echo "bench_bpe: cannot build tests/bench/bench_bpe_lib.c against $LIB"; exit 2; }

echo "machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1); load $(cut -d' ' -f1-3 /proc/loadavg) at the start"
echo "library: bpe_encode (1t) / bpe_encode_parallel (all), text in memory, BPE_SPECIAL_TEXT; process: encode --format u32 FILE > /dev/null (which also looks for special tokens: --special error; $( [ -n "$spawn" ] && echo "spawn_time.c" || echo "date(1) around it: adds ~7 ms a run")${PIN:+; one-thread runs on one core: $PIN})"
echo "tiktoken: npm $( [ $have_node = 1 ] && node -p 'require("./tests/oracle/oracle.js").VERSION') (WebAssembly), encode_ordinary() alone; native tiktoken (Rust, one thread) runs ~15-18 MB/s on such text (../shared/reference)"
echo "best of $ROUNDS alternating rounds; corpora (tests/bench/make_corpora.py):"
sed 's/^/  /' "$corp/MANIFEST.txt"
kinds="english code multilingual base64"
r=0
: > "$tmp/times"
while [ $r -lt "$ROUNDS" ]; do
    for kind in $kinds; do
        f=$corp/$kind.txt
        # the library's one-thread figure on the one core as well (its
        # all-cores figure from a run that is not pinned)
        $PIN "$tmp/bench_lib" 1 "$f" | awk -v k="$kind" '$1 == "gauge" { print "all", "gauge", -$2 }
                                                 NF == 5 { print k, "lib1", $4 }' >> "$tmp/times"
        "$tmp/bench_lib" 1 "$f" | awk -v k="$kind" 'NF == 5 { print k, "liball", $5; print k, "bytes", $2; print k, "tokens", $3 }
                                                    $1 == "memcpy" { print "all", "memcpy", -$2 }' >> "$tmp/times"
        t=$(PINNED=1 best_of 1 "$GPT2IN" encode --threads 1 --format u32 "$f") || { echo "gpt2in failed on $f"; exit 1; }
        echo "$kind proc1 $t" >> "$tmp/times"
        t=$(best_of 1 "$GPT2IN" encode --format u32 "$f") || { echo "gpt2in failed on $f"; exit 1; }
        echo "$kind procall $t" >> "$tmp/times"
        if [ $have_node = 1 ]; then
            node tests/oracle/bench.js --runs 1 "$f" | awk -v k="$kind" '{ print k, "tiktoken", $4; print k, "tiktoken_tokens", $3 }' >> "$tmp/times"
        fi
    done
    r=$((r + 1))
done
# best (smallest) of each figure; memcpy and gauge are stored negated so that the best is the largest
awk '{ key = $1 " " $2; if (!(key in m) || $3 < m[key]) m[key] = $3 } END { for (k in m) print k, m[k] }' "$tmp/times" > "$tmp/best"
get() { awk -v k="$1 $2" '$1 " " $2 == k { print $3 }' "$tmp/best"; }
echo "memcpy of 20 MB: $(awk -v g="$(get all memcpy)" 'BEGIN { printf "%.1f", -g }') GB/s; dependent random loads over 2 MB, one core: $(awk -v g="$(get all gauge)" 'BEGIN { printf "%.1f", -g }') M/s (this VM's speed at the time: the same library's MB/s moves with it between runs)"
echo "targets: library one thread >= 250 MB/s on English and code, >= 150 on multilingual and base64;"
echo "         the process within 10% of the library; all cores >= 1.8x one thread"
echo
printf '%-13s %6s %9s | %8s %8s | %8s %8s | %8s | %9s %9s %8s %s\n' corpus MB tokens "lib 1t" "lib all" "proc 1t" "proc all" tiktoken "lib/tikt" "proc/lib" "all/1t" "same count"
for kind in $kinds; do
    bytes=$(get $kind bytes) n=$(get $kind tokens)
    l1=$(mbps "$bytes" "$(get $kind lib1)") la=$(mbps "$bytes" "$(get $kind liball)")
    p1=$(mbps "$bytes" "$(get $kind proc1)") pa=$(mbps "$bytes" "$(get $kind procall)")
    if [ $have_node = 1 ]; then
        mt=$(mbps "$bytes" "$(get $kind tiktoken)") nt=$(get $kind tiktoken_tokens)
        same=$([ "$nt" = "$n" ] && echo yes || echo "NO ($nt vs $n)")
    else
        mt=- same=-
    fi
    printf '%-13s %6.1f %9s | %8s %8s | %8s %8s | %8s | %8sx %8sx %7sx %s\n' "$kind" "$(awk -v b="$bytes" 'BEGIN{print b/1e6}')" "$n" \
        "$l1" "$la" "$p1" "$pa" "$mt" "$(ratio "$l1" "$mt")" "$(ratio "$p1" "$l1")" "$(ratio "$la" "$l1")" "$same"
done
echo "(MB/s; lib/tikt: the library on one thread over npm tiktoken; proc/lib: the one-thread process over the library; all/1t: the library on all cores over one thread)"
cp "$corp/english.txt" "$tmp/english.txt"
bytes_english=$(wc -c < "$tmp/english.txt")
echo
echo "pathological inputs, 1 MB each (one piece of 1 MB: worst case for BPE merging); target >= 1/3 of prose speed"
echo "(tiktoken's merge loop is quadratic in piece length, so it runs on 16 KB only: ~1 MB would take minutes)"
echo "(gpt2in-all: both cores share the one piece: segments encoded alone, then joined)"
# Prose speed two ways: 1 MB of it, the same size and the same process
# costs as each input here, and the 20 MB English corpus (its first-megabyte
# costs spread over twenty). Net: the time of a process that encodes an empty file
# taken off both sides. Each input is timed in turn with those three, three
# rounds, best of each: a slow spell of the VM then hits all of them alike.
head -c 1000000 "$tmp/english.txt" > "$tmp/english1.txt"
pbytes=$(wc -c < "$tmp/english1.txt")
echo "(ratios against English prose timed in the same rounds: its first 1 MB (same size) and all 20 MB (its throughput); net: less an empty file's process)"
echo "(4MB/1MB: the time of 4 MB of the same input over the time of 1 MB, one thread: 4 when linear, 16 when quadratic)"
printf '%-8s %12s %11s %9s %11s %9s %12s %8s %16s\n' input "gpt2in-1t" "vs 1MB" "net" "vs 20MB" "net" "gpt2in-all" "4MB/1MB" "tiktoken (16 KB)"
all=
: > "$tmp/empty.txt"
for kind in a letters digits spaces equals; do
    f=$tmp/p_$kind.txt
    $PY $GEN patho $kind 1 > "$f"
    $PY $GEN patho $kind 4 > "$f.4"
    set -- $(in_turn 3 "$tmp/empty.txt" "$tmp/english1.txt" "$tmp/english.txt" "$f" "$f.4")
    [ $# -eq 5 ] || { echo "gpt2in failed on $f"; exit 1; }
    s0=$1 sp=$2 s10=$3 s1=$4 s4=$5
    sa=$(best_of 3 "$GPT2IN" encode --format u32 "$f") || { echo "gpt2in failed on $f"; exit 1; }
    m1=$(mbps 1000000 "$s1"); ma=$(mbps 1000000 "$sa")
    if [ $have_node = 1 ]; then
        head -c 16000 "$f" > "$f.16k"
        set -- $(node tests/oracle/bench.js --runs 1 "$f.16k")
        mt="$(mbps "$2" "$4") MB/s"
    else
        mt=-
    fi
    p1=$(mbps "$pbytes" "$sp") p10=$(mbps "$bytes_english" "$s10")
    net=$(mbps 1000000 "$(minus "$s1" "$s0")")
    p1net=$(mbps "$pbytes" "$(minus "$sp" "$s0")") p10net=$(mbps "$bytes_english" "$(minus "$s10" "$s0")")
    printf '%-8s %7s MB/s %10sx %8sx %10sx %8sx %7s MB/s %8s %16s\n' "$kind" "$m1" "$(ratio "$m1" "$p1")" \
        "$(ratio "$net" "$p1net")" "$(ratio "$m1" "$p10")" "$(ratio "$net" "$p10net")" "$ma" \
        "$(ratio "$s4" "$s1")" "$mt"
    all="$all $kind: prose 1 MB $p1 MB/s (net $p1net), 20 MB $p10 (net $p10net), empty file $(awk -v s="$s0" 'BEGIN { printf "%.1f", s * 1e3 }') ms;"
done
echo "(the prose and empty-file figures of those rounds:$all)" | fold -s -w 120

echo
echo "start-up: echo hello | gpt2in encode (target < 5 ms); cat and /bin/true for scale"
echo "the process alone (tests/bench/spawn_time.c: posix_spawn, \"hello\" on stdin from a file, no shell):"
printf 'hello\n' > "$tmp/hello.txt"
if [ -n "$spawn" ]; then
    for cmd in "$GPT2IN encode" cat /bin/true; do
        printf '  %-22s %s\n' "${cmd##*/}:" "$("$tmp/spawn_time" 300 "$tmp/hello.txt" $cmd)"
    done
else
    echo "  (no C compiler: skipped)"
fi
echo "through a shell pipeline (the shell's fork and the pipe are in these):"
if command -v hyperfine > /dev/null 2>&1; then
    hyperfine --warmup 20 --runs 200 --export-json "$tmp/hf.json" "echo hello | $GPT2IN encode" \
        "echo hello | cat" > /dev/null 2>&1 &&
        $PY -c 'import json,sys
for r in json.load(open(sys.argv[1]))["results"]:
    print("hyperfine (shell start-up subtracted): %-34s mean %.2f ms, min %.2f ms, 200 runs" % (r["command"], r["mean"]*1e3, r["min"]*1e3))' "$tmp/hf.json"
else
    echo "(hyperfine not installed: apt-get install hyperfine for figures without the shell's start-up)"
fi
for cmd in "$GPT2IN encode" cat; do
    t0=$(now); i=0
    while [ $i -lt 200 ]; do echo hello | $cmd > /dev/null; i=$((i + 1)); done
    t1=$(now)
    awk -v ns=$((t1 - t0)) -v c="${cmd##*/}" 'BEGIN { printf "shell loop (includes the pipe and fork/exec), %-11s %.2f ms per run, 200 runs\n", c ":", ns / 200 / 1e6 }'
done
echo
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg) (figures taken under load are not comparable across runs; the ratios of one run are)"
