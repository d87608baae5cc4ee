"""Running out of memory while loading is MemoryError, never ValueError
(which the README keeps for malformed files): Encoding.from_files and
Embedding.open. Two ways to run out: the library's allocation fault hook
(test builds, -DGPT2IN_FAULTS: every allocation of a load made to fail in
turn) and, in a release build, an address-space limit (ulimit -v) in a
child process, stepped up until the load succeeds."""
import json
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gpt2in
from gpt2in import _gpt2in
from conftest import ROOT


def byte_chars():
    """GPT-2's byte -> printable character map (encoder.json's keys)."""
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def small_vocab(d):
    m = byte_chars()
    enc = {m[b]: b for b in range(256)}
    merges = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o")]
    for a, b in merges:
        enc[a + b] = len(enc)
    enc["<|endoftext|>"] = len(enc)
    (d / "encoder.json").write_text(json.dumps(enc))
    (d / "vocab.bpe").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    return d / "encoder.json", d / "vocab.bpe"


def small_weights(path, V=300, C=8):
    w = np.arange(V * C, dtype=np.float32).reshape(V, C)
    h = json.dumps({"__metadata__": {"format": "pt"},
                    "wte.weight": {"dtype": "F32", "shape": [V, C], "data_offsets": [0, w.nbytes]}}).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + w.tobytes())
    return path


def every_allocation_fails_in_turn(load):
    """load() with its 1st, 2nd, ... library allocation failing, until it
    makes no more: each try must succeed or raise MemoryError. Returns the
    number of allocations a load makes."""
    fault_set = _gpt2in._fault_set
    at = 0
    try:
        while True:
            at += 1
            fault_set(at, False)
            try:
                load()
            except MemoryError:
                pass
            made = fault_set(0, False)
            if made < at:      # the failure was never reached: done
                return made
            assert at < 100000
    finally:
        fault_set(0, False)


@pytest.mark.skipif(not hasattr(_gpt2in, "_fault_set"), reason="the library is not a test build (-DGPT2IN_FAULTS)")
def test_allocation_failures_are_memory_errors(tmp_path):
    enc, voc = small_vocab(tmp_path)
    assert gpt2in.Encoding.from_files(enc, voc).encode("hello") == [259]
    made = every_allocation_fails_in_turn(lambda: gpt2in.Encoding.from_files(enc, voc))
    assert made > 5
    w = small_weights(tmp_path / "w.safetensors")
    made = every_allocation_fails_in_turn(lambda: gpt2in.Embedding.open(w).forward([1, 2]))
    assert made > 1


CHILD = textwrap.dedent("""
    import os, resource, sys
    import gpt2in
    enc, voc, weights = sys.argv[1:4]
    def vm():
        for line in open("/proc/self/status"):
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    def under_limits(load, step):
        seen = []
        for k in range(400):
            resource.setrlimit(resource.RLIMIT_AS, (vm() + k * step, hard))
            try:
                load()
                seen.append("ok")
            except MemoryError as e:
                seen.append("MemoryError")
            except Exception as e:
                seen.append(f"{type(e).__name__}: {e}")
            finally:
                resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
            if seen[-1] == "ok":
                break
        return seen
    print(repr(under_limits(lambda: gpt2in.Encoding.from_files(enc, voc), 256 << 10)))
    print(repr(under_limits(lambda: gpt2in.Embedding.open(weights), 1 << 20)))
""")


def test_address_space_limit(tmp_path):
    """The tester's case: GPT-2's encoder.json under `ulimit -v` gave
    ValueError('encoder.json: out of memory'). Every limit from none spare
    up to enough must give MemoryError, then a loaded vocabulary; likewise
    mapping a weights file that does not fit."""
    if os.environ.get("LD_PRELOAD"):
        pytest.skip("an address-space limit does not work under ASan")
    enc, voc = ROOT / "gpt2_weights" / "encoder.json", ROOT / "gpt2_weights" / "vocab.bpe"
    if not enc.exists() or not voc.exists():
        pytest.skip("gpt2_weights/encoder.json is missing")
    w = small_weights(tmp_path / "big.safetensors", V=50257, C=64)   # 12.9 MB to map
    r = subprocess.run([sys.executable, "-c", CHILD, str(enc), str(voc), str(w)], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    for seen in map(eval, r.stdout.splitlines()):
        assert seen[-1] == "ok", seen
        assert "MemoryError" in seen, seen
        assert set(seen) == {"ok", "MemoryError"}, seen
