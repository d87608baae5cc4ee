"""gpt2in.verify against `gpt2in verify` on the same data: batches [B, T, C]
and values that test the report's number formatting (inf, -inf, NaN of
either sign, -0.0, subnormals, the largest float32). str(report) must be
the CLI's stdout, byte for byte, and bool(report) its exit status."""
import json
import os
import struct
import subprocess

import numpy as np
import pytest

import gpt2in
from conftest import ROOT

V, C = 16, 4


def cli_path():
    cli = os.environ.get("GPT2IN", "build/gpt2in")
    cli = cli if os.path.isabs(cli) else str(ROOT / cli)
    if not os.access(cli, os.X_OK):
        pytest.skip(f"{cli} is not built")
    return cli


def write_wte(path, w):
    h = json.dumps({"wte.weight": {"dtype": "F32", "shape": list(w.shape), "data_offsets": [0, w.nbytes]}}).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + w.astype("<f4").tobytes())


def special_table():
    """Rows 0..V-1 of finite values, then rows of the awkward ones."""
    w = np.random.default_rng(5).standard_normal((V, C)).astype(np.float32)
    bits = lambda u: np.array([u], np.uint32).view(np.float32)[0]
    w[1] = [np.inf, -np.inf, np.nan, bits(0xFFC00000)]            # inf, -inf, nan, -nan
    w[2] = [-0.0, 0.0, bits(1), -bits(0x007FFFFF)]                 # -0, 0, smallest and largest subnormal
    w[3] = [np.finfo(np.float32).max, -np.finfo(np.float32).tiny, 1e-40, bits(0x7FC00001)]  # a NaN payload
    return w


def run_both(tmp_path, ids, ref, args=(), **kw):
    cli = cli_path()
    m = tmp_path / "m.safetensors"
    write_wte(m, special_table())
    ids = np.asarray(ids)
    np.save(tmp_path / "ids.npy", ids.astype(np.int32))
    np.save(tmp_path / "ref.npy", ref)
    x = gpt2in.Embedding.open(m, positions=False).forward(ids)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    r = subprocess.run([cli, "verify", "--weights", str(m), "--ids", str(tmp_path / "ids.npy"), "--ref",
                        str(tmp_path / "ref.npy")] + list(args), capture_output=True, text=True, env=env)
    assert r.returncode in (0, 1), r.stderr
    rep = gpt2in.verify(x, ref, **kw)
    return x, rep, r


def refs(x):
    """(name, reference) pairs made from x (float64 unless named)."""
    with np.errstate(over="ignore"):
        f16 = x.astype(np.float16)      # the largest float32 becomes inf
    out = [("same", x.astype(np.float64)), ("f32", x.copy()), ("f16", f16)]
    r = x.astype(np.float64)
    flat = r.reshape(-1)
    finite = np.flatnonzero(np.isfinite(flat) & (flat != 0))
    cases = {"inf": np.inf, "-inf": -np.inf, "nan": np.nan, "-nan": -np.nan, "-0": -0.0, "sub": 5e-324,
             "-sub": -1e-45, "big": 1e300}
    for name, v in cases.items():
        a = r.copy()
        a.reshape(-1)[finite[len(finite) // 2]] = v
        out.append((name, a))
    a = r.copy()
    a.reshape(-1)[finite[-1]] += 1e-3       # off by a little, late
    a.reshape(-1)[finite[0]] *= -1          # sign flip, early
    out.append(("near_and_far", a))
    a = r.copy()
    a[np.isnan(a)] = 1.0                    # x's NaNs against numbers
    out.append(("nan_vs_number", a))
    a = r.copy()
    a[np.isnan(a) & np.signbit(a)] = 1.0    # x's -nan (first under equal_nan) against a number
    out.append(("negnan_vs_number", a))
    a = r.copy()
    a[(a != 0) & (np.abs(a) < np.finfo(np.float32).tiny)] = 0.0   # x's subnormals against 0
    out.append(("subnormal_vs_zero", a))
    return out


IDS_1D = [5, 1, 2, 3, 7]
IDS_2D = [[5, 1, 2], [3, 7, 1]]


@pytest.mark.parametrize("ids", [IDS_1D, IDS_2D, [[1, 2, 3]]], ids=["T", "BxT", "1xT"])
@pytest.mark.parametrize("mode", ["default", "zero_tol", "equal_nan"])
def test_verify_report_is_the_clis(tmp_path, ids, mode):
    args, kw = {"default": ([], {}), "zero_tol": (["--atol", "0", "--rtol", "0"], {"atol": 0, "rtol": 0}),
                "equal_nan": (["--equal-nan"], {"equal_nan": True})}[mode]
    x = gpt2in.Embedding.open(_table(tmp_path), positions=False).forward(ids)
    for name, ref in refs(x):
        if np.asarray(ids).shape[0] == 1 and np.asarray(ids).ndim == 2:
            # ids [1, T]: the CLI reports a batch of one row, Python (which
            # sees only x) the [T, C] report; the figures and verdict agree
            _, rep, r = run_both(tmp_path, ids, ref, args, **kw)
            cli_lines, py_lines = r.stdout.splitlines(), str(rep).splitlines()
            assert cli_lines[0].replace("1 x ", "", 1) == py_lines[0], name
            assert cli_lines[1:4] == py_lines[1:4] and cli_lines[-1] == py_lines[-1], name
            continue
        _, rep, r = run_both(tmp_path, ids, ref, args, **kw)
        assert str(rep) == r.stdout, name
        assert bool(rep) == (r.returncode == 0), name


def _table(tmp_path):
    m = tmp_path / "t.safetensors"
    write_wte(m, special_table())
    return m


def test_verify_batch(tmp_path):
    """A batch [B, T, C] (what Embedding.forward returns for ids [B, T]) is
    compared as `gpt2in verify` compares it, with its wording."""
    emb = gpt2in.Embedding.open(_table(tmp_path), positions=False)
    x = emb.forward([[5, 6, 7], [8, 9, 10]])
    rep = gpt2in.verify(x, x.copy())
    assert rep.ok and rep.identical and rep.batch == 2 and (rep.rows, rep.cols) == (3, C)
    assert str(rep).splitlines()[0] == f"compared 2 x 3 x {C} = {2 * 3 * C} values (atol 1e-06, rtol 1e-05)"
    ref = x.astype(np.float64)
    ref[1, 2, 3] += 1.0
    rep = gpt2in.verify(x, ref)
    assert not rep.ok and rep.mismatches == 1
    assert rep.first_mismatch[:3] == (1, 2, 3)
    assert f"first mismatch: batch row 1, token 2, column 3: gpt2in " in str(rep)
    # shapes that do not fit: a [T, C] reference for B = 2, another B
    with pytest.raises(ValueError, match="shape mismatch"):
        gpt2in.verify(x, x[0])
    with pytest.raises(ValueError, match="shape mismatch"):
        gpt2in.verify(x, np.concatenate([x, x]))
    # [1, T, C] and [T, C] are taken for each other (ids [T] with a [1, T, C]
    # reference; a batch of one row with a [T, C] one)
    assert str(gpt2in.verify(x[0], x[:1])) == str(gpt2in.verify(x[:1], x[0])) == str(gpt2in.verify(x[0], x[0]))


def test_nan_figures_print_without_sign():
    """inf/inf is -nan on x86: the CLI prints every NaN error figure as
    "nan"; the first mismatch's values keep their sign as printf shows it."""
    x = np.array([[1.0, 2.0]], np.float32)
    ref = np.array([[np.inf, 2.0]])
    rep = gpt2in.verify(x, ref)
    assert np.isnan(rep.max_rel)
    assert "max rel err nan\n" in str(rep) and "-nan" not in str(rep)
    neg = np.array([0xFFC00000], np.uint32).view(np.float32)[0]
    rep = gpt2in.verify(np.array([[neg, 2.0]], np.float32), np.array([[1.0, 2.0]]))
    assert "max abs err nan\n" in str(rep)
    assert "gpt2in -nan, reference 1\n" in str(rep)
