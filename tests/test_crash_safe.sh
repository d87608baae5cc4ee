#!/bin/sh
# Crash-safe saving, the hard ways (the injected write failure is in
# tests/test_save.c): a save that runs out of space on a small filesystem,
# and a save whose process is killed with SIGKILL in the middle. Each time the
# original file must be intact byte for byte and nothing partial may stand
# under the final name. (A killed process cannot remove its temporary file;
# it is named .NAME.tmp.XXXXXX and never taken for the file itself.)
set -u
: "${GPT2IN:=build/gpt2in}"
[ -x "$GPT2IN" ] || { echo "skipped: $GPT2IN is not built"; exit 77; }
d=$(mktemp -d) || exit 2
fail=0
cleanup() { umount "$d/small" 2>/dev/null; rm -rf "$d"; }
trap cleanup EXIT
bad() { echo "FAIL: $*"; fail=1; }

# ---- a full filesystem --------------------------------------------------------
mkdir "$d/small"
if mount -t tmpfs -o size=1m tmpfs "$d/small" 2>/dev/null; then
    "$GPT2IN" init --out "$d/small/w.safetensors" --vocab 1000 --ctx 16 --channels 64 --seed 1 || bad "small init"
    cp "$d/small/w.safetensors" "$d/orig.safetensors"
    # 4000 x 64 floats (1 MB) do not fit next to the original.
    "$GPT2IN" init --out "$d/small/w.safetensors" --vocab 4000 --ctx 16 --channels 64 --seed 2 \
        2>"$d/err"
    rc=$?
    [ $rc -eq 2 ] || bad "init on a full filesystem: exit $rc, expected 2"
    [ "$(wc -l < "$d/err")" -eq 1 ] || bad "init on a full filesystem: want one line on stderr, got: $(cat "$d/err")"
    grep -q "w.safetensors" "$d/err" || bad "the message does not name the file: $(cat "$d/err")"
    cmp -s "$d/orig.safetensors" "$d/small/w.safetensors" || bad "the original changed after a failed save"
    left=$(ls -A "$d/small" | grep -v '^w.safetensors$')
    [ -z "$left" ] || bad "files left behind on the full filesystem: $left"
    # step: the same, through embed_save.
    printf '1 2 3\n' > "$d/ids.txt"
    /usr/bin/python3 -c 'import numpy as np, sys; np.save(sys.argv[1], np.ones((3, 64), np.float32))' "$d/dout.npy" 2>/dev/null &&
    {
        # Fill the filesystem, then free 100 KB: less room than a copy needs.
        dd if=/dev/zero of="$d/small/filler" bs=1k 2>/dev/null
        truncate -s -100K "$d/small/filler"
        "$GPT2IN" step --weights "$d/small/w.safetensors" --ids "$d/ids.txt" --dout "$d/dout.npy" \
            --optimizer sgd --lr 0.1 --out "$d/small/w.safetensors" 2>"$d/err"
        rc=$?
        [ $rc -eq 2 ] || bad "step on a full filesystem: exit $rc, expected 2"
        cmp -s "$d/orig.safetensors" "$d/small/w.safetensors" || bad "the original changed after a failed step"
        left=$(ls -A "$d/small" | grep -v -e '^w.safetensors$' -e '^filler$')
        [ -z "$left" ] || bad "files left behind after a failed step: $left"
    }
    umount "$d/small"
    echo "full filesystem: checked (init and step)"
else
    echo "full filesystem: not checked (cannot mount a tmpfs here)"
fi

# ---- killed in the middle ---------------------------------------------------------
if [ "${SANITIZED:-0}" = 1 ]; then
    echo "killed save: checked in the normal build only"
else
    "$GPT2IN" init --out "$d/w.safetensors" --seed 3 --vocab 1000 --ctx 16 --channels 64 || bad "init"
    cp "$d/w.safetensors" "$d/orig.safetensors"
    # --full writes 548 MB: long enough to be caught halfway.
    "$GPT2IN" init --full --out "$d/w.safetensors" --seed 4 2>/dev/null &
    pid=$!
    n=0
    while [ $n -lt 200 ]; do   # until its temporary file holds some data
        tmpf=$(ls -A "$d" | grep '^\.w\.safetensors\.tmp\.' | head -n 1)
        [ -n "$tmpf" ] && [ "$(stat -c %s "$d/$tmpf" 2>/dev/null || echo 0)" -gt 1000000 ] && break
        sleep 0.02
        n=$((n + 1))
    done
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    if [ -z "$tmpf" ]; then
        echo "killed save: the write finished before it could be killed (nothing to check)"
    else
        size=$(stat -c %s "$d/$tmpf" 2>/dev/null || echo 0)
        cmp -s "$d/orig.safetensors" "$d/w.safetensors" || bad "the original changed after a killed save"
        "$GPT2IN" inspect "$d/w.safetensors" >/dev/null || bad "the file under the final name is not valid"
        echo "killed save: killed with $size bytes in $tmpf; the original is intact"
    fi
fi

[ $fail -eq 0 ] || exit 1
echo "crash-safe saves: ok"
