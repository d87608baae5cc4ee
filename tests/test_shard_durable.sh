#!/bin/sh
# gpt2in shard's fsyncs, as strace sees them (one-machine run, three
# shards or more): every shard and the manifest are fsynced under their
# temporary names before they are renamed (a shard's writeback started by
# sync_file_range as soon as it is complete, so that little is left for
# its fsync); the directory is fsynced after the last rename; and once a
# manifest write, not once a shard and once a manifest (the manifest
# written after every shard makes that shard's rename durable with its
# own: one directory fsync, not two).
set -u
: "${GPT2IN:=build/gpt2in}"
[ -x "$GPT2IN" ] || { echo "skipped: $GPT2IN is not built"; exit 77; }
command -v strace > /dev/null 2>&1 || { echo "skipped: no strace"; exit 77; }
d=$(mktemp -d) || exit 2
trap 'rm -rf "$d"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
i=0
while [ $i -lt 400 ]; do echo "line $i of a document, some words"; i=$((i + 1)); done > "$d/a.txt"
# (LeakSanitizer cannot run under ptrace)
ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 strace -f -y -o "$d/trace" -e trace=fsync,fdatasync,rename,renameat,renameat2,sync_file_range \
    "$GPT2IN" shard --quiet --shard-tokens 1200 --out "$d/o" "$d/a.txt" > /dev/null 2>"$d/err" ||
    { echo "skipped: strace cannot trace here: $(head -c 300 "$d/err")"; exit 77; }
n=$(ls "$d/o"/*.bin | wc -l)
[ "$n" -ge 3 ] || bad "want 3 shards at least for this test, got $n"
/usr/bin/python3 - "$d/trace" "$d/o" <<'PY' || fail=1
import re, sys
trace, out = sys.argv[1], sys.argv[2]
synced, errs, dirsyncs, manifests, last_rename, last_dirsync = set(), [], 0, 0, -1, -1
kicked = set()
for k, line in enumerate(open(trace)):
    m = re.search(r'\bsync_file_range\(\d+<([^>]*)>, 0, 0,', line)
    if m:
        kicked.add(m.group(1))
        continue
    m = re.search(r'\b(?:fsync|fdatasync)\(\d+<([^>]*)>', line)
    if m and ".bin.tmp." in m.group(1) and m.group(1) not in kicked:
        errs.append("%s fsynced without its writeback started when it was complete" % m.group(1))
    if m:
        synced.add(m.group(1))
        if m.group(1) == out:
            dirsyncs += 1
            last_dirsync = k
        continue
    m = re.search(r'\brename(?:at2?)?\((?:[^,]*, )?"([^"]*)", (?:[^,]*, )?"([^"]*)"', line)
    if m and m.group(2).startswith(out + "/") and not m.group(2).startswith(out + "/corpus_units"):
        src, dst = m.group(1), m.group(2)
        if src not in synced:
            errs.append("%s renamed to %s before it was fsynced" % (src, dst))
        manifests += dst.endswith("_manifest.json")
        last_rename = k
if last_rename < 0:
    errs.append("no rename into the output directory seen")
if last_dirsync < last_rename:
    errs.append("the directory is not fsynced after the last rename")
if dirsyncs != manifests:
    errs.append("%d fsyncs of the directory for %d manifest writes (one each)" % (dirsyncs, manifests))
for e in errs:
    print("FAIL:", e)
sys.exit(1 if errs else 0)
PY
[ $fail -eq 0 ] && echo "ok"
exit $fail
