#!/usr/bin/python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/ (committed; rerun
only to change them). Everything here is made independently of gpt2in:
.npy files by NumPy, safetensors images by hand per the format's spec,
the tiny vocabulary from the first merges of gpt2_weights/.

Usage: /usr/bin/python3 tests/fuzz/make_corpus.py   (from the repo root)
"""
import io
import json
import os
import shutil
import struct

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- encode: selector byte, two parameter bytes, text ----------------------
TEXTS = {
    "hello": b"hello world",
    "prose": b"The quick brown fox jumps over the lazy dog. It's 2024; we'll see.\n\nNew paragraph!",
    "spaces": b"Hello   world   \n\n  x  \t\tend   ",
    "contractions": b"DON'T don't it's 'sup can't've x\xe2\x80\x99s",
    "digits": b"0 00 000 0000000000000000 123456 l33t c0de 3.14159",
    "unicode": "na\u0301ive \u00b3\u00b2\u00b9 \u00bd a\u00a0b a\x1cb \u4e2d\u6587 \u041f\u0440\u0438\u0432\u0435\u0442 \U0001F600".encode(),
    "invalid": b"ok \xff\xfe \xc3 \xe2\x82 \xed\xa0\x80 \xc0\xaf \xf4\x90\x80\x80 end\xc3",
    "eot": b"hello <|endoftext|> world<|endoftext|><|endoftext",
    "code": b"def f(x):\n    return {'a': [1, 2, 3]}  # comment\n\tif x != 0: print(x)\n",
    "long": b"=" * 300 + b" " * 200 + b"a" * 100 + b"\n" * 50,
}
for i, (name, t) in enumerate(TEXTS.items()):
    for mode in range(4):
        if mode == 3 and name not in ("hello", "unicode", "invalid"):
            continue
        put("encode", f"{name}-{mode}", bytes([mode | (0x80 if i % 2 else 0), 7 * i + 3, 0x45 + i]) + t)

# ---- safetensors: built by hand per the spec --------------------------------
def safetensors(tensors, meta=None, pad=True):
    header, blobs, off = {}, [], 0
    if meta is not None:
        header["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


rng = np.random.default_rng(1)
wte = rng.normal(0, 0.02, (8, 4)).astype("<f4")
wpe = rng.normal(0, 0.02, (5, 4)).astype("<f4")
put("safetensors", "gpt2-like", safetensors(
    [("wpe.weight", "F32", wpe.shape, wpe.tobytes()), ("wte.weight", "F32", wte.shape, wte.tobytes())],
    {"format": "pt"}))
put("safetensors", "transformer-prefix", safetensors(
    [("transformer.wte.weight", "F16", wte.shape, wte.astype("<f2").tobytes()),
     ("transformer.wpe.weight", "F16", wpe.shape, wpe.astype("<f2").tobytes())]))
bf16 = (wte.view("<u4") >> 16).astype("<u2")
put("safetensors", "bf16", safetensors([("wte.weight", "BF16", wte.shape, bf16.tobytes())], {}))
put("safetensors", "edge", safetensors(
    [("empty", "F32", (0, 4), b""), ("scalar", "I64", (), struct.pack("<q", -5)),
     ("bools", "BOOL", (3,), b"\x00\x01\x00"), ("f4", "F4", (2, 2), b"\x12\x34"),
     ("u8", "U8", (2, 2, 2), bytes(range(8))), ("nan", "F32", (1, 2), struct.pack("<2f", float("nan"), float("inf")))],
    {"a": "b", "esc\"aped\\u00e9": "\u00e9\n"}))
put("safetensors", "whitespace", (lambda h: struct.pack("<Q", len(h)) + h + wte.tobytes())(
    b'  \n{"wte.weight" : {"dtype":"F32","shape":[8,4],"data_offsets":[0,128]}}\t '))
put("safetensors", "empty-header", safetensors([], pad=True))
good = safetensors([("wte.weight", "F32", wte.shape, wte.tobytes())])
put("safetensors", "near-truncated", good[:-3])
put("safetensors", "near-trailing", good + b"\0")
put("safetensors", "near-shape", good.replace(b"[8,4]", b"[8,5]"))
put("safetensors", "near-dtype", good.replace(b'"F32"', b'"F33"'))
put("safetensors", "near-lfs", b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 548105171\n")

# ---- npy: written by NumPy --------------------------------------------------
def npy(arr, version=None):
    b = io.BytesIO()
    if version is None:
        np.save(b, arr)
    else:
        np.lib.format.write_array(b, arr, version=version)
    return b.getvalue()


for descr in ["<f4", "<f2", "<f8", "<i4", "<i8", "<u2", "<u4", "|u1"]:
    a = (np.arange(12).reshape(3, 4) * 7 - 20).astype(descr if descr != "|u1" else "u1")
    put("npy", f"v1-{descr[1:]}", npy(a))
put("npy", "v2-f4", npy(np.ones((2, 3), "<f4"), (2, 0)))
put("npy", "v3-u2", npy(np.arange(5, dtype="<u2"), (3, 0)))
put("npy", "scalar", npy(np.float32(1.5)))
put("npy", "empty", npy(np.zeros((0, 3), "<f4")))
put("npy", "rank3", npy(np.zeros((2, 1, 2), "<i4")))
v = npy(np.arange(6, dtype="<f4"))
put("npy", "near-fortran", v.replace(b"'fortran_order': False", b"'fortran_order': True "))
put("npy", "near-truncated", v[:-2])
put("npy", "near-bigendian", v.replace(b"<f4", b">f4"))

# ---- vocab: encoder.json, 0xFF, vocab.bpe -----------------------------------
W = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "gpt2_weights")
enc = json.load(open(os.path.join(W, "encoder.json"), encoding="utf-8"))
merges = open(os.path.join(W, "vocab.bpe"), encoding="utf-8").read().split("\n")
NM = 44  # 256 bytes + 44 merges + <|endoftext|> = 301 tokens
tiny = {k: v for k, v in enc.items() if v < 256 + NM}
tiny["<|endoftext|>"] = 256 + NM
tiny_json = json.dumps(tiny, ensure_ascii=False).encode()
tiny_bpe = ("\n".join(merges[: NM + 1]) + "\n").encode()
put("vocab", "tiny-valid", tiny_json + b"\xff" + tiny_bpe)
put("vocab", "tiny-no-eot", json.dumps({k: v for k, v in tiny.items() if v < 256 + NM},
                                        ensure_ascii=False).encode() + b"\xff" + tiny_bpe)
put("vocab", "tiny-ascii-escapes", json.dumps(tiny).encode() + b"\xff" + tiny_bpe)
put("vocab", "tiny-crlf", tiny_json + b"\xff" + tiny_bpe.replace(b"\n", b"\r\n"))
put("vocab", "near-missing-merge", tiny_json + b"\xff" + ("\n".join(merges[: NM]) + "\n").encode())
put("vocab", "near-dup-id", tiny_json.replace(b'"!": 0', b'"!": 1') + b"\xff" + tiny_bpe)
put("vocab", "real-encoder-head", open(os.path.join(W, "encoder.json"), "rb").read()[:1500])
put("vocab", "real-vocab-head", b"{}\xff" + open(os.path.join(W, "vocab.bpe"), "rb").read()[:800])

# ---- ids: format selector (0 text, 1 u16, 2 u32, 3 npy, 4 json, 5 llmc, 6 auto; +8 = check vocab), cap, file
ids = [31373, 995, 0, 50256, 13, 198, 7]
llmc = struct.pack("<256i", *([20240520, 1, len(ids)] + [0] * 253)) + struct.pack(f"<{len(ids)}H", *ids)
files = {
    0: b"31373 995\n0 50256\t13 198 7\n",
    1: struct.pack(f"<{len(ids)}H", *ids),
    2: struct.pack(f"<{len(ids)}I", *ids) + struct.pack("<I", 70000),
    3: npy(np.array(ids, "<u2")),
    4: json.dumps(ids).encode(),
    5: llmc,
}
for fmt, data in files.items():
    for chk in (0, 8):
        put("ids", f"fmt{fmt}-{chk}", bytes([fmt | chk, 3 + fmt]) + data)
put("ids", "npy-u4", bytes([3, 100]) + npy(np.array(ids + [70000], "<u4")))
put("ids", "npy-i8", bytes([3 | 8, 1]) + npy(np.array(ids, "<i8")))
put("ids", "npy-i4-2d", bytes([3, 2]) + npy(np.array([ids[:3], ids[3:6]], "<i4")))
put("ids", "json-ws", bytes([4, 0]) + b" [ 1 ,2,\n 3 ] \n")
put("ids", "json-empty", bytes([4, 0]) + b"[]")
put("ids", "text-neg", bytes([0, 0]) + b"1 -2 3")
# batches [B, T] and the formats told from their first bytes
put("ids", "text-rows", bytes([0, 2]) + b"1 2 3\n4 5 6\n\n7 8 9\n10 11 12\n")
put("ids", "text-ragged", bytes([0, 1]) + b"1 2 3\n\n4 5\n")
put("ids", "json-rows", bytes([4, 1]) + b"[[1, 2], [3, 4], [5, 6]]")
put("ids", "json-ragged", bytes([4, 3]) + b"[[1, 2], [3]]")
put("ids", "json-empty-row", bytes([4, 3]) + b"[[], []]")
for fmt in (0, 3, 4, 5):
    put("ids", f"auto{fmt}", bytes([6 | 8, 4]) + files[fmt])
put("ids", "auto-npy-2d", bytes([6, 1]) + npy(np.array([ids[:3], ids[3:6]], "<u2")))
put("ids", "auto-json-rows", bytes([7, 2]) + b" [[1,2,3],[4,5,6]]")
put("ids", "auto-binary", bytes([6, 0]) + b"\x00\x01\x02\x03")
put("ids", "llmc-bad-count", bytes([5, 9]) + llmc[:8] + struct.pack("<i", 99) + llmc[12:])
print("corpus written to", ROOT)
