/* bpe_internal.h - the in-memory form of a vocabulary, shared by the loader
 * (load.c), the encoder (bpe.c), the build-time generator (tools/bpe_gen.c)
 * and the compiled-in GPT-2 vocabulary (gpt2.c). Not a public header.
 *
 * A vocabulary is one flat "image": a header followed by arrays, the same
 * bytes whether built from files at run time or embedded in the library at
 * build time, so the built-in vocabulary needs no parsing at start-up.
 */
#ifndef BPE_INTERNAL_H
#define BPE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "alloc.h"
#include "bpe.h"

#define BPE_IMAGE_MAGIC "GPT2BPE2"
#define BPE_EMPTY 0xFFFFFFFFu

/* Character classes of the pre-tokenizer (GPT-2's regex): \p{L}, \p{N},
 * \s (White_Space), and everything else. */
enum { CLS_OTHER = 0, CLS_LETTER = 1, CLS_NUMBER = 2, CLS_SPACE = 3 };

/* \s: the 25 White_Space code points (not Python's isspace: U+001C..001F are
 * not spaces here). */
static inline int bpe_is_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

/* Bit i of a bit set in 64-bit words. */
static inline unsigned bpe_bit(const uint64_t *bits, size_t i) { return (unsigned)(bits[i / 64] >> (i % 64) & 1); }

/* Code point classes as a two-stage table: stage2[stage1[cp >> 8] * 256 + (cp & 255)]. */
#define BPE_CLS_STAGE1 (0x110000 >> 8)

/* Pair table entry, packed in 64 bits: tokens a and b merge into `merged`,
 * whose id is also the merge's rank (as in tiktoken: a lower id merges
 * first). a << 42 | b << 21 | merged; BPE_PAIR_EMPTY when free. Ids are
 * below 2^21 - 1 (the loader checks).
 *
 * The table is made of buckets of BPE_PAIR_BUCKET entries, one cache line
 * each. A pair goes into the first free entry of its home bucket or of the
 * buckets after it, so a lookup reads one line and compares without
 * branching, and a bucket with a free last entry ends the search. */
typedef uint64_t bpe_pair;
#define BPE_PAIR_EMPTY UINT64_MAX
#define BPE_PAIR_BUCKET 8
#define BPE_MAX_TOKENS ((1u << 21) - 1)
static inline uint64_t bpe_pair_key(uint32_t a, uint32_t b) { return (uint64_t)a << 21 | b; }

/* Token hash slot: the id, the length and the first bytes inline, so that
 * most lookups touch one cache line. len is capped at 255 (longer tokens are
 * compared through tok_off/tok_bytes). */
#define BPE_SLOT_BYTES 11
typedef struct bpe_slot {
    uint32_t id;       /* BPE_EMPTY when free */
    uint8_t len;
    uint8_t bytes[BPE_SLOT_BYTES];
} bpe_slot;
/* bpe_find_short_piece reads a slot as two 8-byte words. */
_Static_assert(sizeof(bpe_slot) == 16 && offsetof(bpe_slot, len) == 4 && offsetof(bpe_slot, bytes) == 5,
               "bpe_slot layout");

/* The longest-match automaton (Aho-Corasick) over the tokens' bytes: a
 * node for every prefix of a token. After the text up to a place, the
 * automaton is at the node of the longest suffix of that text that is a
 * prefix of a token; the tokens that end at the place are that node (when
 * it is a token) and the nodes down its dict chain, longest first
 * (bpe/long.c). Children are found by hash (ac_child); the root's, by
 * byte (ac_root). Node numbers are below 2^24, so that a child's key,
 * node << 8 | byte, fits in 32 bits. */
typedef struct bpe_ac_node {
    uint32_t tok;    /* the token whose bytes this node spells, if it is its own encoding; else BPE_EMPTY */
    uint32_t fail;   /* the node of its longest proper suffix that is a node (the root: 0) */
    uint32_t dict;   /* the nearest node down the fail chain whose tok is a token; 0: none */
    uint32_t depth;  /* its length in bytes */
} bpe_ac_node;
#define BPE_AC_MAX_NODES ((1u << 24) - 1)
#define BPE_AC_EMPTY UINT64_MAX  /* a free entry of ac_child: key << 32 | child */

/* The image's layout, written once and expanded by its builder (offsets,
 * bpe_build_image), its reader (bpe_attach_image), the generator
 * (tools/bpe_gen.c) and the built-in vocabulary (gpt2.c).
 * Scalars X(type, name): a field of the header and of struct bpe.
 * Arrays X(type, name, count): at offset off_<name> of the image, count
 * elements (in terms of the header h), 64-byte aligned; a const pointer in
 * struct bpe. */
#define BPE_IMAGE_SCALARS(X)                                                                  \
    X(uint32_t, n_tokens)      /* V: ids 0..V-1 */                                            \
    X(int32_t, eot)            /* rank of <|endoftext|> (or the file's end of text), or -1 */  \
    X(uint32_t, n_specials)    /* special tokens (eot among them): never merged */            \
    X(uint32_t, special_max_len) /* the longest one's bytes (0: none) */                       \
    X(int32_t, special_byte)   /* the first byte all of them share, or -1 */                  \
    X(uint32_t, n_late)        /* of them, matched in a second pass (0: one pass) */           \
    X(uint32_t, max_token_len)                                                                \
    X(uint32_t, n_tok_bytes)   /* the tokens' bytes, all together */                          \
    X(uint32_t, tok_mask)      /* token hash slots - 1 */                                     \
    X(uint32_t, pair_mask)     /* pair hash slots - 1 */                                      \
    X(uint32_t, n_cls_blocks)                                                                 \
    X(uint32_t, short_mask)    /* short token slots - 1 */                                    \
    X(uint32_t, short_free)    /* the key of a free short token slot: no token's key */       \
    X(uint32_t, ac_nodes_n)    /* nodes of the automaton */                                   \
    X(uint32_t, ac_child_mask) /* its child hash slots - 1 */

#define BPE_IMAGE_ARRAYS(X)                                                                   \
    /* token i is tok_bytes[tok_off[i] .. tok_off[i+1]) */                                    \
    X(uint32_t, tok_off, h.n_tokens + 1)                                                      \
    X(uint8_t, tok_bytes, h.n_tok_bytes)                                                      \
    /* token ids by hash of their bytes */                                                    \
    X(bpe_slot, tok_slots, h.tok_mask + 1)                                                    \
    X(bpe_pair, pairs, h.pair_mask + 1)                                                       \
    /* the token of each single byte */                                                       \
    X(uint32_t, byte_tok, 256)                                                                \
    X(uint16_t, cls1, BPE_CLS_STAGE1)                                                         \
    X(uint8_t, cls2, h.n_cls_blocks * 256)                                                    \
    /* the last merge (left, right) that makes each token from its bytes, when that         \
     * merge process is monotone; BPE_EMPTY otherwise and for single bytes (bpe/long.c) */    \
    X(uint32_t, split, 2 * h.n_tokens)                                                        \
    /* BPE_EXT_LEFT when the token's bytes are a proper suffix of another token's,           \
     * BPE_EXT_RIGHT when a proper prefix: else no merge joins it to a part on that side */   \
    X(uint8_t, tok_ext, h.n_tokens)                                                           \
    /* a bit per token hash (BPE_BLOOM_BIT) */                                                \
    X(uint64_t, tok_bloom, BPE_BLOOM_WORDS)                                                   \
    /* what the tokens of bytes x and y merge into (x << 8 | y), or BPE_EMPTY: the first      \
     * merges of every piece */                                                               \
    X(uint32_t, byte_pairs, 65536)                                                            \
    /* the tokens of 3 or 4 bytes by their bytes, buckets of keys then ids (bpe_short_token) */ \
    X(uint32_t, short_table, 2 * ((size_t)h.short_mask + 1))                                  \
    /* bit x << 8 | y set when a token of 2+ bytes has byte x followed by byte y */           \
    X(uint64_t, inner_pairs, 1024)                                                            \
    X(bpe_ac_node, ac_nodes, h.ac_nodes_n)                                                    \
    X(uint64_t, ac_child, h.ac_child_mask + 1)                                                \
    /* the root's child for each byte (0: none) */                                           \
    X(uint32_t, ac_root, 256)                                                                 \
    /* the special tokens' ranks in rank order (which is id order), and by first byte:        \
     * special_by[special_at[b] .. special_at[b + 1]) start with byte b, longest first,       \
     * each rank | BPE_SPECIAL_LATE when it is matched in the second pass */                  \
    X(uint32_t, special_list, h.n_specials)                                                   \
    X(uint32_t, special_by, h.n_specials)                                                     \
    X(uint32_t, special_at, 257)

#define BPE_EXT_LEFT 1u
#define BPE_EXT_RIGHT 2u

typedef struct bpe_image_header {
    char magic[8];
#define X(type, name) type name;
    BPE_IMAGE_SCALARS(X)
#undef X
    uint64_t image_size;
#define X(type, name, count) uint64_t off_##name;
    BPE_IMAGE_ARRAYS(X)
#undef X
} bpe_image_header;

/* Most token lookups that fail (a piece that is no token) are answered by
 * a 128 KB bit set that stays in cache, instead of a miss in the
 * multi-megabyte hash table. */
#define BPE_BLOOM_BITS 20
#define BPE_BLOOM_WORDS ((1u << BPE_BLOOM_BITS) / 64)
#define BPE_BLOOM_BIT(h) (((h) >> 40) & ((1u << BPE_BLOOM_BITS) - 1))
static inline int bpe_bloom_has(const uint64_t *bloom, uint64_t h) {
    uint64_t bit = BPE_BLOOM_BIT(h);
    return (int)bpe_bit(bloom, bit);
}

struct bpe {
#define X(type, name) type name;
    BPE_IMAGE_SCALARS(X)
#undef X
#define X(type, name, count) const type *name;
    BPE_IMAGE_ARRAYS(X)
#undef X
    void *owned;   /* the heap image of a loaded vocabulary; NULL when built in */
    /* Ids that differ from merge ranks (Hugging Face, RoBERTa): everything
     * above and the encoder work in rank space (token r is the r-th merge
     * result); only the public functions translate, ids out through
     * id_of_rank, ids in through rank_of_id. NULL (GPT-2, tiktoken files):
     * an id is its rank. Set by bpe_set_ids, which owns them (owned_ids). */
    const uint32_t *id_of_rank, *rank_of_id;
    void *owned_ids;
};

/* Gives a loaded vocabulary ids that differ from its ranks: id_of_rank[r]
 * is the public id of token r, for r < n_tokens, and must be a permutation
 * of 0..n_tokens-1. Copies the table (and its inverse) into memory that
 * bpe_free releases. BPE_OK, BPE_ERR_FORMAT (not a permutation) or
 * BPE_ERR_NOMEM. (bpe.c) */
int bpe_set_ids(struct bpe *v, const uint32_t *id_of_rank, bpe_error *err);

/* The rank of public id `id`, or BPE_EMPTY when it names no token. */
static inline uint32_t bpe_rank_of(const struct bpe *v, uint32_t id) {
    if (id >= v->n_tokens) return BPE_EMPTY;
    return v->rank_of_id ? v->rank_of_id[id] : id;
}

/* Whether some token of 2+ bytes has byte x followed by byte y. When none
 * has, no merge ever joins the bytes on either side (bpe.c, split_piece). */
static inline int bpe_inner_pair(const struct bpe *v, uint8_t x, uint8_t y) {
    unsigned k = (unsigned)x << 8 | y;
    return (int)bpe_bit(v->inner_pairs, k);
}

/* Writes the message (and the offset it names, or 0) into err, when err is
 * not NULL, and returns code. (bpe.c) */
int bpe_fail(bpe_error *err, int code, uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Points v's fields into an image (checked by its builder, not here). */
void bpe_attach_image(struct bpe *v, const void *image);

/* Builds an image from parsed tokens: tokens[i] is token i's bytes
 * (lens[i] long); specials[0..n_specials) the special tokens (matched in
 * text as they stand, never merged), in increasing order, late[k] set (if
 * late is not NULL) when specials[k] is matched in a second pass, in the
 * text between the first pass's matches (Hugging Face's added tokens with
 * "normalized": true, when some have false); eot the end of text (one of
 * them) or -1. Returns a malloc'd image of *size bytes, or NULL when out
 * of memory. */
void *bpe_build_image(uint32_t n_tokens, const uint8_t *const *tokens, const uint32_t *lens,
                      const uint32_t *specials, const uint8_t *late, uint32_t n_specials, int32_t eot,
                      uint64_t *size);

#define BPE_SPECIAL_LATE 0x80000000u

/* The longest special token that p[0..n) begins with (n >= 1), of the
 * first pass (pass 0), the second (1) or either (-1); or BPE_EMPTY. */
static inline uint32_t bpe_special_here(const struct bpe *v, const uint8_t *p, size_t n, int pass) {
    for (uint32_t k = v->special_at[p[0]], e = v->special_at[p[0] + 1]; k < e; k++) {
        uint32_t x = v->special_by[k], t = x & ~BPE_SPECIAL_LATE, a = v->tok_off[t], l = v->tok_off[t + 1] - a;
        if (pass >= 0 && (x >> 31) != (uint32_t)pass) continue;
        if (l <= n && !__builtin_memcmp(p, v->tok_bytes + a, l)) return t;
    }
    return BPE_EMPTY;
}

/* Encodes token t's own bytes: when the result is [t] and the ranks of the
 * merges on the way never decrease, stores the last merge's two parts and
 * returns 1; otherwise returns 0. (bpe.c; used when building an image.) */
int bpe_token_split(const struct bpe *v, uint32_t t, uint32_t *left, uint32_t *right);

/* Whether the encoding of token t's own bytes is [t]: only such tokens are
 * ever in an encoding. (bpe.c; used when building an image.) */
int bpe_token_alone(const struct bpe *v, uint32_t t);

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define BPE_LITTLE_ENDIAN 1
#else
#define BPE_LITTLE_ENDIAN 0
#endif

static inline uint64_t bpe_load64(const uint8_t *p) {
    uint64_t w;
    __builtin_memcpy(&w, p, 8);
    return w;
}

/* p[0..n) (1 <= n <= 7) little-endian, zero-padded, reading no byte outside
 * it: two overlapping loads instead of a loop over the bytes. */
static inline uint64_t bpe_load_tail(const uint8_t *p, size_t n) {
    if (!BPE_LITTLE_ENDIAN) {
        uint64_t w = 0;
        for (size_t i = 0; i < n; i++) w |= (uint64_t)p[i] << (8 * i);
        return w;
    }
    if (n >= 4) {
        uint32_t a, b;
        __builtin_memcpy(&a, p, 4);
        __builtin_memcpy(&b, p + n - 4, 4);
        return a | (uint64_t)b << (8 * (n - 4));
    }
    return p[0] | (uint64_t)p[n >> 1] << (8 * (n >> 1)) | (uint64_t)p[n - 1] << (8 * (n - 1));
}

/* The hash's steps: whole 8-byte words, then the 1..7 bytes left. */
#define BPE_HASH_SEED(n) (0x9E3779B97F4A7C15ull * ((n) + 1))
static inline uint64_t bpe_hash_word(uint64_t h, uint64_t w) {
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    return h ^ h >> 32;
}
static inline uint64_t bpe_hash_tail(uint64_t h, uint64_t w) { return (h ^ w) * 0xc4ceb9fe1a85ec53ull; }
static inline uint64_t bpe_hash_end(uint64_t h) { return h ^ h >> 29; }

static inline uint64_t bpe_hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = BPE_HASH_SEED(n);
    size_t k = n;
    while (k >= 8) {
        h = bpe_hash_word(h, bpe_load64(p));
        p += 8;
        k -= 8;
    }
    if (k) {
        /* Within the piece: the last 8 bytes, shifted, when there are 8. */
        uint64_t w = BPE_LITTLE_ENDIAN && n >= 8 ? bpe_load64(p + k - 8) >> (8 * (8 - k)) : bpe_load_tail(p, k);
        h = bpe_hash_tail(h, w);
    }
    return bpe_hash_end(h);
}

/* The id of the token whose bytes are p[0..n), or BPE_EMPTY; h is
 * bpe_hash_bytes(p, n). bloom: whether to ask the bloom first, which pays
 * where most lookups miss. */
static inline uint32_t bpe_find_token_hashed(const struct bpe *v, const uint8_t *p, size_t n, uint64_t h,
                                             int bloom) {
    uint8_t len = (uint8_t)(n < 255 ? n : 255);
    size_t inline_n = n < BPE_SLOT_BYTES ? n : BPE_SLOT_BYTES;
    if (bloom && v->tok_bloom && !bpe_bloom_has(v->tok_bloom, h)) return BPE_EMPTY;
    for (;; h++) {
        const bpe_slot *s = &v->tok_slots[h & v->tok_mask];
        if (s->id == BPE_EMPTY) return BPE_EMPTY;
        if (s->len != len || __builtin_memcmp(s->bytes, p, inline_n)) continue;
        if (n <= BPE_SLOT_BYTES) return s->id;
        uint32_t a = v->tok_off[s->id];
        if (v->tok_off[s->id + 1] - a == n && !__builtin_memcmp(v->tok_bytes + a, p, n)) return s->id;
    }
}

/* The same for 1..BPE_SLOT_BYTES bytes: the piece is read as two words
 * (lo: bytes 0..7, hi: 8..10, zero-padded), hashed from them, and compared
 * with a slot (zero-padded past its length) as two words: the slot's
 * length and first 3 bytes after the id, then its bytes 3..10. */
static inline uint32_t bpe_find_short_piece(const struct bpe *v, const uint8_t *p, size_t n, int bloom,
                                            uint64_t *hash) {
    uint64_t lo, hi = 0, h = BPE_HASH_SEED(n);
    if (n >= 8) {
        lo = bpe_load64(p);
        h = bpe_hash_word(h, lo);
        if (n > 8) {
            hi = bpe_load64(p + n - 8) >> (8 * (16 - n));
            h = bpe_hash_tail(h, hi);
        }
    } else {
        lo = bpe_load_tail(p, n);
        h = bpe_hash_tail(h, lo);
    }
    h = bpe_hash_end(h);
    if (hash) *hash = h;
    if (bloom && v->tok_bloom && !bpe_bloom_has(v->tok_bloom, h)) return BPE_EMPTY;
    uint32_t want_a = (uint32_t)(n | lo << 8);
    uint64_t want_b = lo >> 24 | hi << 40;
    for (;; h++) {
        const bpe_slot *s = &v->tok_slots[h & v->tok_mask];
        uint64_t a, b;
        __builtin_memcpy(&a, s, 8);
        __builtin_memcpy(&b, (const uint8_t *)s + 8, 8);
        if ((uint32_t)a == BPE_EMPTY) return BPE_EMPTY;
        if ((uint32_t)(a >> 32) == want_a && b == want_b) return (uint32_t)a;
    }
}

/* The id of the token whose bytes are p[0..n), or BPE_EMPTY. */
static inline uint32_t bpe_find_token(const struct bpe *v, const uint8_t *p, size_t n) {
    if (BPE_LITTLE_ENDIAN && n - 1 < BPE_SLOT_BYTES) return bpe_find_short_piece(v, p, n, 1, NULL);
    return bpe_find_token_hashed(v, p, n, bpe_hash_bytes(p, n), 1);
}

static inline uint64_t bpe_hash_pair(uint64_t key) {
    key *= 0x9E3779B97F4A7C15ull;
    return key ^ (key >> 31);
}

/* Short tokens: most merges inside long runs of letters or digits make a
 * token of 3 or 4 bytes, and a table of them (256 KB for GPT-2) stays in
 * cache where the pair table does not. A key is the token's bytes,
 * little-endian and zero-padded; its entry is id | length << 24. A bucket
 * is one cache line: BPE_SHORT_BUCKET keys, compared at once, then their
 * entries, so that a lookup loads one line. Slot s (of short_mask + 1) is
 * key bpe_short_slot(s) of short_table and its entry is BPE_SHORT_BUCKET
 * after it. Free slots hold the key short_free, which no token has, and a
 * free last slot ends the search, as in the pair table. */
#define BPE_SHORT_MIN 3
#define BPE_SHORT_MAX 4
#define BPE_SHORT_BUCKET 8
static inline uint64_t bpe_short_hash(uint32_t bytes, size_t len) {
    return bpe_hash_pair(bytes | (uint64_t)len << 32);
}
static inline size_t bpe_short_slot(size_t s) {
    return (s & ~(size_t)(BPE_SHORT_BUCKET - 1)) * 2 + (s & (BPE_SHORT_BUCKET - 1));
}

/* Bit k set when key[k] == x, for the 8 keys of a bucket. */
static inline unsigned bpe_match8(const uint32_t *key, uint32_t x) {
#ifdef __SSE2__
    __m128i k = _mm_set1_epi32((int)x);
    __m128i c0 = _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)key), k);
    __m128i c1 = _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)(key + 4)), k);
    return (unsigned)_mm_movemask_ps(_mm_castsi128_ps(c0)) | (unsigned)_mm_movemask_ps(_mm_castsi128_ps(c1)) << 4;
#else
    unsigned m = 0;
    for (int i = 0; i < BPE_SHORT_BUCKET; i++) m |= (unsigned)(key[i] == x) << i;
    return m;
#endif
}

/* The id of the token of `len` (3 or 4) bytes packed in `bytes`, or BPE_EMPTY. */
static inline uint32_t bpe_short_token(const struct bpe *v, uint32_t bytes, size_t len) {
    size_t at = bpe_short_hash(bytes, len) & v->short_mask & ~(size_t)(BPE_SHORT_BUCKET - 1);
    for (;;) {
        const uint32_t *key = v->short_table + 2 * at;
        for (unsigned m = bpe_match8(key, bytes); m; m &= m - 1) {
            uint32_t e = key[BPE_SHORT_BUCKET + (size_t)__builtin_ctz(m)];
            if (e >> 24 == len) return e & 0xFFFFFF;
        }
        if (key[BPE_SHORT_BUCKET - 1] == v->short_free) return BPE_EMPTY;
        at = (at + BPE_SHORT_BUCKET) & v->short_mask;
    }
}

/* The token that tokens a and b merge into (its id is the merge's rank), or
 * BPE_EMPTY, which compares above every rank. */
static inline uint32_t bpe_pair_rank(const struct bpe *v, uint32_t a, uint32_t b) {
    uint64_t key = bpe_pair_key(a, b);
    size_t at = bpe_hash_pair(key) & v->pair_mask & ~(size_t)(BPE_PAIR_BUCKET - 1);
    for (;;) {
        const bpe_pair *e = v->pairs + at;
        uint32_t merged = BPE_EMPTY;
        for (int k = 0; k < BPE_PAIR_BUCKET; k++)
            merged = e[k] >> 21 == key ? (uint32_t)(e[k] & BPE_MAX_TOKENS) : merged;
        if (merged != BPE_EMPTY || e[BPE_PAIR_BUCKET - 1] == BPE_PAIR_EMPTY) return merged;
        at = (at + BPE_PAIR_BUCKET) & v->pair_mask;
    }
}

/* The child of automaton node `node` by byte c, or BPE_EMPTY. The table
 * is bucketed like the pair table: a lookup reads one cache line. */
static inline uint32_t bpe_ac_child(const struct bpe *v, uint32_t node, uint8_t c) {
    uint32_t key = node << 8 | c;
    size_t at = bpe_hash_pair(key) & v->ac_child_mask & ~(size_t)(BPE_PAIR_BUCKET - 1);
    for (;;) {
        const uint64_t *e = v->ac_child + at;
        uint32_t child = BPE_EMPTY;
        for (int k = 0; k < BPE_PAIR_BUCKET; k++) child = (uint32_t)(e[k] >> 32) == key ? (uint32_t)e[k] : child;
        if (child != BPE_EMPTY || e[BPE_PAIR_BUCKET - 1] == BPE_AC_EMPTY) return child;
        at = (at + BPE_PAIR_BUCKET) & v->ac_child_mask;
    }
}

/* The automaton's step (Aho-Corasick's goto with failure links, amortised
 * O(1) a byte): from node s (the longest suffix of the text so
 * far that is a prefix of a token) by byte c, down the fail links until a
 * node has that child. */
static inline uint32_t bpe_ac_next(const struct bpe *v, uint32_t s, uint8_t c) {
    for (; s; s = v->ac_nodes[s].fail) {
        uint32_t t = bpe_ac_child(v, s, c);
        if (t != BPE_EMPTY) return t;
    }
    return v->ac_root[c];
}

#endif
