#!/bin/sh
# gpt2in shard's fsyncs, as strace sees them (one-machine run, three
# shards or more): every shard and the manifest are fsynced under their
# temporary names before they are renamed (a shard is fsynced as soon as it
# is complete, while the next one is written, not at the end of the run:
# its fsync is over before the shard after the next one is started); the
# directory is fsynced after the last rename; and once a
# manifest write, not once a shard and once a manifest (the manifest
# written after every shard makes that shard's rename durable with its
# own: one directory fsync, not two).
. tests/shard_setup.sh
command -v strace > /dev/null 2>&1 || { echo "skipped: no strace"; exit 77; }
i=0
while [ $i -lt 400 ]; do echo "line $i of a document, some words"; i=$((i + 1)); done > "$d/a.txt"
# (LeakSanitizer cannot run under ptrace)
ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 strace -f -y -o "$d/trace" -e trace=fsync,fdatasync,rename,renameat,renameat2,openat \
    "$GPT2IN" shard --quiet --shard-tokens 1200 --out "$d/o" "$d/a.txt" > /dev/null 2>"$d/err" ||
    { echo "skipped: strace cannot trace here: $(head -c 300 "$d/err")"; exit 77; }
n=$(ls "$d/o"/*.bin | wc -l)
[ "$n" -ge 3 ] || bad "want 3 shards at least for this test, got $n"
/usr/bin/python3 - "$d/trace" "$d/o" <<'PY' || fail=1
import re, sys
trace, out = sys.argv[1], sys.argv[2]
synced, errs, dirsyncs, manifests, last_rename, last_dirsync = set(), [], 0, 0, -1, -1
started, fsynced = {}, {}   # shard number -> line of its temporary's creation, of its fsync
for k, line in enumerate(open(trace)):
    m = re.search(r'\bopenat\(.*"[^"]*/\.corpus_[a-z]+_(\d+)\.bin\.tmp\.[^"]*", [^)]*O_CREAT', line)
    if m:
        started.setdefault(int(m.group(1)), k)
        continue
    m = re.search(r'\b(?:fsync|fdatasync)\(\d+<([^>]*)>', line)
    s = re.search(r'/\.corpus_[a-z]+_(\d+)\.bin\.tmp\.', m.group(1)) if m else None
    if s:
        fsynced.setdefault(int(s.group(1)), k)
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
for n, at in sorted(started.items()):
    if n >= 2 and fsynced.get(n - 2, k + 1) > at:
        errs.append("shard %d fsynced after shard %d was started (not as soon as it was complete)" % (n - 2, n))
if len(started) < 3:
    errs.append("%d shard temporaries seen created, want 3 at least" % len(started))
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
finish
