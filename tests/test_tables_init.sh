#!/bin/sh
# gpt2in init --model / --format: the real layouts of gpt2, gpt2-medium,
# gpt2-large and gpt2-xl in safetensors, llm.c and GGUF, read back by an
# independent Python parser. The big files are not stored: init writes into
# a FIFO and the parser reads the header (and, for the safetensors and llm.c
# checkpoints, counts every byte of the gpt2-small file). Also: a small
# llm.c checkpoint's tables equal the safetensors file's of the same seed,
# its padding rows zero; `--full --channels 1024` writes gpt2-medium and
# says so, a width of no GPT-2 model is refused, --model with a
# contradicting --channels is refused.
set -u
: "${GPT2IN:=build/gpt2in}"
: "${SANITIZED:=0}"
PY=/usr/bin/python3
$PY -c 'import numpy' 2>/dev/null || { echo "skip: /usr/bin/python3 with numpy is needed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
die() { echo "FAIL $*"; fail=1; }

cat >"$tmp/parse.py" <<'EOF'
"""parse.py FORMAT MODEL FILE [count]: checks a header against MODEL's layout."""
import json, struct, sys
fmt, model, path = sys.argv[1:4]
count = len(sys.argv) > 4
L, C, H = {"gpt2": (12, 768, 12), "gpt2-medium": (24, 1024, 16), "gpt2-large": (36, 1280, 20),
           "gpt2-xl": (48, 1600, 25)}[model]
V, T, VP = 50257, 1024, 50304
f = open(path, "rb")
pos = 0
def rd(n):
    global pos
    b = f.read(n)
    assert len(b) == n, "short read"
    pos += n
    return b
def u(n):
    return int.from_bytes(rd(n), "little")
per_layer = 12 * C * C + 13 * C
if fmt == "safetensors":
    n = u(8)
    h = json.loads(rd(n))
    h.pop("__metadata__")
    names = set(h)
    want = {"wte.weight": [V, C], "wpe.weight": [T, C], "ln_f.weight": [C], "ln_f.bias": [C]}
    for l in range(L):
        p = "h.%d." % l
        want.update({p + "ln_1.weight": [C], p + "ln_1.bias": [C], p + "attn.bias": [1, 1, T, T],
                     p + "attn.c_attn.weight": [C, 3 * C], p + "attn.c_attn.bias": [3 * C],
                     p + "attn.c_proj.weight": [C, C], p + "attn.c_proj.bias": [C],
                     p + "ln_2.weight": [C], p + "ln_2.bias": [C], p + "mlp.c_fc.weight": [C, 4 * C],
                     p + "mlp.c_fc.bias": [4 * C], p + "mlp.c_proj.weight": [4 * C, C],
                     p + "mlp.c_proj.bias": [C]})
    assert names == set(want), "names differ: %s" % sorted(names ^ set(want))[:4]
    for k, s in want.items():
        assert h[k]["shape"] == s and h[k]["dtype"] == "F32", (k, h[k])
    data = max(v["data_offsets"][1] for v in h.values())
    assert data == 4 * (V * C + T * C + L * (per_layer + T * T) + 2 * C), "data size %d" % data
    if model == "gpt2":
        assert n == 14283, "gpt2's header is %d bytes, the real one 14283" % n
    total = 8 + n + data
elif fmt == "llmc":
    hdr = struct.unpack("<256i", rd(1024))
    assert list(hdr[:8]) == [20240326, 3, T, V, L, H, C, VP] and not any(hdr[8:]), hdr[:8]
    total = 1024 + 4 * (VP * C + T * C + L * per_layer + 2 * C)
else:
    assert rd(4) == b"GGUF" and u(4) == 3
    nt, nkv = u(8), u(8)
    def s():
        return rd(u(8)).decode()
    kv = {}
    for _ in range(nkv):
        k, t = s(), u(4)
        kv[k] = s() if t == 8 else struct.unpack("<f", rd(4))[0] if t == 6 else u(4)
    assert kv["general.architecture"] == "gpt2" and kv["general.name"] == model, kv
    assert (kv["gpt2.block_count"], kv["gpt2.embedding_length"], kv["gpt2.attention.head_count"],
            kv["gpt2.context_length"], kv["gpt2.feed_forward_length"]) == (L, C, H, T, 4 * C), kv
    infos = {}
    for _ in range(nt):
        name, nd = s(), u(4)
        dims = [u(8) for _ in range(nd)]
        assert u(4) == 0
        infos[name] = (dims, u(8))
    assert nt == 3 + 12 * L + 2, nt
    assert infos["token_embd.weight"][0] == [C, V] and infos["output.weight"][0] == [C, V]
    assert infos["position_embd.weight"][0] == [C, T]
    assert infos["blk.%d.attn_qkv.weight" % (L - 1)][0] == [C, 3 * C]
    assert infos["blk.0.ffn_down.weight"][0] == [4 * C, C], infos["blk.0.ffn_down.weight"]
    total = None
if count and total:
    got = pos
    while True:
        b = f.read(1 << 20)
        if not b:
            break
        got += len(b)
    assert got == total, "%d bytes, want %d" % (got, total)
print("ok")
EOF

# ---- real layouts through a FIFO -----------------------------------------------
models="gpt2 gpt2-medium gpt2-large gpt2-xl"
[ "$SANITIZED" = 1 ] && models="gpt2 gpt2-xl"
for model in $models; do
    for fmt in safetensors llmc gguf; do
        fifo=$tmp/fifo.$model.$fmt
        mkfifo "$fifo"
        count=
        [ "$model" = gpt2 ] && [ "$fmt" != gguf ] && [ "$SANITIZED" = 0 ] && count=count
        "$GPT2IN" init --model "$model" --format "$fmt" --full --out "$fifo" 2>"$tmp/init.err" &
        pid=$!
        if ! timeout 120 $PY "$tmp/parse.py" "$fmt" "$model" "$fifo" $count >"$tmp/p.out" 2>&1; then
            die "$model as $fmt: $(tail -n 3 "$tmp/p.out") $(cat "$tmp/init.err")"
            kill "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
        if [ -n "$count" ] && [ -s "$tmp/init.err" ]; then die "$model $fmt: $(cat "$tmp/init.err")"; fi
        rm -f "$fifo"
    done
done

# ---- --channels without --model ---------------------------------------------------
fifo=$tmp/fifo.c1024
mkfifo "$fifo"
"$GPT2IN" init --full --channels 1024 --out "$fifo" 2>"$tmp/note" &
pid=$!
timeout 120 $PY "$tmp/parse.py" safetensors gpt2-medium "$fifo" >"$tmp/p.out" 2>&1 ||
    die "--full --channels 1024 is not gpt2-medium: $(tail -n 2 "$tmp/p.out")"
wait "$pid" 2>/dev/null
grep -q "writing gpt2-medium (24 layers, 16 heads)" "$tmp/note" || die "no note for --channels 1024: $(cat "$tmp/note")"
for args in "--full --channels 1000" "--model gpt2 --channels 1024" "--model gpt2-xl --layers 12" \
            "--model gpt3" "--format npy" "--channels 10 --heads 3 --layers 1 --full"; do
    # shellcheck disable=SC2086
    "$GPT2IN" init $args --out "$tmp/x" >/dev/null 2>"$tmp/err"
    rc=$?
    [ $rc -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && [ ! -e "$tmp/x" ] ||
        die "init $args: exit $rc, $(cat "$tmp/err")"
done

# ---- a small llm.c checkpoint holds the same tables as the safetensors file ----
set -- --vocab 300 --ctx 16 --channels 64 --seed 5
"$GPT2IN" init --format llmc --layers 2 --heads 4 "$@" --out "$tmp/s.bin" || die "init llmc"
"$GPT2IN" init "$@" --out "$tmp/s.safetensors" || die "init safetensors"
"$GPT2IN" init --format gguf "$@" --out "$tmp/s.gguf" || die "init gguf"
$PY - "$tmp" <<'EOF' || fail=1
import json, sys, numpy as np
t = sys.argv[1]
st = open(t + "/s.safetensors", "rb").read()
n = int.from_bytes(st[:8], "little")
h = json.loads(st[8:8 + n])
def tab(k):
    b, e = h[k]["data_offsets"]
    return np.frombuffer(st[8 + n + b:8 + n + e], "<f4").reshape(h[k]["shape"])
wte, wpe = tab("wte.weight"), tab("wpe.weight")
raw = np.fromfile(t + "/s.bin", "<f4", offset=1024)
V, T, C, L, VP = 300, 16, 64, 2, 384
w = raw[:VP * C].reshape(VP, C)
ok = (w[:V] == wte).all() and (w[V:] == 0).all() and (raw[VP * C:VP * C + T * C] == wpe.ravel()).all()
ln1w = raw[VP * C + T * C:VP * C + T * C + L * C]
ok = ok and (ln1w == 1).all() and raw.size == VP * C + T * C + L * (12 * C * C + 13 * C) + 2 * C
g = open(t + "/s.gguf", "rb").read()
ok = ok and g.find(wte.tobytes()) > 0 and g.find(wpe.tobytes()) > 0
if not ok:
    print("FAIL the llm.c / GGUF tables are not the safetensors file's")
sys.exit(0 if ok else 1)
EOF
[ $fail -eq 0 ] && echo "tables init: every layout as the formats define it"
exit $fail
