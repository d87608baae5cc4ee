"""gpt2in.Embedding: GPT-2's token and position embeddings on NumPy arrays
(libgpt2in's embed.h). Arrays are C-contiguous, so torch.from_numpy()
shares their memory."""
from __future__ import annotations

import operator
import os

import numpy as np

from . import _gpt2in

_U32_MAX = 0xFFFFFFFF


def _ids(ids, what: str = "ids", V: int | None = None) -> np.ndarray:
    """Any integer array-like -> C-contiguous uint32 of the same shape.
    TypeError for non-integers, ValueError for ids below 0 or above 2^32-1
    (ids past the table are the library's ValueError)."""
    a = np.asarray(ids)
    if a.size == 0 and a.dtype.kind == "f":
        a = a.astype(np.uint32)   # [] reads as float64
    if a.dtype == np.bool_ or a.dtype.kind not in "iu":
        raise TypeError(f"{what} must be integers, not {a.dtype}")
    if a.size:
        bad = np.flatnonzero((a < 0) | (a > _U32_MAX)) if a.dtype.kind == "i" or a.dtype.itemsize > 4 else ()
        if len(bad):
            t = int(bad[0])
            v = int(a.reshape(-1)[t])
            if V is None:
                raise ValueError(f"{what}[{t}]: id {v} is outside 0..{_U32_MAX}")
            # the library's wording for an id past the table
            raise ValueError(f"token id {v} at index {t} is out of range (vocabulary size {V})")
    # ascontiguousarray makes a 0-d id 1-d; the caller checks the shape it was given
    return np.ascontiguousarray(a, dtype=np.uint32).reshape(a.shape)


def _floats(x, shape: tuple, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype != np.float32:
        raise TypeError(f"{what} must be float32, not {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"{what} has shape {list(a.shape)}, expected {list(shape)}")
    return np.ascontiguousarray(a)


def _out(x, shape: tuple, what: str) -> np.ndarray:
    """An array the library writes into: float32, that shape, C-contiguous,
    writable (no copy is made, so anything else is an error). Besides NumPy
    arrays: any writable buffer, and arrays of other libraries whose
    __array__ is a view of their memory (a PyTorch CPU tensor)."""
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(memoryview(x))
        except TypeError:
            x = _shared_view(x, what)
    if x.dtype != np.float32:
        raise TypeError(f"{what} must be float32, not {x.dtype}")
    if x.shape != shape:
        raise ValueError(f"{what} has shape {list(x.shape)}, expected {list(shape)}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{what} must be C-contiguous")
    if not x.flags.writeable:
        raise ValueError(f"{what} is read-only")
    return x


def _shared_view(x, what: str) -> np.ndarray:
    """x.__array__() when it shares x's memory; TypeError otherwise (a copy
    would take the results away from the caller)."""
    fn = getattr(x, "__array__", None)
    if fn is None:
        raise TypeError(f"{what} must be a numpy array, a buffer or a CPU tensor, not {type(x).__name__}")
    try:
        a, again = fn(), fn()
    except Exception as e:   # e.g. torch: a tensor that requires grad, or on a GPU
        raise TypeError(f"{what}: {type(x).__name__} gives no array to write into ({e})") from None
    # A view of x's memory is the same memory each time (or the very same
    # array, kept by x); a copy (even one reshaped or sliced, so not owning
    # its data) is new memory each time.
    if (not isinstance(a, np.ndarray) or not isinstance(again, np.ndarray)
            or (a is not again and (a.flags.owndata or not np.may_share_memory(a, again)))):
        raise TypeError(f"{what}: {type(x).__name__}.__array__() is a copy; pass an array that can be "
                        "written in place")
    return a


def _apart(x: np.ndarray, *written) -> np.ndarray:
    """x, or a copy of it when it may share memory with an array the call
    writes: ids are checked before the call and must not change under it
    (an id rewritten after its check would index past the table)."""
    if any(w is not None and np.may_share_memory(x, w) for w in written):
        return x.copy()
    return x


def _lr(lr) -> float:
    """A learning rate as `gpt2in step --lr` takes it: finite and >= 0."""
    lr = float(lr)
    if not (0.0 <= lr < float("inf")):
        raise ValueError(f"Invalid learning rate: {lr}")
    return lr


class Embedding:
    """GPT-2's input embeddings from a .safetensors file, mapped read-only.

    ``out = emb.forward(ids)`` is ``wte[ids] + wpe[pos0 + t]`` (positions
    only when the file has a position table and ``positions`` is not False),
    in float32 whatever the table's dtype (F32, F16 or BF16). Training steps
    act on a float32 copy of the token table made at the first step;
    ``save`` writes it back in the table's dtype.

    Attributes:
        V, C: rows and columns of the token table (50257, 768 for GPT-2).
        dtype: the token table's dtype in the file ("F32", "F16", "BF16").
        max_positions: rows of the position table (1024), 0 without one.
        path: the file.
    """

    def __init__(self, *, _core) -> None:
        """Private: use Embedding.open()."""
        self._core = _core
        info = _core.info
        self.V: int = info["V"]
        self.C: int = info["C"]
        self.dtype: str = info["dtype"]
        self.max_positions: int = info["maxT"]
        self.path: str = info["path"]
        self._wte_f32 = None
        self._adam_step = None

    @classmethod
    def open(cls, path, tensor: str | None = None, positions: str | bool | None = None) -> Embedding:
        """Maps a .safetensors file and finds its token table: ``tensor``
        names it (default "wte.weight" or "transformer.wte.weight"). The
        position table: None takes the file's ("wpe.weight" or
        "transformer.wpe.weight") if it has one, False uses none, a string
        names it. OSError when the file cannot be read, ValueError (the
        library's message) when it is malformed or a table has the wrong
        dtype or shape, KeyError for a named tensor that is not there,
        MemoryError when memory (or address space to map it) runs out."""
        path = os.fspath(path)
        if positions is True:
            positions = None
        with open(path, "rb"):
            pass   # OSError with the errno, as Python reports it
        return cls(_core=_gpt2in.embed_open(path, tensor, positions))

    def __repr__(self) -> str:
        pos = f", positions {self.max_positions}" if self.max_positions else ""
        return f"<Embedding {self.path!r} {self.dtype} [{self.V}, {self.C}]{pos}>"

    def _view(self, mv, rows: int, dtype: str) -> np.ndarray:
        if dtype == "F32":
            return np.frombuffer(mv, dtype=np.float32).reshape(rows, self.C)
        if dtype == "F16":
            return np.frombuffer(mv, dtype=np.float16).reshape(rows, self.C)
        return None

    @property
    def wte(self) -> np.ndarray:
        """The token table, [V, C], read-only (setflags(write=True) fails):
        for an F32 (or F16) file a view of the mapped file itself (no copy);
        a BF16 table as a float32 copy (NumPy has no bfloat16). After a
        training step: a view of the trained float32 copy, which only the
        optimiser writes (np.array(emb.wte) is a writable copy)."""
        # Every array here lies on a read-only buffer (the mapping, the
        # trained copy only the optimiser writes, or a copy the view alone
        # holds), so setflags(write=True) fails on it.
        trained = self._core.info["trained"]
        dtype = "F32" if trained else self.dtype
        a = self._view(self._core.wte_view(), self.V, dtype)
        if a is None:
            if self._wte_f32 is None:
                self._wte_f32 = self._view(self._core.f32_copy(0), self.V, "F32")
            a = self._wte_f32
        return a

    @property
    def wpe(self) -> np.ndarray | None:
        """The position table, [max_positions, C], read-only (as wte), or
        None when there is none."""
        mv = self._core.wpe_view()
        if mv is None:
            return None
        a = self._view(mv, self.max_positions, self._core.info["wpe_dtype"])
        if a is None:
            a = self._view(self._core.f32_copy(1), self.max_positions, "F32")
        return a

    def forward(self, ids, pos0: int = 0, out=None) -> np.ndarray:
        """The embeddings of ids: [T] -> [T, C], [B, T] -> [B, T, C] float32;
        positions restart at pos0 for every row of a batch. ids may be any
        integer array-like, a PyTorch tensor included (copied to uint32
        when it is not C-contiguous uint32). out, when given, must be a
        C-contiguous writable float32 array of that shape: NumPy, any
        writable buffer, or a PyTorch CPU tensor (written in place); it is
        returned. ValueError (the library's
        message) for an id >= V or a position past the position table."""
        a = _ids(ids, V=self.V)
        if a.ndim not in (1, 2):
            raise ValueError(f"ids must have shape [T] or [B, T], not {list(a.shape)}")
        pos0 = operator.index(pos0)
        if pos0 < 0 or pos0 >= 1 << 63:
            raise ValueError(f"pos0 must be >= 0 and below 2**63, not {pos0}")
        B, T = (1, a.shape[0]) if a.ndim == 1 else a.shape
        shape = a.shape + (self.C,)
        if out is None:
            res = out = np.empty(shape, np.float32)
        else:
            res, out = out, _out(out, shape, "out")
            a = _apart(a, out)
        self._core.forward(a, B, T, pos0, out)
        return res

    __call__ = forward

    def backward_sparse(self, ids, dout) -> tuple[np.ndarray, np.ndarray]:
        """The token table's gradient on the rows ids touch, for
        dout = dLoss/d(forward(ids)) ([T, C] or [B, T, C] float32):
        returns (unique_ids uint32 [n], grad_rows float32 [n, C]), ids in
        increasing order, each row summed in token order: bit for bit the
        rows of PyTorch's dense gradient."""
        a = _ids(ids, V=self.V)
        d = _floats(dout, a.shape + (self.C,), "dout")
        N = a.size
        rows = np.empty(N, np.uint32)
        grad = np.empty((N, self.C), np.float32)
        n = self._core.backward_sparse(a, N, d, rows, grad)
        return rows[:n], grad[:n]

    def backward_dense(self, ids, dout, dwte) -> None:
        """dwte[ids[t]] += dout[t] in token order, into the caller's
        float32 [V, C] array (C-contiguous, writable; NumPy, a buffer or a
        PyTorch CPU tensor), e.g. zeros or a tied output head's gradient."""
        a = _ids(ids, V=self.V)
        d = _floats(dout, a.shape + (self.C,), "dout")
        w = _out(dwte, (self.V, self.C), "dwte")
        # both are contiguous, so overlapping bounds are shared memory
        if np.may_share_memory(d, w):
            raise ValueError("dout and dwte share memory: the sum would read rows it has already "
                             "changed; pass a copy of dout")
        self._core.backward_dense(_apart(a, w), a.size, d, w)

    def sgd_step(self, rows, grad, lr: float) -> None:
        """Plain SGD on the given rows: wte[rows[i]] -= lr * grad[i] in one
        rounding, as torch.optim.SGD (no momentum or decay). rows and grad
        as backward_sparse returns them. The first step makes the float32
        copy of the table that later forward calls and wte use."""
        self._trainable()
        r = _ids(rows, "rows")
        if r.ndim != 1:
            raise ValueError(f"rows must have shape [n], not {list(r.shape)}")
        g = _floats(grad, (r.size, self.C), "grad")
        lr = _lr(lr)
        table = np.asarray(self._core.wte_view())
        self._core.sgd(_apart(r, table), r.size, _apart(g, table), lr)
        self._wte_f32 = None

    def _trainable(self) -> None:
        """ValueError, before any work, for a table a step could not save."""
        if self.dtype == "Q8_0":
            raise ValueError(f"{self.path}: the token table is Q8_0 (quantised) and gpt2in does not "
                             "re-quantise: convert the file's embeddings to F16 or F32 first")

    def save(self, path) -> None:
        """Writes the file again with the trained token table (in the
        file's dtype) in place of the old one, every other tensor and the
        metadata kept: through a temporary file renamed over path, so path
        is never left half-written (even when it is the file this
        Embedding maps). After SparseAdam steps the metadata records the
        step count ("gpt2in.adam_step"), as `gpt2in step` does."""
        # after SparseAdam steps: the step count, as `gpt2in step` writes it,
        # so that the CLI takes these weights with the optimizer's state file
        meta = [] if self._adam_step is None else ["gpt2in.adam_step", str(self._adam_step)]
        self._core.save(os.fspath(path), meta)


class SparseAdam:
    """PyTorch's torch.optim.SparseAdam on an Embedding's token table, bit
    for bit given the gradient of the touched rows (as backward_sparse
    returns it): lazy moments updated only on those rows, one global step
    count for bias correction, eps added to sqrt(v) before the bias
    correction.

        opt = gpt2in.SparseAdam(emb, lr=1e-3)
        rows, grad = emb.backward_sparse(ids, dout)
        opt.step(rows, grad)

    The moments are float32 [V, C] arrays (exp_avg, exp_avg_sq), shared
    with state_dict() without a copy. save(path) writes them in the format
    of `gpt2in step --optimizer adam --state` (tensors "wte.exp_avg",
    "wte.exp_avg_sq", metadata "step"); SparseAdam.load(emb, path) reads it.
    """

    def __init__(self, embedding: Embedding, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        """Moments start at zero and the step count at 0 (torch's defaults)."""
        if not 0.0 < lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        self.embedding = embedding
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        self.step_count = 0
        self.exp_avg = np.zeros((embedding.V, embedding.C), np.float32)
        self.exp_avg_sq = np.zeros((embedding.V, embedding.C), np.float32)

    def step(self, rows, grad) -> None:
        """One step on the given rows (distinct, as backward_sparse returns
        them) with their gradient rows [n, C] float32."""
        emb = self.embedding
        emb._trainable()
        r = _ids(rows, "rows")
        if r.ndim != 1:
            raise ValueError(f"rows must have shape [n], not {list(r.shape)}")
        if len(np.unique(r)) != r.size:
            raise ValueError("rows must be distinct (as backward_sparse returns them)")
        g = _floats(grad, (r.size, emb.C), "grad")
        written = (np.asarray(emb._core.wte_view()), self.exp_avg, self.exp_avg_sq)
        r, g = _apart(r, *written), _apart(g, *written)
        self.step_count = emb._core.adam(r, r.size, g, self.exp_avg, self.exp_avg_sq, self.lr,
                                         self.betas[0], self.betas[1], self.eps, self.step_count)
        emb._wte_f32 = None
        emb._adam_step = self.step_count

    def state_dict(self) -> dict:
        """torch.optim.Optimizer.state_dict()'s layout, with NumPy arrays:
        {"state": {0: {"step", "exp_avg", "exp_avg_sq"}}, "param_groups":
        [{"lr", "betas", "eps", "maximize", "params": [0]}]}."""
        return {"state": {0: {"step": self.step_count, "exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}}
                if self.step_count else {},
                "param_groups": [{"lr": self.lr, "betas": self.betas, "eps": self.eps, "maximize": False,
                                  "params": [0]}]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Takes state_dict()'s layout, also torch's SparseAdam state_dict()
        (tensors are read with numpy.asarray)."""
        g = state_dict["param_groups"][0]
        if g.get("maximize", False):
            raise ValueError("maximize=True is not supported")
        self.lr, self.betas, self.eps = float(g["lr"]), tuple(float(b) for b in g["betas"]), float(g["eps"])
        st = state_dict["state"].get(0) if state_dict["state"] else None
        shape = (self.embedding.V, self.embedding.C)
        if st is None:
            self.step_count = 0
            self.exp_avg = np.zeros(shape, np.float32)
            self.exp_avg_sq = np.zeros(shape, np.float32)
            return
        m, v = np.asarray(st["exp_avg"]), np.asarray(st["exp_avg_sq"])
        for name, a in (("exp_avg", m), ("exp_avg_sq", v)):
            if a.dtype != np.float32 or a.shape != shape:
                raise ValueError(f"{name} must be float32 {list(shape)}, not {a.dtype} {list(a.shape)}")
        step = int(st["step"])
        if step < 0:
            raise ValueError(f"step must be >= 0, not {step}")
        self.step_count = step
        self.exp_avg = np.array(m, np.float32, order="C")
        self.exp_avg_sq = np.array(v, np.float32, order="C")

    def save(self, path) -> None:
        """Writes the moments and step count as `gpt2in step --state` does,
        crash-safe (temporary file renamed over path). ValueError when path
        is the embedding's own weights file (as the CLI refuses --state
        equal to --weights)."""
        path = os.fspath(path)
        try:
            same = os.path.samefile(path, self.embedding.path)
        except OSError:
            same = False
        if same:
            raise ValueError(f"{path} is the embedding's weights file; save the Adam state to another file")
        _gpt2in.save_f32(os.fspath(path), [("wte.exp_avg", self.exp_avg), ("wte.exp_avg_sq", self.exp_avg_sq)],
                         ["step", str(self.step_count)])

    @classmethod
    def load(cls, embedding: Embedding, path, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
             eps: float = 1e-8) -> SparseAdam:
        """A SparseAdam with the moments and step count of a state file
        written by save() or `gpt2in step --state`."""
        opt = cls(embedding, lr, betas, eps)
        st = Embedding.open(path, tensor="wte.exp_avg", positions=False)
        sq = Embedding.open(path, tensor="wte.exp_avg_sq", positions=False)
        for e in (st, sq):
            if (e.V, e.C, e.dtype) != (embedding.V, embedding.C, "F32"):
                raise ValueError(f"{path}: the moments must be F32 [{embedding.V}, {embedding.C}]")
        opt.exp_avg = np.array(st.wte, np.float32)
        opt.exp_avg_sq = np.array(sq.wte, np.float32)
        opt.step_count = int(st._core.metadata().get("step", "0"))
        return opt


def _g(x: float, prec: int | None = None) -> str:
    # C's printf %g / %.9g, "-nan" included (glibc prints the sign of a NaN)
    if x != x:
        return "-nan" if np.signbit(x) else "nan"
    return ("%g" % x) if prec is None else ("%.*g" % (prec, x))


def _g_err(x: float) -> str:
    """An error figure as the CLI prints it: %.9g with a NaN's sign dropped
    (inf/inf, the relative error against an infinite reference, is -nan on
    x86; gpt2in verify prints every NaN figure as "nan")."""
    return "nan" if x != x else _g(x, 9)


def _running_max(vals: np.ndarray) -> float:
    """The C loop's `if (!(v <= m)) m = v` from m = 0: a NaN is taken, and
    the next value replaces it."""
    if vals.size == 0:
        return 0.0
    nan = np.flatnonzero(np.isnan(vals))
    if nan.size:
        tail = vals[nan[-1] + 1:]
        return float(vals[nan[-1]]) if tail.size == 0 else float(tail.max())
    return max(0.0, float(vals.max()))


class VerifyReport:
    """The result of verify(): the figures `gpt2in verify` prints, and
    str(report) is its report, line for line.

    Attributes: batch (B for a batch [B, T, C] with B > 1, else None), rows
    (T), cols (C), atol, rtol, max_abs, max_rel, mismatches, first_mismatch
    ((row, column, got, reference), for a batch (batch_row, token, column,
    got, reference), or None), identical (the same float32 bits, NaNs
    included), ok (within tolerance).
    """

    batch = None

    def __init__(self, **kw) -> None:
        """Private: made by verify()."""
        self.__dict__.update(kw)

    def __bool__(self) -> bool:
        """True when within tolerance (report.ok)."""
        return self.ok

    def __repr__(self) -> str:
        return f"<VerifyReport ok={self.ok} identical={self.identical} mismatches={self.mismatches}>"

    def __str__(self) -> str:
        n = self.rows * self.cols
        shape = f"{self.rows} x {self.cols}"
        if self.batch is not None:
            n *= self.batch
            shape = f"{self.batch} x {shape}"
        lines = [f"compared {shape} = {n} values (atol {_g(self.atol)}, rtol {_g(self.rtol)})",
                 f"max abs err {_g_err(self.max_abs)}", f"max rel err {_g_err(self.max_rel)}",
                 f"mismatches {self.mismatches}"]
        if self.mismatches:
            *where, a, b = self.first_mismatch
            at = ("batch row {}, token {}, column {}" if len(where) == 3 else "row {}, column {}").format(*where)
            lines.append(f"first mismatch: {at}: gpt2in {_g(a, 9)}, reference {_g(b, 9)}")
            lines.append("result: OUTSIDE tolerance")
        else:
            lines.append("result: " + ("identical (bit for bit as float32)" if self.identical else "within tolerance"))
        return "\n".join(lines) + "\n"


def verify(x, ref, atol: float = 1e-6, rtol: float = 1e-5, equal_nan: bool = False) -> VerifyReport:
    """Compares x (e.g. Embedding.forward's output, float32 [T, C], or
    [B, T, C] for a batch of ids [B, T]) with a reference array (float32,
    float16 or float64) by `gpt2in verify`'s rule, numpy.allclose's:
    |x - ref| <= atol + rtol * |ref|, computed in double precision, a NaN
    outside any tolerance unless equal_nan (a NaN then matches a NaN). The
    shapes must be the same, except that [T, C] and [1, T, C] are taken for
    each other, as the CLI takes [1, T, C] for ids [T] and [T, C] for a
    batch of one row; a [1, T, C] x is reported as [T, C] (the CLI's report
    for ids [T]). x of [B, T, C] with B > 1 gives the CLI's batch report
    ("compared B x T x C = N values", the first mismatch by batch row,
    token and column). Returns a VerifyReport (true when within tolerance;
    str() gives the CLI's report). ValueError when the shapes differ,
    TypeError for non-float arrays."""
    for name, tol in (("atol", atol), ("rtol", rtol)):
        if not float(tol) >= 0:   # as `gpt2in verify` refuses them
            raise ValueError(f"{name} must be a number >= 0, not {tol}")
    a, b = np.asarray(x), np.asarray(ref)
    for name, arr in (("x", a), ("ref", b)):
        if arr.dtype.kind != "f":
            raise TypeError(f"{name} must be a float array, not {arr.dtype}")
    batch = a.shape[0] if a.ndim == 3 and a.shape[0] != 1 else None
    if batch is None:
        if a.ndim == 3:
            a = a[0]
        if b.ndim == 3 and b.shape[0] == 1:
            b = b[0]
        if a.ndim != 2:
            raise ValueError(f"x must have shape [T, C] or [B, T, C], not {list(np.shape(x))}")
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: x is {list(np.shape(x))} but ref is {list(np.shape(ref))}")
    xf = a.astype(np.float32).reshape(-1)
    ad, bd = xf.astype(np.float64), b.astype(np.float64).reshape(-1)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        eq = (ad == bd) | (equal_nan & np.isnan(ad) & np.isnan(bd))
        d = np.abs(ad - bd)
        ok = eq | (np.isfinite(d) & (d <= atol + rtol * np.abs(bd)))
        ne = ~eq
        max_abs = _running_max(d[ne])
        nz = ne & (bd != 0)
        max_rel = _running_max(d[nz] / np.abs(bd[nz]))
        fb = bd.astype(np.float32)
    nan_either = np.isnan(fb) | np.isnan(xf)
    same_bits = fb.view(np.uint32) == xf.view(np.uint32)
    same_val = (fb == xf) & ~((fb == 0) & (np.signbit(fb) != np.signbit(xf)))
    identical = bool(np.all(np.where(nan_either, same_bits, same_val)))
    bad = np.flatnonzero(~ok)
    T, C = a.shape[-2:]
    first = None
    if bad.size:
        i = int(bad[0])
        row, col = i // C, i % C   # C > 0: there is a value
        first = ((row // T, row % T) if batch is not None else (row,)) + (col, float(ad[i]), float(bd[i]))
    return VerifyReport(batch=batch, rows=T, cols=C, atol=float(atol), rtol=float(rtol), max_abs=max_abs,
                        max_rel=max_rel, mismatches=int(bad.size), first_mismatch=first, identical=identical,
                        ok=not bad.size)
