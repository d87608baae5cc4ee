"""GPT-2's input stage (tokenizer and embeddings) in C, for Python.

The tokenizer is a drop-in for tiktoken's "gpt2" encoding: the same ids,
methods, argument names, defaults and exceptions::

    import gpt2in
    enc = gpt2in.get_encoding("gpt2")          # or "r50k_base", the same vocabulary
    enc.encode("hello world")                  # [31373, 995]
    enc.decode([31373, 995])                   # 'hello world'
    enc.encode("<|endoftext|>", allowed_special="all")   # [50256]
    enc.encode_to_numpy(text)                  # numpy.ndarray of uint32, no list in between
    enc.encode_ordinary_batch(texts, num_threads=8)
    enc.decode_batch(lists_of_ids, num_threads=8)

The embedding layer on NumPy arrays (PyTorch tensors shared without a copy)::

    emb = gpt2in.Embedding.open("model.safetensors")   # maps wte (and wpe)
    x = emb.forward(ids)                                # [T, C] or [B, T, C] float32
    rows, grad = emb.backward_sparse(ids, dout)         # then emb.sgd_step, or
    gpt2in.SparseAdam(emb, lr=1e-3).step(rows, grad)    # torch's SparseAdam, bit for bit
    print(gpt2in.verify(x, reference))                  # `gpt2in verify`'s report

Contents:
    get_encoding(name)       an Encoding: "gpt2" or "r50k_base"
    list_encoding_names()    the names get_encoding takes
    Encoding                 tiktoken's Encoding (also Encoding.from_files for
                             vocabularies in GPT-2's encoder.json/vocab.bpe format)
    Embedding                token and position tables of a .safetensors file
    SparseAdam               torch.optim.SparseAdam on an Embedding
    verify, VerifyReport     compare arrays with a reference
    (Embedding, SparseAdam, verify and VerifyReport need NumPy.)

Threads: the C code runs with the GIL released (encoding texts over 256
bytes; shorter ones take microseconds), so other Python threads run
meanwhile; the batch methods encode and decode on threads of their own.
Strings with lone surrogates are first repaired as tiktoken does (each
becomes U+FFFD; a surrogate pair becomes its character).

Inputs: token ids may be lists, tuples, any iterable of ints, NumPy arrays,
anything with the buffer protocol (array.array, memoryview) or with
__array__ (a PyTorch tensor); output arrays (``out=``) may be NumPy arrays,
writable buffers or PyTorch CPU tensors. Errors are tiktoken's, word for
word (TypeError naming the argument, OverflowError for an id below 0 or
above 2**32-1, KeyError for an id outside the vocabulary, ValueError for a
disallowed special token), and the library's messages for the embeddings.

Differences from tiktoken: the encodings are GPT-2's only (``Encoding``
cannot be built from arbitrary ranks); decode and decode_bytes also take
iterators (tiktoken wants a sequence); ``encode_to_numpy`` returns a
writable array; ``_encode_bytes`` turns every byte that is not valid UTF-8
into its own byte token (bytes never lost), where tiktoken merges the
invalid tail into the last piece.
"""
from __future__ import annotations

import functools
import math
import os
import re
from typing import AbstractSet, Collection, Literal, Sequence

from . import _gpt2in

__all__ = ["Encoding", "Embedding", "SparseAdam", "VerifyReport", "verify", "get_encoding", "list_encoding_names", "__version__"]
__version__ = "0.1.0"

_ALLOW = _gpt2in.SPECIAL_ALLOW
_TEXT = _gpt2in.SPECIAL_TEXT


def _fix_surrogates(text: str) -> str:
    # tiktoken's repair for str that cannot be UTF-8 (lone surrogates).
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


@functools.lru_cache(maxsize=128)
def _special_token_regex(tokens: frozenset[str]) -> "re.Pattern[str]":
    return re.compile("|".join(re.escape(t) for t in tokens))


def _raise_disallowed_special_token(token: str):
    raise ValueError(
        f"Encountered text corresponding to disallowed special token {token!r}.\n"
        "If you want this text to be encoded as a special token, "
        f"pass it to `allowed_special`, e.g. `allowed_special={{{token!r}, ...}}`.\n"
        f"If you want this text to be encoded as normal text, disable the check for this token "
        f"by passing `disallowed_special=(enc.special_tokens_set - {{{token!r}}})`.\n"
        "To disable this check for all special tokens, pass `disallowed_special=()`.\n"
    )


def _empty_set(x) -> bool:
    # Only an empty set may skip tiktoken's `special_tokens_set - allowed_special`,
    # which raises TypeError for None, a list or a string.
    return isinstance(x, (set, frozenset)) and not x


def _workers(num_threads) -> int:
    """num_threads as tiktoken's ThreadPoolExecutor takes it (None: its
    default; any number above 0, 2.5 or 2**63 too), as the library's count
    (it runs 64 threads at most)."""
    if num_threads is None:
        num_threads = min(32, (os.cpu_count() or 1) + 4)
    if num_threads <= 0:
        raise ValueError("max_workers must be greater than 0")
    return int(min(math.ceil(num_threads), 64))


class Encoding:
    """A byte-level BPE encoding with tiktoken's interface (GPT-2's vocabulary).

    Get one with :func:`get_encoding` or :meth:`Encoding.from_files`. An
    Encoding is immutable and safe to use from several threads at once.

    Attributes:
        name: the encoding's name ("gpt2", "r50k_base", or from_files' name).
        max_token_value: the largest token id (50256 for GPT-2).
    """

    def __init__(self, name: str, *, _core: _gpt2in.CoreBPE) -> None:
        """Private: use get_encoding() or Encoding.from_files()."""
        self.name = name
        self._core = _core
        self.max_token_value = _core.n_vocab - 1
        eot = _core.eot
        self._special_tokens = {} if eot is None else {"<|endoftext|>": eot}
        self._special_set = set(self._special_tokens)
        self._flags_cache: dict = {}

    @classmethod
    def from_files(cls, encoder_json: str, vocab_bpe: str, *, name: str | None = None) -> Encoding:
        """Loads a vocabulary in GPT-2's format: an encoder.json (token -> id)
        and a vocab.bpe (merges, ranks are the ids as in tiktoken).

        Raises OSError (FileNotFoundError, ...) when a file cannot be read,
        ValueError naming the file, line and column when one is malformed,
        and MemoryError (naming the file) when memory runs out.
        ``name`` defaults to the encoder file's path.
        """
        # os.fspath: an int would be taken as a file descriptor, and closed
        encoder_json, vocab_bpe = os.fspath(encoder_json), os.fspath(vocab_bpe)
        with open(encoder_json, "rb") as f:
            enc = f.read()
        with open(vocab_bpe, "rb") as f:
            voc = f.read()
        core = _gpt2in.load_mem(enc, voc, str(encoder_json), str(vocab_bpe))
        return cls(name if name is not None else str(encoder_json), _core=core)

    def __repr__(self) -> str:
        return f"<Encoding {self.name!r}>"

    def __reduce__(self):
        if self.name in _CONSTRUCTORS and self._core is _gpt2_core():
            return (get_encoding, (self.name,))
        raise TypeError("only the built-in encodings can be pickled")

    # ---- attributes -------------------------------------------------------

    @property
    def n_vocab(self) -> int:
        """Number of token ids: max_token_value + 1 (50257 for GPT-2)."""
        return self.max_token_value + 1

    @property
    def eot_token(self) -> int:
        """The id of <|endoftext|> (50256). KeyError when the vocabulary has none."""
        return self._special_tokens["<|endoftext|>"]

    @property
    def special_tokens_set(self) -> set[str]:
        """The special tokens' strings: {'<|endoftext|>'} (the same set on
        every call, as tiktoken's)."""
        return self._special_set

    def is_special_token(self, token: int) -> bool:
        """Whether token is the id of a special token (<|endoftext|>).
        AssertionError when token is not an int, as in tiktoken."""
        assert isinstance(token, int)
        return token in self._special_tokens.values()

    # ---- encoding ---------------------------------------------------------

    def _flags(self, text: str, allowed_special, disallowed_special) -> int:
        """tiktoken's special-token policy: raises ValueError for a disallowed
        special token in text, returns the library flag for the rest."""
        if disallowed_special == "all" and _empty_set(allowed_special) and type(text) is str:
            # the defaults, in short: every special token is disallowed
            for token in self._special_tokens:
                if token in text:
                    _raise_disallowed_special_token(token)
            return _TEXT
        if allowed_special == "all":
            allowed_special = self.special_tokens_set
        if disallowed_special == "all":
            disallowed_special = self.special_tokens_set - allowed_special
        if not isinstance(allowed_special, (set, frozenset)):
            # tiktoken's core takes a set and nothing else
            raise TypeError(f"argument 'allowed_special': '{type(allowed_special).__name__}' object "
                            "cannot be converted to 'PySet'")
        if disallowed_special:
            if not isinstance(disallowed_special, frozenset):
                disallowed_special = frozenset(disallowed_special)
            match = _special_token_regex(disallowed_special).search(text)
            if match:
                _raise_disallowed_special_token(match.group())
        return _ALLOW if "<|endoftext|>" in allowed_special and self._special_tokens else _TEXT

    def encode_ordinary(self, text: str) -> list[int]:
        """Encodes a string into tokens, ignoring special tokens
        (<|endoftext|> is encoded as ordinary text).

        >>> enc.encode_ordinary("hello world")
        [31373, 995]
        """
        try:
            return self._core.encode(text, _TEXT)
        except UnicodeEncodeError:
            return self._core.encode(_fix_surrogates(text), _TEXT)

    def encode(
        self,
        text: str,
        *,
        allowed_special: Literal["all"] | AbstractSet[str] = set(),  # noqa: B006
        disallowed_special: Literal["all"] | Collection[str] = "all",
    ) -> list[int]:
        """Encodes a string into tokens.

        Special tokens are artificial tokens used to unlock capabilities from
        a model, such as fill-in-the-middle. So we want to be careful about
        accidentally encoding special tokens, since they can trick a model
        into doing something we don't want it to do.

        Hence, by default, encode will raise an error if it encounters text
        that corresponds to a special token. This can be controlled on a
        per-token level using the `allowed_special` and `disallowed_special`
        parameters. In particular:
        - Setting `disallowed_special` to () will prevent this function from
          raising errors and cause all text corresponding to special tokens
          to be encoded as natural text.
        - Setting `allowed_special` to "all" will cause this function to treat
          all text corresponding to special tokens to be encoded as special
          tokens.

        >>> enc.encode("hello world")
        [31373, 995]
        >>> enc.encode("<|endoftext|>", allowed_special={"<|endoftext|>"})
        [50256]
        >>> enc.encode("<|endoftext|>", allowed_special="all")
        [50256]
        >>> enc.encode("<|endoftext|>")
        # Raises ValueError
        >>> enc.encode("<|endoftext|>", disallowed_special=())
        [27, 91, 437, 1659, 5239, 91, 29]
        """
        if disallowed_special == "all" and _empty_set(allowed_special) and type(text) is str:
            # the defaults, in short (the common call)
            if "<|endoftext|>" in text and self._special_tokens:
                _raise_disallowed_special_token("<|endoftext|>")
            flags = _TEXT
        else:
            flags = self._flags(text, allowed_special, disallowed_special)
        try:
            return self._core.encode(text, flags)
        except UnicodeEncodeError:
            return self._core.encode(_fix_surrogates(text), flags)

    def encode_to_numpy(
        self,
        text: str,
        *,
        allowed_special: Literal["all"] | AbstractSet[str] = set(),  # noqa: B006
        disallowed_special: Literal["all"] | Collection[str] = "all",
    ):
        """Encodes a string into tokens, returned as a 1-D numpy array of
        uint32 that shares the C library's output buffer (no Python list in
        between). Same special-token policy as encode()."""
        import numpy as np

        flags = self._flags(text, allowed_special, disallowed_special)
        try:
            buf = self._core.encode_buffer(text, flags)
        except UnicodeEncodeError:
            buf = self._core.encode_buffer(_fix_surrogates(text), flags)
        return np.frombuffer(buf, dtype=np.uint32)

    def _fix_batch(self, text: list[str]) -> list[str]:
        out = []
        for t in text:
            try:
                t.encode("utf-8")
            except UnicodeEncodeError:
                t = _fix_surrogates(t)
            except AttributeError:
                pass  # not a str: the C side raises TypeError
            out.append(t)
        return out

    def encode_ordinary_batch(self, text: list[str], *, num_threads: int = 8) -> list[list[int]]:
        """Encodes a list of strings into tokens, in parallel, ignoring
        special tokens. Uses up to num_threads threads (fewer for small
        batches), the GIL released.

        >>> enc.encode_ordinary_batch(["hello world", "goodbye world"])
        [[31373, 995], [11274, 16390, 995]]
        """
        num_threads = _workers(num_threads)
        if not isinstance(text, (list, tuple)):
            text = list(text)   # an iterator is read once: the retry below needs it again
        try:
            return self._core.encode_batch(text, _TEXT, num_threads)
        except UnicodeEncodeError:
            return self._core.encode_batch(self._fix_batch(text), _TEXT, num_threads)

    def encode_batch(
        self,
        text: list[str],
        *,
        num_threads: int = 8,
        allowed_special: Literal["all"] | AbstractSet[str] = set(),  # noqa: B006
        disallowed_special: Literal["all"] | Collection[str] = "all",
    ) -> list[list[int]]:
        """Encodes a list of strings into tokens, in parallel, with encode()'s
        special-token policy (checked on every string first).

        >>> enc.encode_batch(["hello world", "goodbye world"])
        [[31373, 995], [11274, 16390, 995]]
        """
        num_threads = _workers(num_threads)
        if allowed_special == "all":
            allowed_special = self.special_tokens_set
        if disallowed_special == "all":
            disallowed_special = self.special_tokens_set - allowed_special
        if not isinstance(disallowed_special, frozenset):
            disallowed_special = frozenset(disallowed_special)
        text = list(text)
        flags = _TEXT
        for t in text:
            flags = self._flags(t, allowed_special, disallowed_special)
        try:
            return self._core.encode_batch(text, flags, num_threads)
        except UnicodeEncodeError:
            return self._core.encode_batch(self._fix_batch(text), flags, num_threads)

    @functools.cached_property
    def _token_ids(self) -> dict[bytes, int]:
        return {b: i for i, b in enumerate(self._core.all_token_bytes())}

    def encode_single_token(self, text_or_bytes: str | bytes) -> int:
        """Encodes text corresponding to a single token to its token value.

        NOTE: this will encode all special tokens. Raises KeyError if the
        token is not in the vocabulary.

        >>> enc.encode_single_token("hello")
        31373
        """
        if isinstance(text_or_bytes, str):
            text_or_bytes = text_or_bytes.encode("utf-8")
        if not isinstance(text_or_bytes, bytes):
            # tiktoken takes bytes only here (PyO3's &[u8]): its words
            raise TypeError(f"argument 'piece': '{type(text_or_bytes).__name__}' object cannot be "
                            "converted to 'PyBytes'")
        try:
            return self._token_ids[text_or_bytes]
        except KeyError:
            raise KeyError(list(text_or_bytes)) from None

    def _encode_bytes(self, text: bytes) -> list[int]:
        """Encodes any bytes (e.g. invalid UTF-8): each byte that does not
        start valid UTF-8 becomes its own byte token, and decode_bytes() gives
        the input back exactly. Equal to encode_ordinary on valid UTF-8."""
        return self._core.encode_bytes(text, _TEXT)

    # ---- decoding ---------------------------------------------------------

    def decode_bytes(self, tokens: Sequence[int]) -> bytes:
        """Decodes a list of tokens into bytes.

        Any sequence (or iterable) of ints works, including numpy integer
        arrays (read straight from their buffer). A negative or too big int
        raises OverflowError, an id outside the vocabulary KeyError, a
        non-int TypeError.

        >>> enc.decode_bytes([31373, 995])
        b'hello world'
        """
        return self._core.decode_bytes(tokens)

    def decode(self, tokens: Sequence[int], errors: str = "replace") -> str:
        """Decodes a list of tokens into a string.

        WARNING: the default behaviour of this function is lossy, since
        decoded bytes are not guaranteed to be valid UTF-8. You can control
        this behaviour using the `errors` parameter, for instance, setting
        `errors=strict` (any codec error handler of bytes.decode works).

        >>> enc.decode([31373, 995])
        'hello world'
        """
        return self._core.decode(tokens, errors)

    def decode_single_token_bytes(self, token: int) -> bytes:
        """Decodes a token into bytes. KeyError(str(token)) for an id
        outside the vocabulary.

        NOTE: this will decode all special tokens.

        >>> enc.decode_single_token_bytes(31373)
        b'hello'
        """
        return self._core.token_bytes(token)

    def decode_tokens_bytes(self, tokens: Sequence[int]) -> list[bytes]:
        """Decodes a list of tokens into a list of bytes.

        Useful for visualising tokenisation.
        >>> enc.decode_tokens_bytes([31373, 995])
        [b'hello', b' world']
        """
        tb = self._core.token_bytes
        return [tb(token) for token in tokens]

    def decode_with_offsets(self, tokens: Sequence[int]) -> tuple[str, list[int]]:
        """Decodes a list of tokens into a string and a list of offsets.

        Each offset is the index into text corresponding to the start of each
        token. If UTF-8 character boundaries do not line up with token
        boundaries, the offset is the index of the first character that
        contains bytes from the token. The bytes must be valid UTF-8
        (UnicodeDecodeError otherwise).

        >>> enc.decode_with_offsets([31373, 995])
        ('hello world', [0, 5])
        """
        token_bytes = self.decode_tokens_bytes(tokens)
        text_len = 0
        offsets = []
        for token in token_bytes:
            offsets.append(max(0, text_len - (0x80 <= token[0] < 0xC0)))
            text_len += sum(1 for c in token if not 0x80 <= c < 0xC0)
        text = b"".join(token_bytes).decode("utf-8", errors="strict")
        return text, offsets

    def decode_batch(
        self, batch: Sequence[Sequence[int]], *, errors: str = "replace", num_threads: int = 8
    ) -> list[str]:
        """Decodes a batch (list of lists of tokens) into a list of strings.

        The lists are decoded on up to num_threads threads with the GIL
        released (fewer for small batches); the first failing list raises
        what decode() would.

        >>> enc.decode_batch([[31373, 995], [11274, 16390, 995]])
        ['hello world', 'goodbye world']
        """
        num_threads = _workers(num_threads)
        return self._core.decode_batch(batch, errors, num_threads, True)

    def decode_bytes_batch(self, batch: Sequence[Sequence[int]], *, num_threads: int = 8) -> list[bytes]:
        """Decodes a batch (list of lists of tokens) into a list of bytes,
        on up to num_threads threads as decode_batch().

        >>> enc.decode_bytes_batch([[31373, 995]])
        [b'hello world']
        """
        num_threads = _workers(num_threads)
        return self._core.decode_batch(batch, None, num_threads, False)

    # ---- miscellaneous ----------------------------------------------------

    def token_byte_values(self) -> list[bytes]:
        """Returns the list of all token byte values (special tokens left
        out), sorted by bytes."""
        special = set(self._special_tokens.values())
        return sorted(b for i, b in enumerate(self._core.all_token_bytes()) if i not in special)


@functools.lru_cache(maxsize=1)
def _gpt2_core() -> _gpt2in.CoreBPE:
    return _gpt2in.gpt2()


_CONSTRUCTORS = ("gpt2", "r50k_base")
_ENCODINGS = {}   # name -> Encoding


def get_encoding(encoding_name: str) -> Encoding:
    """Returns the Encoding called encoding_name: "gpt2" or "r50k_base"
    (GPT-2's vocabulary, compiled into the library: nothing is read from
    disk). The same object is returned on every call. ValueError for any
    other name."""
    if not isinstance(encoding_name, str):
        raise ValueError(f"Expected a string in get_encoding, got {type(encoding_name)}")
    enc = _ENCODINGS.get(encoding_name)
    if enc is None:
        if encoding_name not in _CONSTRUCTORS:
            raise ValueError(
                f"Unknown encoding {encoding_name}.\n"
                f"gpt2in provides: {', '.join(_CONSTRUCTORS)}"
            )
        enc = _ENCODINGS.setdefault(encoding_name, Encoding(encoding_name, _core=_gpt2_core()))
    return enc


def list_encoding_names() -> list[str]:
    """The names get_encoding() accepts: ["gpt2", "r50k_base"]."""
    return list(_CONSTRUCTORS)


try:
    from ._embedding import Embedding, SparseAdam, VerifyReport, verify
except ImportError:   # numpy missing: the tokenizer works without it
    for _name in ("Embedding", "SparseAdam", "VerifyReport", "verify"):
        __all__.remove(_name)
