#!/bin/sh
# gpt2in shard --threads 1 parses JSON Lines on its main thread (the
# worker only encodes); with more threads the workers parse. Both ways
# give the same shards, manifest and messages: JSON Lines of ~4 MB (six
# batches and more, so that every slot of the job ring is used again) with
# bad lines scattered (malformed, not an object, no field, a number,
# invalid UTF-8, an unpaired surrogate escape that is taken as U+FFFD),
# raw, zstd and gzip (gzip is parsed by the workers even with one), under
# --on-error skip and fail.
. tests/shard_setup.sh
[ -x /usr/bin/python3 ] || { echo "skipped: no /usr/bin/python3"; exit 77; }
/usr/bin/python3 - "$d/c.jsonl" <<'PY'
import json, random, sys
random.seed(1806)
words = "the of and a to in is was he for it with as his on be at by I had not".split()
with open(sys.argv[1], "wb") as f:
    # each bad kind one line in 1000, a blank line two in 1000
    bad = [b'{"text": "cut short\n', b'[1, 2, 3]\n', b'{"other": "no text field"}\n', b'{"text": 42}\n',
           b'{"text": "bad \xff byte"}\n', b'{"text": "lone \\ud800 surrogate"}\n', b'\n', b'\n']
    for i in range(30000):
        k = int(random.random() * 1000)
        if k < len(bad):
            f.write(bad[k])
        else:
            t = " ".join(random.choice(words) for _ in range(random.randint(1, 60)))
            f.write(json.dumps({"id": i, "text": t}).encode() + b"\n")
PY
zstd -q "$d/c.jsonl" -o "$d/z.jsonl.zst" 2>/dev/null || cp "$d/c.jsonl" "$d/z.jsonl"
gzip -c "$d/c.jsonl" > "$d/g.jsonl.gz"
for f in c.jsonl z.jsonl.zst g.jsonl.gz; do
    [ -f "$d/$f" ] || continue
    for T in 1 2 3; do
        "$GPT2IN" shard --out "$d/o$T" --on-error skip --threads $T --shard-tokens 300000 "$d/$f" 2>"$d/err$T" ||
            bad "$f, skip, threads $T: exit $?"
        "$GPT2IN" shard --out "$d/f$T" --threads $T "$d/$f" 2>"$d/ferr$T"
        rc=$?
        [ $rc -eq 2 ] || bad "$f, fail, threads $T: exit $rc, want 2"
        head -n 1 "$d/ferr$T" > "$d/ferr1st$T"
    done
    [ "$(ls "$d/o1" | wc -l)" -ge 3 ] || bad "$f: want 2 shards at least"
    grep -q 'skipped' "$d/err1" || bad "$f: no skip messages: $(head -c 300 "$d/err1")"
    for T in 2 3; do
        for x in "$d/o1"/*; do cmp -s "$x" "$d/o$T/${x##*/}" || bad "$f: threads 1 and $T: ${x##*/} differs"; done
        cmp -s "$d/err1" "$d/err$T" || bad "$f: threads 1 and $T: other messages"
        cmp -s "$d/ferr1st1" "$d/ferr1st$T" || bad "$f, fail: threads 1 and $T: $(cat "$d/ferr1st1") / $(cat "$d/ferr1st$T")"
    done
    rm -rf "$d"/o? "$d"/f?
done
# Compressed data cut short after bad lines (decompressed on a thread of
# its own, a chunk ahead): the lines before the cut are reported first, in
# input order, then the cut; the same messages whatever the threads.
for z in z.jsonl.zst g.jsonl.gz; do
    [ -f "$d/$z" ] || continue
    size=$(wc -c < "$d/$z")
    head -c $((size * 2 / 3)) "$d/$z" > "$d/cut.$z"
    for mode in skip fail; do
        for T in 1 2 3; do
            "$GPT2IN" shard --out "$d/o$T" --on-error $mode --threads $T "$d/cut.$z" 2>"$d/err$T" &&
                bad "cut $z, $mode, threads $T: exit 0"
        done
        for T in 2 3; do
            cmp -s "$d/err1" "$d/err$T" || bad "cut $z, $mode: threads 1 and $T: other messages"
        done
        case $mode in
        skip) grep -q 'skipped' "$d/err1" && tail -n 1 "$d/err1" | grep -q 'truncated' ||
                  bad "cut $z, skip: want the skipped lines, then the cut: $(tail -n 2 "$d/err1")" ;;
        fail) [ "$(wc -l < "$d/err1")" -eq 1 ] && grep -q 'malformed\|not a\|no field\|UTF-8' "$d/err1" ||
                  bad "cut $z, fail: want the first bad line alone: $(head -n 2 "$d/err1")" ;;
        esac
        rm -rf "$d"/o?
    done
done
finish
