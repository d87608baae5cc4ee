/* piece_cache.c - the cache of pieces that are not tokens: a piece is
 * looked up by its hash (two one-line slots for pieces of up to
 * CACHE_BYTES bytes, one 1 KB slot for longer ones up to SHORT_PIECE)
 * before it is merged (merge.c, long.c), and its tokens are kept there. */
#include <string.h>

#include "encode.h"

/* n_tok of a short slot whose piece has more than CACHE_TOKENS tokens but
 * merges not at all: each byte is a token (the runs of spaces that indent
 * code, which GPT-2 does not merge). */
#define ALL_BYTES 0

/* Bit k set when a[k] == b[k], for k < 32. */
static inline uint32_t same32(const uint8_t *a, const uint8_t *b) {
#ifdef __SSE2__
    __m128i a0 = _mm_loadu_si128((const __m128i *)a), a1 = _mm_loadu_si128((const __m128i *)(a + 16));
    __m128i b0 = _mm_loadu_si128((const __m128i *)b), b1 = _mm_loadu_si128((const __m128i *)(b + 16));
    return (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(a0, b0)) |
           (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(a1, b1)) << 16;
#else
    uint32_t m = 0;
    for (int k = 0; k < 32; k++) m |= (uint32_t)(a[k] == b[k]) << k;
    return m;
#endif
}

/* Whether short cache slot c holds the n bytes at q (32 readable). */
static inline int slot_holds(const cache_slot *c, const uint8_t *q, size_t n) {
    uint32_t want = (1u << n) - 1;
    return c->len == n && (same32(c->bytes, q) & want) == want;
}

static inline __attribute__((always_inline)) void emit_slot(out_t *o, const cache_slot *c, size_t off) {
    if (c->n_tok == ALL_BYTES) {
        emit_bytes(o, c->bytes, c->len, off);
        return;
    }
    if (!o->offs && has_room(o, CACHE_TOKENS)) {  /* all of tok at once, the count after */
        memcpy(o->ids + o->n, c->tok, sizeof c->tok);
        o->n += c->n_tok;
        return;
    }
    emit_tokens(o, c->tok, c->n_tok, off);
}

void bpe_merge_piece(out_t *o, const uint8_t *p, size_t n, size_t off, uint64_t h, size_t avail) {
    const struct bpe *v = o->v;
    if (n <= CACHE_BYTES) {
        cache_slot *c = o->cache ? &o->cache[h & (CACHE_SLOTS - 2)] : NULL;
        /* the piece and whatever follows it, 32 bytes */
        uint8_t buf[32];
        const uint8_t *q = p;
        if (avail < 32) {
            memset(buf, 0, sizeof buf);
            q = memcpy(buf, p, n);
        }
        if (c) {
            if (slot_holds(&c[0], q, n)) {
                emit_slot(o, &c[0], off);
                return;
            }
            if (slot_holds(&c[1], q, n)) {
                emit_slot(o, &c[1], off);
                return;
            }
        }
        uint32_t tok[CACHE_BYTES];
        size_t m = bpe_merge_short(v, p, n, tok);
        /* up to CACHE_TOKENS: copied whole (what lies past m too), as a
         * hit copies them, without a call */
        if (m <= CACHE_TOKENS && !o->offs && has_room(o, CACHE_TOKENS)) {
            memcpy(o->ids + o->n, tok, CACHE_TOKENS * sizeof *tok);
            o->n += m;
        } else {
            emit_tokens(o, tok, m, off);
        }
        if (c && (m <= CACHE_TOKENS || m == n)) {
            c[1] = c[0];
            memcpy(c->bytes, q, 32);  /* the bytes after the piece too, then len and n_tok over them */
            c->len = (uint8_t)n;
            c->n_tok = m <= CACHE_TOKENS ? (uint8_t)m : ALL_BYTES;
            if (m <= CACHE_TOKENS) memcpy(c->tok, tok, sizeof c->tok);
        }
        return;
    }
    long_slot *c = o->cache && n <= SHORT_PIECE ? (long_slot *)(o->cache + CACHE_SLOTS) + (h & (LONG_SLOTS - 1)) : NULL;
    if (c && c->len == n && !memcmp(c->bytes, p, n)) {
        emit_tokens(o, c->tok, c->n_tok, off);
        return;
    }
    size_t first = o->n;
    if (!bpe_split_piece(o, p, n, off)) bpe_merge_stretch(o, p, n, off);
    size_t m = o->n - first;
    /* the tokens are in o->ids when they all fit */
    if (c && m <= LONG_TOKENS && !o->nomem && o->ids && o->n <= o->cap) {
        c->len = (uint16_t)n;
        c->n_tok = (uint16_t)m;
        memcpy(c->bytes, p, n);
        memcpy(c->tok, o->ids + first, m * sizeof *c->tok);
    }
}
