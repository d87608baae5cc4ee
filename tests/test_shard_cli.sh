#!/bin/sh
# gpt2in shard: shard boundaries and llm.c headers (checked by a short numpy
# reader, independent of the C code), the manifest's figures and checksums,
# the same bytes whatever --threads and whichever way it is run (one machine,
# or --unit per input / per group + --assemble), gzip and zstd inputs, every
# kind of bad input (message, exit 2, --on-error skip counts), a full disk.
# Resuming is tests/test_shard_resume.sh; exact tokens, test_shard_oracle.sh.
. tests/shard_setup.sh
/usr/bin/python3 -c 'import numpy' 2>/dev/null || { echo "skipped: no numpy for /usr/bin/python3"; exit 77; }
cleanup() { umount "$d/small" 2>/dev/null; rm -rf "$d"; }
trap cleanup EXIT
G() { "$GPT2IN" shard --quiet "$@"; }
/usr/bin/python3 tests/gen_shard_corpus.py "$d/c" || exit 2
c=$d/c
set -- "$c/docs.jsonl" "$c/lines.txt" "$c/whole1.txt" "$c/whole2.txt"

# The independent reader: every shard's header (magic, version, count, zeros),
# its size, sha256 and token count as the manifest says, the cut (val V
# tokens, then S each, the last shorter), and the stream equal to the units'
# concatenation (kept with --keep-units).
check() { # DIR NAME S V
    /usr/bin/python3 - "$@" <<'PY'
import glob, hashlib, json, os, sys
import numpy as np
d, name, S, V = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
m = json.load(open(os.path.join(d, name + "_manifest.json")))
assert m["complete"] is True and m["shard_tokens"] == S and m["val_tokens"] == V, m
T = m["tokens"]
want = []
if T:
    want.append(min(V, T))
    left = T - want[0]
    while left > 0:
        want.append(min(S, left)); left -= want[-1]
assert [s["tokens"] for s in m["shards"]] == want, ([s["tokens"] for s in m["shards"]], want)
files = sorted(os.path.basename(f) for f in glob.glob(os.path.join(d, name + "_*.bin")))
names = [s["file"] for s in m["shards"]]
assert names == ["%s_%s_%06d.bin" % (name, "val" if i == 0 else "train", i) for i in range(len(want))], names
assert sorted(names) == files, (names, files)
stream = []
for s in m["shards"]:
    raw = open(os.path.join(d, s["file"]), "rb").read()
    assert hashlib.sha256(raw).hexdigest() == s["sha256"], s
    h = np.frombuffer(raw[:1024], dtype="<i4")
    assert h[0] == 20240520 and h[1] == 1 and h[2] == s["tokens"] and not h[3:].any(), h[:4]
    assert len(raw) == 1024 + 2 * s["tokens"]
    stream.append(np.frombuffer(raw[1024:], dtype="<u2"))
stream = np.concatenate(stream) if stream else np.zeros(0, "<u2")
assert sum(i["tokens"] for i in m["inputs"]) == T and sum(i["documents"] for i in m["inputs"]) == m["documents"]
assert (stream == 50256).sum() >= m["documents"]
units = sorted(glob.glob(os.path.join(d, name + "_units", "*.tok")))
if units:
    u = np.concatenate([np.fromfile(f, dtype="<u2") for f in units])
    assert np.array_equal(u, stream), "shards != units"
    # A unit holds one input or several (--unit-bytes): its sidecar lists
    # them, and the sidecars' inputs in order are the manifest's.
    ins = []
    for f in units:
        t = np.fromfile(f, dtype="<u2")
        j = json.load(open(f + ".json"))
        assert hashlib.sha256(t.tobytes()).hexdigest() == j["tokens_sha256"] and len(t) == j["tokens"], f
        assert t[0] == 50256 and (t == 50256).sum() >= j["documents"]
        assert j["documents"] == sum(i["documents"] for i in j["inputs"])
        ins += [{k: v for k, v in i.items() if k != "mtime_ns"} for i in j["inputs"]]
    assert ins == m["inputs"], "the units' inputs are not the manifest's"
    if len(units) == len(m["inputs"]):
        for f, i in zip(units, m["inputs"]):
            assert hashlib.sha256(open(f, "rb").read()).hexdigest() == i["tokens_sha256"]
    for i in m["inputs"]:
        assert hashlib.sha256(open(i["path"], "rb").read()).hexdigest() == i["sha256"]
        assert os.path.getsize(i["path"]) == i["size"]
PY
}

# ---- boundaries, headers, manifest ---------------------------------------------
G --out "$d/a" --keep-units --split-lines --shard-tokens 1000 --val-tokens 2500 "$@" || bad "run a: exit $?"
check "$d/a" corpus 1000 2500 || bad "shards of run a"
# The vocabulary's identity (a constant in the program): the sha256 of GPT-2's
# id -> bytes table (u32 LE length + bytes, in id order), here from
# encoder.json and the byte mapping of OpenAI's encoder.py.
/usr/bin/python3 - "$d/a/corpus_manifest.json" <<'PY' || bad "the manifest's vocabulary is not GPT-2's table"
import hashlib, json, struct, sys
enc = json.load(open("gpt2_weights/encoder.json", encoding="utf-8"))
bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
cs = bs[:]
for b in range(256):
    if b not in bs:
        bs.append(b)
        cs.append(256 + len(cs) - 188)
dec = {chr(c): b for b, c in zip(bs, cs)}
h = hashlib.sha256()
for tok, i in sorted(enc.items(), key=lambda e: e[1]):
    raw = bytes(dec[ch] for ch in tok)
    h.update(struct.pack("<I", len(raw)) + raw)
v = json.load(open(sys.argv[1]))["vocabulary"]
want = {"name": "gpt2", "size": len(enc), "eot": enc["<|endoftext|>"], "sha256": h.hexdigest()}
assert v == want, (v, want)
PY
[ "$(ls "$d/a/corpus_units" | tr '\n' ' ')" = "000000.tok 000000.tok.json " ] ||
    bad "run a: small inputs should share one unit: $(ls "$d/a/corpus_units" | tr '\n' ' ')"
# Units of one input each, or of inputs up to 40 KB: the same shards and
# manifest; a unit is named by its first input's index.
G --out "$d/a1" --keep-units --unit-bytes 1 --split-lines --shard-tokens 1000 --val-tokens 2500 "$@" || bad "run a1: exit $?"
check "$d/a1" corpus 1000 2500 || bad "shards of run a1"
[ "$(ls "$d/a1/corpus_units" | grep -c 'tok$')" -eq 4 ] || bad "--unit-bytes 1: want 4 units: $(ls "$d/a1/corpus_units")"
sizes=$(stat -c %s "$@" | tr '\n' ' ')
want=$(/usr/bin/python3 -c '
import sys
first, acc, out = 0, 0, []
for i, n in enumerate(int(x) for x in sys.argv[1:]):
    if acc == 0: out.append("%06d.tok" % i)
    acc += n
    if acc >= 40 * 1024: acc = 0
print(" ".join(out))' $sizes)
G --out "$d/a40" --keep-units --unit-bytes 40KiB --split-lines --shard-tokens 1000 --val-tokens 2500 "$@" || bad "run a40: exit $?"
check "$d/a40" corpus 1000 2500 || bad "shards of run a40"
[ "$(cd "$d/a40/corpus_units" && ls *.tok | tr '\n' ' ')" = "$want " ] ||
    bad "--unit-bytes 40KiB: units $(ls "$d/a40/corpus_units" | tr '\n' ' '), want $want (sizes $sizes)"
for r in a1 a40; do
    for f in "$d/a"/*.bin "$d/a/corpus_manifest.json"; do
        cmp -s "$f" "$d/$r/${f##*/}" || bad "$r: ${f##*/} differs from run a (one unit)"
    done
done
total=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tokens"])' "$d/a/corpus_manifest.json")
# Exactly one shard's worth, and one token more.
G --out "$d/b" --name exact --shard-tokens 1000 --val-tokens "$total" --split-lines "$@" || bad "run b: exit $?"
check "$d/b" exact 1000 "$total" || bad "shards of run b (val = all)"
[ "$(ls "$d/b"/*.bin | wc -l)" -eq 1 ] || bad "val of exactly all tokens: want one shard"
G --out "$d/b2" --name exact --shard-tokens 1 --val-tokens $((total - 1)) --split-lines "$@" || bad "run b2: exit $?"
check "$d/b2" exact 1 $((total - 1)) || bad "shards of run b2"
[ "$(ls "$d/b2"/*.bin | wc -l)" -eq 2 ] || bad "one token past val: want two shards"
# The default sizes: one validation shard.
G --out "$d/def" --split-lines "$@" || bad "default run: exit $?"
check "$d/def" corpus 100000000 100000000 || bad "default shard sizes"
[ -d "$d/def/corpus_units" ] && bad "the units were not removed"
# An empty input gives no shard and a complete manifest.
: > "$d/empty.jsonl"
G --out "$d/e" "$d/empty.jsonl" || bad "empty input: exit $?"
check "$d/e" corpus 100000000 100000000 || bad "empty input's manifest"

# More inputs than open files: --assemble holds one unit open at a time (it
# held all of them, so a corpus of more files than `ulimit -n` failed after
# tokenizing everything).
mkdir "$d/many"
i=0; while [ $i -lt 120 ]; do printf 'document %d of many.\n' $i > "$d/many/f$i.txt"; i=$((i + 1)); done
(ulimit -n 40 && G --out "$d/manyo" --unit-bytes 1 --shard-tokens 300 "$d"/many/f*.txt) 2>"$d/many.err" ||
    bad "120 inputs under ulimit -n 40: exit $?: $(head -c 200 "$d/many.err")"
[ -f "$d/manyo/corpus_manifest.json" ] && [ -f "$d/manyo/corpus_train_000001.bin" ] || bad "120 inputs: no shards"

# A file name that is not UTF-8 cannot be recorded in the manifest: one clear
# line, and nothing written (it said "out of memory" and left DIR/NAME_units/).
printf 'hello\n' > "$d/lat$(printf '\351').txt"
G --out "$d/latin" "$d/lat$(printf '\351').txt" 2>"$d/latin.err"
rc=$?
[ $rc -eq 2 ] && grep -q 'file name is not UTF-8' "$d/latin.err" && [ "$(wc -l < "$d/latin.err")" -eq 1 ] ||
    bad "non-UTF-8 file name: exit $rc: $(cat "$d/latin.err")"
[ -e "$d/latin" ] && bad "non-UTF-8 file name: $d/latin was created"

# ---- the same bytes: threads, stages, grouping ------------------------------------
for t in 1 2 3; do
    G --out "$d/t$t" --threads $t --split-lines --shard-tokens 1000 --val-tokens 2500 "$@" || bad "threads $t: exit $?"
    for f in "$d/a"/*.bin "$d/a/corpus_manifest.json"; do
        cmp -s "$f" "$d/t$t/${f##*/}" || bad "--threads $t: ${f##*/} differs"
    done
done
# A big whole-file document is encoded on several threads: the same bytes.
i=0; while [ $i -lt 40 ]; do cat "$c/whole1.txt" "$c/lines.txt" "$c/whole2.txt"; i=$((i + 1)); done > "$d/big.txt"   # ~1 MB: 3 parts of 256 KB or more
G --out "$d/w1" --threads 1 "$d/big.txt" && G --out "$d/w3" --threads 3 "$d/big.txt" || bad "big whole file: exit $?"
for f in "$d/w1"/*; do cmp -s "$f" "$d/w3/${f##*/}" || bad "big whole file, --threads 3: ${f##*/} differs"; done
mkdir "$d/u"
G --unit "$d/u/u1" --split-lines "$1" "$2" || bad "unit 1"
G --unit "$d/u/u2" --split-lines "$3" || bad "unit 2"
G --unit "$d/u/u3" --split-lines "$4" || bad "unit 3"
G --assemble --out "$d/asm" --shard-tokens 1000 --val-tokens 2500 "$d/u/u1" "$d/u/u2" "$d/u/u3" || bad "assemble: exit $?"
for f in "$d/a"/*.bin "$d/a/corpus_manifest.json"; do
    cmp -s "$f" "$d/asm/${f##*/}" || bad "--unit + --assemble: ${f##*/} differs from the one-machine run"
done
# --units-from: the same units from a list file (with an empty line).
printf '%s\n\n%s\n' "$d/u/u2" "$d/u/u3" > "$d/units.txt"
G --assemble --out "$d/asmf" --shard-tokens 1000 --val-tokens 2500 --units-from "$d/units.txt" "$d/u/u1" ||
    bad "assemble --units-from: exit $?"
for f in "$d/asm"/*; do cmp -s "$f" "$d/asmf/${f##*/}" || bad "--units-from: ${f##*/} differs"; done
# A unit is not redone while its inputs are unchanged, and is after a change.
touch -d '2001-01-01' "$d/u/u2"
"$GPT2IN" shard --unit "$d/u/u2" --split-lines "$3" 2>"$d/err" || bad "unit rerun: exit $?"
grep -q "up to date" "$d/err" || bad "unit rerun: no 'up to date': $(cat "$d/err")"
[ "$(stat -c %Y "$d/u/u2")" = "$(date -d 2001-01-01 +%s)" ] || bad "an up-to-date unit was rewritten"
G --unit "$d/u/u2" "$3" || bad "unit with other options"
[ "$(stat -c %Y "$d/u/u2")" = "$(date -d 2001-01-01 +%s)" ] && bad "a unit with other options was not redone"
G --assemble --out "$d/asm2" "$d/u/u1" "$d/u/u2" 2>"$d/err"
[ $? -eq 2 ] && grep -q "other options" "$d/err" || bad "units of different options assembled: $(cat "$d/err")"
rm "$d/u/u3.json"
"$GPT2IN" shard --assemble --out "$d/asm3" "$d/u/u3" 2>"$d/err"
[ $? -eq 2 ] && grep -q "not a complete unit" "$d/err" || bad "a unit without its .json: $(cat "$d/err")"
# A unit whose tokens changed after the fact is refused.
G --unit "$d/u/u4" "$4" && printf '\001' | dd of="$d/u/u4" bs=1 seek=3 conv=notrunc 2>/dev/null
"$GPT2IN" shard --assemble --out "$d/asm4" "$d/u/u4" 2>"$d/err"
[ $? -eq 2 ] && grep -q "do not match" "$d/err" || bad "a corrupt unit was used: $(cat "$d/err")"
ls "$d/asm4"/*.bin >/dev/null 2>&1 && bad "a corrupt unit left shards"

# ---- compressed inputs --------------------------------------------------------------
cp "$1" "$d/z.jsonl"
gzip -k -c "$1" > "$d/z.jsonl.gz"
zstd -q -c "$1" > "$d/z.jsonl.zst"
# Several gzip members and zstd frames, and a misleading name.
head -c 5000 "$1" | gzip -c > "$d/multi.jsonl.gz"; tail -c +5001 "$1" | gzip -c >> "$d/multi.jsonl.gz"
head -c 7000 "$1" | zstd -q -c > "$d/multi.jsonl.zst"; tail -c +7001 "$1" | zstd -q -c >> "$d/multi.jsonl.zst"
gzip -c "$1" > "$d/plain.jsonl"
cp "$1" "$d/UP.JSONL"; gzip -c "$1" > "$d/UP.JSONL.GZ"   # names in upper case: JSON Lines too
for f in z.jsonl z.jsonl.gz z.jsonl.zst multi.jsonl.gz multi.jsonl.zst plain.jsonl UP.JSONL UP.JSONL.GZ; do
    G --out "$d/z_$f" "$d/$f" || bad "$f: exit $?"
    /usr/bin/python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["inputs"][0]["tokens_sha256"], m["documents"], m["tokens"])' \
        "$d/z_$f/corpus_manifest.json" > "$d/z_$f.sum"
    cmp -s "$d/z_z.jsonl.sum" "$d/z_$f.sum" || bad "$f: other tokens than the uncompressed file"
    cmp -s "$d/z_z.jsonl/corpus_val_000000.bin" "$d/z_$f/corpus_val_000000.bin" || bad "$f: other shard"
done
head -c 3000 "$d/z.jsonl.gz" > "$d/trunc.jsonl.gz"
head -c 3000 "$d/z.jsonl.zst" > "$d/trunc.jsonl.zst"
for f in trunc.jsonl.gz trunc.jsonl.zst; do
    "$GPT2IN" shard --out "$d/tr" "$d/$f" 2>"$d/err"
    [ $? -eq 2 ] && grep -q "truncated" "$d/err" || bad "$f: want 'truncated', exit 2: $(cat "$d/err")"
done
printf '\037\213\010\000garbage-garbage-garbage' > "$d/corrupt.gz"
"$GPT2IN" shard --out "$d/tr" "$d/corrupt.gz" 2>"$d/err"
[ $? -eq 2 ] && grep -q "corrupt gzip" "$d/err" || bad "corrupt gzip: $(cat "$d/err")"
ls "$d/tr"/*.bin >/dev/null 2>&1 && bad "failed runs left shards"

# ---- bad input ----------------------------------------------------------------------------
# Each kind alone, with its line and byte offset: fail (exit 2, no shard, no
# unit), then skip (exit 0, counted, the good documents kept).
printf '{"text": "ok"}\n' > "$d/good1"
badcase() { # NAME CONTENT(printf) EXPECTED-MESSAGE [FORMAT]
    printf "$2" > "$d/bad_$1"
    "$GPT2IN" shard --out "$d/bo_$1" --format "${4:-jsonl}" --split-lines "$d/good1" "$d/bad_$1" 2>"$d/err"
    rc=$?
    [ $rc -eq 2 ] || bad "$1: exit $rc, expected 2"
    grep -qxF "gpt2in: $d/bad_$1:$3" "$d/err" || bad "$1: want 'gpt2in: FILE:$3', got: $(cat "$d/err")"
    ls "$d/bo_$1"/*.bin >/dev/null 2>&1 && bad "$1: shards written despite the error"
    "$GPT2IN" shard --out "$d/bs_$1" --format "${4:-jsonl}" --split-lines --on-error skip "$d/good1" "$d/bad_$1" 2>"$d/err"
    rc=$?
    [ $rc -eq 0 ] || bad "$1 --on-error skip: exit $rc"
    grep -qF "$3 (document skipped)" "$d/err" || bad "$1 --on-error skip: no message: $(cat "$d/err")"
    /usr/bin/python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); assert (m["skipped"], m["documents"], m["inputs"][1]["skipped"]) == (1, 3, 1), m' \
        "$d/bs_$1/corpus_manifest.json" || bad "$1 --on-error skip: counts"
    "$GPT2IN" shard --quiet --out "$d/bq_$1" --format "${4:-jsonl}" --split-lines --on-error skip "$d/good1" "$d/bad_$1" 2>"$d/err"
    [ -s "$d/err" ] && bad "$1: --quiet still printed: $(cat "$d/err")"
}
printf '{"text": 1}\n' > "$d/bad_first.jsonl"
# On a terminal the error replaces the progress line instead of running on
# after it (script(1) gives the program a terminal).
if command -v script >/dev/null 2>&1; then
    script -qc "'$GPT2IN' shard --out '$d/tty' '$d/bad_first.jsonl'" /dev/null > "$d/tty.out" 2>&1 < /dev/null
    /usr/bin/python3 -c '
import sys
out = open(sys.argv[1], "rb").read()
i = out.find(b"gpt2in: " + sys.argv[2].encode())
assert i >= 0, out
assert out[:i].endswith(b"\r\x1b[K"), out' "$d/tty.out" "$d/bad_first.jsonl" || bad "on a terminal the error ran on after the progress line"
fi
# A unit is a regular file: a device is refused, and nothing lands beside it.
G --unit /dev/null "$c/docs.jsonl" 2>"$d/dev.err" && bad "--unit /dev/null: exit 0"
grep -q 'not a regular file' "$d/dev.err" || bad "--unit /dev/null: $(cat "$d/dev.err")"
[ -e /dev/null.json ] && { rm -f /dev/null.json; bad "--unit /dev/null wrote /dev/null.json"; }
# A run that fails before any unit is complete leaves no empty units folder.
"$GPT2IN" shard --quiet --out "$d/bfirst" "$d/bad_first.jsonl" 2>/dev/null && bad "bad_first: exit 0"
[ -d "$d/bfirst/corpus_units" ] && bad "a failed run left an empty $d/bfirst/corpus_units"
badcase malformed '{"text": "a"}\n{"text": "b",,}\n{"text": "c"}\n' \
    '2: byte 27: malformed JSON: string or '"'"'}'"'"' expected near '"'"','"'"''
badcase missing '{"text": "a"}\n\n{"txt": "b"}\n{"text": "c"}\n' '3: byte 15: no field "text"'
badcase nonstring '{"text": "a"}\n{"text": ["b"]}\n{"text": "c"}\n' '2: byte 14: field "text" is an array, not a string'
badcase nonobject '{"text": "a"}\n"b"\n{"text": "c"}\n' '2: byte 14: the line is a string, not a JSON object'
badcase utf8json '{"text": "a"}\n{"text": "b\377"}\n{"text": "c"}\n' '2: byte 25: invalid UTF-8'
badcase utf8text 'a\nb \303(\nc\n' '2: byte 4: invalid UTF-8' text
badcase nulljson '{"text": "a"}\n{"text": null}\n{"text": "c"}\n' '2: byte 14: field "text" is null, not a string'
# Duplicate keys: the last one counts (as in Python's json), also when it
# is not a string.
printf '{"text": "first", "x": 1, "text": "second"}\n' > "$d/dup.jsonl"
printf '{"text": "second"}\n' > "$d/nodup.jsonl"
G --unit "$d/u/dup" "$d/dup.jsonl" && G --unit "$d/u/nodup" "$d/nodup.jsonl" || bad "duplicate keys: exit $?"
cmp -s "$d/u/dup" "$d/u/nodup" || bad "duplicate keys: the last one is not the document"
printf '{"text": "first", "text": 5}\n' > "$d/dup2.jsonl"
"$GPT2IN" shard --unit "$d/u/dup2" "$d/dup2.jsonl" 2>"$d/err"
[ $? -eq 2 ] && grep -q 'field "text" is a number' "$d/err" || bad "duplicate keys, last not a string: $(cat "$d/err")"
# --field names another field.
printf '{"body": "x", "text": 1}\n' > "$d/field.jsonl"
G --out "$d/fld" --field body "$d/field.jsonl" || bad "--field body: exit $?"
# A whole file with invalid UTF-8: its line and offset.
printf 'one\ntwo \377\n' > "$d/wholebad.txt"
"$GPT2IN" shard --out "$d/wb" "$d/wholebad.txt" 2>"$d/err"
[ $? -eq 2 ] && grep -qxF "gpt2in: $d/wholebad.txt:2: byte 8: invalid UTF-8" "$d/err" || bad "whole file, bad UTF-8: $(cat "$d/err")"
# Usage errors.
for args in "--out" "--unit u --out x f" "--assemble --out x --field t u" "--unit u --name n f" \
            "--out x --on-error maybe f" "--out x --shard-tokens 0 f" "--out x --format xml f" "--out x" \
            "--out x --name ../up f" "--out x --unit-bytes 0 f" "--out x --unit-bytes 5X f" \
            "--out x --unit-bytes M f" "--unit u --unit-bytes 1M f" "--out x --unit-bytes 99999999999999999999 f"; do
    (cd "$d" && "$GPT2IN" shard $args) 2>/dev/null; rc=$?
    [ $rc -eq 2 ] || bad "'shard $args': exit $rc, expected 2"
done
"$GPT2IN" shard --out "$d/nf" "$d/no-such-file" 2>"$d/err"
[ $? -eq 2 ] && grep -q "no-such-file: cannot open" "$d/err" || bad "missing input: $(cat "$d/err")"
# An input that is a file of the run's output, by its name or a hard link: refused, kept.
mkdir "$d/own" && printf 'a document\n' >"$d/own/corp_val_000000.bin" && cp "$d/own/corp_val_000000.bin" "$d/own.orig"
(cd "$d/own" && "$GPT2IN" shard --quiet --out . --name corp corp_val_000000.bin) 2>"$d/err"
[ $? -eq 2 ] && grep -q "a file this run writes" "$d/err" || bad "input named as an output: $(cat "$d/err")"
cmp -s "$d/own/corp_val_000000.bin" "$d/own.orig" || bad "input named as an output: it was replaced"
mv "$d/own/corp_val_000000.bin" "$d/own/doc.txt" && ln "$d/own/doc.txt" "$d/own/corp_manifest.json"
"$GPT2IN" shard --quiet --out "$d/own" --name corp "$d/own/doc.txt" 2>"$d/err"
[ $? -eq 2 ] && grep -q "corp_manifest.json, a file this run writes" "$d/err" || bad "input linked as the manifest: $(cat "$d/err")"
cmp -s "$d/own/doc.txt" "$d/own.orig" || bad "input linked as the manifest: it was changed"

# ---- small whole files, many a call: batches of them on the worker threads ----------
# 20 files of ~100 KB (more than a batch of 1 MB), an empty one, one with
# invalid UTF-8 (skipped), a big file and JSON Lines among them: each
# input's tokens and figures are those of `gpt2in encode` on the file alone.
mkdir "$d/sf"
/usr/bin/python3 - "$d/sf" "$c/whole1.txt" "$c/whole2.txt" <<'PY'
import os, sys
out = sys.argv[1]
a, b = (open(f, encoding="utf-8").read() for f in sys.argv[2:4])
for i in range(20):
    t = (a if i % 2 else b)[i * 37 % 500:] * 40
    open(os.path.join(out, "f%02d.txt" % i), "w", encoding="utf-8").write(t[: 100000 + i * 400])
open(os.path.join(out, "f05.txt"), "w").close()
open(os.path.join(out, "f10.txt"), "wb").write(b"caf\xc3\xa9 ok\nthen \xff bad\n")
open(os.path.join(out, "f14.txt"), "w", encoding="utf-8").write((a + b) * (1200000 // len(a + b) + 1))
PY
cp "$c/docs.jsonl" "$d/sf/f16.jsonl"
set -- "$d/sf"/f*
for T in 1 2; do
    "$GPT2IN" shard --out "$d/sfo$T" --keep-units --on-error skip --threads $T "$@" 2>"$d/err" ||
        bad "small files, threads $T: exit $?"
    check "$d/sfo$T" corpus 100000000 100000000 || bad "small files, threads $T: shards"
done
cmp -s "$d/sfo1/corpus_val_000000.bin" "$d/sfo2/corpus_val_000000.bin" || bad "small files: threads 1 and 2 differ"
for f in "$@"; do
    case $f in *.jsonl) printf 'jsonl\n' > "$f.want"; continue ;; esac
    "$GPT2IN" encode --strict --special text --format u16 "$f" > "$f.want" 2>/dev/null || printf 'bad\n' > "$f.want"
done
/usr/bin/python3 - "$d/sfo1/corpus_manifest.json" "$@" <<'PY' || bad "small files: tokens or figures differ from encode's"
import hashlib, json, sys
import numpy as np
m = json.load(open(sys.argv[1]))
raw = open(sys.argv[1].replace("corpus_manifest.json", m["shards"][0]["file"]), "rb").read()
stream = np.frombuffer(raw[1024:], dtype="<u2")
at = 0
assert [i["path"] for i in m["inputs"]] == sys.argv[2:]
for i in m["inputs"]:
    want = open(i["path"] + ".want", "rb").read()
    n = i["tokens"]
    got = stream[at:at + n]
    at += n
    if want == b"jsonl\n":
        continue
    if want == b"bad\n":
        assert (i["documents"], i["skipped"], n) == (0, 1, 0), i
        continue
    w = np.concatenate([[50256], np.frombuffer(want, dtype="<u2")]).astype("<u2")
    assert (i["documents"], i["skipped"]) == (1, 0) and np.array_equal(got, w), i["path"]
    assert hashlib.sha256(w.tobytes()).hexdigest() == i["tokens_sha256"], i["path"]
assert at == len(stream) and m["skipped"] == 1
PY
grep -qxF "gpt2in: $d/sf/f10.txt:2: byte 14: invalid UTF-8 (document skipped)" "$d/err" ||
    bad "small files: the skip message: $(cat "$d/err")"
G --out "$d/sff" "$@" 2>"$d/err"
[ $? -eq 2 ] && grep -qxF "gpt2in: $d/sf/f10.txt:2: byte 14: invalid UTF-8" "$d/err" ||
    bad "small files, --on-error fail: $(cat "$d/err")"
ls "$d/sff"/*.bin >/dev/null 2>&1 && bad "small files, --on-error fail: shards written"
# A whole file's last tokens, still buffered, then a batch of 64K to 128K
# tokens (JSON Lines of ~300 KB) in the same unit: written in order (the
# batch went first), as with a unit an input.
/usr/bin/python3 - "$c/whole1.txt" "$d/g1.jsonl" <<'PY'
import json, sys
t = open(sys.argv[1], encoding="utf-8").read()[:5000]
with open(sys.argv[2], "w", encoding="utf-8") as f:
    for i in range(60):
        f.write(json.dumps({"text": t + " doc %d" % i}) + "\n")
PY
printf 'hello there\n' > "$d/g0.txt"
G --out "$d/g" "$d/g0.txt" "$d/g1.jsonl" || bad "whole file + JSON Lines: exit $?"
G --out "$d/g1" --unit-bytes 1 "$d/g0.txt" "$d/g1.jsonl" || bad "whole file + JSON Lines, --unit-bytes 1: exit $?"
cmp -s "$d/g/corpus_val_000000.bin" "$d/g1/corpus_val_000000.bin" ||
    bad "whole file + JSON Lines in one unit: tokens out of order"
set -- "$c/docs.jsonl" "$c/lines.txt" "$c/whole1.txt" "$c/whole2.txt"

# ---- a full disk: exit 2, nothing partial under a final name ---------------------------
mkdir "$d/small"
# (the shards alone do not fit; with --unit-bytes 1 the units before the
# last are written too, copied from the shards being cut)
if mount -t tmpfs -o size=32k tmpfs "$d/small" 2>/dev/null; then
    for ub in 128M 1; do
        rm -rf "$d/small/o"
        "$GPT2IN" shard --out "$d/small/o" --unit-bytes $ub --shard-tokens 5000 --split-lines "$@" 2>"$d/err"
        rc=$?
        [ $rc -eq 2 ] || bad "full disk, --unit-bytes $ub: exit $rc, expected 2 ($(cat "$d/err"))"
        grep -q "write error\|No space" "$d/err" || bad "full disk, --unit-bytes $ub: message: $(cat "$d/err")"
        for f in "$d/small/o"/*.bin; do
            [ -e "$f" ] || continue
            [ -d "$d/ref5k" ] || G --out "$d/ref5k" --shard-tokens 5000 --split-lines "$@"
            cmp -s "$f" "$d/ref5k/${f##*/}" || bad "full disk, --unit-bytes $ub: ${f##*/} is not a complete shard"
        done
    done
else
    echo "note: cannot mount a tmpfs here; the full-disk case is not run"
fi
finish
