#!/usr/bin/python3
"""What `gpt2in step` must give, computed by PyTorch (never by gpt2in), for
each claim `gpt2in step --help` makes about which PyTorch path it equals bit
for bit. tests/test_step_semantics.sh runs it, runs the steps, then runs
`check` to compare.

    /usr/bin/python3 tests/gen_step_refs.py gen DIR
    /usr/bin/python3 tests/gen_step_refs.py check DIR

gen writes one folder per case into DIR: model.safetensors, ids<k>.npy and
dout<k>.npy for steps k = 1.. (the steps file says how many), args (the
step's other options) and expect.<tensor>.npy / state.<tensor>.npy, the
tables' exact bits after the last step (<f4 for F32, <u2 for F16/BF16);
differ.<tensor>.npy are results a documented other path gives, which
gpt2in must NOT equal. check compares gpt2in's out.safetensors (and
state.safetensors) in each folder with them. Seeds are fixed.
"""
import json
import os
import struct
import sys

import numpy as np

from st_write import write_safetensors as write_st

ST = {"F32": "<f4", "F16": "<u2", "BF16": "<u2"}


def read_st(path):
    """name -> (dtype, raw ndarray of bits), plus the metadata."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in h.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = (t["dtype"], np.frombuffer(data[a:b], ST[t["dtype"]]).reshape(t["shape"]))
    return out, h.get("__metadata__", {})


def gen(out):
    import torch
    import torch.nn.functional as F

    # The BF16 NaN claim is about torch's vectorised kernel (a CPU with AVX2);
    # its scalar path (ATEN_CPU_CAPABILITY=default) writes 0x7fc0.
    probe = torch.full((20,), float("nan")).bfloat16().view(torch.int16)
    if int(probe[0]) != -1:
        print("torch does not use its AVX2 kernels here (BF16 NaN is not 0xffff)")
        sys.exit(3)

    def bits(t):
        """float32 tensor -> <f4 ndarray; half/bfloat16 -> <u2 bits."""
        t = t.detach().contiguous()
        if t.dtype == torch.float32:
            return t.numpy().copy()
        return t.view(torch.int16).numpy().view("<u2").copy()

    def case(name, tensors, steps, args, expect, state=None, differ=None, meta=None):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        write_st(os.path.join(d, "model.safetensors"), tensors, meta)
        for k, (ids, dout) in enumerate(steps, 1):
            np.save(os.path.join(d, f"ids{k}.npy"), np.asarray(ids, "<u4"))
            np.save(os.path.join(d, f"dout{k}.npy"), np.asarray(dout, "<f4"))
        with open(os.path.join(d, "steps"), "w") as f:
            f.write(f"{len(steps)}\n")
        with open(os.path.join(d, "args"), "w") as f:
            f.write(args + "\n")
        for kind, dd in (("expect", expect), ("state", state or {}), ("differ", differ or {})):
            for tn, arr in dd.items():
                np.save(os.path.join(d, f"{kind}.{tn}.npy"), arr)

    g = torch.Generator().manual_seed(11)

    # 1. SGD: bit for bit torch.optim.SGD after the dense backward (nn.Embedding's
    # default), with ids used up to 12 times (T > 16), an odd width, positions,
    # and a -0.0 weight stepped by a -0.0 dout (a row used once).
    for C in (16, 13):
        V, T, maxT, pos0, lr = 40, 64, 80, 5, 0.1
        wte = torch.randn(V, C, generator=g) * 0.02
        wpe = torch.randn(maxT, C, generator=g) * 0.01
        ids = torch.randint(0, 12, (T,), generator=g)
        ids[10] = 30                                   # row 30 used once
        dout = torch.randn(T, C, generator=g)
        wte[30, :4] = -0.0
        dout[10, :2] = -0.0                            # -0 weight, -0 dout
        dout[10, 2:4] = 0.0                            # -0 weight, +0 dout
        wpe[pos0 + 3, :2] = -0.0
        dout[3, :2] = -0.0
        W, P = wte.clone().requires_grad_(), wpe.clone().requires_grad_()
        (F.embedding(ids, W) + F.embedding(torch.arange(pos0, pos0 + T), P)).backward(dout)
        torch.optim.SGD([W, P], lr=lr).step()
        Ws = wte.clone().requires_grad_()
        F.embedding(ids, Ws, sparse=True).backward(dout)
        torch.optim.SGD([Ws], lr=lr).step()
        assert not np.array_equal(bits(Ws).view("<u4"), bits(W).view("<u4"))  # the -0.0 at least
        case(f"sgd_dense_c{C}", [("extra", np.arange(6, dtype="<f4"), "F32"),
                                 ("wte.weight", wte.numpy(), "F32"),
                                 ("wpe.weight", wpe.numpy(), "F32")],
             [(ids.numpy(), dout.numpy())],
             f"--optimizer sgd --lr {lr!r} --positions --pos-offset {pos0}",
             {"wte.weight": bits(W), "wpe.weight": bits(P), "extra": np.arange(6, dtype="<f4")},
             differ={"wte.weight": bits(Ws)}, meta={"format": "pt"})

    # 2. The documented difference: w 1, ids 0 0, dout [[1], [3e-8]], lr 1.
    outs = {}
    for sparse in (False, True):
        W = torch.ones(1, 1, requires_grad=True)
        F.embedding(torch.tensor([0, 0]), W, sparse=sparse).backward(torch.tensor([[1.0], [3e-8]]))
        torch.optim.SGD([W], lr=1.0).step()
        outs[sparse] = bits(W)
    assert outs[False][0, 0] == 0.0 and outs[True][0, 0] == np.float32(-3e-8), outs
    case("sgd_repeat_counterexample", [("wte.weight", np.ones((1, 1), "<f4"), "F32")],
         [([0, 0], [[1.0], [3e-8]])], "--optimizer sgd --lr 1",
         {"wte.weight": outs[False]}, differ={"wte.weight": outs[True]})

    # 3. No id repeated: SGD with sparse=True gives the same bits (lr not a
    # power of two, so a product rounded apart from the sum would show).
    V, C, lr = 50, 16, 0.37
    wte = torch.randn(V, C, generator=g)
    ids = torch.randperm(V, generator=g)[:30]
    dout = torch.randn(30, C, generator=g)
    W = wte.clone().requires_grad_()
    F.embedding(ids, W, sparse=True).backward(dout)
    torch.optim.SGD([W], lr=lr).step()
    case("sgd_sparse_distinct", [("wte.weight", wte.numpy(), "F32")],
         [(ids.numpy(), dout.numpy())], f"--optimizer sgd --lr {lr!r}", {"wte.weight": bits(W)})

    # 4. SparseAdam, three steps each.
    def adam(name, V, C, T, lr, draw, via_sparse_true, differ_expected):
        w0 = torch.randn(V, C, generator=g) * 0.02
        W = w0.clone().requires_grad_()
        opt = torch.optim.SparseAdam([W], lr=lr)
        Wd = w0.clone().requires_grad_()          # the sparse=True path, for `differ`
        optd = torch.optim.SparseAdam([Wd], lr=lr)
        steps = []
        for k in range(3):
            ids = draw(T)
            dout = torch.randn(T, C, generator=g)
            steps.append((ids.numpy(), dout.numpy()))
            opt.zero_grad()
            optd.zero_grad()
            F.embedding(ids, Wd, sparse=True).backward(dout)
            if via_sparse_true:
                F.embedding(ids, W, sparse=True).backward(dout)
            else:
                # the dense gradient's touched rows as a sparse tensor
                Wg = w0.clone().requires_grad_()
                F.embedding(ids, Wg).backward(dout)
                rows = torch.unique(ids)
                W.grad = torch.sparse_coo_tensor(rows[None], Wg.grad[rows], (V, C))
            opt.step()
            optd.step()
        st = opt.state[W]
        same = torch.equal(W.detach(), Wd.detach())
        assert same != differ_expected, (name, same)
        case(name, [("wte.weight", w0.numpy(), "F32")], steps, f"--optimizer adam --lr {lr!r}",
             {"wte.weight": bits(W)},
             state={"wte.exp_avg": bits(st["exp_avg"]), "wte.exp_avg_sq": bits(st["exp_avg_sq"])},
             differ={"wte.weight": bits(Wd)} if differ_expected else None)

    # T > 16 and ids used up to ~10 times: the claim is the coalesced dense
    # gradient; sparse=True's coalesce sums in another order (must differ here).
    adam("adam_coalesced_dense", 64, 16, 60, 0.01,
         lambda T: torch.randint(0, 6, (T,), generator=g), False, True)
    # T <= 16, ids used up to 8 times: the same bits as sparse=True.
    adam("adam_sparse_t16", 32, 16, 16, 0.01,
         lambda T: torch.randint(0, 3, (T,), generator=g), True, False)
    # T > 16, no id more than twice: the same bits as sparse=True.
    adam("adam_sparse_twice", 64, 16, 40, 0.01,
         lambda T: torch.cat([torch.randperm(64, generator=g)[:20]] * 2)[torch.randperm(T, generator=g)],
         True, False)

    # SparseAdam on a BF16 table, two steps: each step is W.float(), the step,
    # .bfloat16() (the file holds BF16 between steps; the moments stay F32).
    V, C, lr = 48, 16, 0.01
    wb = (torch.randn(V, C, generator=g) * 0.02).bfloat16()
    W = wb.float().requires_grad_()
    opt = torch.optim.SparseAdam([W], lr=lr)
    steps = []
    for k in range(2):
        ids = torch.randint(0, 10, (24,), generator=g)
        dout = torch.randn(24, C, generator=g)
        steps.append((ids.numpy(), dout.numpy()))
        Wg = W.detach().clone().requires_grad_()
        F.embedding(ids, Wg).backward(dout)
        rows = torch.unique(ids)
        opt.zero_grad()
        W.grad = torch.sparse_coo_tensor(rows[None], Wg.grad[rows], (V, C))
        opt.step()
        with torch.no_grad():
            W.copy_(W.bfloat16().float())
    st = opt.state[W]
    case("adam_bf16", [("wte.weight", bits(wb), "BF16")], steps, f"--optimizer adam --lr {lr!r}",
         {"wte.weight": bits(W.detach().bfloat16())},
         state={"wte.exp_avg": bits(st["exp_avg"]), "wte.exp_avg_sq": bits(st["exp_avg_sq"])})

    # 5. F16 / BF16 tables: W.float(), the dense SGD step, .half() / .bfloat16().
    # w = 0 and lr 1 make the stepped value -dout exactly: NaNs (several
    # payloads and both signs), infinities, rounding ties, F32 subnormals,
    # F16 subnormals and overflow, signed zeros. Stored NaNs in a touched row
    # (stepped by 0: rounded back as torch does) and in an untouched row
    # (kept bit for bit, where torch's round trip would rewrite them).
    specials = np.array([
        0x7f800001, 0x7fc00000, 0xffffffff, 0x7fffffff, 0xff800001, 0x7f810000, 0x7fa00000,
        0xffc00000, 0x7f800000, 0xff800000, 0x3f808000, 0x3f818000, 0x3f808001, 0x7f7fffff,
        0x7f7f8000, 0x00000001, 0x80008000, 0x00018000, 0x807fffff, 0x3f801000, 0x3f803000,
        0x3f800fff, 0x33800000, 0x33000000, 0x33000001, 0x477ff000, 0x477fefff, 0x477fe000,
        0x38800000, 0xb8000000, 0x80000000, 0x00000000, 0x3eaaaaab, 0xc2f6e979, 0x0b5e4f8a,
        0x387fc000, 0x387fe000, 0xc77fefff, 0x1, 0x2], "<u4").view("<f4")
    C = 16
    n = -(-len(specials) // C)
    vals = np.zeros(n * C, "<f4")
    vals[:len(specials)] = specials
    dout = -vals.reshape(n, C)                         # w' = 0 - 1 * dout
    dout = np.concatenate([dout, np.zeros((1, C), "<f4")])
    ids = list(range(n)) + [n]                         # row n: stored NaNs, dout 0
    V = n + 2                                          # row n + 1: untouched
    for dt, tdt in (("BF16", torch.bfloat16), ("F16", torch.float16)):
        w = torch.zeros(V, C, dtype=tdt)
        wb = w.view(torch.int16)
        nan_bits = [0x7f81, 0xffc3, 0x7fff, 0xff80 | 0x41] if dt == "BF16" else \
                   [0x7c01, 0xfe03, 0x7fff, 0xfd00]
        for r in (n, n + 1):
            for c, b in enumerate(nan_bits):
                wb[r, c] = b - 65536 if b >= 32768 else b
        W = w.float().requires_grad_()
        F.embedding(torch.tensor(ids), W).backward(torch.from_numpy(dout))
        torch.optim.SGD([W], lr=1.0).step()
        new = bits(W.detach().to(tdt))
        new[n + 1] = bits(w)[n + 1]                    # untouched: kept bit for bit
        case(f"{dt.lower()}_specials", [("wte.weight", bits(w), dt)], [(ids, dout)],
             "--optimizer sgd --lr 1", {"wte.weight": new})


def check(out):
    fails = 0
    for name in sorted(os.listdir(out)):
        d = os.path.join(out, name)
        if not os.path.isdir(d):
            continue
        got, _ = read_st(os.path.join(d, "out.safetensors"))
        state = None
        for f in sorted(os.listdir(d)):
            kind = f.split(".", 1)[0]
            if not f.endswith(".npy") or kind not in ("expect", "state", "differ"):
                continue
            tn = f[len(kind) + 1:-4]
            want = np.load(os.path.join(d, f))
            if kind == "state":
                if state is None:
                    state, _ = read_st(os.path.join(d, "state.safetensors"))
                have = state[tn][1]
            else:
                have = got[tn][1]
            eq = have.shape == want.shape and np.array_equal(have.view(f"u{have.itemsize}"),
                                                             want.view(f"u{want.itemsize}"))
            if kind == "differ":
                ok, what = not eq, "differs from the other PyTorch path, as documented"
            else:
                ok, what = eq, "bit for bit PyTorch"
            if not ok:
                fails += 1
                print(f"FAIL {name}: {tn}: not {what}")
                if kind != "differ" and have.shape == want.shape:
                    hb, wb = have.view(f"u{have.itemsize}"), want.view(f"u{want.itemsize}")
                    for i in np.argwhere(hb != wb)[:5]:
                        i = tuple(i)
                        print(f"    at {i}: gpt2in {int(hb[i]):#x} ({have[i]!r}), "
                              f"torch {int(wb[i]):#x} ({want[i]!r})")
            else:
                print(f"ok   {name}: {tn}: {what}")
    return fails


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("gen", "check"):
        sys.exit(__doc__)
    if sys.argv[1] == "gen":
        gen(sys.argv[2])
    else:
        sys.exit(1 if check(sys.argv[2]) else 0)
