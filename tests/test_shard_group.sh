#!/bin/sh
# The one-machine run groups consecutive inputs into units of --unit-bytes
# as it goes (a unit is closed by the fstat its last input gets anyway), not
# by a stat of every input first: without a progress line it names no input
# in a stat call (one syscall less a small file). Checked: the units are
# those the rule gives (a unit closed once its inputs hold --unit-bytes on
# disk), computed here from the sizes; a rerun finds them up to date and
# rewrites none; another --unit-bytes regroups them with the same shards
# and manifest; and, under strace, no input is stat'ed by name.
. tests/shard_setup.sh

mkdir "$d/in"
i=0
for n in 3000 500 9000 12000 100 2500 2500 2500 2500 7000 1 4000; do
    awk -v n="$n" -v i="$i" 'BEGIN { s = ""; while (length(s) < n) s = s "file " i " word " length(s) "\n"; printf "%s", substr(s, 1, n) }' \
        > "$d/in/$(printf '%02d' $i).txt"
    i=$((i + 1))
done
# expected units: a unit is closed once its inputs hold 10000 bytes
expect=$(ls "$d/in" | while read -r f; do stat -c %s "$d/in/$f"; done |
    awk 'BEGIN { first = 0; acc = 0 } { if (NR - 1 == first) printf "%06d.tok\n", first; acc += $1; if (acc >= 10000) { first = NR; acc = 0 } }')
run() { # OUT UNIT-BYTES
    "$GPT2IN" shard --quiet --keep-units --unit-bytes "$2" --shard-tokens 900 --out "$1" "$d"/in/*.txt > "$d/log" 2>&1 ||
        bad "shard --unit-bytes $2 failed: $(cat "$d/log")"
}
run "$d/a" 10000
got=$(ls "$d/a/corpus_units" | grep -v json)
[ "$got" = "$expect" ] || bad "units $(echo $got), expected $(echo $expect)"
ls -i "$d/a/corpus_units" > "$d/inodes1"
cp "$d/a/corpus_manifest.json" "$d/manifest1"
run "$d/a" 10000
ls -i "$d/a/corpus_units" > "$d/inodes2"
cmp -s "$d/inodes1" "$d/inodes2" || bad "a rerun rewrote units found up to date"
cmp -s "$d/manifest1" "$d/a/corpus_manifest.json" || bad "a rerun changed the manifest"
run "$d/b" 1
[ "$(ls "$d/b/corpus_units" | grep -vc json)" = 12 ] || bad "--unit-bytes 1: not one unit an input"
run "$d/c" 1G
[ "$(ls "$d/c/corpus_units" | grep -v json)" = 000000.tok ] || bad "--unit-bytes 1G: not one unit"
for o in b c; do
    for f in "$d"/a/*.bin "$d/a/corpus_manifest.json"; do
        cmp -s "$f" "$d/$o/$(basename "$f")" || bad "$o: $(basename "$f") differs from the run with other units"
    done
done

if command -v strace > /dev/null 2>&1 && strace -f -o /dev/null true 2> /dev/null; then
    rm -rf "$d/s"
    # (LeakSanitizer cannot run under ptrace)
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
        strace -f -o "$d/trace" -e trace=stat,lstat,newfstatat,statx,fstatat64 "$GPT2IN" shard --quiet --unit-bytes 10000 --shard-tokens 900 \
        --out "$d/s" "$d"/in/*.txt > "$d/log" 2>&1 || bad "shard under strace failed: $(cat "$d/log")"
    n=$(grep -c "$d/in/" "$d/trace")
    [ "$n" = 0 ] || bad "$n stat calls name an input: $(grep "$d/in/" "$d/trace" | head -n 2)"
    cmp -s "$d/s/corpus_manifest.json" "$d/manifest1" || bad "the run under strace wrote another manifest"
else
    echo "(no strace: the stat calls are not counted)"
fi
finish "shard group: units as the rule gives, found up to date, regrouped to the same bytes, no stat an input"
