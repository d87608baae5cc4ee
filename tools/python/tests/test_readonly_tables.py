"""emb.wte / emb.wpe are read-only for good: the mapped F32/F16 tables, the
float32 copies of BF16 ones and the trained float32 copy after a step all
refuse setflags(write=True), and nothing reachable from them (their base
chain) is a writable buffer. A write there would change the weights behind
the optimiser's back."""
import json
import struct

import numpy as np
import pytest

import gpt2in

V, C, MAXT = 12, 4, 6


def encode(a, dtype):
    a = np.ascontiguousarray(a, np.float32)
    if dtype == "F32":
        return a.astype("<f4").tobytes()
    if dtype == "F16":
        return a.astype("<f2").tobytes()
    return (a.view(np.uint32) >> 16).astype("<u2").tobytes()   # BF16: the top half (exact for these values)


def write_model(path, dtype):
    r = np.random.default_rng(3)
    wte = r.integers(-8, 8, (V, C)).astype(np.float32) / 4   # exact in every dtype
    wpe = r.integers(-8, 8, (MAXT, C)).astype(np.float32) / 4
    blobs = [encode(wte, dtype), encode(wpe, dtype)]
    header = {"wte.weight": {"dtype": dtype, "shape": [V, C], "data_offsets": [0, len(blobs[0])]},
              "wpe.weight": {"dtype": dtype, "shape": [MAXT, C],
                             "data_offsets": [len(blobs[0]), len(blobs[0]) + len(blobs[1])]}}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    return path


def assert_read_only(a):
    assert isinstance(a, np.ndarray) and not a.flags.writeable
    with pytest.raises(ValueError):
        a.setflags(write=True)
    # every link of the base chain: arrays that cannot be made writable,
    # buffers exported read-only
    obj, seen = a, 0
    while obj is not None and seen < 10:
        seen += 1
        if isinstance(obj, np.ndarray):
            with pytest.raises(ValueError):
                obj.setflags(write=True)
            obj = obj.base
        elif isinstance(obj, memoryview):
            assert obj.readonly
            obj = obj.obj
        else:
            assert memoryview(obj).readonly, type(obj)
            obj = None


@pytest.mark.parametrize("dtype", ["F32", "F16", "BF16"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_tables_stay_read_only(tmp_path, dtype, optimizer):
    emb = gpt2in.Embedding.open(write_model(tmp_path / f"m_{dtype}.safetensors", dtype))
    before = emb.forward([5, 1])
    for t in (emb.wte, emb.wpe):
        assert_read_only(t)
    rows, grad = emb.backward_sparse([5], np.ones((1, C), np.float32))
    if optimizer == "sgd":
        emb.sgd_step(rows, grad, lr=0.5)
    else:
        gpt2in.SparseAdam(emb, lr=0.5).step(rows, grad)
    trained = emb.forward([5, 1])
    assert not np.array_equal(trained, before)
    wte = emb.wte                                  # the trained float32 copy
    assert wte.dtype == np.float32
    assert_read_only(wte)
    assert_read_only(emb.wpe)
    # the view follows later steps (it is the optimiser's table, not a copy)
    row = wte[5].copy()
    emb.sgd_step(rows, grad, lr=0.5)
    assert not np.array_equal(wte[5], row) and np.array_equal(wte[5], emb.wte[5])
    # a NumPy copy is writable and leaves the model alone
    c = np.array(emb.wte)
    c[5] = 1000.0
    assert np.array_equal(emb.forward([5, 1]), emb.forward([5, 1]))
    assert not (emb.forward([5])[0] > 900).any()
