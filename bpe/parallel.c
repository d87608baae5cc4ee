/* parallel.c - threads and streams: safe cuts (where text may be cut
 * without changing a token), the threads' job queue, text shared by the
 * threads in parts, and the streaming encoder. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "encode.h"
#include "pretok.h"
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PAIRS_X86 1
#endif

/* ---- threads ------------------------------------------------------------------- */

/* Where the part of [from, n) that starts at from should end, about: parts
 * fall in size, each 1/(2 x threads) of what is left and PART_MIN at least,
 * so that the last ones even out the threads' ends. */
size_t bpe_part_goal(size_t from, size_t n, int threads) {
    size_t size = (n - from) / (2 * (size_t)threads);
    return from + (size > PART_MIN ? size : PART_MIN);
}

int bpe_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

static void *queue_worker(void *arg) {
    job_queue *q = arg;
    cache_slot *cache = q->with_cache ? bpe_cache_new() : NULL;
    for (int k; (k = __atomic_fetch_add(&q->next, 1, __ATOMIC_RELAXED)) < q->n;) q->run(q->ctx, k, cache);
    bpe_big_free(cache);
    return NULL;
}

/* A work queue with dynamic scheduling (one atomic counter). Runs q's
 * jobs on this thread and up to threads - 1 more (those that
 * cannot be started leave their share to the others). */
void bpe_queue_run(job_queue *q, int threads) {
    pthread_t tid[MAX_THREADS];
    int started = 0;
    for (int k = 1; k < threads && k < q->n && k < MAX_THREADS; k++) {
        if (pthread_create(&tid[k], NULL, queue_worker, q)) break;
        started = k;
    }
    queue_worker(q);
    for (int k = 1; k <= started; k++) pthread_join(tid[k], NULL);
}

/* ---- safe cuts, and text in parts ------------------------------------------------ */

static inline int ascii_space(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Does a valid non-space character end exactly at s[p - 1]? A lead byte is
 * never a continuation byte, so a valid sequence found by stepping back to
 * its lead byte is also how decoding from the start reads it. */
static int nonspace_char_ends_at(const uint8_t *s, size_t p) {
    size_t q = p - 1;
    while (q > 0 && p - q < 4 && (s[q] & 0xC0) == 0x80) q--;
    uint32_t cp = 0;
    return utf8_decode(s, q, p, &cp) == p - q && !bpe_is_space(cp);
}

/* Points where a piece always ends, whatever follows, and every decision
 * before them looks no further:
 *   - a non-space character followed by ASCII whitespace: no piece runs from
 *     a non-space into a space;
 *   - two ASCII non-space characters of different classes (letter, digit,
 *     other), neither an apostrophe: runs stop at a change of class, and the
 *     second starts a run of its own, since no space precedes it. (An
 *     apostrophe may join the other run before it, or start 's 't ... ) */
/* Whether s[0..64) are all ASCII letters or all ASCII digits. No early
 * exit, so that it vectorizes. */
static int one_class_64(const uint8_t *s) {
    unsigned not_letter = 0, not_digit = 0;
    for (unsigned j = 0; j < 64; j++) {
        not_letter |= (uint8_t)((s[j] | 0x20) - 'a') >= 26;
        not_digit |= (uint8_t)(s[j] - '0') >= 10;
    }
    return !not_letter || !not_digit;
}

/* The last safe cut at a position in [from, len), or 0. A long word or
 * number (DNA, a million digits) has none: it is passed over 63 places a
 * step. */
static size_t last_cut(const uint8_t *s, size_t len, size_t from) {
    if (from < 1) from = 1;
    for (size_t p = len; p-- > from;) {
        if (p >= 63 && s[p] < 0x80 && (ascii_cls[s[p]] == CLS_LETTER || ascii_cls[s[p]] == CLS_NUMBER) &&
            one_class_64(s + p - 63)) {
            p -= 62;  /* no cut at p - 62 .. p: every pair there is of one class */
            continue;
        }
        uint8_t a = s[p - 1], b = s[p];
        if (ascii_space(b)) {
            if (!ascii_space(a) && nonspace_char_ends_at(s, p)) return p;
        } else if (a < 0x80 && b < 0x80 && a != '\'' && b != '\'' && !ascii_space(a) &&
                   ascii_cls[a] != ascii_cls[b]) {
            return p;
        }
    }
    return 0;
}

/* Where a cut at p would fall inside a special token: the start of the
 * leftmost occurrence of one that holds p inside it, or of a prefix of one
 * that ends the visible text s[0..len) (the bytes after len may complete
 * it); p when there is none. *partial tells whether a prefix starts there. */
static size_t special_start(const struct bpe *v, const uint8_t *s, size_t len, size_t p, int *partial) {
    size_t ml = v->special_max_len;
    for (size_t q = p >= ml ? p - ml + 1 : 0; q < p; q++) {
        int found = 0;
        *partial = 0;
        for (uint32_t k = v->special_at[s[q]], e = v->special_at[s[q] + 1]; k < e; k++) {
            uint32_t t = v->special_by[k] & ~BPE_SPECIAL_LATE;
            size_t tl = token_len(v, t), m = len - q < tl ? len - q : tl;
            if (q + tl > p && !memcmp(s + q, v->tok_bytes + v->tok_off[t], m)) {
                found = 1;
                *partial |= q + tl > len;
            }
        }
        if (found) return q;
    }
    return p;
}

/* With two passes, whether a second-pass token at q (and no first-pass
 * one) may lose to a first-pass token that starts inside it, whole or as a
 * prefix at the end of s[0..len): then q is no sure start of a token. */
static int late_unsure(const struct bpe *v, const uint8_t *s, size_t len, size_t q) {
    if (!v->n_late || bpe_special_here(v, s + q, len - q, 0) != BPE_EMPTY) return 0;
    for (size_t r = q + 1; r < len && r < q + v->special_max_len; r++)
        for (uint32_t k = v->special_at[s[r]], e = v->special_at[s[r] + 1]; k < e; k++) {
            uint32_t x = v->special_by[k], t = x & ~BPE_SPECIAL_LATE;
            size_t tl = token_len(v, t), m = len - r < tl ? len - r : tl;
            if (!(x & BPE_SPECIAL_LATE) && !memcmp(s + r, v->tok_bytes + v->tok_off[t], m)) return 1;
        }
    return 0;
}

/* The one rule for every place that cuts text (stream blocks, threads'
 * parts): the last position in [from, end) at which s[0..len) may be cut
 * without changing a token, or 0. A cut of the pre-tokenizer (last_cut) is
 * one, unless special tokens are tokens here (BPE_SPECIAL_ALLOW, or errors
 * to report) and the cut falls inside an occurrence of one, or inside a
 * prefix of one that ends the text. Such a cut moves to the start of the
 * leftmost whole occurrence around it, if no other holds that place inside
 * it (text before a special token ends as at end of input, and the token,
 * found leftmost, is then seen whole) and it is sure to be matched there
 * (late_unsure); else below. */
static size_t text_cut(const struct bpe *v, const uint8_t *s, size_t end, size_t len, size_t from,
                       int flags) {
    int special_is_text = (flags & BPE_SPECIAL_MASK) == BPE_SPECIAL_TEXT || !v->n_specials;
    for (;;) {
        size_t p = last_cut(s, end, from);
        if (!p || special_is_text) return p;
        for (;;) {
            int partial;
            size_t q = special_start(v, s, len, p, &partial);
            if (q == p) return p;
            if (q < from || q == 0) return 0;
            if (partial || late_unsure(v, s, len, q)) {
                end = q + 1;
                break;
            }
            p = q;
        }
    }
}

size_t bpe_safe_cut(const bpe *v, const void *text, size_t len, int flags) {
    if (!v || !text || bpe_bad_flags(flags, BPE_SPECIAL_MASK | BPE_STRICT | BPE_OFFSETS)) return 0;
    return text_cut(v, text, len, len, 1, flags);
}

/* Piece caches a stream keeps from one block to the next (a cache maps a
 * piece's bytes to its tokens, whatever the text around it), so that each
 * block starts warm and no cache is mapped and zeroed again: one for each
 * part that may run at once, a part taking a free one, made on first use.
 * As many as there are cores are bpe_cache_new's, as a text's own cache
 * is: a huge page, so that probes all over it do not each miss the TLB,
 * and one fault maps it (on small pages the stream's merging was slower
 * than bpe_encode's, and its page faults, each a zero page replaced and
 * the other threads' TLBs flushed, cost more than all its reading). More
 * threads than cores take turns on them and rarely need the rest: those
 * come from calloc (small pages: only what is touched is resident),
 * aligned by hand to a cache line, a slot's size, so that memory stays
 * within its bound per thread. */
typedef struct {
    cache_slot *slot[MAX_THREADS];
    void *raw[MAX_THREADS];  /* calloc'd; NULL: slot is bpe_cache_new's */
    int busy[MAX_THREADS];
    int huge;                /* slots below this are bpe_cache_new's */
} cache_pool;

/* Cache i, made on first use (NULL when out of memory: merged without one). */
static cache_slot *pool_slot(cache_pool *p, int i) {
    if (!p->slot[i] && i < p->huge)
        p->slot[i] = bpe_cache_new();
    else if (!p->slot[i] && (p->raw[i] = gpt2in_calloc(1, CACHE_SIZE + sizeof(cache_slot))))
        p->slot[i] = (cache_slot *)(((uintptr_t)p->raw[i] + sizeof(cache_slot) - 1) &
                                    ~(uintptr_t)(sizeof(cache_slot) - 1));
    return p->slot[i];
}

static cache_slot *pool_take(cache_pool *p, int *held) {
    for (int i = 0; i < MAX_THREADS; i++)
        if (!__atomic_exchange_n(&p->busy[i], 1, __ATOMIC_ACQUIRE)) {
            *held = i;
            return pool_slot(p, i);
        }
    *held = -1;
    return NULL;
}

static void pool_free(cache_pool *p) {
    if (!p) return;
    for (int i = 0; i < MAX_THREADS; i++) {
        if (p->raw[i]) free(p->raw[i]);
        else bpe_big_free(p->slot[i]);
    }
    free(p);
}

typedef struct {
    const struct bpe *v;
    const uint8_t *s;
    size_t start, end;
    int flags;
    out_t out;
    int rc;
    bpe_error err;
    cache_pool *pool;   /* a stream's caches, or NULL: the worker's */
    uint64_t base;      /* stream offset of s[0], for error offsets */
    int *left;          /* a stream block's parts not yet done, or NULL */
} part_job;

/* ---- a quick look for special tokens -------------------------------------------- */

/* With --special error (the command line's default) every part is searched
 * for the special tokens before it is encoded. Most text holds none, and
 * none of their first two bytes side by side ("<|" for GPT-2's): a look
 * for those pairs, 128 bytes a step, finds where one may start at a
 * fraction of the cost of the search (memmem), which then looks only
 * there. */
#define PAIRS_MAX 4
typedef struct {
    int n;
    uint8_t a[PAIRS_MAX], b[PAIRS_MAX];
} special_pairs;

/* The pairs that start v's special tokens; 0 when there are too many, or
 * a token of one byte (then the search runs as it is). */
static int pairs_of(const struct bpe *v, special_pairs *p) {
    p->n = 0;
    if (v->n_specials > PAIRS_MAX) return 0;
    for (uint32_t i = 0; i < v->n_specials; i++) {
        uint32_t t = v->special_list[i];
        if (token_len(v, t) < 2) return 0;
        const uint8_t *b = v->tok_bytes + v->tok_off[t];
        int k = 0;
        while (k < p->n && (p->a[k] != b[0] || p->b[k] != b[1])) k++;
        if (k == p->n) {
            p->a[k] = b[0];
            p->b[k] = b[1];
            p->n++;
        }
    }
    return 1;
}

/* The first place in [i, len) where a pair starts, or len. */
static size_t pairs_tail(const special_pairs *p, const uint8_t *s, size_t i, size_t len) {
    for (; i + 1 < len; i++)
        for (int k = 0; k < p->n; k++)
            if (s[i] == p->a[k] && s[i + 1] == p->b[k]) return i;
    return len;
}

#ifdef PAIRS_X86
/* (one body for both widths: vectors of V, four a step; a step with a
 * pair is looked through byte by byte). With one pair (GPT-2's "<|") a
 * step is first looked at for the pair's second byte alone, one compare
 * a vector, and for the pair only where that byte is: the loop over the
 * pairs cost as much as the compares, and the second byte stands in
 * fewer steps than the first in prose and code. */
#define PAIRS_AT(V, LOAD, CMPEQ, AND, OR, q, k)                                                  \
    AND(CMPEQ(LOAD((const V *)(s + i + (q) * sizeof(V))), a[k]),                                \
        CMPEQ(LOAD((const V *)(s + i + (q) * sizeof(V) + 1)), b[k]))
#define PAIRS_BODY(V, LOAD, SET1, CMPEQ, AND, OR, ANY)                                          \
    V a[PAIRS_MAX], b[PAIRS_MAX];                                                               \
    for (int k = 0; k < p->n; k++) a[k] = SET1((char)p->a[k]), b[k] = SET1((char)p->b[k]);     \
    if (p->n == 1) {                                                                            \
        for (; i + 4 * sizeof(V) + 1 <= len; i += 4 * sizeof(V)) {                              \
            V y = OR(OR(CMPEQ(LOAD((const V *)(s + i + 1)), b[0]),                              \
                        CMPEQ(LOAD((const V *)(s + i + sizeof(V) + 1)), b[0])),                 \
                     OR(CMPEQ(LOAD((const V *)(s + i + 2 * sizeof(V) + 1)), b[0]),              \
                        CMPEQ(LOAD((const V *)(s + i + 3 * sizeof(V) + 1)), b[0])));            \
            if (ANY(y) && ANY(OR(OR(PAIRS_AT(V, LOAD, CMPEQ, AND, OR, 0, 0),                    \
                                     PAIRS_AT(V, LOAD, CMPEQ, AND, OR, 1, 0)),                  \
                                  OR(PAIRS_AT(V, LOAD, CMPEQ, AND, OR, 2, 0),                   \
                                     PAIRS_AT(V, LOAD, CMPEQ, AND, OR, 3, 0)))))                \
                break;                                                                          \
        }                                                                                       \
        return pairs_tail(p, s, i, len);                                                        \
    }                                                                                           \
    for (; i + 4 * sizeof(V) + 1 <= len; i += 4 * sizeof(V)) {                                  \
        V hit = SET1(0);                                                                        \
        for (int q = 0; q < 4; q++)                                                             \
            for (int k = 0; k < p->n; k++) hit = OR(hit, PAIRS_AT(V, LOAD, CMPEQ, AND, OR, q, k)); \
        if (ANY(hit)) break;                                                                    \
    }                                                                                           \
    return pairs_tail(p, s, i, len);

static int any128(__m128i m) { return _mm_movemask_epi8(m) != 0; }
static size_t pairs_sse2(const special_pairs *p, const uint8_t *s, size_t i, size_t len) {
    PAIRS_BODY(__m128i, _mm_loadu_si128, _mm_set1_epi8, _mm_cmpeq_epi8, _mm_and_si128, _mm_or_si128, any128)
}

__attribute__((target("avx2"))) static int any256(__m256i m) { return !_mm256_testz_si256(m, m); }
__attribute__((target("avx2"))) static size_t pairs_avx2(const special_pairs *p, const uint8_t *s, size_t i,
                                                         size_t len) {
    PAIRS_BODY(__m256i, _mm256_loadu_si256, _mm256_set1_epi8, _mm256_cmpeq_epi8, _mm256_and_si256, _mm256_or_si256,
               any256)
}
#endif

/* The first place in [i, len) where a pair starts, or len. */
static size_t next_pair(const special_pairs *p, const uint8_t *s, size_t i, size_t len) {
#ifdef PAIRS_X86
    return __builtin_cpu_supports("avx2") ? pairs_avx2(p, s, i, len) : pairs_sse2(p, s, i, len);
#else
    return pairs_tail(p, s, i, len);
#endif
}

/* bpe_check_input of a part: under BPE_SPECIAL_ERROR without BPE_STRICT,
 * the search for special tokens runs only at the places where a pair
 * starts (over the longest token's length there: no token starts before
 * the first pair), and over the rest from the 16th such place on (text
 * full of pairs). With a second pass of special tokens (n_late), or with
 * BPE_STRICT (whose first error may come first), it runs whole once a
 * pair is found. */
static int check_part(const part_job *j, bpe_error *err) {
    const struct bpe *v = j->v;
    const uint8_t *s = j->s + j->start;
    size_t len = j->end - j->start;
    uint64_t base = j->base + j->start;
    int flags = j->flags;
    special_pairs p;
    if ((flags & BPE_SPECIAL_MASK) != BPE_SPECIAL_ERROR || !v->n_specials || !pairs_of(v, &p))
        return bpe_check_input(v, s, len, flags, base, err);
    size_t at = next_pair(&p, s, 0, len);
    if (at == len) return bpe_check_input(v, s, len, (flags & ~BPE_SPECIAL_MASK) | BPE_SPECIAL_TEXT, base, err);
    if ((flags & BPE_STRICT) || v->n_late) return bpe_check_input(v, s, len, flags, base, err);
    for (int tries = 0; at < len; tries++) {
        size_t w = len - at;
        if (tries < 16 && w > v->special_max_len) w = v->special_max_len;
        int rc = bpe_check_input(v, s + at, w, flags, base + at, err);
        if (rc || w == len - at) return rc;
        at = next_pair(&p, s, at + 1, len);
    }
    return BPE_OK;
}

static void part_run(void *ctx, int k, cache_slot *cache) {
    part_job *j = (part_job *)ctx + k;
    int held = -1;
    if (j->pool && j->end - j->start >= CACHE_MIN_TEXT) cache = pool_take(j->pool, &held);
    j->out.cache = cache;
    /* Each part checks its own text, on its own thread: the check is exact
     * on parts (bpe_check_input), and the first error is the first part's. */
    j->rc = check_part(j, &j->err);
    if (!j->rc) j->rc = bpe_encode_checked(j->v, j->s + j->start, j->end - j->start, j->flags, &j->out, &j->err);
    j->out.cache = NULL;
    if (held >= 0) __atomic_store_n(&j->pool->busy[held], 0, __ATOMIC_RELEASE);
    if (!j->rc && j->left) {
        /* A stream's part is handed to the sink as it is: public ids and
         * stream offsets are written here, on the part's own thread. */
        bpe_ranks_to_ids(j->v, j->out.ids, j->out.n);
        if (j->out.offs)
            for (size_t i = 0; i < j->out.n; i++) ((uint64_t *)j->out.offs)[i] = j->out.offs[i] + j->start + j->base;
    }
}

#define PARALLEL_MIN (256u << 10)
#define CUT_SEEK (64u << 10)

/* How many threads may share len bytes of text (at most `threads`). */
static int threads_for(size_t len, int threads) {
    if (threads <= 0) threads = bpe_cpu_count();
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if ((size_t)threads > len / PARALLEL_MIN) threads = (int)(len / PARALLEL_MIN);
    return threads < 1 ? 1 : threads;
}

/* Cuts s[from..len) into parts for `threads` threads (jobs[], at most
 * max; returns how many). Part k writes its tokens from index start_k: it
 * has at most as many tokens as bytes, so parts never overlap. The parts
 * fall in size (bpe_part_goal, as if `more` bytes followed len), or with
 * even, are `threads` parts of about one size (a stream's block, whose
 * threads also take the blocks before and after it: the parts need not
 * even out the threads' ends, only let the last blocks' be shared). */
static int plan_parts(const struct bpe *v, const uint8_t *s, size_t from, size_t len, size_t more, int max,
                      int flags, int threads, int even, uint32_t *ids, size_t *offsets, uint64_t base,
                      cache_pool *pool, int *left, part_job *jobs) {
    size_t start = from;
    int n = 0;
    while (start < len) {
        /* Text has a safe cut every few bytes; one long piece has none,
         * and is not searched through (the rest is one part). */
        size_t at = threads > 1 ? bpe_part_goal(start, len + more, threads) : len, end = len;
        if (even)
            at = n < threads - 1 && len - start >= 2 * PART_MIN ? start + (len - start) / (size_t)(threads - n) : len;
        if (at < len && n < max - 1) {
            end = text_cut(v, s, at, len, at > start + CUT_SEEK ? at - CUT_SEEK : start, flags);
            if (end <= start) end = len;
        }
        jobs[n] = (part_job){v, s, start, end, flags, {v, ids + start, offsets ? offsets + start : NULL,
                                                       end - start, 0, 0, NULL, 1}, 0, {{0}, 0}, pool, base, left};
        start = end;
        n++;
    }
    /* No safe cut to share the text at (one long piece, say): the threads
     * share its long pieces instead. */
    if (n == 1) jobs[0].out.threads = even ? threads_for(len - from, threads) : threads;
    return n;
}

/* The parts of one text are packed into place (each after the one before
 * it) as they are done, by whichever thread finds the next one done, so
 * that little is left to move once the threads are joined: the ids of all
 * parts but the first move, a serial pass that grew with the tokens a
 * byte. Part k moves to index total (the tokens of parts 0..k-1), which is
 * at most its own start: the ids of no part not yet packed are in the way. */
typedef struct {
    part_job *jobs;
    int n;
    int done[MAX_PARTS];  /* part k has run (atomic) */
    int packing;          /* a thread is packing (atomic) */
    int packed;           /* parts packed (atomic; written by the packer) */
    size_t total;         /* their tokens (the packer's) */
    uint32_t *ids;
    size_t *offsets;
} pack_queue;

static void pack_part(pack_queue *p, part_job *j) {
    if (p->total != j->start) memmove(p->ids + p->total, p->ids + j->start, j->out.n * sizeof *p->ids);
    if (p->offsets)
        for (size_t i = 0; i < j->out.n; i++) p->offsets[p->total + i] = p->offsets[j->start + i] + j->start;
    p->total += j->out.n;
}

/* Whether the next part to pack has run without an error. */
static int pack_ready(pack_queue *p) {
    int k = __atomic_load_n(&p->packed, __ATOMIC_SEQ_CST);
    return k < p->n && __atomic_load_n(&p->done[k], __ATOMIC_SEQ_CST) && !p->jobs[k].rc;
}

static void pack_run(void *ctx, int k, cache_slot *cache) {
    pack_queue *p = ctx;
    part_job *j = &p->jobs[k];
    part_run(j, 0, cache);
    if (!j->rc) bpe_ranks_to_ids(j->v, j->out.ids, j->out.n);
    __atomic_store_n(&p->done[k], 1, __ATOMIC_SEQ_CST);
    /* A part done while another thread packs is left to that one, which
     * looks again once it has let go (sequentially consistent: one of the
     * two sees the other). */
    while (pack_ready(p) && !__atomic_exchange_n(&p->packing, 1, __ATOMIC_SEQ_CST)) {
        while (pack_ready(p)) {
            int m = __atomic_load_n(&p->packed, __ATOMIC_SEQ_CST);
            pack_part(p, &p->jobs[m]);
            __atomic_store_n(&p->packed, m + 1, __ATOMIC_SEQ_CST);
        }
        __atomic_store_n(&p->packing, 0, __ATOMIC_SEQ_CST);
    }
}

/* bpe_encode_parallel, for text at offset `base` of a stream. */
static int encode_parallel(const struct bpe *v, const void *text, size_t len, int flags, int threads,
                           uint32_t *ids, size_t *offsets, size_t cap, size_t *n_tokens, uint64_t base,
                           cache_pool *pool, bpe_error *err) {
    threads = threads_for(len, threads);
    if (threads <= 1 || cap < len) {
        if (!pool || cap < len || len < CACHE_MIN_TEXT)
            return bpe_encode_at(v, text, len, flags, ids, offsets, cap, n_tokens, base, err);
        threads = 1;  /* one part, with the stream's cache */
    }
    if (!v || !text || !ids || bpe_bad_flags(flags, BPE_SPECIAL_MASK | BPE_STRICT))
        return bpe_fail(err, BPE_ERR_ARG, 0, "bpe_encode_parallel: bad argument");
    if (n_tokens) *n_tokens = 0;
    part_job jobs[MAX_PARTS];
    pack_queue p = {jobs, 0, {0}, 0, 0, 0, ids, offsets};
    p.n = plan_parts(v, text, 0, len, 0, MAX_PARTS, flags, threads, 0, ids, offsets, base, pool, NULL, jobs);
    job_queue q = {pack_run, &p, p.n, 0, !pool};
    bpe_queue_run(&q, threads);

    /* the parts not packed yet (the threads are joined), or the first error */
    for (int k = p.packed; k < p.n; k++) {
        if (jobs[k].rc) {
            if (err) *err = jobs[k].err;
            return jobs[k].rc;
        }
        pack_part(&p, &jobs[k]);
    }
    if (n_tokens) *n_tokens = p.total;
    return BPE_OK;
}

int bpe_encode_parallel(const bpe *v, const void *text, size_t len, int flags, int threads,
                        uint32_t *ids, size_t *offsets, size_t cap, size_t *n_tokens,
                        bpe_error *err) {
    return encode_parallel(v, text, len, flags, threads, ids, offsets, cap, n_tokens, 0, NULL, err);
}

/* ---- streaming -------------------------------------------------------------------- */

/* A stream's text is taken a block at a time. With one thread a block is
 * encoded as soon as it is cut, and its tokens handed over at once. With
 * more, a cut block is given to the stream's threads (made once, kept for
 * its life) as parts and the call returns: the caller reads the next
 * block into a free buffer while they encode. The stream holds
 * STREAM_BLOCKS blocks, so that two may be queued while a third is read:
 * the caller's thread helps with the parts only when every buffer is in
 * use, and then one queued block is still there for the other threads,
 * which do not stand idle while the caller reads (with two blocks they
 * did, for each block the caller read). A block's tokens go to the sink,
 * in order, from a later call (one that cuts a block when every buffer is
 * in use, or bpe_stream_wait, or bpe_stream_finish). */
#define STREAM_BLOCKS 3
typedef struct {
    uint8_t *buf;
    size_t len, cap;
    uint64_t base;          /* stream offset of buf[0] */
    uint32_t *ids;
    size_t *offs;
    size_t ids_cap;
    part_job *jobs;         /* MAX_PARTS, made when the block is first queued */
    int n, next, left;      /* parts; the next to take; those not done (under mu) */
    int queued;             /* its tokens are not handed over yet */
    uint64_t seq;           /* queued blocks are taken oldest first */
} stream_block;

typedef struct {
    struct bpe_stream *st;
    int me;
} stream_thread;

struct bpe_stream {
    const struct bpe *v;
    int flags, threads, done, failed;
    stream_block blk[STREAM_BLOCKS]; /* blk[fill] takes the text; with threads, others may be queued */
    int fill;
    uint8_t *ring;          /* the blocks' first text and ids buffers: blk[k].buf and .ids may be slices of it */
    size_t no_cut;          /* the text has no safe cut below this position (already scanned) */
    cache_pool *caches;     /* kept from block to block; NULL: each block makes its own */
    int queue;              /* the threads are set up: mu, work, idle */
    pthread_mutex_t mu;
    pthread_cond_t work, idle;
    pthread_t tid[MAX_THREADS];
    stream_thread who[MAX_THREADS];   /* a thread's number: its cache */
    int started, workers, stop;
    int finishing;          /* the last block is queued: threads end when no part is left */
    uint64_t seq;
};

_Static_assert(sizeof(size_t) == sizeof(uint64_t), "offsets are passed to sinks in place");

#define STREAM_BLOCK (1u << 20)
#define STREAM_FIRST (64u << 10)

/* A block of text: 1 MB, or 128 KB a thread when the threads take it,
 * less the big buffer's header. With threads the STREAM_BLOCKS blocks'
 * text and their ids (room for a token a byte, the most a text has) are
 * one buffer, the ring: two huge pages at two threads. A fresh huge page
 * costs a fault and its zeroing, and far more when a virtual machine has
 * handed the memory back to its host meanwhile (free page reporting), so
 * few and small blocks; queued one after another they keep the threads
 * busy all the same. */
static size_t block_size(const bpe_stream *st) {
    size_t b = st->queue ? (size_t)STREAM_BLOCK / 8 * (size_t)st->threads : STREAM_BLOCK;
    return b - BPE_BIG_HEAD;
}

/* The ids part of the ring, after the text. */
static uint32_t *ring_ids(const bpe_stream *st) {
    return (uint32_t *)(st->ring + STREAM_BLOCKS * block_size(st));
}

/* Whether p is a slice of the ring's text or of its ids. */
static int in_ring(const bpe_stream *st, const uint8_t *p) {
    return st->ring && p >= st->ring && p < st->ring + STREAM_BLOCKS * block_size(st);
}

static int in_id_ring(const bpe_stream *st, const uint32_t *p) {
    return st->ring && p >= ring_ids(st) && p < ring_ids(st) + STREAM_BLOCKS * block_size(st);
}

bpe_stream *bpe_stream_new(const bpe *v, int flags, int threads, bpe_error *err) {
    if (!v || bpe_bad_flags(flags, BPE_SPECIAL_MASK | BPE_STRICT | BPE_OFFSETS)) {
        bpe_fail(err, BPE_ERR_ARG, 0, "bpe_stream_new: bad argument");
        return NULL;
    }
    bpe_stream *st = gpt2in_calloc(1, sizeof *st);
    if (!st) {
        bpe_fail(err, BPE_ERR_NOMEM, 0, "out of memory");
        return NULL;
    }
    st->v = v;
    st->flags = flags;
    int cpus = bpe_cpu_count();  /* (sysconf reads a file under /sys each call) */
    st->threads = threads <= 0 ? cpus : threads > MAX_THREADS ? MAX_THREADS : threads;
    st->caches = gpt2in_calloc(1, sizeof *st->caches);  /* (without it, each block makes its own) */
    if (st->caches) st->caches->huge = st->threads < cpus ? st->threads : cpus;
    if (st->threads > 1 && !pthread_mutex_init(&st->mu, NULL)) {
        if (!pthread_cond_init(&st->work, NULL)) {
            if (!pthread_cond_init(&st->idle, NULL)) st->queue = 1;
            else pthread_cond_destroy(&st->work);
        }
        if (!st->queue) pthread_mutex_destroy(&st->mu);
    }
    return st;  /* (without the queue, blocks are encoded as with one thread) */
}

/* Room in b's ids for the tokens of n bytes. */
static int block_ids(const bpe_stream *st, stream_block *b, size_t n) {
    if (b->ids_cap >= n) return 1;
    size_t c = n + n / 2;
    uint32_t *ids = in_id_ring(st, b->ids) ? bpe_big_alloc(c * sizeof *ids) : bpe_big_grow(b->ids, 0, c * sizeof *ids);
    if (ids) b->ids = ids;
    size_t *offs = ids && (st->flags & BPE_OFFSETS) ? bpe_big_grow(b->offs, 0, c * sizeof *offs) : b->offs;
    if (offs) b->offs = offs;
    if (!ids || ((st->flags & BPE_OFFSETS) && !offs)) return 0;
    b->ids_cap = c;
    return 1;
}

static int stream_failed(bpe_stream *st, int rc) {
    st->failed = rc;
    return rc;
}

/* Encodes the fill block's buf[0..n) on this thread and hands the tokens
 * to the sink; the rest of its text moves to its start. */
static int stream_encode(bpe_stream *st, size_t n, bpe_sink sink, void *ctx, bpe_error *err) {
    stream_block *b = &st->blk[st->fill];
    if (!block_ids(st, b, n)) return bpe_fail(err, BPE_ERR_NOMEM, b->base, "out of memory");
    size_t nt;
    static const uint8_t nothing[1];
    int rc = encode_parallel(st->v, n ? b->buf : nothing, n, st->flags & ~BPE_OFFSETS, 1, b->ids,
                             st->flags & BPE_OFFSETS ? b->offs : NULL, b->ids_cap, &nt, b->base, st->caches, err);
    if (rc) return rc;
    uint64_t *offs = NULL;
    if (st->flags & BPE_OFFSETS) {
        offs = (uint64_t *)b->offs;
        for (size_t i = 0; i < nt; i++) offs[i] = b->offs[i] + b->base;
    }
    if (nt && sink && sink(ctx, b->ids, offs, nt))
        return bpe_fail(err, BPE_ERR_CALLBACK, b->base, "stopped by the caller");
    if (b->len > n) memmove(b->buf, b->buf + n, b->len - n);
    b->len -= n;
    b->base += n;
    return BPE_OK;
}

/* The oldest queued part not yet taken, or NULL (under mu). */
static part_job *take_part(bpe_stream *st) {
    stream_block *b = NULL;
    for (int i = 0; i < STREAM_BLOCKS; i++) {
        stream_block *c = &st->blk[i];
        if (c->queued && c->next < c->n && (!b || c->seq < b->seq)) b = c;
    }
    return b ? &b->jobs[b->next++] : NULL;
}

/* The queued block whose tokens go out next, or NULL. */
static stream_block *oldest_queued(bpe_stream *st) {
    stream_block *b = NULL;
    for (int i = 0; i < STREAM_BLOCKS; i++) {
        stream_block *c = &st->blk[i];
        if (c->queued && (!b || c->seq < b->seq)) b = c;
    }
    return b;
}

/* A block other than `but` that holds no queued text (it may take the
 * text), or NULL. */
static stream_block *free_block(bpe_stream *st, const stream_block *but) {
    for (int i = 0; i < STREAM_BLOCKS; i++)
        if (&st->blk[i] != but && !st->blk[i].queued) return &st->blk[i];
    return NULL;
}

/* Runs j on the stream's thread `me` (0: the caller's), with that
 * thread's own cache: a cache stays in one core's caches, where one taken
 * by whichever thread is free would move between cores (mu held on entry
 * and on return). */
static void run_part(bpe_stream *st, part_job *j, int me) {
    pthread_mutex_unlock(&st->mu);
    cache_slot *cache = NULL;
    if (st->caches && j->end - j->start >= CACHE_MIN_TEXT) cache = pool_slot(st->caches, me);
    part_run(j, 0, cache);
    pthread_mutex_lock(&st->mu);
    if (!--*j->left) pthread_cond_broadcast(&st->idle);
}

static void *stream_worker(void *arg) {
    bpe_stream *st = ((stream_thread *)arg)->st;
    int me = ((stream_thread *)arg)->me;
    pthread_mutex_lock(&st->mu);
    while (!st->stop) {
        part_job *j = take_part(st);
        if (j) run_part(st, j, me);
        else if (st->finishing) break;
        else pthread_cond_wait(&st->work, &st->mu);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* Parts queued and not taken (under mu). */
static int parts_waiting(const bpe_stream *st) {
    int n = 0;
    for (int i = 0; i < STREAM_BLOCKS; i++)
        if (st->blk[i].queued) n += st->blk[i].n - st->blk[i].next;
    return n;
}

/* Waits for b's parts, taking queued parts meanwhile (b's first), then
 * hands b's tokens to the sink. Unless greedy (nothing more will be
 * queued soon), the caller's thread leaves the last part waiting to the
 * other threads once b's own are taken: it is to read the next block,
 * and they would stand idle meanwhile. */
static int block_done(bpe_stream *st, stream_block *b, int greedy, bpe_sink sink, void *ctx, bpe_error *err) {
    pthread_mutex_lock(&st->mu);
    while (b->left) {
        part_job *j = greedy || b->next < b->n || parts_waiting(st) > 1 ? take_part(st) : NULL;
        if (j) run_part(st, j, 0);
        else pthread_cond_wait(&st->idle, &st->mu);
    }
    b->queued = 0;
    pthread_mutex_unlock(&st->mu);
    for (int k = 0; k < b->n; k++)
        if (b->jobs[k].rc) {
            if (err) *err = b->jobs[k].err;
            return b->jobs[k].rc;
        }
    for (int k = 0; k < b->n; k++) {
        part_job *j = &b->jobs[k];
        if (j->out.n && sink && sink(ctx, j->out.ids, (const uint64_t *)j->out.offs, j->out.n))
            return bpe_fail(err, BPE_ERR_CALLBACK, b->base, "stopped by the caller");
    }
    return BPE_OK;
}

/* Hands the queued blocks' tokens to the sink, in order, waiting for
 * them: with all, every one; else only when no buffer other than the fill
 * block's (just queued) is free, the oldest, so that one is. The others
 * stay queued: the caller reads the next block meanwhile. */
static int hand_over(bpe_stream *st, int all, bpe_sink sink, void *ctx, bpe_error *err) {
    for (stream_block *o; (o = oldest_queued(st));) {
        if (!all && free_block(st, &st->blk[st->fill])) return BPE_OK;
        int rc = block_done(st, o, all, sink, ctx, err);
        if (rc) return rc;
    }
    return BPE_OK;
}

/* At the end of a stream (the last block just queued; mu held) the parts
 * not yet taken are cut again, falling in size over what all queued
 * blocks have left (bpe_part_goal), so that the threads' last parts end
 * close together: a block's even parts, one a thread, left
 * one thread idle for up to a part's time while the other finished. A
 * block whose rest has no cut keeps its part (and the threads that share
 * its long pieces). */
static void split_tail(bpe_stream *st) {
    size_t rest = 0;
    for (int i = 0; i < STREAM_BLOCKS; i++) {
        stream_block *b = &st->blk[i];
        if (b->queued && b->next < b->n) rest += b->jobs[b->n - 1].end - b->jobs[b->next].start;
    }
    for (stream_block *b = NULL;;) {
        /* the queued blocks oldest first */
        stream_block *o = NULL;
        for (int i = 0; i < STREAM_BLOCKS; i++) {
            stream_block *c = &st->blk[i];
            if (c->queued && (!b || c->seq > b->seq) && (!o || c->seq < o->seq)) o = c;
        }
        if (!(b = o)) return;
        if (b->next == b->n) continue;
        size_t from = b->jobs[b->next].start, len = b->jobs[b->n - 1].end;
        rest -= len - from;
        part_job *j = &b->jobs[b->next];
        int before = b->n - b->next, keep = j->out.threads;
        int n = plan_parts(st->v, b->buf, from, len, rest, MAX_PARTS - b->next, st->flags & ~BPE_OFFSETS, st->threads,
                           0, b->ids, st->flags & BPE_OFFSETS ? b->offs : NULL, b->base, NULL, &b->left, j);
        if (n == 1) j->out.threads = before == 1 ? keep : threads_for(len - from, st->threads);
        b->n = b->next + n;
        b->left += n - before;
    }
}

/* b's text buffer with room for `bytes`, its first `keep` bytes kept; NULL
 * (b untouched) when out of memory. A slice of the ring is left as it is
 * (the ring is freed with the stream). */
static uint8_t *text_grow(bpe_stream *st, stream_block *b, size_t keep, size_t bytes) {
    if (!in_ring(st, b->buf)) return bpe_big_grow(b->buf, keep, bytes);
    uint8_t *nb = bpe_big_alloc(bytes);
    if (nb) memcpy(nb, b->buf, keep);
    return nb;
}

/* With threads: queues the fill block's buf[0..n) as parts, hands the
 * tokens of the blocks queued before it to the sink as hand_over says,
 * and moves the rest of the text (buf[n..len)) to a free block, which
 * takes the text from now on. At the end (last), waits for all. */
static int stream_queue(bpe_stream *st, size_t n, int last, bpe_sink sink, void *ctx, bpe_error *err) {
    stream_block *b = &st->blk[st->fill];
    if (n) {
        if (!b->jobs) b->jobs = gpt2in_malloc(MAX_PARTS * sizeof *b->jobs);
        if (!b->jobs || !block_ids(st, b, n))
            return stream_failed(st, bpe_fail(err, BPE_ERR_NOMEM, b->base, "out of memory"));
        /* The threads are made when the first block is queued, and may be
         * fewer than asked (the stream's own thread then does their share). */
        if (!st->started) {
            st->started = 1;
            for (; st->workers < st->threads - 1; st->workers++) {
                st->who[st->workers] = (stream_thread){st, st->workers + 1};
                if (pthread_create(&st->tid[st->workers], NULL, stream_worker, &st->who[st->workers])) break;
            }
        }
        int parts = plan_parts(st->v, b->buf, 0, n, 0, MAX_PARTS, st->flags & ~BPE_OFFSETS, st->threads, 1, b->ids,
                               st->flags & BPE_OFFSETS ? b->offs : NULL, b->base, NULL, &b->left, b->jobs);
        pthread_mutex_lock(&st->mu);
        b->n = parts;
        b->left = parts;
        b->next = 0;
        b->seq = ++st->seq;
        b->queued = 1;
        if (last) split_tail(st);
        pthread_cond_broadcast(&st->work);
        pthread_mutex_unlock(&st->mu);
    }
    if (last) {
        /* nothing more comes: the other threads end once no part is left
         * to take, while this one waits for the parts in flight */
        pthread_mutex_lock(&st->mu);
        st->finishing = 1;
        pthread_cond_broadcast(&st->work);
        pthread_mutex_unlock(&st->mu);
    }
    int rc = hand_over(st, last, sink, ctx, err);
    if (rc || last) return rc ? stream_failed(st, rc) : BPE_OK;
    /* the rest, to a free buffer (a block, or more for a long stretch
     * without a cut) */
    stream_block *o = free_block(st, b);
    size_t rest = b->len - n, block = block_size(st);
    if (o->cap < rest || o->cap < block) {
        uint8_t *nb = text_grow(st, o, 0, rest > block ? rest : block);
        if (!nb) return stream_failed(st, bpe_fail(err, BPE_ERR_NOMEM, b->base + n, "out of memory"));
        o->buf = nb;
        o->cap = rest > block ? rest : block;
    }
    memcpy(o->buf, b->buf + n, rest);
    o->len = rest;
    o->base = b->base + n;
    b->len = n;
    st->fill = (int)(o - st->blk);
    return BPE_OK;
}

/* Room for want bytes or more after the text held (within reason: no more
 * than a block is asked for at once). */
static uint8_t *stream_room(bpe_stream *st, size_t want, size_t *room, bpe_error *err) {
    stream_block *b = &st->blk[st->fill];
    size_t block = block_size(st);
    if (want == 0) want = 1;
    if (b->cap - b->len < want && b->cap - b->len < block) {
        /* From small, so that a short input touches few fresh pages; then
         * a whole block at once (mapped, on huge pages): doubling on the
         * way would copy the text and fault fresh pages in at each step. */
        size_t c = !b->cap && want <= STREAM_FIRST ? STREAM_FIRST : b->cap < block ? block : b->cap * 2;
        int others = 0;
        for (int i = 0; i < STREAM_BLOCKS; i++) others |= &st->blk[i] != b && st->blk[i].buf;
        uint8_t *nb;
        if (st->queue && c == block && !st->ring && !others &&
            (st->ring = bpe_big_alloc(STREAM_BLOCKS * block * (1 + sizeof *b->ids)))) {
            /* the blocks' text and ids in one buffer (block_size) */
            nb = st->ring;
            if (b->buf) memcpy(nb, b->buf, b->len);
            bpe_big_free(b->buf);
            for (int i = 0, k = 1; i < STREAM_BLOCKS; i++)
                if (&st->blk[i] != b) {
                    st->blk[i].buf = st->ring + (size_t)k++ * block;
                    st->blk[i].cap = block;
                }
            for (int i = 0; i < STREAM_BLOCKS && !(st->flags & BPE_OFFSETS); i++)
                if (!st->blk[i].ids) {
                    st->blk[i].ids = ring_ids(st) + (size_t)i * block;
                    st->blk[i].ids_cap = block;
                }
        } else {
            nb = text_grow(st, b, b->len, c);
        }
        if (!nb) {
            bpe_fail(err, BPE_ERR_NOMEM, b->base, "out of memory");
            return NULL;
        }
        b->buf = nb;
        b->cap = c;
    }
    *room = b->cap - b->len;
    return b->buf + b->len;
}

/* The n bytes after the text held are the text's next ones: once a block
 * is held, encodes (or queues) it up to its last safe cut. */
static int stream_take(bpe_stream *st, size_t n, bpe_sink sink, void *ctx, bpe_error *err) {
    stream_block *b = &st->blk[st->fill];
    b->len += n;
    if (b->len < block_size(st)) return BPE_OK;
    /* Only the new bytes are scanned: one long piece arriving in many
     * writes is not scanned again each time. */
    size_t cut = text_cut(st->v, b->buf, b->len, b->len, st->no_cut, st->flags);
    /* a prefix of a special token at the end may turn out not to be one */
    size_t tail = st->v->special_max_len;
    st->no_cut = b->len > tail ? b->len - tail : 0;
    if (!cut) return BPE_OK;
    int rc = st->queue ? stream_queue(st, cut, 0, sink, ctx, err) : stream_encode(st, cut, sink, ctx, err);
    st->no_cut = 0;  /* what is left moved: scan it once more */
    return rc;
}

int bpe_stream_write(bpe_stream *st, const void *data, size_t len, bpe_sink sink, void *ctx,
                     bpe_error *err) {
    if (!st || st->done || (!data && len)) return bpe_fail(err, BPE_ERR_ARG, 0, "bpe_stream_write: bad argument");
    if (st->failed) return bpe_fail(err, BPE_ERR_ARG, 0, "bpe_stream_write: the stream has failed");
    const uint8_t *d = data;
    while (len) {
        size_t room;
        uint8_t *p = stream_room(st, len, &room, err);
        if (!p) return BPE_ERR_NOMEM;
        size_t take = room < len ? room : len;
        memcpy(p, d, take);
        d += take;
        len -= take;
        int rc = stream_take(st, take, sink, ctx, err);
        if (rc) return rc;
    }
    return BPE_OK;
}

void *bpe_stream_room(bpe_stream *st, size_t want, size_t *room, bpe_error *err) {
    if (!st || st->done || st->failed || !room) {
        bpe_fail(err, BPE_ERR_ARG, 0, "bpe_stream_room: bad argument");
        return NULL;
    }
    return stream_room(st, want, room, err);
}

int bpe_stream_commit(bpe_stream *st, size_t len, bpe_sink sink, void *ctx, bpe_error *err) {
    if (!st || st->done || st->failed || len > st->blk[st->fill].cap - st->blk[st->fill].len)
        return bpe_fail(err, BPE_ERR_ARG, 0, "bpe_stream_commit: bad argument");
    return len ? stream_take(st, len, sink, ctx, err) : BPE_OK;
}

int bpe_stream_wait(bpe_stream *st, bpe_sink sink, void *ctx, bpe_error *err) {
    if (!st || st->done || st->failed) return bpe_fail(err, BPE_ERR_ARG, 0, "bpe_stream_wait: bad argument");
    int rc = st->queue ? hand_over(st, 1, sink, ctx, err) : BPE_OK;
    return rc ? stream_failed(st, rc) : BPE_OK;
}

int bpe_stream_finish(bpe_stream *st, bpe_sink sink, void *ctx, bpe_error *err) {
    if (!st || st->done || st->failed) return bpe_fail(err, BPE_ERR_ARG, 0, "bpe_stream_finish: bad argument");
    st->done = 1;
    if (st->queue) return stream_queue(st, st->blk[st->fill].len, 1, sink, ctx, err);
    return stream_encode(st, st->blk[st->fill].len, sink, ctx, err);
}

void bpe_stream_free(bpe_stream *st) {
    if (!st) return;
    if (st->queue) {
        /* parts not taken yet are dropped; those running end first */
        pthread_mutex_lock(&st->mu);
        st->stop = 1;
        for (int i = 0; i < STREAM_BLOCKS; i++) st->blk[i].next = st->blk[i].n;
        pthread_cond_broadcast(&st->work);
        pthread_mutex_unlock(&st->mu);
        for (int k = 0; k < st->workers; k++) pthread_join(st->tid[k], NULL);
        pthread_cond_destroy(&st->idle);
        pthread_cond_destroy(&st->work);
        pthread_mutex_destroy(&st->mu);
    }
    for (int i = 0; i < STREAM_BLOCKS; i++) {
        if (!in_ring(st, st->blk[i].buf)) bpe_big_free(st->blk[i].buf);
        if (!in_id_ring(st, st->blk[i].ids)) bpe_big_free(st->blk[i].ids);
        bpe_big_free(st->blk[i].offs);
        free(st->blk[i].jobs);
    }
    bpe_big_free(st->ring);
    pool_free(st->caches);
    free(st);
}
