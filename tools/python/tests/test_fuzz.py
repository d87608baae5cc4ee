"""Random objects into every public function and method of the package, and
into the C extension's own functions (gpt2in._gpt2in), which Python code
can reach too: each call returns or raises an ordinary exception, never
SystemError (a C function that failed without saying why) and never a
crash (tests/test_python.sh runs this under ASan/UBSan as well)."""
import array
import inspect
import json
import os
import random
import struct

import numpy as np
import pytest

import gpt2in
from gpt2in import _gpt2in

V, C, MAXT = 40, 4, 8


def write_model(path, dtype="F32"):
    rng = np.random.default_rng(1)
    wte = rng.standard_normal((V, C), dtype=np.float32)
    wpe = rng.standard_normal((MAXT, C), dtype=np.float32)
    if dtype == "F16":
        wte, wpe = wte.astype(np.float16), wpe.astype(np.float16)
    hdr = {"wte.weight": {"dtype": dtype, "shape": [V, C], "data_offsets": [0, wte.nbytes]},
           "wpe.weight": {"dtype": dtype, "shape": [MAXT, C],
                          "data_offsets": [wte.nbytes, wte.nbytes + wpe.nbytes]}}
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + wte.tobytes() + wpe.tobytes())
    return path


def things(tmp_path):
    """Objects of every kind an argument might get: wrong types, huge and
    negative ints, odd arrays (non-contiguous, 0-d, wrong dtypes), buffers,
    iterators, paths that do not exist."""
    big = 2 ** 62
    return [
        None, True, 0, 1, -1, 3, 50256, 50257, 2 ** 31, 2 ** 32, big, -big, 2 ** 80, 1.5, float("nan"),
        "", "x", "hello world", "<|endoftext|>", "\ud800", "all", "strict", "bogus-handler",
        b"", b"\xff\xfe", b"hello", bytearray(b"ab"), memoryview(b"abcd"), memoryview(b"abcdefgh").cast("I"),
        [], [1, -1], [2 ** 33], [31373, 995], [[1, 2], [3]], [["a"]], (1, 2), {1: 2}, {"a"}, frozenset(),
        object(), iter([1, 2]), range(5), range(-3, 3), ["a", "b"], [b"x"],
        np.zeros(3), np.zeros(3, np.uint32), np.arange(6, dtype=np.int64)[::2], np.array(7),
        np.zeros((2, 3), np.int16), np.zeros((V, C), np.float32), np.zeros((3, C), np.float32),
        np.zeros((1, 2, C), np.float32), np.zeros((2, C), np.float64), np.ones(4, np.uint64) * 2 ** 40,
        np.zeros((C, V), np.float32).T, np.array([1.5]), np.array(["a"]), np.zeros(0, np.int32),
        np.zeros((2, 2), np.int32)[:, :1], array.array("i", [1, 2]), array.array("d", [1.0]),
        str(tmp_path / "missing.safetensors"), tmp_path, str(tmp_path / "no" / "dir" / "x"),
    ]


def call(fn, args, kwargs):
    try:
        fn(*args, **kwargs)
    except SystemError:
        raise
    except Exception:
        pass


def public_callables(obj):
    out = []
    for name in dir(obj):
        if name.startswith("__"):
            continue
        member = getattr(obj, name)
        if callable(member) and not inspect.isclass(member):
            out.append((name, member))
    return out


def kwarg_names(fn):
    try:
        return [p.name for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return []


# fewer calls under the sanitizers (tests/test_python.sh sets SANITIZED=1),
# where each costs several times as much
SCALE = 0.5 if os.environ.get("SANITIZED") == "1" else 1.0


def fuzz(fns, objs, rounds, seed, max_args=4):
    r = random.Random(seed)
    for _ in range(int(rounds * SCALE)):
        name, fn = r.choice(fns)
        args = [r.choice(objs) for _ in range(r.randint(0, max_args))]
        kw = {}
        names = kwarg_names(fn)
        if names and r.random() < 0.4:
            for k in r.sample(names, r.randint(1, len(names))):
                kw[k] = r.choice(objs)
        call(fn, args, kw)


def test_encoding_methods(tmp_path):
    enc = gpt2in.get_encoding("gpt2")
    fns = public_callables(enc) + [("_encode_bytes", enc._encode_bytes)]
    fns = [(n, f) for n, f in fns if n not in ("from_files",)]
    assert len(fns) >= 18
    fuzz(fns, things(tmp_path), 4000, 1)


def test_module_functions(tmp_path):
    model = write_model(tmp_path / "m.safetensors")
    objs = things(tmp_path) + [str(model), model]
    fns = [(n, f) for n, f in public_callables(gpt2in) if n not in ("Encoding", "Embedding", "SparseAdam")]
    fns += [("from_files", gpt2in.Encoding.from_files), ("Embedding.open", gpt2in.Embedding.open),
            ("SparseAdam.load", gpt2in.SparseAdam.load), ("VerifyReport", gpt2in.VerifyReport)]
    fuzz(fns, objs, 1500, 2)


@pytest.mark.parametrize("dtype", ["F32", "F16"])
def test_embedding_methods(tmp_path, dtype):
    model = write_model(tmp_path / "m.safetensors", dtype)
    emb = gpt2in.Embedding.open(model)
    opt = gpt2in.SparseAdam(emb)
    objs = things(tmp_path) + [emb, opt]
    fns = [(n, f) for n, f in public_callables(emb) if n != "open"]
    fns += [(n, f) for n, f in public_callables(opt) if n != "load"]
    fns += [("SparseAdam", gpt2in.SparseAdam)]
    fuzz(fns, objs, 3000, 3)
    # still usable, and still the file's table
    assert np.array_equal(emb.forward([0, 1]), emb.forward(np.array([0, 1], np.uint16)))


def test_extension_internals(tmp_path):
    """The C functions with any arguments, sizes that overflow included."""
    model = write_model(tmp_path / "m.safetensors")
    core = _gpt2in.gpt2()
    ec = _gpt2in.embed_open(str(model), None, None)
    objs = things(tmp_path) + [core, ec, str(model), _gpt2in.SPECIAL_TEXT, _gpt2in.SPECIAL_ALLOW,
                               np.zeros(V * C, np.float32), np.zeros(64, np.uint32), 2 ** 61, 2 ** 63 - 1]
    # (not the fault hook of test builds: it would make later allocations fail)
    fns = [(n, f) for n, f in public_callables(_gpt2in) if not inspect.isclass(f) and n != "_fault_set"]
    fns += public_callables(core) + public_callables(ec)
    fuzz(fns, objs, 6000, 4, max_args=6)
    # huge counts that wrap size_t when multiplied by the row size
    ids, out = np.zeros(4, np.uint32), np.zeros(4 * C, np.float32)
    for B, T in ((2 ** 62, 4), (4, 2 ** 62), (2 ** 63 - 1, 2), (1 << 31, 1 << 33)):
        with pytest.raises((ValueError, OverflowError, MemoryError)):
            ec.forward(ids, B, T, 0, out)
    for N in (2 ** 62, 2 ** 63 - 1, 1 << 61):
        with pytest.raises((ValueError, OverflowError, MemoryError)):
            ec.backward_sparse(ids, N, out, ids.copy(), out.copy())
        with pytest.raises((ValueError, OverflowError, MemoryError)):
            ec.backward_dense(ids, N, out, np.zeros(V * C, np.float32))
        with pytest.raises((ValueError, OverflowError, MemoryError)):
            ec.sgd(ids, N, out, 0.1)
        with pytest.raises((ValueError, OverflowError, MemoryError)):
            ec.adam(ids, N, out, np.zeros(V * C, np.float32), np.zeros(V * C, np.float32), 0.1, 0.9, 0.99,
                    1e-8, 0)
