#!/bin/sh
# gpt2in shard writes the inputs of its sidecars and manifest itself, not
# through jansson objects: every sidecar and manifest must still be the bytes
# jansson's json_dumps gives for the same objects (compact / JSON_INDENT(2)),
# for input names that need escaping (quotes, backslashes, control
# characters, non-ASCII), one input or many a unit, one shard or several
# (the manifests written between shards), through --unit + --assemble, and
# when a rerun keeps the shards its manifest records.
. tests/shard_setup.sh
command -v "${CC:-cc}" > /dev/null || { echo "skipped: no C compiler"; exit 77; }
G() { "$GPT2IN" shard --quiet "$@"; }

# redump FILE FLAGS: the file parsed and dumped again by jansson (+ "\n")
cat > "$d/redump.c" <<'EOF'
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    json_error_t e;
    json_t *j = json_load_file(argv[1], 0, &e);
    if (!j) { fprintf(stderr, "%s: %s\n", argv[1], e.text); return 2; }
    char *t = json_dumps(j, strcmp(argv[2], "compact") ? JSON_INDENT(2) : JSON_COMPACT);
    if (!t) return 2;
    printf("%s\n", t);
    return 0;
}
EOF
"${CC:-cc}" -O1 -o "$d/redump" "$d/redump.c" -ljansson || { echo "skipped: cannot build with -ljansson"; exit 77; }
same_as_jansson() { # FILE compact|indent
    "$d/redump" "$1" "$2" > "$d/re" || { bad "$1: not JSON"; return; }
    cmp -s "$1" "$d/re" || { bad "$1: not the bytes jansson writes ($2)"; diff "$1" "$d/re" | cut -c1-200 | head -4; }
}
check_dir() { # DIR: every sidecar and the manifest
    for f in "$1"/*_units/*.json; do [ -f "$f" ] && same_as_jansson "$f" compact; done
    same_as_jansson "$1/corpus_manifest.json" indent
}

mkdir "$d/in"
i=0
for n in 'plain.txt' 'quote".txt' 'back\slash.txt' "$(printf 'tab\there.txt')" "$(printf 'new\nline.txt')" \
    "$(printf 'ctl\001\037x.txt')" "$(printf 'del\177.txt')" 'é中文 name.txt' 'slash/under.txt'; do
    case $n in */*) mkdir -p "$d/in/${n%/*}" ;; esac
    i=$((i + 1))
    printf 'Document %d of the test, with "quotes" and \\ backslashes.\nAnd a second line %d.\n' $i $i > "$d/in/$n"
done
cd "$d/in" || exit 2
set -- *.txt slash/under.txt
[ $# -eq 9 ] || { echo "FAIL: made $# inputs, not 9"; exit 1; }

G --keep-units --out "$d/one" "$@" || bad "one unit: exit $?"
check_dir "$d/one"
G --keep-units --unit-bytes 1 --shard-tokens 40 --val-tokens 25 --out "$d/many" "$@" || bad "many units: exit $?"
check_dir "$d/many"
G --keep-units --unit-bytes 200 --split-lines --shard-tokens 30 --out "$d/lines" "$@" || bad "lines: exit $?"
check_dir "$d/lines"
# The names as given, read back by another JSON reader.
/usr/bin/python3 - "$d/many/corpus_manifest.json" "$@" <<'PY' || bad "the manifest's paths are not the names given"
import json, sys
m = json.load(open(sys.argv[1], encoding="utf-8"))
assert [i["path"] for i in m["inputs"]] == sys.argv[2:], [i["path"] for i in m["inputs"]]
assert len(m["shards"]) > 2
PY

# --unit + --assemble: the manifest from parsed sidecars is the same bytes.
mkdir "$d/u"
G --unit "$d/u/a" "$1" "$2" "$3" && G --unit "$d/u/b" "$4" "$5" && G --unit "$d/u/c" "$6" "$7" "$8" "$9" ||
    bad "--unit: exit $?"
for f in "$d/u"/*.json; do same_as_jansson "$f" compact; done
G --assemble --shard-tokens 40 --val-tokens 25 --out "$d/asm" "$d/u/a" "$d/u/b" "$d/u/c" || bad "--assemble: exit $?"
cmp -s "$d/asm/corpus_manifest.json" "$d/many/corpus_manifest.json" || bad "--assemble: another manifest than the run's"

# A rerun keeps every shard its manifest records (their inputs compared with
# the records), and writes the same manifest.
cp "$d/many/corpus_manifest.json" "$d/man.before"
ls -i "$d/many"/*.bin > "$d/ino.before"
G --keep-units --unit-bytes 1 --shard-tokens 40 --val-tokens 25 --out "$d/many" "$@" || bad "rerun: exit $?"
ls -i "$d/many"/*.bin > "$d/ino.after"
cmp -s "$d/ino.before" "$d/ino.after" || bad "rerun: shards were rewritten"
cmp -s "$d/man.before" "$d/many/corpus_manifest.json" || bad "rerun: another manifest"
# An input changed: the shards after it are redone, the manifest follows.
printf 'changed\n' >> "$5"
G --keep-units --unit-bytes 1 --shard-tokens 40 --val-tokens 25 --out "$d/many" "$@" || bad "changed input: exit $?"
check_dir "$d/many"
cmp -s "$d/man.before" "$d/many/corpus_manifest.json" && bad "changed input: the same manifest"
finish
