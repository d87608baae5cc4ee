#!/bin/sh
# gpt2in shard, killed and rerun: kill -9 while it tokenizes and while it
# writes shards; after each kill every file under a shard's name is a
# complete shard (byte-identical to an uninterrupted run's), and the rerun
# with the same arguments gives exactly the uninterrupted run's files. The
# shards the manifest records are kept (same inode), unless damaged or
# missing; a unit damaged on disk is redone; a rerun with other shard sizes
# leaves no stale shard behind.
. tests/shard_setup.sh
[ -x /usr/bin/python3 ] || { echo "skipped: no /usr/bin/python3"; exit 77; }
/usr/bin/python3 tests/gen_shard_corpus.py "$d/c" 2 || exit 2
# --unit-bytes 6K: ~24 units of one or a few files (kept after `shift 6` below)
set -- --quiet --split-lines --shard-tokens 2000 --val-tokens 3000 --unit-bytes 6K "$d/c/docs.jsonl" "$d/c/many"/*.txt \
    "$d/c/lines.txt"
"$GPT2IN" shard --out "$d/ref" "$@" || { echo "FAIL: reference run: exit $?"; exit 1; }
nref=$(ls "$d/ref"/*.bin | wc -l)
[ "$nref" -ge 20 ] || bad "want 20 shards at least for this test, got $nref"

same_as_ref() { # DIR WHAT
    for f in "$d/ref"/*; do
        cmp -s "$f" "$1/${f##*/}" || bad "$2: ${f##*/} differs from the uninterrupted run"
    done
    extra=$(cd "$1" && ls -A | grep -v -x -F "$(cd "$d/ref" && ls -A)")
    [ -z "$extra" ] || bad "$2: files left over: $extra"
}
# Every file under a shard's name is complete: equal to the reference's.
no_partial() { # DIR WHAT
    for f in "$1"/*.bin; do
        [ -e "$f" ] || continue
        cmp -s "$f" "$d/ref/${f##*/}" || bad "$2: ${f##*/} is not a complete shard"
    done
}
# Runs it in the background and kills it with SIGKILL once the file test
# `$2` holds (polled every 10 ms), or lets it finish. Prints "killed" or "done".
kill_when() { # DIR CONDITION ARGS...
    o=$1 cond=$2
    shift 2
    "$GPT2IN" shard --out "$o" "$@" &
    pid=$!
    i=0
    while [ $i -lt 3000 ]; do
        if eval "$cond"; then kill -9 $pid 2>/dev/null && { wait $pid 2>/dev/null; echo killed; return; }; fi
        kill -0 $pid 2>/dev/null || break
        sleep 0.01; i=$((i + 1))
    done
    wait $pid
    echo done
}

# ---- killed while tokenizing: some units complete, no shard yet --------------------
kills=0
for n in 3 20; do
    o=$d/k$n
    r=$(kill_when "$o" "[ \$(ls $o/corpus_units/*.json 2>/dev/null | wc -l) -ge $n ]" "$@")
    [ "$r" = killed ] && kills=$((kills + 1))
    no_partial "$o" "killed at unit $n"
    for j in "$o"/corpus_units/*.json; do
        [ -e "$j" ] || continue
        /usr/bin/python3 -c 'import json,os,sys; j=json.load(open(sys.argv[1])); assert os.path.getsize(sys.argv[1][:-5]) == 2 * j["tokens"]' "$j" ||
            bad "killed at unit $n: ${j##*/} names an incomplete unit"
    done
    "$GPT2IN" shard --out "$o" "$@" || bad "rerun after the kill at unit $n: exit $?"
    same_as_ref "$o" "killed at unit $n, rerun"
done

# ---- killed while writing shards ---------------------------------------------------------
for n in 2 10; do
    o=$d/s$n
    r=$(kill_when "$o" "[ \$(ls $o/*.bin 2>/dev/null | wc -l) -ge $n ]" "$@")
    [ "$r" = killed ] && kills=$((kills + 1))
    no_partial "$o" "killed after $n shards"
    # The shards the manifest records must be kept as they are (a shard is
    # named in the manifest before its rename: a kill between the two
    # leaves it unnamed, redone). Every shard in DIR is one it records.
    kept=$(/usr/bin/python3 -c 'import json,sys; print(" ".join(s["file"] for s in json.load(open(sys.argv[1]))["shards"]))' \
           "$o/corpus_manifest.json" 2>/dev/null)
    ino=""
    for f in $kept; do [ -e "$o/$f" ] && ino="$ino $f:$(stat -c %i "$o/$f")"; done
    for f in "$o"/*.bin; do
        [ -e "$f" ] || continue
        case " $kept " in *" ${f##*/} "*) ;; *) bad "killed after $n shards: ${f##*/} is in DIR, not in the manifest" ;; esac
    done
    "$GPT2IN" shard --out "$o" "$@" || bad "rerun after the kill after $n shards: exit $?"
    same_as_ref "$o" "killed after $n shards, rerun"
    for e in $ino; do
        [ "$(stat -c %i "$o/${e%%:*}")" = "${e#*:}" ] || bad "killed after $n shards: ${e%%:*} was rewritten, not kept"
    done
done
[ $kills -ge 2 ] || bad "only $kills of 4 runs were killed before they ended (the test did not test)"

# ---- a complete run, then a damaged and a missing shard ---------------------------------------
o=$d/ref2
cp -a "$d/ref" "$o"
printf 'X' | dd of="$o/corpus_train_000003.bin" bs=1 seek=2000 conv=notrunc 2>/dev/null
rm "$o/corpus_train_000005.bin"
i7=$(stat -c %i "$o/corpus_train_000007.bin"); i3=$(stat -c %i "$o/corpus_train_000003.bin")
"$GPT2IN" shard --out "$o" "$@" || bad "rerun over damage: exit $?"
same_as_ref "$o" "damaged + missing shard, rerun"
[ "$(stat -c %i "$o/corpus_train_000007.bin")" = "$i7" ] || bad "an intact shard was rewritten"
[ "$(stat -c %i "$o/corpus_train_000003.bin")" = "$i3" ] && bad "the damaged shard was kept"

# ---- a unit damaged after the fact (the run does not fsync its units): redone ----------------
ou=$d/ku
"$GPT2IN" shard --out "$ou" --keep-units "$@" || bad "--keep-units: exit $?"
printf 'X' | dd of="$ou/corpus_units/000000.tok" bs=1 seek=100 conv=notrunc 2>/dev/null
rm "$ou/corpus_val_000000.bin"
"$GPT2IN" shard --out "$ou" "$@" 2>"$d/err" || bad "rerun over a damaged unit: exit $? ($(cat "$d/err"))"
same_as_ref "$ou" "damaged unit, rerun"

# ---- an input edited in place, same size and mtime, under a killed run: its unit redone -------
# (cp -p, rsync -t and touch -r put the mtime back; the unit's sidecar
# records the input's sha256, which the rerun checks)
cp -rp "$d/c" "$d/c2"
e2=$d/e2
"$GPT2IN" shard --out "$e2" --keep-units --quiet --unit-bytes 6K "$d/c2/docs.jsonl" "$d/c2/lines.txt" || bad "edit: first run: exit $?"
rm -f "$e2"/*.bin "$e2"/corpus_manifest.json   # as if killed before its shards
touch -r "$d/c2/docs.jsonl" "$d/stamp"
grep -q ' a' "$d/c2/docs.jsonl" || bad "edit: the corpus has no ' a' to change"
sed -i '0,/ a/s// A/' "$d/c2/docs.jsonl"
touch -r "$d/stamp" "$d/c2/docs.jsonl"
"$GPT2IN" shard --out "$e2" --quiet --unit-bytes 6K "$d/c2/docs.jsonl" "$d/c2/lines.txt" 2>"$d/err" || bad "edit: rerun: exit $? ($(cat "$d/err"))"
"$GPT2IN" shard --out "$d/e2fresh" --quiet --unit-bytes 6K "$d/c2/docs.jsonl" "$d/c2/lines.txt" 2>"$d/err" || bad "edit: fresh run: exit $? ($(cat "$d/err"))"
for f in "$d/e2fresh"/*; do
    cmp -s "$f" "$e2/${f##*/}" || bad "an input edited with its size and mtime kept: ${f##*/} differs from a fresh run"
done

# ---- a FIFO input under a killed run, size and mtime as recorded: never read twice -----
# (the rerun must not read the FIFO to hash it, which would eat its data)
if mkfifo "$d/ff" 2>/dev/null; then
    : > "$d/ff" &   # empty the first time: its recorded size is the FIFO's 0
    "$GPT2IN" shard --out "$d/fo" --keep-units --quiet "$d/ff" || bad "fifo: first run: exit $?"
    wait
    rm -f "$d/fo"/*.bin "$d/fo"/corpus_manifest.json
    printf 'four five six\n' > "$d/ff" &
    # the writer waits for a reader; the FIFO gets the mtime its unit records
    /usr/bin/python3 -c 'import json, os, sys
m = json.load(open(sys.argv[1]))["inputs"][0]["mtime_ns"]
os.utime(sys.argv[2], ns=(m, m))' "$d/fo/corpus_units/000000.tok.json" "$d/ff" || bad "fifo: no unit sidecar to read"
    timeout 20 "$GPT2IN" shard --out "$d/fo" --keep-units --quiet "$d/ff" 2>"$d/err" || bad "fifo: rerun: exit $? ($(cat "$d/err"))"
    kill $! 2>/dev/null; wait 2>/dev/null
    printf 'four five six\n' > "$d/f2.txt"
    "$GPT2IN" shard --out "$d/fo2" --quiet "$d/f2.txt" || bad "fifo: reference: exit $?"
    cmp -s "$d/fo/corpus_val_000000.bin" "$d/fo2/corpus_val_000000.bin" ||
        bad "a FIFO input rerun: its tokens are not the new data's"
fi

# ---- other shard sizes over an earlier run: nothing stale --------------------------------------
shift 6
"$GPT2IN" shard --out "$o" --quiet --split-lines --shard-tokens 5000 --val-tokens 3000 "$@" || bad "other sizes: exit $?"
"$GPT2IN" shard --out "$d/fresh" --quiet --split-lines --shard-tokens 5000 --val-tokens 3000 "$@" || bad "fresh: exit $?"
(cd "$d/fresh" && ls -A) > "$d/l1"; (cd "$o" && ls -A) > "$d/l2"
cmp -s "$d/l1" "$d/l2" || bad "other sizes over an earlier run: files $(cat "$d/l2" | tr '\n' ' ') vs $(cat "$d/l1" | tr '\n' ' ')"
for f in "$d/fresh"/*; do cmp -s "$f" "$o/${f##*/}" || bad "other sizes: ${f##*/} differs"; done
echo "$kills of 4 runs killed mid-way"
finish
