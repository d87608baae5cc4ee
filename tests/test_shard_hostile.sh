#!/bin/sh
# gpt2in shard on hostile inputs and damaged files (tester7's findings): an
# input truncated while mapped, a --unit whose token file was damaged or
# whose run was killed, zstd starting with a skippable frame (pzstd), huge
# numbers in ignored JSON fields, control bytes in messages, error offsets;
# files in --out DIR that no run wrote, NaN in JSON, a BOM, gzip zero padding
# (tester9's).
# Each case: one line, exit 2, or the same result as a clean run.
set -u
: "${GPT2IN:=build/gpt2in}"
[ -x "$GPT2IN" ] || { echo "skipped: $GPT2IN is not built"; exit 77; }
case $GPT2IN in /*) ;; *) GPT2IN=$(pwd)/$GPT2IN ;; esac
d=$(mktemp -d) || exit 2
trap 'rm -rf "$d"' EXIT
fail=0
bad() { printf 'FAIL: %s\n' "$*"; fail=1; }
G() { "$GPT2IN" shard --quiet "$@"; }
run() { eval "$1" > "$d/out" 2> "$d/err"; rc=$?; }
oneline() { # WHAT: exit 2, one line on stderr
    [ $rc -eq 2 ] || bad "$1: exit $rc, expected 2: $(head -c 300 "$d/err")"
    [ "$(wc -l < "$d/err")" -eq 1 ] || bad "$1: not one line: $(head -c 300 "$d/err")"
}

# ---- a whole-file document truncated while mapped (tests/shrink_mapped.c) ----
if cc -shared -fPIC -o "$d/shrink.so" tests/shrink_mapped.c -ldl 2> /dev/null; then
    /usr/bin/env python3 -c "print(('hello world ' * 90 + chr(10)) * 3000, end='')" > "$d/shr.txt"
    for t in 1 2; do
        cp "$d/shr.txt" "$d/shr$t.txt"
        run "GPT2IN_SHRINK=\"\$d/shr$t.txt\" LD_PRELOAD=\"\$d/shrink.so\" ASAN_OPTIONS=verify_asan_link_order=0 \
             G --threads $t --out \"\$d/osh$t\" \"\$d/shr$t.txt\""
        oneline "shard --threads $t of a text truncated while mapped"
        grep -q "shr$t.txt.*shrank" "$d/err" || bad "shard --threads $t, truncated input: not named: $(cat "$d/err")"
        cp "$d/shr.txt" "$d/shr$t.txt"
        run "GPT2IN_SHRINK=\"\$d/shr$t.txt\" LD_PRELOAD=\"\$d/shrink.so\" ASAN_OPTIONS=verify_asan_link_order=0 \
             G --threads $t --unit \"\$d/ush$t\" \"\$d/shr$t.txt\""
        oneline "shard --unit of a text truncated while mapped"
        [ -z "$(ls -A "$d" | grep "^\.ush$t")" ] || bad "shard --unit, truncated input: temporary file left"
    done
else
    echo "note: no cc for tests/shrink_mapped.c: truncation while mapped not checked"
fi

# ---- --unit: a damaged token file is redone; a killed run's temporaries go ----
for i in 1 2; do printf '{"text":"doc %s hello"}\n' $i > "$d/f$i.jsonl"; done
mkdir "$d/uv"
G --unit "$d/uv/u" "$d/f1.jsonl" "$d/f2.jsonl" || bad "--unit: exit $?"
cp "$d/uv/u" "$d/good"
/usr/bin/env python3 -c "import sys; b=bytearray(open(sys.argv[1],'rb').read()); b[3]^=1; open(sys.argv[1],'r+b').write(b)" "$d/uv/u"
: > "$d/uv/.u.tmp.AbC123"; : > "$d/uv/.u.json.tmp.xYz789"   # as kill -9 leaves them
: > "$d/uv/.u.tmp.keep"; : > "$d/uv/.v.tmp.AbC123"; mkdir "$d/uv/.u.tmp.DiR456"   # not its own
run 'G --unit "$d/uv/u" "$d/f1.jsonl" "$d/f2.jsonl"'
[ $rc -eq 0 ] || bad "--unit over a damaged unit: exit $rc: $(cat "$d/err")"
cmp -s "$d/uv/u" "$d/good" || bad "--unit rerun kept a damaged token file"
G --assemble --out "$d/uvo" "$d/uv/u" || bad "--assemble after the redone unit: exit $?"
left=$(LC_ALL=C ls -A "$d/uv" | tr '\n' ' ')
[ "$left" = ".u.tmp.DiR456 .u.tmp.keep .v.tmp.AbC123 u u.json " ] || bad "--unit rerun: files left: $left"

# ---- zstd: a skippable frame first (pzstd's output); a window too large ----
seq 1 3 | sed 's/.*/{"text":"line &"}/' > "$d/c.jsonl"
G --out "$d/zref" "$d/c.jsonl" || bad "shard of c.jsonl: exit $?"
if command -v zstd > /dev/null; then
    # a skippable frame (magic 0x184D2A5n, 4 bytes of length, its bytes) before the data
    { printf '\123\052\115\030\003\000\000\000abc'; zstd -q -c "$d/c.jsonl"; } > "$d/c.jsonl.zst"
    zstd -dc "$d/c.jsonl.zst" | cmp -s - "$d/c.jsonl" || bad "test setup: zstd does not read the skippable frame"
    run 'G --out "$d/zskip" "$d/c.jsonl.zst"'
    [ $rc -eq 0 ] || bad "zstd with a skippable frame first: exit $rc: $(cat "$d/err")"
    cmp -s "$d/zref/corpus_val_000000.bin" "$d/zskip/corpus_val_000000.bin" ||
        bad "zstd with a skippable frame first: other tokens"
    if command -v pzstd > /dev/null; then
        cp "$d/c.jsonl" "$d/c.txt"; G --out "$d/zt" "$d/c.txt"
        pzstd -q -c "$d/c.txt" > "$d/c.txt.zst"
        run 'G --out "$d/zp" "$d/c.txt.zst"'
        [ $rc -eq 0 ] && cmp -s "$d/zt/corpus_val_000000.bin" "$d/zp/corpus_val_000000.bin" ||
            bad "pzstd text: exit $rc or other tokens: $(cat "$d/err")"
    fi
    zstd -q --long=31 -c < "$d/c.jsonl" > "$d/long.jsonl.zst"
    run 'G --out "$d/zl" "$d/long.jsonl.zst"'
    oneline "zstd --long=31"
    grep -q "long.jsonl.zst: zstd window too large" "$d/err" || bad "zstd --long=31: not named so: $(cat "$d/err")"
else
    echo "note: no zstd: skippable frames not checked"
fi

# ---- gzip: zero padding after a member (block devices, tape archives), which gzip and
# Python's gzip skip (tester9 T8); anything else after it is still an error ----
if command -v gzip > /dev/null; then
    { gzip -c "$d/c.jsonl"; head -c 5000 /dev/zero; } > "$d/pad.jsonl.gz"
    run 'G --out "$d/zpad" "$d/pad.jsonl.gz"'
    [ $rc -eq 0 ] || bad "gzip with zero padding: exit $rc: $(cat "$d/err")"
    cmp -s "$d/zref/corpus_val_000000.bin" "$d/zpad/corpus_val_000000.bin" || bad "gzip with zero padding: other tokens"
    { gzip -c "$d/c.jsonl"; head -c 70 /dev/zero; printf 'junk'; } > "$d/padj.jsonl.gz"
    run 'G --out "$d/zpadj" "$d/padj.jsonl.gz"'
    oneline "gzip with zero padding, then junk"
else
    echo "note: no gzip: zero padding not checked"
fi

# ---- JSON Lines: numbers past double or 64 bits in ignored fields (json.loads takes them) ----
# with simdjson (gpt2in-shard-json.so) and without it (jansson alone)
mkdir "$d/nolib"; cp "$GPT2IN" "$(dirname "$GPT2IN")/gpt2in-shard" "$d/nolib/"
cat > "$d/big.jsonl" <<'END'
{"id":1e400,"text":"a"}
{"id":18446744073709551616,"text":"b","n":[-1E+999, 0.5e-99999, {"s":"1e400\"1e400"}]}
{"id":123456789012345678901234567890,"text":"c","z":-0}
END
# NaN, Infinity, -Infinity in ignored fields, as Python's json.dumps writes float scores (tester9 T3)
cat > "$d/nan.jsonl" <<'END'
{"id":NaN,"text":"a"}
{"id":Infinity,"text":"b","n":[-Infinity, NaN, {"s":"NaN\"-Infinity"}]}
{"id":1e400,"text":"c","z":-Infinity}
END
/usr/bin/env python3 -c 'import json; print(json.dumps({"score": float("nan"), "text": "a"}))' > "$d/pynan.jsonl"
grep -q NaN "$d/pynan.jsonl" || bad "test setup: json.dumps wrote no NaN"
# a UTF-8 BOM opening a JSON Lines file, as Windows editors write it (tester9 T2)
printf '\357\273\277{"text":"a"}\n{"text":"b"}\n{"text":"c"}\n' > "$d/bom.jsonl"
printf '{"text":"a"}\n{"text":"b"}\n{"text":"c"}\n' > "$d/small.jsonl"
G --out "$d/nref" "$d/small.jsonl" || bad "shard of small.jsonl: exit $?"
printf '{"text": "a"}\n' > "$d/one.jsonl"
G --out "$d/pyref" "$d/one.jsonl" "$d/small.jsonl" || bad "shard of one.jsonl small.jsonl: exit $?"
for g in "$GPT2IN" "$d/nolib/gpt2in"; do
    run '"$g" shard --quiet --out "$d/nbig" "$d/big.jsonl"'
    [ $rc -eq 0 ] || bad "$g: huge numbers in ignored fields: exit $rc: $(cat "$d/err")"
    cmp -s "$d/nref/corpus_val_000000.bin" "$d/nbig/corpus_val_000000.bin" || bad "$g: huge numbers: other tokens"
    rm -rf "$d/nbig"
    for f in nan bom; do
        run '"$g" shard --quiet --out "$d/n$f" "$d/$f.jsonl"'
        [ $rc -eq 0 ] || bad "$g: $f.jsonl: exit $rc: $(cat "$d/err")"
        cmp -s "$d/nref/corpus_val_000000.bin" "$d/n$f/corpus_val_000000.bin" || bad "$g: $f.jsonl: other tokens"
        rm -rf "$d/n$f"
    done
    run '"$g" shard --quiet --out "$d/npy" "$d/pynan.jsonl" "$d/small.jsonl"'
    [ $rc -eq 0 ] || bad "$g: json.dumps's NaN: exit $rc: $(cat "$d/err")"
    cmp -s "$d/pyref/corpus_val_000000.bin" "$d/npy/corpus_val_000000.bin" || bad "$g: json.dumps's NaN: other tokens"
    rm -rf "$d/npy"
    for l in '{"id":01,"text":"a"}' '{"id":1e400,"text":1e400}' '{"id":1e400,"text":"a"' '{"id":1.e400,"text":"a"}' \
             '{"id":-NaN,"text":"a"}' '{"id":+Infinity,"text":"a"}' '{"id":nan,"text":"a"}' '{"id":NaN,"text":NaN}' \
             '{"id":NaNa,"text":"a"}' '{"id":Infinit,"text":"a"}'; do
        printf '%s\n' "$l" > "$d/bad.jsonl"
        run '"$g" shard --quiet --out "$d/nbad" "$d/bad.jsonl"'
        grep -v 'parsed by jansson alone' "$d/err" > "$d/err2"; mv "$d/err2" "$d/err"   # (nolib's warning)
        oneline "$g: the bad line $l"
    done
done

# ---- bad JSON: control bytes escaped; the position is the bad token's start ----
# (line 2 starts at byte 13)
msg() { # LINE2 OFFSET WHAT: the message for a file {"text":"a"} + LINE2
    printf '{"text":"a"}\n%b\n' "$1" > "$d/m.jsonl"
    run 'G --out "$d/om" "$d/m.jsonl"'
    oneline "bad line 2 $1"
    grep -q -F -e "m.jsonl:2: byte $2: $3" "$d/err" || bad "bad line 2 $1: want byte $2: $3, got: $(od -c "$d/err" | head -5)"
}
msg '\033[31mRED' 13 "malformed JSON: invalid token near '\\x1b'"
msg '\f' 13 "malformed JSON: invalid token near '\\x0c'"
msg '\v' 13 "malformed JSON: invalid token near '\\x0b'"
msg '\357\273\277{"text":"b"}' 13 "malformed JSON: invalid token near '\\xef\\xbb\\xbf'"
msg '{"text":"b",  "x":tru}' 31 "malformed JSON: invalid token near 'tru'"
msg '{"text":"b" "c"}' 25 "malformed JSON: '}' expected near '\\\"c\\\"'"

# ---- files in DIR that no run wrote (tester9 T1, T4, T5): refused by name or left, never removed ----
# A run removes only what it can show a run of it wrote: the shards its
# manifest records, temporaries named as it names its own, its unit files.
printf 'doc one\n' > "$d/a.txt"; printf 'doc two\n' > "$d/b.txt"
nothing_new() { # DIR WHAT LIST: DIR holds exactly LIST (ls -A, one line)
    [ "$(LC_ALL=C ls -A "$1" | tr '\n' ' ')" = "$3" ] || bad "$2: DIR holds $(LC_ALL=C ls -A "$1" | tr '\n' ' '), want $3"
}
mkdir "$d/t1"
printf 'mine\n' > "$d/t1/corpus_train_000005.bin"
run 'G --out "$d/t1" "$d/a.txt"'
oneline "a file named as a shard that no manifest records"
grep -q "t1/corpus_train_000005.bin: named as this run's shards, but no manifest" "$d/err" || bad "unrecorded shard: $(cat "$d/err")"
nothing_new "$d/t1" "unrecorded shard" "corpus_train_000005.bin "
mv "$d/t1/corpus_train_000005.bin" "$d/t1/corpus_val_000042.bin"
run 'G --out "$d/t1" "$d/a.txt"'
oneline "a file named as the val shard that no manifest records"
nothing_new "$d/t1" "unrecorded val shard" "corpus_val_000042.bin "
run 'G --assemble --out "$d/t1" "$d/uv/u"'
oneline "--assemble over a file named as a shard that no manifest records"
nothing_new "$d/t1" "--assemble, unrecorded shard" "corpus_val_000042.bin "
rm "$d/t1/corpus_val_000042.bin"
printf '{"mine": true}\n' > "$d/t1/corpus_manifest.json"
run 'G --out "$d/t1" "$d/a.txt"'
oneline "a NAME_manifest.json that is not a manifest"
grep -q "corpus_manifest.json: not a manifest of gpt2in shard" "$d/err" || bad "foreign manifest: $(cat "$d/err")"
grep -q mine "$d/t1/corpus_manifest.json" || bad "a foreign NAME_manifest.json was replaced"
rm "$d/t1/corpus_manifest.json"; printf 'x\n' > "$d/t1/corpus_units"
run 'G --out "$d/t1" "$d/a.txt"'
oneline "NAME_units that is a file"
nothing_new "$d/t1" "NAME_units a file" "corpus_units "
rm "$d/t1/corpus_units"
# user files in a folder named NAME_units, and hidden names near the run's temporaries
mkdir -p "$d/t1/corpus_units/photos"
printf 'precious\n' > "$d/t1/corpus_units/notes.txt"; printf 'precious\n' > "$d/t1/corpus_units/photos/cat.jpg"
printf 'precious\n' > "$d/t1/corpus_units/000000.txt"
for f in .corpus_notes.tmp.1 .corpus_x.tmp.y .corpus_train_000007.bin.tmp.abcdefg .corpus_val_000000.bin.tmp.AB-123 \
         .corpus_val_000000.bin.tmp.AbC123 .corpus_manifest.json.tmp.XYZ123 .corpus_train_000003.bin.tmp.q1w2e3; do
    printf 'x\n' > "$d/t1/$f"
done
mkdir "$d/t1/.corpus_val_000000.bin.tmp.DiR456"
run 'G --out "$d/t1" --unit-bytes 1 "$d/a.txt" "$d/b.txt"'
[ $rc -eq 0 ] || bad "run over user files in DIR: exit $rc: $(cat "$d/err")"
nothing_new "$d/t1" "run over user files" ".corpus_notes.tmp.1 .corpus_train_000007.bin.tmp.abcdefg \
.corpus_val_000000.bin.tmp.AB-123 .corpus_val_000000.bin.tmp.DiR456 .corpus_x.tmp.y corpus_manifest.json corpus_units \
corpus_val_000000.bin "
nothing_new "$d/t1/corpus_units" "run over user files, NAME_units" "000000.txt notes.txt photos "
nothing_new "$d/t1/corpus_units/photos" "run over user files, NAME_units/photos" "cat.jpg "
# an earlier run's shards (the manifest records them) past the new last one go
G --out "$d/t2" --shard-tokens 1 --val-tokens 1 "$d/a.txt" || bad "t2: exit $?"
G --out "$d/t2" "$d/a.txt" || bad "t2 rerun with other sizes: exit $?"
nothing_new "$d/t2" "rerun with other sizes" "corpus_manifest.json corpus_val_000000.bin "
# an input that is a temporary the run removes, by name or a symlink: refused, kept (T4)
mkdir "$d/t4"; printf 'my only copy\n' > "$d/t4/.corpus_val_000000.bin.tmp.mydata"
run 'G --out "$d/t4" "$d/a.txt" "$d/t4/.corpus_val_000000.bin.tmp.mydata"'
oneline "an input that is a temporary the run removes"
grep -q "is a temporary file a killed run left" "$d/err" || bad "input temporary: $(cat "$d/err")"
ln -s "$d/t4/.corpus_val_000000.bin.tmp.mydata" "$d/t4link"
run 'G --out "$d/t4" "$d/t4link"'
oneline "an input linked to a temporary the run removes"
grep -q "t4link is .*t4/.corpus_val_000000.bin.tmp.mydata, a temporary file" "$d/err" || bad "input linked to a temporary: $(cat "$d/err")"
nothing_new "$d/t4" "input temporary" ".corpus_val_000000.bin.tmp.mydata "
mkdir -p "$d/t4u/corpus_units"; printf 'x\n' > "$d/t4u/corpus_units/.000000.tok.tmp.Ab12Cd"
run 'G --out "$d/t4u" "$d/t4u/corpus_units/.000000.tok.tmp.Ab12Cd"'
oneline "an input that is a unit's temporary"
nothing_new "$d/t4u/corpus_units" "input unit temporary" ".000000.tok.tmp.Ab12Cd "
# --unit UNIT with an input named as its temporary, or linked to it (T5)
mkdir "$d/t5"; printf 'precious doc\n' > "$d/t5/.u1.tmp.ABCDEF"; ln "$d/t5/.u1.tmp.ABCDEF" "$d/t5/hard.txt"
run '(cd "$d/t5" && G --unit u1 ../a.txt .u1.tmp.ABCDEF)'
oneline "--unit with an input named as its temporary"
grep -q "input .u1.tmp.ABCDEF is a temporary file a killed run of --unit u1 left" "$d/err" || bad "--unit temporary input: $(cat "$d/err")"
run 'G --unit "$d/t5/u1" "$d/a.txt" "$d/t5/hard.txt"'
oneline "--unit with an input hard-linked to its temporary"
nothing_new "$d/t5" "--unit temporary input" ".u1.tmp.ABCDEF hard.txt "

[ $fail -eq 0 ] && echo "ok: shard on hostile inputs"
exit $fail
