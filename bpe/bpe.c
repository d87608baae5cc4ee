/* bpe.c - encoding and decoding with a loaded vocabulary.
 *
 * Encoding is two steps, as in GPT-2:
 *   1. pre-tokenization: GPT-2's regex
 *        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *      cuts the text into pieces; here it is a hand-written scanner over
 *      character classes (leftmost, first alternative wins, as a backtracking
 *      regex does);
 *   2. byte-pair merging inside each piece: most pieces are whole tokens
 *      (one hash lookup); the rest merge the adjacent pair of lowest rank,
 *      leftmost first, until no pair is a token -- an O(n^2) loop for short
 *      pieces and a heap for long ones, so no input is quadratic.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpe_internal.h"

static int fail(bpe_error *err, int code, uint64_t offset, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->offset = offset;
    }
    return code;
}

/* ---- characters ----------------------------------------------------------- */

#define O CLS_OTHER
#define L CLS_LETTER
#define N CLS_NUMBER
#define S CLS_SPACE
static const uint8_t ascii_cls[128] = {
    O, O, O, O, O, O, O, O, O, S, S, S, S, S, O, O,  /* \t \n \v \f \r */
    O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O,
    S, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O,  /* space */
    N, N, N, N, N, N, N, N, N, N, O, O, O, O, O, O,
    O, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
    L, L, L, L, L, L, L, L, L, L, L, O, O, O, O, O,
    O, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
    L, L, L, L, L, L, L, L, L, L, L, O, O, O, O, O,
};
#undef O
#undef L
#undef N
#undef S

#define CLS_INVALID (-1)

/* Length of the valid UTF-8 sequence at s[i] (i < end) and its code point,
 * or 0 when s[i] does not start one (bad lead byte, bad or missing
 * continuation, overlong form, surrogate, beyond U+10FFFF). */
static inline size_t utf8_decode(const uint8_t *s, size_t i, size_t end, uint32_t *cp) {
    uint8_t c = s[i];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xC2) return 0;
    if (c < 0xE0) {
        if (i + 1 >= end || (s[i + 1] & 0xC0) != 0x80) return 0;
        *cp = (uint32_t)(c & 0x1F) << 6 | (s[i + 1] & 0x3F);
        return 2;
    }
    if (c < 0xF0) {
        if (i + 2 >= end) return 0;
        uint8_t c1 = s[i + 1], c2 = s[i + 2];
        uint8_t lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        if (c1 < lo || c1 > hi || (c2 & 0xC0) != 0x80) return 0;
        *cp = (uint32_t)(c & 0x0F) << 12 | (uint32_t)(c1 & 0x3F) << 6 | (c2 & 0x3F);
        return 3;
    }
    if (c < 0xF5) {
        if (i + 3 >= end) return 0;
        uint8_t c1 = s[i + 1], c2 = s[i + 2], c3 = s[i + 3];
        uint8_t lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        if (c1 < lo || c1 > hi || (c2 & 0xC0) != 0x80 || (c3 & 0xC0) != 0x80) return 0;
        *cp = (uint32_t)(c & 0x07) << 18 | (uint32_t)(c1 & 0x3F) << 12 | (uint32_t)(c2 & 0x3F) << 6 |
              (c3 & 0x3F);
        return 4;
    }
    return 0;
}

/* Class of the character at s[i] and its length; CLS_INVALID (length 1)
 * for a byte that starts no valid character. */
static inline int char_at(const struct bpe *v, const uint8_t *s, size_t i, size_t end, size_t *len) {
    if (s[i] < 0x80) {
        *len = 1;
        return ascii_cls[s[i]];
    }
    uint32_t cp;
    size_t n = utf8_decode(s, i, end, &cp);
    if (!n) {
        *len = 1;
        return CLS_INVALID;
    }
    *len = n;
    return v->cls2[(size_t)v->cls1[cp >> 8] * 256 + (cp & 255)];
}

/* End of the run of class `cls` characters starting at i. */
static inline size_t run_end(const struct bpe *v, const uint8_t *s, size_t i, size_t end, int cls) {
    while (i < end) {
        if (s[i] < 0x80) {
            if (ascii_cls[s[i]] != cls) break;
            i++;
        } else {
            size_t n;
            if (char_at(v, s, i, end, &n) != cls) break;
            i += n;
        }
    }
    return i;
}

/* ---- output ---------------------------------------------------------------- */

typedef struct {
    const struct bpe *v;
    uint32_t *ids;
    size_t *offs;
    size_t cap, n;
    int nomem;
} out_t;

static inline void emit(out_t *o, uint32_t id, size_t off) {
    if (o->n < o->cap) {
        o->ids[o->n] = id;
        if (o->offs) o->offs[o->n] = off;
    }
    o->n++;
}

/* ---- merging ----------------------------------------------------------------- */

static inline uint32_t lookup_token(const struct bpe *v, const uint8_t *p, size_t n) {
    for (uint64_t h = bpe_hash_bytes(p, n);; h++) {
        uint32_t id = v->tok_slots[h & v->tok_mask];
        if (id == BPE_EMPTY) return BPE_EMPTY;
        uint32_t a = v->tok_off[id];
        if (v->tok_off[id + 1] - a == n && !memcmp(v->tok_bytes + a, p, n)) return id;
    }
}

/* The token that tokens a and b merge into (its id is the merge's rank), or
 * BPE_EMPTY, which compares above every rank. */
static inline uint32_t pair_rank(const struct bpe *v, uint32_t a, uint32_t b) {
    uint64_t key = (uint64_t)a << 32 | b;
    for (uint64_t h = bpe_hash_pair(key);; h++) {
        const bpe_pair *e = &v->pairs[h & v->pair_mask];
        if (e->key == key) return e->merged;
        if (e->key == UINT64_MAX) return BPE_EMPTY;
    }
}

static inline uint32_t token_len(const struct bpe *v, uint32_t id) {
    return v->tok_off[id + 1] - v->tok_off[id];
}

#define SHORT_PIECE 128

/* Short pieces: tiktoken's loop, over an array of parts. */
static void merge_short(out_t *o, const uint8_t *p, size_t n, size_t off) {
    const struct bpe *v = o->v;
    uint32_t tok[SHORT_PIECE], rank[SHORT_PIECE];
    size_t m = n;
    for (size_t i = 0; i < n; i++) tok[i] = v->byte_tok[p[i]];
    for (size_t i = 0; i + 1 < m; i++) rank[i] = pair_rank(v, tok[i], tok[i + 1]);
    rank[m - 1] = BPE_EMPTY;
    for (;;) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < m; i++)
            if (rank[i] < rank[best]) best = i;
        if (rank[best] == BPE_EMPTY) break;
        tok[best] = rank[best];
        memmove(tok + best + 1, tok + best + 2, (m - best - 2) * sizeof *tok);
        memmove(rank + best + 1, rank + best + 2, (m - best - 2) * sizeof *rank);
        m--;
        rank[best] = best + 1 < m ? pair_rank(v, tok[best], tok[best + 1]) : BPE_EMPTY;
        if (best > 0) rank[best - 1] = pair_rank(v, tok[best - 1], tok[best]);
    }
    for (size_t i = 0; i < m; i++) {
        emit(o, tok[i], off);
        off += token_len(v, tok[i]);
    }
}

/* Long pieces: a linked list of parts and a min-heap of (rank, position)
 * keys, so the same lowest-rank-leftmost order costs O(n log n). Stale heap
 * entries are skipped: an entry is current when its part is alive and the
 * pair starting there still has its rank (a changed pair always has another
 * rank, since its bytes are longer). */
static void heap_push(uint64_t *heap, size_t *n, uint64_t key) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (heap[parent] <= key) break;
        heap[i] = heap[parent];
        i = parent;
    }
    heap[i] = key;
}

static uint64_t heap_pop(uint64_t *heap, size_t *n) {
    uint64_t top = heap[0], last = heap[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap[c + 1] < heap[c]) c++;
        if (last <= heap[c]) break;
        heap[i] = heap[c];
        i = c;
    }
    if (*n) heap[i] = last;
    return top;
}

static void merge_long(out_t *o, const uint8_t *p, size_t n, size_t off) {
    const struct bpe *v = o->v;
    if (n >= UINT32_MAX) {  /* positions are 32-bit */
        o->nomem = 1;
        return;
    }
    uint32_t *tok = malloc(n * 4 * sizeof(uint32_t));
    uint64_t *heap = malloc(3 * n * sizeof(uint64_t));
    if (!tok || !heap) {
        free(tok);
        free(heap);
        o->nomem = 1;
        return;
    }
    uint32_t *next = tok + n, *prev = tok + 2 * n, *rank = tok + 3 * n;
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) {
        tok[i] = v->byte_tok[p[i]];
        next[i] = (uint32_t)(i + 1);
        prev[i] = (uint32_t)(i - 1); /* wraps to UINT32_MAX for the first part */
    }
    for (size_t i = 0; i < n; i++) {
        rank[i] = i + 1 < n ? pair_rank(v, tok[i], tok[i + 1]) : BPE_EMPTY;
        if (rank[i] != BPE_EMPTY) heap_push(heap, &hn, (uint64_t)rank[i] << 32 | i);
    }
    while (hn) {
        uint64_t key = heap_pop(heap, &hn);
        uint32_t r = (uint32_t)(key >> 32), i = (uint32_t)key;
        if (tok[i] == BPE_EMPTY || rank[i] != r) continue;
        uint32_t j = next[i];
        tok[i] = r;
        tok[j] = BPE_EMPTY;
        rank[j] = BPE_EMPTY;
        next[i] = next[j];
        if (next[j] < n) prev[next[j]] = i;
        rank[i] = next[i] < n ? pair_rank(v, tok[i], tok[next[i]]) : BPE_EMPTY;
        if (rank[i] != BPE_EMPTY) heap_push(heap, &hn, (uint64_t)rank[i] << 32 | i);
        uint32_t h = prev[i];
        if (h != UINT32_MAX) {
            rank[h] = pair_rank(v, tok[h], tok[i]);
            if (rank[h] != BPE_EMPTY) heap_push(heap, &hn, (uint64_t)rank[h] << 32 | h);
        }
    }
    for (uint32_t i = 0; i < n; i = next[i]) {
        emit(o, tok[i], off + i);
    }
    free(tok);
    free(heap);
}

static inline void encode_piece(out_t *o, const uint8_t *p, size_t n, size_t off) {
    const struct bpe *v = o->v;
    if (n == 1) {
        emit(o, v->byte_tok[p[0]], off);
        return;
    }
    if (n <= v->max_token_len) {
        uint32_t id = lookup_token(v, p, n);
        if (id != BPE_EMPTY) {
            emit(o, id, off);
            return;
        }
    }
    if (n <= SHORT_PIECE)
        merge_short(o, p, n, off);
    else
        merge_long(o, p, n, off);
}

/* ---- pre-tokenization ---------------------------------------------------------- */

/* Encodes s[i..end) as a whole text: `end` is the end of input for the
 * regex, and every invalid byte ends a stretch of text as well (it becomes
 * its own piece). Offsets are s-relative. */
static void encode_text(out_t *o, const uint8_t *s, size_t i, size_t end) {
    const struct bpe *v = o->v;
    while (i < end) {
        size_t start = i, len, len2;
        uint8_t c = s[i];
        int cls = char_at(v, s, i, end, &len);
        if (cls == CLS_INVALID) {
            emit(o, v->byte_tok[c], i);
            i++;
            continue;
        }
        if (c == '\'' && i + 1 < end) {  /* 's 't 're 've 'm 'll 'd */
            uint8_t d = s[i + 1], e = i + 2 < end ? s[i + 2] : 0;
            size_t n = (d == 's' || d == 't' || d == 'm' || d == 'd') ? 2
                       : ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l')) ? 3
                       : 0;
            if (n) {
                encode_piece(o, s + i, n, i);
                i += n;
                continue;
            }
        }
        if (cls == CLS_SPACE) {
            /* " ?X+": one U+0020 joins the letter/number/other run after it. */
            if (c == ' ' && i + 1 < end) {
                int next = char_at(v, s, i + 1, end, &len2);
                if (next != CLS_SPACE && next != CLS_INVALID) {
                    i = run_end(v, s, i + 1 + len2, end, next);
                    encode_piece(o, s + start, i - start, start);
                    continue;
                }
            }
            /* "\s+(?!\S)|\s+": a run followed by a non-space gives its last
             * character to the next piece, unless the run is one character. */
            size_t last = i, j = i + len;
            int after = CLS_INVALID;
            while (j < end) {
                after = char_at(v, s, j, end, &len2);
                if (after != CLS_SPACE) break;
                last = j;
                j += len2;
            }
            if (j < end && after != CLS_INVALID && last > i) j = last;
            encode_piece(o, s + start, j - start, start);
            i = j;
            continue;
        }
        i = run_end(v, s, i + len, end, cls);
        encode_piece(o, s + start, i - start, start);
    }
}

/* Offset of the first byte that starts no valid UTF-8 character, or len. */
static size_t first_invalid(const uint8_t *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        if (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        uint32_t cp;
        size_t n = utf8_decode(s, i, len, &cp);
        if (!n) return i;
        i += n;
    }
    return len;
}

static const uint8_t *find_special(const struct bpe *v, const uint8_t *s, size_t len) {
    if (v->eot < 0) return NULL;
    const uint8_t *t = v->tok_bytes + v->tok_off[v->eot];
    return memmem(s, len, t, token_len(v, (uint32_t)v->eot));
}

/* Checks flags that reject input (strict UTF-8, special token as error). */
static int check_input(const struct bpe *v, const uint8_t *s, size_t len, int flags, bpe_error *err) {
    if (flags & BPE_STRICT) {
        size_t bad = first_invalid(s, len);
        if (bad < len)
            return fail(err, BPE_ERR_UTF8, bad, "invalid UTF-8 at byte %zu (0x%02X)", bad, s[bad]);
    }
    if ((flags & BPE_SPECIAL_MASK) == BPE_SPECIAL_ERROR) {
        const uint8_t *sp = find_special(v, s, len);
        if (sp)
            return fail(err, BPE_ERR_SPECIAL, (uint64_t)(sp - s),
                        "the special token <|endoftext|> is in the text at byte %zu "
                        "(use --special allow to emit it, or --special text to encode it as text)",
                        (size_t)(sp - s));
    }
    return BPE_OK;
}

static int encode_checked(const struct bpe *v, const uint8_t *s, size_t len, int flags, out_t *o,
                          bpe_error *err) {
    size_t i = 0;
    if ((flags & BPE_SPECIAL_MASK) == BPE_SPECIAL_ALLOW && v->eot >= 0) {
        size_t eot_len = token_len(v, (uint32_t)v->eot);
        const uint8_t *sp;
        while ((sp = find_special(v, s + i, len - i))) {
            size_t at = (size_t)(sp - s);
            encode_text(o, s, i, at);
            emit(o, (uint32_t)v->eot, at);
            i = at + eot_len;
        }
    }
    encode_text(o, s, i, len);
    if (o->nomem) return fail(err, BPE_ERR_NOMEM, 0, "out of memory");
    return BPE_OK;
}

int bpe_encode(const bpe *v, const void *text, size_t len, int flags, uint32_t *ids,
               size_t *offsets, size_t cap, size_t *n_tokens, bpe_error *err) {
    if (!v || (!text && len) || (!ids && cap) || (flags & ~(BPE_SPECIAL_MASK | BPE_STRICT)) ||
        (flags & BPE_SPECIAL_MASK) == BPE_SPECIAL_MASK)
        return fail(err, BPE_ERR_ARG, 0, "bpe_encode: bad argument");
    if (n_tokens) *n_tokens = 0;
    if (len == 0) return BPE_OK;
    int rc = check_input(v, text, len, flags, err);
    if (rc) return rc;
    out_t o = {v, ids, offsets, cap, 0, 0};
    rc = encode_checked(v, text, len, flags, &o, err);
    if (n_tokens) *n_tokens = o.n;
    return rc;
}

/* ---- cutting and threads ---------------------------------------------------------- */

static inline int ascii_space(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* A piece never runs from a non-space character into a whitespace one, and
 * every decision before such a point looks no further than it, so the text
 * can be cut between an ASCII non-space and an ASCII whitespace character.
 * (ASCII on both sides so the cut is never inside a UTF-8 sequence.) */
size_t bpe_safe_cut(const void *text, size_t len) {
    const uint8_t *s = text;
    for (size_t p = len; p-- > 1;)
        if (ascii_space(s[p]) && s[p - 1] < 0x80 && !ascii_space(s[p - 1])) return p;
    return 0;
}

typedef struct {
    const struct bpe *v;
    const uint8_t *s;
    size_t start, end;
    int flags;
    out_t out;
    int rc;
    bpe_error err;
} part_job;

static void *part_run(void *arg) {
    part_job *j = arg;
    j->rc = encode_checked(j->v, j->s + j->start, j->end - j->start, j->flags, &j->out, &j->err);
    return NULL;
}

#define PARALLEL_MIN (256u << 10)
#define MAX_THREADS 64

static int cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

int bpe_encode_parallel(const bpe *v, const void *text, size_t len, int flags, int threads,
                        uint32_t *ids, size_t *offsets, size_t cap, size_t *n_tokens,
                        bpe_error *err) {
    if (threads <= 0) threads = cpu_count();
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if ((size_t)threads > len / PARALLEL_MIN) threads = (int)(len / PARALLEL_MIN);
    if (threads <= 1 || cap < len)
        return bpe_encode(v, text, len, flags, ids, offsets, cap, n_tokens, err);
    if (!v || !text || !ids || (flags & ~(BPE_SPECIAL_MASK | BPE_STRICT)) ||
        (flags & BPE_SPECIAL_MASK) == BPE_SPECIAL_MASK)
        return fail(err, BPE_ERR_ARG, 0, "bpe_encode_parallel: bad argument");
    if (n_tokens) *n_tokens = 0;
    const uint8_t *s = text;
    int rc = check_input(v, s, len, flags, err);
    if (rc) return rc;

    /* Part k writes its tokens from index start_k: it has at most as many
     * tokens as bytes, so parts never overlap; then they are packed. */
    part_job jobs[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    size_t start = 0;
    int n = 0;
    for (int k = 0; k < threads && start < len; k++) {
        size_t end = k == threads - 1 ? len : bpe_safe_cut(s, len / threads * (k + 1));
        if (end <= start) continue;
        jobs[n] = (part_job){v, s, start, end, flags, {v, ids + start, offsets ? offsets + start : NULL,
                                                       end - start, 0, 0}, 0, {{0}, 0}};
        start = end;
        n++;
    }
    int started = 0;
    for (int k = 1; k < n; k++) {
        if (pthread_create(&tid[k], NULL, part_run, &jobs[k])) break;
        started = k;
    }
    part_run(&jobs[0]);
    for (int k = started + 1; k < n; k++) part_run(&jobs[k]);  /* threads we could not start */
    for (int k = 1; k <= started; k++) pthread_join(tid[k], NULL);

    size_t total = 0;
    for (int k = 0; k < n; k++) {
        if (jobs[k].rc) {
            if (err) *err = jobs[k].err;
            return jobs[k].rc;
        }
        memmove(ids + total, ids + jobs[k].start, jobs[k].out.n * sizeof *ids);
        if (offsets)
            for (size_t i = 0; i < jobs[k].out.n; i++)
                offsets[total + i] = offsets[jobs[k].start + i] + jobs[k].start;
        total += jobs[k].out.n;
    }
    if (n_tokens) *n_tokens = total;
    return BPE_OK;
}

/* ---- streaming -------------------------------------------------------------------- */

struct bpe_stream {
    const struct bpe *v;
    int flags, threads, done;
    uint8_t *buf;
    size_t len, cap;
    uint64_t base;          /* stream offset of buf[0] */
    uint32_t *ids;
    size_t *offs;
    size_t ids_cap;
};

_Static_assert(sizeof(size_t) == sizeof(uint64_t), "offsets are passed to sinks in place");

#define STREAM_BLOCK (1u << 20)

bpe_stream *bpe_stream_new(const bpe *v, int flags, int threads, bpe_error *err) {
    if (!v || (flags & ~(BPE_SPECIAL_MASK | BPE_STRICT | BPE_OFFSETS)) ||
        (flags & BPE_SPECIAL_MASK) == BPE_SPECIAL_MASK) {
        fail(err, BPE_ERR_ARG, 0, "bpe_stream_new: bad argument");
        return NULL;
    }
    bpe_stream *st = calloc(1, sizeof *st);
    if (!st) {
        fail(err, BPE_ERR_NOMEM, 0, "out of memory");
        return NULL;
    }
    st->v = v;
    st->flags = flags;
    st->threads = threads <= 0 ? cpu_count() : threads;
    return st;
}

/* Encodes buf[0..n) and hands the tokens to the sink. */
static int stream_encode(bpe_stream *st, size_t n, bpe_sink sink, void *ctx, bpe_error *err) {
    if (st->ids_cap < n) {
        size_t c = n + n / 2;
        uint32_t *ids = realloc(st->ids, c * sizeof *ids);
        if (ids) st->ids = ids;
        size_t *offs = ids && (st->flags & BPE_OFFSETS) ? realloc(st->offs, c * sizeof *offs) : st->offs;
        if (offs) st->offs = offs;
        if (!ids || ((st->flags & BPE_OFFSETS) && !offs))
            return fail(err, BPE_ERR_NOMEM, st->base, "out of memory");
        st->ids_cap = c;
    }
    size_t nt;
    static const uint8_t nothing[1];
    int rc = bpe_encode_parallel(st->v, n ? st->buf : nothing, n, st->flags & ~BPE_OFFSETS, st->threads, st->ids,
                                 st->flags & BPE_OFFSETS ? st->offs : NULL, st->ids_cap, &nt, err);
    if (rc) {
        if (err && (rc == BPE_ERR_UTF8 || rc == BPE_ERR_SPECIAL)) {
            uint64_t at = st->base + err->offset;
            char msg[sizeof err->msg];
            /* Rewrite the message with the stream offset. */
            if (rc == BPE_ERR_UTF8)
                snprintf(msg, sizeof msg, "invalid UTF-8 at byte %llu (0x%02X)", (unsigned long long)at,
                         st->buf[err->offset]);
            else
                snprintf(msg, sizeof msg, "the special token <|endoftext|> is in the text at byte %llu "
                         "(use --special allow to emit it, or --special text to encode it as text)",
                         (unsigned long long)at);
            memcpy(err->msg, msg, sizeof msg);
            err->offset = at;
        }
        return rc;
    }
    uint64_t *offs = NULL;
    if (st->flags & BPE_OFFSETS) {
        offs = (uint64_t *)st->offs;
        for (size_t i = 0; i < nt; i++) offs[i] = st->offs[i] + st->base;
    }
    if (nt && sink && sink(ctx, st->ids, offs, nt))
        return fail(err, BPE_ERR_CALLBACK, st->base, "stopped by the caller");
    if (st->len > n) memmove(st->buf, st->buf + n, st->len - n);
    st->len -= n;
    st->base += n;
    return BPE_OK;
}

int bpe_stream_write(bpe_stream *st, const void *data, size_t len, bpe_sink sink, void *ctx,
                     bpe_error *err) {
    if (!st || st->done || (!data && len)) return fail(err, BPE_ERR_ARG, 0, "bpe_stream_write: bad argument");
    const uint8_t *d = data;
    size_t block = (size_t)STREAM_BLOCK * (size_t)(st->threads > 1 ? st->threads : 1);
    while (len) {
        if (st->cap - st->len < len && st->cap - st->len < block) {
            size_t c = st->cap ? st->cap * 2 : block + block / 4;
            uint8_t *b = realloc(st->buf, c);
            if (!b) return fail(err, BPE_ERR_NOMEM, st->base, "out of memory");
            st->buf = b;
            st->cap = c;
        }
        size_t take = st->cap - st->len < len ? st->cap - st->len : len;
        memcpy(st->buf + st->len, d, take);
        st->len += take;
        d += take;
        len -= take;
        if (st->len >= block) {
            size_t cut = bpe_safe_cut(st->buf, st->len);
            if (cut) {
                int rc = stream_encode(st, cut, sink, ctx, err);
                if (rc) return rc;
            }
        }
    }
    return BPE_OK;
}

int bpe_stream_finish(bpe_stream *st, bpe_sink sink, void *ctx, bpe_error *err) {
    if (!st || st->done) return fail(err, BPE_ERR_ARG, 0, "bpe_stream_finish: bad argument");
    st->done = 1;
    return stream_encode(st, st->len, sink, ctx, err);
}

void bpe_stream_free(bpe_stream *st) {
    if (!st) return;
    free(st->buf);
    free(st->ids);
    free(st->offs);
    free(st);
}

/* ---- decoding ------------------------------------------------------------------------- */

const char *bpe_token_bytes(const bpe *v, uint32_t id, size_t *len) {
    if (!v || id >= v->n_tokens) return NULL;
    if (len) *len = token_len(v, id);
    return (const char *)v->tok_bytes + v->tok_off[id];
}

int bpe_decode(const bpe *v, const uint32_t *ids, size_t n, char *out, size_t cap, size_t *n_bytes,
               bpe_error *err) {
    if (!v || (!ids && n) || (!out && cap)) return fail(err, BPE_ERR_ARG, 0, "bpe_decode: bad argument");
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= v->n_tokens)
            return fail(err, BPE_ERR_ID, i, "token %zu: id %u is not in the vocabulary (0..%u)", i, ids[i],
                        v->n_tokens - 1);
        uint32_t a = v->tok_off[ids[i]], l = v->tok_off[ids[i] + 1] - a;
        if (total + l <= cap) memcpy(out + total, v->tok_bytes + a, l);
        total += l;
    }
    if (n_bytes) *n_bytes = total;
    return BPE_OK;
}
