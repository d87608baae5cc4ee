#!/bin/sh
# verify's tolerances take inf as the Python package's gpt2in.verify takes
# float("inf"): --atol inf passes every finite difference, --rtol inf every
# one whose reference is not 0 (inf x 0 is NaN, as in NumPy), and an
# infinite difference still fails; NaN ("nan", "-nan", "NaN", "nan(1)") is
# refused with one line naming it, exit 2, as gpt2in.verify raises
# ValueError; so are -inf and the other options' inf (--lr stays decimal).
# Where the package is built for this build ($B/python, by test_python.sh)
# its report is compared with the CLI's, line for line.
set -u
: "${GPT2IN:=build/gpt2in}"
: "${B:=build}"
[ -x "$GPT2IN" ] || { echo "skipped: $GPT2IN is not built"; exit 77; }
cli_name=vtol; . tests/cli_setup.sh
FX=tests/fixtures/embed/f32
M=$FX/model.safetensors
# the lookup without positions against the one with them: every value differs
v() { "$G" verify --weights "$M" --ids "$FX/ids.npy" --ref "$FX/out_pos.npy" "$@"; }

expect 1 "default tolerances" v
expect 0 "--atol inf" v --atol inf
has "$T/out" "(atol inf, rtol 1e-05)"; has "$T/out" "mismatches 0"
for s in INF Infinity +inf --atol=inf; do
    case $s in --*) expect 0 "$s" v "$s" ;; *) expect 0 "--atol $s" v --atol "$s" ;; esac
done
expect 0 "--rtol inf" v --rtol inf --atol 0
has "$T/out" "(atol 0, rtol inf)"
for s in nan NaN -nan +nan 'nan(1)'; do
    expect 2 "--atol $s" v --atol "$s"
    one_line "--atol $s" "--atol: \"$s\" is not a number: a tolerance is a number >= 0, or inf"
    expect 2 "--rtol $s" v --rtol "$s"
    one_line "--rtol $s" "--rtol: \"$s\" is not a number"
done
for s in -inf -1 0x10 inff '' ' 1'; do
    expect 2 "--atol '$s'" v --atol "$s"
    one_line "--atol '$s'" "is not a non-negative number (or inf)"
done
# other options' numbers stay decimal
printf '1 2 3\n' >"$T/ids.txt"
"$G" embed --weights "$M" -o "$T/dx.npy" "$T/ids.txt" || fail "embed for dLoss/dx"
expect 2 "step --lr inf" "$G" step --weights "$M" --ids "$T/ids.txt" --dout "$T/dx.npy" --optimizer sgd --lr inf --out "$T/w.safetensors"
[ -e "$T/w.safetensors" ] && fail "step --lr inf wrote its output"

PY=/usr/bin/python3
if [ -x $PY ] && $PY -c 'import numpy' 2>/dev/null; then
    # an infinite reference: the difference is infinite and fails at any tolerance;
    # rtol inf against a reference of 0 fails (NaN bound) unless equal
    $PY - "$FX/out.npy" "$T" <<'PYEOF' || fail "writing the references"
import sys, numpy as np
x = np.load(sys.argv[1])
r = x.astype(np.float32).copy(); r[0, 0] = np.inf
np.save(sys.argv[2] + "/inf.npy", r)
z = x.astype(np.float32).copy(); z[0, 1] = 0.0; z[0, 2] += 1.0
np.save(sys.argv[2] + "/zero.npy", z)
PYEOF
    w() { "$G" verify --weights "$M" --ids "$FX/ids.npy" "$@"; }
    expect 1 "an infinite difference with --atol inf --rtol inf" w --ref "$T/inf.npy" --atol inf --rtol inf
    has "$T/out" "mismatches 1"
    expect 1 "--rtol inf against a reference of 0" w --ref "$T/zero.npy" --atol 1 --rtol inf
    has "$T/out" "mismatches 1"; has "$T/out" "first mismatch: row 0, column 1"
    expect 0 "--atol inf against a reference of 0" w --ref "$T/zero.npy" --atol inf
    # the Python package's report, where it is built for this build
    if [ "${SANITIZED:-0}" = 0 ] && PYTHONPATH="$B/python" $PY -c 'import gpt2in' 2>/dev/null; then
        for args in "--atol inf" "--rtol inf --atol 0" "--atol 1 --rtol inf" "--atol inf --rtol inf"; do
            for ref in "$FX/out_pos.npy" "$T/inf.npy" "$T/zero.npy"; do
                # shellcheck disable=SC2086
                w --ref "$ref" $args >"$T/cli" 2>&1
                rc=$?
                set -- $args
                PYTHONPATH="$B/python" $PY - "$FX/out.npy" "$ref" "$@" >"$T/py" 2>&1 <<'PYEOF'
import sys, numpy as np, gpt2in
kw = dict(zip([a[2:] for a in sys.argv[3::2]], [float(a) for a in sys.argv[4::2]]))
rep = gpt2in.verify(np.load(sys.argv[1]), np.load(sys.argv[2]), **kw)
sys.stdout.write(str(rep))
sys.exit(0 if rep else 1)
PYEOF
                prc=$?
                [ $rc -eq $prc ] && cmp -s "$T/cli" "$T/py" ||
                    fail "verify $args --ref $(basename "$ref"): the CLI (exit $rc) and gpt2in.verify (exit $prc) differ: $(diff "$T/cli" "$T/py" | head -5)"
            done
        done
        for s in nan -nan; do
            PYTHONPATH="$B/python" $PY -c "import numpy as np, gpt2in
try: gpt2in.verify(np.zeros((1, 2), np.float32), np.zeros((1, 2), np.float32), atol=float('$s'))
except ValueError: raise SystemExit(2)" || [ $? -eq 2 ] || fail "gpt2in.verify(atol=$s) is not a ValueError"
        done
        echo "the Python package's reports: checked"
    else
        echo "note: the Python package is not built for $B (test_python.sh builds it): its reports not compared"
    fi
else
    echo "note: no NumPy: infinite references not checked"
fi
[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "verify tolerances: ok"
