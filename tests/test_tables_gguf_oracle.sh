#!/bin/sh
# GGUF files gpt2in WRITES, read back by an independent reader (npm
# @huggingface/gguf, pinned in tests/oracle/package-lock.json; skipped, 77,
# when it cannot be installed): `init --format gguf --full` (llama.cpp's
# GPT-2 tensor names, dims fastest-first, offsets padded to 32, the gpt2.*
# key-values) and `step --optimizer adam` on it (the step count added as a
# string key-value, every tensor info kept, the data moved to the next
# aligned offset). The token table's bytes are found where the oracle says
# the data is, equal to the safetensors file init writes with the same seed.
set -u
: "${GPT2IN:=build/gpt2in}"
PY=/usr/bin/python3
$PY -c 'import numpy' 2>/dev/null || { echo "skip: /usr/bin/python3 with numpy is needed"; exit 77; }
sh tests/oracle/install.sh || exit $?
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
oracle() { NODE_PATH=tests/oracle/node_modules node tests/oracle/tables_gguf.js "$1"; }
set -- --vocab 300 --ctx 16 --channels 64 --layers 2 --heads 4 --seed 7
"$GPT2IN" init --format gguf --full "$@" --out "$tmp/a.gguf" || { echo "FAIL init gguf"; exit 1; }
"$GPT2IN" init "$@" --out "$tmp/a.safetensors" || { echo "FAIL init safetensors"; exit 1; }
oracle "$tmp/a.gguf" >"$tmp/a.json" || { echo "FAIL: the oracle cannot read init's GGUF"; exit 1; }
printf '3 3 17\n' >"$tmp/ids.txt"
$PY -c "import numpy as np; np.save('$tmp/dout.npy', np.ones((3, 64), np.float32))"
cp "$tmp/a.gguf" "$tmp/a1.gguf"
for w in a b; do
    "$GPT2IN" step --weights "$tmp/$w.gguf" --ids "$tmp/ids.txt" --input-format text \
        --dout "$tmp/dout.npy" --optimizer adam --lr 0.01 --state "$tmp/st.safetensors" \
        --out "$tmp/b.gguf" || { echo "FAIL adam step on $w.gguf"; exit 1; }
done
oracle "$tmp/b.gguf" >"$tmp/b.json" || { echo "FAIL: the oracle cannot read step's GGUF"; exit 1; }
$PY - "$tmp" <<'EOF' || fail=1
import json, sys
t = sys.argv[1]
a, b = json.load(open(t + "/a.json")), json.load(open(t + "/b.json"))
ok = True
def check(c, m):
    global ok
    if not c:
        print("FAIL", m); ok = False
V, T, C, L, H = 300, 16, 64, 2, 4
names = ["token_embd.weight", "output.weight", "position_embd.weight"]
shapes = [[C, V], [C, V], [C, T]]
blk = [("attn_norm.weight", [C]), ("attn_norm.bias", [C]), ("attn_qkv.weight", [C, 3 * C]),
       ("attn_qkv.bias", [3 * C]), ("attn_output.weight", [C, C]), ("attn_output.bias", [C]),
       ("ffn_norm.weight", [C]), ("ffn_norm.bias", [C]), ("ffn_up.weight", [C, 4 * C]),
       ("ffn_up.bias", [4 * C]), ("ffn_down.weight", [4 * C, C]), ("ffn_down.bias", [C])]
for l in range(L):
    for n, s in blk:
        names.append("blk.%d.%s" % (l, n)); shapes.append(s)
names += ["output_norm.weight", "output_norm.bias"]; shapes += [[C], [C]]
check([x["name"] for x in a["tensors"]] == names, "tensor names: %s" % [x["name"] for x in a["tensors"]][:5])
check([[int(d) for d in x["shape"]] for x in a["tensors"]] == shapes, "tensor dims")
check(all(x["dtype"] == 0 for x in a["tensors"]), "all F32")
off = 0
for x, s in zip(a["tensors"], shapes):
    n = 4
    for d in s: n *= d
    check(int(x["offset"]) == off, "%s offset %s, want %d" % (x["name"], x["offset"], off))
    off += (n + 31) // 32 * 32
m = a["meta"]
want = {"general.architecture": (8, "gpt2"), "gpt2.block_count": (4, L), "gpt2.embedding_length": (4, C),
        "gpt2.context_length": (4, T), "gpt2.attention.head_count": (4, H),
        "gpt2.feed_forward_length": (4, 4 * C), "general.file_type": (4, 0)}
for k, (ty, v) in want.items():
    check(k in m and m[k]["type"] == ty and m[k]["value"] == v, "%s: %s" % (k, m.get(k)))
check(abs(m["gpt2.attention.layer_norm_epsilon"]["value"] - 1e-5) < 1e-9, "epsilon")
check(a["littleEndian"] and int(a["tensorDataOffset"]) % 32 == 0, "data offset aligned")
# the token table where the oracle says, equal to init's safetensors wte
raw = open(t + "/a1.gguf", "rb").read()
st = open(t + "/a.safetensors", "rb").read()
n = int.from_bytes(st[:8], "little")
hdr = json.loads(st[8:8 + n])
b0, e0 = hdr["wte.weight"]["data_offsets"]
d = int(a["tensorDataOffset"])
check(raw[d:d + V * C * 4] == st[8 + n + b0:8 + n + e0], "token_embd bytes are not init's wte")
check(raw[d + V * C * 4:d + 2 * V * C * 4] == st[8 + n + b0:8 + n + e0], "output.weight is not wte")
# after two adam steps: one more key-value, the same tensor infos
mb = b["meta"]
check(mb.get("gpt2in.adam_step") == {"type": 8, "value": "2"}, "adam step: %s" % mb.get("gpt2in.adam_step"))
check(int(mb["kv_count"]["value"]) == int(m["kv_count"]["value"]) + 1, "kv count")
check(b["tensors"] == a["tensors"], "tensor infos changed")
check(int(b["tensorDataOffset"]) % 32 == 0, "step's data offset not aligned")
print("gguf oracle: %d tensors, %d key-values as written" % (len(names), int(m["kv_count"]["value"])))
sys.exit(0 if ok else 1)
EOF
exit $fail
