#!/usr/bin/python3
"""Writes the embedding reference fixtures in tests/fixtures/embed/ from
NumPy and PyTorch (never from gpt2in itself). Seeds are fixed, so running it
again reproduces the committed files bit for bit.

    /usr/bin/python3 tests/gen_embed_refs.py [OUTDIR]

Layout: one folder per case, each with
  model.safetensors  the tables (written here by a 20-line writer)
  meta.txt           "key value" lines: tensor names, pos0, lr, steps
  *.npy              ids (<u4), expected outputs (<f4)
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

from st_write import write_safetensors

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "fixtures", "embed")

def bf16_bits(x):
    """float32 array -> bf16 bit patterns (<u2) as torch rounds them."""
    return torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view("<u2")


def save(d, name, arr, dtype):
    np.save(os.path.join(d, name + ".npy"), np.ascontiguousarray(arr, dtype=dtype))


def table_case(name, V, C, maxT, ids, pos0, lr, prefix="", seed=0):
    """F32 wte and wpe: forward, sparse/dense/position backward, SGD."""
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    wte = (torch.randn(V, C, generator=g) * 0.02).numpy()
    wpe = (torch.randn(maxT, C, generator=g) * 0.01).numpy()
    extra = torch.randn(3, 5, generator=g).numpy()   # kept bit for bit by `step`
    ids = np.asarray(ids, dtype=np.int64)
    T = len(ids)
    dout = torch.randn(T, C, generator=g).numpy()
    write_safetensors(os.path.join(d, "model.safetensors"),
                      [("h.0.ln_1.weight", extra, None), (prefix + "wpe.weight", wpe, None),
                       (prefix + "wte.weight", wte, None)], {"format": "pt"})
    with open(os.path.join(d, "meta.txt"), "w") as f:
        f.write(f"wte {prefix}wte.weight\nwpe {prefix}wpe.weight\npos0 {pos0}\nlr {lr!r}\n")
    save(d, "ids", ids, "<u4")
    # forward: plain NumPy indexing
    save(d, "out", wte[ids], "<f4")
    save(d, "out_pos", wte[ids] + wpe[pos0:pos0 + T], "<f4")
    save(d, "dout", dout, "<f4")
    # backward through torch autograd
    W = torch.from_numpy(wte.copy()).requires_grad_()
    P = torch.from_numpy(wpe.copy()).requires_grad_()
    idt = torch.from_numpy(ids)
    x = F.embedding(idt, W, sparse=True) + F.embedding(torch.arange(pos0, pos0 + T), P)
    x.backward(torch.from_numpy(dout))
    gs = W.grad.coalesce()
    rows = gs.indices()[0].numpy()
    save(d, "grad_rows", rows, "<u4")
    save(d, "dwpe", P.grad.numpy(), "<f4")
    save(d, "coal_vals", gs.values().numpy(), "<f4")   # summed in torch's own order
    # Dense backward sums in token order (as gpt2in does): the bit-exact target.
    Wd = torch.from_numpy(wte.copy()).requires_grad_()
    F.embedding(idt, Wd).backward(torch.from_numpy(dout))
    dense = Wd.grad.numpy()
    untouched = np.setdiff1d(np.arange(V), rows)
    assert not dense[untouched].any()
    save(d, "dense_rows", dense[rows], "<f4")   # every other row is zero
    # SGD with the dense gradient: torch computes w + (-lr)*g as one fused
    # multiply-add on CPU; the bit-exact target.
    with torch.no_grad():
        torch.optim.SGD([Wd], lr=lr).step()
    after = Wd.detach().numpy()
    assert np.array_equal(after[untouched], wte[untouched])
    save(d, "sgd_rows", after[rows], "<f4")
    # SGD on the raw (uncoalesced) sparse gradient applies one token at a
    # time, so it rounds differently: compared within a tolerance.
    with torch.no_grad():
        torch.optim.SGD([W], lr=lr).step()
    save(d, "sgd_sparse_rows", W.detach().numpy()[rows], "<f4")
    print(f"{name}: V={V} C={C} T={T} rows={len(rows)} coalesce==token order: "
          f"{np.array_equal(gs.values().numpy(), dense[rows])}")


def half_case(name, V, C, maxT, ids, pos0, seed=0):
    """F16 and BF16 wte, with F32 wpe and with wpe of their own dtype (a
    half-precision checkpoint): forward against torch's conversions."""
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(V, C, generator=g).numpy()
    w[0, :4] = [65504.0, -0.0, 6e-8, 1e-5]      # f16 max, signed zero, subnormals
    w[1, :3] = [3.0e38, -1e-40, 1e-39]          # bf16 range, f32 subnormals
    wpe = (torch.randn(maxT, C, generator=g) * 0.01).numpy()
    with np.errstate(over="ignore"):
        h = w.astype("<f2")              # 3e38 -> inf on purpose
    b = bf16_bits(w)
    wpe_h = (wpe * 100).astype("<f2")    # larger, so F16 rounding shows
    wpe_b = bf16_bits(wpe * 100)
    write_safetensors(os.path.join(d, "model.safetensors"),
                      [("wte.weight", h, None), ("wte_bf16.weight", b, "BF16"),
                       ("wpe.weight", wpe, None), ("wpe_f16.weight", wpe_h, None),
                       ("wpe_bf16.weight", wpe_b, "BF16")])
    with open(os.path.join(d, "meta.txt"), "w") as f:
        f.write(f"wte wte.weight\nwte_bf16 wte_bf16.weight\nwpe wpe.weight\npos0 {pos0}\n")
    ids = np.asarray(ids, dtype=np.int64)
    T = len(ids)
    save(d, "ids", ids, "<u4")
    hf = torch.from_numpy(h).float().numpy()
    bf = torch.from_numpy(b.view("<i2")).view(torch.bfloat16).float().numpy()
    save(d, "out", hf[ids], "<f4")
    save(d, "out_pos", hf[ids] + wpe[pos0:pos0 + T], "<f4")
    save(d, "out_bf16", bf[ids], "<f4")
    save(d, "out_bf16_pos", bf[ids] + wpe[pos0:pos0 + T], "<f4")
    hp = torch.from_numpy(wpe_h).float().numpy()
    bp = torch.from_numpy(wpe_b.view("<i2")).view(torch.bfloat16).float().numpy()
    save(d, "out_pos_f16", hf[ids] + hp[pos0:pos0 + T], "<f4")
    save(d, "out_bf16_pos_bf16", bf[ids] + bp[pos0:pos0 + T], "<f4")
    print(f"{name}: V={V} C={C} T={T}")


def adam_case(name, V, C, steps, T, hi, lr, seed=0):
    """torch.optim.SparseAdam over several steps; rows >= hi are never touched."""
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    w0 = (torch.randn(V, C, generator=g) * 0.02).numpy()
    write_safetensors(os.path.join(d, "model.safetensors"), [("wte.weight", w0, None)],
                      {"format": "pt"})
    with open(os.path.join(d, "meta.txt"), "w") as f:
        f.write(f"wte wte.weight\nlr {lr!r}\nsteps {steps}\n")
    W = torch.from_numpy(w0.copy()).requires_grad_()
    opt = torch.optim.SparseAdam([W], lr=lr)
    for k in range(1, steps + 1):
        # step k touches ids in [0, hi) with repeats; odd steps skip the top half
        top = hi if k % 2 == 0 else hi // 2
        ids = torch.randint(0, top, (T,), generator=g)
        ids[0] = ids[1]                          # a guaranteed repeat
        dout = torch.randn(T, C, generator=g)
        opt.zero_grad()
        F.embedding(ids, W, sparse=True).backward(dout)
        gc = W.grad.coalesce()      # what SparseAdam steps with
        opt.step()
        save(d, f"ids{k}", ids.numpy(), "<u4")
        save(d, f"dout{k}", dout.numpy(), "<f4")
        save(d, f"crows{k}", gc.indices()[0].numpy(), "<u4")
        save(d, f"cvals{k}", gc.values().numpy(), "<f4")
        if k == 1 or k == steps:
            st = opt.state[W]
            save(d, f"w{k}", W.detach().numpy(), "<f4")
            save(d, f"m{k}", st["exp_avg"].numpy(), "<f4")
            save(d, f"v{k}", st["exp_avg_sq"].numpy(), "<f4")
    print(f"{name}: V={V} C={C} steps={steps}")


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(1234)
    # GPT-2-like names, ids at both edges, many repeats, positions 0..maxT-1.
    V, maxT = 300, 64
    ids = rng.integers(0, V, 64)
    ids[:6] = [0, V - 1, 5, 5, 0, V - 1]
    table_case("f32", V, 48, maxT, ids, 0, 0.1, seed=1)
    # odd width (vector tails), Hugging Face names, heavy repeats, pos0 > 0
    ids = rng.integers(0, 9, 200)
    ids[-1] = 69
    table_case("hf13", 70, 13, 256, ids, 56, 0.5, prefix="transformer.", seed=2)
    # T = 1 at the last position
    table_case("t1", 20, 8, 32, [19], 31, 1.0, seed=3)
    # T = 0
    table_case("t0", 20, 8, 32, [], 0, 1.0, seed=4)
    ids = rng.integers(0, 100, 40)
    ids[:2] = [0, 99]
    half_case("half", 100, 24, 64, ids, 24, seed=5)
    adam_case("adam", 64, 16, 5, 24, 40, 0.01, seed=6)


if __name__ == "__main__":
    main()
