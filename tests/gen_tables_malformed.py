#!/usr/bin/python3
"""gen_tables_malformed.py - the malformed catalogue of the llm.c, GGUF and
.npy table readers, written by this independent script (struct and NumPy,
from the formats' documentation), plus the files they must accept.

usage: gen_tables_malformed.py OUTDIR [CORPUS_DIR]

OUTDIR/good/*  files `gpt2in embed --weights F` must read
OUTDIR/bad/*   files it must refuse (exit 2, one line)
OUTDIR/expect.txt  "bad/NAME<TAB>a substring of the message" per bad file
CORPUS_DIR (optional): the same files copied into CORPUS_DIR/table_llmc,
table_gguf and table_npy, the fuzz targets' seed corpora.
"""
import os
import struct
import sys

import numpy as np

files = {}   # path -> bytes
expect = []  # (path, substring)


def good(name, data):
    files["good/" + name] = data


def bad(name, data, why):
    files["bad/" + name] = data
    expect.append(("bad/" + name, why))


# ---- llm.c ----------------------------------------------------------------------

def llmc(V=5, Vp=8, T=4, L=1, H=1, C=2, version=3, magic=20240326, extra=0, hdr_over=None):
    h = np.zeros(256, "<i4")
    h[:8] = [magic, version, T, V, L, H, C, Vp]
    if hdr_over:
        for k, v in hdr_over.items():
            h[k] = v
    n = Vp * C + T * C + L * (12 * C * C + 13 * C) + 2 * C
    esz = 4 if version == 3 else 2
    vals = np.arange(n, dtype=np.float32) / 8
    body = vals.astype("<f4").tobytes() if esz == 4 else (vals.view("<u4") >> 16).astype("<u2").tobytes()
    body = body[:max(0, len(body) + extra)] if extra < 0 else body + b"\0" * extra
    return h.tobytes() + body


good("llmc_f32.bin", llmc())
good("llmc_bf16.bin", llmc(version=5))
good("llmc_v_eq_vp.bin", llmc(V=8, Vp=8))
bad("llmc_short_header.bin", llmc()[:500], "shorter than llm.c's 1024-byte header")
bad("llmc_truncated.bin", llmc(extra=-4), "truncated?")
bad("llmc_trailing.bin", llmc(extra=4), "trailing bytes")
bad("llmc_version4.bin", llmc(version=4), "version 4 (header int 1) is not 3")
bad("llmc_version_neg.bin", llmc(hdr_over={1: -1}), "version -1")
bad("llmc_zero_channels.bin", llmc(hdr_over={6: 0}), "(channels) is 0")
bad("llmc_neg_layers.bin", llmc(hdr_over={4: -1}), "(num_layers) is -1")
bad("llmc_vp_below_v.bin", llmc(hdr_over={7: 4}), "below vocab_size")
bad("llmc_sizes_overflow.bin", llmc(hdr_over={2: 2**31 - 1, 3: 2**31 - 1, 4: 2**31 - 1,
                                               6: 2**31 - 1, 7: 2**31 - 1}), "overflow")
bad("llmc_layers_mismatch.bin", llmc(hdr_over={4: 2}), "truncated?")
bad("llmc_bf16_as_f32.bin", llmc(version=5, hdr_over={1: 3}), "truncated?")
bad("llmc_bad_magic.bin", llmc(magic=20240327), "nor any other kind")

# ---- GGUF -------------------------------------------------------------------------

def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value, raw=False):
    out = gstr(key) + struct.pack("<I", vtype)
    if raw:
        return out + value
    fmt = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
           10: "<Q", 11: "<q", 12: "<d"}
    if vtype == 8:
        return out + gstr(value)
    if vtype == 9:
        et, items = value
        out += struct.pack("<IQ", et, len(items))
        return out + b"".join(gstr(i) if et == 8 else struct.pack(fmt[et], i) for i in items)
    return out + struct.pack(fmt[vtype], value)


def gguf(tensors=None, kvs=None, version=3, align=32, trailing=b"", cut=0, magic=b"GGUF",
         n_t=None, n_kv=None, offsets=None, pad_last=True):
    """tensors: (name, ggml type, dims fastest-first, raw bytes)."""
    if tensors is None:
        wte = np.arange(4 * 32, dtype="<f4") / 16
        tensors = [("token_embd.weight", 0, (32, 4), wte.tobytes()),
                   ("position_embd.weight", 0, (32, 2), wte[:64].tobytes())]
    if kvs is None:
        kvs = [kv("general.architecture", 8, "gpt2")]
    head = magic + struct.pack("<I", version)
    head += struct.pack("<QQ", len(tensors) if n_t is None else n_t, len(kvs) if n_kv is None else n_kv)
    head += b"".join(kvs)
    data, offs = b"", []
    for i, (name, gtype, dims, raw) in enumerate(tensors):
        offs.append(len(data))
        data += raw
        if pad_last or i + 1 < len(tensors):
            data += b"\0" * ((-len(raw)) % align)
    for i, (name, gtype, dims, raw) in enumerate(tensors):
        head += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        head += struct.pack("<IQ", gtype, offs[i] if offsets is None else offsets[i])
    head += b"\0" * ((-len(head)) % align)
    img = head + data + trailing
    return img[:len(img) - cut] if cut else img


def q8_0_rows(rows, cols):
    out = b""
    for r in range(rows * cols // 32):
        out += np.float16(0.5 + r).tobytes() + bytes((np.arange(32, dtype=np.int8) - 16).view(np.uint8))
    return out


wte = np.arange(4 * 32, dtype="<f4") / 16
good("gguf_f32.gguf", gguf())
good("gguf_f16.gguf", gguf([("token_embd.weight", 1, (32, 4), wte.astype("<f2").tobytes())]))
good("gguf_bf16.gguf", gguf([("token_embd.weight", 30, (32, 4), (wte.view("<u4") >> 16).astype("<u2").tobytes())]))
good("gguf_q8_0.gguf", gguf([("token_embd.weight", 8, (32, 4), q8_0_rows(4, 32))]))
good("gguf_v2_align64.gguf", gguf(version=2, align=64, kvs=[kv("general.alignment", 4, 64)]))
good("gguf_no_last_pad.gguf", gguf([("token_embd.weight", 0, (3, 4), wte[:12].tobytes())], pad_last=False))
good("gguf_all_kv_types.gguf", gguf(kvs=[
    kv("a.u8", 0, 1), kv("a.i8", 1, -1), kv("a.u16", 2, 2), kv("a.i16", 3, -2), kv("a.u32", 4, 3),
    kv("a.i32", 5, -3), kv("a.f32", 6, 0.5), kv("a.bool", 7, True), kv("a.str", 8, "x y"),
    kv("a.arr", 9, (8, ["p", "q", ""])), kv("a.arr32", 9, (5, [1, -2, 3])), kv("a.u64", 10, 2**64 - 1),
    kv("a.i64", 11, -2**63), kv("a.f64", 12, 1e300)]))
good("gguf_other_quant_beside.gguf", gguf([
    ("token_embd.weight", 0, (32, 4), wte.tobytes()),
    ("blk.0.ffn_up.weight", 12, (256, 1), b"\x11" * 144)]))
bad("gguf_short.gguf", b"GGUF\x03\0\0\0" + b"\0" * 8, "shorter than GGUF's 24-byte header")
bad("gguf_version1.gguf", gguf(version=1), "version 1")
bad("gguf_version4.gguf", gguf(version=4), "GGUF version 4")
bad("gguf_bigendian.gguf", gguf(version=3 << 24), "big-endian")
bad("gguf_kv_count_huge.gguf", gguf(n_kv=2**62), "key-value count")
bad("gguf_tensor_count_huge.gguf", gguf(n_t=2**40), "tensor count")
bad("gguf_kv_count_over.gguf", gguf(n_kv=2), "runs past the end")
bad("gguf_tensor_count_over.gguf", gguf(n_t=3), "tensor info 2")
bad("gguf_key_len_huge.gguf", gguf(kvs=[struct.pack("<Q", 2**64 - 1) + b"ab"]), "runs past the end")
bad("gguf_str_len_huge.gguf", gguf(kvs=[kv("k", 8, struct.pack("<Q", 2**63) + b"x", raw=True)]),
    "runs past the end")
bad("gguf_array_huge.gguf", gguf(kvs=[kv("k", 9, struct.pack("<IQ", 4, 2**62), raw=True)]),
    "run past the end")
bad("gguf_array_strings_huge.gguf", gguf(kvs=[kv("k", 9, struct.pack("<IQ", 8, 2**61), raw=True)]),
    "cannot fit")
bad("gguf_nested_array.gguf", gguf(kvs=[kv("k", 9, struct.pack("<IQ", 9, 1), raw=True)]),
    "arrays of arrays")
bad("gguf_value_type13.gguf", gguf(kvs=[kv("k", 13, b"", raw=True)]), "value type 13")
bad("gguf_empty_key.gguf", gguf(kvs=[kv("", 4, 1)]), "key-value 0: its key is empty")
bad("gguf_dup_key.gguf", gguf(kvs=[kv("k", 4, 1), kv("k", 4, 2)]), "appears twice")
bad("gguf_align_48.gguf", gguf(kvs=[kv("general.alignment", 4, 48)], align=48), "not a power of two")
bad("gguf_align_0.gguf", gguf(kvs=[kv("general.alignment", 4, 0)]), "not a power of two")
bad("gguf_align_u64.gguf", gguf(kvs=[kv("general.alignment", 10, 32)]), "not u32")
bad("gguf_5_dims.gguf", gguf([("t", 0, (1, 1, 1, 1, 1), b"\0" * 4)]), "5 dimensions")
bad("gguf_0_dims.gguf", gguf([("t", 0, (), b"\0" * 4)]), "0 dimensions")
bad("gguf_negative_dim.gguf", gguf([("t", 0, (2**63, 1), b"")]), "negative")
bad("gguf_dims_overflow.gguf", gguf([("t", 0, (2**32, 2**32), b"")]), "too many elements")
bad("gguf_type_removed.gguf", gguf([("t", 4, (32,), b"\0" * 20)]), "ggml type 4")
bad("gguf_type_unknown.gguf", gguf([("t", 99, (32,), b"\0" * 20)]), "ggml type 99")
bad("gguf_q8_0_partial_block.gguf", gguf([("t", 8, (30, 1), b"\0" * 34)]), "not whole Q8_0 blocks")
bad("gguf_offset_wrong.gguf", gguf(offsets=[0, 64]), "should be 512")
bad("gguf_offset_misaligned.gguf", gguf(offsets=[4, 516]), "should be 0")
bad("gguf_truncated_data.gguf", gguf(cut=100), "runs past the end of the file")
bad("gguf_trailing.gguf", gguf(trailing=b"\0" * 64), "trailing bytes")
bad("gguf_dup_tensor.gguf", gguf([("a", 0, (8,), b"\0" * 32), ("a", 0, (8,), b"\0" * 32)]),
    "appears twice")
bad("gguf_long_name.gguf", gguf([("n" * 64, 0, (8,), b"\0" * 32)]), "over 63 bytes")
bad("gguf_data_past_end.gguf", gguf(trailing=b"")[:200], "runs past the end")
bad("gguf_data_but_no_tensors.gguf", gguf([], trailing=b"\0" * 32), "no tensors")
bad("gguf_bad_magic.gguf", gguf(magic=b"GGUG"), "nor any other kind")

# ---- .npy tables --------------------------------------------------------------------

def npy(a, fortran=False):
    import io
    b = io.BytesIO()
    np.save(b, np.asfortranarray(a) if fortran else a)
    return b.getvalue()


good("npy_f4.npy", npy(wte.reshape(4, 32)))
good("npy_f2.npy", npy(wte.reshape(4, 32).astype("<f2")))
bad("npy_truncated.npy", npy(wte.reshape(4, 32))[:-4], "truncated")
bad("npy_trailing.npy", npy(wte.reshape(4, 32)) + b"\0" * 4, "trailing bytes")
bad("npy_f8_table.npy", npy(wte.reshape(4, 32).astype("<f8")), "must be F32, F16, BF16 or Q8_0")
bad("npy_1d_table.npy", npy(wte), "must be 2-D")
bad("npy_i4_table.npy", npy(np.arange(8, dtype="<i4").reshape(2, 4)), "must be F32, F16, BF16 or Q8_0")


def main():
    out = sys.argv[1]
    corpus = sys.argv[2] if len(sys.argv) > 2 else None
    for p, data in files.items():
        os.makedirs(os.path.join(out, os.path.dirname(p)), exist_ok=True)
        with open(os.path.join(out, p), "wb") as f:
            f.write(data)
        if corpus:
            kind = "llmc" if "llmc" in p else "gguf" if "gguf" in p else "npy"
            d = os.path.join(corpus, "table_" + kind)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, os.path.basename(p)), "wb") as f:
                f.write(data)
    with open(os.path.join(out, "expect.txt"), "w") as f:
        for p, why in expect:
            f.write("%s\t%s\n" % (p, why))


if __name__ == "__main__":
    main()
