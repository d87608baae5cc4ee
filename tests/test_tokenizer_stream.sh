#!/bin/sh
# Streaming: the same input through a pipe in chunks of 1, 2, 3, 7, 64, 4095
# and 65536 bytes gives the committed fixture ids; a ~200 MB generated text
# (variations of the fixtures, made on the fly) streams through `encode` in
# less than 64 MB of memory (peak RSS) and gives exactly the concatenation of
# its blocks' tokens. Helper: tests/oracle/stream_gen.py.
set -u
: "${GPT2IN:=build/gpt2in}" "${SANITIZED:=0}"
[ -x "$GPT2IN" ] || { echo "skipped: $GPT2IN is not built"; exit 77; }
[ -x /usr/bin/python3 ] || { echo "skipped: /usr/bin/python3 is missing"; exit 77; }
PY=/usr/bin/python3
GEN=tests/oracle/stream_gen.py
FIX=tests/fixtures/tokenizer
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
fails=0 n=0
fail() { fails=$((fails + 1)); echo "FAIL: $*"; }

# ---- chunked pipes --------------------------------------------------------------
small="vec_03 vec_11 contractions invalid_utf8 emoji lang_thai decomposed special_allow_doc"
larger="english_prose whitespace long_spaces lang_japanese digits"
for name in $small $larger; do
    flags=
    case $name in special_allow_*) flags="--special allow" ;; esac
    tr -s ' \t\r\n' '\n' < "$FIX/$name.ids" > "$tmp/want"
    for c in 1 2 3 7 64 4095 65536; do
        case "$c $name" in "1 "*|"2 "*|"3 "*) case " $small " in *" $name "*) ;; *) continue ;; esac ;; esac
        [ "$SANITIZED" = 1 ] && [ $c -lt 7 ] && [ "$name" != vec_03 ] && [ "$name" != invalid_utf8 ] && continue
        n=$((n + 1))
        $PY $GEN chunks $c "$FIX/$name.txt" | "$GPT2IN" encode $flags > "$tmp/out" 2>"$tmp/err" ||
            { fail "$name in chunks of $c: exit $? $(cat "$tmp/err")"; continue; }
        tr -s ' \t\r\n' '\n' < "$tmp/out" | sed '/^$/d' > "$tmp/got"
        cmp -s "$tmp/want" "$tmp/got" || fail "$name in chunks of $c: ids differ from $FIX/$name.ids ($(diff "$tmp/want" "$tmp/got" | head -n 4 | tr '\n' ' '))"
    done
    # count and decode streamed too
    n=$((n + 1))
    [ "$($PY $GEN chunks 7 "$FIX/$name.txt" | "$GPT2IN" count $flags)" = "$(wc -l < "$tmp/want" | tr -d ' ')" ] ||
        fail "$name: count in chunks of 7 differs from the fixture"
    $PY $GEN chunks 5 "$FIX/$name.ids" | "$GPT2IN" decode > "$tmp/back" && cmp -s "$tmp/back" "$FIX/$name.txt" ||
        fail "$name: decode of ids in chunks of 5 does not give the fixture's bytes"
done

# ---- reading ahead: past the first MB, more than one thread read through a reader thread ---
$PY $GEN blocks "$tmp" > /dev/null
$PY $GEN text "$tmp" 5 > "$tmp/five.txt"
"$GPT2IN" encode --threads 1 --format u32 "$tmp/five.txt" > "$tmp/five.1" || fail "5 MB file, --threads 1"
for t in 2 3; do
    n=$((n + 1))
    "$GPT2IN" encode --threads $t --format u32 "$tmp/five.txt" | cmp -s - "$tmp/five.1" ||
        fail "5 MB file, --threads $t: ids differ from --threads 1"
    n=$((n + 1))
    $PY $GEN chunks 4095 "$tmp/five.txt" | "$GPT2IN" encode --threads $t --format u32 | cmp -s - "$tmp/five.1" ||
        fail "5 MB pipe in chunks of 4095, --threads $t: ids differ from the file's with --threads 1"
done
# An error after the first MB, from a pipe whose writer has not finished:
# the error is reported and the process exits without waiting for the end
# of the input (the reader thread may be blocked reading it).
mkfifo "$tmp/open.fifo"
head -c 1500000 "$tmp/five.txt" > "$tmp/three.txt"
printf '<|endoftext|>' >> "$tmp/three.txt"
tail -c 1500000 "$tmp/five.txt" >> "$tmp/three.txt"
(cat "$tmp/three.txt"; exec sleep 120) > "$tmp/open.fifo" &
writer=$!
n=$((n + 1))
"$GPT2IN" encode --threads 2 --format u32 < "$tmp/open.fifo" > /dev/null 2> "$tmp/err"
rc=$?
if kill -0 $writer 2> /dev/null; then
    kill $writer
    [ $rc = 2 ] && grep -q "special token <|endoftext|> is in the text at byte 1500000" "$tmp/err" ||
        fail "special token after 1.5 MB from an open pipe: exit $rc, $(cat "$tmp/err")"
else
    fail "special token after 1.5 MB from an open pipe: the process waited for the end of the input (exit $rc)"
fi
wait

# ---- 200 MB through encode in bounded memory ---------------------------------------------
if [ "$SANITIZED" = 1 ]; then
    echo "$n checks, $fails failed (the 200 MB run is skipped under the sanitizers)"
    [ $fails -eq 0 ]; exit
fi
if [ "${GPT2IN_CHECK:-0}" = 1 ]; then
    echo "$n checks, $fails failed (the 200 MB run is skipped: not in make check)"
    [ $fails -eq 0 ]; exit
fi
$PY $GEN blocks "$tmp"
for f in "$tmp"/block_*.txt; do
    "$GPT2IN" encode --format u32 "$f" > "${f%.txt}.u32" || { fail "encode $f"; break; }
done
MB=${GPT2IN_STREAM_MB:-200}
$PY $GEN ids "$tmp" $MB | cksum > "$tmp/want.sum"
n=$((n + 1))
if [ -x /usr/bin/time ]; then
    $PY $GEN text "$tmp" $MB | /usr/bin/time -v -o "$tmp/time.txt" "$GPT2IN" encode --format u32 2>"$tmp/err" | cksum > "$tmp/got.sum"
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$tmp/time.txt")
else
    # No /usr/bin/time: read gpt2in's high-water mark from /proc while it runs.
    mkfifo "$tmp/in.fifo" "$tmp/out.fifo"
    cksum < "$tmp/out.fifo" > "$tmp/got.sum" &
    $PY $GEN text "$tmp" $MB > "$tmp/in.fifo" &
    "$GPT2IN" encode --format u32 < "$tmp/in.fifo" > "$tmp/out.fifo" 2>"$tmp/err" &
    pid=$! rss=
    while [ -r /proc/$pid/status ]; do
        r=$(sed -n 's/^VmHWM: *\([0-9]*\) kB/\1/p' /proc/$pid/status 2>/dev/null); [ -n "$r" ] && rss=$r
        sleep 0.05
    done
    wait
fi
if cmp -s "$tmp/want.sum" "$tmp/got.sum"; then
    echo "$MB MB streamed: tokens equal the concatenation of the blocks' tokens ($(cut -d' ' -f2 "$tmp/want.sum") bytes of u32), peak RSS ${rss:-?} KB"
else
    fail "$MB MB streamed: tokens differ from the concatenation of the blocks' tokens (cksum $(cat "$tmp/got.sum") vs $(cat "$tmp/want.sum")) $(cat "$tmp/err")"
fi
n=$((n + 1))
[ -n "${rss:-}" ] && [ "$rss" -lt 65536 ] || fail "$MB MB streamed: peak RSS ${rss:-unknown} KB, limit 65536 KB"

# ---- --strict with <|endoftext|> too: the error that comes first, at every size ---------
for spec in "500:0:20000" "500:0:2000000" "0:1:8333" "0:1:250000"; do
    pad=${spec%%:*} rest=${spec#*:} space=${rest%%:*} reps=${rest#*:}
    $PY -c "import sys; sys.stdout.buffer.write(b'x' * $pad + b' ' * $space + b'<|endoftext|>' + b' hello world' * $reps + b'\xe4 tail')" >"$tmp/both.txt"
    for t in 1 2 3 7; do
        n=$((n + 1))
        "$GPT2IN" encode --strict --threads $t "$tmp/both.txt" >/dev/null 2>"$tmp/err"
        grep -q "special token <|endoftext|> is in the text at byte $((pad + space))" "$tmp/err" ||
            fail "--strict, <|endoftext|> at $((pad + space)) and bad UTF-8 after $reps words, $t threads: $(cat "$tmp/err")"
    done
done

# ---- page faults: two threads map their piece caches as one thread does -------------------
# Each thread's piece cache (1.5 MB) is on a huge page: one fault maps it.
# On small pages it took hundreds of faults a thread, each a zero page
# replaced and the other thread's TLB flushed (~1,000 more than one thread).
thp=$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)
if [ -x /usr/bin/time ] && [ -n "$thp" ] && case $thp in *"[never]"*) false ;; *) true ;; esac; then
    $PY $GEN text "$tmp" 8 > "$tmp/eight.txt"
    for t in 1 2; do
        /usr/bin/time -f %R -o "$tmp/faults.$t" "$GPT2IN" encode --threads $t --format u32 "$tmp/eight.txt" > "$tmp/eight.$t" 2>"$tmp/err" ||
            fail "8 MB file, --threads $t: $(cat "$tmp/err")"
    done
    n=$((n + 1))
    f1=$(tail -n 1 "$tmp/faults.1") f2=$(tail -n 1 "$tmp/faults.2")
    echo "8 MB file: $f1 page faults with one thread, $f2 with two"
    [ "$f2" -le $((f1 + 300)) ] || fail "8 MB file: $f2 page faults with two threads, $f1 with one (the caches on small pages?)"
    n=$((n + 1))
    cmp -s "$tmp/eight.1" "$tmp/eight.2" || fail "8 MB file: the ids of --threads 1 and --threads 2 differ"
fi

# ---- memory per thread: the README's bound, 12 MB + 8 MB a thread ------------------------
if [ -x /usr/bin/time ]; then
    for t in 1 8; do
        n=$((n + 1))
        $PY $GEN text "$tmp" 40 | /usr/bin/time -f %M -o "$tmp/rss.$t" "$GPT2IN" count --threads $t > /dev/null 2>"$tmp/err" ||
            { fail "40 MB through count --threads $t: $(cat "$tmp/err")"; continue; }
        rss=$(tail -n 1 "$tmp/rss.$t") bound=$(( (12 + 8 * t) * 1024 ))
        echo "40 MB through count --threads $t: peak RSS $rss KB (bound $bound KB)"
        [ "$rss" -le $bound ] || fail "count --threads $t: peak RSS $rss KB over the README's $bound KB"
    done
fi

echo "$n checks, $fails failed"
[ $fails -eq 0 ]
