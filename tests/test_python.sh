#!/bin/sh
# The Python package (tools/python/): builds the extension against $B's
# libgpt2in.a into $B/python/ and runs its pytest suite (tools/python/tests/)
# with Debian's /usr/bin/python3. References: the committed tokenizer
# fixtures, and npm tiktoken through Node (tests/oracle/) for random strings
# when it can be installed (those tests skip otherwise).
# The other python3 on PATH (when it is not Debian's and has Python.h and
# setuptools): the extension is built for it too, into $B/python-other/, and
# tools/python/tests/smoke.py (no pytest or NumPy needed) runs the fixtures
# through it.
# Under SANITIZED=1 the extension is linked with ASan/UBSan and Python runs
# with the sanitizer runtimes preloaded (leak checks off: CPython keeps its
# interned objects to the end). --capture=sys leaves file descriptor 2 alone,
# so a sanitizer's report reaches the log.
set -u
: "${B:=build}"
PY=/usr/bin/python3
[ -x $PY ] || { echo "skipped: /usr/bin/python3 is missing"; exit 77; }
for m in pytest:python3-pytest numpy:python3-numpy setuptools:python3-setuptools hypothesis:python3-hypothesis; do
    $PY -c "import ${m%%:*}" 2>/dev/null || { echo "skipped: ${m#*:} is not installed (make deps)"; exit 77; }
done
$PY -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' ||
    { echo "skipped: python3-dev is not installed (make deps)"; exit 77; }
[ -f "$B/libgpt2in.a" ] || { echo "skipped: $B/libgpt2in.a is not built"; exit 77; }

root=$(pwd)
case $B in /*) bdir=$B ;; *) bdir=$root/$B ;; esac   # (GPT2IN_BUILDS may name absolute folders)
out=$bdir/python
preload=""
if [ "${SANITIZED:-0}" = 1 ]; then
    asan=$(cc -print-file-name=libasan.so); ubsan=$(cc -print-file-name=libubsan.so)
    [ -f "$asan" ] && [ -f "$ubsan" ] || { echo "skipped: the ASan/UBSan runtimes are not found"; exit 77; }
    export GPT2IN_SANITIZE="-fsanitize=address,undefined"
    preload="$asan $ubsan"
    export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0
fi
mkdir -p "$out"
(cd tools/python && GPT2IN_LIB="$bdir/libgpt2in.a" $PY setup.py -q build \
    --build-base "$out/tmp" --build-lib "$out" >"$out.log" 2>&1) ||
    { cat "$out.log"; echo "FAIL: building the extension"; exit 1; }

# make check (GPT2IN_CHECK=1) installs nothing: the oracle only if it is there
if [ "${GPT2IN_CHECK:-0}" = 1 ] && [ ! -f tests/oracle/node_modules/tiktoken/package.json ]; then
    echo "note: make check does not install npm tiktoken; the random-string oracle tests are skipped"
elif sh tests/oracle/install.sh >/dev/null 2>&1; then
    export GPT2IN_ORACLE="$root/tools/python/tests/oracle_batch.js"
else
    echo "note: npm tiktoken is not available; the random-string oracle tests are skipped"
fi
other=$(command -v python3 2>/dev/null)
if [ -n "$other" ] && [ "$($other -c 'import sys; print(sys.executable)' 2>/dev/null)" != \
        "$($PY -c 'import sys; print(sys.executable)')" ]; then
    if $other -c 'import os, sys, sysconfig, setuptools
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null; then
        oout=$bdir/python-other
        (cd tools/python && GPT2IN_LIB="$bdir/libgpt2in.a" $other setup.py -q build \
            --build-base "$oout/tmp" --build-lib "$oout" >"$oout.log" 2>&1) ||
            { cat "$oout.log"; echo "FAIL: building the extension for $other"; exit 1; }
        (cd "$oout" && PYTHONPATH="$oout" PYTHONDONTWRITEBYTECODE=1 LD_PRELOAD="$preload" \
            $other "$root/tools/python/tests/smoke.py" "$root") ||
            { echo "FAIL: the extension built for $other"; exit 1; }
    else
        echo "note: $other has no Python.h or setuptools; the package is tested with $PY only"
    fi
fi

export GPT2IN_ROOT="$root"
export PYTHONPATH="$out" PYTHONDONTWRITEBYTECODE=1
[ -n "$preload" ] && export LD_PRELOAD="$preload"
cd "$out" && exec $PY -m pytest -q -p no:cacheprovider --capture=sys \
    "$root/tools/python/tests"
