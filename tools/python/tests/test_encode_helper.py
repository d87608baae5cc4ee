"""The helper thread of a text above 4 MB (encoded in place into its list's
item array, a fresh mapping): while the calling thread encodes, a helper
faults the array in ahead of it and widens the ids behind it. The modes of
CoreBPE._set_fill make each path happen on purpose: 'sync' (the encoder
waits for the helper at every step: the helper faults in and widens
everything), 'lazy' (the helper widens nothing: the calling thread widens
every step at the end), 'no-thread' (as if the thread could not be
started), 'off'; 'auto' is what the package does (a helper only where a
core is likely idle), 'always' the same however busy the machine. The ids
must be the library's in every mode; the reference is CoreBPE.encode_into
(one call)."""
import os
import random
import resource
import sys
import threading

import numpy as np
import pytest

from gpt2in import _gpt2in
from test_encode_memory import fresh_encoding, one_call, plain_texts, random_text, refs_after

MODES = ["auto", "off", "no-thread", "sync", "lazy", "always"]
MULTI_CORE = len(os.sched_getaffinity(0)) > 1


def thread_faults():
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt


@pytest.fixture(scope="module")
def big_text(fixtures):
    """Some 5 MB: past the 4 MB of the kept buffer, an item array of its
    own mapping, many steps of the helper."""
    rng = random.Random(21)
    base = "\n".join(plain_texts(fixtures)) + random_text(rng, 300000)
    return (base * (5_000_000 // len(base) + 1))[:5_000_000]


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_gives_the_ids_of_one_call(big_text, mode):
    enc, core = fresh_encoding()
    core._set_fill(mode)
    want = one_call(core, big_text)
    x = enc.encode_ordinary(" the")[0]
    before = sys.getrefcount(x)
    got = enc.encode_ordinary(big_text)
    assert got == want
    if mode in ("always", "lazy"):
        assert enc._encode_bytes(big_text.encode()) == want
        assert enc.encode(big_text, allowed_special="all") == one_call(core, big_text, _gpt2in.SPECIAL_ALLOW)
    if mode in ("sync", "lazy", "always") and MULTI_CORE:
        assert core._filled >= 0   # a helper ran ('auto' only where the machine's load leaves a core idle)
    elif mode in ("off", "no-thread"):
        assert core._filled == -1
    uses = got.count(x)
    assert uses > 1000
    refs_after(x, before, uses)
    del got
    refs_after(x, before, 0)


@pytest.fixture(scope="module")
def dense():
    """Random bytes (almost a token each) and letters between punctuation
    (a token each), with their ids: more tokens than half a token a byte."""
    rng = np.random.default_rng(23)
    data = rng.integers(0, 256, 7_000_000, dtype=np.uint8).tobytes()
    pairs = np.empty((3_500_000, 2), np.uint8)
    pairs[:, 0] = rng.integers(97, 123, len(pairs))
    pairs[:, 1] = np.frombuffer(b",.;:!?", np.uint8)[rng.integers(0, 6, len(pairs))]
    text = pairs.tobytes().decode()
    core = _gpt2in.gpt2()
    return [(data, one_call(core, data)), (text, one_call(core, text))]


@pytest.mark.parametrize("mode", ["always", "sync", "lazy"])
def test_helper_across_a_grown_array(mode, dense):
    """Texts encoded in parts (made small with _set_part) whose tokens
    outgrow the first estimate of half a token a byte: the helper is
    stopped before the array moves and started again on the new one."""
    enc, core = fresh_encoding(3_000_000)
    core._set_fill(mode)
    for data, want in dense:
        assert len(want) > len(data) // 2 + 1024
        if isinstance(data, bytes):
            assert enc._encode_bytes(data) == want
        else:
            assert enc.encode_ordinary(data) == want
        if MULTI_CORE and mode != "auto":
            assert core._filled >= 0


@pytest.mark.skipif(not MULTI_CORE, reason="the helper runs only where the process may use two cores")
@pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                    reason="ASan's checks fault in shadow memory for every fresh page")
def test_helper_takes_the_page_faults(big_text):
    """With the encoder waiting for the helper at every step, the calling
    thread takes (almost) no page fault for the list's fresh memory: the
    helper faulted it in, as far as the list reached and not much beyond;
    without a helper the calling thread faults every page in itself."""
    enc, core = fresh_encoding()
    want = one_call(core, big_text)
    item_bytes = len(want) * 8
    assert item_bytes > 8 << 20
    core._set_fill("off")
    enc.encode_ordinary(big_text)   # the str's UTF-8, the encoder's cache
    f0 = thread_faults()
    got = enc.encode_ordinary(big_text)
    alone = thread_faults() - f0
    assert got == want
    del got
    assert alone >= item_bytes // (2 << 20) - 1   # huge pages or small, a fault a page
    core._set_fill("sync")
    f0 = thread_faults()
    got = enc.encode_ordinary(big_text)
    helped = thread_faults() - f0
    assert got == want
    if core._filled == 0:
        pytest.skip("the kernel has no MADV_POPULATE_WRITE (Linux 5.14)")
    assert helped <= 3, (helped, alone)
    assert item_bytes <= core._filled <= item_bytes + (8 << 20)


@pytest.mark.skipif(not MULTI_CORE, reason="needs two cores to take one away")
def test_no_helper_on_one_core(big_text):
    """A process bound to one core has no helper (it would only take turns
    with the encoder), and the same ids."""
    enc, core = fresh_encoding()
    core._set_fill("sync")
    want = one_call(core, big_text)
    cpus = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(cpus)})
        got = enc.encode_ordinary(big_text)
    finally:
        os.sched_setaffinity(0, cpus)
    assert core._filled == -1
    assert got == want
    enc.encode_ordinary(big_text)
    assert core._filled >= 0


def test_threads_with_helpers_at_once(big_text):
    """Python threads encoding big texts on one CoreBPE at once, each call
    with a helper of its own, beside a batch (which has none)."""
    enc, core = fresh_encoding()
    core._set_fill("always")
    texts = [big_text[k * 100000:] for k in range(2)] + [big_text[:4_500_000]]
    want = [one_call(core, t) for t in texts]
    errors = []

    def work(k):
        try:
            for r in range(1):
                i = (k + r) % len(texts)
                if enc.encode_ordinary(texts[i]) != want[i]:
                    errors.append((k, i))
        except Exception as e:   # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in ts:
        t.start()
    assert enc.encode_ordinary_batch(texts[:2], num_threads=2) == want[:2]
    for t in ts:
        t.join()
    assert not errors


def test_set_fill_checks_its_argument():
    core = _gpt2in.gpt2()
    with pytest.raises(ValueError):
        core._set_fill("sometimes")
    with pytest.raises(TypeError):
        core._set_fill(1)
    assert core._filled == -1
