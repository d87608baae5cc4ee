#!/usr/bin/python3
"""Writes the file-format and dtype-conversion reference fixtures in
tests/fixtures/formats/ with NumPy and PyTorch (never with gpt2in itself).
Deterministic: running it again reproduces the committed files bit for bit.

    /usr/bin/python3 tests/gen_formats_refs.py [OUTDIR]

Files:
  npy_v{1,2,3}_{descr}.npy  np.arange(6) (bool: i % 2) as a (2, 3) array of
                            every supported descr, written by NumPy with
                            format versions 1.0, 2.0 and 3.0
  npy_scalar.npy            a 0-d <f8 array holding 2.5
  npy_empty.npy             a (0, 3) <i8 array
  npy_1d.npy                np.arange(5, dtype='<u2'), shape (5,)
  sample.safetensors        written by hand from the spec (not by gpt2in):
                            indented JSON, keys not in offset order,
                            unpadded header so the data starts unaligned;
                            see sample.txt
  sample.txt                "name dtype shape begin end" lines + metadata
  conversions.txt           FNV-1a 64 checksums of F16/BF16 <-> F32
                            conversions over big deterministic input sets
                            (NumPy for F16, PyTorch for BF16), defined below
                            and rebuilt the same way by tests/test_dtype.c
  conversions_spot.txt      readable spot checks: "kind input output" (hex)

No safetensors Python package exists in Debian bookworm (apt-cache policy
python3-safetensors: none), so the sample file is built here by hand.
"""
import json
import os
import struct
import sys

import numpy as np
import torch

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "fixtures", "formats")
os.makedirs(OUT, exist_ok=True)

# ---- .npy ------------------------------------------------------------------

DESCRS = ["<f2", "<f4", "<f8", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "|b1"]


def save_npy(path, arr, version):
    with open(path, "wb") as f:
        np.lib.format.write_array(f, arr, version=version, allow_pickle=False)


for v in [(1, 0), (2, 0), (3, 0)]:
    for d in DESCRS:
        if d == "|b1":
            a = (np.arange(6) % 2).astype(bool).reshape(2, 3)
        else:
            a = np.arange(6).astype(np.dtype(d)).reshape(2, 3)
        tag = d[1:]
        save_npy(os.path.join(OUT, "npy_v%d_%s.npy" % (v[0], tag)), a, v)
save_npy(os.path.join(OUT, "npy_scalar.npy"), np.array(2.5, dtype="<f8"), (1, 0))
save_npy(os.path.join(OUT, "npy_empty.npy"), np.zeros((0, 3), dtype="<i8"), (1, 0))
save_npy(os.path.join(OUT, "npy_1d.npy"), np.arange(5, dtype="<u2"), (1, 0))

# ---- a safetensors file by hand ----------------------------------------------

tensors = [  # (name, array, dtype name); data is laid out in this order
    ("b.f16", np.array([1.0, -2.0, 0.5, 65504.0], dtype="<f2"), "F16"),
    ("a.f32", (np.arange(6, dtype="<f4") * 0.25 - 1.0).reshape(2, 3), "F32"),
    ("c.bf16", np.array([0x3F80, 0xC000, 0x7F80], dtype="<u2"), "BF16"),  # 1, -2, inf
    ("d.i64", np.array([-1, 2 ** 40], dtype="<i8"), "I64"),
    ("e.empty", np.zeros((0, 4), dtype="<f4"), "F32"),
    ("f.scalar", np.array(7, dtype="<i4"), "I32"),
    ("g.u8", np.arange(3, dtype="u1"), "U8"),
]
header, blobs, off, lines = {}, [], 0, []
for name, arr, dt in tensors:
    b = np.ascontiguousarray(arr).tobytes()
    header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
    lines.append("%s %s %s %d %d" % (name, dt, ",".join(map(str, arr.shape)) or "-", off, off + len(b)))
    blobs.append(b)
    off += len(b)
# reverse key order and indent, metadata last: key order must not matter
obj = {k: header[k] for k in reversed(list(header))}
obj["__metadata__"] = {"format": "pt", "note": "caf\u00e9 \"quoted\""}
h = (" \n" + json.dumps(obj, indent=1, ensure_ascii=False) + "\t\n").encode()
if (8 + len(h)) % 4 == 0:
    h += b" "  # keep the data start unaligned
with open(os.path.join(OUT, "sample.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
with open(os.path.join(OUT, "sample.txt"), "w") as f:
    f.write("header_len %d\n" % len(h))
    f.write("meta format pt\n")
    for l in lines:
        f.write(l + "\n")

# ---- conversions ---------------------------------------------------------------
# Input sets (tests/test_dtype.c builds the same ones):
#   halfs:      all 65536 bit patterns
#   f32 -> f16: u = i*4096 + (i & 4095) for i < 2^20, then for every half h with
#               b = bits(f32(h)): b, b+0xfff, b+0x1000, b+0x1001 (mod 2^32)
#   f32 -> bf16: u = i*4096 + (i & 4095) for i < 2^20, then for every h < 65536:
#               (h<<16) + 0, 0x7fff, 0x8000, 0x8001


def fnv64_fast(data):
    hv = 0xCBF29CE484222325
    p = 0x100000001B3
    m = 0xFFFFFFFFFFFFFFFF
    for byte in data:
        hv = ((hv ^ byte) * p) & m
    return hv


halfs = np.arange(65536, dtype=np.uint32).astype(np.uint16)
f16_to_f32 = halfs.view(np.float16).astype(np.float32).view(np.uint32)
bf16_to_f32 = torch.from_numpy(halfs.astype(np.int16)).view(torch.bfloat16).to(torch.float32) \
    .view(torch.int32).numpy().view(np.uint32)

i = np.arange(1 << 20, dtype=np.uint64)
grid = ((i * 4096 + (i & 4095)) & 0xFFFFFFFF).astype(np.uint32)
b = f16_to_f32.astype(np.uint64)
f16_edges = np.stack([b, b + 0xFFF, b + 0x1000, b + 0x1001], axis=1).reshape(-1)
f16_in = np.concatenate([grid, (f16_edges & 0xFFFFFFFF).astype(np.uint32)])
hb = halfs.astype(np.uint64) << 16
bf_edges = np.stack([hb, hb + 0x7FFF, hb + 0x8000, hb + 0x8001], axis=1).reshape(-1)
bf_in = np.concatenate([grid, (bf_edges & 0xFFFFFFFF).astype(np.uint32)])

with np.errstate(over="ignore", invalid="ignore"):
    f32_to_f16 = f16_in.view(np.float32).astype(np.float16).view(np.uint16)
f32_to_bf16 = torch.from_numpy(bf_in.view(np.int32)).view(torch.float32).to(torch.bfloat16) \
    .view(torch.int16).numpy().view(np.uint16)


def canon_nan16(x):
    # NaN payloads are not compared (NumPy and hardware differ on them): any
    # half NaN becomes sign | 0x7e00
    x = x.copy()
    nan = ((x & 0x7C00) == 0x7C00) & ((x & 0x3FF) != 0)
    x[nan] = (x[nan] & 0x8000) | 0x7E00
    return x


def canon_nan_bf16(x):
    # PyTorch's vectorised path writes NaN as 0xffff, its scalar path as
    # 0x7fc0 (what gpt2in writes): compare only that a NaN stays a NaN
    x = x.copy()
    x[((x & 0x7F80) == 0x7F80) & ((x & 0x7F) != 0)] = 0x7FC0
    return x


sums = {
    "f16_to_f32": fnv64_fast(f16_to_f32.astype("<u4").tobytes()),
    "bf16_to_f32": fnv64_fast(bf16_to_f32.astype("<u4").tobytes()),
    "f32_to_f16": fnv64_fast(canon_nan16(f32_to_f16).astype("<u2").tobytes()),
    "f32_to_bf16": fnv64_fast(canon_nan_bf16(f32_to_bf16).astype("<u2").tobytes()),
}
with open(os.path.join(OUT, "conversions.txt"), "w") as f:
    f.write("# FNV-1a 64 of the little-endian outputs; inputs as in gen_formats_refs.py\n")
    f.write("count f32_to_f16 %d f32_to_bf16 %d\n" % (len(f16_in), len(bf_in)))
    for k, v in sums.items():
        f.write("%s %016x\n" % (k, v))

spot_f32 = [0.0, -0.0, 1.0, -1.0, 65504.0, 65519.99, 65520.0, 1e-8, 2.0 ** -24, 2.0 ** -25,
            2.0 ** -25 * 1.0000001, 3 * 2.0 ** -26, 6.1035156e-05, 6.097555e-05, 0.1, 1 / 3,
            float("inf"), float("-inf"), float("nan"), 1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11,
            3.0e38, 1.00390625, 1.01171875, -1.5e-45]
with open(os.path.join(OUT, "conversions_spot.txt"), "w") as f:
    f.write("# kind input output (hex bit patterns): NumPy f16, PyTorch bf16\n")
    for x in spot_f32:
        u = np.array([x], dtype=np.float32)
        with np.errstate(over="ignore"):
            h = canon_nan16(u.astype(np.float16).view(np.uint16))[0]
        bf = canon_nan_bf16(torch.from_numpy(u).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16))[0]
        f.write("f32_to_f16 %08x %04x\n" % (u.view(np.uint32)[0], h))
        f.write("f32_to_bf16 %08x %04x\n" % (u.view(np.uint32)[0], bf))
    for hbits in [0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x3C00, 0x7BFF, 0x7C00, 0xFC00, 0x7E00,
                  0x7C01, 0xFFFF, 0x3555]:
        f.write("f16_to_f32 %04x %08x\n" % (hbits, f16_to_f32[hbits]))
        f.write("bf16_to_f32 %04x %08x\n" % (hbits, bf16_to_f32[hbits]))

# ---- embed_init_normal's documented algorithm, written independently ----------
import math


def splitmix64_out(seed, j):
    m = 0xFFFFFFFFFFFFFFFF
    z = (seed + (j + 1) * 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


def init_normal(seed, i, std=0.02):
    k = i // 2
    u1 = ((splitmix64_out(seed, 2 * k) >> 11) + 1) * 2.0 ** -53
    u2 = (splitmix64_out(seed, 2 * k + 1) >> 11) * 2.0 ** -53
    r = math.sqrt(-2.0 * math.log(u1))
    a = 6.283185307179586476925286766559 * u2
    z = r * math.cos(a) if i % 2 == 0 else r * math.sin(a)
    return np.float32(np.float32(std) * z)  # float std times double z, rounded once


with open(os.path.join(OUT, "init_normal.txt"), "w") as f:
    f.write("# seed element f32-bits of embed_init_normal (std 0.02)\n")
    for seed in [0, 1, 42, 43, 0xFFFFFFFFFFFFFFFF]:
        for i in [0, 1, 2, 3, 1000, 1001, 38597375, 38597376]:
            f.write("%d %d %08x\n" % (seed, i, np.array([init_normal(seed, i)], dtype=np.float32).view(np.uint32)[0]))
print("wrote", OUT)
