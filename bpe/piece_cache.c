/* piece_cache.c - the cache of pieces that are not tokens: a piece is
 * looked up by its hash before it is merged (merge.c, long.c), and its
 * tokens are kept there.
 *
 * Its CACHE_SIZE bytes (one huge page less the mapping's header) hold
 * three tables, each set-associative, a piece's hash naming its set:
 *   - pieces of up to SMALL_BYTES bytes (nearly all the pieces that are
 *     not tokens): slots of 32 bytes, two to a cache line, which is their
 *     set, so that a probe reads one line. A slot holds up to 8 tokens of
 *     16 bits (ids below 65536, all of GPT-2's) or 4 of 32;
 *   - pieces of SMALL_BYTES + 1 to CACHE_BYTES bytes: line slots
 *     (cache_slot, 64 bytes) in sets of two, up to CACHE_TOKENS tokens;
 *   - pieces of up to SHORT_PIECE bytes: long slots of 1 KB, one a set.
 * The distinct pieces of a long text outnumber the slots many times (tens
 * of thousands of words), so the small slots take most of the room. A
 * set's newer piece is in its first slot. A slot whose length is 0 is
 * free (pieces have 2 bytes or more). */
#include <string.h>

#include "encode.h"
#include "merge.h"

/* n_tok of a slot whose piece has more tokens than the slot holds but
 * merges not at all: each byte is a token; SAME_BYTES when the bytes are
 * also all the same (the runs of spaces that indent code, which GPT-2
 * does not merge), so that its token, the slot's first, is written four
 * at a time. In a small slot, n_tok | WIDE: the tokens are 32-bit. */
#define ALL_BYTES 0
#define SAME_BYTES 255
#define WIDE 0x10

#define SMALL_BYTES 14
typedef struct {
    uint8_t bytes[SMALL_BYTES];
    uint8_t len, n_tok;
    union {
        uint16_t t16[8];
        uint32_t t32[4];
    } tok;
} small_slot;
_Static_assert(sizeof(small_slot) == 32, "two small slots to a cache line");

/* The tables' sizes: the small slots take 1 MB (a power of two, so that
 * a set is picked by a mask), the line slots what the long ones leave
 * (picked by a multiply: their pieces are fewer). */
#define SMALL_SETS 16384
#define LONG_BYTES (LONG_SLOTS * sizeof(long_slot))
#define LINE_SETS ((CACHE_SIZE - LONG_BYTES - SMALL_SETS * 2 * sizeof(small_slot)) / (2 * sizeof(cache_slot)))
_Static_assert(LINE_SETS > 0 && SMALL_SETS * 2 * sizeof(small_slot) + LINE_SETS * 2 * sizeof(cache_slot) + 64 +
                                       LONG_BYTES <= CACHE_SIZE,
               "the piece cache's tables and the line slots' counts fit its room");
_Static_assert((LONG_SLOTS & (LONG_SLOTS - 1)) == 0 && (SMALL_SETS & (SMALL_SETS - 1)) == 0,
               "LONG_SLOTS and SMALL_SETS are powers of two");

static inline small_slot *small_set(cache_slot *cache, uint64_t h) {
    return (small_slot *)cache + (h & (2 * SMALL_SETS - 2));
}
static inline cache_slot *line_set(cache_slot *cache, uint64_t h) {
    size_t set = (size_t)((uint64_t)(uint32_t)h * LINE_SETS >> 32);
    return (cache_slot *)((small_slot *)cache + 2 * SMALL_SETS) + 2 * set;
}
/* The line slots pay for their probe (a line that is rarely in cache) and
 * their keeping only where pieces of SMALL_BYTES + 1 to CACHE_BYTES bytes
 * recur: in English and code most probes find the piece, in base64 almost
 * none. So their use adapts (adaptive cache bypassing, measured by set
 * sampling as in Qureshi et al.'s set dueling): each window of LINE_WINDOW
 * such pieces counts its probes and its hits; after a window where fewer
 * than 1 probe in LINE_RARE found its piece, only the pieces whose hash
 * is sampled (its top bits, from LINE_SAMPLE_SHIFT up, all 0) are probed
 * and kept, and their hits decide the next window. The counts are in the
 * 64 bytes after the line slots. */
#define LINE_WINDOW 4096u
#define LINE_RARE 64u
#define LINE_SAMPLE_SHIFT 59  /* h >> 59 == 0: 1 piece in 32 */
typedef struct {
    uint32_t seen, probes, hits, rare;
} line_use;
static inline line_use *line_uses(cache_slot *cache) {
    return (line_use *)((small_slot *)cache + 2 * SMALL_SETS + 4 * LINE_SETS);
}
static inline long_slot *long_set(cache_slot *cache, uint64_t h) {
    return (long_slot *)((uint8_t *)cache + CACHE_SIZE - LONG_BYTES) + (h & (LONG_SLOTS - 1));
}

/* Bit k set when a[k] == b[k], for k < 16. */
static inline uint32_t same16(const uint8_t *a, const uint8_t *b) {
#ifdef __SSE2__
    __m128i x = _mm_loadu_si128((const __m128i *)a), y = _mm_loadu_si128((const __m128i *)b);
    return (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, y));
#else
    uint32_t m = 0;
    for (int k = 0; k < 16; k++) m |= (uint32_t)(a[k] == b[k]) << k;
    return m;
#endif
}

/* Whether a slot holds the n bytes at q (32 readable). */
static inline int small_holds(const small_slot *c, const uint8_t *q, size_t n) {
    uint32_t want = (1u << n) - 1;
    return c->len == n && (same16(c->bytes, q) & want) == want;
}
static inline int line_holds(const cache_slot *c, const uint8_t *q, size_t n) {
    uint32_t want = (1u << n) - 1;
    return c->len == n && ((same16(c->bytes, q) | same16(c->bytes + 16, q + 16) << 16) & want) == want;
}

/* A slot's tokens out (ALL_BYTES, SAME_BYTES: none); their count. */
static size_t small_tokens(const small_slot *c, uint32_t *tok) {
    size_t m = c->n_tok & ~WIDE;
    if (c->n_tok == ALL_BYTES || c->n_tok == SAME_BYTES) return 0;
    for (size_t k = 0; k < m; k++) tok[k] = c->n_tok & WIDE ? c->tok.t32[k] : c->tok.t16[k];
    return m;
}

/* The bytes of a piece whose tokens are its bytes' to o (n_tok ALL_BYTES
 * or SAME_BYTES, t the first byte's token). */
static void emit_all_bytes(out_t *o, const uint8_t *bytes, size_t len, unsigned n_tok, uint32_t t, size_t off) {
    if (n_tok == SAME_BYTES && !o->offs && has_room(o, CACHE_BYTES + 2)) {
        uint32_t *w = o->ids + o->n;
        for (size_t k = 0; k < len; k += 4) w[k] = w[k + 1] = w[k + 2] = w[k + 3] = t;
        o->n += len;
        return;
    }
    emit_bytes(o, bytes, len, off);
}

/* A small slot's tokens to o the slow way (offsets wanted, little room,
 * a slot of 32-bit tokens or of bytes): out of line, so that a hit's path
 * saves no registers. */
static __attribute__((noinline)) void emit_small_slow(out_t *o, const small_slot *c, size_t off) {
    unsigned k = c->n_tok;
    if (k == ALL_BYTES || k == SAME_BYTES) {
        emit_all_bytes(o, c->bytes, c->len, k, o->v->byte_tok[c->bytes[0]], off);
        return;
    }
    uint32_t tok[8];
    emit_tokens(o, tok, small_tokens(c, tok), off);
}

/* A small slot's tokens to o: eight 16-bit ones widened and written at
 * once when there is room and no offsets (what lies past n_tok is written
 * over later). */
static inline __attribute__((always_inline)) void emit_small(out_t *o, const small_slot *c, size_t off) {
    unsigned k = c->n_tok;
    if (k - 1 < 8 && !o->offs && has_room(o, 8)) {
        uint32_t *w = o->ids + o->n;
#ifdef __SSE2__
        __m128i x = _mm_loadu_si128((const __m128i *)c->tok.t16), z = _mm_setzero_si128();
        _mm_storeu_si128((__m128i *)w, _mm_unpacklo_epi16(x, z));
        _mm_storeu_si128((__m128i *)(w + 4), _mm_unpackhi_epi16(x, z));
#else
        for (int i = 0; i < 8; i++) w[i] = c->tok.t16[i];
#endif
        o->n += k;
        return;
    }
    emit_small_slow(o, c, off);
}

/* A line slot's tokens to o: all CACHE_TOKENS copied at once when there is
 * room and no offsets. */
static inline __attribute__((always_inline)) void emit_line(out_t *o, const cache_slot *c, size_t off) {
    if (c->n_tok == ALL_BYTES || c->n_tok == SAME_BYTES) {
        emit_all_bytes(o, c->bytes, c->len, c->n_tok, c->tok[0], off);
        return;
    }
    if (!o->offs && has_room(o, CACHE_TOKENS)) {
        memcpy(o->ids + o->n, c->tok, sizeof c->tok);
        o->n += c->n_tok;
        return;
    }
    emit_tokens(o, c->tok, c->n_tok, off);
}

/* Keeps piece q[0..n) (32 bytes readable), merged into tok[0..m), in
 * small slot set s: 16-bit tokens when they fit, else 32-bit ones, else
 * (each byte a token) the mark. Returns 0 when it does not fit. */
static int keep_small(const struct bpe *v, small_slot *s, const uint8_t *q, size_t n, const uint32_t *tok,
                      size_t m) {
    small_slot c;
    memcpy(&c, q, 16);  /* the bytes after the piece too, then len and n_tok over them */
    c.len = (uint8_t)n;
    if (m <= 8 && v->n_tokens <= 65536) {
        /* all 8 narrowed (what lies past m is never read) */
        c.n_tok = (uint8_t)m;
#ifdef __SSE2__
        /* below 2^16: shifted down to signed 16 bits, packed, shifted back */
        __m128i bias = _mm_set1_epi32(32768), a = _mm_loadu_si128((const __m128i *)tok),
                b = _mm_loadu_si128((const __m128i *)(tok + 4));
        __m128i t = _mm_packs_epi32(_mm_sub_epi32(a, bias), _mm_sub_epi32(b, bias));
        _mm_storeu_si128((__m128i *)c.tok.t16, _mm_add_epi16(t, _mm_set1_epi16(-32768)));
#else
        for (size_t k = 0; k < 8; k++) c.tok.t16[k] = (uint16_t)tok[k];
#endif
    } else if (m <= 4) {
        c.n_tok = (uint8_t)(m | WIDE);
        for (size_t k = 0; k < 4; k++) c.tok.t32[k] = k < m ? tok[k] : 0;
    } else if (m == n) {
        c.n_tok = memcmp(q, q + 1, n - 1) ? ALL_BYTES : SAME_BYTES;
    } else {
        return 0;
    }
    s[1] = s[0];
    s[0] = c;
    return 1;
}

size_t bpe_cache_kept(cache_slot *cache, const uint8_t *p, size_t n, uint64_t h, uint32_t *tok) {
    uint8_t q[32] = {0};
    if (n > CACHE_BYTES) return 0;
    memcpy(q, p, n);
    if (n <= SMALL_BYTES) {
        small_slot *s = small_set(cache, h);
        for (int k = 0; k < 2; k++)
            if (small_holds(&s[k], q, n)) return small_tokens(&s[k], tok);
        return 0;
    }
    cache_slot *c = line_set(cache, h);
    for (int k = 0; k < 2; k++)
        if (line_holds(&c[k], q, n) && c[k].n_tok != ALL_BYTES && c[k].n_tok != SAME_BYTES) {
            memcpy(tok, c[k].tok, c[k].n_tok * sizeof *tok);
            return c[k].n_tok;
        }
    return 0;
}

int bpe_cache_alter(cache_slot *cache, const uint8_t *p, size_t n, uint64_t h, uint32_t id) {
    uint8_t q[32] = {0};
    if (n > CACHE_BYTES) return 0;
    memcpy(q, p, n);
    if (n <= SMALL_BYTES) {
        small_slot *s = small_set(cache, h);
        for (int k = 0; k < 2; k++)
            if (small_holds(&s[k], q, n) && s[k].n_tok != ALL_BYTES && s[k].n_tok != SAME_BYTES) {
                if (s[k].n_tok & WIDE) s[k].tok.t32[0] = id;
                else if (id < 65536) s[k].tok.t16[0] = (uint16_t)id;
                else return 0;
                return 1;
            }
        return 0;
    }
    cache_slot *c = line_set(cache, h);
    for (int k = 0; k < 2; k++)
        if (line_holds(&c[k], q, n) && c[k].n_tok != ALL_BYTES && c[k].n_tok != SAME_BYTES) {
            c[k].tok[0] = id;
            return 1;
        }
    return 0;
}

/* Whether the small set s holds the piece (q: it and what follows it, 32
 * bytes); its tokens to o if so. */
static inline __attribute__((always_inline)) int small_hit(out_t *o, const small_slot *s, const uint8_t *q, size_t n,
                                                           size_t off) {
    if (small_holds(&s[0], q, n)) {
        emit_small(o, &s[0], off);
        return 1;
    }
    if (small_holds(&s[1], q, n)) {
        emit_small(o, &s[1], off);
        return 1;
    }
    return 0;
}

/* bpe_merge_piece past its first look: the small slots unless probed is
 * set (looked at already), the line slots, the merge. */
static __attribute__((noinline)) void merge_piece_miss(out_t *o, const uint8_t *p, size_t n, size_t off, uint64_t h,
                                                        size_t avail, int probed) {
    const struct bpe *v = o->v;
    if (n <= CACHE_BYTES) {
        cache_slot *cache = o->cache;
        /* the piece and whatever follows it, 32 bytes */
        uint8_t buf[32];
        const uint8_t *q = p;
        if (avail < 32) {
            memset(buf, 0, sizeof buf);
            q = memcpy(buf, p, n);
        }
        small_slot *s = NULL;
        cache_slot *c = NULL;
        if (cache && n <= SMALL_BYTES) {
            s = small_set(cache, h);
            if (!probed && small_hit(o, s, q, n, off)) return;
        } else if (cache) {
            line_use *u = line_uses(cache);
            if (++u->seen == LINE_WINDOW) {
                u->rare = u->hits * LINE_RARE < u->probes;
                u->seen = u->probes = u->hits = 0;
            }
            if (!u->rare || h >> LINE_SAMPLE_SHIFT == 0) {
                c = line_set(cache, h);
                u->probes++;
                if (line_holds(&c[0], q, n)) {
                    u->hits++;
                    emit_line(o, &c[0], off);
                    return;
                }
                if (line_holds(&c[1], q, n)) {
                    u->hits++;
                    emit_line(o, &c[1], off);
                    return;
                }
            } else if (bpe_split_piece(o, p, n, off)) {
                return;
            }
        }
        uint32_t tok[CACHE_BYTES];
        /* a piece of a few CJK characters or a long word has places where no
         * token joins two bytes (long.c); short ASCII ones rarely */
        size_t m = p[n - 1] >= 0x80 || n >= 16 ? bpe_merge_cut(v, p, n, tok) : bpe_merge_short(v, p, n, tok);
        /* up to CACHE_TOKENS: copied whole (what lies past m too), as a
         * hit copies them, without a call */
        if (m <= CACHE_TOKENS && !o->offs && has_room(o, CACHE_TOKENS)) {
            memcpy(o->ids + o->n, tok, CACHE_TOKENS * sizeof *tok);
            o->n += m;
        } else {
            emit_tokens(o, tok, m, off);
        }
        if (s) {
            keep_small(v, s, q, n, tok, m);
        } else if (c && (m <= CACHE_TOKENS || m == n)) {
            c[1] = c[0];
            memcpy((uint8_t *)c, q, 32);  /* the bytes after the piece too, then len and n_tok over them */
            c->len = (uint8_t)n;
            c->n_tok = m <= CACHE_TOKENS ? (uint8_t)m : memcmp(p, p + 1, n - 1) ? ALL_BYTES : SAME_BYTES;
            memcpy(c->tok, tok, sizeof c->tok);
        }
        return;
    }
    long_slot *c = o->cache && n <= SHORT_PIECE ? long_set(o->cache, h) : NULL;
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

void bpe_merge_piece(out_t *o, const uint8_t *p, size_t n, size_t off, uint64_t h, size_t avail) {
    /* most calls find their piece in a small slot: that path first */
    cache_slot *cache = o->cache;
    int probed = cache && n <= SMALL_BYTES && avail >= 32;
    if (probed && small_hit(o, small_set(cache, h), p, n, off)) return;
    merge_piece_miss(o, p, n, off, h, avail, probed);
}
