#!/usr/bin/python3
"""gen_tables_fixtures.py - weights files of every kind gpt2in reads, each
written by an independent writer (NumPy's np.save for .npy, struct and
NumPy for llm.c's documented layout and for GGUF), and the lookups they
must give, computed with NumPy.

usage: gen_tables_fixtures.py OUTDIR

Writes into OUTDIR:
  ids.npy                     int32 token ids (first, last, repeats)
  <name>.<ext>                a table file
  <name>.wte.npy              float32 wte[ids]
  <name>.pos.npy              float32 wte[ids] + wpe[POS0 + t] (files with wpe)
  list.txt                    "name ext has_wpe V C" per file
The llm.c files use a padded vocabulary (Vp > V) whose padding rows hold
999.0, so a lookup that reads a padding row shows. Q8_0 follows ggml's
quantize_row_q8_0_ref (d = amax / 127 as F16, q = round(x / d)) and the
expected rows are q * f32(d) in float32, ggml's dequantisation.
"""
import os
import struct
import sys

import numpy as np

POS0 = 1
V, C, T, L, H, VP = 50, 64, 16, 2, 2, 64


def table(rng, rows, cols):
    w = (rng.standard_normal((rows, cols)) * 0.5).astype(np.float32)
    # values whose conversions are easy to get wrong
    w[0, :6] = [0.0, -0.0, 1e-40, -3e-39, 65504.0, 2.0 ** -24]
    w[rows - 1, :3] = [1e30, -1e30, 1.0000001]
    return w


def bf16_bits(x):
    """float32 -> bfloat16 bits, round to nearest even (no NaNs here)."""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_to_f32(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


# ---- llm.c ---------------------------------------------------------------------

def llmc_shapes(vp, t, l, c):
    return [("wte", (vp, c)), ("wpe", (t, c)), ("ln1w", (l, c)), ("ln1b", (l, c)),
            ("qkvw", (l, 3 * c, c)), ("qkvb", (l, 3 * c)), ("attprojw", (l, c, c)),
            ("attprojb", (l, c)), ("ln2w", (l, c)), ("ln2b", (l, c)),
            ("fcw", (l, 4 * c, c)), ("fcb", (l, 4 * c)), ("fcprojw", (l, c, 4 * c)),
            ("fcprojb", (l, c)), ("lnfw", (c,)), ("lnfb", (c,))]


def write_llmc(path, rng, version):
    """llm.c's gpt2_build_from_checkpoint layout: int32 header[256], then the
    16 parameters in order. Returns the token rows (V) and wpe as float32."""
    hdr = np.zeros(256, dtype="<i4")
    hdr[:8] = [20240326, version, T, V, L, H, C, VP]
    params = []
    for name, shape in llmc_shapes(VP, T, L, C):
        n = int(np.prod(shape))
        params.append((name, (rng.standard_normal(n) * 0.1).astype(np.float32).reshape(shape)))
    wte = params[0][1]
    wte[:V] = table(rng, V, C)
    wte[V:] = 999.0
    params[1] = ("wpe", table(rng, T, C))
    with open(path, "wb") as f:
        f.write(hdr.tobytes())
        for _, p in params:
            if version == 3:
                f.write(p.astype("<f4").tobytes())
            else:
                f.write(bf16_bits(p).astype("<u2").tobytes())
    if version == 3:
        return wte[:V], params[1][1]
    return bf16_to_f32(bf16_bits(wte[:V])), bf16_to_f32(bf16_bits(params[1][1]))


# ---- GGUF ----------------------------------------------------------------------

def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value):
    out = gstr(key) + struct.pack("<I", vtype)
    fmt = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
           10: "<Q", 11: "<q", 12: "<d"}
    if vtype == 8:
        return out + gstr(value)
    if vtype == 9:
        et, items = value
        out += struct.pack("<IQ", et, len(items))
        for it in items:
            out += gstr(it) if et == 8 else struct.pack(fmt[et], it)
        return out
    return out + struct.pack(fmt[vtype], value)


def q8_0(x):
    """ggml's quantize_row_q8_0_ref, row by row: bytes and the dequantised
    float32 values."""
    rows, cols = x.shape
    blocks = x.reshape(rows, cols // 32, 32).astype(np.float32)
    amax = np.abs(blocks).max(axis=2)
    d = (amax / 127.0).astype(np.float32)
    inv = np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0).astype(np.float32)
    q = np.round(blocks * inv[:, :, None]).astype(np.int8)
    d16 = d.astype(np.float16)
    raw = bytearray()
    for r in range(rows):
        for b in range(cols // 32):
            raw += d16[r, b].tobytes() + q[r, b].tobytes()
    deq = (q.astype(np.float32) * d16.astype(np.float32)[:, :, None]).reshape(rows, cols)
    return bytes(raw), deq


def write_gguf(path, tensors, version=3, align=None, extra_kv=()):
    """tensors: (name, ggml_type, shape row-major, raw bytes)."""
    kvs = [kv("general.architecture", 8, "gpt2"), kv("gpt2.embedding_length", 4, C),
           kv("gpt2.block_count", 4, L), kv("gpt2.attention.layer_norm_epsilon", 6, 1e-5),
           kv("tokenizer.ggml.tokens", 9, (8, ["a", "b", "c"]))]
    if align:
        kvs.append(kv("general.alignment", 4, align))
    kvs += list(extra_kv)
    a = align or 32
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs)
    data = b""
    for name, gtype, shape, raw in tensors:
        head += gstr(name) + struct.pack("<I", len(shape))
        for dim in reversed(shape):  # GGUF: fastest-varying first
            head += struct.pack("<Q", dim)
        head += struct.pack("<IQ", gtype, len(data))
        data += raw + b"\0" * ((-len(raw)) % a)
    head += b"\0" * ((-len(head)) % a)
    with open(path, "wb") as f:
        f.write(head + data)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20240326)
    ids = np.array([0, V - 1, 3, 3, 17, 0, 42, V - 1], dtype=np.int32)
    np.save(os.path.join(out, "ids.npy"), ids)
    listing = []

    def expect(name, ext, wte, wpe):
        np.save(os.path.join(out, name + ".wte.npy"), wte[ids].astype(np.float32))
        if wpe is not None:
            pos = (wte[ids] + wpe[POS0:POS0 + len(ids)]).astype(np.float32)
            np.save(os.path.join(out, name + ".pos.npy"), pos)
        listing.append("%s %s %d %d %d" % (name, ext, wpe is not None, wte.shape[0], wte.shape[1]))

    for version, name in ((3, "llmc_f32"), (5, "llmc_bf16")):
        wte, wpe = write_llmc(os.path.join(out, name + ".bin"), rng, version)
        expect(name, "bin", wte, wpe)

    wte32, wpe32 = table(rng, V, C), table(rng, T, C)
    with np.errstate(over="ignore"):
        wte16, wpe16 = wte32.astype(np.float16), wpe32.astype(np.float16)
    wteb, wpeb = bf16_bits(wte32), bf16_bits(wpe32)
    # Q8_0 of plain values (a 1e30 would make an infinite F16 scale)
    qraw, qdeq = q8_0((rng.standard_normal((V, C)) * 0.5).astype(np.float32))
    pq, pdeq = q8_0((rng.standard_normal((T, C)) * 0.5).astype(np.float32))
    gg = [
        ("gguf_f32", 0, wte32.tobytes(), wpe32.tobytes(), wte32, wpe32, {}),
        ("gguf_f16", 1, wte16.tobytes(), wpe16.tobytes(), wte16.astype(np.float32),
         wpe16.astype(np.float32), {}),
        ("gguf_bf16", 30, wteb.tobytes(), wpeb.tobytes(), bf16_to_f32(wteb), bf16_to_f32(wpeb), {}),
        ("gguf_q8_0", 8, qraw, pq, qdeq, pdeq, {}),
        ("gguf_v2_align64", 0, wte32.tobytes(), wpe32.tobytes(), wte32, wpe32,
         {"version": 2, "align": 64}),
    ]
    for name, gtype, wraw, praw, wexp, pexp, opt in gg:
        ln = np.ones(C, dtype=np.float32).tobytes()
        write_gguf(os.path.join(out, name + ".gguf"),
                   [("token_embd.weight", gtype, (V, C), wraw),
                    ("position_embd.weight", gtype, (T, C), praw),
                    ("output_norm.weight", 0, (C,), ln)],
                   version=opt.get("version", 3), align=opt.get("align"))
        expect(name, "gguf", wexp, pexp)

    np.save(os.path.join(out, "npy_f4.npy"), wte32.astype("<f4"))
    expect("npy_f4", "npy", wte32, None)
    np.save(os.path.join(out, "npy_f2.npy"), wte16.astype("<f2"))
    expect("npy_f2", "npy", wte16.astype(np.float32), None)
    with open(os.path.join(out, "list.txt"), "w") as f:
        f.write("\n".join(listing) + "\n")


if __name__ == "__main__":
    main()
