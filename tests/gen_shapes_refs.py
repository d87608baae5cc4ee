#!/usr/bin/python3
"""References for batches of ids [B, T], computed by NumPy and PyTorch
(never by gpt2in), and the checks of what gpt2in wrote. Used by
tests/test_shapes_batch.sh:

    /usr/bin/python3 tests/gen_shapes_refs.py gen DIR
    /usr/bin/python3 tests/gen_shapes_refs.py check DIR

gen writes DIR/model.safetensors (wte 50 x 8, wpe 16 x 8, F32, our own
20-line writer), the ids of a batch B=3, T=5 (with repeated ids) as a 2-D
.npy, a JSON list of lists and blank-line-separated text rows, dout.npy
[3, 5, 8], and the expected results:
  x_pos.npy    wte[ids] + wpe[3 + arange(5)]   (NumPy, float32)
  x.npy        wte[ids]
  x_f16.npy    x_pos.astype(float16), as <u2 bits
  x_bf16.npy   torch's x_pos.bfloat16(), as <u2 bits
  sgd.*.npy    torch.optim.SGD(lr 0.1) after x.backward(dout), where
               x = F.embedding(ids, wte) + F.embedding(3 + arange(5), wpe)
               (the position rows broadcast over the batch)
  adam.*.npy   torch.optim.SparseAdam(lr 0.01), one step, given the dense
               gradients' touched rows as sparse tensors
check compares gpt2in's outputs in DIR with them, bit for bit, and prints
one line per difference; exit 1 if any.
"""
import json
import os
import struct
import sys

import numpy as np

from st_write import write_safetensors

B, T, C, V, MAXT, POS0 = 3, 5, 8, 50, 16, 3


def read_st(path):
    """name -> (dtype, shape, raw bytes)"""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        data = f.read()
    return {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in h.items() if k != "__metadata__"}


def gen(d):
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(17)
    wte = rng.standard_normal((V, C)).astype("<f4")
    wpe = rng.standard_normal((MAXT, C)).astype("<f4")
    ids = rng.integers(0, 12, (B, T)).astype("<i8")  # few distinct ids: repeats across rows
    dout = rng.standard_normal((B, T, C)).astype("<f4")
    write_safetensors(f"{d}/model.safetensors", [("wte.weight", wte.astype("<f4"), "F32"), ("wpe.weight", wpe.astype("<f4"), "F32")])
    np.save(f"{d}/ids.npy", ids)
    np.save(f"{d}/ids_u2.npy", ids.astype("<u2"))
    with open(f"{d}/ids.json", "w") as f:
        json.dump(ids.tolist(), f)
    with open(f"{d}/ids.txt", "w") as f:  # rows split over lines, blank lines between rows
        f.write("\n\n" + "\n\n\n".join(" ".join(map(str, r[:2])) + "\n" + "\t".join(map(str, r[2:]))
                                       for r in ids) + "\n\n")
    np.save(f"{d}/dout.npy", dout)
    x = wte[ids]
    x_pos = (x + wpe[POS0 + np.arange(T)]).astype("<f4")
    np.save(f"{d}/x.npy", x)
    np.save(f"{d}/x_pos.npy", x_pos)
    np.save(f"{d}/x_f16.npy", x_pos.astype("<f2").view("<u2"))
    xb = torch.from_numpy(x_pos).bfloat16().view(torch.int16).numpy().view("<u2")
    np.save(f"{d}/x_bf16.npy", xb)

    pos = torch.arange(POS0, POS0 + T)
    tid = torch.from_numpy(ids)

    def forward(Wt, Wp):
        return F.embedding(tid, Wt) + F.embedding(pos, Wp)

    Wt = torch.nn.Parameter(torch.from_numpy(wte.copy()))
    Wp = torch.nn.Parameter(torch.from_numpy(wpe.copy()))
    opt = torch.optim.SGD([Wt, Wp], lr=0.1)
    forward(Wt, Wp).backward(torch.from_numpy(dout))
    opt.step()
    np.save(f"{d}/sgd.wte.npy", Wt.detach().numpy())
    np.save(f"{d}/sgd.wpe.npy", Wp.detach().numpy())

    Wt = torch.nn.Parameter(torch.from_numpy(wte.copy()))
    Wp = torch.nn.Parameter(torch.from_numpy(wpe.copy()))
    Gt = torch.nn.Parameter(torch.from_numpy(wte.copy()))
    Gp = torch.nn.Parameter(torch.from_numpy(wpe.copy()))
    forward(Gt, Gp).backward(torch.from_numpy(dout))
    opt = torch.optim.SparseAdam([Wt, Wp], lr=0.01)
    rows_t = torch.unique(tid)
    rows_p = pos
    Wt.grad = torch.sparse_coo_tensor(rows_t[None], Gt.grad[rows_t], (V, C))
    Wp.grad = torch.sparse_coo_tensor(rows_p[None], Gp.grad[rows_p], (MAXT, C))
    opt.step()
    np.save(f"{d}/adam.wte.npy", Wt.detach().numpy())
    np.save(f"{d}/adam.wpe.npy", Wp.detach().numpy())


def check(d):
    bad = 0

    def same(what, got, want):
        nonlocal bad
        got, want = np.asarray(got), np.asarray(want)
        if got.shape != want.shape:
            print(f"{what}: shape {got.shape}, expected {want.shape}")
            bad += 1
        elif got.tobytes() != want.tobytes():
            print(f"{what}: {int((got != want).sum())} values differ")
            bad += 1

    want = np.load(f"{d}/x_pos.npy")
    for name in ["npy", "json", "txt", "u2", "stdin_npy", "stdin_json", "stdin_txt", "pipe"]:
        p = f"{d}/out_{name}.npy"
        if os.path.exists(p):
            same(f"embed ids.{name}", np.load(p), want)
        else:
            print(f"{p}: missing")
            bad += 1
    same("embed, no positions", np.load(f"{d}/out_nopos.npy"), np.load(f"{d}/x.npy"))
    same("embed --dtype f16 (npy)", np.load(f"{d}/out_f16.npy").view("<u2"), np.load(f"{d}/x_f16.npy"))
    for name, ref, dt in [("st_f32", "x_pos", "F32"), ("st_f16", "x_f16", "F16"),
                          ("st_bf16", "x_bf16", "BF16"), ("st_pipe", "x_bf16", "BF16")]:
        st = read_st(f"{d}/out_{name}.safetensors")
        if list(st) != ["x"] or st["x"][0] != dt:
            print(f"{name}: tensors {[(k, v[0]) for k, v in st.items()]}, expected one {dt} tensor x")
            bad += 1
            continue
        r = np.load(f"{d}/{ref}.npy")
        same(f"embed --format safetensors ({name})",
             np.frombuffer(st["x"][2], r.dtype).reshape(st["x"][1]), r)
    raw = np.fromfile(f"{d}/out_raw_bf16.bin", "<u2").reshape(B, T, C)
    same("embed --format raw --dtype bf16", raw, np.load(f"{d}/x_bf16.npy"))
    for opt in ["sgd", "adam"]:
        st = read_st(f"{d}/{opt}.safetensors")
        for t in ["wte", "wpe"]:
            dt, shape, b = st[f"{t}.weight"]
            same(f"step {opt} {t}", np.frombuffer(b, "<f4").reshape(shape), np.load(f"{d}/{opt}.{t}.npy"))
    return 1 if bad else 0


if __name__ == "__main__":
    mode, d = sys.argv[1], sys.argv[2]
    if mode == "gen":
        gen(d)
    else:
        try:
            sys.exit(check(d))
        except (OSError, ValueError, KeyError) as e:  # an output missing or not what it should be
            print(f"check: {type(e).__name__}: {e}")
            sys.exit(1)
