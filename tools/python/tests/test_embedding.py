"""gpt2in.Embedding against torch.nn.Embedding / torch.optim.SGD (Debian's
python3-torch) on small safetensors files written here."""
import json
import random
import struct

import numpy as np
import pytest

import gpt2in

torch = pytest.importorskip("torch")

V, C, MAXT = 50, 8, 16


def write_safetensors(path, tensors, metadata=None):
    """tensors: {name: (dtype, shape, raw bytes)}"""
    header, off, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for name, (dt, shape, raw) in tensors.items():
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def tables(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(V, C, generator=g), torch.randn(MAXT, C, generator=g)


def raw(t, dtype):
    if dtype == "F32":
        return t.float().numpy().tobytes()
    if dtype == "F16":
        return t.half().numpy().tobytes()
    return t.bfloat16().view(torch.int16).numpy().tobytes()   # BF16


def rounded(t, dtype):
    return {"F32": t.float(), "F16": t.half().float(), "BF16": t.bfloat16().float()}[dtype]


@pytest.fixture(params=["F32", "F16", "BF16"])
def model(tmp_path, request):
    dt = request.param
    wte, wpe = tables()
    p = tmp_path / f"m_{dt}.safetensors"
    write_safetensors(p, {"wte.weight": (dt, (V, C), raw(wte, dt)), "wpe.weight": (dt, (MAXT, C), raw(wpe, dt)),
                          "other": ("F32", (2,), np.array([1, 2], np.float32).tobytes())},
                      {"format": "pt"})
    return p, dt, rounded(wte, dt), rounded(wpe, dt)


def test_forward_matches_torch(model):
    path, dt, wte, wpe = model
    emb = gpt2in.Embedding.open(path)
    assert (emb.V, emb.C, emb.max_positions, emb.dtype) == (V, C, MAXT, dt)
    tok, pos = torch.nn.Embedding(V, C), torch.nn.Embedding(MAXT, C)
    with torch.no_grad():
        tok.weight.copy_(wte)
        pos.weight.copy_(wpe)
    r = np.random.default_rng(1)
    for T, pos0 in ((1, 0), (7, 3), (MAXT, 0)):
        ids = r.integers(0, V, T)
        want = (tok(torch.from_numpy(ids)) + pos(torch.arange(pos0, pos0 + T))).detach().numpy()
        got = emb.forward(ids, pos0=pos0)
        assert got.dtype == np.float32 and got.shape == (T, C) and got.flags.c_contiguous
        assert np.array_equal(got, want)
    ids = r.integers(0, V, (3, 5))
    want = (tok(torch.from_numpy(ids)) + pos(torch.arange(2, 7))).detach().numpy()   # positions restart per row
    out = np.empty((3, 5, C), np.float32)
    assert emb.forward(ids, 2, out=out) is out and np.array_equal(out, want)
    t = torch.from_numpy(out)      # shares memory
    t[0, 0, 0] = 123.0
    assert out[0, 0, 0] == 123.0
    assert np.array_equal(emb.wte.astype(np.float32), wte.numpy())
    assert np.array_equal(emb.wpe.astype(np.float32), wpe.numpy())
    # any array-like: torch tensors, lists, array.array
    assert np.array_equal(emb.forward(torch.tensor([[1, 2]]), 2), emb.forward(np.array([[1, 2]]), 2))
    import array
    assert np.array_equal(emb.forward(array.array("H", [3, 4])), emb.forward([3, 4]))
    nopos = gpt2in.Embedding.open(path, positions=False)
    assert nopos.wpe is None and nopos.max_positions == 0
    assert np.array_equal(nopos.forward([4, 9]), wte.numpy()[[4, 9]])


def test_outputs_into_torch_tensors(model):
    """out= and dwte= take PyTorch CPU tensors and write into them; an
    object whose __array__ is a copy, or a tensor that gives no array,
    is refused rather than written into and lost."""
    path, dt, wte, wpe = model
    emb = gpt2in.Embedding.open(path)
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    out = torch.empty(2, 3, C)
    assert emb.forward(ids, out=out) is out
    assert np.array_equal(out.numpy(), emb.forward(ids.numpy()))
    dw = torch.zeros(V, C)
    dout = torch.ones(2, 3, C)
    emb.backward_dense(ids, dout, dw)
    assert dw[1].tolist() == [1.0] * C and dw[0].tolist() == [0.0] * C

    class Copying:
        def __array__(self, dtype=None):
            return np.zeros((2, 3, C), np.float32)

    class CopyingView:   # a view of a fresh copy: does not own its data, still a copy
        def __array__(self, dtype=None, copy=None):
            return np.zeros(2 * 3 * C, np.float32).reshape(2, 3, C)

    for bad in (Copying(), CopyingView(), torch.empty(2, 3, C, requires_grad=True), [[0.0] * C] * 3):
        with pytest.raises(TypeError):
            emb.forward(ids, out=bad)
    with pytest.raises(ValueError):
        emb.forward(ids, out=torch.empty(3, 2, C).transpose(0, 1))   # not C-contiguous
    dw = np.zeros((V, C), np.float32)
    with pytest.raises(ValueError, match="share memory"):
        emb.backward_dense(np.array([0, 1]), dw[2:4], dw)   # dout is rows of dwte


def test_wte_is_a_view_of_the_file(model):
    path, dt, wte, _ = model
    emb = gpt2in.Embedding.open(path)
    w = emb.wte
    assert not w.flags.writeable
    if dt in ("F32", "F16"):
        assert not w.flags.owndata and w.base is not None   # frombuffer over the mapping
        with open(path, "rb") as f:
            data = f.read()
        assert w.tobytes() in data
    with pytest.raises(ValueError):
        w[0, 0] = 1
    del emb   # the view keeps the mapping alive
    assert np.array_equal(w.astype(np.float32), wte.numpy())


def test_backward_and_sgd_match_torch(model, tmp_path):
    path, dt, wte, _ = model
    emb = gpt2in.Embedding.open(path)
    r = np.random.default_rng(2)
    ids = r.integers(0, V, (4, 6))
    ids[0, :3] = 7   # repeated rows
    dout = r.standard_normal((4, 6, C)).astype(np.float32)
    W = wte.clone().requires_grad_(True)
    torch.nn.functional.embedding(torch.from_numpy(ids), W).backward(torch.from_numpy(dout))
    dense = np.zeros((V, C), np.float32)
    emb.backward_dense(ids, dout, dense)
    assert np.array_equal(dense, W.grad.numpy())
    rows, grad = emb.backward_sparse(ids, dout)
    assert rows.dtype == np.uint32 and np.array_equal(rows, np.unique(ids))
    assert np.array_equal(grad, W.grad.numpy()[rows])
    opt = torch.optim.SGD([W], lr=0.1)
    opt.step()
    emb.sgd_step(rows, grad, 0.1)
    assert np.array_equal(emb.wte, W.detach().numpy())
    assert np.array_equal(emb.forward([7], pos0=0) - emb.wpe[0].astype(np.float32),
                          W.detach().numpy()[[7]] + emb.wpe[0].astype(np.float32) - emb.wpe[0].astype(np.float32))
    out = tmp_path / "trained.safetensors"
    emb.save(out)
    again = gpt2in.Embedding.open(out)
    assert again.dtype == dt
    assert np.array_equal(again.wte.astype(np.float32), rounded(W.detach(), dt).numpy())
    assert np.array_equal(again.wpe, emb.wpe)
    with open(out, "rb") as f:
        head = f.read(400)
    assert b'"other"' in head and b'"format"' in head
    emb.save(path)   # over the very file it maps
    assert np.array_equal(gpt2in.Embedding.open(path).wte.astype(np.float32), rounded(W.detach(), dt).numpy())


def test_bad_input(model, tmp_path):
    path, _, _, _ = model
    emb = gpt2in.Embedding.open(path)
    with pytest.raises(ValueError, match=r"token id 50 at index 1 is out of range \(vocabulary size 50\)"):
        emb.forward([1, 50])
    with pytest.raises(ValueError, match="token id -1 at index 0 is out of range"):
        emb.forward([-1])
    with pytest.raises(ValueError, match="token id 4294967296"):
        emb.forward(np.array([2 ** 32], np.int64))
    with pytest.raises(ValueError, match="position 16"):
        emb.forward([1, 2], pos0=15)
    with pytest.raises(ValueError):
        emb.forward([1], pos0=-1)
    with pytest.raises(ValueError):
        emb.forward([1], pos0=2**64)   # not an OverflowError from the C call
    with pytest.raises(TypeError):
        emb.forward([1.5])
    with pytest.raises(TypeError):
        emb.forward([True])
    with pytest.raises(TypeError):
        emb.forward(["a"])
    with pytest.raises(ValueError, match="shape"):
        emb.forward(np.zeros((2, 2, 2), np.int32))
    for scalar in (3, np.int64(3), torch.tensor(3)):   # neither [T] nor [B, T]
        with pytest.raises(ValueError, match=r"ids must have shape \[T\] or \[B, T\], not \[\]"):
            emb.forward(scalar)
    with pytest.raises(TypeError):
        emb.forward([1], out=np.empty((1, C), np.float64))
    with pytest.raises(ValueError, match="shape"):
        emb.forward([1], out=np.empty((2, C), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        emb.forward([1, 2], out=np.empty((C, 2), np.float32).T)
    ro = np.empty((1, C), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        emb.forward([1], out=ro)
    with pytest.raises(TypeError):
        emb.forward([1], out="x")
    with pytest.raises(TypeError):
        emb.backward_sparse([1], np.zeros((1, C), np.float64))
    with pytest.raises(ValueError):
        emb.backward_sparse([1, 2], np.zeros((1, C), np.float32))
    with pytest.raises(ValueError, match="out of range"):
        emb.backward_sparse([60], np.zeros((1, C), np.float32))
    with pytest.raises(ValueError, match="out of range"):
        emb.backward_dense([60], np.zeros((1, C), np.float32), np.zeros((V, C), np.float32))
    with pytest.raises(ValueError):
        emb.backward_dense([1], np.zeros((1, C), np.float32), np.zeros((V - 1, C), np.float32))
    with pytest.raises(ValueError, match="out of range"):
        emb.sgd_step([60], np.zeros((1, C), np.float32), 0.1)
    assert emb.forward(np.zeros(0, np.int64)).shape == (0, C)
    assert emb.forward([]).shape == (0, C)
    # files
    with pytest.raises(FileNotFoundError):
        gpt2in.Embedding.open(tmp_path / "missing.safetensors")
    with pytest.raises(IsADirectoryError):
        gpt2in.Embedding.open(tmp_path)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    with pytest.raises(ValueError):
        gpt2in.Embedding.open(bad)
    with pytest.raises(KeyError):
        gpt2in.Embedding.open(path, tensor="nope")
    with pytest.raises(KeyError):
        gpt2in.Embedding.open(path, positions="nope")
    with pytest.raises(ValueError):
        gpt2in.Embedding.open(path, tensor="other")   # 1-D
    with pytest.raises(OSError):
        emb.save(tmp_path / "no-such-dir" / "x.safetensors")


def test_random_objects_never_crash(model):
    path, _, _, _ = model
    emb = gpt2in.Embedding.open(path)
    r = random.Random(4)
    things = [None, 0, -1, 2 ** 70, 1.5, "x", b"\xff", [], [1, -1], [[1, 2], [3]], np.zeros(3),
              np.zeros((2, C), np.float32), np.zeros((V, C), np.float32), np.zeros((3, 2, 2), np.int16),
              np.array([1.5]), memoryview(b"abc"), object(), np.ones(4, np.uint64) * 2 ** 40,
              np.zeros((1, C), np.float32)[:, ::2]]
    for _ in range(3000):
        name = r.choice(["forward", "backward_sparse", "backward_dense", "sgd_step"])
        args = [r.choice(things) for _ in range(r.randint(0, 3))]
        try:
            getattr(emb, name)(*args)
        except (TypeError, ValueError, KeyError, OverflowError):
            pass


def test_example_script(tmp_path):
    """tools/python/example_torch.py on a GPT-2-sized vocabulary (C = 16)."""
    import os
    import subprocess
    import sys
    from conftest import ROOT

    g = torch.Generator().manual_seed(5)
    p = tmp_path / "small.safetensors"
    write_safetensors(p, {"wte.weight": ("F32", (50257, 16), raw(torch.randn(50257, 16, generator=g), "F32")),
                          "wpe.weight": ("F32", (1024, 16), raw(torch.randn(1024, 16, generator=g), "F32"))})
    # -P: not the source tree next to the script (it has no compiled _gpt2in)
    r = subprocess.run([sys.executable, "-P", str(ROOT / "tools" / "python" / "example_torch.py"), str(p)],
                       capture_output=True, text=True, env=os.environ)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "same as torch.nn.Embedding: yes" in r.stdout


def test_sparse_adam_matches_torch(model, tmp_path):
    path, dt, wte, _ = model
    emb = gpt2in.Embedding.open(path)
    opt = gpt2in.SparseAdam(emb, lr=0.01)
    W = torch.nn.Parameter(wte.clone())
    topt = torch.optim.SparseAdam([W], lr=0.01)
    r = np.random.default_rng(6)
    for k in range(4):
        ids = r.integers(0, V, 12)
        dout = r.standard_normal((12, C)).astype(np.float32)
        rows, grad = emb.backward_sparse(ids, dout)
        W.grad = torch.sparse_coo_tensor(torch.from_numpy(rows.astype(np.int64))[None], torch.from_numpy(grad.copy()),
                                         (V, C))
        topt.step()
        opt.step(rows, grad)
        assert np.array_equal(emb.wte, W.detach().numpy()), k
    ts = topt.state_dict()["state"][0]
    assert np.array_equal(opt.exp_avg, ts["exp_avg"].to_dense().numpy())
    assert np.array_equal(opt.exp_avg_sq, ts["exp_avg_sq"].to_dense().numpy())
    assert opt.step_count == 4 == int(ts["step"])
    # state round trips: a dict (also torch's, densified), and the CLI's state file
    sd = opt.state_dict()
    other = gpt2in.SparseAdam(emb)
    other.load_state_dict(sd)
    assert other.step_count == 4 and np.array_equal(other.exp_avg_sq, opt.exp_avg_sq) and other.lr == 0.01
    tsd = topt.state_dict()
    tsd["state"][0] = {k: (v.to_dense() if torch.is_tensor(v) and v.is_sparse else v) for k, v in tsd["state"][0].items()}
    other.load_state_dict(tsd)
    assert other.step_count == 4 and np.array_equal(other.exp_avg, opt.exp_avg)
    st = tmp_path / "state.safetensors"
    opt.save(st)
    again = gpt2in.SparseAdam.load(emb, st, lr=0.01)
    assert again.step_count == 4 and np.array_equal(again.exp_avg, opt.exp_avg)
    assert np.array_equal(again.exp_avg_sq, opt.exp_avg_sq)
    weights = open(emb.path, "rb").read()
    with pytest.raises(ValueError, match="weights file"):
        opt.save(emb.path)   # the CLI refuses --state equal to --weights too
    assert open(emb.path, "rb").read() == weights
    with pytest.raises(ValueError, match="distinct"):
        opt.step([1, 1], np.zeros((2, C), np.float32))
    with pytest.raises(ValueError):
        gpt2in.SparseAdam(emb, lr=-1)


def test_sparse_adam_state_works_with_the_cli(tmp_path):
    """Weights and state saved here, stepped once more by `gpt2in step`,
    equal two steps here."""
    import os
    import subprocess
    from conftest import ROOT

    cli = os.environ.get("GPT2IN", "build/gpt2in")
    cli = cli if os.path.isabs(cli) else str(ROOT / cli)
    if not os.access(cli, os.X_OK):
        pytest.skip(f"{cli} is not built")
    wte, _ = tables(7)
    m = tmp_path / "m.safetensors"
    write_safetensors(m, {"wte.weight": ("F32", (V, C), raw(wte, "F32"))})
    emb = gpt2in.Embedding.open(m)
    opt = gpt2in.SparseAdam(emb, lr=0.01)
    ids = np.array([1, 2, 3, 1])
    dout = np.random.default_rng(1).standard_normal((4, C)).astype(np.float32)
    np.save(tmp_path / "dout.npy", dout)
    (tmp_path / "ids.txt").write_text("1 2 3 1\n")
    opt.step(*emb.backward_sparse(ids, dout))
    opt.save(tmp_path / "state.safetensors")
    emb.save(tmp_path / "w1.safetensors")
    opt.step(*emb.backward_sparse(ids, dout))
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    r = subprocess.run([cli, "step", "--weights", str(tmp_path / "w1.safetensors"), "--ids", str(tmp_path / "ids.txt"),
                        "--dout", str(tmp_path / "dout.npy"), "--optimizer", "adam", "--lr", "0.01",
                        "--state", str(tmp_path / "state.safetensors"), "--out", str(tmp_path / "w2.safetensors")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert np.array_equal(gpt2in.Embedding.open(tmp_path / "w2.safetensors").wte, emb.wte)
    again = gpt2in.SparseAdam.load(emb, tmp_path / "state.safetensors")
    assert again.step_count == 2 and np.array_equal(again.exp_avg, opt.exp_avg)


@pytest.mark.parametrize("case", ["identical", "close", "far", "nan", "nan_equal", "f16", "zero_sign"])
def test_verify_matches_the_cli(tmp_path, case):
    import os
    import subprocess
    from conftest import ROOT

    cli = os.environ.get("GPT2IN", "build/gpt2in")
    cli = cli if os.path.isabs(cli) else str(ROOT / cli)
    if not os.access(cli, os.X_OK):
        pytest.skip(f"{cli} is not built")
    wte, _ = tables(8)
    w = wte.numpy().copy()
    w[3, 2] = np.nan
    w[4, 1] = np.inf
    w[5, 0] = 0.0
    m = tmp_path / "m.safetensors"
    write_safetensors(m, {"wte.weight": ("F32", (V, C), w.tobytes())})
    ids = np.array([1, 3, 4, 5, 9])
    (tmp_path / "ids.txt").write_text(" ".join(map(str, ids)) + "\n")
    x = gpt2in.Embedding.open(m, positions=False).forward(ids)
    ref = x.astype(np.float64)
    args = []
    if case == "close":
        ref = ref * (1 + 3e-6)
    elif case == "far":
        ref[0, 3] += 0.5
        ref[2, 5] -= 1e-3
    elif case in ("nan", "nan_equal"):
        ref[4, 4] = np.nan
        if case == "nan_equal":
            args = ["--equal-nan"]
            ref[4, 4] = x[4, 4]
    elif case == "f16":
        ref = x.astype(np.float16)
    elif case == "zero_sign":
        ref[3, 0] = -0.0
    np.save(tmp_path / "ref.npy", ref)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    r = subprocess.run([cli, "verify", "--weights", str(m), "--ids", str(tmp_path / "ids.txt"), "--ref",
                        str(tmp_path / "ref.npy")] + args, capture_output=True, text=True, env=env)
    rep = gpt2in.verify(x, ref, equal_nan=bool(args))
    assert r.returncode in (0, 1), r.stderr
    assert str(rep) == r.stdout
    assert bool(rep) == (r.returncode == 0)
    rep3 = gpt2in.verify(x[None], ref[None], equal_nan=bool(args))
    assert str(rep3) == str(rep)


def test_verify_bad_input():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="shape mismatch"):
        gpt2in.verify(x, np.zeros((3, 2)))
    with pytest.raises(TypeError):
        gpt2in.verify(x, np.zeros((2, 3), np.int32))
    with pytest.raises(ValueError):
        gpt2in.verify(np.zeros(3, np.float32), np.zeros(3))
    rep = gpt2in.verify(x, x, atol=0, rtol=0)
    assert rep.ok and rep.identical and rep.mismatches == 0 and rep.first_mismatch is None


def test_ids_inside_the_written_array(tmp_path):
    """ids that are a view of the array a call writes are read as they were
    before the call (copied), never re-read after rows changed: no crash,
    torch's/NumPy's result on a copy of the ids."""
    wte, wpe = (t.numpy().copy() for t in tables())
    wte[0, :2] = np.array([0, 5], np.uint32).view(np.float32)   # row 0 holds the ids 0 and 5 as bits
    p = tmp_path / "alias.safetensors"
    write_safetensors(p, {"wte.weight": ("F32", (V, C), wte.tobytes()), "wpe.weight": ("F32", (MAXT, C), wpe.tobytes())})
    emb = gpt2in.Embedding.open(p)
    # backward_dense: ids in dwte's row 0
    dwte = np.zeros((V, C), np.float32)
    ids = dwte.view(np.uint32)[0, :2]
    ids[:] = [0, 7]
    dout = np.ones((2, C), np.float32)
    want = dwte.copy()
    np.add.at(want, ids.copy(), dout)
    emb.backward_dense(ids, dout, dwte)
    assert np.array_equal(dwte.view(np.uint32), want.view(np.uint32))
    # forward: ids in out
    out = np.zeros((2, C), np.float32)
    ids = out.view(np.uint32)[0, :2]
    ids[:] = [3, 4]
    got = emb.forward(ids, out=out)
    assert np.array_equal(got, (wte[[3, 4]] + wpe[:2]).astype(np.float32))
    # sgd_step and SparseAdam.step: rows in the float32 training copy of wte
    emb.sgd_step([1], np.zeros((1, C), np.float32), lr=0.0)
    table = np.asarray(emb.wte)
    rows = table.view(np.uint32)[0, :2]
    assert list(rows) == [0, 5]
    g = np.full((2, C), 0.5, np.float32)
    want = table.copy()
    want[[0, 5]] -= np.float32(1.0) * g
    emb.sgd_step(rows, g, lr=1.0)
    assert np.array_equal(np.asarray(emb.wte), want)
    # SparseAdam: the same steps with the rows aliased and with a copy of them
    results = []
    for aliased in (True, False):
        e = gpt2in.Embedding.open(p)
        opt = gpt2in.SparseAdam(e, lr=1e-3)
        opt.step([1], np.zeros((1, C), np.float32))
        rows = np.asarray(e.wte).view(np.uint32)[0, :2]
        assert list(rows) == [0, 5]
        opt.step(rows if aliased else rows.copy(), np.ones((2, C), np.float32))
        results.append(np.array(e.wte))
    assert np.array_equal(results[0], results[1])


def test_step_and_verify_arguments(model):
    path, _, _, _ = model
    emb = gpt2in.Embedding.open(path)
    for lr in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="Invalid learning rate"):
            emb.sgd_step([1], np.zeros((1, C), np.float32), lr=lr)
    x = np.zeros((2, 3), np.float32)
    for kw in ({"atol": -1}, {"rtol": -1e-5}, {"atol": float("nan")}):
        with pytest.raises(ValueError, match="must be a number >= 0"):
            gpt2in.verify(x, x, **kw)
    opt = gpt2in.SparseAdam(emb)
    sd = opt.state_dict()
    sd["state"] = {0: {"step": -1, "exp_avg": opt.exp_avg, "exp_avg_sq": opt.exp_avg_sq}}
    with pytest.raises(ValueError, match="step must be >= 0"):
        opt.load_state_dict(sd)


def test_q8_0_tables_are_refused_before_a_step(tmp_path):
    """A step on a quantised table could not be saved: refused before any work."""
    import subprocess
    import sys
    from conftest import ROOT
    subprocess.run([sys.executable, str(ROOT / "tests" / "gen_tables_fixtures.py"), str(tmp_path)], check=True,
                   stdout=subprocess.DEVNULL)
    emb = gpt2in.Embedding.open(tmp_path / "gguf_q8_0.gguf")
    assert emb.dtype == "Q8_0"
    before = np.array(emb.forward([0, 1]))
    with pytest.raises(ValueError, match="Q8_0"):
        emb.sgd_step([0], np.ones((1, emb.C), np.float32), lr=0.1)
    with pytest.raises(ValueError, match="Q8_0"):
        gpt2in.SparseAdam(emb).step([0], np.ones((1, emb.C), np.float32))
    assert np.array_equal(emb.forward([0, 1]), before)


def test_out_whose_array_is_kept(model):
    """An object whose __array__ returns the same array each time is written in place."""
    path, _, _, _ = model
    emb = gpt2in.Embedding.open(path)

    class Holder:
        def __init__(self):
            self.a = np.zeros((2, C), np.float32)

        def __array__(self, dtype=None):
            return self.a

    h = Holder()
    emb.forward([1, 2], out=h)
    assert np.array_equal(h.a, emb.forward([1, 2]))


def test_a_truncated_file_is_an_oserror(model, tmp_path):
    """Another program truncates the mapped file: forward (with positions),
    the first step and wpe's copy raise OSError, never SIGBUS."""
    import shutil
    path, dt, _, _ = model
    p = tmp_path / "trunc.safetensors"
    shutil.copy(path, p)
    emb = gpt2in.Embedding.open(p)
    emb.forward([V - 1])
    size = p.stat().st_size
    os_truncate = __import__("os").truncate
    os_truncate(p, size // 2)
    with pytest.raises(OSError, match="truncated"):
        emb.forward([3])
    with pytest.raises(OSError, match="truncated"):
        emb.sgd_step([0], np.zeros((1, C), np.float32), lr=0.1)
    if dt == "BF16":   # wpe is a float32 copy made from the file
        with pytest.raises(OSError, match="truncated"):
            emb.wpe


def test_save_where_the_format_has_no_metadata(tmp_path):
    """After SparseAdam steps save records the step count as metadata, which
    a .npy base cannot hold: a ValueError (the format), nothing written."""
    p = tmp_path / "wte.npy"
    np.save(p, np.ones((V, C), np.float32))
    emb = gpt2in.Embedding.open(p)
    gpt2in.SparseAdam(emb).step([0], np.ones((1, C), np.float32))
    with pytest.raises(ValueError, match="no place for metadata"):
        emb.save(tmp_path / "out.npy")
    assert not (tmp_path / "out.npy").exists()
