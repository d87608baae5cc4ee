"""How the extension holds a text's ids: big texts in parts cut at safe cuts
(made small here with CoreBPE._set_part, so that small texts take the paths
of big ones), outputs that start from an estimate and grow, huge-page
buffers, and per-id reference counts kept by the CoreBPE from call to call.
The reference is CoreBPE.encode_into: the library in one call, no parts."""
import os
import platform
import random
import sys
import threading

import numpy as np
import pytest

import gpt2in
from gpt2in import _gpt2in

EOT = "<|endoftext|>"
PINNED = bool(_gpt2in.PINNED_INTS)


def refs_after(x, before, uses):
    """The reference count of the int x after lists took `uses` of it: exact
    where lists count their references, pinned (huge, never falling near
    zero) where they take pinned ints uncounted."""
    if PINNED:
        assert sys.getrefcount(x) > 2**60
    else:
        assert sys.getrefcount(x) == before + uses


def one_call(core, data, flags=_gpt2in.SPECIAL_TEXT):
    """The library's ids for data (str or bytes) in one bpe_encode."""
    size = len(data.encode("utf-8") if isinstance(data, str) else data)
    out = np.empty(max(size, 1), np.uint32)
    n = core.encode_into(data, flags, out)
    assert n <= size
    return out[:n].tolist()


def fresh_encoding(part=None):
    core = _gpt2in.gpt2()
    if part is not None:
        core._set_part(part)
    return gpt2in.Encoding("gpt2", _core=core), core


def plain_texts(fixtures):
    return [d.decode() for n, d, _ in fixtures
            if not n.startswith("invalid_utf8") and not n.startswith("special_allow_")]


def random_text(rng, n):
    """Words, digits, punctuation, spaces, newlines, other scripts, emoji and
    <|endoftext|>: cuts of every kind near any place."""
    alphabet = ["the", " the", "  ", " ", "\n", "\n\n", "\t", "123", "4", "'s", "'", "é", "日本",
                "語", "😀", "!", "?!", " .", "x" * 40, "Ж", "\u00a0", EOT, "<|", "endoftext", "|>"]
    return "".join(rng.choice(alphabet) for _ in range(n))


def test_encode_into_is_one_call(enc, fixtures):
    for name, data, ids in fixtures:
        if name.startswith("invalid_utf8"):
            assert one_call(enc._core, data) == ids, name
        elif name.startswith("special_allow_"):
            assert one_call(enc._core, data.decode(), _gpt2in.SPECIAL_ALLOW) == ids, name
        else:
            assert one_call(enc._core, data.decode()) == ids, name
    s = "hello world, hello world"
    out = np.empty(3, np.uint32)
    assert enc._core.encode_into(s, _gpt2in.SPECIAL_TEXT, out) == len(enc.encode_ordinary(s)) == 5
    assert out.tolist() == enc.encode_ordinary(s)[:3]   # the ids that fit
    with pytest.raises(TypeError):
        enc._core.encode_into("hi", _gpt2in.SPECIAL_TEXT, np.empty(4, np.int64))
    with pytest.raises((TypeError, BufferError)):
        enc._core.encode_into("hi", _gpt2in.SPECIAL_TEXT, bytes(16))   # read-only
    with pytest.raises(ValueError):
        _gpt2in.gpt2()._set_part(0)


@pytest.mark.parametrize("part", [1, 7, 64, 4096])
def test_parts_give_the_ids_of_one_call(fixtures, part):
    enc, core = fresh_encoding(part)
    rng = random.Random(part)
    texts = plain_texts(fixtures) + [random_text(rng, rng.randrange(1, 3000)) for _ in range(30)]
    if part >= 64:
        texts.append("\n\n".join(plain_texts(fixtures)))
        texts.append(random_text(rng, 60000))
    for t in texts:
        want = one_call(core, t)
        assert enc.encode_ordinary(t) == want
        assert enc.encode_to_numpy(t, disallowed_special=()).tolist() == want
        assert enc._encode_bytes(t.encode()) == want
        assert enc.encode(t, allowed_special="all") == one_call(core, t, _gpt2in.SPECIAL_ALLOW)


def test_more_tokens_than_the_estimate(fixtures):
    """Above a part, the output starts at half a token a byte: random bytes
    (almost a token each) and letters between punctuation (a token each)
    grow it, across the huge-page size too."""
    enc, core = fresh_encoding(4096)
    rng = random.Random(5)
    data = bytes(rng.randrange(256) for _ in range(300000))
    want = one_call(core, data)
    assert len(want) > len(data) // 2 + 1024
    assert enc._encode_bytes(data) == want
    text = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") + rng.choice(",.;:!?") for _ in range(100000))
    want = one_call(core, text)
    assert len(want) > len(text.encode()) // 2 + 1024
    assert enc.encode_ordinary(text) == want
    assert enc.encode_to_numpy(text).tolist() == want
    assert enc.encode(text) == want


def test_many_calls_of_different_sizes(fixtures):
    """Sizes around every threshold (the stack buffer, the counted
    references, the huge-page outputs, the parts), in an order that makes
    each call follow a different one; the reference counts of the shared
    int objects stay exact all along."""
    for part in (None, 50000):
        enc, core = fresh_encoding(part)
        rng = random.Random(7)
        base = "\n".join(plain_texts(fixtures)) + random_text(rng, 600000)
        x = enc.encode_ordinary(" the")[0]   # an id above 256: a mortal int the CoreBPE holds
        before = sys.getrefcount(x)
        kept = []
        sizes = [1, 255, 256, 257, 4000, 131071, 131072, 131073, 140000, 600000, 20, 1_300_000, 300,
                 131072, 900000, 5, 70000, 131073, 100000]
        for i, n in enumerate(sizes):
            t = base[:n]
            assert len(t) == n
            want = one_call(core, t)
            got = enc.encode_ordinary(t) if i % 2 else enc._encode_bytes(t.encode())
            assert got == want, n
            assert enc.encode_to_numpy(t, disallowed_special=()).tolist() == want, n
            kept.append(got)
        uses = sum(lst.count(x) for lst in kept)
        assert uses > 1000
        refs_after(x, before, uses)
        del kept, got
        refs_after(x, before, 0)


def test_threads_share_the_counts(fixtures):
    """Python threads encode big and middle-sized texts on one CoreBPE at
    once (the GIL released), so that calls find the per-id counts or the
    middle texts' buffer taken and make their own; encode_batch adds its
    threads. Ids and reference counts stay exact."""
    enc, core = fresh_encoding()
    base = "\n".join(plain_texts(fixtures))
    texts = [(base * (k + 2))[: 140000 + 40000 * k] for k in range(4)] + [base[:60000], base[:90000]]
    want = [one_call(core, t) for t in texts]
    x = enc.encode_ordinary(" the")[0]
    before = sys.getrefcount(x)
    results, errors = [], []

    def work(k):
        try:
            for r in range(6):
                t = texts[(k + r) % 6]
                got = enc.encode_ordinary(t)
                if got != want[(k + r) % 6]:
                    errors.append(k)
                results.append(got)
        except Exception as e:   # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    batches = [enc.encode_ordinary_batch(texts + ["", "a", base[:300]], num_threads=4) for _ in range(3)]
    for t in ts:
        t.join()
    assert not errors
    for k in range(3):
        assert batches[k][:6] == want and batches[k][6:] == [[], [64], enc.encode_ordinary(base[:300])]
    uses = sum(lst.count(x) for lst in results) + sum(lst.count(x) for b in batches for lst in b)
    refs_after(x, before, uses)
    del results, batches
    refs_after(x, before, 0)


def test_kept_buffer_across_sizes(fixtures):
    """Texts up to 4 MB go through the CoreBPE's kept id buffer, which grows
    to the biggest text seen and is dropped after a text past 4 MB (encoded
    in place); each call's ids are the library's, whatever came before."""
    enc, core = fresh_encoding()
    rng = random.Random(11)
    base = "\n".join(plain_texts(fixtures)) + random_text(rng, 200000)
    base = (base * (4_300_000 // len(base) + 1))
    for n in (300, 2_000_000, 40_000, 4_000_000, 4_194_304, 4_194_305, 4_300_000, 1_000_000, 257):
        t = base[:n]
        want = one_call(core, t)
        got = enc.encode_ordinary(t)
        assert got == want, n
        assert sys.getsizeof(got) < sys.getsizeof([0] * (len(want) + 8)) + 64, n   # room of its size


def thread_faults():
    import resource
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc" or "asan" in os.environ.get("LD_PRELOAD", ""),
                    reason="glibc's allocator keeps freed memory in its heap; ASan's does not")
def test_dropped_lists_get_warm_memory(fixtures):
    """A loop that drops each list before the next call: after the first
    calls, the allocator hands the freed item array back, resident, and
    encode_ordinary of a 1 MB text takes no more page faults than the
    library's call into a warm buffer (the package's side once took a fresh
    mapping a call, faulted in again every time)."""
    enc, core = fresh_encoding()
    base = "\n".join(plain_texts(fixtures))
    text = (base * (1_000_000 // len(base) + 1))[:1_000_000]
    out = np.empty(len(text.encode()), np.uint32)
    n = core.encode_into(text, _gpt2in.SPECIAL_TEXT, out)
    assert n * 8 > 2 << 20   # an item array of huge-page size
    for _ in range(4):
        ids = enc.encode_ordinary(text)
        del ids
    extra = 0
    for _ in range(10):
        f0 = thread_faults()
        core.encode_into(text, _gpt2in.SPECIAL_TEXT, out)
        f1 = thread_faults()
        ids = enc.encode_ordinary(text)
        f2 = thread_faults()
        assert len(ids) == n
        del ids
        extra += (f2 - f1) - (f1 - f0)
    assert extra <= 4, extra


@pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""), reason="ASan's allocator maps memory its own way")
def test_calls_keep_the_library_cache_warm(fixtures):
    """Texts of 64 KB and more: the library's encoder, which the CoreBPE
    keeps from call to call, keeps its piece cache, so a loop of calls
    takes no page fault (bpe_encode alone makes a fresh 1.5 MB cache for
    each such text, faulted in every time)."""
    enc, core = fresh_encoding()
    base = "\n".join(plain_texts(fixtures))
    text = (base * (200_000 // len(base) + 1))[:200_000]
    want = one_call(core, text)
    for _ in range(3):
        ids = enc.encode_ordinary(text)
        del ids
    f0 = thread_faults()
    for _ in range(10):
        ids = enc.encode_ordinary(text)
        assert len(ids) == len(want)
        del ids
    assert thread_faults() - f0 <= 2
    assert enc.encode_ordinary(text) == want


def test_threads_more_than_kept_encoders(fixtures):
    """More Python threads than the CoreBPE keeps encoders (8), and batches
    on threads of their own, all at once on one Encoding: each call holds
    an encoder of its own (taken from the CoreBPE, made when none is left,
    freed when the CoreBPE has enough), so ids stay the library's; texts
    from a few bytes to past 64 KB, with special tokens allowed or not."""
    enc, core = fresh_encoding()
    rng = random.Random(13)
    base = "\n".join(plain_texts(fixtures))
    texts = [random_text(rng, rng.choice([3, 40, 900, 20000, 40000])) for _ in range(24)] + \
        [(base * 3)[:k] for k in (70000, 150000)]
    want = [one_call(core, t) for t in texts]
    want_all = [one_call(core, t, _gpt2in.SPECIAL_ALLOW) for t in texts]
    errors = []

    def work(k):
        try:
            for r in range(8):
                i = (k * 7 + r) % len(texts)
                if (k + r) % 3 == 0:
                    got, ok = enc.encode(texts[i], allowed_special="all"), want_all[i]
                elif (k + r) % 3 == 1:
                    got, ok = enc.encode_to_numpy(texts[i], disallowed_special=()).tolist(), want[i]
                else:
                    got, ok = enc.encode_ordinary(texts[i]), want[i]
                if got != ok:
                    errors.append((k, i))
            if k % 4 == 0:
                if enc.encode_ordinary_batch(texts, num_threads=6) != want:
                    errors.append((k, "batch"))
        except Exception as e:   # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(12)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    out = np.empty(200000, np.uint32)
    for t, w in zip(texts, want):
        n = core.encode_into(t, _gpt2in.SPECIAL_TEXT, out, True)
        assert out[:n].tolist() == w


def test_short_texts_make_few_encoders(fixtures):
    """Many threads encoding short texts at once (a batch's 16 threads, each
    holding an encoder while it works, and Python threads) never make more
    than 8 library encoders (each a 1.5 MB cache, costly beside a few KB of
    text): a call that finds none free then encodes without one. A text of
    64 KB or more still makes one (bpe_encode would make its cache anyway)."""
    enc, core = fresh_encoding()
    rng = random.Random(17)
    texts = [random_text(rng, rng.randrange(300, 600)) for _ in range(1000)]
    want = [one_call(core, t) for t in texts]
    assert sum(len(t.encode()) for t in texts) > 16 * 64 * 1024   # 16 threads' worth
    errors = []

    def work(k):
        try:
            for r in range(40):
                i = (k * 40 + r) % len(texts)
                if enc.encode_ordinary(texts[i]) != want[i]:
                    errors.append((k, i))
        except Exception as e:   # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for _ in range(3):
        assert enc.encode_ordinary_batch(texts, num_threads=16) == want
    for t in ts:
        t.join()
    assert not errors
    assert 1 <= core._encoders_made <= 8
    big = (texts[0] * 400)[:70000]
    assert enc.encode_ordinary(big) == one_call(core, big)
    assert core._encoders_made <= 9
