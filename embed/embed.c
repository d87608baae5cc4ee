/* embed.c - the embedding math: finding the tables in a file, the forward
 * row gather, the backward scatter (sparse and dense) and the optimiser
 * steps on touched rows (SGD, PyTorch's SparseAdam).
 *
 * Table data may be unaligned (a mapped safetensors file puts wte at an odd
 * offset), so it is only ever read with memcpy; outputs, gradients and
 * parameters are the caller's aligned float arrays. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "embed.h"
#include "st_internal.h"


/* ---- finding the tables ------------------------------------------------- */

static void shape_str(const embed_tensor *t, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%llu", i ? ", " : "",
                              (unsigned long long)t->shape[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

int embed_table_from_tensor(const embed_tensor *t, embed_table *out, embed_error *err) {
    if (!t || !out)
        return embed_fail(err, EMBED_ERR_ARG, "embed_table_from_tensor: NULL argument");
    char shp[160];
    shape_str(t, shp, sizeof shp);
    char q[128];
    const char *name = embed_st_quote(t->name ? t->name : "(unnamed)", q, sizeof q);
    if (t->dtype != EMBED_F32 && t->dtype != EMBED_F16 && t->dtype != EMBED_BF16 &&
        t->dtype != EMBED_Q8_0)
        return embed_fail(err, EMBED_ERR_DTYPE,
                       "tensor %s is %s %s: an embedding table must be F32, F16, BF16 or Q8_0",
                       name, embed_dtype_name(t->dtype), shp);
    if (t->ndim != 2)
        return embed_fail(err, EMBED_ERR_SHAPE,
                       "tensor %s is %s %s: an embedding table must be 2-D (rows, cols)", name,
                       embed_dtype_name(t->dtype), shp);
    if (t->dtype == EMBED_Q8_0 && t->shape[1] % 32)
        return embed_fail(err, EMBED_ERR_SHAPE,
                       "tensor %s is Q8_0 %s: its rows must be whole blocks of 32", name, shp);
    /* The file layer checked this already; re-check so a hand-made view
     * cannot make the lookups read past its data. */
    uint64_t rb = t->shape[1] > SIZE_MAX / 4 ? 0 : embed_row_bytes(t->dtype, (size_t)t->shape[1]);
    if ((t->shape[1] && !rb) || (rb && t->shape[0] > (t->end - t->begin) / rb))
        return embed_fail(err, EMBED_ERR_SHAPE, "tensor %s %s: data is only %llu bytes", name,
                       shp, (unsigned long long)(t->end - t->begin));
    out->dtype = t->dtype;
    out->rows = (size_t)t->shape[0];
    out->cols = (size_t)t->shape[1];
    out->data = t->data;
    out->file = NULL; /* a bare view: no file to pread from */
    return EMBED_OK;
}

size_t embed_table_row_bytes(const embed_table *tab) { return embed_row_bytes(tab->dtype, tab->cols); }

/* The usual names of a kind's token (which 0) and position (1) tables. */
static void default_names(const embed_file *f, int which, const char **a, const char **b) {
    static const char *const names[4][2][2] = {
        {{"wte.weight", "transformer.wte.weight"}, {"wpe.weight", "transformer.wpe.weight"}},
        {{"wte", NULL}, {"wpe", NULL}},
        {{"token_embd.weight", NULL}, {"position_embd.weight", NULL}},
        {{"array", NULL}, {NULL, NULL}},
    };
    embed_kind k = embed_file_kind(f);
    int i = k == EMBED_KIND_LLMC_MODEL ? 1 : k == EMBED_KIND_GGUF ? 2 : k == EMBED_KIND_NPY ? 3 : 0;
    *a = names[i][which][0];
    *b = names[i][which][1];
}

static int find_table(const embed_file *f, const char *name, int which, embed_table *out,
                      embed_error *err) {
    if (!f || !out)
        return embed_fail(err, EMBED_ERR_ARG, "embed_wte/embed_wpe: NULL argument");
    const embed_tensor *t = NULL;
    const char *def1, *def2;
    default_names(f, which, &def1, &def2);
    if (name) {
        t = embed_find(f, name);
        char q[128];
        if (!t)
            return embed_fail(err, EMBED_ERR_NOTFOUND, "no tensor named %s in the file",
                              embed_st_quote(name, q, sizeof q));
    } else if (!def1) {
        return embed_fail(err, EMBED_ERR_NOTFOUND,
                          "%s holds one table, the token table, and no position table",
                          embed_kind_desc(embed_file_kind(f)));
    } else {
        t = embed_find(f, def1);
        if (!t && def2)
            t = embed_find(f, def2);
        if (!t && def2)
            return embed_fail(err, EMBED_ERR_NOTFOUND,
                           "no tensor named '%s' or '%s' in the file (name one explicitly)", def1,
                           def2);
        if (!t)
            return embed_fail(err, EMBED_ERR_NOTFOUND,
                              "no tensor named '%s' in the file (name one explicitly)", def1);
    }
    int rc = embed_table_from_tensor(t, out, err);
    if (rc == EMBED_OK) out->file = f;
    /* llm.c pads wte to Vp rows; only the first V are tokens */
    if (rc == EMBED_OK && embed_file_kind(f) == EMBED_KIND_LLMC_MODEL && !strcmp(t->name, "wte")) {
        embed_info in;
        embed_file_info(f, &in);
        out->rows = (size_t)in.llmc[3];
    }
    return rc;
}

const char *embed_table_name(const embed_file *f, int positions) {
    const char *a, *b;
    default_names(f, positions ? 1 : 0, &a, &b);
    return a && !embed_find(f, a) && b && embed_find(f, b) ? b : a;
}

int embed_wte(const embed_file *f, const char *name, embed_table *out, embed_error *err) {
    return find_table(f, name, 0, out, err);
}

int embed_wpe(const embed_file *f, const char *name, embed_table *out, embed_error *err) {
    return find_table(f, name, 1, out, err);
}

/* ---- rows ---------------------------------------------------------------- */

static inline float bf16_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;  /* bf16 is the top half of an f32 */
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* A Q8_0 row: blocks of an F16 scale d and 32 int8 q; value = q * f32(d)
 * in float, as ggml's dequantize_row_q8_0. */
static void row_q8_0(const unsigned char *p, size_t C, float *dst, int add) {
    for (size_t b = 0; b < C / 32; b++, p += 34) {
        uint16_t h;
        memcpy(&h, p, 2);
        float d = embed_f16_to_f32(h);
        float *o = dst + 32 * b;
        for (int j = 0; j < 32; j++) {
            float v = (float)(int8_t)p[2 + j] * d;
            o[j] = add ? o[j] + v : v;
        }
    }
}

/* dst = row r of tab converted to F32, or dst += it when add (F16/BF16 and
 * Q8_0 tables, or a mix with F32). */
static void row_convert(const embed_table *tab, size_t r, float *dst, int add) {
    size_t C = tab->cols;
    if (tab->dtype == EMBED_F32) {
        const unsigned char *p = tab->data + r * C * 4;
        if (!add) {
            memcpy(dst, p, C * 4);
            return;
        }
        for (size_t c = 0; c < C; c++) {
            float x;
            memcpy(&x, p + 4 * c, 4);
            dst[c] += x;
        }
        return;
    }
    if (tab->dtype == EMBED_Q8_0) {
        row_q8_0(tab->data + r * embed_row_bytes(EMBED_Q8_0, C), C, dst, add);
        return;
    }
    const unsigned char *p = tab->data + r * C * 2;
    for (size_t c = 0; c < C; c++) {
        uint16_t h;
        memcpy(&h, p + 2 * c, 2);
        float v = tab->dtype == EMBED_BF16 ? bf16_to_f32(h) : embed_f16_to_f32(h);
        dst[c] = add ? dst[c] + v : v;
    }
}

void embed_row(const embed_table *tab, size_t r, float *dst) { row_convert(tab, r, dst, 0); }

/* dst = row a, or row a + row b (element-wise float adds: the same bits
 * as NumPy's wte[ids] + wpe[pos]); F32 rows at any address.
 *
 * Output rows are written once and not read again here. Where dst is
 * 16-byte aligned, streaming stores put them in memory without first
 * reading each output line into the cache (faster than memcpy per row for
 * outputs larger than the cache); forward_range fences them. */
static void row_out_f32(float *dst, const unsigned char *a, const unsigned char *b, size_t C) {
    size_t c = 0;
#ifdef __SSE2__
#define LOAD(p, c) _mm_loadu_ps((const float *)(const void *)((p) + 4 * (c)))
    if (((uintptr_t)dst & 15) == 0 && !b)
        for (; c + 16 <= C; c += 16) {
            __m128 x0 = LOAD(a, c), x1 = LOAD(a, c + 4), x2 = LOAD(a, c + 8), x3 = LOAD(a, c + 12);
            _mm_stream_ps(dst + c, x0);
            _mm_stream_ps(dst + c + 4, x1);
            _mm_stream_ps(dst + c + 8, x2);
            _mm_stream_ps(dst + c + 12, x3);
        }
    else if (((uintptr_t)dst & 15) == 0)
        for (; c + 16 <= C; c += 16) {
            __m128 x0 = LOAD(a, c), x1 = LOAD(a, c + 4), x2 = LOAD(a, c + 8), x3 = LOAD(a, c + 12);
            __m128 y0 = LOAD(b, c), y1 = LOAD(b, c + 4), y2 = LOAD(b, c + 8), y3 = LOAD(b, c + 12);
            _mm_stream_ps(dst + c, _mm_add_ps(x0, y0));
            _mm_stream_ps(dst + c + 4, _mm_add_ps(x1, y1));
            _mm_stream_ps(dst + c + 8, _mm_add_ps(x2, y2));
            _mm_stream_ps(dst + c + 12, _mm_add_ps(x3, y3));
        }
#undef LOAD
#endif
    if (!b) {
        memcpy(dst + c, a + 4 * c, (C - c) * 4);
        return;
    }
    for (; c < C; c++) {
        float x, y;
        memcpy(&x, a + 4 * c, 4);
        memcpy(&y, b + 4 * c, 4);
        dst[c] = x + y;
    }
}

/* ---- forward ------------------------------------------------------------- */

typedef struct {
    float *out;
    const embed_table *wte, *wpe;
    size_t pos0;
    const uint32_t *ids;
    size_t T;
    int fd;                /* >= 0: wte's rows are read from this file with pread */
    uint64_t data_off;     /* the file offset of wte's data */
    atomic_size_t claimed; /* blocks of tokens taken so far, by either thread */
    atomic_int failed;     /* set by the first pread that fails, which writes code, err */
    int code;
    embed_error err;
} fwd_job;

/* Rows are random: the hardware prefetcher cannot guess the next one, so
 * ask for the row EMBED_PF tokens ahead while copying this one.
 *
 * always_inline is needed: GCC 12 finds that a function whose only effect
 * is a prefetch has no side effects, marks it const and deletes every call
 * to it, so without it not one prefetch instruction was emitted. */
#define EMBED_PF 4
#define EMBED_INLINE static inline __attribute__((always_inline))

EMBED_INLINE void prefetch_bytes(const void *ptr, size_t bytes) {
    const unsigned char *p = ptr;
    for (size_t b = 0; b < bytes; b += 64)
        __builtin_prefetch(p + b);
    if (bytes)
        __builtin_prefetch(p + bytes - 1);
}

EMBED_INLINE void prefetch_row(const embed_table *tab, size_t r) {
    size_t bytes = embed_row_bytes(tab->dtype, tab->cols);
    prefetch_bytes(tab->data + r * bytes, bytes);
}

/* forward_range for a table in a file, reading each row with pread. Each
 * row goes through a small buffer that stays in cache: the kernel's copy
 * straight into a cold output row is much slower. The first failure is
 * kept in j. */
static void forward_pread(fwd_job *j, size_t t0, size_t t1) {
    const embed_table *w = j->wte;
    size_t C = w->cols, rb = embed_row_bytes(w->dtype, C);
    unsigned char *tmp = gpt2in_malloc(rb);
    embed_table row = {w->dtype, 1, C, tmp, NULL};
    embed_error err;
    int code = tmp ? EMBED_OK : embed_fail(&err, EMBED_ERR_NOMEM, "out of memory");
    for (size_t t = t0; t < t1 && !code && !atomic_load(&j->failed); t++) {
        uint64_t off = j->data_off + (uint64_t)j->ids[t] * rb;
        for (size_t got = 0; got < rb && !code;) {
            ssize_t n = pread(j->fd, tmp + got, rb - got, (off_t)(off + got));
            if (n > 0)
                got += (size_t)n;
            else if (n == 0 || errno != EINTR)
                code = embed_fail(&err, EMBED_ERR_IO, "%s: reading row %u of the table: %s",
                                  embed_file_name(w->file), j->ids[t],
                                  n < 0 ? strerror(errno) : "the file was truncated");
        }
        if (code) break;
        float *o = j->out + t * C;
        embed_row(&row, 0, o);
        if (j->wpe) row_convert(j->wpe, j->pos0 + t, o, 1);
    }
    if (code && !atomic_exchange(&j->failed, 1)) j->code = code, j->err = err;
    free(tmp);
}

/* Tokens [t0, t1) of j's T. */
static void forward_range(fwd_job *j, size_t t0, size_t t1) {
    if (j->fd >= 0) {
        forward_pread(j, t0, t1);
        return;
    }
    size_t C = j->wte->cols;
    for (size_t t = t0; t < t1; t++) {
        float *o = j->out + t * C;
        if (t + EMBED_PF < j->T)
            prefetch_row(j->wte, j->ids[t + EMBED_PF]);
        if (j->wte->dtype == EMBED_F32 && (!j->wpe || j->wpe->dtype == EMBED_F32)) {
            row_out_f32(o, j->wte->data + (size_t)j->ids[t] * C * 4,
                        j->wpe ? j->wpe->data + (j->pos0 + t) * C * 4 : NULL, C);
            continue;
        }
        embed_row(j->wte, j->ids[t], o);
        if (j->wpe)
            row_convert(j->wpe, j->pos0 + t, o, 1);
    }
#ifdef __SSE2__
    _mm_sfence(); /* the streaming stores are visible before the thread says it is done */
#endif
}

/* Two threads claim blocks of tokens until none is left, one from the front
 * and one from the back, rather than taking fixed halves: a thread that
 * starts late (a busy machine can take a good part of a millisecond to run
 * it) then does less, instead of keeping the other waiting. Each still
 * writes one contiguous stretch of the output: blocks taken in turns from
 * one counter interleave the two threads' stores, which was slower. */
#define EMBED_FWD_BLOCK 256

static void forward_worker(fwd_job *j, int from_back) {
    size_t blocks = (j->T + EMBED_FWD_BLOCK - 1) / EMBED_FWD_BLOCK;
    for (size_t mine = 0; atomic_fetch_add(&j->claimed, 1) < blocks; mine++) {
        size_t t0 = (from_back ? blocks - 1 - mine : mine) * EMBED_FWD_BLOCK;
        forward_range(j, t0, t0 + EMBED_FWD_BLOCK < j->T ? t0 + EMBED_FWD_BLOCK : j->T);
    }
}

static void *forward_thread(void *arg) {
    forward_worker(arg, 1);
    return NULL;
}

/* Below this many output bytes a second thread costs more than it saves
 * (also for rows read with pread: with 64 of them, twice as many system
 * calls at once did not make up for starting a thread). */
#define EMBED_FWD_THREAD_BYTES ((size_t)1 << 20)

int embed_forward(float *out, const embed_table *wte, const embed_table *wpe, size_t pos0,
                  const uint32_t *ids, size_t T, embed_error *err) {
    if (!wte || (T && (!out || !ids)))
        return embed_fail(err, EMBED_ERR_ARG, "embed_forward: NULL argument");
    size_t C = wte->cols;
    if (wpe && wpe->cols != C)
        return embed_fail(err, EMBED_ERR_SHAPE,
                       "embed_forward: wte has %zu columns but wpe has %zu", C, wpe->cols);
    /* Validate everything first, so an error leaves out untouched. */
    for (size_t t = 0; t < T; t++)
        if (ids[t] >= wte->rows)
            return embed_fail(err, EMBED_ERR_ID,
                           "token id %u at index %zu is out of range (vocabulary size %zu)",
                           ids[t], t, wte->rows);
    if (wpe && T && (pos0 >= wpe->rows || T > wpe->rows - pos0)) {
        size_t t = pos0 >= wpe->rows ? 0 : wpe->rows - pos0;
        return embed_fail(err, EMBED_ERR_ID,
                       "position %zu (token index %zu) is out of range (%zu positions)",
                       pos0 + t, t, wpe->rows);
    }
    /* a truncated file would raise SIGBUS at the first row past its end */
    int rc = embed_file_check(wte->file, err);
    if (!rc && wpe && wpe->file != wte->file) rc = embed_file_check(wpe->file, err);
    if (rc) return rc;
    fwd_job job = {.out = out, .wte = wte, .wpe = wpe, .pos0 = pos0, .ids = ids, .T = T, .fd = -1};
    if (wte->file)
        job.fd = embed_st_pread_fd(wte->file, wte->data, T, wte->rows / 16, &job.data_off);
    if (T >= 2 && T * C * sizeof(float) >= EMBED_FWD_THREAD_BYTES) {
        /* Two threads: one core alone does not saturate memory bandwidth,
         * nor does it make pread's system calls as fast as two. */
        pthread_t th;
        int helped = pthread_create(&th, NULL, forward_thread, &job) == 0;
        forward_worker(&job, 0);  /* all of it, if there is no second thread */
        if (helped) pthread_join(th, NULL);
    } else {
        forward_range(&job, 0, T);
    }
    if (atomic_load(&job.failed)) {
        if (err) *err = job.err;
        return job.code;
    }
    return EMBED_OK;
}

/* ---- backward ------------------------------------------------------------ */

static int check_ids(const uint32_t *ids, size_t T, size_t V, embed_error *err) {
    for (size_t t = 0; t < T; t++)
        if (ids[t] >= V)
            return embed_fail(err, EMBED_ERR_ID,
                           "token id %u at index %zu is out of range (vocabulary size %zu)",
                           ids[t], t, V);
    return EMBED_OK;
}

/* Stable LSD radix sort of token indices by id, 11 bits a pass (one pass for
 * ids below 2048, two below 2^22): idx[] holds 0..T-1 and ends sorted by
 * (ids[t], t); tmp is T more slots. Returns the array holding the result
 * (idx or tmp). O(T), where a comparison sort was an eighth of a step. */
static uint32_t *sort_by_id(const uint32_t *ids, uint32_t *idx, uint32_t *tmp, size_t T,
                            uint32_t max_id) {
    enum { BITS = 11, BUCKETS = 1 << BITS };
    uint32_t *src = idx, *dst = tmp;
    for (unsigned shift = 0; shift == 0 || (shift < 32 && max_id >> shift); shift += BITS) {
        uint32_t start[BUCKETS] = {0};
        for (size_t i = 0; i < T; i++)
            start[ids[src[i]] >> shift & (BUCKETS - 1)]++;
        uint32_t sum = 0;
        for (size_t b = 0; b < BUCKETS; b++) {
            uint32_t c = start[b];
            start[b] = sum;
            sum += c;
        }
        for (size_t i = 0; i < T; i++)
            dst[start[ids[src[i]] >> shift & (BUCKETS - 1)]++] = src[i];
        uint32_t *x = src;
        src = dst;
        dst = x;
    }
    return src;
}

/* The token indices sorted by (id, t) in idx (T slots; tmp is T more), or
 * NULL when ids are already ascending (no permutation needed). */
static const uint32_t *token_order(const uint32_t *ids, size_t T, uint32_t *idx, uint32_t *tmp) {
    int sorted = 1;
    uint32_t max_id = 0;
    for (size_t t = 0; t < T; t++) {
        if (t && ids[t - 1] > ids[t]) sorted = 0;
        if (ids[t] > max_id) max_id = ids[t];
    }
    if (sorted)
        return NULL;
    for (size_t t = 0; t < T; t++)
        idx[t] = (uint32_t)t;
    uint32_t *res = sort_by_id(ids, idx, tmp, T, max_id);
    if (res != idx)
        memcpy(idx, res, T * sizeof *idx);
    return idx;
}

/* dwte rows: distinct ids ascending, each row's dout summed in token order
 * onto a zero, as PyTorch's dense embedding backward does (so a row's sum is
 * never -0.0: 0 + -0 is +0). dout (T,C), ids (T) -> rows (n), grad (n,C). */
int embed_backward_sparse(const float *dout, const uint32_t *ids, size_t T, size_t C,
                          size_t V, uint32_t *rows, float *grad, size_t *n_rows,
                          uint32_t *scratch, embed_error *err) {
    if (!n_rows || (T && (!dout || !ids || !rows || !grad || !scratch)))
        return embed_fail(err, EMBED_ERR_ARG, "embed_backward_sparse: NULL argument");
    *n_rows = 0;
    if (T > UINT32_MAX)
        return embed_fail(err, EMBED_ERR_ARG, "embed_backward_sparse: T = %zu is too large", T);
    int rc = check_ids(ids, T, V, err);
    if (rc)
        return rc;
    /* rows is free until the walk below: it is the merge buffer. */
    const uint32_t *order = token_order(ids, T, scratch, rows);
    size_t n = 0;
    for (size_t i = 0; i < T;) {
        size_t t = order ? order[i] : i;
        uint32_t id = ids[t];
        float *g = grad + n * C;
        const float *d0 = dout + t * C;
        for (size_t c = 0; c < C; c++)
            g[c] = 0.0f + d0[c];
        for (i++; i < T; i++) {
            size_t u = order ? order[i] : i;
            if (ids[u] != id)
                break;
            const float *d = dout + u * C;
            for (size_t c = 0; c < C; c++)
                g[c] += d[c];
        }
        rows[n++] = id;
    }
    *n_rows = n;
    return EMBED_OK;
}

/* dwte (V,C) += scatter of dout (T,C) by ids, in token order. */
int embed_backward_dense(float *dwte, size_t V, const float *dout, const uint32_t *ids,
                         size_t T, size_t C, embed_error *err) {
    if (T && (!dwte || !dout || !ids))
        return embed_fail(err, EMBED_ERR_ARG, "embed_backward_dense: NULL argument");
    int rc = check_ids(ids, T, V, err);
    if (rc)
        return rc;
    for (size_t t = 0; t < T; t++) {
        float *g = dwte + (size_t)ids[t] * C;
        const float *d = dout + t * C;
        for (size_t c = 0; c < C; c++)
            g[c] += d[c];
    }
    return EMBED_OK;
}

/* dwpe (maxT,C) rows pos0.. += dout (T,C): positions are distinct, no sort. */
int embed_backward_positions(float *dwpe, size_t maxT, size_t pos0, const float *dout,
                             size_t T, size_t C, embed_error *err) {
    if (T && (!dwpe || !dout))
        return embed_fail(err, EMBED_ERR_ARG, "embed_backward_positions: NULL argument");
    if (T && (pos0 >= maxT || T > maxT - pos0)) {
        size_t t = pos0 >= maxT ? 0 : maxT - pos0;
        return embed_fail(err, EMBED_ERR_ID,
                       "position %zu (token index %zu) is out of range (%zu positions)",
                       pos0 + t, t, maxT);
    }
    float *g = dwpe + pos0 * C;
    for (size_t i = 0; i < T * C; i++)
        g[i] += dout[i];
    return EMBED_OK;
}

/* ---- optimisers ---------------------------------------------------------- */

static int check_rows(const embed_param *p, const uint32_t *rows, size_t n, const char *fn,
                      embed_error *err) {
    if (!p || (n && (!p->w || !rows)))
        return embed_fail(err, EMBED_ERR_ARG, "%s: NULL argument", fn);
    for (size_t i = 0; i < n; i++)
        if (rows[i] >= p->rows)
            return embed_fail(err, EMBED_ERR_ID,
                           "%s: row %u at index %zu is out of range (%zu rows)", fn, rows[i], i,
                           p->rows);
    return EMBED_OK;
}

/* w[rows[i]] -= lr * grad[i], rounded as PyTorch's CPU kernel does it:
 * w.add_(g, alpha=-lr) is one fused multiply-add, fmaf(-lr, g, w). fmaf is
 * correctly rounded everywhere; the FMA-instruction build of the loop is
 * only a faster way to the same bits. z is added to g first: -0.0f changes
 * nothing; +0.0f turns a -0.0 of dout into the +0.0 a dense gradient holds
 * (the fused backward steps a row used once straight from dout). */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define EMBED_FMA_DISPATCH 1
#include <immintrin.h>
__attribute__((target("avx2,fma"))) static void sgd_rows_fma(float *w, const float *g, size_t C,
                                                              float neg_lr, float z) {
    size_t c = 0;
    __m256 a = _mm256_set1_ps(neg_lr), zv = _mm256_set1_ps(z);
    for (; c + 8 <= C; c += 8)
        _mm256_storeu_ps(w + c, _mm256_fmadd_ps(a, _mm256_add_ps(_mm256_loadu_ps(g + c), zv),
                                                _mm256_loadu_ps(w + c)));
    for (; c < C; c++)
        w[c] = fmaf(neg_lr, g[c] + z, w[c]);
}
#endif

static void sgd_rows_plain(float *w, const float *g, size_t C, float neg_lr, float z) {
    for (size_t c = 0; c < C; c++)
        w[c] = fmaf(neg_lr, g[c] + z, w[c]);
}

int embed_sgd(embed_param *p, const uint32_t *rows, const float *grad, size_t n, float lr,
              embed_error *err) {
    int rc = check_rows(p, rows, n, "embed_sgd", err);
    if (rc)
        return rc;
    void (*row_fn)(float *, const float *, size_t, float, float) = sgd_rows_plain;
#ifdef EMBED_FMA_DISPATCH
    if (__builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2"))
        row_fn = sgd_rows_fma;
#endif
    size_t C = p->cols;
    for (size_t i = 0; i < n; i++)
        row_fn(p->w + (size_t)rows[i] * C, grad + i * C, C, -lr, -0.0f);
    return EMBED_OK;
}

/* Sparse backward and SGD in one pass: no (n,C) gradient is written. A row
 * used once is stepped straight from dout, in token order (dout is read
 * front to back); the tokens of a repeated id are summed in token order
 * first (a sum that is -0.0 becomes +0.0 with the +0.0f, as one started on
 * a zero would), so the bits equal embed_backward_sparse + embed_sgd. The two kinds
 * touch different rows, so two threads share the work by claiming blocks
 * of each, with no row touched by both. */
typedef struct {
    embed_param *p;
    const float *dout;
    const uint32_t *ids;
    const uint32_t *order;  /* tokens sorted by (id, t); NULL: ids ascending */
    const uint8_t *once;    /* once[t]: ids[t] occurs only at t */
    size_t T;
    float neg_lr;
    void (*row_fn)(float *, const float *, size_t, float, float);
    atomic_size_t next_single, next_group;
    atomic_int status;
} bsgd_job;

static inline size_t bsgd_tok(const bsgd_job *j, size_t i) { return j->order ? j->order[i] : i; }

/* Rows used once, tokens [t0, t1). */
static void bsgd_singles(const bsgd_job *j, size_t t0, size_t t1) {
    size_t C = j->p->cols;
    for (size_t t = t0; t < t1; t++) {
        if (!j->once[t]) continue;
        if (t + EMBED_PF < j->T)
            prefetch_bytes(j->p->w + (size_t)j->ids[t + EMBED_PF] * C, C * sizeof(float));
        j->row_fn(j->p->w + (size_t)j->ids[t] * C, j->dout + t * C, C, j->neg_lr, 0.0f);
    }
}

/* Repeated ids whose first token in sorted order lies in [i0, i1). */
static void bsgd_groups(bsgd_job *j, size_t i0, size_t i1, float *sum) {
    size_t C = j->p->cols;
    size_t i = i0;
    while (i < i1 && i > 0 && j->ids[bsgd_tok(j, i)] == j->ids[bsgd_tok(j, i - 1)]) i++;
    while (i < i1) {
        size_t t = bsgd_tok(j, i);
        if (j->once[t]) {
            i++;
            continue;
        }
        uint32_t id = j->ids[t];
        memcpy(sum, j->dout + t * C, C * sizeof *sum);
        size_t k = i + 1;
        for (; k < j->T && j->ids[bsgd_tok(j, k)] == id; k++) {
            const float *d = j->dout + bsgd_tok(j, k) * C;
            for (size_t c = 0; c < C; c++)
                sum[c] += d[c];
        }
        j->row_fn(j->p->w + (size_t)id * C, sum, C, j->neg_lr, 0.0f);
        i = k;
    }
}

/* Blocks of tokens the two threads claim in turns: each token's row update
 * is independent of its neighbours', so here there is no stretch to keep. */
#define EMBED_BLOCK 64

static void bsgd_worker(bsgd_job *j) {
    size_t C = j->p->cols, b;
    float stack_sum[1024], *sum = C <= 1024 ? stack_sum : gpt2in_malloc(C * sizeof *sum);
    while ((b = atomic_fetch_add(&j->next_single, EMBED_BLOCK)) < j->T)
        bsgd_singles(j, b, b + EMBED_BLOCK < j->T ? b + EMBED_BLOCK : j->T);
    while ((b = atomic_fetch_add(&j->next_group, EMBED_BLOCK)) < j->T) {
        if (!sum) {
            atomic_store(&j->status, EMBED_ERR_NOMEM);
            break;
        }
        bsgd_groups(j, b, b + EMBED_BLOCK < j->T ? b + EMBED_BLOCK : j->T, sum);
    }
    if (sum != stack_sum)
        free(sum);
}

static void *bsgd_thread(void *arg) {
    bsgd_worker(arg);
    return NULL;
}

int embed_backward_sgd(embed_param *p, const float *dout, const uint32_t *ids, size_t T,
                       float lr, uint32_t *scratch, embed_error *err) {
    if (!p || (T && (!p->w || !dout || !ids || !scratch)))
        return embed_fail(err, EMBED_ERR_ARG, "embed_backward_sgd: NULL argument");
    if (T > UINT32_MAX)
        return embed_fail(err, EMBED_ERR_ARG, "embed_backward_sgd: T = %zu is too large", T);
    int rc = check_ids(ids, T, p->rows, err);
    if (rc)
        return rc;
    bsgd_job j = {p, dout, ids, token_order(ids, T, scratch, scratch + T), NULL, T, -lr,
                  sgd_rows_plain, 0, 0, 0};
#ifdef EMBED_FMA_DISPATCH
    if (__builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2"))
        j.row_fn = sgd_rows_fma;
#endif
    /* scratch + T is free once the order is known: the once flags. */
    uint8_t *once = (uint8_t *)(scratch + T);
    for (size_t i = 0; i < T; i++) {
        uint32_t id = ids[bsgd_tok(&j, i)];
        once[bsgd_tok(&j, i)] = (i == 0 || ids[bsgd_tok(&j, i - 1)] != id) &&
                                (i + 1 == T || ids[bsgd_tok(&j, i + 1)] != id);
    }
    j.once = once;
    pthread_t th;
    int helped = T * p->cols * sizeof(float) >= EMBED_FWD_THREAD_BYTES &&
                 pthread_create(&th, NULL, bsgd_thread, &j) == 0;
    bsgd_worker(&j);
    if (helped) pthread_join(th, NULL);
    if (atomic_load(&j.status))
        return embed_fail(err, EMBED_ERR_NOMEM, "embed_backward_sgd: out of memory");
    return EMBED_OK;
}

void embed_adam_init(embed_adam *a, double lr, float *m, float *v) {
    a->lr = lr;
    a->beta1 = 0.9;
    a->beta2 = 0.999;
    a->eps = 1e-8;
    a->m = m;
    a->v = v;
    a->step = 0;
}

/* torch.optim.SparseAdam (torch/optim/_functional.py, sparse_adam), with
 * its float operations in its order: the scalars are Python doubles rounded
 * to float where they meet a float tensor.
 *   um = (g - m) * (1-b1);  m' = m + um
 *   uv = (g*g - v) * (1-b2); v' = v + uv
 *   w' = w + (-step_size) * (m' / (sqrt(v') + eps)),
 *   step_size = lr * sqrt(1 - b2^step) / (1 - b1^step)   (in double) */
int embed_adam_step(embed_param *p, embed_adam *a, const uint32_t *rows, const float *grad,
                    size_t n, embed_error *err) {
    int rc = check_rows(p, rows, n, "embed_adam_step", err);
    if (rc)
        return rc;
    if (!a || (n && (!a->m || !a->v)))
        return embed_fail(err, EMBED_ERR_ARG, "embed_adam_step: NULL moment buffers");
    a->step++;
    double bc1 = 1.0 - pow(a->beta1, (double)a->step);
    double bc2 = 1.0 - pow(a->beta2, (double)a->step);
    double step_size = a->lr * sqrt(bc2) / bc1;
    float omb1 = (float)(1.0 - a->beta1), omb2 = (float)(1.0 - a->beta2);
    float eps = (float)a->eps, neg_step = (float)-step_size;
    size_t C = p->cols;
    for (size_t i = 0; i < n; i++) {
        size_t off = (size_t)rows[i] * C;
        float *w = p->w + off, *m = a->m + off, *v = a->v + off;
        const float *g = grad + i * C;
        for (size_t c = 0; c < C; c++) {
            float gc = g[c], mo = m[c], vo = v[c];
            float mn = mo + (gc - mo) * omb1;
            float vn = vo + (gc * gc - vo) * omb2;
            m[c] = mn;
            v[c] = vn;
            w[c] += neg_step * (mn / (sqrtf(vn) + eps));
        }
    }
    return EMBED_OK;
}
