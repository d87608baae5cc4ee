#!/bin/sh
# The installed gpt2in-dask-shard (make install PREFIX=P): it runs the gpt2in
# installed beside it (P/bin/gpt2in) when P/bin is not on PATH, its shebang
# is Debian's Python (where python3-distributed installs dask), and a Python
# without dask.distributed gets one clear line, exit 2. Normal build only.
set -u
: "${B:=build}" "${SANITIZED:=0}"
[ "$SANITIZED" = 1 ] && { echo "skipped: the installed programs are checked in the normal build"; exit 77; }
[ -x "$B/gpt2in" ] || { echo "skipped: $B/gpt2in is not built"; exit 77; }
/usr/bin/python3 -c 'import distributed' 2> /dev/null ||
    { echo "skipped: python3-distributed is not installed (make deps)"; exit 77; }
d=$(mktemp -d) || exit 2
trap 'rm -rf "$d"' EXIT
fail=0
bad() { printf 'FAIL: %s\n' "$*"; fail=1; }
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -o all B="$B" PREFIX="$d/p" install \
    > "$d/log" 2>&1 || { cat "$d/log"; echo "FAIL: make install"; exit 1; }
D=$d/p/bin/gpt2in-dask-shard
[ "$(head -n 1 "$D")" = "#!/usr/bin/python3" ] || bad "shebang: $(head -n 1 "$D")"
printf '{"text":"doc one"}\n{"text":"doc two"}\n' > "$d/f.jsonl"
"$d/p/bin/gpt2in" shard --quiet --out "$d/ref" "$d/f.jsonl" || bad "installed gpt2in shard: exit $?"
# not on PATH: only the one beside the driver can be found
(cd "$d" && PATH=/usr/bin:/bin "$D" --quiet --local 1 --out "$d/o" f.jsonl) > "$d/err" 2>&1 ||
    bad "installed driver, gpt2in not on PATH: exit $?: $(tail -n 3 "$d/err")"
cmp -s "$d/ref/corpus_val_000000.bin" "$d/o/corpus_val_000000.bin" || bad "installed driver: other shard"
# a Python without dask.distributed (-S: no site-packages)
/usr/bin/python3 -S "$D" --local 1 --out "$d/o2" "$d/f.jsonl" > "$d/err" 2>&1; rc=$?
[ $rc -eq 2 ] && [ "$(wc -l < "$d/err")" -eq 1 ] && grep -q "cannot import dask.distributed" "$d/err" ||
    bad "Python without distributed: exit $rc, want 2 and one line: $(head -c 400 "$d/err")"
[ $fail -eq 0 ] && echo "ok: the installed gpt2in-dask-shard finds its gpt2in"
exit $fail
