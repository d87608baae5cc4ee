"""gpt2in.Encoding against tiktoken's semantics: the committed fixtures (ids
from npm tiktoken), random strings checked by npm tiktoken in one batch, and
tiktoken's Python-side rules (special tokens, surrogates, errors, offsets)."""
import pickle
import random
import threading
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import gpt2in
from gpt2in import _gpt2in
from conftest import ROOT, oracle

EOT = "<|endoftext|>"


def fixture_mode(name):
    if name.startswith("special_allow_"):
        return "allow"
    if name.startswith("special_text_"):
        return "text"
    return "default"


# ---- the committed fixtures --------------------------------------------------


def test_fixtures_every_encode_path(enc, fixtures):
    for name, data, ids in fixtures:
        if name.startswith("invalid_utf8"):
            assert enc._encode_bytes(data) == ids, name
            assert enc.decode_bytes(ids) == data, name
            continue
        text = data.decode("utf-8")
        mode = fixture_mode(name)
        if mode == "allow":
            got = enc.encode(text, allowed_special="all")
            assert enc.encode(text, allowed_special={EOT}) == ids, name
            assert enc.encode_to_numpy(text, allowed_special="all").tolist() == ids, name
            assert enc.encode_batch([text], allowed_special="all") == [ids], name
        elif mode == "text":
            got = enc.encode(text, disallowed_special=())
            assert enc.encode_ordinary(text) == ids, name
        else:
            got = enc.encode_ordinary(text)
            assert enc.encode(text) == ids, name
            arr = enc.encode_to_numpy(text)
            assert arr.dtype == np.uint32 and arr.ndim == 1 and arr.tolist() == ids, name
            assert enc._encode_bytes(data) == ids, name
        assert got == ids, name
        assert enc.decode(ids) == text, name
        assert enc.decode_bytes(ids) == data, name
        assert enc.decode_bytes(np.array(ids, dtype=np.uint32)) == data, name


def test_fixtures_batch(enc, fixtures):
    plain = [(d.decode(), ids) for n, d, ids in fixtures
             if fixture_mode(n) == "default" and not n.startswith("invalid_utf8")]
    texts = [t for t, _ in plain] * 3
    want = [ids for _, ids in plain] * 3
    for threads in (1, 2, 8):
        assert enc.encode_ordinary_batch(texts, num_threads=threads) == want
        assert enc.encode_batch(texts, num_threads=threads) == want
    assert enc.decode_batch(want) == texts
    assert enc.decode_bytes_batch(want) == [t.encode() for t in texts]


def test_from_files_matches_builtin(enc, fixtures):
    w = ROOT / "gpt2_weights"
    other = gpt2in.Encoding.from_files(str(w / "encoder.json"), str(w / "vocab.bpe"), name="mine")
    assert other.name == "mine" and other.n_vocab == 50257 and other.eot_token == 50256
    for name, data, ids in fixtures:
        if fixture_mode(name) == "default" and not name.startswith("invalid_utf8"):
            assert other.encode(data.decode()) == ids, name
    with pytest.raises(FileNotFoundError):
        gpt2in.Encoding.from_files(str(w / "nope.json"), str(w / "vocab.bpe"))


def test_from_files_malformed(tmp_path):
    bad = tmp_path / "encoder.json"
    bad.write_text('{"a": 0,')
    vocab = tmp_path / "vocab.bpe"
    vocab.write_text("#version: 0.2\n")
    with pytest.raises(ValueError, match="encoder.json"):
        gpt2in.Encoding.from_files(str(bad), str(vocab))


# ---- random strings through npm tiktoken ------------------------------------

ALPHABETS = [
    "abcXYZ ", "0123456789", " \t\n\r\x0b\x0c", "'sStTdDmMlLvVrReE", "!?.,;:-_()[]{}<>|/\\\"",
    "\u00e9\u00fc\u00df\u0301\u0308", "\u4e2d\u6587\u65e5\u672c\u8a9e", "\uac00\ud55c\uae00",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629", "\u0928\u092e\u0938\u094d\u0924\u0947",
    "\U0001f600\U0001f44d\u200d\U0001f3fd", "\u00a0\u2009\u3000\u2028\u0085", "\u00b2\u00bd\u2160",
    "<|endoftext|>", "\ufeff\ufffd\x00\x7f",
]


def random_strings(n, seed):
    r = random.Random(seed)
    out = []
    for _ in range(n):
        k = r.randint(0, 60)
        pool = "".join(r.sample(ALPHABETS, r.randint(1, 4)))
        out.append("".join(r.choice(pool) if r.random() > 0.1 else r.choice(ALPHABETS)
                           for _ in range(k)))
    return out


def hypothesis_strings(n):
    """n strings from hypothesis' text strategy (all of Unicode, no
    surrogates), collected so that Node sees them in one batch."""
    got = []

    @settings(max_examples=n, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.text(max_size=80))
    def collect(s):
        got.append(s)

    collect()
    return got


def test_random_strings_against_tiktoken(enc):
    texts = random_strings(1500, 1) + hypothesis_strings(1500)
    items = []
    for t in texts:
        b = t.encode()
        items += [(b, "text"), (b, "allow"), (b, "error")]
    ref = oracle(items)
    for k, t in enumerate(texts):
        want_text, want_allow, want_err = ref[3 * k: 3 * k + 3]
        assert enc.encode_ordinary(t) == want_text, repr(t)
        assert enc.encode(t, disallowed_special=()) == want_text, repr(t)
        assert enc.encode(t, allowed_special="all") == want_allow, repr(t)
        if want_err == "special":
            with pytest.raises(ValueError, match="disallowed special token"):
                enc.encode(t)
        else:
            assert enc.encode(t) == want_err, repr(t)
        assert enc.decode(want_text) == t
    assert enc.encode_ordinary_batch(texts, num_threads=2) == ref[0::3]
    assert enc.encode_batch(texts, allowed_special="all") == ref[1::3]


def test_random_bytes_against_rule(enc):
    r = random.Random(2)
    blobs = [bytes(r.randrange(256) for _ in range(r.randint(0, 40))) for _ in range(800)]
    blobs += [r.choice(ALPHABETS).encode()[: r.randint(0, 6)] + bytes([r.randrange(128, 256)]) for _ in range(200)]
    ref = oracle([(b, "text") for b in blobs])
    for b, want in zip(blobs, ref):
        assert enc._encode_bytes(b) == want, b
        assert enc.decode_bytes(want) == b


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_properties(s):
    enc = gpt2in.get_encoding("gpt2")
    ids = enc.encode_ordinary(s)
    assert enc.decode(ids) == s
    assert enc.encode(s, disallowed_special=()) == ids
    assert enc.encode_to_numpy(s, disallowed_special=()).tolist() == ids
    assert enc._encode_bytes(s.encode()) == ids
    assert enc.decode_tokens_bytes(ids) == [enc.decode_single_token_bytes(i) for i in ids]
    assert b"".join(enc.decode_tokens_bytes(ids)) == s.encode()
    text, offsets = enc.decode_with_offsets(ids)
    assert text == s
    # offset = index of the character holding the token's first byte
    char_at = []
    for i, c in enumerate(s):
        char_at += [i] * len(c.encode())
    starts = []
    pos = 0
    for i in ids:
        starts.append(pos)
        pos += len(enc.decode_single_token_bytes(i))
    assert offsets == [char_at[p] for p in starts]


# ---- tiktoken's own vectors and rules ------------------------------------------


def test_attributes(enc):
    assert enc.name == "gpt2" and repr(enc) == "<Encoding 'gpt2'>"
    assert enc.n_vocab == 50257 and enc.max_token_value == 50256 and enc.eot_token == 50256
    assert enc.special_tokens_set == {EOT}
    assert gpt2in.get_encoding("gpt2") is enc
    r50k = gpt2in.get_encoding("r50k_base")
    assert r50k.name == "r50k_base" and r50k.encode("hello world") == [31373, 995]
    assert gpt2in.list_encoding_names() == ["gpt2", "r50k_base"]
    with pytest.raises(ValueError, match="Unknown encoding cl100k_base"):
        gpt2in.get_encoding("cl100k_base")
    assert pickle.loads(pickle.dumps(enc)) is enc
    assert enc.is_special_token(50256) and not enc.is_special_token(0)


def test_public_vectors(enc):
    assert enc.encode("hello world") == [31373, 995]
    vec = {"0": [15], "00": [405], "000": [830], "0000": [2388], "00000": [20483],
           "000000": [10535], "0000000": [24598], "00000000": [8269],
           "000000000": [10535, 830], "0000000000000000": [25645],
           "00000000000000000": [8269, 10535, 830]}
    for s, ids in vec.items():
        assert enc.encode(s) == ids
    for c in ["^", "0", "a", "'s", " ", "\n"]:
        big = c * 10000
        assert enc.decode(enc.encode(big)) == big


def test_special_token_policy(enc):
    s = "hello <|endoftext|>"
    msg = ("Encountered text corresponding to disallowed special token '<|endoftext|>'.\n"
           "If you want this text to be encoded as a special token, pass it to `allowed_special`, "
           "e.g. `allowed_special={'<|endoftext|>', ...}`.\n"
           "If you want this text to be encoded as normal text, disable the check for this token by "
           "passing `disallowed_special=(enc.special_tokens_set - {'<|endoftext|>'})`.\n"
           "To disable this check for all special tokens, pass `disallowed_special=()`.\n")
    for call in (lambda **k: enc.encode(s, **k), lambda **k: enc.encode_to_numpy(s, **k),
                 lambda **k: enc.encode_batch(["x", s], **k)):
        with pytest.raises(ValueError) as e:
            call()
        assert str(e.value) == msg
    text_ids = [31373, 1279, 91, 437, 1659, 5239, 91, 29]
    assert enc.encode(s, allowed_special="all") == [31373, 220, 50256]
    assert enc.encode(s, allowed_special={EOT}) == [31373, 220, 50256]
    assert enc.encode(s, disallowed_special=()) == text_ids
    assert enc.encode(s, disallowed_special=set()) == text_ids
    assert enc.encode(s, allowed_special=set(), disallowed_special=frozenset()) == text_ids
    assert enc.encode_to_numpy(s, disallowed_special=()).tolist() == text_ids
    assert enc.encode_to_numpy(s, allowed_special="all").tolist() == [31373, 220, 50256]
    assert enc.encode_batch([s], disallowed_special=()) == [text_ids]
    assert enc.encode_ordinary(s) == text_ids
    # disallowed_special may name any string, as in tiktoken
    with pytest.raises(ValueError, match="disallowed special token 'hello'"):
        enc.encode(s, allowed_special="all", disallowed_special={"hello"})
    with pytest.raises(ValueError, match="disallowed special token 'hello'"):
        enc.encode(s, disallowed_special=["hello", EOT])
    # allowed_special as a list cannot be subtracted from a set (tiktoken too),
    # nor can an empty list, None or a string, even where no special token is
    for bad in ([EOT], [], (), None, ""):
        for text in (s, "plain"):
            with pytest.raises(TypeError):
                enc.encode(text, allowed_special=bad)
    for bad in ([EOT], (EOT,), EOT, {EOT: 1}.keys()):   # tiktoken's core takes only a set
        with pytest.raises(TypeError):
            enc.encode("x" + EOT, allowed_special=bad, disallowed_special=())
    # num_threads as ThreadPoolExecutor takes it: None, a float, a huge int
    for n in (None, 2.0, 2.5, 2**63):
        assert enc.encode_ordinary_batch(["a b", "c"], num_threads=n) == [[64, 275], [66]]
        assert enc.decode_batch([[64], [65]], num_threads=n) == ["a", "b"]
    for n in (0, -1, 0.0):
        with pytest.raises(ValueError, match="max_workers must be greater than 0"):
            enc.encode_batch(["a"], num_threads=n)
    assert enc.encode_single_token(EOT) == 50256
    assert enc.decode([50256]) == EOT


def test_surrogates_repaired_like_tiktoken(enc):
    repl = enc.encode("\ufffd")
    assert enc.encode("\ud800") == repl
    assert enc.encode_ordinary("a\udfffb") == enc.encode_ordinary("a\ufffdb")
    assert enc.encode("\ud83d\ude00") == enc.encode("\U0001f600")   # a pair joins
    assert enc.encode_to_numpy("x\ud800").tolist() == enc.encode("x\ufffd")
    assert enc.encode_ordinary_batch(["ok", "\ud800"]) == [enc.encode("ok"), repl]
    assert enc.encode_batch(["\ud800"], disallowed_special=()) == [repl]
    # an iterator is read once, and the repair reads the texts again
    assert enc.encode_ordinary_batch(t for t in ["ok", "\ud800"]) == [enc.encode("ok"), repl]
    assert enc.encode_ordinary_batch(map(str, ["a", "b\ud800"])) == [[64], [65, 4210]]


def test_decode_errors_modes(enc):
    half = [447]   # b'\xe2\x80', the first two bytes of a 3-byte character
    assert enc.decode_bytes(half) == b"\xe2\x80"
    assert enc.decode(half) == "\ufffd"
    assert enc.decode(half, errors="replace") == "\ufffd"
    assert enc.decode(half, errors="ignore") == ""
    assert enc.decode(half, errors="backslashreplace") == "\\xe2\\x80"
    assert enc.decode(half, errors="surrogateescape") == "\udce2\udc80"
    with pytest.raises(UnicodeDecodeError):
        enc.decode(half, errors="strict")
    with pytest.raises(LookupError):
        enc.decode(half, errors="no-such-handler")
    with pytest.raises(TypeError):
        enc.decode(half, errors=None)
    assert enc.decode_batch([half, [31373]], errors="ignore") == ["", "hello"]
    with pytest.raises(UnicodeDecodeError):
        enc.decode_with_offsets(half)


def test_decode_with_offsets_tiktoken_cases(enc):
    p = "hello world<|endoftext|> green cow"
    text, offsets = enc.decode_with_offsets(enc.encode(p, allowed_special="all"))
    assert text == p and offsets == [0, 5, 11, 24, 30]
    assert enc.decode_with_offsets([31373, 995]) == ("hello world", [0, 5])


def test_single_tokens_and_values(enc):
    assert enc.encode_single_token("hello") == 31373
    assert enc.encode_single_token(b" world") == 995
    with pytest.raises(KeyError) as e:
        enc.encode_single_token("hello world")
    assert e.value.args == (list(b"hello world"),)
    with pytest.raises(TypeError):
        enc.encode_single_token(5)
    assert enc.decode_single_token_bytes(31373) == b"hello"
    assert enc.decode_tokens_bytes([31373, 995]) == [b"hello", b" world"]
    values = enc.token_byte_values()
    assert len(values) == 50256 and values == sorted(values) and len(set(values)) == 50256
    assert b"hello" in values and EOT.encode() not in values
    assert all(enc.encode_single_token(v) < 50256 for v in values[:2000])


def test_numpy_inputs_and_outputs(enc):
    ids = enc.encode("hello world, again")
    for dt in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64):
        small = [11, 15, 64, 100, 126]
        assert enc.decode_bytes(np.array(small, dtype=dt)) == enc.decode_bytes(small)
    a = np.repeat(np.array(ids, dtype=np.int64), 2)
    assert not a[::2].flags.c_contiguous
    assert enc.decode(a[::2]) == enc.decode(ids)         # not contiguous: iterated
    assert enc.decode(np.array([], dtype=np.int32)) == ""
    import array
    assert enc.decode(array.array("l", ids)) == enc.decode(ids)
    arr = enc.encode_to_numpy("hello world")
    assert arr.flags.c_contiguous and arr.dtype == np.uint32 and arr.tolist() == [31373, 995]
    arr[0] = 1   # writable, owned by C memory that lives as long as the array
    assert enc.encode_to_numpy("").shape == (0,)


# ---- bad input: the right exception, never a crash ------------------------------


def test_bad_ids(enc):
    with pytest.raises(OverflowError):
        enc.decode([-1])
    with pytest.raises(OverflowError):
        enc.decode([2 ** 32])
    with pytest.raises(OverflowError):
        enc.decode([2 ** 80])
    with pytest.raises(OverflowError):
        enc.decode(np.array([-5], dtype=np.int64))
    with pytest.raises(OverflowError):
        enc.decode(np.array([2 ** 40], dtype=np.uint64))
    with pytest.raises(KeyError) as e:
        enc.decode([31373, 50257])
    assert e.value.args == ("Invalid token for decoding: 50257",)
    with pytest.raises(KeyError):
        enc.decode_bytes(np.array([70000], dtype=np.uint32))
    with pytest.raises(KeyError) as e:
        enc.decode_single_token_bytes(50257)
    assert e.value.args == ("50257",)
    with pytest.raises(OverflowError):
        enc.decode_single_token_bytes(-1)
    for bad in (["a"], [1.0], [None], "abc", 5, None, [[1]], np.zeros((2, 2), dtype=np.int32)):
        with pytest.raises(TypeError):
            enc.decode(bad)
    with pytest.raises(TypeError):
        enc.decode(np.array(31373))   # 0-d: not a sequence
    with pytest.raises(TypeError):
        enc.decode_single_token_bytes("1")
    assert enc.decode([True, np.int64(31373)]) == enc.decode([1, 31373])


def test_bad_text(enc):
    for bad in (b"hello", None, 5, ["a"]):
        with pytest.raises(TypeError):
            enc.encode_ordinary(bad)
        with pytest.raises(TypeError):
            enc.encode(bad, disallowed_special=())
    with pytest.raises(TypeError):
        enc.encode_ordinary_batch(["a", 5])
    with pytest.raises(TypeError):
        enc.encode_ordinary_batch(5)
    with pytest.raises(TypeError):
        enc._encode_bytes("str")
    for n in (0, -1):
        with pytest.raises(ValueError, match="max_workers must be greater than 0"):
            enc.encode_ordinary_batch(["a"], num_threads=n)
    assert enc.encode_ordinary_batch([]) == []
    assert enc.encode("") == [] and enc.decode([]) == ""


# ---- threads ------------------------------------------------------------------


def test_gil_released_during_encode(enc):
    """With a long switch interval the encoding thread would hold the GIL
    for the whole call unless the C code releases it: the main thread then
    gets to run only after the call returned."""
    text = "The quick brown fox jumps over the lazy dog. " * 200000
    n = len(enc.encode_ordinary(text))
    started, done, seen = threading.Event(), threading.Event(), []

    def work():
        started.set()
        seen.append(len(enc.encode_ordinary(text)))
        done.set()

    old = sys.getswitchinterval()
    sys.setswitchinterval(100)
    try:
        t = threading.Thread(target=work)
        t.start()
        started.wait()
        ran_during_call = not done.is_set()
        t.join()
    finally:
        sys.setswitchinterval(old)
    assert seen == [n]
    assert ran_during_call


def test_threads_share_an_encoding(enc, fixtures):
    texts = [d.decode() for n, d, _ in fixtures if fixture_mode(n) == "default"
             and not n.startswith("invalid_utf8")]
    want = [enc.encode_ordinary(t) for t in texts]
    errors = []

    def work():
        for _ in range(3):
            if [enc.encode_ordinary(t) for t in texts] != want:
                errors.append(1)

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors


def test_help_reads_as_documentation():
    """help(gpt2in): the package's overview names every public name, and
    every public class, method and property says what it does (no bare
    attribute dumps such as cached_property objects or __annotations__)."""
    import inspect
    import pydoc
    doc = pydoc.render_doc(gpt2in, renderer=pydoc.plaintext)
    assert "drop-in for tiktoken" in doc and "encode_to_numpy" in doc
    head = gpt2in.__doc__
    for name in gpt2in.__all__:
        if name != "__version__":
            assert name in head, name
    for bad in ("cached_property object", "__annotations__ ="):
        assert bad not in doc, bad
    for name in gpt2in.__all__:
        obj = getattr(gpt2in, name)
        if not callable(obj):
            continue
        assert obj.__doc__, name
        if inspect.isclass(obj):
            for mname, member in vars(obj).items():
                if mname.startswith("_") and mname not in ("__init__", "__call__", "__bool__"):
                    continue
                if callable(member) or isinstance(member, (property, classmethod, staticmethod)):
                    assert getattr(member, "__doc__", None), f"{name}.{mname}"


def test_big_outputs(enc, fixtures):
    """Outputs of several MB (huge-page buffers, the shrunk numpy buffer,
    long lists of shared int objects) equal the sum of their parts."""
    parts = [d.decode() for n, d, _ in fixtures if fixture_mode(n) == "default"
             and not n.startswith("invalid_utf8")]
    text = "\n\n".join(parts) * 12
    ids = enc.encode_ordinary(text)
    assert len(ids) * 8 > (4 << 20) and len(text) * 4 > (4 << 20)
    arr = enc.encode_to_numpy(text)
    assert arr.tolist() == ids
    assert enc.encode_ordinary_batch([text, text], num_threads=2) == [ids, ids]
    assert enc.decode(arr) == text
    assert ids[0] is enc.encode_ordinary(text[:100])[0]


# ---- tiktoken's exception wording (PyO3's argument errors) ----------------------


def test_errors_in_tiktokens_words(enc):
    cases = [
        (lambda: enc.decode(["a"]), TypeError, "argument 'tokens': 'str' object cannot be interpreted as an integer"),
        (lambda: enc.decode([1.0]), TypeError, "argument 'tokens': 'float' object cannot be interpreted as an integer"),
        (lambda: enc.decode("abc"), TypeError, "argument 'tokens': Can't extract `str` to `Vec`"),
        (lambda: enc.decode(5), TypeError, "argument 'tokens': 'int' object cannot be converted to 'Sequence'"),
        (lambda: enc.decode_bytes(None), TypeError,
         "argument 'tokens': 'NoneType' object cannot be converted to 'Sequence'"),
        (lambda: enc.decode([-1]), OverflowError, "out of range integral type conversion attempted"),
        (lambda: enc.decode([2 ** 32]), OverflowError, "out of range integral type conversion attempted"),
        (lambda: enc.decode([2 ** 80]), OverflowError, "Python int too large to convert to C long"),
        (lambda: enc.decode(np.array([2 ** 63], np.uint64)), OverflowError,
         "Python int too large to convert to C long"),
        (lambda: enc.decode_single_token_bytes("1"), TypeError,
         "argument 'token': 'str' object cannot be interpreted as an integer"),
        (lambda: enc.decode_single_token_bytes(-1), OverflowError, "out of range integral type conversion attempted"),
        (lambda: enc.encode_single_token(5), TypeError, "argument 'piece': 'int' object cannot be converted to 'PyBytes'"),
        (lambda: enc.encode_single_token(bytearray(b"hello")), TypeError,
         "argument 'piece': 'bytearray' object cannot be converted to 'PyBytes'"),
        (lambda: enc.decode([31373], errors=None), TypeError, "decode() argument 'errors' must be str, not None"),
        (lambda: enc.is_special_token("x"), AssertionError, ""),
        (lambda: enc.encode_ordinary(b"x"), TypeError, "argument 'text': 'bytes' object cannot be converted to 'PyString'"),
        (lambda: enc.encode_ordinary_batch(["a", 5]), TypeError,
         "argument 'text': 'int' object cannot be converted to 'PyString'"),
        (lambda: enc.encode(b"x"), TypeError, "cannot use a string pattern on a bytes-like object"),
        (lambda: enc.encode(None, disallowed_special=()), TypeError,
         "argument 'text': 'NoneType' object cannot be converted to 'PyString'"),
        (lambda: enc._encode_bytes("x"), TypeError, "argument 'bytes': 'str' object cannot be converted to 'PyBytes'"),
    ]
    for fn, exc, msg in cases:
        with pytest.raises(exc) as e:
            fn()
        assert str(e.value) == msg
    # tiktoken converts the ids first, then decodes with the error handler:
    # an unknown handler only fails when it is needed
    with pytest.raises(TypeError, match="argument 'tokens'"):
        enc.decode(["a"], errors=5)
    with pytest.raises(KeyError):
        enc.decode([50257], errors=5)
    assert enc.decode([31373], errors="no-such-handler") == "hello"
    with pytest.raises(LookupError):
        enc.decode([31373, 126], errors="no-such-handler")


# ---- decode_batch: threads, and errors in order ------------------------------------


def max_threads_during(fn):
    """Runs fn in a thread while this one counts the process's threads
    (/proc/self/task): more than 2 means fn started threads of its own."""
    import os
    if not os.path.isdir("/proc/self/task"):
        pytest.skip("no /proc/self/task")
    done, seen, out = threading.Event(), [0], []
    t = threading.Thread(target=lambda: (out.append(fn()), done.set()))
    t.start()
    while not done.is_set():
        seen[0] = max(seen[0], len(os.listdir("/proc/self/task")))
    t.join()
    return seen[0], out[0]


def test_decode_batch_on_threads_without_the_gil(enc):
    ids = np.array(enc.encode("The quick brown fox jumps over the lazy dog. " * 1000), np.uint32)
    batch = [ids] * 300
    want = enc.decode(ids)
    for name, fn, check in (("decode_batch", lambda: enc.decode_batch(batch, num_threads=4), want),
                            ("decode_bytes_batch", lambda: enc.decode_bytes_batch(batch, num_threads=4),
                             want.encode())):
        threads, got = max_threads_during(fn)
        assert got == [check] * len(batch), name
        assert threads > 2, name   # this one, fn's, and at least one worker


def test_decode_batch_semantics(enc):
    texts = ["hello world", "", "caf\u00e9 \U0001F600", "x" * 5000]
    batch = [enc.encode(t) for t in texts]
    for nt in (1, 2, 8):
        assert enc.decode_batch(batch, num_threads=nt) == texts
        assert enc.decode_bytes_batch(batch, num_threads=nt) == [t.encode() for t in texts]
    assert enc.decode_batch([]) == [] and enc.decode_batch([], errors=5) == []
    # ASCII text is decoded straight into its str: the same str in every way
    ascii_text = "plain ASCII text, <|endoftext|> included\n" * 50
    ids = enc.encode(ascii_text, allowed_special="all")
    for got in (enc.decode(ids), enc.decode(ids, errors="strict"), enc.decode_batch([ids])[0]):
        assert got == ascii_text and got.isascii() and hash(got) == hash(ascii_text)
        assert got.encode() == ascii_text.encode() and got + "x" == ascii_text + "x"
    with pytest.raises(TypeError, match="decode\\(\\) argument 'errors' must be str, not int"):
        enc.decode(ids, errors=5)
    with pytest.raises(TypeError, match="must be str, not int"):
        enc.decode_batch([ids], errors=5)
    assert enc.decode_batch(iter(batch)) == texts
    assert enc.decode_batch([np.array(b, np.int64) for b in batch]) == texts
    half = [enc.encode("\U0001F600")[:1]]
    assert enc.decode_batch(half) == [enc.decode(half[0])]
    assert enc.decode_batch(half, errors="ignore") == [""]
    # the first failing list's error, as tiktoken's thread pool reports it
    with pytest.raises(UnicodeDecodeError):
        enc.decode_batch([batch[0], half[0], [50257], ["a"]], errors="strict")
    with pytest.raises(KeyError, match="Invalid token for decoding: 50257"):
        enc.decode_batch([batch[0], [50257], ["a"], half[0]], errors="strict")
    with pytest.raises(TypeError, match="argument 'tokens'"):
        enc.decode_batch([batch[0], ["a"], [50257]])
    with pytest.raises(TypeError, match="decode\\(\\) argument 'errors' must be str"):
        enc.decode_batch(batch, errors=None)
    with pytest.raises(ValueError, match="max_workers must be greater than 0"):
        enc.decode_batch(batch, num_threads=0)
    with pytest.raises(TypeError, match="'int' object is not iterable"):
        enc.decode_batch(5)


# ---- inputs: anything with the buffer protocol or __array__ ---------------------


def test_array_like_inputs(enc):
    ids = enc.encode("hello world, again")
    want = enc.decode(ids)
    import array
    for obj in (memoryview(np.array(ids, np.uint32)), array.array("H", ids), bytearray([11, 15]),
                np.array(ids, np.int32)[::-1][::-1]):
        assert enc.decode_bytes(obj) == enc.decode_bytes(list(obj))

    class ArrayOnly:   # not a sequence: only __array__ (as pandas, jax, ...)
        def __init__(self, a):
            self.a = a

        def __array__(self, dtype=None):
            return self.a

    assert enc.decode(ArrayOnly(np.array(ids, np.int64))) == want
    with pytest.raises(OverflowError):
        enc.decode(ArrayOnly(np.array([-1], np.int64)))
    torch = pytest.importorskip("torch")
    t = torch.tensor(ids)
    assert enc.decode(t) == want and enc.decode_bytes(t) == want.encode()
    assert enc.decode_batch([t, t[:2]]) == [want, enc.decode(ids[:2])]


def test_from_files_takes_paths_not_descriptors(tmp_path):
    import os
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        with pytest.raises(TypeError):
            gpt2in.Encoding.from_files(fd, fd)
        os.fstat(fd)   # still open
    finally:
        os.close(fd)


def test_big_lists_hold_their_references(enc, fixtures):
    """Lists of many tokens take their references per distinct id (counted
    without the GIL): each int's count rises by its number of uses and
    falls back when the list goes."""
    text = "".join(d.decode() for n, d, _ in fixtures if fixture_mode(n) == "default"
                   and not n.startswith("invalid_utf8")) * 4
    x = enc.encode_ordinary(" the")[0]     # 262: the int object the cache holds
    before = sys.getrefcount(x)
    lists = [enc.encode_ordinary(text), enc._encode_bytes(text.encode()),
             *enc.encode_ordinary_batch([text, text[:1000]], num_threads=2)]
    assert len(lists[0]) > 40000
    uses = sum(lst.count(x) for lst in lists)
    assert uses > 100 and all(x is i for lst in lists for i in lst if i == x)
    if _gpt2in.PINNED_INTS:   # taken uncounted (see test_pinned_ints)
        assert sys.getrefcount(x) > 2**60
        del lists
        assert sys.getrefcount(x) > 2**60
        return
    assert sys.getrefcount(x) == before + uses
    del lists
    assert sys.getrefcount(x) == before


@pytest.mark.skipif(not _gpt2in.PINNED_INTS, reason="Python 3.12+ or a debug or free-threaded build: counted ints")
def test_pinned_ints(fixtures):
    """Before Python 3.12 the ints of ids are pinned: one object per id for
    every vocabulary, whose reference count lists neither raise nor can
    bring to zero (freeing many lists of them leaves them alive)."""
    text = "".join(d.decode() for n, d, _ in fixtures if fixture_mode(n) == "default"
                   and not n.startswith("invalid_utf8")) * 4
    a, b = gpt2in.get_encoding("gpt2"), gpt2in.Encoding("gpt2", _core=_gpt2in.gpt2())
    la, lb = a.encode_ordinary(text), b.encode_ordinary(text)
    assert la == lb and len(la) > 40000
    assert all(x is y for x, y in zip(la, lb))
    x = la[la.index(262)]
    assert sys.getrefcount(x) > 2**60
    for _ in range(50):
        del la
        la = a.encode_ordinary(text)
    del b, lb
    assert sys.getrefcount(x) > 2**60 and x == 262 and x + 1 == 263
