#!/bin/sh
# A command stopped by SIGINT (Ctrl-C), SIGTERM or SIGHUP while it writes a
# named file removes its hidden temporary .NAME.tmp.XXXXXX and leaves the
# existing file as it was; the signal still ends it (exit status 128 + the
# signal's number). Checked for `embed -o` (blocked reading ids from a FIFO
# after writing several MB), `init --out` (a table of 800 MB stopped after
# its first MB) and `step --out` (a GPT-2-sized table), with SIGINT, SIGTERM
# and SIGHUP. A SIGINT the caller ignores (a background job of a shell)
# stays ignored: the run completes.
set -u
: "${GPT2IN:=build/gpt2in}"
[ -x "$GPT2IN" ] || { echo "skipped: $GPT2IN is not built"; exit 77; }
G=$GPT2IN
d=$(mktemp -d "${TMPDIR:-/tmp}/gpt2in-outsig.XXXXXX") || exit 2
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; exec 3>&- 2>/dev/null; rm -rf "$d"; }
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# A shell starts background jobs with SIGINT ignored; this runs a command
# with it at its default again, as a terminal's Ctrl-C finds it.
# (a command prefix, not a function: $! must be the command's own process)
if env --default-signal=INT true 2>/dev/null; then
    DFLT="env --default-signal=INT,TERM,HUP"
else
    printf '%s\n' 'import os, signal, sys' \
        'for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP): signal.signal(s, signal.SIG_DFL)' \
        'os.execvp(sys.argv[1], sys.argv[1:])' >"$d/dflt.py"
    DFLT="python3 $d/dflt.py"
fi

alive() { [ -r "/proc/$1/stat" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat")" != Z ]; }
temp_of() { ls -A "$d" | grep "^\.$1\.tmp\." | head -n 1; }
# until the temporary of NAME holds MIN bytes (0), or process $pid ended (1)
wait_temp() {
    n=0
    while alive "$pid" && [ $n -lt 6000 ]; do
        n=$((n + 1))
        t=$(temp_of "$1")
        if [ -n "$t" ] && [ "$(stat -c %s "$d/$t" 2>/dev/null || echo 0)" -ge "$2" ]; then
            return 0
        fi
        sleep 0.01
    done
    return 1
}
# send SIG to $pid and wait for it to end (killed if it has not in 10 s);
# its exit status in $rc
send() {
    kill -"$1" "$pid"
    n=0
    while alive "$pid" && [ $n -lt 1000 ]; do sleep 0.01; n=$((n + 1)); done
    alive "$pid" && { fail "SIG$1 did not stop it"; kill -9 "$pid"; }
    wait "$pid"
    rc=$?
    pid=
}
signum() { case $1 in INT) echo 2 ;; TERM) echo 15 ;; HUP) echo 1 ;; esac; }
# stopped WHAT SIG NAME RC: the process, stopped by SIG, exited RC, which
# tells that signal; no temporary of NAME is left, and $d/NAME is byte for
# byte $d/NAME.orig
stopped() {
    rc=$4
    [ "$rc" -eq $((128 + $(signum "$2"))) ] || fail "$1: exit $rc, expected $((128 + $(signum "$2"))) (stopped by SIG$2)"
    left=$(temp_of "$3")
    [ -z "$left" ] || { fail "$1: the temporary file $left was left behind"; rm -f "$d/$left"; }
    cmp -s "$d/$3" "$d/$3.orig" || fail "$1: $3 was changed"
}

M=tests/fixtures/embed/f32/model.safetensors  # V 300, C 48
printf 'old contents\n' >"$d/x.npy" && cp "$d/x.npy" "$d/x.npy.orig"

# ---- embed -o: stopped while it waits for more ids -----------------------------
mkfifo "$d/in"
for sig in INT TERM HUP; do
    $DFLT "$G" embed --weights "$M" -o "$d/x.npy" <"$d/in" 2>"$d/err" &
    pid=$!
    exec 3>"$d/in"
    awk 'BEGIN { for (i = 0; i < 20000; i++) print i % 300 }' >&3
    if wait_temp x.npy 2000000; then
        send "$sig"
        stopped "embed -o, SIG$sig" "$sig" x.npy $rc
    else
        fail "embed -o, SIG$sig: ended before writing 2 MB: $(cat "$d/err")"
    fi
    exec 3>&-
done

# SIGINT ignored by the caller (a background job): ignored still, the run
# completes, and its file replaces the old one
"$G" embed --weights "$M" -o "$d/x.npy" <"$d/in" 2>"$d/err" &
pid=$!
exec 3>"$d/in"
awk 'BEGIN { for (i = 0; i < 20000; i++) print i % 300 }' >&3
if wait_temp x.npy 2000000; then
    kill -INT "$pid"
    sleep 0.2
    alive "$pid" || fail "embed -o with SIGINT ignored: stopped by SIGINT"
fi
exec 3>&-
wait "$pid"
rc=$?
pid=
[ "$rc" -eq 0 ] || fail "embed -o with SIGINT ignored: exit $rc: $(cat "$d/err")"
[ -z "$(temp_of x.npy)" ] || fail "embed -o with SIGINT ignored: a temporary file was left"
cmp -s "$d/x.npy" "$d/x.npy.orig" && fail "embed -o with SIGINT ignored: the output was not written"
cp "$d/x.npy.orig" "$d/x.npy"

# ---- init: a large table stopped after its first MB ----------------------------
# (a run that ends before the signal comes is run again, up to three times)
printf 'old weights\n' >"$d/w.safetensors" && cp "$d/w.safetensors" "$d/w.safetensors.orig"
for sig in INT TERM; do
    tries=0
    while [ $tries -lt 3 ]; do
        tries=$((tries + 1))
        $DFLT "$G" init --out "$d/w.safetensors" --vocab 200000 --channels 1024 --ctx 8 2>"$d/err" &
        pid=$!
        if wait_temp w.safetensors 1000000; then
            send "$sig"
            stopped "init --out, SIG$sig" "$sig" w.safetensors $rc
            break
        fi
        wait "$pid"; pid=
        cp "$d/w.safetensors.orig" "$d/w.safetensors"
        [ $tries -eq 3 ] && fail "init --out, SIG$sig: never seen while writing"
    done
done

# ---- step: stopped while it writes the stepped table ---------------------------
"$G" init --out "$d/big.safetensors" --vocab 50257 --channels 768 --ctx 8 2>/dev/null ||
    fail "init of the table to step"
printf '1 2 3\n' >"$d/ids.txt"
# any [3, 768] float32 array serves as dLoss/dx
"$G" embed --weights "$d/big.safetensors" -o "$d/dx.npy" "$d/ids.txt" || fail "no dLoss/dx for step"
cp "$d/big.safetensors" "$d/big.safetensors.orig"
for sig in INT TERM; do
    tries=0
    while [ $tries -lt 3 ]; do
        tries=$((tries + 1))
        $DFLT "$G" step --weights "$d/big.safetensors" --ids "$d/ids.txt" --dout "$d/dx.npy" \
            --optimizer sgd --lr 0.1 --out "$d/big.safetensors" 2>"$d/err" &
        pid=$!
        if wait_temp big.safetensors 1; then
            send "$sig"
            # (a signal that comes after the rename finds the step done: again)
            if [ $rc -ne 0 ]; then
                stopped "step --out, SIG$sig" "$sig" big.safetensors $rc
                break
            fi
        else
            wait "$pid"; pid=
        fi
        cp "$d/big.safetensors.orig" "$d/big.safetensors"
        [ $tries -eq 3 ] && fail "step --out, SIG$sig: never seen while writing"
    done
done
ls -A "$d" | grep -q '\.tmp\.' && fail "temporary files left: $(ls -A "$d" | grep '\.tmp\.')"

[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "output signals: ok"
