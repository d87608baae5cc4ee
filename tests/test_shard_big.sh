#!/bin/sh
# gpt2in shard on inputs of several MB, where its fast paths and block cuts
# are: a whole-file document (mapped when it is a plain file, decompressed
# or read from a pipe otherwise) is encoded a block at a time, cut where no
# token changes, and must give exactly `gpt2in encode --special text` of
# the whole file, whatever --threads; invalid UTF-8 far into it is reported
# at its line and byte, and --on-error skip drops the whole document; plain
# text lines are encoded in place when a batch is all valid UTF-8, and must
# give the same tokens as the line-by-line path that batches with a bad line
# take.
. tests/shard_setup.sh
G() { "$GPT2IN" shard --quiet "$@"; }
/usr/bin/python3 tests/gen_shard_corpus.py "$d/c" || exit 2
c=$d/c

# ~3.4 MB: prose, random text in several scripts, and a 300 KB word (no
# safe cut in it) lying across the first 1 MB block's end.
/usr/bin/python3 - "$c" "$d/big.txt" <<'PY'
import sys
c, out = sys.argv[1], sys.argv[2]
parts = [open(c + "/" + f, encoding="utf-8").read() for f in ("whole1.txt", "lines.txt", "whole2.txt")]
text = ""
while len(text.encode()) < 900000:
    text += "".join(parts)
text += "x" + "ab" * 150000 + " "
while len(text.encode()) < 3400000:
    text += "".join(parts)
open(out, "w", encoding="utf-8").write(text)
PY
# the reference: <|endoftext|>, then the whole file encoded in one piece of work
printf '\120\304' > "$d/ref.u16"
"$GPT2IN" encode --special text --format u16 "$d/big.txt" >> "$d/ref.u16" || bad "encode big.txt: exit $?"
gzip -1 -c "$d/big.txt" > "$d/bigz.txt.gz"
mkfifo "$d/fifo"
for t in 1 3; do
    rm -f "$d/u$t" "$d/u$t.json"
    G --threads $t --unit "$d/u$t" "$d/big.txt" || bad "big whole file, --threads $t: exit $?"
    cmp -s "$d/u$t" "$d/ref.u16" || bad "big whole file, --threads $t: tokens differ from encode's"
    G --threads $t --unit "$d/z$t" "$d/bigz.txt.gz" || bad "big whole file, gzip, --threads $t: exit $?"
    cmp -s "$d/z$t" "$d/ref.u16" || bad "big whole file, gzip, --threads $t: tokens differ from encode's"
    # not a plain file (a pipe): read, not mapped
    cat "$d/big.txt" > "$d/fifo" &
    G --threads $t --format text --unit "$d/f$t" "$d/fifo" || bad "big whole file from a pipe: exit $?"
    wait
    cmp -s "$d/f$t" "$d/ref.u16" || bad "big whole file from a pipe, --threads $t: tokens differ from encode's"
done
# The input's sha256 in the sidecar is the file's (the mapped file is hashed
# on another thread).
/usr/bin/python3 - "$d/u1.json" "$d/big.txt" <<'PY' || bad "big whole file: the sidecar's sha256 or size"
import hashlib, json, os, sys
j = json.load(open(sys.argv[1]))
i = j["inputs"][0]
assert i["sha256"] == hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest(), i
assert i["size"] == os.path.getsize(sys.argv[2]), i
assert j["documents"] == 1 and j["tokens"] * 2 == os.path.getsize(sys.argv[1][:-5]), j
PY

# Invalid UTF-8 at 2.5 MB, on line N: found whatever the block and thread
# count, named by line and byte; --on-error skip leaves out the whole
# document (none of its earlier blocks' tokens).
/usr/bin/python3 - "$d/big.txt" "$d/bad.txt" "$d/want" <<'PY'
import sys
b = open(sys.argv[1], "rb").read()
at = b.index(b"\n", 2500000) + 1
bad = b[:at] + b"ok \xe2\x82 then" + b[at:]
open(sys.argv[2], "wb").write(bad)
open(sys.argv[3], "w").write("%d %d" % (b[:at].count(b"\n") + 1, at + 3))
PY
read line byte < "$d/want"
gzip -1 -c "$d/bad.txt" > "$d/badz.txt.gz"
for f in bad.txt badz.txt.gz; do
    for t in 1 3; do
        "$GPT2IN" shard --threads $t --out "$d/o_$f$t" "$d/$f" 2>"$d/err"
        rc=$?
        [ $rc -eq 2 ] && grep -qxF "gpt2in: $d/$f:$line: byte $byte: invalid UTF-8" "$d/err" ||
            bad "$f, --threads $t: exit $rc, $(cat "$d/err") (want line $line, byte $byte)"
    done
    "$GPT2IN" shard --threads 2 --on-error skip --out "$d/s_$f" "$c/whole1.txt" "$d/$f" 2>"$d/err" ||
        bad "$f, --on-error skip: exit $?"
    grep -qxF "gpt2in: $d/$f:$line: byte $byte: invalid UTF-8 (document skipped)" "$d/err" ||
        bad "$f, --on-error skip: $(cat "$d/err")"
    G --out "$d/w1" "$c/whole1.txt" || bad "whole1.txt: exit $?"
    cmp -s "$d/s_$f/corpus_val_000000.bin" "$d/w1/corpus_val_000000.bin" ||
        bad "$f, --on-error skip: tokens of the skipped document were written"
    /usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
i = m["inputs"][1]
assert (i["documents"], i["skipped"], i["tokens"]) == (0, 1, 0), i' "$d/s_$f/corpus_manifest.json" ||
        bad "$f, --on-error skip: counts in the manifest"
done

# Plain text lines, ~3 MB (several batches), with empty lines, blank lines
# and \r. good.txt is all valid UTF-8 (every batch encoded in place);
# mixed.txt is the same with an invalid line every ~200 KB (every batch
# then goes line by line): under --on-error skip both give the same tokens.
/usr/bin/python3 - "$c" "$d/good.txt" "$d/mixed.txt" <<'PY'
import random, sys
c = sys.argv[1]
rng = random.Random(7)
src = [l for f in ("lines.txt", "whole1.txt", "whole2.txt") for l in open(c + "/" + f, encoding="utf-8").read().split("\n")]
good, mixed, n = [], [], 0
while n < 3000000:
    l = rng.choice(src + ["", "", "  ", "\r", "a\r", " x "])
    good.append(l); mixed.append(l); n += len(l.encode()) + 1
    if rng.random() < 0.002:
        mixed.append("bad \udcff line")
open(sys.argv[2], "wb").write("\n".join(good).encode("utf-8", "surrogateescape"))
open(sys.argv[3], "wb").write("\n".join(mixed).encode("utf-8", "surrogateescape"))
PY
for t in 1 3; do
    G --threads $t --split-lines --unit "$d/lg$t" "$d/good.txt" || bad "good.txt, --threads $t: exit $?"
    G --threads $t --split-lines --on-error skip --unit "$d/lm$t" "$d/mixed.txt" || bad "mixed.txt, --threads $t: exit $?"
    cmp -s "$d/lg$t" "$d/lm$t" || bad "lines, --threads $t: in-place batches differ from line-by-line ones"
done
cmp -s "$d/lg1" "$d/lg3" || bad "lines: --threads 1 and 3 differ"
/usr/bin/python3 - "$d/lg1.json" "$d/lm1.json" "$d/good.txt" <<'PY' || bad "lines: document counts"
import json, sys
g, m = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
lines = open(sys.argv[3], "rb").read().split(b"\n")
assert g["documents"] == m["documents"] == sum(1 for l in lines if l), (g["documents"], m["documents"])
assert g["skipped"] == 0 and m["skipped"] > 5, m["skipped"]
PY
finish
