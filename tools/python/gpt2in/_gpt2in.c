/* _gpt2in.c - the CPython extension under the gpt2in package: a thin layer
 * over libgpt2in (bpe.h, embed.h). The tiktoken-compatible policy (special
 * tokens, surrogates, argument defaults) lives in gpt2in/__init__.py; this
 * file only moves bytes and ids between Python objects and the library, with
 * the GIL released while the library runs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bpe.h"
#include "embed.h"

/* Same values as bpe.h's flags, named for the Python side. */
#define FLAGS_OK(f) ((f) == BPE_SPECIAL_ALLOW || (f) == BPE_SPECIAL_TEXT)

/* ---- a growable-free uint32 buffer, for encode_to_numpy ------------------ */

/* Owns a malloc'd uint32 array and exports it through the buffer protocol,
 * so numpy.frombuffer() wraps it without a copy. */
typedef struct {
    PyObject_HEAD
    uint32_t *data;
    Py_ssize_t n;
    Py_ssize_t shape[1], strides[1];
} U32Buffer;

static void u32buf_dealloc(U32Buffer *self) {
    free(self->data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int u32buf_getbuffer(U32Buffer *self, Py_buffer *view, int flags) {
    self->shape[0] = self->n;
    self->strides[0] = sizeof(uint32_t);
    view->obj = Py_NewRef((PyObject *)self);
    view->buf = self->data;
    view->len = self->n * (Py_ssize_t)sizeof(uint32_t);
    view->readonly = 0;
    view->itemsize = sizeof(uint32_t);
    view->format = (flags & PyBUF_FORMAT) ? "I" : NULL;
    view->ndim = 1;
    view->shape = (flags & PyBUF_ND) ? self->shape : NULL;
    view->strides = (flags & PyBUF_STRIDES) ? self->strides : NULL;
    view->suboffsets = NULL;
    view->internal = NULL;
    return 0;
}

static PyBufferProcs u32buf_as_buffer = {(getbufferproc)u32buf_getbuffer, NULL};

static PyTypeObject U32BufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gpt2in._gpt2in.U32Buffer",
    .tp_basicsize = sizeof(U32Buffer),
    .tp_dealloc = (destructor)u32buf_dealloc,
    .tp_as_buffer = &u32buf_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Token ids (uint32) owned by C memory; wrap with numpy.frombuffer.",
};

/* Takes ownership of data (n ids). */
static PyObject *u32buf_new(uint32_t *data, size_t n) {
    U32Buffer *b = PyObject_New(U32Buffer, &U32BufferType);
    if (!b) {
        free(data);
        return NULL;
    }
    b->data = data;
    b->n = (Py_ssize_t)n;
    return (PyObject *)b;
}

/* ---- big buffers ---------------------------------------------------------- */

/* Fresh memory costs a page fault per 4 KB page, which on some machines
 * (virtual ones above all) costs more than encoding the text that fills it;
 * a transparent huge page takes one fault per 2 MB. So a big output is
 * asked of malloc in whole 2 MB less malloc's 32 bytes: glibc then maps
 * exactly a multiple of 2 MB, which Linux places on a 2 MB boundary, and
 * its pages are marked for huge pages. malloc has already written its
 * header in the first 2 MB, which therefore is made huge at once
 * (MADV_COLLAPSE, Linux 6.1; not where huge pages are off, which it would
 * override). Other allocators, other kernels: only the whole 2 MB inside
 * the output are marked. The output is cut to its size at the end either
 * way. uint32 outputs, which are ours to free, are simply 2 MB-aligned
 * (ids_malloc): no header there, no collapse. */
#define HUGE_SZ ((size_t)2 << 20)
#define BIG_OUT ((size_t)1 << 20)
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

/* The bytes to allocate for an output of `bytes`. */
static size_t out_bytes(size_t bytes) {
    if (bytes < BIG_OUT || bytes > SIZE_MAX - 2 * HUGE_SZ) return bytes;
    return (bytes + 32 + HUGE_SZ - 1) / HUGE_SZ * HUGE_SZ - 32;
}

/* Whether transparent huge pages are on ("always" or "madvise"); read once. */
static int thp_on(void) {
    static atomic_int on = -1;
    int v = atomic_load(&on);
    if (v < 0) {
        char buf[128] = {0};
        FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
        if (f) {
            if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
            fclose(f);
        }
        v = strstr(buf, "[always]") != NULL || strstr(buf, "[madvise]") != NULL;
        atomic_store(&on, v);
    }
    return v;
}

/* Huge pages for the output p[0..bytes), when it is big (hints: a failure
 * changes nothing). */
static void advise_huge(void *p, size_t bytes) {
#ifdef MADV_HUGEPAGE
    long pg = sysconf(_SC_PAGESIZE);
    if (bytes < BIG_OUT || pg <= 0 || !thp_on()) return;
    uintptr_t u = (uintptr_t)p, a = u & ~(uintptr_t)(pg - 1), e = u + bytes;
    uintptr_t len = (e - a + (uintptr_t)pg - 1) & ~(uintptr_t)(pg - 1);
    if (a % HUGE_SZ == 0 && len >= HUGE_SZ) {   /* a mapping of its own */
        madvise((void *)a, len, MADV_HUGEPAGE);
        if (u % HUGE_SZ) madvise((void *)a, HUGE_SZ, MADV_COLLAPSE);   /* malloc's header is there */
        return;
    }
    a = (u + HUGE_SZ - 1) & ~(uintptr_t)(HUGE_SZ - 1);
    e &= ~(uintptr_t)(HUGE_SZ - 1);
    if (e > a) madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

/* ---- errors --------------------------------------------------------------- */

static PyObject *raise_bpe(int rc, const bpe_error *err) {
    if (rc == BPE_ERR_NOMEM) return PyErr_NoMemory();
    PyErr_SetString(rc == BPE_ERR_IO ? PyExc_OSError : PyExc_ValueError, err->msg);
    return NULL;
}

/* The loaders (bpe_load_mem, embed_open) return NULL and a message, no
 * code: running out of memory is told by the message's end, "NAME: out of
 * memory" (also "... out of memory for a 123-byte header") or a mapping's
 * "...: Cannot allocate memory" (ENOMEM). Anything else is a bad file. */
static int msg_is_nomem(const char *msg) {
    static const char oom[] = "out of memory";
    const char *at = NULL;
    for (const char *p = strstr(msg, oom); p; p = strstr(p + 1, oom)) at = p;
    if (at && (at == msg || (at - msg >= 2 && !memcmp(at - 2, ": ", 2)))) {
        const char *t = at + sizeof oom - 1;
        if (!*t) return 1;
        if (!strncmp(t, " for ", 5) && strspn(t, " abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(t)) return 1;
    }
    const char *e = strerror(ENOMEM);
    size_t n = strlen(msg), k = strlen(e);
    return n >= k + 2 && !strcmp(msg + n - k, e) && !memcmp(msg + n - k - 2, ": ", 2);
}

/* A loader's failure: MemoryError (with the library's message) when memory
 * ran out, else `type`. */
static PyObject *raise_load(PyObject *type, const char *msg) {
    PyErr_SetString(msg_is_nomem(msg) ? PyExc_MemoryError : type, msg);
    return NULL;
}

/* ---- token id input ------------------------------------------------------- */

/* tiktoken converts ids to u32 with PyO3, whose words the errors keep: a
 * non-int is a TypeError naming the argument, a negative or too big int an
 * OverflowError ("too large" once it does not fit a C long). */
static int id_from_long(long long x, int overflow, uint32_t *out) {
    if (overflow || x < 0 || x > (long long)UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, overflow ? "Python int too large to convert to C long"
                                                      : "out of range integral type conversion attempted");
        return -1;
    }
    *out = (uint32_t)x;
    return 0;
}

/* PyO3's argument errors: a TypeError becomes "argument 'NAME': ...". */
static void name_type_error(const char *arg) {
    if (!PyErr_ExceptionMatches(PyExc_TypeError)) return;
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *value = PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
#endif
    PyObject *msg = value ? PyObject_Str(value) : NULL;
    Py_XDECREF(value);
    if (msg) {
        PyErr_Format(PyExc_TypeError, "argument '%s': %U", arg, msg);
        Py_DECREF(msg);
    } else if (!PyErr_Occurred()) {
        PyErr_Format(PyExc_TypeError, "argument '%s': wrong type", arg);
    }
}

static int id_from_obj(PyObject *o, uint32_t *out, const char *arg) {
    PyObject *i = PyNumber_Index(o);
    if (!i) {
        name_type_error(arg);
        return -1;
    }
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(i, &overflow);
    Py_DECREF(i);
    if (x == -1 && PyErr_Occurred()) return -1;
    return id_from_long(x, overflow, out);
}

/* Reads a 1-D contiguous buffer of native integers (numpy arrays,
 * array.array, bytes). Returns 1 when done, 0 when the object is not such a
 * buffer (the caller falls back to iterating), -1 on error. */
static int ids_from_buffer(PyObject *obj, uint32_t **out, size_t *n) {
    if (!PyObject_CheckBuffer(obj)) return 0;
    Py_buffer v;
    if (PyObject_GetBuffer(obj, &v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        return 0;
    }
    const char *f = v.format ? v.format : "B";
    if (*f == '@' || *f == '=' || *f == '<') f++;
    char c = f[0];
    int ok = f[0] && !f[1] && strchr("bBhHiIlLqQnN", c) && v.ndim == 1;
    if (!ok || v.itemsize <= 0 || v.itemsize > 8) {
        PyBuffer_Release(&v);
        return 0;
    }
    int is_signed = c == 'b' || c == 'h' || c == 'i' || c == 'l' || c == 'q' || c == 'n';
    size_t count = (size_t)(v.len / v.itemsize);
    uint32_t *ids = malloc((count ? count : 1) * sizeof *ids);
    if (!ids) {
        PyBuffer_Release(&v);
        PyErr_NoMemory();
        return -1;
    }
    const unsigned char *p = v.buf;
    for (size_t k = 0; k < count; k++, p += v.itemsize) {
        long long x = 0;
        int overflow = 0;
        switch (v.itemsize) {
        case 1: x = is_signed ? (long long)*(const int8_t *)p : (long long)*(const uint8_t *)p; break;
        case 2: { int16_t s; uint16_t u; memcpy(&s, p, 2); memcpy(&u, p, 2); x = is_signed ? s : u; } break;
        case 4: { int32_t s; uint32_t u; memcpy(&s, p, 4); memcpy(&u, p, 4); x = is_signed ? s : (long long)u; } break;
        case 8: {
            if (is_signed) { int64_t s; memcpy(&s, p, 8); x = s; }
            else { uint64_t u; memcpy(&u, p, 8); overflow = u > (uint64_t)LLONG_MAX; x = overflow ? 0 : (long long)u; }
        } break;
        default: overflow = 1;
        }
        if (id_from_long(x, overflow, &ids[k]) < 0) {
            free(ids);
            PyBuffer_Release(&v);
            return -1;
        }
    }
    PyBuffer_Release(&v);
    *out = ids;
    *n = count;
    return 1;
}

/* Arrays of other libraries (a PyTorch CPU tensor, a pandas Series) through
 * their __array__ (a NumPy view for a tensor): 1 when read, 0 when the
 * object has none or it does not give an integer buffer. */
static int ids_from_array_attr(PyObject *obj, uint32_t **out, size_t *n) {
    if (PyList_CheckExact(obj) || PyTuple_CheckExact(obj)) return 0;
    PyObject *fn = PyObject_GetAttrString(obj, "__array__");
    if (!fn) {
        PyErr_Clear();
        return 0;
    }
    PyObject *arr = PyObject_CallNoArgs(fn);
    Py_DECREF(fn);
    if (!arr) {
        PyErr_Clear();
        return 0;
    }
    int r = ids_from_buffer(arr, out, n);
    Py_DECREF(arr);
    return r;
}

/* Any sequence or iterable of ints (or integer buffer, or array with
 * __array__) -> malloc'd uint32 array. `arg` names the argument in errors,
 * as PyO3 does; a str is refused (its items are characters). */
static int ids_from_seq(PyObject *obj, uint32_t **out, size_t *n, const char *arg) {
    if (PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "argument '%s': Can't extract `str` to `Vec`", arg);
        return -1;
    }
    int r = ids_from_buffer(obj, out, n);
    if (!r) r = ids_from_array_attr(obj, out, n);
    if (r) return r < 0 ? -1 : 0;
    PyObject *seq;
    if (PyList_CheckExact(obj) || PyTuple_CheckExact(obj)) {
        seq = Py_NewRef(obj);
    } else {
        PyObject *it = PyObject_GetIter(obj);
        if (!it) {
            if (PyErr_ExceptionMatches(PyExc_TypeError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_TypeError, "argument '%s': '%.100s' object cannot be converted to 'Sequence'",
                             arg, Py_TYPE(obj)->tp_name);
            }
            return -1;
        }
        seq = PySequence_List(it);
        Py_DECREF(it);
        if (!seq) return -1;
    }
    Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
    uint32_t *ids = malloc((size_t)(len ? len : 1) * sizeof *ids);
    if (!ids) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    /* A list may shrink while an item's __index__ runs: read the size anew. */
    for (Py_ssize_t k = 0; k < len && k < PySequence_Fast_GET_SIZE(seq); k++) {
        PyObject *it = PySequence_Fast_GET_ITEM(seq, k);
        int rc;
        if (PyLong_CheckExact(it)) {
            int overflow = 0;
            long long x = PyLong_AsLongLongAndOverflow(it, &overflow);
            rc = id_from_long(x, overflow, &ids[k]);
        } else {
            Py_INCREF(it);
            rc = id_from_obj(it, &ids[k], arg);
            Py_DECREF(it);
        }
        if (rc < 0) {
            free(ids);
            Py_DECREF(seq);
            return -1;
        }
    }
    if (PySequence_Fast_GET_SIZE(seq) < len) len = PySequence_Fast_GET_SIZE(seq);
    Py_DECREF(seq);
    *out = ids;
    *n = (size_t)len;
    return 0;
}

/* ---- CoreBPE: one vocabulary ---------------------------------------------- */

/* Texts above this many bytes are encoded in parts (see encode_list). */
#define PART ((size_t)64 << 20)

/* Whether encode_list has a helper thread (see helper_start): FILL_AUTO
 * where it can help; for tests (whatever the machine's load): never, as if
 * the thread could not be started, with the encoder waiting for it at
 * every step (so that the calling thread's page faults are those the
 * helper left, and the helper widens every step), a helper that widens
 * nothing (the calling thread widens every step at the end), or as
 * FILL_AUTO does on an idle machine. */
enum { FILL_AUTO, FILL_OFF, FILL_NO_THREAD, FILL_SYNC, FILL_LAZY, FILL_ALWAYS };

typedef struct kept_buf kept_buf;
static void kept_free(kept_buf *k);

/* Before Python 3.12 every object's references are counted, and a list
 * of n tokens cost n increments (and a pass over the ids to count them)
 * beyond the list itself. Our ints are pinned instead: their count is set
 * so high that no number of decrements can bring it to zero, so a list
 * takes them without counting, as 3.12 made its small ints immortal. The
 * pinned ints are shared by all vocabularies and live as long as the
 * process (a vocabulary's worth, 32 bytes each). Not in debug builds of
 * Python, which keep a total of counts, nor where counts are atomic. */
#if PY_VERSION_HEX < 0x030C0000 && !defined(Py_GIL_DISABLED) && !defined(Py_REF_DEBUG)
#define PINNED 1
#else
#define PINNED 0
#endif
#define PINNED_COUNT (PY_SSIZE_T_MAX / 2)

#if PINNED
static PyObject **pinned;   /* with the GIL */
static size_t n_pinned, cap_pinned;

/* The pinned int k (a borrowed reference), or NULL with an exception set. */
static PyObject *pinned_int(size_t k) {
    if (k >= n_pinned) {
        if (k >= cap_pinned) {  /* doubling: one copy an id, however they are asked for */
            size_t cap = k + 1 > 2 * cap_pinned ? k + 1 : 2 * cap_pinned;
            PyObject **p = PyMem_RawRealloc(pinned, cap * sizeof *p);
            if (!p) {
                PyErr_NoMemory();
                return NULL;
            }
            pinned = p;
            cap_pinned = cap;
        }
        for (; n_pinned <= k; n_pinned++) {
            PyObject *o = PyLong_FromSize_t(n_pinned);
            if (!o) return NULL;
            Py_SET_REFCNT(o, PINNED_COUNT);
            pinned[n_pinned] = o;
        }
    }
    return pinned[k];
}
#endif

/* Encoders a CoreBPE keeps (see enc_take). */
#define ENC_SLOTS 8

/* ints[id] holds the Python int of every id: a list of tokens is then
 * built with a reference count increment per token (none when pinned)
 * instead of an int allocation (and freed without deallocations). */
typedef struct {
    PyObject_HEAD
    const bpe *v;
    size_t n_ints;
    PyObject **ints;
    unsigned char *ascii;   /* ascii[id]: the token's bytes are all below 0x80 */
    _Atomic(uint32_t *) counts;   /* see counts_take */
    _Atomic(void *) kept;         /* a kept_buf, see encode_kept */
    _Atomic(bpe_encoder *) enc[ENC_SLOTS];   /* see enc_take */
    atomic_size_t enc_made;
    size_t part;   /* PART; less in tests (_set_part) */
    int fill;      /* FILL_AUTO; other modes in tests (_set_fill) */
    atomic_llong filled;   /* for tests: what the last helper populated */
} CoreBPE;

static PyTypeObject CoreBPEType;

static void core_dealloc(CoreBPE *self) {
    for (int i = 0; i < ENC_SLOTS; i++) bpe_encoder_free(atomic_load(&self->enc[i]));
    free(atomic_load(&self->counts));
    kept_free(atomic_load(&self->kept));
    if (!PINNED)
        for (size_t k = 0; k < self->n_ints; k++) Py_XDECREF(self->ints[k]);
    PyMem_Free(self->ints);
    PyMem_Free(self->ascii);
    bpe_free(self->v);   /* a no-op on the compiled-in vocabulary */
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *core_wrap(const bpe *v) {
    CoreBPE *c = PyObject_New(CoreBPE, &CoreBPEType);
    if (!c) {
        bpe_free(v);
        return NULL;
    }
    c->v = v;
    c->n_ints = 0;
    atomic_init(&c->counts, NULL);
    atomic_init(&c->kept, NULL);
    for (int i = 0; i < ENC_SLOTS; i++) atomic_init(&c->enc[i], NULL);
    atomic_init(&c->enc_made, 0);
    c->part = PART;
    c->fill = FILL_AUTO;
    atomic_init(&c->filled, -1);
    size_t nv = bpe_vocab_size(v);
    c->ints = PyMem_Calloc(nv ? nv : 1, sizeof *c->ints);
    c->ascii = PyMem_Calloc(nv ? nv : 1, 1);
    if (!c->ints || !c->ascii) {
        Py_DECREF(c);
        return PyErr_NoMemory();
    }
    for (size_t k = 0; k < nv; k++) {
        size_t len;
        const unsigned char *p = (const unsigned char *)bpe_token_bytes(v, (uint32_t)k, &len);
        int a = p != NULL;
        for (size_t i = 0; a && i < len; i++) a = p[i] < 0x80;
        c->ascii[k] = (unsigned char)a;
    }
    for (size_t k = 0; k < nv; k++) {
#if PINNED
        c->ints[k] = pinned_int(k);
#else
        c->ints[k] = PyLong_FromSize_t(k);
#endif
        if (!c->ints[k]) {
            Py_DECREF(c);
            return NULL;
        }
        c->n_ints = k + 1;
    }
    return (PyObject *)c;
}

/* ids come from the library, so each is below n_ints. */
static PyObject *ids_to_list_cached(const CoreBPE *c, const uint32_t *ids, size_t n) {
    PyObject *l = PyList_New((Py_ssize_t)n);
    if (!l) return NULL;
    PyObject **items = ((PyListObject *)l)->ob_item;
    PyObject *const *ints = c->ints;
    for (size_t k = 0; k < n; k++) {
        PyObject *x = ints[ids[k]];
        if (!PINNED) Py_INCREF(x);
        items[k] = x;
    }
    return l;
}

/* ---- kept encoders --------------------------------------------------------- */

/* The library's encoder (bpe_encoder) keeps its piece cache from call to
 * call, where bpe_encode starts each text of 64 KB or more with a fresh,
 * zeroed one (and shorter texts with none). An encoder serves one thread at
 * a time, so a call takes one out of the CoreBPE's slots (an atomic
 * exchange, no GIL needed) and puts it back after: Python threads that
 * encode at once (the GIL released) and a batch's threads each hold their
 * own. A call that finds the slots empty makes one, as long as fewer than
 * ENC_SLOTS were made or its text is of 64 KB or more (bpe_encode would
 * make a cache for it anyway); a shorter text then uses bpe_encode, which
 * makes none, so that many threads at once never pay a cache for a few
 * bytes. One that finds the slots full frees its own. NULL: the call uses
 * bpe_encode (also when there is no memory for an encoder). */
#define ENC_ANY_LEN ((size_t)64 << 10)

static bpe_encoder *enc_take(CoreBPE *c, size_t len) {
    for (int i = 0; i < ENC_SLOTS; i++) {
        bpe_encoder *e = atomic_load_explicit(&c->enc[i], memory_order_relaxed) ? atomic_exchange(&c->enc[i], NULL)
                                                                                : NULL;
        if (e) return e;
    }
    if (len < ENC_ANY_LEN && atomic_load(&c->enc_made) >= ENC_SLOTS) return NULL;
    atomic_fetch_add(&c->enc_made, 1);
    return bpe_encoder_new(c->v, NULL);
}

static void enc_put(CoreBPE *c, bpe_encoder *e) {
    if (!e) return;
    for (int i = 0; i < ENC_SLOTS; i++) {
        bpe_encoder *none = NULL;
        if (atomic_compare_exchange_strong(&c->enc[i], &none, e)) return;
    }
    bpe_encoder_free(e);
}

/* bpe_encode with e's cache when there is an encoder. */
static int enc_encode(bpe_encoder *e, const bpe *v, const char *s, size_t len, int flags, uint32_t *ids, size_t cap,
                      size_t *n, bpe_error *err) {
    return e ? bpe_encoder_encode(e, s, len, flags, ids, NULL, cap, n, err)
             : bpe_encode(v, s, len, flags, ids, NULL, cap, n, err);
}

/* ---- lists of ids without a copy ------------------------------------------ */

/* A list of a text above KEPT_MAX bytes, and a batch's, is built where the
 * library writes: the encoder's uint32 ids go
 * to the start of what becomes the list's item array (8 bytes a slot), and
 * a backward pass widens them in place to the cached int objects (slot k
 * overwrites ids 2k and 2k+1, already widened). No second buffer, no page
 * of it to fault in, and the widening runs without the GIL; the references
 * the list takes are counted per id there and added under the GIL, one
 * update per distinct id instead of one per token. */
typedef struct {
    PyObject **items;   /* PyMem_Malloc'd, cap slots */
    size_t cap, n;
    uint32_t *counts;   /* per id, or NULL: Py_INCREF per token under the GIL */
} id_list;

/* Below this many tokens the per-id counts (an array of the vocabulary's
 * size) cost more than an increment per token. */
#define COUNT_MIN 32768

static int id_list_alloc(id_list *L, size_t cap) {
    L->n = 0;
    L->counts = NULL;
    L->cap = cap ? cap : 1;
    if (L->cap > (size_t)PY_SSIZE_T_MAX / sizeof(PyObject *)) {
        L->items = NULL;
        PyErr_NoMemory();
        return -1;
    }
    size_t bytes = out_bytes(L->cap * sizeof(PyObject *));
    L->cap = bytes / sizeof(PyObject *);
    L->items = PyMem_Malloc(bytes);
    if (!L->items) {
        PyErr_NoMemory();
        return -1;
    }
    advise_huge(L->items, bytes);
    return 0;
}

/* The library's output buffer: room for cap - n ids after the n items. */
static uint32_t *id_list_ids(id_list *L) { return (uint32_t *)(void *)(L->items + L->n); }

/* Without the GIL, after the library wrote n ids at items: ints[id] in
 * place of each id, counted in counts[id] unless counts is NULL. ids are
 * read through memcpy (char access) so that no compiler may move a pointer
 * store ahead of the id loads it overwrites. */
static void widen(PyObject **items, size_t n, PyObject *const *ints, uint32_t *counts) {
    const unsigned char *raw = (const unsigned char *)items;
    if (counts) {
        for (size_t k = n; k-- > 0;) {
            uint32_t id;
            memcpy(&id, raw + k * sizeof id, sizeof id);
            counts[id]++;
            items[k] = ints[id];
        }
    } else {
        for (size_t k = n; k-- > 0;) {
            uint32_t id;
            memcpy(&id, raw + k * sizeof id, sizeof id);
            items[k] = ints[id];
        }
    }
}

/* widen() for a batch's list, which the library filled in one call. */
static void id_list_widen(id_list *L, size_t n, PyObject *const *ints, size_t n_ints) {
#ifndef Py_GIL_DISABLED
    if (!PINNED && n >= COUNT_MIN && n <= UINT32_MAX) L->counts = calloc(n_ints ? n_ints : 1, sizeof *L->counts);
#else
    (void)n_ints;
#endif
    widen(L->items, n, ints, L->counts);
    L->n = n;
}

static void id_list_free(id_list *L) {
    PyMem_Free(L->items);
    free(L->counts);
    L->items = NULL;
    L->counts = NULL;
}

/* With the GIL: hands L's item array, whose references are taken, to the
 * empty list l (which becomes its owner; L is emptied), cut down to `room`
 * slots (at least L->n) when it has more. Returns l, or NULL (the
 * references dropped) when a free-threaded list cannot be made. */
static PyObject *list_adopt(PyObject *l, id_list *L, size_t room) {
    size_t n = L->n;
    PyObject **items = L->items;
    L->items = NULL;
    L->n = 0;
    if (n == 0) {
        PyMem_Free(items);
        return l;
    }
#ifdef Py_GIL_DISABLED
    /* free-threaded lists keep their items in an array of their own layout */
    Py_DECREF(l);
    l = PyList_New((Py_ssize_t)n);
    if (l) memcpy(((PyListObject *)l)->ob_item, items, n * sizeof *items);
    else for (size_t k = 0; k < n; k++) Py_DECREF(items[k]);
    PyMem_Free(items);
    return l;
#else
    if (room < L->cap) {
        /* give back what the worst case reserved */
        PyObject **shrunk = PyMem_Realloc(items, room * sizeof *items);
        if (shrunk) items = shrunk;
    }
    PyListObject *lo = (PyListObject *)l;
    lo->ob_item = items;
    lo->allocated = (Py_ssize_t)n;
    Py_SET_SIZE(l, (Py_ssize_t)n);
    return l;
#endif
}

/* With the GIL: the references the items take, from counts (which is left
 * all zero) or one by one. */
static void take_refs(PyObject *const *items, size_t n, PyObject *const *ints, uint32_t *counts,
                      size_t n_ints) {
    if (PINNED) return;
    if (counts) {
        for (size_t id = 0; id < n_ints; id++)
            if (counts[id]) {
                Py_SET_REFCNT(ints[id], Py_REFCNT(ints[id]) + (Py_ssize_t)counts[id]);
                counts[id] = 0;
            }
    } else {
        for (size_t k = 0; k < n; k++) Py_INCREF(items[k]);
    }
}

/* With the GIL: takes the references and hands the item array to a new
 * list (L is emptied either way). */
static PyObject *id_list_finish(id_list *L, PyObject *const *ints, size_t n_ints) {
    PyObject *l = PyList_New(0);
    if (!l) {
        id_list_free(L);
        return NULL;
    }
    take_refs(L->items, L->n, ints, L->counts, n_ints);
    free(L->counts);
    L->counts = NULL;
    return list_adopt(l, L, L->n);
}

/* ---- one text ---------------------------------------------------------------- */

/* The library writes a text's ids where they stay (a list's items, a uint32
 * array), into room for a token per byte (untouched room costs address
 * space only) and in one call, which keeps its piece cache for the whole
 * text. A text above PART bytes goes in parts of about PART, cut where
 * bpe_safe_cut allows (the ids are those of the whole text), the output
 * growing from an estimate of the rest, so that the room reserved stays in
 * proportion to the tokens. */

/* The length of the next part of s[0..len): len up to `part`, else up to
 * a safe cut in the first `part` bytes, else in twice as many, and so on. */
static size_t part_len(const bpe *v, const char *s, size_t len, int flags, size_t part) {
    for (size_t w = part; w < len && w <= SIZE_MAX / 4; w *= 2) {
        size_t cut = bpe_safe_cut(v, s, w, flags);
        if (cut) return cut;
    }
    return len;
}

/* Output slots to reserve first for len bytes of text: a token per byte
 * up to a part; above, half a token a byte (English has 3 to 5 bytes a
 * token, code and other scripts 2 to 3, base64 1.3), and at least a token
 * a byte of the first part or two (room is ensured for a part's worst case
 * before it is encoded, and growing a big output can cost it its huge
 * pages). Grown as needed. */
static size_t first_cap(size_t len, size_t part) {
    if (len <= part) return len ? len : 1;
    size_t e = len / 2 + 1024, two = part <= len / 2 ? 2 * part : len;
    return e > two ? e : two;
}

/* The new size of an output of cap slots that needs `need`. */
static size_t grown(size_t cap, size_t need) {
    size_t c = cap + cap / 2;
    return c > need ? c : need;
}

/* The library's error for the whole text: a part's offsets are not the
 * text's, so the text is encoded again, counting only. */
static PyObject *raise_whole(const bpe *v, const char *s, size_t len, int flags, int rc, bpe_error *err,
                             size_t part) {
    if (rc != BPE_ERR_NOMEM && len > part) {
        size_t n;
        int rc2 = bpe_encode(v, s, len, flags, NULL, NULL, 0, &n, err);
        if (rc2 != BPE_OK) rc = rc2;
    }
    return raise_bpe(rc, err);
}

/* bytes for a uint32 output, freed with free(); without the GIL. */
static uint32_t *ids_malloc(size_t bytes) {
    if (bytes < BIG_OUT) return malloc(bytes);
    void *p;
    if (posix_memalign(&p, HUGE_SZ, bytes)) return NULL;
    advise_huge(p, bytes);
    return p;
}

/* s[0..len) -> malloc'd ids (the caller frees *ids), the GIL released. */
static int encode_ids(CoreBPE *self, const char *s, size_t len, int flags, uint32_t **ids, size_t *n) {
    const bpe *v = self->v;
    size_t bytes = out_bytes(first_cap(len, self->part) * sizeof(uint32_t));
    size_t cap = bytes / sizeof(uint32_t), pos = 0, k = 0;
    uint32_t *buf = ids_malloc(bytes);
    if (!buf) {
        PyErr_NoMemory();
        return -1;
    }
    bpe_error err;
    int rc = BPE_OK;
    Py_BEGIN_ALLOW_THREADS
    bpe_encoder *e = enc_take(self, len);
    while (pos < len) {
        size_t part = part_len(v, s + pos, len - pos, flags, self->part), got;
        if (part > cap - k) {   /* a part has at most a token per byte */
            size_t c = grown(cap, k + part);
            uint32_t *b = NULL;
            if (c <= SIZE_MAX / 2 / sizeof *b) {
                bytes = out_bytes(c * sizeof *b);
                b = realloc(buf, bytes);
            }
            if (!b) {
                rc = BPE_ERR_NOMEM;
                break;
            }
            advise_huge(b, bytes);
            buf = b;
            cap = bytes / sizeof *b;
        }
        rc = enc_encode(e, v, s + pos, part, flags, buf + k, part, &got, &err);
        if (rc != BPE_OK) break;
        k += got;
        pos += part;
    }
    enc_put(self, e);
    Py_END_ALLOW_THREADS
    if (rc != BPE_OK) {
        free(buf);
        raise_whole(v, s, len, flags, rc, &err, self->part);
        return -1;
    }
    if (k < cap) {   /* give back the room no token took */
        uint32_t *b = realloc(buf, (k ? k : 1) * sizeof *b);
        if (b) buf = b;
    }
    *ids = buf;
    *n = k;
    return 0;
}

/* The per-id counts of encode_list, all zero between calls: kept by the
 * CoreBPE (warm memory); a call that finds them taken by another thread's
 * call (the GIL released) makes its own. */
static uint32_t *counts_take(CoreBPE *c) {
    uint32_t *counts = atomic_exchange(&c->counts, NULL);
    return counts ? counts : calloc(c->n_ints ? c->n_ints : 1, sizeof *counts);
}

static void counts_put(CoreBPE *c, uint32_t *counts) {
    uint32_t *none = NULL;
    if (counts && !atomic_compare_exchange_strong(&c->counts, &none, counts)) free(counts);
}

/* From this many bytes of text (some 30,000 tokens) a list's references
 * are counted per id. */
#define COUNT_BYTES (128 * 1024)

/* glibc maps on their own all requests of this size and more (its
 * threshold moves, but not past 32 MB). */
#define MAPPED_SIZE ((size_t)32 << 20)

/* The start of the item array of the last list made on a mapping of its
 * own (items_alloc); atomic for free-threaded builds, which have no GIL. */
static _Atomic uintptr_t last_mapped;

/* Whether the page at p is mapped (mincore fails with ENOMEM if not). */
static int mapped(const void *p) {
    long pg = sysconf(_SC_PAGESIZE);
    unsigned char vec[1];
    return pg <= 0 || mincore((void *)((uintptr_t)p & ~(uintptr_t)(pg - 1)), 1, vec) == 0 || errno != ENOMEM;
}

/* Whether a page of the 2 MB block at p is resident. */
static int touched(const void *p) {
    long pg = sysconf(_SC_PAGESIZE);
    unsigned char vec[HUGE_SZ / 4096];
    size_t pages = pg > 0 ? HUGE_SZ / (size_t)pg : 0;
    if (pages == 0 || pages > sizeof vec || mincore((void *)p, HUGE_SZ, vec)) return 1;
    for (size_t i = 0; i < pages; i++)
        if (vec[i] & 1) return 1;
    return 0;
}

/* ---- a helper thread for a text's list ------------------------------------ */

/* A text above KEPT_MAX bytes is encoded into an item array of its own
 * mapping (glibc maps every request of 32 MB and more on its own and unmaps
 * it when it is freed): every page of it the kernel faults in and zeroes
 * when it is first written, and every id is then widened to its int; for
 * millions of ids a sizable share of the call, beside the library's. Where
 * another core is likely to be idle (cores_to_spare), a short-lived thread
 * does both while the calling thread encodes, in steps of FILL_STEP bytes:
 * - ahead of the encoder, the helper faults the array in
 *   (MADV_POPULATE_WRITE, Linux 5.14, which leaves the memory's contents
 *   alone and so cannot race with the encoder's stores), as far as the list
 *   is likely to reach by the end of the next step (the tokens so far and
 *   the density seen so far), so that it zeroes little beyond the list;
 * - behind it, the helper widens each step the encoder has finished, in
 *   place (a step's ids lie in the step's own item slots; the next step
 *   writes past them), backward in chunks of FILL_CHUNK ids.
 * When the text ends, the calling thread waits at most for the helper's
 * current chunk (never for the thread to end: it is detached), widens what
 * is left, and the helper goes. The work is the same, most of it on
 * another core. When the helper lags, cannot start, or the kernel has no
 * MADV_POPULATE_WRITE, the calling thread faults pages in and widens as it
 * would alone. */
#define FILL_STEP ((size_t)1 << 20)
#define FILL_CHUNK ((size_t)1 << 16)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int refs;     /* the thread and the caller: the last frees */
    int mode;
    /* set before the start: */
    char *base;          /* page-aligned */
    size_t limit;        /* bytes from base that may be populated */
    PyObject **items;
    PyObject *const *ints;
    uint32_t *counts;    /* the helper's own, or NULL */
    /* with mu: */
    size_t want, done;   /* populate base[0..want); base[0..done) is */
    size_t *bound;       /* step k's ids are in items[bound[k] .. bound[k + 1]) */
    size_t n_bound, cap_bound, next;   /* steps below next are taken */
    size_t cur, left;    /* the step being widened: items[bound[cur] .. left) are left */
    int in_chunk;        /* the helper is working outside mu */
    int stop, no_populate;
} helper;

/* ids of a step that starts at items[a] are in place from there: widens
 * items[lo..hi) of it, backward (see widen). */
static void widen_part(PyObject **items, size_t a, size_t lo, size_t hi, PyObject *const *ints,
                       uint32_t *counts) {
    PyObject **dst = items + a;
    const unsigned char *raw = (const unsigned char *)dst;
    for (size_t k = hi - a; k-- > lo - a;) {
        uint32_t id;
        memcpy(&id, raw + k * sizeof id, sizeof id);
        if (counts) counts[id]++;
        dst[k] = ints[id];
    }
}

static void helper_release(helper *h) {
    if (atomic_fetch_sub(&h->refs, 1) != 1) return;
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h->counts);
    free(h->bound);
    free(h);
}

static void *helper_main(void *arg) {
    helper *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        if (h->done < h->want && !h->no_populate) {
            /* a huge page at a time, so that a stop waits little */
            size_t from = h->done, to = (from + HUGE_SZ) & ~(HUGE_SZ - 1);
            if (to > h->want) to = h->want;
            h->in_chunk = 1;
            pthread_mutex_unlock(&h->mu);
            int rc = madvise(h->base + from, to - from, MADV_POPULATE_WRITE);
            pthread_mutex_lock(&h->mu);
            if (rc) h->no_populate = 1;   /* no such advice, or no memory: the encoder faults its pages */
            else h->done = to;
        } else if (h->mode != FILL_LAZY && (h->left > h->bound[h->cur] || h->next + 1 < h->n_bound)) {
            if (h->left == h->bound[h->cur]) {   /* the next step */
                h->cur = h->next++;
                h->left = h->bound[h->cur + 1];
            }
            size_t a = h->bound[h->cur], hi = h->left, lo = hi - a > FILL_CHUNK ? hi - FILL_CHUNK : a;
            h->in_chunk = 1;
            pthread_mutex_unlock(&h->mu);
            widen_part(h->items, a, lo, hi, h->ints, h->counts);
            pthread_mutex_lock(&h->mu);
            h->left = lo;
        } else {
            pthread_cond_wait(&h->cv, &h->mu);
            continue;
        }
        h->in_chunk = 0;
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    helper_release(h);
    return NULL;
}

/* Whether another core is likely to be idle: the process may run on more
 * than one, and (with check_load) the machine's load average of the last
 * minute is below its number of cores. On a machine busy everywhere the
 * helper would only take turns with the encoder, which at the end would
 * wait for it to be scheduled again. */
static int cores_to_spare(int check_load) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) || CPU_COUNT(&set) < 2) return 0;
    double load;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return !check_load || getloadavg(&load, 1) != 1 || cores <= 0 || load < (double)cores;
}

/* A helper (started without the GIL) for the item array items[0..cap),
 * whose first n slots are done, when `mode` allows, the array is big and
 * its memory fresh; NULL when none. counts: the caller's per-id counts
 * (the helper then keeps its own), or NULL. */
static helper *helper_start(int mode, PyObject **items, size_t cap, size_t n, PyObject *const *ints,
                            const uint32_t *counts, size_t n_ints) {
    long pg = sysconf(_SC_PAGESIZE);
    size_t bytes = cap * sizeof *items;
    if (mode == FILL_OFF || bytes < MAPPED_SIZE || pg <= 0) return NULL;
    uintptr_t a = (uintptr_t)items & ~(uintptr_t)(pg - 1), e = ((uintptr_t)items + bytes) & ~(uintptr_t)(pg - 1);
    uintptr_t probe = ((uintptr_t)(items + n) + HUGE_SZ) & ~(uintptr_t)(HUGE_SZ - 1);
    if (probe + HUGE_SZ > e || touched((void *)probe) || !cores_to_spare(mode == FILL_AUTO)) return NULL;
    helper *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->mode = mode;
    h->base = (char *)a;
    h->limit = e - a;
    h->items = items;
    h->ints = ints;
    h->cap_bound = 64;
    h->bound = malloc(h->cap_bound * sizeof *h->bound);
    if (counts) h->counts = calloc(n_ints ? n_ints : 1, sizeof *h->counts);
    if (!h->bound || (counts && !h->counts)) goto fail;
    h->bound[0] = h->left = n;
    h->n_bound = 1;
    atomic_init(&h->refs, 2);
    pthread_attr_t at;
    if (pthread_attr_init(&at)) goto fail;
    int ok = !pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED) && !pthread_mutex_init(&h->mu, NULL);
    if (ok && pthread_cond_init(&h->cv, NULL)) {
        pthread_mutex_destroy(&h->mu);
        ok = 0;
    }
    /* signals are the calling thread's to take: the helper starts with
     * all of them blocked */
    sigset_t all, old;
    sigfillset(&all);
    int masked = ok && !pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t tid;
    if (ok && (mode == FILL_NO_THREAD || pthread_create(&tid, &at, helper_main, h))) {
        pthread_cond_destroy(&h->cv);
        pthread_mutex_destroy(&h->mu);
        ok = 0;
    }
    if (masked) pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&at);
    if (ok) return h;
fail:
    free(h->bound);
    free(h->counts);
    free(h);
    return NULL;
}

/* Asks the helper to populate the item array up to `bytes` from its
 * start; in FILL_SYNC, waits until it has and has widened every step. */
static void helper_want(helper *h, size_t bytes) {
    if (!h) return;
    size_t to = (uintptr_t)h->items + bytes - (uintptr_t)h->base;
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    to = (to + pg - 1) & ~(pg - 1);
    if (to > h->limit) to = h->limit;
    pthread_mutex_lock(&h->mu);
    if (to > h->want) {
        h->want = to;
        pthread_cond_broadcast(&h->cv);
    }
    while (h->mode == FILL_SYNC && ((h->done < h->want && !h->no_populate) || h->next + 1 < h->n_bound ||
                                    h->left > h->bound[h->cur] || h->in_chunk))
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

/* A step's ids are in items[n .. n + got): widened now, or by the helper
 * later. Returns -1 when there is no memory to note it (nothing done). */
static int helper_step(helper *h, PyObject **items, size_t n, size_t got, PyObject *const *ints,
                       uint32_t *counts) {
    if (!h) {
        widen(items + n, got, ints, counts);
        return 0;
    }
    pthread_mutex_lock(&h->mu);
    if (h->n_bound == h->cap_bound) {
        size_t *b = realloc(h->bound, 2 * h->cap_bound * sizeof *b);
        if (!b) {
            pthread_mutex_unlock(&h->mu);
            return -1;
        }
        h->bound = b;
        h->cap_bound *= 2;
    }
    h->bound[h->n_bound++] = n + got;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return 0;
}

/* Stops the helper, waiting at most for its current chunk, and widens
 * what it left (before the array is moved or freed); its counts are added
 * to `counts`. Returns the bytes it populated, or -1 when there was none. */
static long long helper_finish(helper *h, uint32_t *counts, size_t n_ints) {
    if (!h) return -1;
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    pthread_cond_broadcast(&h->cv);
    while (h->in_chunk) pthread_cond_wait(&h->cv, &h->mu);
    long long done = (long long)h->done;
    pthread_mutex_unlock(&h->mu);
    /* the helper touches nothing of the caller's from here */
    widen_part(h->items, h->bound[h->cur], h->bound[h->cur], h->left, h->ints, counts);
    for (size_t k = h->next; k + 1 < h->n_bound; k++)
        widen_part(h->items, h->bound[k], h->bound[k], h->bound[k + 1], h->ints, counts);
    if (h->counts)
        for (size_t id = 0; id < n_ints; id++) counts[id] += h->counts[id];
    helper_release(h);
    return done;
}

/* The item bytes the list is likely to need by the end of the next step:
 * n items after pos bytes of len, the rest at the density seen so far
 * (half a token a byte before any, at most a token a byte), an eighth
 * more and a huge page of slack. */
static size_t fill_reach(size_t n, size_t pos, size_t len, size_t step) {
    size_t ahead = len - pos < 2 * step ? len - pos : 2 * step;
    double d = pos ? (double)n / (double)pos : 0.5;
    if (d > 1) d = 1;
    return (n + (size_t)(d * 1.125 * (double)ahead)) * sizeof(PyObject *) + HUGE_SZ;
}

/* s[0..len) -> list of ints; the GIL is released but to grow the item
 * array of a text in parts (PyMem memory, as a list's must be). */
static PyObject *encode_list(CoreBPE *self, const char *s, size_t len, int flags) {
    const bpe *v = self->v;
    PyObject *const *ints = self->ints;
    uint32_t *counts = NULL;
#ifndef Py_GIL_DISABLED
    /* uint32 counts: at most a token per byte */
    if (!PINNED && len >= COUNT_BYTES && len <= UINT32_MAX) counts = counts_take(self);
#endif
    id_list L;
    if (id_list_alloc(&L, first_cap(len, self->part))) {
        counts_put(self, counts);
        return NULL;
    }
    bpe_error err;
    int rc = BPE_OK;
    size_t pos = 0;
    long long filled = -1, done;
    PyThreadState *ts = PyEval_SaveThread();
    helper *h = helper_start(self->fill, L.items, L.cap, 0, ints, counts, self->n_ints);
    bpe_encoder *e = enc_take(self, len);
    while (pos < len) {
        /* steps of FILL_STEP while a helper runs */
        size_t step = h && self->part > FILL_STEP ? FILL_STEP : self->part;
        size_t part = part_len(v, s + pos, len - pos, flags, step), got;
        if (part > L.cap - L.n) {
            size_t c = grown(L.cap, L.n + part), bytes = 0;
            PyObject **it = NULL;
            if (c <= (size_t)PY_SSIZE_T_MAX / 2 / sizeof *it) {
                bytes = out_bytes(c * sizeof *it);
                if ((done = helper_finish(h, counts, self->n_ints)) > filled) filled = done;  /* the array may move */
                h = NULL;
                PyEval_RestoreThread(ts);
                it = PyMem_Realloc(L.items, bytes);
                ts = PyEval_SaveThread();
            }
            if (!it) {
                rc = BPE_ERR_NOMEM;
                break;
            }
            advise_huge(it, bytes);
            L.items = it;
            L.cap = bytes / sizeof *it;
            h = helper_start(self->fill, L.items, L.cap, L.n, ints, counts, self->n_ints);
        }
        helper_want(h, fill_reach(L.n, pos, len, step));
        rc = enc_encode(e, v, s + pos, part, flags, id_list_ids(&L), part, &got, &err);
        if (rc != BPE_OK) break;
        if (helper_step(h, L.items, L.n, got, ints, counts)) {
            rc = BPE_ERR_NOMEM;
            break;
        }
        L.n += got;
        pos += part;
    }
    if ((done = helper_finish(h, counts, self->n_ints)) > filled) filled = done;
    atomic_store(&self->filled, filled);
    enc_put(self, e);
    PyEval_RestoreThread(ts);
    PyObject *l = rc == BPE_OK ? PyList_New(0) : NULL;
    if (!l) {
        if (counts) memset(counts, 0, self->n_ints * sizeof *counts);
        counts_put(self, counts);
        id_list_free(&L);
        return rc == BPE_OK ? NULL : raise_whole(v, s, len, flags, rc, &err, self->part);
    }
    take_refs(L.items, L.n, ints, counts, self->n_ints);
    counts_put(self, counts);
    return list_adopt(l, &L, L.n);
}

/* Texts of up to KEPT_MAX bytes: the library writes the ids into a uint32
 * buffer the CoreBPE keeps from call to call (warm memory: a fresh page
 * costs a fault, and on some virtual machines 512 faults cost more than
 * encoding the text that fills 2 MB of ids), then they are widened into
 * an item array of the list's size (items_alloc). The buffer is taken as
 * the counts are, and kept for texts up to KEPT_MAX bytes (16 MB of
 * room); a text above is encoded in place (encode_list). */
#define KEPT_MAX ((size_t)4 << 20)

struct kept_buf {
    size_t cap;
    uint32_t *ids;
};

static void kept_free(kept_buf *k) {
    if (k) free(k->ids);
    free(k);
}

/* A buffer of at least `need` ids (the kept one, or a new one), or NULL with
 * an exception set. */
static kept_buf *kept_take(CoreBPE *c, size_t need) {
    kept_buf *k = atomic_exchange(&c->kept, NULL);
    if (k && k->cap >= need) return k;
    kept_free(k);
    k = malloc(sizeof *k);
    size_t cap = need < 32768 ? 32768 : need;
    if (k && cap <= SIZE_MAX / 4 / sizeof *k->ids) {
        size_t bytes = out_bytes(cap * sizeof *k->ids);
        k->cap = bytes / sizeof *k->ids;
        if ((k->ids = ids_malloc(bytes))) return k;
    }
    free(k);
    PyErr_NoMemory();
    return NULL;
}

static void kept_put(CoreBPE *c, kept_buf *k) {
    kept_buf *none = NULL;
    if (k && (k->cap * sizeof *k->ids > out_bytes(KEPT_MAX * sizeof *k->ids) ||
              !atomic_compare_exchange_strong(&c->kept, &none, k)))
        kept_free(k);
}

/* Whether all of p[0..bytes) is in memory already (mincore): memory the
 * allocator gives again, which huge-page advice would only cut into
 * more mappings. */
static int resident(const void *p, size_t bytes) {
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0) return 0;
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(pg - 1), e = (uintptr_t)p + bytes;
    unsigned char vec[1024];
    while (a < e) {
        size_t pages = (e - a + (uintptr_t)pg - 1) / (uintptr_t)pg;
        if (pages > sizeof vec) pages = sizeof vec;
        if (mincore((void *)a, pages * (size_t)pg, vec)) return 0;
        for (size_t i = 0; i < pages; i++)
            if (!(vec[i] & 1)) return 0;
        a += pages * (uintptr_t)pg;
    }
    return 1;
}

/* Makes the heap memory p[0..bytes) resident, with the GIL, each 2 MB
 * around it a huge page (MADV_COLLAPSE keeps what is there): 1, or 0 when
 * a block cannot be made huge (it would fault page by page: the caller
 * takes a mapping of its own instead). The heap often ends inside the
 * last block: a block's worth more is asked of the allocator, which
 * extends the heap past it, and given back at once. Where huge pages are
 * off, the pages fault in once. */
static int warm_heap(void *p, size_t bytes) {
#ifdef MADV_HUGEPAGE
    if (!thp_on()) return 1;
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(HUGE_SZ - 1);
    uintptr_t e = ((uintptr_t)p + bytes + HUGE_SZ - 1) & ~(uintptr_t)(HUGE_SZ - 1);
    if (!mapped((void *)a)) return 0;
    void *more = NULL;
    if (!mapped((void *)(e - 1)) && (!(more = PyMem_Malloc(HUGE_SZ)) || !mapped((void *)(e - 1)))) {
        PyMem_Free(more);
        return 0;
    }
    int ok = 1;
    for (; ok && a < e; a += HUGE_SZ) {
        /* a block never touched faults in huge (and cannot be collapsed) */
        ok = !madvise((void *)a, HUGE_SZ, MADV_HUGEPAGE) &&
             (!touched((void *)a) || !madvise((void *)a, HUGE_SZ, MADV_COLLAPSE));
    }
    PyMem_Free(more);
    return ok;
#else
    (void)p;
    (void)bytes;
    return 1;
#endif
}

/* An item array for n items (room for cap, whole 2 MB less malloc's
 * header when big), with the GIL; NULL with an exception set. Memory the
 * allocator gives that is resident already is used as it is. Fresh memory
 * would fault page by page (glibc serves a size it saw freed from its
 * heap, untouched pages of small size): it is given back for a request
 * big enough to be mapped on its own, whose pages are huge from the first
 * (advise_huge), and the list gives back the room it does not use
 * (list_adopt). A list's memory is the allocator's once the list is
 * freed; the package cannot take it back. */
static PyObject **items_alloc(size_t n, size_t *cap) {
    if (n > (size_t)PY_SSIZE_T_MAX / 2 / sizeof(PyObject *)) {
        PyErr_NoMemory();
        return NULL;
    }
    size_t bytes = out_bytes((n ? n : 1) * sizeof(PyObject *));
    PyObject **it = PyMem_Malloc(bytes);
    if (!it) {
        PyErr_NoMemory();
        return NULL;
    }
    if (bytes >= BIG_OUT && !resident(it, n * sizeof *it)) {
        size_t big = out_bytes(MAPPED_SIZE);
        /* The last list on a mapping of its own is gone (the mapping with
         * it): the caller drops its lists, and the allocator serves this
         * size from its heap, where a freed list's memory stays. Made
         * resident once, it comes back warm call after call; left
         * untouched, it would be served and declined forever, each list a
         * fresh mapping. */
        uintptr_t last = atomic_load_explicit(&last_mapped, memory_order_relaxed);
        if (bytes < big && last && !mapped((void *)last) && warm_heap(it, n * sizeof *it)) {
            atomic_store_explicit(&last_mapped, 0, memory_order_relaxed);
        } else {
            PyObject **b = bytes < big ? PyMem_Malloc(big) : NULL;
            if (b) {
                PyMem_Free(it);
                it = b;
                bytes = big;
                atomic_store_explicit(&last_mapped, (uintptr_t)b, memory_order_relaxed);
            }
            advise_huge(it, bytes);
        }
    }
    *cap = bytes / sizeof *it;
    return it;
}

/* s[0..len) -> list of ints, len <= KEPT_MAX. */
static PyObject *encode_kept(CoreBPE *self, const char *s, size_t len, int flags) {
    kept_buf *k = kept_take(self, len);
    if (!k) return NULL;
    size_t n = 0;
    bpe_error err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    bpe_encoder *e = enc_take(self, len);
    rc = enc_encode(e, self->v, s, len, flags, k->ids, k->cap, &n, &err);
    enc_put(self, e);
    Py_END_ALLOW_THREADS
    PyObject *l = NULL;
    if (rc != BPE_OK) l = raise_bpe(rc, &err);
    else if (n * sizeof(PyObject *) < BIG_OUT) l = ids_to_list_cached(self, k->ids, n);
    else if ((l = PyList_New(0))) {
        id_list L = {NULL, 0, 0, NULL};
        L.items = items_alloc(n, &L.cap);
        if (!L.items) {
            Py_CLEAR(l);
        } else {
            uint32_t *counts = NULL;
#ifndef Py_GIL_DISABLED
            if (!PINNED && n >= COUNT_MIN && n <= UINT32_MAX) counts = counts_take(self);
#endif
            PyObject *const *ints = self->ints;
            const uint32_t *ids = k->ids;
            Py_BEGIN_ALLOW_THREADS
            if (counts)
                for (size_t i = 0; i < n; i++) {
                    counts[ids[i]]++;
                    L.items[i] = ints[ids[i]];
                }
            else
                for (size_t i = 0; i < n; i++) L.items[i] = ints[ids[i]];
            Py_END_ALLOW_THREADS
            L.n = n;
            take_refs(L.items, n, ints, counts, self->n_ints);
            counts_put(self, counts);
            l = list_adopt(l, &L, out_bytes(n * sizeof *L.items) / sizeof *L.items);
        }
    }
    kept_put(self, k);
    return l;
}

/* s[0..len) -> list of ints, for texts past the stack buffer. */
static PyObject *encode_any(CoreBPE *self, const char *s, size_t len, int flags) {
    return len <= KEPT_MAX && len <= self->part ? encode_kept(self, s, len, flags)
                                                : encode_list(self, s, len, flags);
}

/* A batch's num_threads, checked as tiktoken's thread pool does; -1 with
 * an exception set when it is not a positive int. */
static long batch_threads(PyObject *o) {
    long threads = PyLong_AsLong(o);
    if (threads == -1 && PyErr_Occurred()) return -1;
    if (threads <= 0) {
        PyErr_SetString(PyExc_ValueError, "max_workers must be greater than 0");
        return -1;
    }
    return threads;
}

static int check_flags(long flags) {
    if (FLAGS_OK(flags)) return 0;
    PyErr_SetString(PyExc_ValueError, "flags must be SPECIAL_ALLOW or SPECIAL_TEXT");
    return -1;
}

/* A call's flags argument; -1 with an exception set when it is not one. */
static int flags_arg(PyObject *o) {
    long flags = PyLong_AsLong(o);
    if (flags == -1 && PyErr_Occurred()) return -1;
    return check_flags(flags) ? -1 : (int)flags;
}

static const char *text_utf8(PyObject *text, Py_ssize_t *len) {
    if (!PyUnicode_Check(text)) {
        /* PyO3's words, as tiktoken raises them */
        PyErr_Format(PyExc_TypeError, "argument 'text': '%.100s' object cannot be converted to 'PyString'",
                     Py_TYPE(text)->tp_name);
        return NULL;
    }
    return PyUnicode_AsUTF8AndSize(text, len);   /* UnicodeEncodeError on surrogates */
}

/* A str's UTF-8, or the bytes of a contiguous bytes-like object, whose view
 * is then held in *view (PyBuffer_Release it; a zeroed view is a no-op). */
static const char *text_bytes(PyObject *o, Py_buffer *view, Py_ssize_t *len) {
    if (PyUnicode_Check(o)) return text_utf8(o, len);
    if (PyObject_GetBuffer(o, view, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    *len = view->len;
    return view->buf;
}

/* Short texts (the common per-call case) are encoded into a stack buffer. */
#define SMALL_TEXT 256

static PyObject *core_encode(CoreBPE *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "encode(text, flags) takes 2 arguments");
        return NULL;
    }
    int flags = flags_arg(args[1]);
    if (flags < 0) return NULL;
    Py_ssize_t len;
    const char *s = text_utf8(args[0], &len);
    if (!s) return NULL;
    if (len <= SMALL_TEXT) {
        uint32_t ids[SMALL_TEXT];
        size_t n;
        bpe_error err;
        int rc = bpe_encode(self->v, s, (size_t)len, flags, ids, NULL, SMALL_TEXT, &n, &err);
        if (rc != BPE_OK) return raise_bpe(rc, &err);
        return ids_to_list_cached(self, ids, n);
    }
    return encode_any(self, s, (size_t)len, flags);
}

static PyObject *core_encode_buffer(CoreBPE *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "encode_buffer(text, flags) takes 2 arguments");
        return NULL;
    }
    int flags = flags_arg(args[1]);
    if (flags < 0) return NULL;
    Py_ssize_t len;
    Py_buffer view = {0};
    const char *s = text_bytes(args[0], &view, &len);
    if (!s) return NULL;
    uint32_t *ids;
    size_t n;
    int rc = encode_ids(self, s, (size_t)len, flags, &ids, &n);
    PyBuffer_Release(&view);
    if (rc) return NULL;
    return u32buf_new(ids, n);
}

/* The library alone, for tests/bench/bench_python.sh: one bpe_encode of the
 * text (a str's UTF-8, or bytes-like) into the writable buffer `out` of
 * uint32, the GIL released, as tests/bench/bench_bpe_lib.c calls it; with
 * a true `kept`, one bpe_encoder_encode with an encoder of the CoreBPE's,
 * as the package's calls encode. Returns the number of tokens of the whole
 * text (more than len(out) when it does not fit; those are not written). */
static PyObject *core_encode_into(CoreBPE *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 && nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "encode_into(text, flags, out, kept=False) takes 3 or 4 arguments");
        return NULL;
    }
    int kept = nargs == 4 ? PyObject_IsTrue(args[3]) : 0;
    if (kept < 0) return NULL;
    int flags = flags_arg(args[1]);
    if (flags < 0) return NULL;
    Py_ssize_t len;
    Py_buffer text = {0}, out;
    const char *s = text_bytes(args[0], &text, &len);
    if (!s) return NULL;
    if (PyObject_GetBuffer(args[2], &out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&text);
        return NULL;
    }
    const char *f = out.format ? out.format : "B";
    if (*f == '@' || *f == '=' || *f == '<') f++;
    if (out.itemsize != 4 || !strchr("IL", f[0]) || f[0] == 0 || f[1]) {
        PyBuffer_Release(&out);
        PyBuffer_Release(&text);
        PyErr_SetString(PyExc_TypeError, "encode_into: out must be a contiguous buffer of uint32");
        return NULL;
    }
    size_t n = 0;
    bpe_error err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    if (kept) {
        bpe_encoder *e = enc_take(self, (size_t)len);
        rc = enc_encode(e, self->v, s, (size_t)len, flags, out.buf, (size_t)out.len / 4, &n, &err);
        enc_put(self, e);
    } else {
        rc = bpe_encode(self->v, s, (size_t)len, flags, out.buf, NULL, (size_t)out.len / 4, &n, &err);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out);
    PyBuffer_Release(&text);
    if (rc != BPE_OK) return raise_bpe(rc, &err);
    return PyLong_FromSize_t(n);
}

/* For tests: texts above `part` bytes are encoded in parts of about that
 * size (so that small texts take the paths of big ones). */
static PyObject *core_set_part(CoreBPE *self, PyObject *arg) {
    Py_ssize_t part = PyNumber_AsSsize_t(arg, PyExc_OverflowError);
    if (part == -1 && PyErr_Occurred()) return NULL;
    if (part < 1) {
        PyErr_SetString(PyExc_ValueError, "_set_part: a part is at least 1 byte");
        return NULL;
    }
    self->part = (size_t)part;
    Py_RETURN_NONE;
}

static PyObject *core_encode_bytes(CoreBPE *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "encode_bytes(data, flags) takes 2 arguments");
        return NULL;
    }
    int flags = flags_arg(args[1]);
    if (flags < 0) return NULL;
    if (PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "argument 'bytes': 'str' object cannot be converted to 'PyBytes'");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    PyObject *l = encode_any(self, view.buf, (size_t)view.len, flags);
    PyBuffer_Release(&view);
    return l;
}

/* ---- batches on threads of our own ---------------------------------------- */

/* Runs fn(arg) on nt threads, this one included (fewer when threads cannot
 * be started: the work is shared through arg, so any number finishes it).
 * Called without the GIL. */
static void run_threads(void *(*fn)(void *), void *arg, size_t nt) {
    pthread_t tid[256];
    size_t started = 0;
    if (nt > 256) nt = 256;
    for (size_t t = 1; t < nt; t++) {
        if (pthread_create(&tid[started], NULL, fn, arg) != 0) break;
        started++;
    }
    fn(arg);
    for (size_t t = 0; t < started; t++) pthread_join(tid[t], NULL);
}

/* Threads for `work` units of `per_thread` each, at most `threads`, `jobs`. */
static size_t thread_count(size_t work, size_t per_thread, long threads, size_t jobs) {
    size_t nt = 1 + work / per_thread;
    if (nt > (size_t)threads) nt = (size_t)threads;
    if (nt > jobs) nt = jobs;
    return nt ? nt : 1;
}

typedef struct {
    const char *s;
    size_t len;
    id_list L;
    int rc;
    bpe_error err;
} batch_job;

typedef struct {
    CoreBPE *core;
    int flags;
    batch_job *jobs;
    size_t n_jobs;
    PyObject *const *ints;
    size_t n_ints;
    atomic_size_t next;
} batch_pool;

static void *batch_worker(void *arg) {
    batch_pool *p = arg;
    bpe_encoder *e = NULL;
    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n_jobs) break;
        batch_job *j = &p->jobs[i];
        size_t n = 0;
        if (!e) e = enc_take(p->core, j->len);
        j->rc = enc_encode(e, p->core->v, j->s, j->len, p->flags, id_list_ids(&j->L), j->L.cap, &n, &j->err);
        if (j->rc == BPE_OK) id_list_widen(&j->L, n, p->ints, p->n_ints);
    }
    enc_put(p->core, e);
    return NULL;
}

/* Below this many bytes per extra thread, starting a thread costs more than
 * it saves. */
#define BYTES_PER_THREAD (64 * 1024)

static PyObject *core_encode_batch(CoreBPE *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "encode_batch(texts, flags, num_threads) takes 3 arguments");
        return NULL;
    }
    int flags = flags_arg(args[1]);
    if (flags < 0) return NULL;
    long threads = batch_threads(args[2]);
    if (threads < 0) return NULL;
    /* A tuple of our own: another thread cannot change it while the GIL is
     * released, and it keeps every str (and its UTF-8) alive. */
    PyObject *tup = PySequence_Tuple(args[0]);
    if (!tup) return NULL;
    Py_ssize_t m = PyTuple_GET_SIZE(tup);
    batch_job *jobs = calloc((size_t)(m ? m : 1), sizeof *jobs);
    if (!jobs) {
        Py_DECREF(tup);
        return PyErr_NoMemory();
    }
    PyObject *result = NULL;
    size_t total = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        Py_ssize_t len;
        const char *s = text_utf8(PyTuple_GET_ITEM(tup, i), &len);
        if (!s) goto done;
        jobs[i].s = s;
        jobs[i].len = (size_t)len;
        total += (size_t)len;
    }
    for (Py_ssize_t i = 0; i < m; i++)
        if (id_list_alloc(&jobs[i].L, jobs[i].len)) goto done;
    batch_pool pool = {self, flags, jobs, (size_t)m, self->ints, self->n_ints, 0};
    size_t nt = thread_count(total, BYTES_PER_THREAD, threads, (size_t)m);
    Py_BEGIN_ALLOW_THREADS
    run_threads(batch_worker, &pool, nt);
    Py_END_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < m; i++)
        if (jobs[i].rc != BPE_OK) {
            raise_bpe(jobs[i].rc, &jobs[i].err);
            goto done;
        }
    result = PyList_New(m);
    if (!result) goto done;
    for (Py_ssize_t i = 0; i < m; i++) {
        PyObject *l = id_list_finish(&jobs[i].L, self->ints, self->n_ints);
        if (!l) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, l);
    }
done:
    for (Py_ssize_t i = 0; i < m; i++) id_list_free(&jobs[i].L);
    free(jobs);
    Py_DECREF(tup);
    return result;
}

/* ---- decoding -------------------------------------------------------------- */

/* tiktoken's message for an id outside the vocabulary (a KeyError). */
static void raise_bad_id(uint32_t id) {
    PyObject *msg = PyUnicode_FromFormat("Invalid token for decoding: %u", (unsigned)id);
    if (msg) {
        PyErr_SetObject(PyExc_KeyError, msg);
        Py_DECREF(msg);
    }
}

/* One list of ids to decode: its size in bytes and first bad id (first
 * pass), then its bytes (second pass, into `out`). */
typedef struct {
    uint32_t *ids;
    size_t n;
    size_t total;
    size_t bad;   /* index of the first id outside the vocabulary; n if none */
    int ascii;    /* every byte below 0x80 */
    char *out;    /* NULL: not wanted */
} dec_job;

/* ascii: the vocabulary's per-id table, so that ASCII text (most of it)
 * is decoded straight into its str, with no bytes object in between. */
static void dec_size(const bpe *v, const unsigned char *ascii, dec_job *j) {
    size_t total = 0, k;
    int all = 1;
    for (k = 0; k < j->n; k++) {
        size_t l;
        if (!bpe_token_bytes(v, j->ids[k], &l)) break;
        total += l;
        all &= ascii[j->ids[k]];
    }
    j->total = total;
    j->bad = k;
    j->ascii = all;
}

static void dec_bytes(const bpe *v, dec_job *j) {
    if (!j->out) return;
    size_t got;
    bpe_error err;
    bpe_decode(v, j->ids, j->n, j->out, j->total, &got, &err);   /* ids checked by dec_size */
}

typedef struct {
    const bpe *v;
    const unsigned char *ascii;
    dec_job *jobs;
    size_t n_jobs;
    int pass;   /* 0: dec_size, 1: dec_bytes */
    atomic_size_t next;
} dec_pool;

static void *dec_worker(void *arg) {
    dec_pool *p = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n_jobs) break;
        if (p->pass == 0) dec_size(p->v, p->ascii, &p->jobs[i]);
        else dec_bytes(p->v, &p->jobs[i]);
    }
    return NULL;
}

/* tiktoken decodes with bytes.decode("utf-8", errors): its TypeError for
 * an errors that is not a str, raised only once the bytes are there. */
static PyObject *utf8_decode(PyObject *bytes, PyObject *errors) {
    if (!PyUnicode_Check(errors)) {
        PyErr_Format(PyExc_TypeError, "decode() argument 'errors' must be str, not %.100s",
                     errors == Py_None ? "None" : Py_TYPE(errors)->tp_name);
        return NULL;
    }
    const char *e = PyUnicode_AsUTF8(errors);
    if (!e) return NULL;
    return PyUnicode_DecodeUTF8(PyBytes_AS_STRING(bytes), PyBytes_GET_SIZE(bytes), e);
}

/* After dec_size, with the GIL: the object dec_bytes writes into (j->out)
 * and that becomes the result: a bytes object, or for str results (to_str)
 * of ASCII text the str itself (a fresh str may be filled before anyone
 * sees it). Other text goes through bytes and finish_str. */
static PyObject *dec_target(dec_job *j, int to_str) {
    if (j->total > (size_t)PY_SSIZE_T_MAX) return PyErr_NoMemory();
    PyObject *o;
    if (to_str && j->ascii) {
        o = PyUnicode_New((Py_ssize_t)j->total, 127);
        if (o) j->out = (char *)PyUnicode_1BYTE_DATA(o);
    } else {
        o = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)j->total);
        if (o) j->out = PyBytes_AS_STRING(o);
    }
    return o;
}

/* After dec_bytes: the str of a str result (errors as bytes.decode's). */
static PyObject *finish_str(PyObject *o, PyObject *errors) {
    if (!PyUnicode_Check(errors)) return utf8_decode(o, errors);   /* its TypeError */
    if (PyUnicode_Check(o)) return Py_NewRef(o);
    return utf8_decode(o, errors);
}

/* The bytes of ids into a new bytes object (or a str when errors is not
 * NULL: decoded as UTF-8 with that error handler). */
static PyObject *decode_ids(const CoreBPE *c, uint32_t *ids, size_t n, PyObject *errors) {
    dec_job j = {ids, n, 0, 0, 0, NULL};
    Py_BEGIN_ALLOW_THREADS
    dec_size(c->v, c->ascii, &j);
    Py_END_ALLOW_THREADS
    if (j.bad < n) {
        raise_bad_id(ids[j.bad]);
        return NULL;
    }
    PyObject *o = dec_target(&j, errors != NULL);
    if (!o) return NULL;
    Py_BEGIN_ALLOW_THREADS
    dec_bytes(c->v, &j);
    Py_END_ALLOW_THREADS
    if (!errors) return o;
    PyObject *s = finish_str(o, errors);
    Py_DECREF(o);
    return s;
}

static PyObject *core_decode_bytes(CoreBPE *self, PyObject *tokens) {
    uint32_t *ids;
    size_t n;
    if (ids_from_seq(tokens, &ids, &n, "tokens")) return NULL;
    PyObject *r = decode_ids(self, ids, n, NULL);
    free(ids);
    return r;
}

static PyObject *core_decode(CoreBPE *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "decode(tokens, errors) takes 2 arguments");
        return NULL;
    }
    uint32_t *ids;
    size_t n;
    if (ids_from_seq(args[0], &ids, &n, "tokens")) return NULL;
    PyObject *r = decode_ids(self, ids, n, args[1]);
    free(ids);
    return r;
}

/* Below this many tokens per extra thread, starting a thread costs more
 * than it saves. */
#define TOKENS_PER_THREAD (16 * 1024)

#if PY_VERSION_HEX >= 0x030C0000
#define SAVE_ERROR(e) ((e) = PyErr_GetRaisedException())
#define RESTORE_ERROR(e) PyErr_SetRaisedException(e)
#define ERROR_T PyObject *
#define ERROR_NONE NULL
#else
typedef struct { PyObject *t, *v, *tb; } saved_error;
#define SAVE_ERROR(e) PyErr_Fetch(&(e).t, &(e).v, &(e).tb)
#define RESTORE_ERROR(e) PyErr_Restore((e).t, (e).v, (e).tb)
#define ERROR_T saved_error
#define ERROR_NONE {NULL, NULL, NULL}
#endif

/* decode_batch(batch, errors, num_threads, to_str) -> list of str (bytes
 * when not to_str). Both
 * passes run on up to num_threads threads without the GIL. Errors as
 * tiktoken's thread pool gives them: the first failing list's, in order. */
static PyObject *core_decode_batch(CoreBPE *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "decode_batch(batch, errors, num_threads, to_str) takes 4 arguments");
        return NULL;
    }
    int to_str = PyObject_IsTrue(args[3]);
    if (to_str < 0) return NULL;
    PyObject *errors = to_str ? args[1] : NULL;
    long threads = batch_threads(args[2]);
    if (threads < 0) return NULL;
    PyObject *tup = PySequence_Tuple(args[0]);
    if (!tup) return NULL;
    Py_ssize_t m = PyTuple_GET_SIZE(tup);
    dec_job *jobs = calloc((size_t)(m ? m : 1), sizeof *jobs);
    PyObject **outs = calloc((size_t)(m ? m : 1), sizeof *outs);
    PyObject *result = NULL;
    ERROR_T pending = ERROR_NONE;
    int have_pending = 0;
    Py_ssize_t count = m;   /* lists converted */
    size_t total = 0;
    if (!jobs || !outs) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < m; i++) {
        if (ids_from_seq(PyTuple_GET_ITEM(tup, i), &jobs[i].ids, &jobs[i].n, "tokens")) {
            /* raised after the lists before it, which may fail first */
            SAVE_ERROR(pending);
            have_pending = 1;
            count = i;
            break;
        }
        total += jobs[i].n;
    }
    dec_pool pool = {self->v, self->ascii, jobs, (size_t)count, 0, 0};
    size_t nt = thread_count(total, TOKENS_PER_THREAD, threads, (size_t)count);
    Py_BEGIN_ALLOW_THREADS
    run_threads(dec_worker, &pool, nt);
    Py_END_ALLOW_THREADS
    /* Bytes objects up to the first list with a bad id. */
    Py_ssize_t stop = count;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (jobs[i].bad < jobs[i].n) {
            stop = i;
            break;
        }
        outs[i] = dec_target(&jobs[i], errors != NULL);
        if (!outs[i]) goto done;
    }
    pool.pass = 1;
    atomic_store(&pool.next, 0);
    pool.n_jobs = (size_t)stop;
    Py_BEGIN_ALLOW_THREADS
    run_threads(dec_worker, &pool, nt);
    Py_END_ALLOW_THREADS
    if (errors) {
        for (Py_ssize_t i = 0; i < stop; i++) {
            PyObject *s = finish_str(outs[i], errors);
            if (!s) goto done;
            Py_SETREF(outs[i], s);
        }
    }
    if (stop < count) {
        raise_bad_id(jobs[stop].ids[jobs[stop].bad]);
        goto done;
    }
    if (have_pending) {
        RESTORE_ERROR(pending);
        have_pending = 0;
        goto done;
    }
    result = PyList_New(m);
    if (!result) goto done;
    for (Py_ssize_t i = 0; i < m; i++) {
        PyList_SET_ITEM(result, i, outs[i]);
        outs[i] = NULL;
    }
done:
    if (have_pending) {
        /* another error came first */
#if PY_VERSION_HEX >= 0x030C0000
        Py_XDECREF(pending);
#else
        Py_XDECREF(pending.t);
        Py_XDECREF(pending.v);
        Py_XDECREF(pending.tb);
#endif
    }
    for (Py_ssize_t i = 0; jobs && i < m; i++) free(jobs[i].ids);
    for (Py_ssize_t i = 0; outs && i < m; i++) Py_XDECREF(outs[i]);
    free(jobs);
    free(outs);
    Py_DECREF(tup);
    return result;
}

static PyObject *core_token_bytes(CoreBPE *self, PyObject *token) {
    uint32_t id;
    if (id_from_obj(token, &id, "token")) return NULL;
    size_t l;
    const char *p = bpe_token_bytes(self->v, id, &l);
    if (!p) {
        /* tiktoken: KeyError(str(token)) */
        PyObject *k = PyUnicode_FromFormat("%u", (unsigned)id);
        if (k) {
            PyErr_SetObject(PyExc_KeyError, k);
            Py_DECREF(k);
        }
        return NULL;
    }
    return PyBytes_FromStringAndSize(p, (Py_ssize_t)l);
}

/* The bytes of every token, index = id. */
static PyObject *core_all_token_bytes(CoreBPE *self, PyObject *Py_UNUSED(arg)) {
    size_t nv = bpe_vocab_size(self->v);
    PyObject *l = PyList_New((Py_ssize_t)nv);
    if (!l) return NULL;
    for (size_t k = 0; k < nv; k++) {
        size_t len;
        const char *p = bpe_token_bytes(self->v, (uint32_t)k, &len);
        PyObject *b = PyBytes_FromStringAndSize(p, (Py_ssize_t)len);
        if (!b) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, (Py_ssize_t)k, b);
    }
    return l;
}

/* For tests: how encode_list fills a fresh item array (see filler). */
static PyObject *core_set_fill(CoreBPE *self, PyObject *arg) {
    static const char *const modes[] = {"auto", "off", "no-thread", "sync", "lazy", "always"};
    const char *m = PyUnicode_Check(arg) ? PyUnicode_AsUTF8(arg) : NULL;
    if (!m) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "_set_fill: a str");
        return NULL;
    }
    for (int i = 0; i < 6; i++)
        if (!strcmp(m, modes[i])) {
            self->fill = i;
            Py_RETURN_NONE;
        }
    PyErr_SetString(PyExc_ValueError, "_set_fill: 'auto', 'off', 'no-thread', 'sync', 'lazy' or 'always'");
    return NULL;
}

static PyObject *core_get_filled(CoreBPE *self, void *Py_UNUSED(c)) {
    return PyLong_FromLongLong(atomic_load(&self->filled));
}

static PyObject *core_get_encoders_made(CoreBPE *self, void *Py_UNUSED(c)) {
    return PyLong_FromSize_t(atomic_load(&self->enc_made));
}

static PyObject *core_get_n_vocab(CoreBPE *self, void *Py_UNUSED(c)) {
    return PyLong_FromSize_t(bpe_vocab_size(self->v));
}
static PyObject *core_get_eot(CoreBPE *self, void *Py_UNUSED(c)) {
    int32_t e = bpe_eot_id(self->v);
    if (e < 0) Py_RETURN_NONE;
    return PyLong_FromLong(e);
}
static PyObject *core_get_max_token_bytes(CoreBPE *self, void *Py_UNUSED(c)) {
    return PyLong_FromSize_t(bpe_max_token_bytes(self->v));
}

static PyMethodDef core_methods[] = {
    {"encode", (PyCFunction)(void (*)(void))core_encode, METH_FASTCALL,
     "encode(text, flags) -> list[int]: text (str) as UTF-8, flags SPECIAL_ALLOW or SPECIAL_TEXT."},
    {"encode_buffer", (PyCFunction)(void (*)(void))core_encode_buffer, METH_FASTCALL,
     "encode_buffer(text, flags) -> U32Buffer: as encode, ids in C memory (str or bytes-like)."},
    {"encode_bytes", (PyCFunction)(void (*)(void))core_encode_bytes, METH_FASTCALL,
     "encode_bytes(data, flags) -> list[int]: any bytes (invalid UTF-8 as byte tokens)."},
    {"encode_into", (PyCFunction)(void (*)(void))core_encode_into, METH_FASTCALL,
     "encode_into(text, flags, out, kept=False) -> int: the library alone (for benchmarks): one bpe_encode "
     "(kept: one bpe_encoder_encode with an encoder the CoreBPE keeps, as its own calls) into a writable "
     "uint32 buffer; returns the token count (the ids that fit are written)."},
    {"_set_part", (PyCFunction)core_set_part, METH_O,
     "_set_part(n): for tests, texts above n bytes are encoded in parts of about n bytes (default 64 MB)."},
    {"_set_fill", (PyCFunction)core_set_fill, METH_O,
     "_set_fill(mode): for tests, whether a text above 4 MB has a helper thread that faults its list's memory in"
     " and widens its ids: 'auto' (the default: where another core is likely idle), 'off', 'no-thread'"
     " (as if the thread could not be started), 'sync' (the encoder waits for the helper at every step) or 'lazy'"
     " (the helper widens nothing), 'always' ('auto' whatever the machine's load)."},
    {"encode_batch", (PyCFunction)(void (*)(void))core_encode_batch, METH_FASTCALL,
     "encode_batch(texts, flags, num_threads) -> list[list[int]] on up to num_threads threads."},
    {"decode_bytes", (PyCFunction)core_decode_bytes, METH_O, "decode_bytes(tokens) -> bytes."},
    {"decode", (PyCFunction)(void (*)(void))core_decode, METH_FASTCALL,
     "decode(tokens, errors) -> str: the bytes decoded as UTF-8 with that error handler."},
    {"decode_batch", (PyCFunction)(void (*)(void))core_decode_batch, METH_FASTCALL,
     "decode_batch(batch, errors, num_threads, to_str) -> list[str] (list[bytes] unless to_str) on threads."},
    {"token_bytes", (PyCFunction)core_token_bytes, METH_O,
     "token_bytes(id) -> bytes; KeyError(str(id)) for an id outside the vocabulary."},
    {"all_token_bytes", (PyCFunction)core_all_token_bytes, METH_NOARGS,
     "all_token_bytes() -> list[bytes], index = id."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef core_getset[] = {
    {"n_vocab", (getter)core_get_n_vocab, NULL, "Number of token ids.", NULL},
    {"eot", (getter)core_get_eot, NULL, "Id of <|endoftext|>, or None.", NULL},
    {"max_token_bytes", (getter)core_get_max_token_bytes, NULL, "Longest token in bytes.", NULL},
    {"_filled", (getter)core_get_filled, NULL,
     "For tests: the bytes the last helper thread of a text above 4 MB populated, -1 when none ran.", NULL},
    {"_encoders_made", (getter)core_get_encoders_made, NULL,
     "For tests: how many library encoders (bpe_encoder) this CoreBPE has made.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject CoreBPEType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gpt2in._gpt2in.CoreBPE",
    .tp_basicsize = sizeof(CoreBPE),
    .tp_dealloc = (destructor)core_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A loaded BPE vocabulary (libgpt2in's bpe). Made by gpt2() or load_mem().",
    .tp_methods = core_methods,
    .tp_getset = core_getset,
};

/* ---- embeddings ------------------------------------------------------------ */

static PyObject *raise_embed(int rc, const embed_error *err) {
    if (rc == EMBED_ERR_NOMEM) return PyErr_NoMemory();
    PyObject *type = rc == EMBED_ERR_IO ? PyExc_OSError
                   : rc == EMBED_ERR_NOTFOUND ? PyExc_KeyError
                   : rc == EMBED_ERR_ARG ? PyExc_TypeError
                   : PyExc_ValueError;
    PyErr_SetString(type, err->msg);
    return NULL;
}

/* A read-only (or writable) view of memory owned by another object, for
 * numpy.frombuffer: the owner stays alive while an array uses it. */
typedef struct {
    PyObject_HEAD
    PyObject *owner;
    void *data;
    Py_ssize_t len;
    int readonly;
} MemView;

static void memview_dealloc(MemView *self) {
    Py_XDECREF(self->owner);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int memview_getbuffer(MemView *self, Py_buffer *view, int flags) {
    return PyBuffer_FillInfo(view, (PyObject *)self, self->data, self->len, self->readonly, flags);
}

static PyBufferProcs memview_as_buffer = {(getbufferproc)memview_getbuffer, NULL};

static PyTypeObject MemViewType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gpt2in._gpt2in.MemView",
    .tp_basicsize = sizeof(MemView),
    .tp_dealloc = (destructor)memview_dealloc,
    .tp_as_buffer = &memview_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Bytes owned by another object (a mapped table); wrap with numpy.frombuffer.",
};

static PyObject *memview_new(PyObject *owner, const void *data, size_t len, int readonly) {
    MemView *m = PyObject_New(MemView, &MemViewType);
    if (!m) return NULL;
    m->owner = Py_NewRef(owner);
    m->data = (void *)data;
    m->len = (Py_ssize_t)len;
    m->readonly = readonly;
    return (PyObject *)m;
}

typedef struct {
    PyObject_HEAD
    embed_file *f;
    embed_table wte, wpe;
    int has_wpe;
    char *wte_name;
    float *train;   /* the F32 copy the optimiser steps, once one has */
} Embed;

static PyTypeObject EmbedType;

static void embed_dealloc(Embed *self) {
    free(self->train);
    free(self->wte_name);
    if (self->f) embed_close(self->f);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The table forward reads: the trained copy once there is one. */
static embed_table cur_wte(const Embed *e) {
    embed_table t = e->wte;
    if (e->train) {
        t.dtype = EMBED_F32;
        t.data = (const unsigned char *)e->train;
        t.file = NULL;
    }
    return t;
}

/* embed_open(path, tensor or None, positions: None (the file's, if any),
 * False (none) or a name) */
static PyObject *mod_embed_open(PyObject *Py_UNUSED(m), PyObject *args) {
    PyObject *path_obj, *tensor, *positions;
    if (!PyArg_ParseTuple(args, "O&OO:embed_open", PyUnicode_FSConverter, &path_obj, &tensor, &positions))
        return NULL;
    const char *tname = NULL, *pname = NULL;
    if (tensor != Py_None && !(tname = PyUnicode_AsUTF8(tensor))) {
        Py_DECREF(path_obj);
        return NULL;
    }
    int want_pos = positions != Py_False;
    if (positions != Py_None && positions != Py_False && !(pname = PyUnicode_AsUTF8(positions))) {
        Py_DECREF(path_obj);
        return NULL;
    }
    Embed *e = PyObject_New(Embed, &EmbedType);
    if (!e) {
        Py_DECREF(path_obj);
        return NULL;
    }
    e->f = NULL;
    e->has_wpe = 0;
    e->wte_name = NULL;
    e->train = NULL;
    embed_error err;
    int rc = EMBED_OK;
    const char *path = PyBytes_AS_STRING(path_obj);
    Py_BEGIN_ALLOW_THREADS
    e->f = embed_open(path, &err);
    Py_END_ALLOW_THREADS
    Py_DECREF(path_obj);
    if (!e->f) {
        /* embed_open returns no code; the Python side opened the file
         * first (OSError there), so this is a malformed file, or memory
         * ran out. */
        Py_DECREF(e);
        return raise_load(PyExc_ValueError, err.msg);
    }
    rc = embed_wte(e->f, tname, &e->wte, &err);
    if (rc) goto fail;
    for (size_t i = 0; i < embed_tensor_count(e->f); i++) {
        const embed_tensor *t = embed_tensor_at(e->f, i);
        if (t->data == e->wte.data && t->ndim == 2) {
            e->wte_name = strdup(t->name);
            break;
        }
    }
    if (want_pos) {
        rc = embed_wpe(e->f, pname, &e->wpe, &err);
        if (rc == EMBED_OK) {
            if (e->wpe.cols != e->wte.cols) {
                snprintf(err.msg, sizeof err.msg, "%s: the position table has %zu columns, the token table %zu",
                         embed_file_name(e->f), e->wpe.cols, e->wte.cols);
                rc = EMBED_ERR_SHAPE;
                goto fail;
            }
            e->has_wpe = 1;
        } else if (rc == EMBED_ERR_NOTFOUND && !pname) {
            rc = EMBED_OK;   /* no position table in the file: token embeddings only */
        } else {
            goto fail;
        }
    }
    return (PyObject *)e;
fail:
    Py_DECREF(e);
    return raise_embed(rc, &err);
}

/* a * b, or ValueError when it does not fit (counts from Python ints). */
static int mul_size(size_t a, size_t b, size_t *r) {
    if (__builtin_mul_overflow(a, b, r) || *r > (size_t)PY_SSIZE_T_MAX) {
        PyErr_Format(PyExc_ValueError, "sizes too large: %zu x %zu", a, b);
        return -1;
    }
    return 0;
}

/* A C-contiguous buffer of at least `count` items of `itemsize` bytes. */
static int get_buf(PyObject *o, Py_buffer *v, int writable, size_t itemsize, size_t count, const char *what) {
    size_t need;
    if (mul_size(itemsize, count, &need)) return -1;
    if (PyObject_GetBuffer(o, v, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0) return -1;
    if ((size_t)v->len < need) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, need %zu", what, v->len, need);
        PyBuffer_Release(v);
        return -1;
    }
    return 0;
}

/* forward(ids uint32 (B*T), B, T, pos0, out float32 (B*T*C)) */
static PyObject *embed_py_forward(Embed *self, PyObject *args) {
    PyObject *ids_o, *out_o;
    Py_ssize_t B, T, pos0;
    if (!PyArg_ParseTuple(args, "OnnnO:forward", &ids_o, &B, &T, &pos0, &out_o)) return NULL;
    if (B < 0 || T < 0 || pos0 < 0) {
        PyErr_SetString(PyExc_ValueError, "B, T and pos0 must be >= 0");
        return NULL;
    }
    size_t C = self->wte.cols, n, nC;
    if (mul_size((size_t)B, (size_t)T, &n) || mul_size(n, C, &nC)) return NULL;
    Py_buffer ib, ob;
    if (get_buf(ids_o, &ib, 0, 4, n, "ids")) return NULL;
    if (get_buf(out_o, &ob, 1, 4, nC, "out")) {
        PyBuffer_Release(&ib);
        return NULL;
    }
    embed_table wte = cur_wte(self);
    embed_error err;
    int rc = EMBED_OK;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t b = 0; b < B && rc == EMBED_OK; b++)
        rc = embed_forward((float *)ob.buf + (size_t)b * T * C, &wte, self->has_wpe ? &self->wpe : NULL,
                           (size_t)pos0, (const uint32_t *)ib.buf + (size_t)b * T, (size_t)T, &err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&ib);
    PyBuffer_Release(&ob);
    if (rc) return raise_embed(rc, &err);
    Py_RETURN_NONE;
}

/* backward_sparse(ids uint32 (N), N, dout float32 (N*C), rows uint32 (N),
 * grad float32 (N*C)) -> number of rows */
static PyObject *embed_py_backward_sparse(Embed *self, PyObject *args) {
    PyObject *ids_o, *dout_o, *rows_o, *grad_o;
    Py_ssize_t N;
    if (!PyArg_ParseTuple(args, "OnOOO:backward_sparse", &ids_o, &N, &dout_o, &rows_o, &grad_o)) return NULL;
    if (N < 0) {
        PyErr_SetString(PyExc_ValueError, "N must be >= 0");
        return NULL;
    }
    size_t C = self->wte.cols, NC;
    if (mul_size((size_t)N, C, &NC)) return NULL;
    Py_buffer ib, db, rb, gb;
    if (get_buf(ids_o, &ib, 0, 4, (size_t)N, "ids")) return NULL;
    if (get_buf(dout_o, &db, 0, 4, NC, "dout")) goto f1;
    if (get_buf(rows_o, &rb, 1, 4, (size_t)N, "rows")) goto f2;
    if (get_buf(grad_o, &gb, 1, 4, NC, "grad")) goto f3;
    uint32_t *scratch = malloc(((size_t)N ? (size_t)N : 1) * sizeof *scratch);
    if (!scratch) {
        PyErr_NoMemory();
        goto f4;
    }
    size_t n_rows = 0;
    embed_error err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = embed_backward_sparse(db.buf, ib.buf, (size_t)N, C, self->wte.rows, rb.buf, gb.buf, &n_rows, scratch,
                               &err);
    Py_END_ALLOW_THREADS
    free(scratch);
    PyBuffer_Release(&gb);
    PyBuffer_Release(&rb);
    PyBuffer_Release(&db);
    PyBuffer_Release(&ib);
    if (rc) return raise_embed(rc, &err);
    return PyLong_FromSize_t(n_rows);
f4:
    PyBuffer_Release(&gb);
f3:
    PyBuffer_Release(&rb);
f2:
    PyBuffer_Release(&db);
f1:
    PyBuffer_Release(&ib);
    return NULL;
}

/* backward_dense(ids uint32 (N), N, dout float32 (N*C), dwte float32 (V*C)) */
static PyObject *embed_py_backward_dense(Embed *self, PyObject *args) {
    PyObject *ids_o, *dout_o, *dw_o;
    Py_ssize_t N;
    if (!PyArg_ParseTuple(args, "OnOO:backward_dense", &ids_o, &N, &dout_o, &dw_o)) return NULL;
    if (N < 0) {
        PyErr_SetString(PyExc_ValueError, "N must be >= 0");
        return NULL;
    }
    size_t C = self->wte.cols, V = self->wte.rows, NC;
    if (mul_size((size_t)N, C, &NC)) return NULL;
    Py_buffer ib, db, wb;
    if (get_buf(ids_o, &ib, 0, 4, (size_t)N, "ids")) return NULL;
    if (get_buf(dout_o, &db, 0, 4, NC, "dout")) {
        PyBuffer_Release(&ib);
        return NULL;
    }
    if (get_buf(dw_o, &wb, 1, 4, V * C, "dwte")) {
        PyBuffer_Release(&db);
        PyBuffer_Release(&ib);
        return NULL;
    }
    embed_error err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = embed_backward_dense(wb.buf, V, db.buf, ib.buf, (size_t)N, C, &err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&wb);
    PyBuffer_Release(&db);
    PyBuffer_Release(&ib);
    if (rc) return raise_embed(rc, &err);
    Py_RETURN_NONE;
}

/* The F32 copy the optimiser steps (made from the table on first use). */
static int ensure_train(Embed *self) {
    if (self->train) return 0;
    embed_error err;
    int rc = embed_file_check(self->f, &err);  /* a truncated mapping would raise SIGBUS */
    if (rc) {
        raise_embed(rc, &err);
        return -1;
    }
    size_t V = self->wte.rows, C = self->wte.cols;
    float *w = malloc((V * C > 0 ? V * C : 1) * sizeof *w);
    if (!w) {
        PyErr_NoMemory();
        return -1;
    }
    /* With the GIL held: two threads' first steps must not both copy. */
    for (size_t r = 0; r < V; r++) embed_row(&self->wte, r, w + r * C);
    self->train = w;
    return 0;
}

/* sgd(rows uint32 (n), n, grad float32 (n*C), lr) */
static PyObject *embed_py_sgd(Embed *self, PyObject *args) {
    PyObject *rows_o, *grad_o;
    Py_ssize_t n;
    float lr;
    if (!PyArg_ParseTuple(args, "OnOf:sgd", &rows_o, &n, &grad_o, &lr)) return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "n must be >= 0");
        return NULL;
    }
    size_t C = self->wte.cols, nC;
    if (mul_size((size_t)n, C, &nC)) return NULL;
    Py_buffer rb, gb;
    if (get_buf(rows_o, &rb, 0, 4, (size_t)n, "rows")) return NULL;
    if (get_buf(grad_o, &gb, 0, 4, nC, "grad")) {
        PyBuffer_Release(&rb);
        return NULL;
    }
    if (ensure_train(self)) {
        PyBuffer_Release(&gb);
        PyBuffer_Release(&rb);
        return NULL;
    }
    embed_param p = {self->train, self->wte.rows, C};
    embed_error err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = embed_sgd(&p, rb.buf, gb.buf, (size_t)n, lr, &err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&gb);
    PyBuffer_Release(&rb);
    if (rc) return raise_embed(rc, &err);
    Py_RETURN_NONE;
}

/* adam(rows uint32 (n), n, grad float32 (n*C), m float32 (V*C), v float32
 * (V*C), lr, beta1, beta2, eps, step) -> the new step count */
static PyObject *embed_py_adam(Embed *self, PyObject *args) {
    PyObject *rows_o, *grad_o, *m_o, *v_o;
    Py_ssize_t n;
    double lr, b1, b2, eps;
    long long step;
    if (!PyArg_ParseTuple(args, "OnOOOddddL:adam", &rows_o, &n, &grad_o, &m_o, &v_o, &lr, &b1, &b2, &eps, &step))
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "n must be >= 0");
        return NULL;
    }
    size_t C = self->wte.cols, V = self->wte.rows, nC;
    if (mul_size((size_t)n, C, &nC)) return NULL;
    Py_buffer rb, gb, mb, vb;
    if (get_buf(rows_o, &rb, 0, 4, (size_t)n, "rows")) return NULL;
    if (get_buf(grad_o, &gb, 0, 4, nC, "grad")) goto a1;
    if (get_buf(m_o, &mb, 1, 4, V * C, "exp_avg")) goto a2;
    if (get_buf(v_o, &vb, 1, 4, V * C, "exp_avg_sq")) goto a3;
    if (ensure_train(self)) goto a4;
    embed_param p = {self->train, V, C};
    embed_adam a;
    embed_adam_init(&a, lr, mb.buf, vb.buf);
    a.beta1 = b1;
    a.beta2 = b2;
    a.eps = eps;
    a.step = step;
    embed_error err;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = embed_adam_step(&p, &a, rb.buf, gb.buf, (size_t)n, &err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&vb);
    PyBuffer_Release(&mb);
    PyBuffer_Release(&gb);
    PyBuffer_Release(&rb);
    if (rc) return raise_embed(rc, &err);
    return PyLong_FromLongLong(a.step);
a4:
    PyBuffer_Release(&vb);
a3:
    PyBuffer_Release(&mb);
a2:
    PyBuffer_Release(&gb);
a1:
    PyBuffer_Release(&rb);
    return NULL;
}

static PyObject *embed_py_metadata(Embed *self, PyObject *Py_UNUSED(a)) {
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    for (size_t i = 0; i < embed_metadata_count(self->f); i++) {
        const char *k, *v;
        embed_metadata_at(self->f, i, &k, &v);
        PyObject *vo = PyUnicode_DecodeUTF8(v, (Py_ssize_t)strlen(v), "replace");
        if (!vo || PyDict_SetItemString(d, k, vo) < 0) {
            Py_XDECREF(vo);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(vo);
    }
    return d;
}

/* wte_view(): the table's bytes (in the mapping) or, once trained, the F32
 * copy; read-only either way: only the optimiser (sgd, adam) writes the
 * trained copy, and an array over it cannot be made writable. */
static PyObject *embed_py_wte_view(Embed *self, PyObject *Py_UNUSED(a)) {
    size_t V = self->wte.rows, C = self->wte.cols;
    if (self->train) return memview_new((PyObject *)self, self->train, V * C * sizeof(float), 1);
    size_t bytes = V * C * (self->wte.dtype == EMBED_F32 ? 4 : 2);
    return memview_new((PyObject *)self, self->wte.data, bytes, 1);
}

static PyObject *embed_py_wpe_view(Embed *self, PyObject *Py_UNUSED(a)) {
    if (!self->has_wpe) Py_RETURN_NONE;
    size_t bytes = self->wpe.rows * self->wpe.cols * (self->wpe.dtype == EMBED_F32 ? 4 : 2);
    return memview_new((PyObject *)self, self->wpe.data, bytes, 1);
}

/* f32_copy(which: 0 = wte, 1 = wpe) -> MemView: the table as F32 (the
 * trained copy of wte once there is one) in new memory, exported read-only:
 * its owner (a bytearray) is reachable only through the view, so an array
 * over it cannot be made writable. */
static PyObject *embed_py_f32_copy(Embed *self, PyObject *args) {
    int which;
    if (!PyArg_ParseTuple(args, "i:f32_copy", &which)) return NULL;
    if (which && !self->has_wpe) {
        PyErr_SetString(PyExc_ValueError, "no position table");
        return NULL;
    }
    embed_table t = which ? self->wpe : cur_wte(self);
    embed_error err;
    int rc = t.file ? embed_file_check(self->f, &err) : EMBED_OK;  /* not the trained copy */
    if (rc) return raise_embed(rc, &err);
    PyObject *own = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)(t.rows * t.cols * sizeof(float)));
    if (!own) return NULL;
    float *out = (float *)PyByteArray_AS_STRING(own);
    Py_BEGIN_ALLOW_THREADS
    for (size_t r = 0; r < t.rows; r++) embed_row(&t, r, out + r * t.cols);
    Py_END_ALLOW_THREADS
    PyObject *mv = memview_new(own, out, t.rows * t.cols * sizeof(float), 1);
    Py_DECREF(own);
    return mv;
}

/* save(path): the file with the trained table (in the table's dtype)
 * replacing the token table; crash-safe (embed_save). */
static PyObject *embed_py_save(Embed *self, PyObject *args) {
    PyObject *path_obj, *meta = NULL;
    if (!PyArg_ParseTuple(args, "O&|O!:save", PyUnicode_FSConverter, &path_obj, &PyList_Type, &meta)) return NULL;
    const char *kv[8];
    size_t nkv = 0;
    if (meta) {
        Py_ssize_t nm = PyList_GET_SIZE(meta);
        if (nm % 2 || nm > 8) {
            Py_DECREF(path_obj);
            PyErr_SetString(PyExc_ValueError, "metadata: up to 4 key, value pairs");
            return NULL;
        }
        for (Py_ssize_t i = 0; i < nm; i++)
            if (!(kv[nkv++] = PyUnicode_AsUTF8(PyList_GET_ITEM(meta, i)))) {
                Py_DECREF(path_obj);
                return NULL;
            }
    }
    embed_out_tensor rep;
    void *conv = NULL;
    size_t nrep = 0;
    size_t V = self->wte.rows, C = self->wte.cols;
    if (self->train && self->wte_name) {
        rep.name = self->wte_name;
        rep.dtype = self->wte.dtype;
        rep.ndim = 2;
        rep.shape[0] = V;
        rep.shape[1] = C;
        if (self->wte.dtype == EMBED_F32) {
            rep.data = self->train;
        } else {
            uint16_t *h = malloc((V * C > 0 ? V * C : 1) * sizeof *h);
            if (!h) {
                Py_DECREF(path_obj);
                return PyErr_NoMemory();
            }
            for (size_t i = 0; i < V * C; i++)
                h[i] = self->wte.dtype == EMBED_F16 ? embed_f32_to_f16(self->train[i]) : embed_f32_to_bf16(self->train[i]);
            rep.data = conv = h;
        }
        nrep = 1;
    }
    embed_error err;
    int rc;
    const char *path = PyBytes_AS_STRING(path_obj);
    Py_BEGIN_ALLOW_THREADS
    rc = embed_save(path, self->f, nrep ? &rep : NULL, nrep, kv, nkv / 2, &err);
    Py_END_ALLOW_THREADS
    free(conv);
    Py_DECREF(path_obj);
    if (rc) return raise_embed(rc, &err);
    Py_RETURN_NONE;
}

static PyObject *embed_get_info(Embed *self, void *Py_UNUSED(c)) {
    return Py_BuildValue("{s:n,s:n,s:s,s:n,s:s,s:s,s:N,s:s}", "V", (Py_ssize_t)self->wte.rows, "C",
                         (Py_ssize_t)self->wte.cols, "dtype", embed_dtype_name(self->wte.dtype), "maxT",
                         (Py_ssize_t)(self->has_wpe ? self->wpe.rows : 0), "wpe_dtype",
                         self->has_wpe ? embed_dtype_name(self->wpe.dtype) : "", "path",
                         embed_file_name(self->f), "trained", PyBool_FromLong(self->train != NULL),
                         "tensor", self->wte_name ? self->wte_name : "");
}

static PyMethodDef embed_methods[] = {
    {"forward", (PyCFunction)embed_py_forward, METH_VARARGS, "forward(ids, B, T, pos0, out)"},
    {"backward_sparse", (PyCFunction)embed_py_backward_sparse, METH_VARARGS,
     "backward_sparse(ids, N, dout, rows, grad) -> n_rows"},
    {"backward_dense", (PyCFunction)embed_py_backward_dense, METH_VARARGS, "backward_dense(ids, N, dout, dwte)"},
    {"sgd", (PyCFunction)embed_py_sgd, METH_VARARGS, "sgd(rows, n, grad, lr)"},
    {"adam", (PyCFunction)embed_py_adam, METH_VARARGS,
     "adam(rows, n, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, step) -> step"},
    {"wte_view", (PyCFunction)embed_py_wte_view, METH_NOARGS, "wte_view() -> MemView"},
    {"metadata", (PyCFunction)embed_py_metadata, METH_NOARGS, "metadata() -> dict of the file's __metadata__"},
    {"wpe_view", (PyCFunction)embed_py_wpe_view, METH_NOARGS, "wpe_view() -> MemView or None"},
    {"f32_copy", (PyCFunction)embed_py_f32_copy, METH_VARARGS,
     "f32_copy(which: 0 wte, 1 wpe) -> read-only MemView of a new float32 copy"},
    {"save", (PyCFunction)embed_py_save, METH_VARARGS, "save(path, [key, value, ...])"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef embed_getset[] = {
    {"info", (getter)embed_get_info, NULL, "dict: V, C, dtype, maxT, wpe_dtype, path, trained, tensor", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject EmbedType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gpt2in._gpt2in.EmbedCore",
    .tp_basicsize = sizeof(Embed),
    .tp_dealloc = (destructor)embed_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A mapped safetensors embedding table (libgpt2in's embed). Made by embed_open().",
    .tp_methods = embed_methods,
    .tp_getset = embed_getset,
};

/* save_f32(path, [(name, array float32 2-D C-contiguous)], [key, value, ...]):
 * a new safetensors file, crash-safe (embed_save). */
static PyObject *mod_save_f32(PyObject *Py_UNUSED(m), PyObject *args) {
    PyObject *path_obj, *list, *meta;
    if (!PyArg_ParseTuple(args, "O&O!O!:save_f32", PyUnicode_FSConverter, &path_obj, &PyList_Type, &list,
                          &PyList_Type, &meta))
        return NULL;
    Py_ssize_t nt = PyList_GET_SIZE(list), nm = PyList_GET_SIZE(meta);
    embed_out_tensor *ts = calloc((size_t)nt + 1, sizeof *ts);
    Py_buffer *bufs = calloc((size_t)nt + 1, sizeof *bufs);
    const char **kv = calloc((size_t)nm + 1, sizeof *kv);
    Py_ssize_t got = 0;
    PyObject *ret = NULL;
    if (!ts || !bufs || !kv) {
        PyErr_NoMemory();
        goto done;
    }
    if (nm % 2) {
        PyErr_SetString(PyExc_ValueError, "metadata: key, value pairs");
        goto done;
    }
    for (Py_ssize_t i = 0; i < nm; i++)
        if (!(kv[i] = PyUnicode_AsUTF8(PyList_GET_ITEM(meta, i)))) goto done;
    for (; got < nt; got++) {
        PyObject *item = PyList_GET_ITEM(list, got);
        const char *name;
        PyObject *arr;
        if (!PyArg_ParseTuple(item, "sO", &name, &arr)) goto done;
        if (PyObject_GetBuffer(arr, &bufs[got], PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_ND) < 0) goto done;
        Py_buffer *b = &bufs[got];
        if (b->ndim != 2 || b->itemsize != 4 || !b->format || strcmp(b->format, "f")) {
            PyBuffer_Release(b);
            PyErr_Format(PyExc_TypeError, "%s: must be a 2-D float32 array", name);
            goto done;
        }
        ts[got].name = name;
        ts[got].dtype = EMBED_F32;
        ts[got].ndim = 2;
        ts[got].shape[0] = (uint64_t)b->shape[0];
        ts[got].shape[1] = (uint64_t)b->shape[1];
        ts[got].data = b->buf;
    }
    embed_error err;
    int rc;
    const char *path = PyBytes_AS_STRING(path_obj);
    Py_BEGIN_ALLOW_THREADS
    rc = embed_save(path, NULL, ts, (size_t)nt, kv, (size_t)nm / 2, &err);
    Py_END_ALLOW_THREADS
    if (rc) raise_embed(rc, &err);
    else ret = Py_NewRef(Py_None);
done:
    for (Py_ssize_t i = 0; i < got; i++) PyBuffer_Release(&bufs[i]);
    free(ts);
    free(bufs);
    free(kv);
    Py_DECREF(path_obj);
    return ret;
}

static PyObject *mod_gpt2(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(a)) {
    return core_wrap(bpe_gpt2());
}

static PyObject *mod_load_mem(PyObject *Py_UNUSED(m), PyObject *args) {
    Py_buffer enc, voc;
    const char *enc_name, *voc_name;
    if (!PyArg_ParseTuple(args, "y*y*ss:load_mem", &enc, &voc, &enc_name, &voc_name)) return NULL;
    bpe_error err;
    bpe *v;
    Py_BEGIN_ALLOW_THREADS
    v = bpe_load_mem(enc.buf, (size_t)enc.len, enc_name, voc.buf, (size_t)voc.len, voc_name, &err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&enc);
    PyBuffer_Release(&voc);
    if (!v) return raise_load(PyExc_ValueError, err.msg);
    return core_wrap(v);
}

/* The allocation fault hook of the library's test builds (-DGPT2IN_FAULTS,
 * bpe/alloc.h, as `make test-asan` builds it); NULL in a release, which has
 * none. _fault_set(at, sticky) -> allocations since the previous call: the
 * at-th allocation from now fails (sticky: and every one after it). */
extern long gpt2in_fault_set(long at, int sticky) __attribute__((weak, visibility("hidden")));

static PyObject *mod_fault_set(PyObject *Py_UNUSED(m), PyObject *args) {
    long at;
    int sticky;
    if (!PyArg_ParseTuple(args, "lp:_fault_set", &at, &sticky)) return NULL;
    return PyLong_FromLong(gpt2in_fault_set(at, sticky));
}

static PyMethodDef fault_methods[] = {
    {"_fault_set", mod_fault_set, METH_VARARGS,
     "_fault_set(at, sticky) -> int: test builds only: make the at-th library allocation fail (0: none)."},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef mod_methods[] = {
    {"gpt2", mod_gpt2, METH_NOARGS, "gpt2() -> CoreBPE: the vocabulary compiled into libgpt2in."},
    {"embed_open", mod_embed_open, METH_VARARGS,
     "embed_open(path, tensor, positions) -> EmbedCore (positions None: the file's, False: none, or a name)."},
    {"save_f32", mod_save_f32, METH_VARARGS,
     "save_f32(path, [(name, float32 2-D array)], [key, value, ...]): a safetensors file, crash-safe."},
    {"load_mem", mod_load_mem, METH_VARARGS,
     "load_mem(encoder_json, vocab_bpe, encoder_name, vocab_name) -> CoreBPE (ValueError on a bad file, "
     "MemoryError when memory runs out)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "gpt2in._gpt2in",
    "C core of the gpt2in package (use the gpt2in module, not this one).", -1, mod_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__gpt2in(void) {
    if (PyType_Ready(&U32BufferType) < 0 || PyType_Ready(&CoreBPEType) < 0 || PyType_Ready(&MemViewType) < 0 ||
        PyType_Ready(&EmbedType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    if (PyModule_AddObjectRef(m, "CoreBPE", (PyObject *)&CoreBPEType) < 0 ||
        PyModule_AddObjectRef(m, "U32Buffer", (PyObject *)&U32BufferType) < 0 ||
        PyModule_AddIntConstant(m, "SPECIAL_ALLOW", BPE_SPECIAL_ALLOW) < 0 ||
        PyModule_AddIntConstant(m, "SPECIAL_TEXT", BPE_SPECIAL_TEXT) < 0 ||
        PyModule_AddIntConstant(m, "PINNED_INTS", PINNED) < 0 ||
        (gpt2in_fault_set && PyModule_AddFunctions(m, fault_methods) < 0)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
