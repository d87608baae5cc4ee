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

/* Long pieces, fast: the backtracking encoder of github's rust-gems `bpe`
 * crate, written anew. Two facts about BPE make it exact:
 *   - a token sequence is the BPE encoding of its bytes exactly when every
 *     adjacent pair (a, b) is, i.e. encode(bytes(a) bytes(b)) == [a, b];
 *   - the encoding of a text is unique.
 * So: extend a valid sequence with the longest token whose pair with the
 * last token is valid; when no token at a position works, that position is
 * no token boundary of the answer (it is marked dead) and the last token is
 * replaced by a shorter one. Returns 0 (nothing emitted) if the search
 * stalls, for the caller's heap fallback. */
#define COMPAT_CACHE 4096

typedef struct {
    uint64_t key[COMPAT_CACHE];
    uint8_t ok[COMPAT_CACHE];
} compat_cache;

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

/* The longest token that s[0..len) starts with, in *t; returns its length
 * (0: none). */
static inline size_t prefix_token(const struct bpe *v, const uint8_t *s, size_t len, uint32_t *t) {
    while (len > 2 && (*t = find_at(v, s, len)) == BPE_EMPTY) len--;
    if (len == 2 && (*t = v->byte_pairs[s[0] << 8 | s[1]]) == BPE_EMPTY) len--;
    if (len == 1 && (*t = v->byte_tok[s[0]]) == BPE_EMPTY) len--;
    return len;
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

/* compatible_fast where it applies, else by re-encoding the two tokens'
 * bytes (cached: only vocabularies with non-monotone tokens get here).
 * a == BPE_EMPTY: is [b] the encoding of bytes(b)? */
static int compatible(const struct bpe *v, compat_cache **cp, const uint8_t *p, size_t pos, uint32_t a,
                      uint32_t b) {
    int ok;
    if (a == BPE_EMPTY && (token_len(v, b) == 1 || v->split[2 * b] != BPE_EMPTY)) return 1;
    if (a != BPE_EMPTY && compatible_fast(v, p, pos, a, b, &ok)) return ok;
    if (!*cp && (*cp = gpt2in_malloc(sizeof **cp))) memset((*cp)->key, 0xFF, sizeof (*cp)->key);
    compat_cache *c = *cp;
    uint64_t key = (uint64_t)a << 32 | b;
    size_t slot = bpe_hash_pair(key) & (COMPAT_CACHE - 1);
    if (c && c->key[slot] == key) return c->ok[slot];
    uint8_t buf[SHORT_PIECE];
    uint32_t tok[SHORT_PIECE];
    size_t la = a == BPE_EMPTY ? 0 : token_len(v, a), lb = token_len(v, b);
    ok = 0;
    if (la + lb <= SHORT_PIECE) {
        if (la) memcpy(buf, v->tok_bytes + v->tok_off[a], la);
        memcpy(buf + la, v->tok_bytes + v->tok_off[b], lb);
        size_t m = merge_short(v, buf, la + lb, tok);
        ok = la ? m == 2 && tok[0] == a && tok[1] == b : m == 1 && tok[0] == b;
    }
    if (c) {
        c->key[slot] = key;
        c->ok[slot] = (uint8_t)ok;
    }
    return ok;
}


/* The longest a token at p[pos..n) can be (an upper bound from its first
 * two and three bytes, and the end of the piece). */
static inline size_t longest_at(const struct bpe *v, const uint8_t *p, size_t pos, size_t n) {
    if (n - pos < 2) return 1;
    size_t len = v->maxlen2[p[pos] << 8 | p[pos + 1]];
    if (len > 2 && n - pos >= 3) {
        size_t l3 = v->maxlen3[BPE_PREFIX3(p + pos)];
        if (l3 < 255 && (l3 > 2 ? l3 : 2) < len) len = l3 > 2 ? l3 : 2;
    }
    len = len ? len : 1;
    return len < n - pos ? len : n - pos;
}

/* The tokens go straight into the caller's buffer when it has room for n
 * (the stack of tokens never holds more), else into one of their own; a
 * token's start is the end of the one before it, so no positions are kept. */
static int merge_backtrack(out_t *o, const uint8_t *p, size_t n, size_t off) {
    const struct bpe *v = o->v;
    if (2 * (size_t)v->max_token_len > SHORT_PIECE || n >= UINT32_MAX) return 0;
    int direct = !o->offs && has_room(o, n);
    uint32_t *tok = direct ? o->ids + o->n : big_alloc(n * sizeof *tok);
    uint64_t *dead = big_alloc((n / 64 + 1) * sizeof *dead);
    compat_cache *cache = NULL;  /* only vocabularies with non-monotone tokens need it */
    int done = 0;
    if (!tok || !dead) goto out;
    memset(dead, 0, (n / 64 + 1) * sizeof *dead);
    size_t k = 0, pos = 0, budget = 64 * n + 4096;
    uint32_t t = BPE_EMPTY;
    size_t len = prefix_token(v, p, longest_at(v, p, 0, n), &t);
    while (pos < n) {
        if (budget-- == 0) goto out;
        if (len) {  /* candidate t = p[pos..pos+len) */
            size_t end = pos + len;
            if ((end == n || !bpe_bit(dead, end)) &&
                compatible(v, &cache, p, pos, k ? tok[k - 1] : BPE_EMPTY, t)) {
                tok[k++] = t;
                pos = end;
                if (pos < n) len = prefix_token(v, p + pos, longest_at(v, p, pos, n), &t);
                continue;
            }
            len = prefix_token(v, p + pos, len - 1, &t);
            if (len) continue;
        }
        /* No token can follow here: pos is not a boundary of the answer. */
        if (k == 0) goto out;
        dead[pos / 64] |= 1ull << (pos % 64);
        len = token_len(v, tok[--k]);
        pos -= len;
        len = prefix_token(v, p + pos, len - 1, &t);
    }
    if (direct) o->n += k;
    else emit_tokens(o, tok, k, off);
    done = 1;
out:
    if (!direct) big_free(tok);
    big_free(dead);
    free(cache);
    return done;
}

/* Runs of one small alphabet - ASCII digits (a number piece), ASCII
 * lowercase letters (a word piece with no cut place, like DNA, or the
 * parts of one between cut places) - have no repeats to cache, and greedy
 * candidates fail often (about 3 pair checks a token), so they go by
 * another route. The encoding of the text up to each place i ends with
 * exactly one token t such that [the last token up to i - len(t), t] is
 * compatible: that one extends a valid sequence, and the encoding is
 * unique. So last[i] comes from last[i-1..i-k] with no search and no going
 * back, and the tokens are read back from the end. The image's run tables
 * make a place a few look-ups: the window of the last k bytes gives the
 * numbers of the tokens of 2..k bytes that end there, a bitmap which pairs
 * of numbered tokens are compatible (GPT-2: 981 digit tokens, 120 KB; 2,252
 * lowercase ones, 620 KB). With exactly one answer, "none of 2..k" means
 * 1, so last[i] waits on last[i-2], not last[i-1], and the check of 1 only
 * confirms. Where a longer token may end, the place checks pairs with
 * compatible_fast's walk on the run's own numbers (run_compatible): a few
 * small tables that stay in cache, not the vocabulary's. Anything else -
 * the byte before the run (the space of " 123"), tokens longer than
 * key_max - takes the general look-ups at that place. last[i] holds the
 * token's number, or RUN_ID of its id. */
#define RUN_ID(t) (0x80000000u | (t))  /* a token outside the numbered ones */
#define RUN_START 0xFFFFFFFFu          /* last[0]: nothing before (not RUN_ID(0): id 0 may be a token here) */
#define RUN_SLOW_MIN 1024
#define RUN_SEEK 4096
#define RUN_KMAX 4  /* the longest k */
_Static_assert(BPE_DIGITS_K <= RUN_KMAX && BPE_LOWER_K <= RUN_KMAX, "run_places' arrays");
_Static_assert(BPE_DIGITS_K >= 3 && BPE_LOWER_K >= 3, "run_places' 4-byte window");

static inline uint32_t run_entry_token(const struct bpe_run *r, uint32_t e) {
    return e & 0x80000000u ? (e == RUN_START ? BPE_EMPTY : e & 0x7FFFFFFFu) : r->tok[e];
}

static inline unsigned run_pair(const uint64_t *compat, size_t stride, uint32_t a, uint32_t b) {
    return bpe_bit(compat, (size_t)a * stride + b);
}

/* compatible_fast for the tokens numbered a and b, which end and start at
 * p + pos, all of r's alphabet: the same walk down a's right spine and b's
 * left spine, in the run's tables. -1 when it does not apply (a token that
 * is not monotone, a crossing pair longer than key_max). */
static int run_compatible(const struct bpe_run *r, const uint8_t *p, size_t pos, uint32_t a, uint32_t b) {
    uint32_t L = a, R = b;
    size_t ll = r->len[a], lr = r->len[b];
    uint64_t limit = UINT64_MAX;
    if ((lr > 1 && r->kids[2 * b] == BPE_RUN_NONE) || (ll > 1 && r->kids[2 * a] == BPE_RUN_NONE)) return -1;
    for (;;) {
        if (ll + lr > r->key_max) return -1;
        uint32_t c = bpe_run_number(r, p + pos - ll, ll + lr);  /* the crossing pair's bytes */
        if (c != BPE_RUN_NONE && r->tok[c] < limit) return 0;
        int64_t fl = ll > 1 ? (int64_t)r->tok[L] : -1, fr = lr > 1 ? (int64_t)r->tok[R] : -1;
        if (fl < 0 && fr < 0) return 1;
        if (fl > fr) {
            limit = (uint64_t)fl;
            L = r->kids[2 * L + 1];
            ll = r->len[L];
        } else {
            limit = (uint64_t)fr + 1;
            R = r->kids[2 * R];
            lr = r->len[R];
        }
    }
}

/* Whether token t = p[s..i) (numbered num, or BPE_RUN_NONE) follows the
 * place s's last token compatibly; t is BPE_EMPTY when there is no such
 * token. */
static inline int run_fits(const struct bpe *v, const struct bpe_run *r, compat_cache **cache, const uint8_t *p,
                           size_t s, uint32_t num, uint32_t t, const uint32_t *last) {
    uint32_t e = last[s];
    if (num < r->n && e < r->n) return (int)run_pair(r->compat, r->n + 1, e, num);
    if (num != BPE_RUN_NONE && !(e & 0x80000000u)) {
        int ok = run_compatible(r, p, s, e, num);
        if (ok >= 0) return ok;
    }
    return t != BPE_EMPTY && compatible(v, cache, p, s, run_entry_token(r, e), t);
}

/* last[i] by trying the tokens that end at i: those of up to k bytes, and
 * the longer ones of the lengths in `longer` (bit L - 1; bit 63: 64 or
 * more); 0 unless exactly one fits. */
static int run_place(const struct bpe *v, const struct bpe_run *r, compat_cache **cache, const uint8_t *p,
                     size_t i, size_t first, uint64_t longer, uint32_t *last) {
    size_t most = i < r->max_len + first ? i : r->max_len + first;
    int found = 0;
    for (size_t len = 1; len <= most && len <= r->k; len++) {
        size_t s = i - len;
        uint32_t num = s >= first ? r->number[bpe_run_slot(r->lo, r->size, p + s, len)] : BPE_RUN_NONE;
        uint32_t t = num != BPE_RUN_NONE ? r->tok[num] : s >= first ? BPE_EMPTY : find_at(v, p + s, len);
        if (run_fits(v, r, cache, p, s, num, t, last)) {
            found++;
            last[i] = num == BPE_RUN_NONE ? RUN_ID(t) : num;
        }
    }
    int from64 = (int)(longer >> 63);  /* every length from 64 on */
    longer &= ~(uint64_t)0 << r->k;     /* the lengths above k */
    for (size_t len = r->k + 1; len <= most; len++) {
        if (len < 64) {
            if (!longer) {
                if (!from64) break;
                len = 64;
            } else {
                len = (size_t)__builtin_ctzll(longer) + 1;  /* the next length that has tokens */
                longer &= longer - 1;
            }
            if (len > most) break;
        } else if (!from64) {
            break;
        }
        size_t s = i - len;
        int in_run = s >= first && len <= r->key_max;  /* then its number says all: no other look-up */
        uint32_t num = in_run ? bpe_run_number(r, p + s, len) : BPE_RUN_NONE;
        uint32_t t = num != BPE_RUN_NONE ? r->tok[num] : in_run ? BPE_EMPTY : find_at(v, p + s, len);
        if (run_fits(v, r, cache, p, s, num, t, last)) {
            found++;
            last[i] = num == BPE_RUN_NONE ? RUN_ID(t) : num;
        }
    }
    return found == 1;
}

/* The places of p[0..n) (k and size are the alphabet's, constants where
 * inlined, so that the windows' remainders are no divisions, and the last
 * k places' rows stay in registers); 0 when a place has no single answer
 * or too many need run_place. */
static inline __attribute__((always_inline)) int run_places(const struct bpe *v, const struct bpe_run *r,
                                                            const uint8_t *p, size_t n, size_t first, uint32_t *last,
                                                            const unsigned k, const uint32_t size) {
    /* in locals: the stores to last[] could alias the vocabulary's fields */
    const uint64_t *window = r->window, *longer = r->longer, *compat = r->compat;
    const uint16_t *number = r->number;
    const size_t stride = r->n + 1, fast_from = first + r->max_len;  /* no token from the byte before ends later */
    const uint32_t lo = r->lo, wmod = bpe_pow(size, k - 1);
    compat_cache *cache = NULL;
    size_t slow = 0, numbered = 0;  /* how many places in a row before i have last tokens in the bitmap */
    size_t row[RUN_KMAX + 1] = {0};  /* [L]: the pair bitmap's row of last[i - L] (its number * stride) */
    int ok = 0;
    uint32_t w = 0, w4 = 0;  /* the last k and 4 bytes before place i, as numbers */
    last[0] = RUN_START;
    for (size_t i = 1; i <= n; i++) {
        uint32_t d = i > first ? (uint32_t)p[i - 1] - lo : 0;  /* the byte before: a stand-in */
        w4 = k == 4 ? w % wmod * size + d : w * size + d;  /* k is 3 or 4: no second remainder */
        w = k == 4 ? w4 : w % wmod * size + d;
        int long_here = (int)bpe_bit(longer, w4);
        size_t chosen_row;
        if (i > fast_from && !long_here && numbered >= k) {
            uint64_t e = window[w];
            uint32_t pick[RUN_KMAX + 1], chosen = number[d];
            unsigned fits[RUN_KMAX + 1], count = 0;
            pick[1] = chosen;
#pragma GCC unroll 4
            for (unsigned len = 1; len <= k; len++) {
                if (len > 1) pick[len] = (uint32_t)(e >> (16 * (len - 2))) & 0xFFFF;
                fits[len] = bpe_bit(compat, row[len] + pick[len]);
                count += fits[len];
            }
            /* With one answer, none of 2..k means 1: the choice waits on
             * the rows of i - 2 .. i - k, not i - 1, which only checks. */
#pragma GCC unroll 4
            for (unsigned len = k; len > 1; len--) chosen = fits[len] ? pick[len] : chosen;
            if (count != 1) goto out;
            last[i] = chosen;
            chosen_row = chosen * stride;
            numbered++;
        } else {
            if (++slow > RUN_SLOW_MIN && slow > i / 4) goto out;
            /* near the start, any length (a token from the byte before) */
            uint64_t lens = i <= fast_from ? UINT64_MAX
                            : long_here    ? r->longer_lens[bpe_run_longer_index(longer, r->longer_rank, w4)]
                                           : 0;
            if (!run_place(v, r, &cache, p, i, first, lens, last)) goto out;
            int in_bitmap = last[i] < r->n;
            numbered = in_bitmap ? numbered + 1 : 0;
            chosen_row = in_bitmap ? last[i] * stride : 0;
        }
#pragma GCC unroll 4
        for (unsigned len = k; len > 1; len--) row[len] = row[len - 1];
        row[1] = chosen_row;
    }
    ok = 1;
out:
    free(cache);
    return ok;
}

/* One step back: the token that ends at place *i; *i moves to where it starts. */
static inline uint32_t run_step(const struct bpe *v, const struct bpe_run *r, const uint32_t *last, size_t *i) {
    uint32_t e = last[*i], t = run_entry_token(r, e);
    *i -= e & 0x80000000u ? token_len(v, t) : r->len[e];
    return t;
}

#define RUN_SEEN 0x40000000u

/* A step of the walk from the middle: its token goes below the ones it has
 * (top[0], top[-1], ...), and the place it leaves is marked with their count. */
static inline __attribute__((always_inline)) void run_step_marking(const struct bpe *v, const struct bpe_run *r,
                                                                   uint32_t *last, size_t *i, uint32_t *top,
                                                                   size_t *count) {
    size_t at = *i;
    top[-(ptrdiff_t)*count] = run_step(v, r, last, i);
    last[at] = RUN_SEEN | (uint32_t)(*count)++;
}

/* The tokens of places 1..n, read back from the end, into last[0..count);
 * returns count. Each step of the walk waits on the load of the one before,
 * so when last has room after last[n] (`spare` entries), a second walk from
 * the middle goes beside it (twice as fast here) and keeps its tokens there,
 * marking the places it passes (bit 30 of last[], free in numbers and
 * RUN_IDs: RUN_SEEN | its count of tokens so far). The walk from the end
 * stops at the first place the other passed: from there on the two are the
 * same walk. */
static size_t run_tokens(const struct bpe *v, const struct bpe_run *r, uint32_t *last, size_t n, size_t spare) {
    size_t ia = n, j = n + 1;  /* from the end: its tokens go to last[j..n] */
    size_t mid = n / 2 < spare ? n / 2 : spare, nb = 0;
    size_t ib = n < RUN_SEEN ? mid : 0;     /* from the middle, if at all: at most mid tokens */
    uint32_t *top = last + n + 1 + mid - 1;  /* its tokens, from top[0] down */
    while (ia > mid && ib > 0) {
        last[--j] = run_step(v, r, last, &ia);
        run_step_marking(v, r, last, &ib, top, &nb);
    }
    size_t met = 0, from_b = 0;  /* where the walks met, and the middle walk's token that ends there */
    while (ia > 0) {
        while (ib > 0 && ib >= ia) run_step_marking(v, r, last, &ib, top, &nb);  /* its places down to ia are marked */
        if (last[ia] & RUN_SEEN) {
            met = ia;
            from_b = last[ia] & ~RUN_SEEN;
            break;
        }
        last[--j] = run_step(v, r, last, &ia);
    }
    size_t count = 0;
    if (met) {
        while (ib > 0) run_step_marking(v, r, last, &ib, top, &nb);
        count = nb - from_b;  /* top[1 - nb .. -from_b] */
        memmove(last, top + 1 - nb, count * sizeof *last);
    }
    memmove(last + count, last + j, (n + 1 - j) * sizeof *last);
    return count + n + 1 - j;
}

/* The run alphabet byte c belongs to, or BPE_RUNS. */
static int run_alphabet(const struct bpe *v, uint8_t c) {
    int which = 0;
    while (which < BPE_RUNS && !bpe_run_has(v->runs[which].lo, v->runs[which].size, c)) which++;
    return which;
}

/* Whether p[from..to) are all of r's alphabet. In blocks of 64 with no
 * early exit inside one, so that the compiler vectorizes it. */
static int run_all_in(const struct bpe_run *r, const uint8_t *p, size_t from, size_t to) {
    const uint8_t lo = r->lo, size = r->size;
    size_t i = from;
    for (; to - i >= 64; i += 64) {
        unsigned outside = 0;
        for (unsigned j = 0; j < 64; j++) outside |= (uint8_t)(p[i + j] - lo) >= size;
        if (outside) return 0;
    }
    for (; i < to; i++)
        if (!bpe_run_has(lo, size, p[i])) return 0;
    return 1;
}

/* For a run of one alphabet after at most one other byte; 0 (nothing done)
 * for anything else, or when too many places need the general look-ups
 * (long runs of zeros: GPT-2 has tokens of up to 16 of them), which the
 * merges then do better. */
static int merge_run(out_t *o, const uint8_t *p, size_t n, size_t off) {
    const struct bpe *v = o->v;
    size_t first = 0;  /* where the run starts: after at most one other byte */
    int which = run_alphabet(v, p[0]);
    if (which == BPE_RUNS && n > 1) which = run_alphabet(v, p[first = 1]);
    if (which == BPE_RUNS || n >= UINT32_MAX || !v->runs[which].n) return 0;
    const struct bpe_run *r = &v->runs[which];
    /* Where longer tokens end at most places (a run of one letter), the
     * merges do better: look at the start before the whole. */
    size_t ends = 0, seen = n - first < RUN_SEEK ? n - first : RUN_SEEK;
    if (!run_all_in(r, p, first, first + seen)) return 0;
    for (size_t i = first + 4; i <= first + seen; i++) {
        uint32_t x = bpe_run_value(r->lo, r->size, p + i - 4, 4);
        ends += bpe_bit(r->longer, x);
    }
    if (4 * ends > seen || !run_all_in(r, p, first + seen, n)) return 0;
    /* last[i] (a number, or RUN_ID) in the caller's buffer when it has
     * room, where the tokens end up anyway; what room is left, or half as
     * much again of our own, for a second walk back */
    int direct = !o->offs && has_room(o, n + 1);
    size_t spare = direct ? o->cap - o->n - (n + 1) : n / 2;
    uint32_t *last = direct ? o->ids + o->n : big_alloc((n + 1 + spare) * sizeof *last);
    if (!last) return 0;
    int done = which == BPE_RUN_DIGITS ? run_places(v, r, p, n, first, last, BPE_DIGITS_K, 10)
                                       : run_places(v, r, p, n, first, last, BPE_LOWER_K, 26);
    if (done) {
        size_t count = run_tokens(v, r, last, n, spare);
        if (direct) o->n += count;
        else emit_tokens(o, last, count, off);
    }
    if (!direct) big_free(last);
    return done;
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

typedef struct {
    const struct bpe *v;
    const struct bpe_run *r;
    uint64_t *bits;
    size_t from, to;  /* rows */
} compat_rows;

static void fill_compat_rows(void *ctx, int k, cache_slot *unused) {
    (void)unused;
    compat_rows *j = (compat_rows *)ctx + k;
    const struct bpe *v = j->v;
    const struct bpe_run *r = j->r;
    size_t n = r->n;
    compat_cache *cache = NULL;
    for (size_t a = j->from; a < j->to; a++) {
        uint8_t buf[8];
        size_t la = r->len[a];
        memcpy(buf, v->tok_bytes + v->tok_off[r->tok[a]], la);
        /* a alone must be its own encoding, as compatible() assumes */
        if (!compatible(v, &cache, buf, 0, BPE_EMPTY, r->tok[a])) continue;
        for (size_t b = 0; b < n; b++) {
            size_t lb = r->len[b], bit = a * (n + 1) + b;
            memcpy(buf + la, v->tok_bytes + v->tok_off[r->tok[b]], lb);
            if (compatible(v, &cache, buf, la, r->tok[a], r->tok[b])) j->bits[bit / 64] |= 1ull << (bit % 64);
        }
    }
    free(cache);
}

/* Two threads take half the rows each (5 M pairs for GPT-2's lowercase
 * tokens), split where a row starts a 64-bit word so that
 * no word is shared. bits comes zeroed (the image is calloc'd). */
void bpe_fill_run_compat(const struct bpe *v, const struct bpe_run *r, uint64_t *bits) {
    size_t n = r->n, half = n / 2;
    while (half > 0 && half * (n + 1) % 64) half--;
    compat_rows rows[2] = {{v, r, bits, 0, half}, {v, r, bits, half, n}};
    job_queue q = {fill_compat_rows, rows, 2, 0, 0};
    queue_run(&q, cpu_count());
}

/* Long pieces, fastest in practice: cut into chunks, each merged with the
 * short loop, joined where the pair at the junction is compatible. By the
 * first fact above, two BPE encodings joined by a compatible pair are the
 * BPE encoding of the joined bytes, so this needs one pair check per chunk
 * instead of one per token. A chunk is merged a little past its cut
 * (CHUNK_AHEAD bytes) and kept up to its last token ending by the cut, so
 * that it usually ends where the answer has a boundary; when the junction
 * is incompatible anyway, the last kept token is given back and the chunk
 * starts there. Returns 0 (nothing emitted) after CHUNK_GIVE_BACK tokens
 * given back in a row, for the caller's next encoder.
 *
 * Repetitive pieces (runs of one character, long `=====` rules) repeat
 * their chunks: pieces of CHUNK_CACHE_MIN bytes or more remember them. */
#define CHUNK 40
#define CHUNK_AHEAD 8
#define CHUNK_GIVE_BACK 16
#define CHUNK_CACHE_SLOTS 64
#define CHUNK_CACHE_BYTES 96
#define CHUNK_CACHE_MIN 4096

typedef struct {
    uint32_t len, n_tok;
    uint8_t bytes[CHUNK_CACHE_BYTES];
    uint32_t tok[CHUNK_CACHE_BYTES];
} chunk_slot;

static size_t merge_chunk(const struct bpe *v, chunk_slot *cache, const uint8_t *p, size_t n,
                          uint32_t *tok) {
    if (!cache || n > CHUNK_CACHE_BYTES) return merge_short(v, p, n, tok);
    chunk_slot *c = &cache[bpe_hash_bytes(p, n) & (CHUNK_CACHE_SLOTS - 1)];
    if (c->len == n && !memcmp(c->bytes, p, n)) {
        memcpy(tok, c->tok, c->n_tok * sizeof *tok);
        return c->n_tok;
    }
    size_t m = merge_short(v, p, n, tok);
    c->len = (uint32_t)n;
    c->n_tok = (uint32_t)m;
    memcpy(c->bytes, p, n);
    memcpy(c->tok, tok, m * sizeof *tok);
    return m;
}

/* One run of the chunk loop: extends tok[0..k), the BPE encoding of
 * p[0..q), until it covers p[0..n). With a tail (the encoding of
 * p[tail_at..n), from another run), it stops as soon as one of its own
 * token boundaries meets one of the tail's with a compatible pair there,
 * and takes the rest of the tail: by the first fact, that is the encoding
 * of the whole. ok is 0 after CHUNK_GIVE_BACK tokens given back in a row. */
typedef struct {
    const struct bpe *v;
    const uint8_t *p;
    size_t n;
    uint32_t *tok;        /* room for n tokens */
    size_t k, q;
    const uint32_t *tail;
    size_t tail_n, tail_at;
    int ok;
} chunk_run;

static void chunk_loop(chunk_run *r) {
    const struct bpe *v = r->v;
    const uint8_t *p = r->p;
    uint32_t *tok = r->tok;
    size_t n = r->n, k = r->k, q = r->q, cut = 0, given_back = 0, ti = 0, tpos = r->tail_at;
    chunk_slot *chunks = n >= CHUNK_CACHE_MIN ? gpt2in_calloc(CHUNK_CACHE_SLOTS, sizeof *chunks) : NULL;
    compat_cache *cache = NULL;
    r->ok = 0;
    while (q < n) {
        if (r->tail && k) {
            while (ti < r->tail_n && tpos < q) tpos += token_len(v, r->tail[ti++]);
            if (tpos == q && ti < r->tail_n && compatible(v, &cache, p, q, tok[k - 1], r->tail[ti])) {
                memcpy(tok + k, r->tail + ti, (r->tail_n - ti) * sizeof *tok);
                k += r->tail_n - ti;
                q = n;
                break;
            }
        }
        if (!given_back) cut = q + CHUNK < n ? q + CHUNK : n;
        size_t end = cut + CHUNK_AHEAD < n ? cut + CHUNK_AHEAD : n;
        if (end - q > SHORT_PIECE) goto out;
        uint32_t t[SHORT_PIECE];
        size_t m = merge_chunk(v, chunks, p + q, end - q, t), keep = 1, at = q + token_len(v, t[0]);
        while (keep < m && (end == n || at + token_len(v, t[keep]) <= cut)) at += token_len(v, t[keep++]);
        if (k && !compatible(v, &cache, p, q, tok[k - 1], t[0])) {
            if (++given_back > CHUNK_GIVE_BACK) goto out;
            q -= token_len(v, tok[--k]);
            continue;
        }
        given_back = 0;
        memcpy(tok + k, t, keep * sizeof *t);
        k += keep;
        q = at;
    }
    r->k = k;
    r->q = q;
    r->ok = 1;
out:
    free(chunks);
    free(cache);
}

static void chunk_job(void *ctx, int k, cache_slot *unused) {
    (void)unused;
    chunk_loop((chunk_run *)ctx + k);
}

/* A piece this long may be cut into segments for as many threads: each
 * segment is encoded alone, then the runs are joined left to right. */
#define SEGMENT_MIN (256u << 10)
#define SEGMENT_SEEK 4096
#define MAX_SEGMENTS 64

typedef int can_cut_fn(const struct bpe *v, const uint8_t *p, size_t c);

/* The first place c' in [c, c + SEGMENT_SEEK) below n where can_cut, or n. */
static size_t seek_cut(const struct bpe *v, const uint8_t *p, size_t n, size_t c, can_cut_fn *can_cut) {
    size_t limit = c + SEGMENT_SEEK < n ? c + SEGMENT_SEEK : n;
    while (c < limit && !can_cut(v, p, c)) c++;
    return c < limit ? c : n;
}

/* Where to cut p[0..n) into `segments` parts for as many threads: near each
 * k/segments of it (seek_cut). Writes 0 = cuts[0] < ... < cuts[m] = n and
 * returns m, the number of parts (fewer where no place was found;
 * MAX_SEGMENTS at most). */
static int segment_cuts(const struct bpe *v, const uint8_t *p, size_t n, int segments, can_cut_fn *can_cut,
                        size_t *cuts) {
    if (segments < 1 || (size_t)segments > n) segments = 1;
    if (segments > MAX_SEGMENTS) segments = MAX_SEGMENTS;
    int m = 0;
    cuts[0] = 0;
    for (int s = 1; s < segments; s++) {
        size_t c = seek_cut(v, p, n, n * (size_t)s / (size_t)segments, can_cut);
        if (c < n && c > cuts[m]) cuts[++m] = c;
    }
    cuts[++m] = n;
    return m;
}

/* merge_chunked's segments start where a byte differs from the one before:
 * in a run of one byte (or any periodic text) the tokens of a segment would
 * lie off the grid of the whole and never meet them, and the join would
 * redo the segment alone. */
static int byte_changes(const struct bpe *v, const uint8_t *p, size_t c) {
    (void)v;
    return p[c - 1] != p[c];
}

static int merge_chunked(out_t *o, const uint8_t *p, size_t n, size_t off, int segments) {
    const struct bpe *v = o->v;
    if (2 * (size_t)v->max_token_len > SHORT_PIECE || n >= UINT32_MAX) return 0;
    /* Tokens go straight into the caller's buffer when it has room for one
     * per byte (nothing there counts as emitted until o->n moves). */
    int in_place = has_room(o, n);
    uint32_t *tok = in_place ? o->ids + o->n : big_alloc(n * sizeof *tok);
    size_t cuts[MAX_SEGMENTS + 1];
    segments = segment_cuts(v, p, n, segments, byte_changes, cuts);
    chunk_run runs[MAX_SEGMENTS];
    int done = 0, have = 0;
    for (int s = 0; s < segments; s++) {
        uint32_t *t = s == 0 ? tok : big_alloc((cuts[s + 1] - cuts[s]) * sizeof *t);
        runs[s] = (chunk_run){v, p + cuts[s], cuts[s + 1] - cuts[s], t, 0, 0, NULL, 0, 0, 0};
        if (!t) break;
        have++;
    }
    if (have < segments) goto out;
    job_queue q = {chunk_job, runs, segments, 0, 0};
    queue_run(&q, segments);
    size_t k = runs[0].k;
    int ok = runs[0].ok;
    for (int s = 1; s < segments && ok; s++) {
        chunk_run join = {v, p, cuts[s + 1], tok, k, cuts[s], runs[s].tok, runs[s].k, cuts[s], 0};
        ok = runs[s].ok && (chunk_loop(&join), join.ok);
        k = join.k;
    }
    if (!ok) goto out;
    if (in_place) {
        if (o->offs)
            for (size_t i = 0, at = off; i < k; at += token_len(v, tok[i++])) o->offs[o->n + i] = at;
        o->n += k;
    } else {
        emit_tokens(o, tok, k, off);
    }
    done = 1;
out:
    for (int s = 1; s < have; s++) big_free(runs[s].tok);
    if (!in_place) big_free(tok);
    return done;
}

/* How many segments (and threads) a piece of n bytes is merged in. */
static int piece_segments(const out_t *o, size_t n) {
    size_t most = n / SEGMENT_MIN;
    return o->threads > 1 && most > 1 ? (int)(most < (size_t)o->threads ? most : (size_t)o->threads) : 1;
}

/* Runs of one alphabet longer than this go to merge_run. */
#define RUN_MIN 64

/* The merges of p[0..n), n >= 2, with no look-up of the whole. */
static void merge_stretch(out_t *o, const uint8_t *p, size_t n, size_t off) {
    const struct bpe *v = o->v;
    if (n > RUN_MIN && merge_run(o, p, n, off)) return;
    if (n <= SHORT_PIECE) {
        uint32_t tok[SHORT_PIECE];
        emit_tokens(o, tok, merge_short(v, p, n, tok), off);
    } else if (!merge_chunked(o, p, n, off, piece_segments(o, n)) && !merge_backtrack(o, p, n, off)) {
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
    if (n > RUN_MIN && merge_run(o, p, n, off)) return;
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
    /* Part k's tokens go to buf + cuts[k] + k: at most one token a byte,
     * and room for one more that merge_run wants. */
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
