#!/bin/sh
# gpt2in init: deterministic GPT-2-shaped files, checked with NumPy (an
# independent reader) against the documented generator
# (tests/fixtures/formats/init_normal.txt, written by gen_formats_refs.py),
# crash safety under an injected write failure, and -- once, in a temporary
# folder, normal build only -- the 548 MB `--full` file with the real
# checkpoint's layout: header 14283 bytes, data from byte 14291 (unaligned),
# wte/wpe at the real offsets and readable through `gpt2in embed`.
set -u
: "${GPT2IN:=build/gpt2in}"
: "${SANITIZED:=0}"
PY=/usr/bin/python3
$PY -c 'import numpy' 2>/dev/null || { echo "skip: /usr/bin/python3 with numpy is needed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
die() { echo "FAIL $*"; fail=1; }

# ---- small files (a smaller vocabulary under the sanitizers) ------------------
V=50257
[ "$SANITIZED" = 1 ] && V=2000
"$GPT2IN" init --out "$tmp/a.safetensors" --seed 42 --vocab $V || die "init"
"$GPT2IN" init --out "$tmp/b.safetensors" --seed 42 --vocab $V || die "init again"
cmp -s "$tmp/a.safetensors" "$tmp/b.safetensors" || die "same seed, different bytes"
"$GPT2IN" init --out "$tmp/b.safetensors" --seed 43 --vocab $V || die "init seed 43"
cmp -s "$tmp/a.safetensors" "$tmp/b.safetensors" && die "seeds 42 and 43 gave the same file"
"$GPT2IN" init --out "$tmp/c.safetensors" --vocab 10 --ctx 4 --channels 3 --seed 1 || die "small"

$PY - "$tmp" tests/fixtures/formats/init_normal.txt $V <<'EOF' || fail=1
import json, struct, sys
import numpy as np
tmp, refs, V = sys.argv[1], sys.argv[2], int(sys.argv[3])
ref = {}
for line in open(refs):
    if line.startswith("#"):
        continue
    s, i, b = line.split()
    ref[(int(s), int(i))] = int(b, 16)

def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    return raw, n, h

ok = True
def check(c, msg):
    global ok
    if not c:
        print("FAIL", msg)
        ok = False

raw, n, h = load(tmp + "/a.safetensors")
check(n % 8 == 0, "header not padded to 8")
check(list(h) == ["__metadata__", "wte.weight", "wpe.weight"], "keys %s" % list(h))
check(h["__metadata__"] == {"format": "pt"}, "metadata")
W = V * 768 * 4
check(h["wte.weight"] == {"dtype": "F32", "shape": [V, 768], "data_offsets": [0, W]}, "wte entry")
check(h["wpe.weight"] == {"dtype": "F32", "shape": [1024, 768], "data_offsets": [W, W + 3145728]}, "wpe entry")
check(len(raw) == 8 + n + W + 3145728, "file size")
data = np.frombuffer(raw, dtype="<f4", offset=8 + n)
wte, wpe = data[:V * 768], data[V * 768:]
for (seed, i), bits in ref.items():
    if seed == 42 and i < wte.size:
        check(wte[i:i + 1].view("<u4")[0] == bits, "wte element %d differs from the reference" % i)
    if seed == 43 and i < wpe.size:
        check(wpe[i:i + 1].view("<u4")[0] == bits, "wpe element %d differs from the reference" % i)
check(abs(float(wte.mean())) < 3e-4 and abs(float(wte.std()) - 0.02) < 3e-4,
      "wte mean %g std %g" % (wte.mean(), wte.std()))

raw, n, h = load(tmp + "/c.safetensors")
check(h["wte.weight"]["shape"] == [10, 3] and h["wpe.weight"]["shape"] == [4, 3], "small shapes")
sys.exit(0 if ok else 1)
EOF

# bad arguments: one line, exit 2, nothing written
for args in "" "--out" "--out $tmp/x --vocab 0" "--out $tmp/x --seed -1" "--out $tmp/x --bogus" \
            "--out $tmp/x --channels 1e3"; do
    # shellcheck disable=SC2086
    "$GPT2IN" init $args >/dev/null 2>"$tmp/err"
    rc=$?
    [ $rc -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] || die "init $args: exit $rc, $(cat "$tmp/err")"
done
[ -e "$tmp/x" ] && die "a file was written for bad arguments"

# injected write failure (a test build's hook, -DGPT2IN_FAULTS): the existing
# file stays as it was, no temporary left; a release build has no hook
cp "$tmp/c.safetensors" "$tmp/keep.safetensors"
GPT2IN_TEST_FAIL_WRITE_AFTER=100 "$GPT2IN" init --out "$tmp/c.safetensors" --seed 9 2>"$tmp/err"
rc=$?
if [ "${FAULTS:-0}" = 1 ]; then
    [ $rc -eq 2 ] || die "injected failure: exit $rc"
    grep -q 'write error: No space left on device (after 100 bytes' "$tmp/err" || die "injected failure message: $(cat "$tmp/err")"
    cmp -s "$tmp/c.safetensors" "$tmp/keep.safetensors" || die "original changed by a failed init"
    ls -A "$tmp" | grep -q '\.tmp\.' && die "temporary file left behind"
else
    [ $rc -eq 0 ] || die "the write-failure hook is live in a build without -DGPT2IN_FAULTS: exit $rc"
    echo "init: injected write failure skipped (a build without -DGPT2IN_FAULTS)"
fi

# ---- --full: the real checkpoint's layout --------------------------------------
if [ "$SANITIZED" = 1 ]; then
    echo "init: --full skipped in the sanitizer build (checked once, in the normal build)"
    exit $fail
fi
if [ "${GPT2IN_CHECK:-0}" = 1 ]; then
    echo "init: --full skipped: not in make check"
    exit $fail
fi
avail=$(df -Pk "$tmp" | awk 'NR==2 {print $4}')
if [ "${avail:-0}" -lt 1200000 ]; then
    echo "init: --full skipped: less than 1.2 GB free in $tmp"
    exit $fail
fi
f="$tmp/full.safetensors"
"$GPT2IN" init --out "$f" --full --seed 42 || die "init --full"
"$GPT2IN" inspect "$f" >"$tmp/inspect.txt" || die "inspect --full"
grep -q 'header length: 14283 bytes; data starts at byte 14291 (3 mod 8)' "$tmp/inspect.txt" ||
    die "inspect: $(head -3 "$tmp/inspect.txt")"
"$GPT2IN" inspect --json "$f" >"$tmp/inspect.json" || die "inspect --json --full"
printf '0 50256 1000\n' >"$tmp/ids.txt"
"$GPT2IN" embed --weights "$f" --positions --format f32 -o "$tmp/rows.f32" "$tmp/ids.txt" ||
    die "embed on the --full file"
$PY - "$f" "$tmp/inspect.json" "$tmp/rows.f32" <<'EOF' || fail=1
import json, sys
import numpy as np
path, js, rows = sys.argv[1:4]
ok = True
def check(c, msg):
    global ok
    if not c:
        print("FAIL", msg)
        ok = False
j = json.load(open(js))
t = {x["name"]: x for x in j["tensors"]}
check(j["file_size"] == 548105171 and j["header_len"] == 14283 and j["data_start"] == 14291, "sizes")
check(j["metadata"] == {"format": "pt"}, "metadata")
check(len(j["tensors"]) == 160, "%d tensors" % len(j["tensors"]))
check(t["wte.weight"]["data_offsets"] == [287209472, 441598976], "wte offsets")
check(t["wpe.weight"]["data_offsets"] == [267533312, 270679040], "wpe offsets")
check(j["tensors"][0]["name"] == "h.3.attn.c_proj.bias" and j["tensors"][0]["data_offsets"][0] == 0, "first")
check(j["tensors"][-1]["name"] == "h.2.attn.c_attn.weight" and
      j["tensors"][-1]["data_offsets"][1] == 548090880, "last")
check(all(x["dtype"] == "F32" for x in j["tensors"]), "dtypes")
check(sum(1 for n in t if n.endswith(".attn.bias")) == 12, "12 mask buffers")
check(t["h.0.attn.bias"]["shape"] == [1, 1, 1024, 1024], "mask shape")
# the file's own header, byte for byte the compact JSON of the real one
raw = open(path, "rb").read(14291)
hdr = json.loads(raw[8:])
check(list(hdr)[0] == "__metadata__", "metadata first")
check(json.dumps(hdr, separators=(",", ":")).encode() == raw[8:], "header not compact")
m = np.memmap(path, dtype=np.uint8, mode="r")
def tensor(name):
    b, e = t[name]["data_offsets"]
    return np.frombuffer(m[14291 + b:14291 + e].tobytes(), dtype="<f4").reshape(t[name]["shape"])
wte, wpe = tensor("wte.weight"), tensor("wpe.weight")
check(abs(float(wte.std()) - 0.02) < 1e-4 and abs(float(wpe.std()) - 0.02) < 1e-3, "embedding std")
check(np.all(tensor("h.5.ln_1.weight") == 1) and np.all(tensor("ln_f.bias") == 0), "layer norm")
check(np.all(tensor("h.7.mlp.c_fc.weight") == 0), "other weights zero")
mask = tensor("h.11.attn.bias")[0, 0]
check(np.array_equal(mask, np.tril(np.ones((1024, 1024), dtype="<f4"))), "mask lower-triangular")
out = np.fromfile(rows, dtype="<f4").reshape(3, 768)
want = wte[[0, 50256, 1000]] + wpe[[0, 1, 2]]
check(np.array_equal(out, want), "gpt2in embed rows differ from NumPy's reading of the file")
sys.exit(0 if ok else 1)
EOF
rm -f "$f"
[ $fail -eq 0 ] && echo "init: all checks passed"
exit $fail
