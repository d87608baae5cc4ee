#!/bin/sh
# gpt2in shard, one machine: the run's last unit is never written to disk
# (its tokens are in the shards cut as they come; a kill redoes it), while
# the units before it are, with the bytes and sidecar --unit gives them
# (copied back from the shards being cut). A FIFO as the last input holds
# the run inside its last unit while the units directory is looked at.
# Checked: units 000000 (two inputs) and 000002 (one input) complete, equal
# to `--unit` runs of the same inputs, with their sidecars' sha256; no
# temporary file of the last unit (000003); the shards and manifest equal a
# run over a regular file with the FIFO's bytes; with --keep-units the last
# unit is written as before.
. tests/shard_setup.sh
mkfifo "$d/f" 2>/dev/null || { echo "skipped: cannot make a FIFO"; exit 77; }
mkdir "$d/in"
i=0
while [ $i -lt 300 ]; do echo "line $i of the first input, some words"; i=$((i + 1)); done > "$d/in/a.txt"
while [ $i -lt 500 ]; do echo "line $i of the second input, more words"; i=$((i + 1)); done > "$d/in/b.txt"
while [ $i -lt 2500 ]; do echo "line $i of the third input"; i=$((i + 1)); done > "$d/in/c.txt"
printf 'the last input, read from a FIFO\nand its second line\n' > "$d/last"
sa=$(stat -c %s "$d/in/a.txt"); sb=$(stat -c %s "$d/in/b.txt")
# units: {a, b} (a alone is below --unit-bytes), {c}, {f}
ub=$((sa + sb))
sha() { sha256sum "$1" | cut -d' ' -f1; }
field() { # FILE KEY: a top-level string or number of a compact sidecar
    sed -n "s/.*\"$2\":\"*\([0-9a-f]*\)\"*[,}][^{]*\$/\1/p" "$1"
}

o=$d/o
"$GPT2IN" shard --quiet --unit-bytes $ub --shard-tokens 700 --out "$o" "$d/in/a.txt" "$d/in/b.txt" "$d/in/c.txt" \
    "$d/f" 2>"$d/err" &
pid=$!
n=0
while [ $n -lt 1000 ] && ! [ -e "$o/corpus_units/000002.tok.json" ]; do sleep 0.01; n=$((n + 1)); done
sleep 0.2   # (the last unit has begun: it is blocked opening the FIFO)
[ -e "$o/corpus_units/000002.tok.json" ] || bad "units 000000 and 000002 were not written ($(cat "$d/err"))"
ls -A "$o/corpus_units" > "$d/units"
grep -q '000003' "$d/units" && bad "the run's last unit was written to disk: $(tr '\n' ' ' < "$d/units")"
[ "$(tr '\n' ' ' < "$d/units")" = "000000.tok 000000.tok.json 000002.tok 000002.tok.json " ] ||
    bad "units directory: $(tr '\n' ' ' < "$d/units")"
cp "$o/corpus_units/000000.tok" "$o/corpus_units/000000.tok.json" "$o/corpus_units/000002.tok" \
    "$o/corpus_units/000002.tok.json" "$d/" 2>/dev/null
# (not forever: a run that died opens no FIFO)
timeout 120 sh -c 'cat "$1" > "$2"' - "$d/last" "$d/f" || bad "the run did not open its last input"
wait $pid || bad "the run: exit $? ($(cat "$d/err"))"
[ -d "$o/corpus_units" ] && bad "the units directory was not removed"

# the units before the last: as --unit writes them
"$GPT2IN" shard --quiet --unit "$d/u0.tok" "$d/in/a.txt" "$d/in/b.txt" || bad "--unit a b: exit $?"
"$GPT2IN" shard --quiet --unit "$d/u2.tok" "$d/in/c.txt" || bad "--unit c: exit $?"
cmp -s "$d/000000.tok" "$d/u0.tok" || bad "unit 000000 (two inputs) differs from --unit's"
cmp -s "$d/000002.tok" "$d/u2.tok" || bad "unit 000002 differs from --unit's"
for k in 0 2; do
    s=$(field "$d/00000$k.tok.json" tokens_sha256)
    [ -n "$s" ] && [ "$s" = "$(sha "$d/00000$k.tok")" ] ||
        bad "unit 00000$k: the sidecar's tokens_sha256 ($s) is not the unit's ($(sha "$d/00000$k.tok"))"
    [ "$(field "$d/00000$k.tok.json" tokens)" = "$(field "$d/u$k.tok.json" tokens)" ] ||
        bad "unit 00000$k: tokens differ from --unit's sidecar"
done

# the shards and manifest: as a run over a regular file with the same bytes
rm "$d/f"
cp "$d/last" "$d/f"
"$GPT2IN" shard --quiet --unit-bytes $ub --shard-tokens 700 --out "$d/ref" "$d/in/a.txt" "$d/in/b.txt" "$d/in/c.txt" \
    "$d/f" || bad "reference run: exit $?"
[ "$(ls "$d/ref" | wc -l)" -ge 3 ] || bad "the reference run wrote $(ls "$d/ref" | wc -l) files, want 3 at least"
for f in "$d/ref"/*; do cmp -s "$f" "$o/${f##*/}" || bad "${f##*/} differs from a run over a regular file"; done
[ "$(ls "$o" | tr '\n' ' ')" = "$(ls "$d/ref" | tr '\n' ' ')" ] || bad "files: $(ls "$o" | tr '\n' ' ')"

# --keep-units: the last unit too
"$GPT2IN" shard --quiet --keep-units --unit-bytes $ub --shard-tokens 700 --out "$d/k" "$d/in/a.txt" "$d/in/b.txt" \
    "$d/in/c.txt" "$d/f" || bad "--keep-units: exit $?"
[ -e "$d/k/corpus_units/000003.tok.json" ] || bad "--keep-units: the last unit was not kept: $(ls "$d/k/corpus_units" | tr '\n' ' ')"
for f in "$d/ref"/*; do cmp -s "$f" "$d/k/${f##*/}" || bad "--keep-units: ${f##*/} differs"; done

finish
