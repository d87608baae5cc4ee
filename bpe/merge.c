/* merge.c - byte-pair merging of one piece, by the definition: the
 * adjacent pair of lowest rank merges first, leftmost on ties, until no
 * pair is a token (tiktoken's loop, its byte_pair_merge). Three ways to
 * run it: step by step (bpe_merge_traced, which also records the process
 * for the image's split table), the short-piece loop (bpe_merge_short,
 * whose pieces of 2 and 3 bytes have the loop's outcome written out), and
 * a heap (bpe_merge_long, the tests' reference for long pieces). */
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "merge.h"

/* BPE of p[0..n) (n <= SHORT_PIECE) into tok, tiktoken's O(n^2) merge loop
 * as written there; returns the number of tokens. trace (may be NULL)
 * records the merge process. */
size_t bpe_merge_traced(const struct bpe *v, const uint8_t *p, size_t n, uint32_t *tok,
                           merge_trace *trace) {
    uint32_t rank[SHORT_PIECE], last = 0;
    size_t m = n;
    for (size_t i = 0; i < n; i++) tok[i] = v->byte_tok[p[i]];
    for (size_t i = 0; i + 1 < m; i++) rank[i] = bpe_pair_rank(v, tok[i], tok[i + 1]);
    rank[m - 1] = BPE_EMPTY;
    for (;;) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < m; i++)
            if (rank[i] < rank[best]) best = i;
        if (rank[best] == BPE_EMPTY) break;
        if (trace) {
            if (rank[best] < last) trace->monotone = 0;
            last = rank[best];
            trace->left = tok[best];
            trace->right = tok[best + 1];
        }
        tok[best] = rank[best];
        memmove(tok + best + 1, tok + best + 2, (m - best - 2) * sizeof *tok);
        memmove(rank + best + 1, rank + best + 2, (m - best - 2) * sizeof *rank);
        m--;
        rank[best] = best + 1 < m ? bpe_pair_rank(v, tok[best], tok[best + 1]) : BPE_EMPTY;
        if (best > 0) rank[best - 1] = bpe_pair_rank(v, tok[best - 1], tok[best]);
    }
    return m;
}

/* The same merges as bpe_merge_traced (tiktoken's byte_pair_merge: a
 * linear scan for the lowest rank each step), faster: parts keep their
 * byte position (linked by next/prev) instead of being moved, and each
 * pair's rank and position are one key, rank << 8 | position, so that the
 * lowest rank, leftmost on ties, is a plain minimum over a fixed array,
 * which compilers vectorise. */
#define KEY_NONE INT32_MAX

/* Ranks are below 2^21, so a pair's key is below 2^29; a pair that is no
 * token (rank BPE_EMPTY) is masked to KEY_NO_PAIR | position or above,
 * over every pair that is, without a branch. */
#define KEY_NO_PAIR 0x7FFFFF00u

static inline uint32_t pair_key(uint32_t rank, size_t pos) {
    return (rank << 8 | (uint32_t)pos) & INT32_MAX;
}

/* 0xFFFF, 0, 1, 2 ...: a piece's first prev[] from iota, its next[] from
 * iota + 2, copied 8 at a time (width is a multiple of 8, SHORT_PIECE at
 * most). */
#define IOTA(k) k, k + 1, k + 2, k + 3, k + 4, k + 5, k + 6, k + 7
#define IOTA64(k) IOTA(k), IOTA(k + 8), IOTA(k + 16), IOTA(k + 24), IOTA(k + 32), IOTA(k + 40), IOTA(k + 48), IOTA(k + 56)
_Static_assert(SHORT_PIECE == 256, "iota is written out for pieces of 256 bytes");
static const uint16_t iota[SHORT_PIECE + 2] = {0xFFFF, IOTA64(0), IOTA64(64), IOTA64(128), IOTA64(192), 256};

/* The least of key[0..width), width a multiple of 8, in two vectors of four
 * lanes (plain SSE2 on x86-64; keys stay below 2^31, so a signed compare
 * serves). */
typedef int32_t key4 __attribute__((vector_size(16)));

static inline key4 min4(key4 a, key4 b) {
    key4 lt = a < b;
    return (a & lt) | (b & ~lt);
}

static inline uint32_t min_key(const uint32_t *key, size_t width) {
    key4 m0, m1, k0, k1;
    memcpy(&m0, key, sizeof m0);
    memcpy(&m1, key + 4, sizeof m1);
    for (size_t i = 8; i < width; i += 8) {
        memcpy(&k0, key + i, sizeof k0);
        memcpy(&k1, key + i + 4, sizeof k1);
        m0 = min4(m0, k0);
        m1 = min4(m1, k1);
    }
    m0 = min4(m0, m1);
    int32_t a = m0[0] < m0[1] ? m0[0] : m0[1], b = m0[2] < m0[3] ? m0[2] : m0[3];
    return (uint32_t)(a < b ? a : b);
}

/* The same with SSE4.1's pminsd (one instruction for min4's four), in a
 * copy of the loop built for it and taken when the CPU has it. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MERGE_SSE41 1
#include <smmintrin.h>

__attribute__((target("sse4.1"))) static inline uint32_t min_key_sse41(const uint32_t *key, size_t width) {
    __m128i m0 = _mm_loadu_si128((const __m128i *)key), m1 = _mm_loadu_si128((const __m128i *)(key + 4));
    for (size_t i = 8; i < width; i += 8) {
        m0 = _mm_min_epi32(m0, _mm_loadu_si128((const __m128i *)(key + i)));
        m1 = _mm_min_epi32(m1, _mm_loadu_si128((const __m128i *)(key + i + 4)));
    }
    m0 = _mm_min_epi32(m0, m1);
    m0 = _mm_min_epi32(m0, _mm_shuffle_epi32(m0, 0x4E));
    m0 = _mm_min_epi32(m0, _mm_shuffle_epi32(m0, 0xB1));
    return (uint32_t)_mm_cvtsi128_si32(m0);
}
#else
#define MERGE_SSE41 0
#endif

/* A merge in progress: merger_start, then merger_step with the least key
 * until that is KEY_NO_PAIR or above, then merger_tokens. */
typedef struct {
    uint32_t tok[SHORT_PIECE], key[SHORT_PIECE + 8];
    uint16_t next[SHORT_PIECE], prev[SHORT_PIECE];
    uint8_t bytes[SHORT_PIECE + 4];  /* the piece, padded for 4-byte loads */
    size_t n, width;
} merger;

/* The rank of the pair of parts at i and next[i] (next[i] < n). Two parts
 * merge exactly when their bytes together are a token, so the pair is
 * found by its bytes: in the small table when they are 3 or 4, else in
 * the token table, whose bloom answers most misses from cache (a table of
 * pairs was slower: it misses cache). */
static inline uint32_t merger_rank(const struct bpe *v, const merger *g, size_t i) {
    size_t j = g->next[i], len = g->next[j] - i;
    if (len <= BPE_SHORT_MAX) {
        uint32_t w;
        memcpy(&w, g->bytes + i, 4);
        if (len == 3) w &= 0xFFFFFF;
        return bpe_short_token(v, w, len);
    }
    return len <= v->max_token_len ? bpe_find_token(v, g->bytes + i, len) : BPE_EMPTY;
}

static inline __attribute__((always_inline)) void merger_start(const struct bpe *v, merger *g, const uint8_t *p,
                                                               size_t n) {
    g->n = n;
    g->width = (n + 7) & ~(size_t)7;
    memcpy(g->bytes, p, n);
    memset(g->bytes + n, 0, 4);
    for (size_t k = 0; k < g->width; k += 8) {
        memcpy(g->next + k, iota + 2 + k, 8 * sizeof *iota);
        memcpy(g->prev + k, iota + k, 8 * sizeof *iota);
    }
    const uint32_t *byte_tok = v->byte_tok, *byte_pairs = v->byte_pairs;
    /* each byte's token, and each pair of bytes' key from the table of
     * what two bytes merge into, in one pass without a branch */
    for (size_t i = 0; i + 1 < n; i++) {
        uint16_t xy;  /* p[i] << 8 | p[i + 1], one load */
        memcpy(&xy, p + i, 2);
        if (BPE_LITTLE_ENDIAN) xy = __builtin_bswap16(xy);
        g->tok[i] = byte_tok[p[i]];
        g->key[i] = pair_key(byte_pairs[xy], i);
    }
    g->tok[n - 1] = byte_tok[p[n - 1]];
    /* key[n - 1 .. width): at most 8, and key has 8 to spare. */
    for (size_t k = 0; k < 8; k++) g->key[n - 1 + k] = KEY_NONE;
}

/* Applies the merge of key best, the least. */
static inline __attribute__((always_inline)) void merger_step(const struct bpe *v, merger *g, uint32_t best) {
    size_t i = best & 255, j = g->next[i], k = g->next[j];
    uint32_t t = best >> 8, right = KEY_NONE;
    /* a side the new part cannot extend to has no pair to look up (most
     * lookups in words of other scripts and random letters) */
    unsigned ext = v->tok_ext[t];
    g->tok[i] = t;
    g->key[j] = KEY_NONE;
    g->next[i] = (uint16_t)k;
    if (k < g->n) {
        g->prev[k] = (uint16_t)i;
        if (ext & BPE_EXT_RIGHT) right = pair_key(merger_rank(v, g, i), i);
    }
    g->key[i] = right;
    if (i > 0) {
        size_t h = g->prev[i];
        g->key[h] = ext & BPE_EXT_LEFT ? pair_key(merger_rank(v, g, h), h) : KEY_NONE;
    }
}

static size_t merger_tokens(const merger *g, uint32_t *out) {
    size_t m = 0;
    for (size_t i = 0; i < g->n; i = g->next[i]) out[m++] = g->tok[i];
    return m;
}

#define MERGE_LOOP(min)                                                          \
    {                                                                            \
        merger g;                                                                \
        merger_start(v, &g, p, n);                                               \
        for (uint32_t best; (best = min(g.key, g.width)) < KEY_NO_PAIR;) merger_step(v, &g, best); \
        return merger_tokens(&g, out);                                           \
    }

static size_t merge_loop(const struct bpe *v, const uint8_t *p, size_t n, uint32_t *out) MERGE_LOOP(min_key)

#if MERGE_SSE41
__attribute__((target("sse4.1"))) static size_t merge_loop_sse41(const struct bpe *v, const uint8_t *p, size_t n,
                                                                  uint32_t *out) MERGE_LOOP(min_key_sse41)

/* Whether the CPU has SSE4.1, asked once (-1: not yet). */
static int cpu_sse41 = -1;

static int have_sse41(void) {
    int k = __atomic_load_n(&cpu_sse41, __ATOMIC_RELAXED);
    if (k < 0) {
        __builtin_cpu_init();
        k = __builtin_cpu_supports("sse4.1") ? 1 : 0;
        __atomic_store_n(&cpu_sse41, k, __ATOMIC_RELAXED);
    }
    return k;
}
#endif

size_t bpe_merge_short(const struct bpe *v, const uint8_t *p, size_t n, uint32_t *out) {
    if (n - 2 <= 1) return bpe_merge_tiny(v, p, n, out);
#if MERGE_SSE41
    if (have_sse41()) return merge_loop_sse41(v, p, n, out);
#endif
    return merge_loop(v, p, n, out);
}

size_t bpe_merge_short_isa(const struct bpe *v, const uint8_t *p, size_t n, uint32_t *out, int isa) {
    if (n - 2 <= 1) return bpe_merge_tiny(v, p, n, out);
#if MERGE_SSE41
    if (isa == BPE_MERGE_SSE41) return merge_loop_sse41(v, p, n, out);
#endif
    return isa == BPE_MERGE_AUTO ? bpe_merge_short(v, p, n, out) : merge_loop(v, p, n, out);
}

int bpe_merge_isa_supported(int isa) {
#if MERGE_SSE41
    if (isa == BPE_MERGE_SSE41) return have_sse41();
#endif
    return isa != BPE_MERGE_SSE41;
}

int bpe_token_split(const struct bpe *v, uint32_t t, uint32_t *left, uint32_t *right) {
    uint32_t tok[SHORT_PIECE];
    size_t n = token_len(v, t);
    merge_trace tr = {BPE_EMPTY, BPE_EMPTY, 1};
    if (n < 2 || n > SHORT_PIECE || bpe_merge_traced(v, v->tok_bytes + v->tok_off[t], n, tok, &tr) != 1 ||
        tok[0] != t || !tr.monotone)
        return 0;
    *left = tr.left;
    *right = tr.right;
    return 1;
}

int bpe_token_alone(const struct bpe *v, uint32_t t) {
    uint32_t tok[SHORT_PIECE];
    size_t n = token_len(v, t);
    if (n == 1) return v->byte_tok[v->tok_bytes[v->tok_off[t]]] == t;
    /* Too long for the short loop: left out, so that a piece with it goes
     * to the heap (bpe_merge_last finds no token at its end). */
    if (n > SHORT_PIECE) return 0;
    return bpe_merge_short(v, v->tok_bytes + v->tok_off[t], n, tok) == 1 && tok[0] == t;
}

/* Any piece: BPE with a priority queue (binary min-heap) of (rank,
 * position) keys over a doubly linked list of parts, so the same
 * lowest-rank-leftmost order costs O(n log n). Stale heap
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

void bpe_merge_long(out_t *o, const uint8_t *p, size_t n, size_t off) {
    const struct bpe *v = o->v;
    if (n >= UINT32_MAX) {  /* positions are 32-bit */
        o->nomem = 1;
        return;
    }
    uint32_t *tok = gpt2in_malloc(n * 4 * sizeof(uint32_t));
    uint64_t *heap = gpt2in_malloc(3 * n * sizeof(uint64_t));
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
        rank[i] = i + 1 < n ? bpe_pair_rank(v, tok[i], tok[i + 1]) : BPE_EMPTY;
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
        rank[i] = next[i] < n ? bpe_pair_rank(v, tok[i], tok[next[i]]) : BPE_EMPTY;
        if (rank[i] != BPE_EMPTY) heap_push(heap, &hn, (uint64_t)rank[i] << 32 | i);
        uint32_t h = prev[i];
        if (h != UINT32_MAX) {
            rank[h] = bpe_pair_rank(v, tok[h], tok[i]);
            if (rank[h] != BPE_EMPTY) heap_push(heap, &hn, (uint64_t)rank[h] << 32 | h);
        }
    }
    for (uint32_t i = 0; i < n; i = next[i]) {
        emit(o, tok[i], off + i);
    }
    free(tok);
    free(heap);
}
