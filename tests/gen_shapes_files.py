#!/usr/bin/python3
"""Files of every format gpt2in tells apart by its first bytes, written by
independent writers (NumPy for .npy, short struct-based writers following
each format's documented layout), for tests/test_shapes_detect.sh:

    /usr/bin/python3 tests/gen_shapes_files.py DIR

DIR/good: ids.txt ids.json ids.npy ids_batch.npy ids.llmc ids.u16 (ids 1 2 3 4
5 6, the batch [[1, 2, 3], [4, 5, 6]]), model.safetensors, model.npy,
model.llmc (llm.c checkpoint, version 3), model.gguf (GGUF v3, F32),
tokenizer.llmc (llm.c tokenizer, version 2), plus notes.zip and notes.gz.
DIR/bad: malformed ids, one reason each; DIR/bad.txt lists
"name<TAB>text the message must hold<TAB>extra options".
"""
import gzip
import io
import json
import os
import struct
import sys
import zipfile

import numpy as np

d = sys.argv[1]
good, bad = os.path.join(d, "good"), os.path.join(d, "bad")
os.makedirs(good, exist_ok=True)
os.makedirs(bad, exist_ok=True)
IDS = [1, 2, 3, 4, 5, 6]
V, C, MAXT = 10, 4, 8
rng = np.random.default_rng(5)
wte = rng.standard_normal((V, C)).astype("<f4")
wpe = rng.standard_normal((MAXT, C)).astype("<f4")


def w(name, data, where=good):
    with open(os.path.join(where, name), "wb") as f:
        f.write(data)


def st(tensors):
    header, blobs, off = {}, [], 0
    for name, arr in tensors:
        b = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def shard(ids, count=None):
    h = np.zeros(256, "<i4")
    h[:3] = [20240520, 1, len(ids) if count is None else count]
    return h.tobytes() + np.array(ids, "<u2").tobytes()


# ---- ids ----------------------------------------------------------------------
w("ids.txt", b"1 2 3\n4 5 6\n")
w("ids.json", b"[1, 2, 3, 4, 5, 6]")
np.save(os.path.join(good, "ids.npy"), np.array(IDS, "<i4"))
np.save(os.path.join(good, "ids_batch.npy"), np.array(IDS, "<i8").reshape(2, 3))
w("ids_batch.json", b"[[1, 2, 3], [4, 5, 6]]")
w("ids_batch.txt", b"1 2 3\n\n4 5 6\n")
w("ids.llmc", shard(IDS))
w("ids.u16", np.array(IDS, "<u2").tobytes())

# ---- tables -------------------------------------------------------------------
w("model.safetensors", st([("wte.weight", wte), ("wpe.weight", wpe)]))
np.save(os.path.join(good, "model.npy"), wte)
# llm.c checkpoint (train_gpt2.c): 256 int32, then the 16 parameters in order
L, NH, VP = 1, 1, 16
hdr = np.zeros(256, "<i4")
hdr[:8] = [20240326, 3, MAXT, V, L, NH, C, VP]
wte_p = np.zeros((VP, C), "<f4")
wte_p[:V] = wte
sizes = [L * C, L * C, L * 3 * C * C, L * 3 * C, L * C * C, L * C, L * C, L * C,
         L * 4 * C * C, L * 4 * C, L * C * 4 * C, L * C, C, C]
rest = np.concatenate([rng.standard_normal(n).astype("<f4") for n in sizes])
w("model.llmc", hdr.tobytes() + wte_p.tobytes() + wpe.tobytes() + rest.tobytes())


# GGUF v3 (ggml's gguf.md): header, key-values, tensor infos (dims fastest
# first: [C, V]), padding to the alignment, data at aligned offsets
def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


kv = [(b"general.architecture", 8, gstr("gpt2")), (b"general.alignment", 4, struct.pack("<I", 32))]
tensors = [("token_embd.weight", wte), ("position_embd.weight", wpe)]
out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
for k, t, v in kv:
    out += struct.pack("<Q", len(k)) + k + struct.pack("<I", t) + v
off, data = 0, b""
for name, a in tensors:
    out += gstr(name) + struct.pack("<I", 2) + struct.pack("<QQ", a.shape[1], a.shape[0])
    out += struct.pack("<IQ", 0, off)
    b = a.tobytes()
    b += b"\0" * (-len(b) % 32)
    data += b
    off += len(b)
out += b"\0" * (-len(out) % 32)
w("model.gguf", out + data)

# llm.c tokenizer (version 2): 256 int32 (magic, version, vocab size, eot), then length-prefixed tokens
toks = [bytes([i]) for i in range(256)] + [b"he", b"<|endoftext|>"]  # all 256 bytes, as --vocab needs
th = np.zeros(256, "<i4")
th[:4] = [20240328, 2, len(toks), len(toks) - 1]
w("tokenizer.llmc", th.tobytes() + b"".join(bytes([len(t)]) + t for t in toks))
with zipfile.ZipFile(os.path.join(good, "notes.zip"), "w") as z:
    z.writestr("a.txt", "1 2 3")
w("notes.gz", gzip.compress(b"1 2 3\n"))

# ---- malformed ids: name, content, text the message must hold -----------------
cases = []


def b_(name, data, want, opts=""):
    if isinstance(data, np.ndarray):
        np.save(os.path.join(bad, name), data)
        name += ".npy"
    else:
        w(name, data, bad)
    cases.append((name, want, opts))


b_("ragged.json", b"[[1, 2], [3]]", "row 1 has 1 ids but row 0 has 2")
b_("ragged_longer.json", b"[[1], [2, 3]]", "row 1 has more ids than row 0 (1)")
b_("empty_row.json", b"[[1, 2], []]", "row 1 has 0 ids but row 0 has 2")
b_("empty_first_row.json", b"[[], [1]]", "row 1 has more ids than row 0 (0)")
b_("three_levels.json", b"[[[1]]]", "not deeper")
b_("row_then_id.json", b"[[1], 2]", "every element is a row of ids")
b_("id_then_row.json", b"[1, [2]]", "a list of ids holds no lists")
b_("unclosed_rows.json", b"[[1, 2], [3, 4]", "',' or ']' after a row")
b_("ragged.txt", b"1 2 3\n\n4 5\n", "row 1 has 2 ids but row 0 has 3")
b_("ragged_longer.txt", b"1\n\n2 3\n", "row 1 has more ids than row 0 (1)")
b_("three_d", np.zeros((2, 2, 2), "<i4"), "3-D .npy [2, 2, 2]")
b_("float_ids", np.zeros((2, 3), "<f4"), "holds no token ids")
b_("bool_ids", np.zeros(3, "|b1"), "holds no token ids")
b_("negative_2d", np.array([[1, -2]], "<i8"), "negative id")
# huge counts: the header promises far more ids than the data holds
huge = np.lib.format.header_data_from_array_1_0(np.zeros((1, 1), "<i4"))
for name, shape, want in [("huge_rows", (1 << 30, 1 << 20), "truncated .npy"),
                          ("overflow_shape", (1 << 63, 1 << 63), "more than 2^64")]:
    huge["shape"] = shape
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, huge)
    b_(name + ".npy", f.getvalue() + b"\0" * 16, want)
b_("huge_count.llmc", shard([1, 2], count=0x7FFFFFFF), "truncated llm.c shard")
b_("shard_v2.llmc", shard([1])[:4] + struct.pack("<i", 2) + shard([1])[8:], "version 2")
with open(os.path.join(d, "bad.txt"), "w") as f:
    for c in cases:
        f.write("\t".join(c) + "\n")
