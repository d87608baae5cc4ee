#!/bin/sh
# Tables in every format gpt2in reads: llm.c checkpoints (F32 and BF16,
# padded vocabulary), GGUF (F32, F16, BF16, Q8_0; version 2 with alignment
# 64), .npy (<f4, <f2), each written by an independent writer
# (tests/gen_tables_fixtures.py: NumPy and struct, from the formats'
# documentation). Checked:
#  - embed's lookups (with and without positions) bit for bit against NumPy
#    (Q8_0 against a NumPy dequantisation);
#  - step --out writes the base's own format back: every byte outside the
#    touched rows identical (llm.c's padding rows too), the stepped rows bit
#    for bit NumPy's w - lr*g rounded to the table's dtype; a Q8_0 table is
#    refused with a message; adam on an llm.c file is refused (no place for
#    its step count) and leaves the state as it was; adam on GGUF keeps its
#    step count in a key-value;
#  - a file of another kind is named for what it is.
set -u
: "${GPT2IN:=build/gpt2in}"
PY=/usr/bin/python3
$PY -c 'import numpy' 2>/dev/null || { echo "skip: /usr/bin/python3 with numpy is needed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
die() { echo "FAIL $*"; fail=1; : >"$tmp/failed"; }
fx=$tmp/fx
$PY tests/gen_tables_fixtures.py "$fx" || { echo "FAIL generating the fixtures"; exit 1; }

# ---- lookups --------------------------------------------------------------------
while read -r name ext has_wpe V C; do
    f=$fx/$name.$ext
    "$GPT2IN" embed --weights "$f" --input-format npy -o "$tmp/$name.o.npy" "$fx/ids.npy" \
        2>"$tmp/err" || die "embed $name: $(cat "$tmp/err")"
    if [ "$has_wpe" = 1 ]; then
        "$GPT2IN" embed --weights "$f" --positions --pos-offset 1 --input-format npy \
            -o "$tmp/$name.p.npy" "$fx/ids.npy" 2>"$tmp/err" || die "embed --positions $name: $(cat "$tmp/err")"
    else
        "$GPT2IN" embed --weights "$f" --positions --input-format npy -o "$tmp/x.npy" \
            "$fx/ids.npy" 2>"$tmp/err" && die "$name: --positions on a .npy table worked"
        grep -q "no position table" "$tmp/err" || die "$name: --positions message: $(cat "$tmp/err")"
    fi
    # an id past V (llm.c: a padding row is not a token)
    echo "$V" >"$tmp/bad.txt"
    "$GPT2IN" embed --weights "$f" --input-format text -o "$tmp/x.npy" "$tmp/bad.txt" 2>"$tmp/err" &&
        die "$name: id $V (= V) was looked up"
done <"$fx/list.txt"
$PY - "$fx" "$tmp" <<'EOF' || fail=1
import sys, numpy as np
fx, tmp = sys.argv[1:]
ok = True
for line in open(fx + "/list.txt"):
    name, ext, has_wpe, V, C = line.split()
    pairs = [("o", "wte")] + ([("p", "pos")] if has_wpe == "1" else [])
    for mine, ref in pairs:
        a, b = np.load("%s/%s.%s.npy" % (tmp, name, mine)), np.load("%s/%s.%s.npy" % (fx, name, ref))
        if a.shape != b.shape or a.dtype != b.dtype or a.tobytes() != b.tobytes():
            bad = np.argwhere(a.view(np.uint32) != b.view(np.uint32)) if a.shape == b.shape else "shape"
            print("FAIL %s %s: lookups differ from NumPy's: %s %s" % (name, ref, a.shape, bad[:3]))
            ok = False
print("tables: %d files' lookups bit for bit NumPy's" % sum(1 for _ in open(fx + "/list.txt")))
sys.exit(0 if ok else 1)
EOF

# ---- step writes the same format back ------------------------------------------------
printf '3 3 17 0\n' >"$tmp/sids.txt"
$PY -c "
import numpy as np
d = np.zeros((4, 64), np.float32); d[0] = 1; d[1] = 0.25; d[2] = -2; d[3, :5] = [1, 2, 3, 4, 5]
np.save('$tmp/dout.npy', d)"
$PY -c "print(' '.join(str(i) for i in range(50)))" >"$tmp/all.txt"
grep -v q8_0 "$fx/list.txt" | while read -r name ext _; do
    f=$fx/$name.$ext
    out=$tmp/s.$name.$ext
    "$GPT2IN" step --weights "$f" --ids "$tmp/sids.txt" --input-format text --dout "$tmp/dout.npy" \
        --optimizer sgd --lr 0.5 --out "$out" 2>"$tmp/err" || { die "step $name: $(cat "$tmp/err")"; continue; }
    "$GPT2IN" embed --weights "$out" --input-format text -o "$tmp/lk.s.$name.npy" "$tmp/all.txt" &&
    "$GPT2IN" embed --weights "$f" --input-format text -o "$tmp/lk.b.$name.npy" "$tmp/all.txt" ||
        die "embed after step $name"
    $PY - "$f" "$out" "$tmp/lk.b.$name.npy" "$tmp/lk.s.$name.npy" "$tmp/dout.npy" <<'EOF' || die "step $name"
import sys, numpy as np
base, out, before, after, dout = sys.argv[1:]
a, b = open(base, "rb").read(), open(out, "rb").read()
ok = True
def fail(m):
    global ok
    print("FAIL", out, m); ok = False
if len(a) != len(b) or a[:8] != b[:8]:
    fail("not the same kind and size as its base (%d, %d bytes)" % (len(a), len(b)))
w0, w1, d = np.load(before), np.load(after), np.load(dout)
g = np.zeros_like(w0)
for t, i in enumerate([3, 3, 17, 0]):
    g[i] += d[t]
want = (w0 - np.float32(0.5) * g).astype(np.float32)
kind = "bf16" if "bf16" in base else "f16" if "f16" in base or "f2" in base else "f32"
if kind == "f16":
    with np.errstate(over="ignore"):
        want = want.astype(np.float16).astype(np.float32)
elif kind == "bf16":
    u = want.view(np.uint32).astype(np.uint64)
    want = (((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)
if want.tobytes() != w1.tobytes():
    fail("stepped rows are not NumPy's w - lr*g: rows %s" %
         sorted(set(np.argwhere(want.view(np.uint32) != w1.view(np.uint32))[:, 0].tolist())))
# every changed byte lies in a touched row: find each row's bytes in both files
esz = 4 if kind == "f32" else 2
diff = [i for i in range(min(len(a), len(b))) if a[i] != b[i]] if len(a) < 2000000 else []
rowbytes = 64 * esz
touched = set()
for r in (0, 3, 17):
    with np.errstate(over="ignore"):
        enc = {"f32": lambda x: x.tobytes(), "f16": lambda x: x.astype(np.float16).tobytes(),
               "bf16": lambda x: (x.view(np.uint32) >> 16).astype(np.uint16).tobytes()}[kind](w0[r])
    at = a.find(enc)
    if at < 0:
        fail("row %d not found in the base" % r); continue
    touched.update(range(at, at + rowbytes))
stray = [i for i in diff if i not in touched]
if stray:
    fail("%d bytes changed outside the touched rows (first at %d)" % (len(stray), stray[0]))
if not diff:
    fail("nothing changed")
sys.exit(0 if ok else 1)
EOF
done

# a quantised table cannot be stepped (no re-quantising): refused by name
"$GPT2IN" step --weights "$fx/gguf_q8_0.gguf" --ids "$tmp/sids.txt" --input-format text \
    --dout "$tmp/dout.npy" --optimizer sgd --lr 0.5 --out "$tmp/q.gguf" 2>"$tmp/err" &&
    die "step on a Q8_0 table worked"
grep -q "Q8_0" "$tmp/err" && [ "$(wc -l <"$tmp/err")" -eq 1 ] && [ ! -e "$tmp/q.gguf" ] ||
    die "Q8_0 step message: $(cat "$tmp/err")"
[ -e "$tmp/failed" ] && fail=1

# adam: GGUF keeps the step count in a key-value; llm.c has no place for it
cp "$fx/gguf_f16.gguf" "$tmp/a.gguf"
for k in 1 2; do
    "$GPT2IN" step --weights "$tmp/a.gguf" --ids "$tmp/sids.txt" --input-format text \
        --dout "$tmp/dout.npy" --optimizer adam --lr 0.01 --state "$tmp/a.state" --out "$tmp/a.gguf" \
        2>"$tmp/err" || die "adam step $k on GGUF: $(cat "$tmp/err")"
done
$PY - "$tmp/a.gguf" <<'EOF' || die "adam step count in the GGUF file"
import sys
b = open(sys.argv[1], "rb").read()
key = b"gpt2in.adam_step"
at = b.find(key)
assert at > 0 and b[at + len(key):at + len(key) + 4] == b"\x08\0\0\0", "no string key-value"
n = int.from_bytes(b[at + len(key) + 4:at + len(key) + 12], "little")
assert b[at + len(key) + 12:at + len(key) + 12 + n] == b"2", b[at:at + 40]
assert b.count(key) == 1
EOF
cp "$fx/llmc_f32.bin" "$tmp/a.bin"
"$GPT2IN" step --weights "$tmp/a.bin" --ids "$tmp/sids.txt" --input-format text --dout "$tmp/dout.npy" \
    --optimizer adam --lr 0.01 --state "$tmp/b.state" --out "$tmp/b.bin" 2>"$tmp/err" &&
    die "adam on an llm.c checkpoint worked"
grep -q "no place for metadata" "$tmp/err" && [ ! -e "$tmp/b.bin" ] && [ ! -e "$tmp/b.state" ] ||
    die "adam on llm.c: $(cat "$tmp/err"); $(ls "$tmp")"

# ---- crash safety: a step whose write fails leaves its file as it was --------
# (the write-failure hook of a -DGPT2IN_FAULTS build; FAULTS=1 from tests/run.sh)
if [ "${FAULTS:-0}" = 1 ]; then
    for f in llmc_f32.bin gguf_f16.gguf; do
        cp "$fx/$f" "$tmp/c.$f"
        GPT2IN_TEST_FAIL_WRITE_AFTER=3000 "$GPT2IN" step --weights "$tmp/c.$f" --ids "$tmp/sids.txt" \
            --input-format text --dout "$tmp/dout.npy" --optimizer sgd --lr 0.5 --out "$tmp/c.$f" \
            2>"$tmp/err" && die "$f: the injected write failure was not reported"
        grep -q "after 3000 bytes" "$tmp/err" || die "$f: injected failure message: $(cat "$tmp/err")"
        cmp -s "$tmp/c.$f" "$fx/$f" || die "$f changed by a failed step"
        ls -A "$tmp" | grep -q '\.tmp\.' && die "$f: temporary file left behind"
    done
fi

# ---- files of another kind are named ----------------------------------------------
$PY -c "
import numpy as np, struct
h = np.zeros(256, '<i4'); h[:3] = [20240520, 1, 4]
open('$tmp/shard.bin', 'wb').write(h.tobytes() + np.arange(4, dtype='<u2').tobytes())
h[:4] = [20240328, 2, 1, 0]
open('$tmp/tok.bin', 'wb').write(h.tobytes() + b'\x01a')
open('$tmp/x.json', 'w').write('[1, 2, 3]')"
for pair in "shard.bin:an llm.c token shard" "tok.bin:an llm.c tokenizer" "x.json:JSON"; do
    f=${pair%%:*} want=${pair#*:}
    "$GPT2IN" embed --weights "$tmp/$f" --input-format text "$tmp/sids.txt" >/dev/null 2>"$tmp/err" &&
        die "embed --weights $f worked"
    grep -q "is $want" "$tmp/err" || die "$f: message does not name its kind: $(cat "$tmp/err")"
done

[ $fail -eq 0 ] && echo "tables: all checks passed"
exit $fail
