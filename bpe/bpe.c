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
 *      leftmost first, until no pair is a token -- tiktoken's O(n^2) loop for
 *      short pieces (results cached per call), and for long ones a
 *      linear-time backtracking encoder (a heap as its fallback), so no input
 *      is quadratic.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bpe_internal.h"

int bpe_fail(bpe_error *err, int code, uint64_t offset, const char *fmt, ...) {
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

/* The end of the run of ASCII letters at i, 16 bytes at a time while 16
 * are left (the run may go on with other letters: run_end finishes it). */
static inline size_t ascii_letters_end(const uint8_t *s, size_t i, size_t end) {
#ifdef __SSE2__
    /* A byte | 0x20 is in 'a'..'z' exactly for ASCII letters; bytes of 0x80
     * and up stay negative, below 'a', as signed bytes. */
    const __m128i before_a = _mm_set1_epi8('a' - 1), after_z = _mm_set1_epi8('z' + 1),
                  lower = _mm_set1_epi8(0x20);
    while (end - i >= 16) {
        __m128i x = _mm_or_si128(_mm_loadu_si128((const __m128i *)(s + i)), lower);
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_and_si128(_mm_cmpgt_epi8(x, before_a), _mm_cmplt_epi8(x, after_z)));
        if (m != 0xFFFF) return i + (size_t)__builtin_ctz(~m);
        i += 16;
    }
#else
    (void)s;
    (void)end;
#endif
    return i;
}

/* run_end, letters first through ascii_letters_end. */
static inline size_t class_run_end(const struct bpe *v, const uint8_t *s, size_t i, size_t end, int cls) {
    if (cls == CLS_LETTER) i = ascii_letters_end(s, i, end);
    return run_end(v, s, i, end, cls);
}

/* ---- output ---------------------------------------------------------------- */

/* Pieces that are not whole tokens (names, rare words, numbers) recur in
 * real text; their merges are remembered here, per call and per thread.
 * A slot is one cache line. A text in many languages has tens of
 * thousands of such words, hence 16384 slots (1 MB, one huge page, see
 * cache_new). */
#define CACHE_SLOTS 16384
#define CACHE_BYTES 30
#define CACHE_TOKENS 8
#define CACHE_MIN_TEXT (64u << 10)

typedef struct {
    uint8_t len, n_tok;
    uint8_t bytes[CACHE_BYTES];
    uint32_t tok[CACHE_TOKENS];
} cache_slot;
_Static_assert(sizeof(cache_slot) == 64, "a piece cache slot is one cache line");

typedef struct {
    const struct bpe *v;
    uint32_t *ids;
    size_t *offs;
    size_t cap, n;
    int nomem;
    cache_slot *cache;   /* CACHE_SLOTS, for long texts only; NULL otherwise */
    int threads;         /* a very long piece may use this many threads */
} out_t;

static inline void emit(out_t *o, uint32_t id, size_t off) {
    if (o->n < o->cap) {
        o->ids[o->n] = id;
        if (o->offs) o->offs[o->n] = off;
    }
    o->n++;
}

/* Large buffers (the stream's, the tokens of a long piece's parts) are
 * mapped on their own, 2 MB-aligned, and ask for transparent huge pages:
 * a fresh 4 KB page costs a page fault on first touch, a huge page one
 * fault for 2 MB.
 * Smaller ones come from malloc. A header before the data says which, and
 * how much room there is. */
#define BIG_HUGE ((size_t)2 << 20)
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BIG_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(BIG_SANITIZED)
#define BIG_MAP 0  /* all from malloc, where AddressSanitizer sees overruns */
#else
#define BIG_MAP 1
#endif
#define BIG_MAPPED_MIN ((size_t)256 << 10)
#define BIG_HEAD 64

typedef struct {
    size_t room;   /* usable bytes after the header */
    size_t mapped; /* bytes mapped at the header, or 0: malloc'd */
} big_head;

/* Mapped when bytes >= mapped_min. */
static void *big_alloc_from(size_t bytes, size_t mapped_min) {
    big_head *h = NULL;
    if (bytes > SIZE_MAX - BIG_HEAD - 2 * BIG_HUGE) return NULL;
    if (BIG_MAP && bytes >= mapped_min) {
        size_t size = (bytes + BIG_HEAD + BIG_HUGE - 1) & ~(BIG_HUGE - 1);
        uint8_t *m = mmap(NULL, size + BIG_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return NULL;
        uint8_t *a = (uint8_t *)(((uintptr_t)m + BIG_HUGE - 1) & ~(uintptr_t)(BIG_HUGE - 1));
        if (a > m) munmap(m, (size_t)(a - m));
        if (m + size + BIG_HUGE > a + size) munmap(a + size, (size_t)(m + size + BIG_HUGE - (a + size)));
#ifdef MADV_HUGEPAGE
        madvise(a, size, MADV_HUGEPAGE);  /* a hint: the kernel may ignore it */
#endif
        h = (big_head *)a;
        *h = (big_head){size - BIG_HEAD, size};
    } else {
        h = gpt2in_malloc(BIG_HEAD + bytes);
        if (!h) return NULL;
        *h = (big_head){bytes, 0};
    }
    return (uint8_t *)h + BIG_HEAD;
}

static void *big_alloc(size_t bytes) { return big_alloc_from(bytes, BIG_MAPPED_MIN); }

/* A piece cache, zeroed. Its 1 MB is touched all over by a text of a
 * megabyte, so it is mapped like the large buffers: one fault (a huge
 * page), not 256. */
static cache_slot *cache_new(void) {
    size_t bytes = CACHE_SLOTS * sizeof(cache_slot);
    cache_slot *c = big_alloc_from(bytes, 0);
    if (c && !BIG_MAP) memset(c, 0, bytes);  /* mapped memory is zero already */
    return c;
}

static void big_free(void *p) {
    if (!p) return;
    big_head *h = (big_head *)((uint8_t *)p - BIG_HEAD);
    if (h->mapped) munmap(h, h->mapped);
    else free(h);
}

/* p with room for `bytes`, its first `keep` bytes kept; NULL (p untouched)
 * when out of memory. */
static void *big_grow(void *p, size_t keep, size_t bytes) {
    if (p && ((big_head *)((uint8_t *)p - BIG_HEAD))->room >= bytes) return p;
    void *q = big_alloc(bytes);
    if (q && p) {
        memcpy(q, p, keep);
        big_free(p);
    }
    return q;
}

/* ---- merging ----------------------------------------------------------------- */

static inline uint32_t token_len(const struct bpe *v, uint32_t id) {
    return v->tok_off[id + 1] - v->tok_off[id];
}

/* Pieces up to this long merge with tiktoken's quadratic loop; it also
 * re-encodes two adjacent tokens (at most 2 x 128 bytes for GPT-2) when the
 * long-piece encoder checks that they are compatible. */
#define SHORT_PIECE 256

/* What bpe_token_split needs to know about a merge process. */
typedef struct {
    uint32_t left, right;   /* the parts of the last merge */
    int monotone;           /* ranks never decreased */
} merge_trace;

/* BPE of p[0..n) (n <= SHORT_PIECE) into tok; returns the number of tokens.
 * trace (may be NULL) records the merge process. */
static size_t merge_traced(const struct bpe *v, const uint8_t *p, size_t n, uint32_t *tok,
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

/* The same merges as merge_traced, faster: parts keep their byte position
 * (linked by next/prev) instead of being moved, and each pair's rank and
 * position are one key, rank << 8 | position, so that the lowest rank,
 * leftmost on ties, is a plain minimum over a fixed array, which compilers
 * vectorise. */
#define KEY_NONE INT32_MAX

static inline uint32_t pair_key(uint32_t rank, size_t pos) {
    return rank == BPE_EMPTY ? KEY_NONE : rank << 8 | (uint32_t)pos;
}

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

/* A merge in progress: merger_start, then merger_step until it returns 0,
 * then merger_tokens. */
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

static void merger_start(const struct bpe *v, merger *g, const uint8_t *p, size_t n) {
    g->n = n;
    g->width = (n + 7) & ~(size_t)7;
    memcpy(g->bytes, p, n);
    memset(g->bytes + n, 0, 4);
    for (size_t i = 0; i < n; i++) {
        g->tok[i] = v->byte_tok[p[i]];
        g->next[i] = (uint16_t)(i + 1);
        g->prev[i] = (uint16_t)(i - 1);
    }
    for (size_t i = 0; i + 1 < n; i++) {
        uint32_t r = v->byte_pairs[p[i] << 8 | p[i + 1]];
        g->key[i] = r == BPE_EMPTY ? KEY_NONE : r << 8 | (uint32_t)i;
    }
    /* key[n - 1 .. width): at most 8, and key has 8 to spare. */
    for (size_t k = 0; k < 8; k++) g->key[n - 1 + k] = KEY_NONE;
}

/* Applies the next merge; 0 when there is none left. */
static inline int merger_step(const struct bpe *v, merger *g) {
    uint32_t best = min_key(g->key, g->width);
    if (best == KEY_NONE) return 0;
    size_t i = best & 255, j = g->next[i], n = g->n;
    g->tok[i] = best >> 8;
    g->key[j] = KEY_NONE;
    g->next[i] = g->next[j];
    if (g->next[i] < n) {
        g->prev[g->next[i]] = (uint16_t)i;
        g->key[i] = pair_key(merger_rank(v, g, i), i);
    } else {
        g->key[i] = KEY_NONE;
    }
    if (i > 0) g->key[g->prev[i]] = pair_key(merger_rank(v, g, g->prev[i]), g->prev[i]);
    return 1;
}

static size_t merger_tokens(const merger *g, uint32_t *out) {
    size_t m = 0;
    for (size_t i = 0; i < g->n; i = g->next[i]) out[m++] = g->tok[i];
    return m;
}

static size_t merge_short(const struct bpe *v, const uint8_t *p, size_t n, uint32_t *out) {
    merger g;
    merger_start(v, &g, p, n);
    while (merger_step(v, &g)) {}
    return merger_tokens(&g, out);
}

int bpe_token_split(const struct bpe *v, uint32_t t, uint32_t *left, uint32_t *right) {
    uint32_t tok[SHORT_PIECE];
    size_t n = token_len(v, t);
    merge_trace tr = {BPE_EMPTY, BPE_EMPTY, 1};
    if (n < 2 || n > SHORT_PIECE || merge_traced(v, v->tok_bytes + v->tok_off[t], n, tok, &tr) != 1 ||
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
     * to the heap (merge_last finds no token at its end). */
    if (n > SHORT_PIECE) return 0;
    return merge_short(v, v->tok_bytes + v->tok_off[t], n, tok) == 1 && tok[0] == t;
}

/* Whether o's buffer has room for m more ids. */
static inline int has_room(const out_t *o, size_t m) {
    return o->ids && o->cap >= o->n && o->cap - o->n >= m;
}

static void emit_tokens(out_t *o, const uint32_t *tok, size_t m, size_t off) {
    if (!o->offs && has_room(o, m)) {  /* no offsets to work out: one copy */
        memcpy(o->ids + o->n, tok, m * sizeof *tok);
        o->n += m;
        return;
    }
    for (size_t i = 0; i < m; i++) {
        emit(o, tok[i], off);
        off += token_len(o->v, tok[i]);
    }
}

/* The single-byte tokens of p[0..k). */
static void emit_bytes(out_t *o, const uint8_t *p, size_t k, size_t off) {
    const uint32_t *byte_tok = o->v->byte_tok;
    if (!o->offs && has_room(o, k)) {
        for (size_t i = 0; i < k; i++) o->ids[o->n + i] = byte_tok[p[i]];
        o->n += k;
        return;
    }
    for (size_t i = 0; i < k; i++) emit(o, byte_tok[p[i]], off + i);
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

/* Pair checks. Two facts about BPE (github's rust-gems `bpe` crate uses
 * them too) make the long-piece encoder exact:
 *   - a token sequence is the BPE encoding of its bytes exactly when every
 *     adjacent pair (a, b) is, i.e. encode(bytes(a) bytes(b)) == [a, b];
 *   - the encoding of a text is unique. */

/* The answers of pair checks, by pair: long pieces of a few bytes (runs
 * of digits, of one character) check the same pairs over and over. An
 * entry is a << 32 | b, with bit 63 set when compatible; ids are below
 * 2^21, so no entry is PAIR_MEMO_FREE. */
#define PAIR_MEMO_MAX 16384
#define PAIR_MEMO_FREE UINT64_MAX
#define PAIR_OK (1ull << 63)

typedef struct {
    size_t mask;
    uint64_t e[];
} pair_memo;

/* A memo of about n entries (at most PAIR_MEMO_MAX), or NULL when out of
 * memory (pair checks then go without). */
static pair_memo *pair_memo_new(size_t n) {
    size_t size = 256;
    while (size < n && size < PAIR_MEMO_MAX) size *= 2;
    pair_memo *m = gpt2in_malloc(sizeof *m + size * sizeof *m->e);
    if (!m) return NULL;
    m->mask = size - 1;
    memset(m->e, 0xFF, size * sizeof *m->e);
    return m;
}

/* The token of bytes s[0..len), 1 <= len <= BPE_SHORT_MAX, from the small
 * tables, or BPE_EMPTY. */
static inline uint32_t short_find(const struct bpe *v, const uint8_t *s, size_t len) {
    switch (len) {
    case 1: return v->byte_tok[s[0]];
    case 2: return v->byte_pairs[s[0] << 8 | s[1]];
    case 3: return bpe_short_token(v, s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16, 3);
    default:
        return bpe_short_token(v, s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24,
                               4);
    }
}

/* The token of bytes s[0..len), or BPE_EMPTY: also the merge of any two
 * parts whose bytes these are. */
static inline uint32_t find_at(const struct bpe *v, const uint8_t *s, size_t len) {
    if (len <= BPE_SHORT_MAX) return short_find(v, s, len);
    return len <= v->max_token_len ? bpe_find_token(v, s, len) : BPE_EMPTY;
}
/* Is [a, b] the encoding of bytes(a) bytes(b), given that [a] is the
 * encoding of bytes(a)? a ends and b starts at p + pos.
 *
 * Fast path, when the merge processes of a and b are monotone (ranks never
 * decrease; true of nearly every GPT-2 token, recorded in v->split): before
 * any merge crosses the boundary, the process on a b interleaves a's and b's
 * own processes in rank order, left first on ties. The last part of the left
 * side walks down a's right spine (a, right(a), right(right(a)), ...), the
 * first part of the right side down b's left spine. Walking back in time,
 * the state (L, R) lasted until the later of the merges that made L or R; the
 * crossing pair (L, R) would have merged first iff its rank is below that
 * merge's rank (L's case) or at most it (R's case: the crossing pair is left
 * of it and wins ties); at the end, iff it is a token at all. A crossing
 * pair is found by its bytes in the text (find_at), not in the pair table.
 * Returns 0 when the path does not apply. */
static int compatible_fast(const struct bpe *v, const uint8_t *p, size_t pos, uint32_t a, uint32_t b,
                           int *ok) {
    uint32_t L = a, R = b;
    size_t ll = token_len(v, a), lr = token_len(v, b);
    uint64_t limit = UINT64_MAX;
    if (lr > 1 && v->split[2 * b] == BPE_EMPTY) return 0;
    if (ll > 1 && v->split[2 * a] == BPE_EMPTY) return 0;
    for (;;) {
        uint32_t c = find_at(v, p + pos - ll, ll + lr);
        if (c != BPE_EMPTY && c < limit) {
            *ok = 0;
            return 1;
        }
        int64_t fl = ll > 1 ? (int64_t)L : -1, fr = lr > 1 ? (int64_t)R : -1;
        if (fl < 0 && fr < 0) {
            *ok = 1;
            return 1;
        }
        if (fl > fr) {
            limit = (uint64_t)fl;
            L = v->split[2 * L + 1];
            ll = token_len(v, L);
        } else {
            limit = (uint64_t)fr + 1;
            R = v->split[2 * R];
            lr = token_len(v, R);
        }
    }
}


/* Is [a, b] the encoding of bytes(a) bytes(b)? a ends and b starts at
 * p + pos; each is its own encoding. Asked of the memo first, then
 * compatible_fast where it applies, else by re-encoding the two tokens'
 * bytes (vocabularies with non-monotone tokens). */
static int compatible(const struct bpe *v, pair_memo *memo, const uint8_t *p, size_t pos, uint32_t a,
                      uint32_t b) {
    uint64_t key = (uint64_t)a << 32 | b, *slot = NULL;
    if (memo) {
        slot = &memo->e[bpe_hash_pair(key) & memo->mask];
        if ((*slot & ~PAIR_OK) == key) return *slot >> 63 != 0;
    }
    int ok;
    if (!compatible_fast(v, p, pos, a, b, &ok)) {
        uint8_t buf[SHORT_PIECE];
        uint32_t tok[SHORT_PIECE];
        size_t la = token_len(v, a), lb = token_len(v, b);
        /* Too long to re-encode: "no", which at worst leaves a place
         * without a token, and the piece goes to the heap. */
        if (la + lb > SHORT_PIECE) return 0;
        memcpy(buf, v->tok_bytes + v->tok_off[a], la);
        memcpy(buf + la, v->tok_bytes + v->tok_off[b], lb);
        size_t m = merge_short(v, buf, la + lb, tok);
        ok = m == 2 && tok[0] == a && tok[1] == b;
    }
    if (slot) *slot = key | (ok ? PAIR_OK : 0);
    return ok;
}

#define MAX_THREADS 64
#define MAX_PARTS 64
#define PART_MIN (64u << 10)  /* the smallest part a thread takes of a text or a piece */

/* Where the part of [from, n) that starts at from should end, about: parts
 * fall in size, each 1/(2 x threads) of what is left and PART_MIN at least,
 * so that the last ones even out the threads' ends. */
static size_t part_goal(size_t from, size_t n, int threads) {
    size_t size = (n - from) / (2 * (size_t)threads);
    return from + (size > PART_MIN ? size : PART_MIN);
}

static int cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

/* Jobs 0..n-1, each taken by whichever thread is free next: cores of
 * unequal speed (a busy virtual machine's, say) then finish together.
 * With with_cache, each thread has a piece cache to lend its jobs. */
typedef struct {
    void (*run)(void *ctx, int k, cache_slot *cache);
    void *ctx;
    int n, next, with_cache;
} job_queue;

static void *queue_worker(void *arg) {
    job_queue *q = arg;
    cache_slot *cache = q->with_cache ? cache_new() : NULL;
    for (int k; (k = __atomic_fetch_add(&q->next, 1, __ATOMIC_RELAXED)) < q->n;) q->run(q->ctx, k, cache);
    big_free(cache);
    return NULL;
}

/* Runs q's jobs on this thread and up to threads - 1 more (those that
 * cannot be started leave their share to the others). */
static void queue_run(job_queue *q, int threads) {
    pthread_t tid[MAX_THREADS];
    int started = 0;
    for (int k = 1; k < threads && k < q->n && k < MAX_THREADS; k++) {
        if (pthread_create(&tid[k], NULL, queue_worker, q)) break;
        started = k;
    }
    queue_worker(q);
    for (int k = 1; k <= started; k++) pthread_join(tid[k], NULL);
}

/* ---- long pieces ------------------------------------------------------------------ */

/* Long pieces, in linear time: the last-token-at-each-place method (as in
 * rust-gems' `bpe` crate, written anew). By the two facts above, the
 * encoding of p[0..i) ends with the one token t ending at i whose pair
 * with the last token of the encoding of p[0..i - len(t)) is compatible:
 * that one extends a valid sequence, and the encoding is unique. So
 * last[i] (a token id) follows from last[] before i with no search and no
 * going back, and the tokens are read back from last[n]. The tokens that
 * end at i come from the longest-match automaton (bpe_ac_next), longest
 * first; each place costs a step of the automaton and a few pair checks,
 * whatever the text. */

/* last[i] for i in (from, to], the last token of the encoding of
 * p[origin..i), given last[] at the places before from (origin <= from):
 * s is the automaton's node after p[..from), fed from no later than
 * origin or from - max_token_len. A token that starts at origin needs no
 * check: the automaton only names tokens that are their own encoding.
 * agree_from: when not 0, stops at the first place e such that the
 * max_token_len places up to e all kept the value they had and lie past
 * agree_from (then every later place keeps its value too: last[i] depends
 * only on the max_token_len places before it); returns e, or to. Returns
 * 0 when a place has no token (a vocabulary whose tokens are too long for
 * the pair check's re-encoding), for the caller's fallback. */
static size_t last_tokens(const struct bpe *v, const uint8_t *p, size_t origin, size_t from, size_t to,
                          uint32_t s, uint32_t *last, pair_memo *memo, size_t agree_from) {
    const bpe_ac_node *nodes = v->ac_nodes;
    size_t agree = 0, window = v->max_token_len;
    for (size_t i = from; i < to; i++) {
        s = bpe_ac_next(v, s, p[i]);
        size_t end = i + 1;
        uint32_t u = nodes[s].tok != BPE_EMPTY ? s : nodes[s].dict, t = BPE_EMPTY;
        for (; u; u = nodes[u].dict) {
            size_t start = end - nodes[u].depth;
            if (start < origin) continue;
            if (start == origin || compatible(v, memo, p, start, last[start], nodes[u].tok)) {
                t = nodes[u].tok;
                break;
            }
        }
        if (t == BPE_EMPTY) return 0;
        if (agree_from) {
            agree = last[end] == t && end > agree_from ? agree + 1 : 0;
            last[end] = t;
            if (agree >= window) return end;
        } else {
            last[end] = t;
        }
    }
    return to;
}

/* The automaton's node after p[from - max_token_len .. from) (or from 0). */
static uint32_t node_before(const struct bpe *v, const uint8_t *p, size_t from) {
    uint32_t s = 0;
    for (size_t i = from > v->max_token_len ? from - v->max_token_len : 0; i < from; i++) s = bpe_ac_next(v, s, p[i]);
    return s;
}

/* A piece this long is shared by the threads: each takes a segment and
 * finds its places' last tokens as if the piece began there; then, left to
 * right, each segment's first places are found again from the true places
 * before them, until max_token_len in a row come out as they were (the
 * encodings met; usually within a few tokens). */
#define SEGMENT_MIN (256u << 10)
#define MAX_SEGMENTS 64

typedef struct {
    const struct bpe *v;
    const uint8_t *p;
    uint32_t *last;
    size_t from, to;
    int ok;
} segment_job;

static void segment_run(void *ctx, int k, cache_slot *unused) {
    (void)unused;
    segment_job *j = (segment_job *)ctx + k;
    pair_memo *memo = pair_memo_new(j->to - j->from);
    j->ok = last_tokens(j->v, j->p, j->from, j->from, j->to, 0, j->last, memo, 0) != 0;
    free(memo);
}

/* How many segments (and threads) a piece of n bytes is encoded in. */
static int piece_segments(const out_t *o, size_t n) {
    size_t most = n / SEGMENT_MIN;
    if (most > MAX_SEGMENTS) most = MAX_SEGMENTS;
    return o->threads > 1 && most > 1 ? (int)(most < (size_t)o->threads ? most : (size_t)o->threads) : 1;
}

/* last[1..n] of p[0..n) on `segments` threads. 0 when a place has no token. */
static int last_all(const struct bpe *v, const uint8_t *p, size_t n, uint32_t *last, int segments) {
    segment_job jobs[MAX_SEGMENTS];
    for (int k = 0; k < segments; k++)
        jobs[k] = (segment_job){v, p, last, n * (size_t)k / (size_t)segments, n * (size_t)(k + 1) / (size_t)segments, 0};
    job_queue q = {segment_run, jobs, segments, 0, 0};
    queue_run(&q, segments);
    for (int k = 0; k < segments; k++)
        if (!jobs[k].ok) return 0;
    /* Segment k's places are found again from its start, with the true
     * places before it, until they meet its own (then the rest of it is
     * true too) or it ends (then all of it was found again). Either way
     * the places before the next segment are then true. */
    pair_memo *memo = segments > 1 ? pair_memo_new(PAIR_MEMO_MAX) : NULL;
    int ok = 1;
    for (int k = 1; k < segments && ok; k++) {
        size_t from = jobs[k].from;
        ok = last_tokens(v, p, 0, from, jobs[k].to, node_before(v, p, from), last, memo,
                         from + v->max_token_len) != 0;
    }
    free(memo);
    return ok;
}

/* The encoding of p[0..n) (n >= 2) by the last token at each place, or 0
 * (nothing emitted) when a place has no token, for the heap. The tokens,
 * read back from last[n], are written from the top of last[] down, never
 * over a place still to be read. */
static int merge_last(out_t *o, const uint8_t *p, size_t n, size_t off, int segments) {
    const struct bpe *v = o->v;
    uint32_t *last = big_alloc((n + 1) * sizeof *last);
    if (!last) return 0;
    int ok = last_all(v, p, n, last, segments);
    if (ok) {
        size_t w = n + 1;
        for (size_t i = n; i > 0;) {
            uint32_t t = last[i];
            last[--w] = t;
            i -= token_len(v, t);
        }
        emit_tokens(o, last + w, n + 1 - w, off);
    }
    big_free(last);
    return ok;
}

/* The first place c' in [c, c + SEEK_CUT) below n where can_cut, or n. */
#define SEEK_CUT 4096
typedef int can_cut_fn(const struct bpe *v, const uint8_t *p, size_t c);
static size_t seek_cut(const struct bpe *v, const uint8_t *p, size_t n, size_t c, can_cut_fn *can_cut) {
    size_t limit = c + SEEK_CUT < n ? c + SEEK_CUT : n;
    while (c < limit && !can_cut(v, p, c)) c++;
    return c < limit ? c : n;
}

/* The merges of p[0..n), n >= 2, with no look-up of the whole: the
 * quadratic loop for short ones, the last token at each place for long
 * ones (the heap only when that cannot check a pair). */
static void merge_stretch(out_t *o, const uint8_t *p, size_t n, size_t off) {
    const struct bpe *v = o->v;
    if (n <= SHORT_PIECE) {
        uint32_t tok[SHORT_PIECE];
        emit_tokens(o, tok, merge_short(v, p, n, tok), off);
    } else if (n >= UINT32_MAX || !merge_last(o, p, n, off, piece_segments(o, n))) {
        merge_long(o, p, n, off);
    }
}

/* Where no token of 2+ bytes has p[i-1] followed by p[i], no merge joins
 * the two sides: every part in a merge process is a token (or one byte).
 * So the encoding of a piece is that of its stretches between such
 * places, each merged alone, far cheaper than the whole when stretches
 * are short (random lowercase letters: one such place every 7 bytes on
 * average; a run of spaces: after every byte; digits: never). A stretch
 * is merged, never looked up whole: one that is a token the merges do not
 * reach still comes out in parts, as it does inside the piece. */
static void encode_stretches(out_t *o, const uint8_t *p, size_t n, size_t off) {
    const struct bpe *v = o->v;
    size_t end = 1;
    while (end < n && bpe_inner_pair(v, p[end - 1], p[end])) end++;
    for (size_t start = 0; start < n;) {
        if (end - start > 1) {
            merge_stretch(o, p + start, end - start, off + start);
            start = end++;
        } else {
            /* bytes that no token joins to the next (a run of spaces):
             * a token each, written in one go */
            while (end < n && !bpe_inner_pair(v, p[end - 1], p[end])) end++;
            size_t singles = end < n ? end - 1 - start : end - start;
            emit_bytes(o, p + start, singles, off + start);
            start += singles;
            if (start == end) end++;
        }
        while (end < n && bpe_inner_pair(v, p[end - 1], p[end])) end++;
    }
}

static int no_token_joins(const struct bpe *v, const uint8_t *p, size_t c) {
    return !bpe_inner_pair(v, p[c - 1], p[c]);
}
typedef struct {
    out_t o;
    const uint8_t *p;
    size_t n;
} stretch_job;

static void stretch_run(void *ctx, int k, cache_slot *cache) {
    (void)cache;
    stretch_job *j = (stretch_job *)ctx + k;
    encode_stretches(&j->o, j->p, j->n, 0);
}

/* encode_stretches, shared by the threads when the piece is long enough:
 * cut at such places into parts of falling size (part_goal), taken by
 * whichever thread is free, each encoded alone into its own stretch of one
 * buffer, then simply put together.
 * Returns 0, having done nothing, when p has no such place in its first
 * SPLIT_SEEK bytes (a long run of digits has none at all: not looking
 * further saves a pass over it). */
#define SPLIT_SEEK 256

static int split_piece(out_t *o, const uint8_t *p, size_t n, size_t off) {
    const struct bpe *v = o->v;
    size_t first = 1, seek = n < SPLIT_SEEK ? n : SPLIT_SEEK, cuts_seen = 0;
    while (first < seek && bpe_inner_pair(v, p[first - 1], p[first])) first++;
    if (first == seek) return 0;
    for (size_t i = first; i < seek; i++) cuts_seen += !bpe_inner_pair(v, p[i - 1], p[i]);
    /* Mostly bytes alone (spaces) take too little time to share. */
    if (piece_segments(o, n) < 2 || 2 * cuts_seen > seek) {
        encode_stretches(o, p, n, off);
        return 1;
    }
    /* Part k's tokens go to buf + cuts[k] + k: at most one token a byte
     * (and one to spare). */
    uint32_t *buf = big_alloc((n + MAX_PARTS) * sizeof *buf);
    if (!buf) {
        encode_stretches(o, p, n, off);  /* out of memory for the parts: on this thread */
        return 1;
    }
    stretch_job jobs[MAX_PARTS];
    size_t cuts[MAX_PARTS + 1] = {0};
    int parts = 0;
    while (cuts[parts] < n) {
        size_t from = cuts[parts], c = part_goal(from, n, o->threads), end = n;
        if (c < n && parts < MAX_PARTS - 1) end = seek_cut(v, p, n, c, no_token_joins);
        out_t part = {v, buf + from + parts, NULL, end - from + 1, 0, 0, NULL, 1};
        jobs[parts] = (stretch_job){part, p + from, end - from};
        cuts[++parts] = end;
    }
    job_queue q = {stretch_run, jobs, parts, 0, 0};
    queue_run(&q, o->threads);
    for (int k = 0; k < parts; k++) emit_tokens(o, jobs[k].o.ids, jobs[k].o.n, off + cuts[k]);
    big_free(buf);
    return 1;
}

static inline void encode_piece(out_t *o, const uint8_t *p, size_t n, size_t off) {
    const struct bpe *v = o->v;
    if (n == 1) {
        emit(o, v->byte_tok[p[0]], off);
        return;
    }
    uint64_t h;
    if (n <= v->max_token_len) {
        uint32_t id;
        if (BPE_LITTLE_ENDIAN && n <= BPE_SLOT_BYTES) {
            id = bpe_find_short_piece(v, p, n, 1, &h);
        } else {
            h = bpe_hash_bytes(p, n);
            id = bpe_find_token_hashed(v, p, n, h, 1);
        }
        if (id != BPE_EMPTY) {
            emit(o, id, off);
            return;
        }
    } else {
        h = bpe_hash_bytes(p, n);
    }
    if (n <= CACHE_BYTES) {
        cache_slot *c = o->cache ? &o->cache[h & (CACHE_SLOTS - 1)] : NULL;
        if (c && c->len == n && !memcmp(c->bytes, p, n)) {
            emit_tokens(o, c->tok, c->n_tok, off);
            return;
        }
        uint32_t tok[CACHE_BYTES];
        size_t m = merge_short(v, p, n, tok);
        emit_tokens(o, tok, m, off);
        if (c && m <= CACHE_TOKENS) {
            c->len = (uint8_t)n;
            c->n_tok = (uint8_t)m;
            memcpy(c->bytes, p, n);
            memcpy(c->tok, tok, m * sizeof *tok);
        }
    } else if (!split_piece(o, p, n, off)) {
        merge_stretch(o, p, n, off);
    }
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
                    i = class_run_end(v, s, i + 1 + len2, end, next);
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
        i = class_run_end(v, s, i + len, end, cls);
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

/* Flags other than `allowed`, or two special-token modes at once. */
static int bad_flags(int flags, int allowed) {
    return (flags & ~allowed) || (flags & BPE_SPECIAL_MASK) == BPE_SPECIAL_MASK;
}

/* Checks flags that reject input (strict UTF-8, special token as error).
 * Offsets in errors count from `base`: s is at that offset of a stream. */
static int check_input(const struct bpe *v, const uint8_t *s, size_t len, int flags, uint64_t base,
                       bpe_error *err) {
    if (flags & BPE_STRICT) {
        size_t bad = first_invalid(s, len);
        if (bad < len)
            return bpe_fail(err, BPE_ERR_UTF8, base + bad, "invalid UTF-8 at byte %llu (0x%02X)",
                        (unsigned long long)(base + bad), s[bad]);
    }
    if ((flags & BPE_SPECIAL_MASK) == BPE_SPECIAL_ERROR) {
        const uint8_t *sp = find_special(v, s, len);
        if (sp)
            return bpe_fail(err, BPE_ERR_SPECIAL, base + (uint64_t)(sp - s),
                        "the special token <|endoftext|> is in the text at byte %llu",
                        (unsigned long long)(base + (uint64_t)(sp - s)));
    }
    return BPE_OK;
}

static int encode_checked(const struct bpe *v, const uint8_t *s, size_t len, int flags, out_t *o,
                          bpe_error *err) {
    size_t i = 0;
    /* The cache pays for its 1 MB only over a long text (and if it cannot
     * be had, pieces are merged without it); a caller may lend its own. */
    cache_slot *own = !o->cache && len >= CACHE_MIN_TEXT ? cache_new() : NULL;
    if (own) o->cache = own;
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
    if (own) {
        big_free(own);
        o->cache = NULL;
    }
    if (o->nomem) return bpe_fail(err, BPE_ERR_NOMEM, 0, "out of memory");
    return BPE_OK;
}

/* The encoder works in rank space; a vocabulary whose ids differ from its
 * ranks has its ids written once, here, at the public boundary. */
static void ranks_to_ids(const struct bpe *v, uint32_t *ids, size_t n) {
    if (!v->id_of_rank) return;
    for (size_t i = 0; i < n; i++) ids[i] = v->id_of_rank[ids[i]];
}

int bpe_set_ids(struct bpe *v, const uint32_t *id_of_rank, bpe_error *err) {
    size_t n = v->n_tokens;
    uint32_t *t = gpt2in_malloc(2 * (n ? n : 1) * sizeof *t);
    if (!t) return bpe_fail(err, BPE_ERR_NOMEM, 0, "out of memory");
    uint32_t *inverse = t + n;
    for (size_t i = 0; i < n; i++) inverse[i] = BPE_EMPTY;
    for (size_t r = 0; r < n; r++) {
        uint32_t id = id_of_rank[r];
        if (id >= n || inverse[id] != BPE_EMPTY) {
            free(t);
            return bpe_fail(err, BPE_ERR_FORMAT, r, "token %zu: id %u is out of range or given twice", r, id);
        }
        t[r] = id;
        inverse[id] = (uint32_t)r;
    }
    free(v->owned_ids);
    v->owned_ids = t;
    v->id_of_rank = t;
    v->rank_of_id = inverse;
    return BPE_OK;
}

/* bpe_encode, for text at offset `base` of a stream (for error offsets). */
static int encode_one(const struct bpe *v, const void *text, size_t len, int flags, uint32_t *ids,
                      size_t *offsets, size_t cap, size_t *n_tokens, uint64_t base, bpe_error *err) {
    if (!v || (!text && len) || (!ids && cap) || bad_flags(flags, BPE_SPECIAL_MASK | BPE_STRICT))
        return bpe_fail(err, BPE_ERR_ARG, 0, "bpe_encode: bad argument");
    if (n_tokens) *n_tokens = 0;
    if (len == 0) return BPE_OK;
    int rc = check_input(v, text, len, flags, base, err);
    if (rc) return rc;
    out_t o = {v, ids, offsets, cap, 0, 0, NULL, 1};
    rc = encode_checked(v, text, len, flags, &o, err);
    if (!rc) ranks_to_ids(v, ids, o.n < cap ? o.n : cap);
    if (n_tokens) *n_tokens = o.n;
    return rc;
}

int bpe_encode(const bpe *v, const void *text, size_t len, int flags, uint32_t *ids,
               size_t *offsets, size_t cap, size_t *n_tokens, bpe_error *err) {
    return encode_one(v, text, len, flags, ids, offsets, cap, n_tokens, 0, err);
}

/* ---- cutting and threads ---------------------------------------------------------- */

static inline int ascii_space(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Does a valid non-space character end exactly at s[p - 1]? A lead byte is
 * never a continuation byte, so a valid sequence found by stepping back to
 * its lead byte is also how decoding from the start reads it. */
static int nonspace_char_ends_at(const uint8_t *s, size_t p) {
    size_t q = p - 1;
    while (q > 0 && p - q < 4 && (s[q] & 0xC0) == 0x80) q--;
    uint32_t cp;
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

/* Where a cut at p would fall inside the special token: the start of that
 * occurrence, which may be a prefix of the token ending the visible text
 * s[0..len) (the bytes after len may complete it); otherwise p. */
static size_t special_start(const struct bpe *v, const uint8_t *s, size_t len, size_t p) {
    if (v->eot < 0) return p;
    const uint8_t *t = v->tok_bytes + v->tok_off[v->eot];
    size_t tl = token_len(v, (uint32_t)v->eot);
    for (size_t q = p >= tl ? p - tl + 1 : 0; q < p; q++) {
        size_t m = len - q < tl ? len - q : tl;
        if (s[q] == t[0] && !memcmp(s + q, t, m)) return q;
    }
    return p;
}

/* The one rule for every place that cuts text (stream blocks, threads'
 * parts): the last position in [from, end) at which s[0..len) may be cut
 * without changing a token, or 0. A cut of the pre-tokenizer (last_cut) is
 * one, unless the special token is a token here (BPE_SPECIAL_ALLOW, or an
 * error to report) and the cut falls inside an occurrence of it, or inside
 * a prefix of it that ends the text. Such a cut moves to the start of a
 * whole occurrence (text before the token ends as at end of input, and the
 * token is then seen whole), or else below the prefix. */
static size_t text_cut(const struct bpe *v, const uint8_t *s, size_t end, size_t len, size_t from,
                       int flags) {
    int special_is_text = (flags & BPE_SPECIAL_MASK) == BPE_SPECIAL_TEXT || v->eot < 0;
    for (;;) {
        size_t p = last_cut(s, end, from);
        if (!p || special_is_text) return p;
        size_t q = special_start(v, s, len, p);
        if (q == p) return p;
        if (q < from || q == 0) return 0;
        if (q + token_len(v, (uint32_t)v->eot) <= len) return q;
        end = q + 1;
    }
}

size_t bpe_safe_cut(const bpe *v, const void *text, size_t len, int flags) {
    if (!v || !text || bad_flags(flags, BPE_SPECIAL_MASK | BPE_STRICT | BPE_OFFSETS)) return 0;
    return text_cut(v, text, len, len, 1, flags);
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

static void part_run(void *ctx, int k, cache_slot *cache) {
    part_job *j = (part_job *)ctx + k;
    j->out.cache = cache;
    j->rc = encode_checked(j->v, j->s + j->start, j->end - j->start, j->flags, &j->out, &j->err);
    j->out.cache = NULL;
}

#define PARALLEL_MIN (256u << 10)
#define CUT_SEEK (64u << 10)

/* bpe_encode_parallel, for text at offset `base` of a stream. */
static int encode_parallel(const struct bpe *v, const void *text, size_t len, int flags, int threads,
                           uint32_t *ids, size_t *offsets, size_t cap, size_t *n_tokens, uint64_t base,
                           bpe_error *err) {
    if (threads <= 0) threads = cpu_count();
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if ((size_t)threads > len / PARALLEL_MIN) threads = (int)(len / PARALLEL_MIN);
    if (threads <= 1 || cap < len)
        return encode_one(v, text, len, flags, ids, offsets, cap, n_tokens, base, err);
    if (!v || !text || !ids || bad_flags(flags, BPE_SPECIAL_MASK | BPE_STRICT))
        return bpe_fail(err, BPE_ERR_ARG, 0, "bpe_encode_parallel: bad argument");
    if (n_tokens) *n_tokens = 0;
    const uint8_t *s = text;
    int rc = check_input(v, s, len, flags, base, err);
    if (rc) return rc;

    /* Part k writes its tokens from index start_k: it has at most as many
     * tokens as bytes, so parts never overlap; then they are packed. The
     * parts fall in size (part_goal). */
    part_job jobs[MAX_PARTS];
    size_t start = 0;
    int n = 0;
    while (start < len) {
        /* Text has a safe cut every few bytes; one long piece has none,
         * and is not searched through (the rest is one part). */
        size_t at = part_goal(start, len, threads), end = len;
        if (at < len && n < MAX_PARTS - 1) {
            end = text_cut(v, s, at, len, at > start + CUT_SEEK ? at - CUT_SEEK : start, flags);
            if (end <= start) end = len;
        }
        jobs[n] = (part_job){v, s, start, end, flags, {v, ids + start, offsets ? offsets + start : NULL,
                                                       end - start, 0, 0, NULL, 1}, 0, {{0}, 0}};
        start = end;
        n++;
    }
    /* No safe cut to share the text at (one long piece, say): the threads
     * share its long pieces instead. */
    if (n == 1) jobs[0].out.threads = threads;
    job_queue q = {part_run, jobs, n, 0, 1};
    queue_run(&q, threads);

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
    ranks_to_ids(v, ids, total);
    if (n_tokens) *n_tokens = total;
    return BPE_OK;
}

int bpe_encode_parallel(const bpe *v, const void *text, size_t len, int flags, int threads,
                        uint32_t *ids, size_t *offsets, size_t cap, size_t *n_tokens,
                        bpe_error *err) {
    return encode_parallel(v, text, len, flags, threads, ids, offsets, cap, n_tokens, 0, err);
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
    size_t no_cut;          /* buf has no safe cut below this position (already scanned) */
};

_Static_assert(sizeof(size_t) == sizeof(uint64_t), "offsets are passed to sinks in place");

#define STREAM_BLOCK (1u << 20)
#define STREAM_FIRST (64u << 10)

bpe_stream *bpe_stream_new(const bpe *v, int flags, int threads, bpe_error *err) {
    if (!v || bad_flags(flags, BPE_SPECIAL_MASK | BPE_STRICT | BPE_OFFSETS)) {
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
    st->threads = threads <= 0 ? cpu_count() : threads;
    return st;
}

/* Encodes buf[0..n) and hands the tokens to the sink. */
static int stream_encode(bpe_stream *st, size_t n, bpe_sink sink, void *ctx, bpe_error *err) {
    if (st->ids_cap < n) {
        size_t c = n + n / 2;
        uint32_t *ids = big_grow(st->ids, 0, c * sizeof *ids);
        if (ids) st->ids = ids;
        size_t *offs = ids && (st->flags & BPE_OFFSETS) ? big_grow(st->offs, 0, c * sizeof *offs) : st->offs;
        if (offs) st->offs = offs;
        if (!ids || ((st->flags & BPE_OFFSETS) && !offs))
            return bpe_fail(err, BPE_ERR_NOMEM, st->base, "out of memory");
        st->ids_cap = c;
    }
    size_t nt;
    static const uint8_t nothing[1];
    int rc = encode_parallel(st->v, n ? st->buf : nothing, n, st->flags & ~BPE_OFFSETS, st->threads,
                             st->ids, st->flags & BPE_OFFSETS ? st->offs : NULL, st->ids_cap, &nt,
                             st->base, err);
    if (rc) return rc;
    uint64_t *offs = NULL;
    if (st->flags & BPE_OFFSETS) {
        offs = (uint64_t *)st->offs;
        for (size_t i = 0; i < nt; i++) offs[i] = st->offs[i] + st->base;
    }
    if (nt && sink && sink(ctx, st->ids, offs, nt))
        return bpe_fail(err, BPE_ERR_CALLBACK, st->base, "stopped by the caller");
    if (st->len > n) memmove(st->buf, st->buf + n, st->len - n);
    st->len -= n;
    st->base += n;
    return BPE_OK;
}

int bpe_stream_write(bpe_stream *st, const void *data, size_t len, bpe_sink sink, void *ctx,
                     bpe_error *err) {
    if (!st || st->done || (!data && len)) return bpe_fail(err, BPE_ERR_ARG, 0, "bpe_stream_write: bad argument");
    const uint8_t *d = data;
    size_t block = (size_t)STREAM_BLOCK * (size_t)(st->threads > 1 ? st->threads : 1);
    while (len) {
        if (st->cap - st->len < len && st->cap - st->len < block) {
            /* from small, so that a short input touches few fresh pages */
            size_t c = st->cap ? st->cap * 2 : STREAM_FIRST;
            uint8_t *b = big_grow(st->buf, st->len, c);
            if (!b) return bpe_fail(err, BPE_ERR_NOMEM, st->base, "out of memory");
            st->buf = b;
            st->cap = c;
        }
        size_t take = st->cap - st->len < len ? st->cap - st->len : len;
        memcpy(st->buf + st->len, d, take);
        st->len += take;
        d += take;
        len -= take;
        if (st->len >= block) {
            /* Only the new bytes are scanned: one long piece arriving in
             * many writes is not scanned again each time. */
            size_t cut = text_cut(st->v, st->buf, st->len, st->len, st->no_cut, st->flags);
            /* a prefix of the special token at the end may turn out not to be one */
            size_t tail = st->v->eot >= 0 ? token_len(st->v, (uint32_t)st->v->eot) : 0;
            st->no_cut = st->len > tail ? st->len - tail : 0;
            if (cut) {
                int rc = stream_encode(st, cut, sink, ctx, err);
                if (rc) return rc;
                st->no_cut = 0;  /* what is left moved: scan it once more */
            }
        }
    }
    return BPE_OK;
}

int bpe_stream_finish(bpe_stream *st, bpe_sink sink, void *ctx, bpe_error *err) {
    if (!st || st->done) return bpe_fail(err, BPE_ERR_ARG, 0, "bpe_stream_finish: bad argument");
    st->done = 1;
    return stream_encode(st, st->len, sink, ctx, err);
}

void bpe_stream_free(bpe_stream *st) {
    if (!st) return;
    big_free(st->buf);
    big_free(st->ids);
    big_free(st->offs);
    free(st);
}

/* ---- decoding ------------------------------------------------------------------------- */

const char *bpe_token_bytes(const bpe *v, uint32_t id, size_t *len) {
    uint32_t r = v ? bpe_rank_of(v, id) : BPE_EMPTY;
    if (r == BPE_EMPTY) return NULL;
    if (len) *len = token_len(v, r);
    return (const char *)v->tok_bytes + v->tok_off[r];
}

int bpe_decode(const bpe *v, const uint32_t *ids, size_t n, char *out, size_t cap, size_t *n_bytes,
               bpe_error *err) {
    if (!v || (!ids && n) || (!out && cap)) return bpe_fail(err, BPE_ERR_ARG, 0, "bpe_decode: bad argument");
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t r = bpe_rank_of(v, ids[i]);
        if (r == BPE_EMPTY)
            return bpe_fail(err, BPE_ERR_ID, i, "token %zu: id %u is not in the vocabulary (0..%u)", i, ids[i],
                        v->n_tokens - 1);
        uint32_t a = v->tok_off[r], l = v->tok_off[r + 1] - a;
        if (total + l <= cap) memcpy(out + total, v->tok_bytes + a, l);
        total += l;
    }
    if (n_bytes) *n_bytes = total;
    return BPE_OK;
}
