#!/usr/bin/python3
"""Checks a float32 [T, C] stream on stdin (gpt2in embed --format f32)
against NumPy's own lookup table[ids], block by block, bit for bit.

  check_embed.py WEIGHTS.safetensors IDS.u32

The table is read straight from the safetensors file by this script (8-byte
length, JSON header, data), not through gpt2in. Prints the row count."""
import json
import struct
import sys

import numpy as np


def main():
    path, ids_path = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack_from("<Q", raw, 0)
    hdr = json.loads(raw[8 : 8 + n])
    t = hdr.get("wte.weight") or hdr["transformer.wte.weight"]
    assert t["dtype"] == "F32", t
    V, C = t["shape"]
    b, e = t["data_offsets"]
    table = np.frombuffer(raw, "<f4", count=V * C, offset=8 + n + b).reshape(V, C)
    ids = np.fromfile(ids_path, "<u4")
    inp = sys.stdin.buffer
    block = 1 << 20
    for s in range(0, len(ids), block):
        want = table[ids[s : s + block]]
        got = inp.read(want.nbytes)
        if len(got) != want.nbytes:
            sys.exit(f"check_embed: output ends at row {s + len(got) // (4 * C)}, want {len(ids)} rows")
        g = np.frombuffer(got, "<f4").reshape(-1, C)
        if not np.array_equal(g.view("<u4"), want.view("<u4")):
            bad = int(np.argwhere((g.view("<u4") != want.view("<u4")).any(axis=1))[0][0])
            sys.exit(f"check_embed: row {s + bad} (id {ids[s + bad]}) differs from the table")
    if inp.read(1):
        sys.exit("check_embed: output has more rows than ids")
    print(len(ids))


main()
