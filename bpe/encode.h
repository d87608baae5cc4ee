/* encode.h - what the encoder's files share (bpe.c, merge.c, long.c,
 * parallel.c, memory.c); not a public header. The words for parts of a
 * text are in bpe.c's glossary. */
#ifndef BPE_ENCODE_H
#define BPE_ENCODE_H

#include <stddef.h>
#include <string.h>

#include "bpe_internal.h"

/* ---- output ------------------------------------------------------------------ */

/* Pieces that are not whole tokens (names, rare words, numbers) recur in
 * real text; their merges are remembered here, per call and per thread,
 * in one huge page (bpe_cache_new; the tables in it: piece_cache.c). A
 * text in many languages has tens of thousands of such words. A line
 * slot (cache_slot) holds a piece of up to CACHE_BYTES bytes. */
#define CACHE_BYTES 30
#define CACHE_TOKENS 8
#define CACHE_MIN_TEXT (64u << 10)

/* The piece's bytes come first, so that a probe compares the slot's first
 * 32 bytes with the piece's in two vector compares (bpe_merge_piece). */
typedef struct {
    uint8_t bytes[CACHE_BYTES];
    uint8_t len, n_tok;
    uint32_t tok[CACHE_TOKENS];
} cache_slot;
_Static_assert(sizeof(cache_slot) == 64 && offsetof(cache_slot, len) == 30, "a piece cache slot is one cache line");

typedef struct {
    const struct bpe *v;
    uint32_t *ids;
    size_t *offs;
    size_t cap, n;
    int nomem;
    cache_slot *cache;   /* CACHE_SIZE bytes, for long texts only; NULL otherwise */
    int threads;         /* a very long piece may use this many threads */
} out_t;

static inline void emit(out_t *o, uint32_t id, size_t off) {
    if (o->n < o->cap) {
        o->ids[o->n] = id;
        if (o->offs) o->offs[o->n] = off;
    }
    o->n++;
}

static inline uint32_t token_len(const struct bpe *v, uint32_t id) {
    return v->tok_off[id + 1] - v->tok_off[id];
}

/* Pieces up to this long merge with tiktoken's quadratic loop; it also
 * re-encodes two adjacent tokens (at most 2 x 128 bytes for GPT-2) when the
 * long-piece encoder checks that they are compatible. */
#define SHORT_PIECE 256

/* Pieces longer than CACHE_BYTES recur as well (the rules of dashes or
 * equals signs under titles, the borders of tables) and cost the most to
 * merge: the cache has LONG_SLOTS slots of 1 KB for pieces of up to
 * SHORT_PIECE bytes. */
#define LONG_SLOTS 512
#define LONG_TOKENS ((1024 - 4 - SHORT_PIECE) / 4)
typedef struct {
    uint16_t len, n_tok;
    uint8_t bytes[SHORT_PIECE];
    uint32_t tok[LONG_TOKENS];
} long_slot;
_Static_assert(sizeof(long_slot) == 1024, "a long piece cache slot is 1 KB");
#define CACHE_SIZE (((size_t)2 << 20) - BPE_BIG_HEAD)  /* one huge page with its header */

/* Whether o's buffer has room for m more ids. */
static inline int has_room(const out_t *o, size_t m) {
    return o->ids && o->cap >= o->n && o->cap - o->n >= m;
}

static inline void emit_tokens(out_t *o, const uint32_t *tok, size_t m, size_t off) {
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
static inline void emit_bytes(out_t *o, const uint8_t *p, size_t k, size_t off) {
    const uint32_t *byte_tok = o->v->byte_tok;
    if (!o->offs && has_room(o, k)) {
        for (size_t i = 0; i < k; i++) o->ids[o->n + i] = byte_tok[p[i]];
        o->n += k;
        return;
    }
    for (size_t i = 0; i < k; i++) emit(o, byte_tok[p[i]], off + i);
}

/* ---- memory (memory.c) ----------------------------------------------------- */

/* Buffers that may be large: mapped on their own when big (huge pages),
 * from malloc otherwise. bpe_big_grow keeps the first `keep` bytes and
 * returns NULL (p untouched) when out of memory. */
void *bpe_big_alloc(size_t bytes);
/* The same, zeroed (a fresh mapping is zero already: not written again). */
void *bpe_big_zalloc(size_t bytes);
/* The header before a big buffer's bytes: a buffer of 2 MB less this is
 * one huge page. */
#define BPE_BIG_HEAD 64
void bpe_big_free(void *p);
void *bpe_big_grow(void *p, size_t keep, size_t bytes);
/* A piece cache (CACHE_SIZE bytes), zeroed, or NULL. */
cache_slot *bpe_cache_new(void);

/* ---- merges (merge.c) ------------------------------------------------------ */

/* What bpe_token_split needs to know about a merge process. */
typedef struct {
    uint32_t left, right;   /* the parts of the last merge */
    int monotone;           /* ranks never decreased */
} merge_trace;

/* BPE of p[0..n) (n <= SHORT_PIECE) into tok (tiktoken's loop, step by
 * step); returns the number of tokens. trace (may be NULL) records the
 * merge process. */
size_t bpe_merge_traced(const struct bpe *v, const uint8_t *p, size_t n, uint32_t *tok, merge_trace *trace);
/* The same merges, faster: the short-piece loop. */
size_t bpe_merge_short(const struct bpe *v, const uint8_t *p, size_t n, uint32_t *out);
/* The same merges in O(n log n) with a heap, for any n: the tests'
 * reference, and the fallback of the long-piece encoder. */
void bpe_merge_long(out_t *o, const uint8_t *p, size_t n, size_t off);

/* ---- threads (parallel.c) -------------------------------------------------- */

#define MAX_THREADS 64
#define MAX_PARTS 64
#define PART_MIN (64u << 10)  /* the smallest part a thread takes of a text or a piece */

/* Jobs 0..n-1, each taken by whichever thread is free next: cores of
 * unequal speed (a busy virtual machine's, say) then finish together.
 * With with_cache, each thread has a piece cache to lend its jobs. */
typedef struct {
    void (*run)(void *ctx, int k, cache_slot *cache);
    void *ctx;
    int n, next, with_cache;
} job_queue;

/* Runs q's jobs on this thread and up to threads - 1 more. */
void bpe_queue_run(job_queue *q, int threads);
int bpe_cpu_count(void);
/* Where the part of [from, n) that starts at from should end, about. */
size_t bpe_part_goal(size_t from, size_t n, int threads);

/* ---- long pieces (long.c) -------------------------------------------------- */

/* The merges of p[0..n), n >= 2, with no look-up of the whole. */
void bpe_merge_stretch(out_t *o, const uint8_t *p, size_t n, size_t off);
/* A piece cut where no token joins two bytes, its parts shared by
 * o->threads threads; 0 (nothing done) when it has no such place near
 * its start. */
int bpe_split_piece(out_t *o, const uint8_t *p, size_t n, size_t off);
/* The last token at each place, on `parts` threads; 0 (nothing emitted)
 * when a pair cannot be checked. */
int bpe_merge_last(out_t *o, const uint8_t *p, size_t n, size_t off, int parts);
/* The pair check's spine walk; 0 when it does not apply. */
int bpe_compatible_fast(const struct bpe *v, const uint8_t *p, size_t pos, uint32_t a, uint32_t b, int *ok);
/* bpe_merge_short's tokens (2 <= n <= SHORT_PIECE), each stretch merged
 * alone. */
size_t bpe_merge_cut(const struct bpe *v, const uint8_t *p, size_t n, uint32_t *tok);

/* ---- encoding (bpe.c) ------------------------------------------------------ */

/* Flags other than `allowed`, or two special-token modes at once. */
int bpe_bad_flags(int flags, int allowed);
/* Rejects input as flags say (strict UTF-8, special token as error);
 * error offsets count from base. */
int bpe_check_input(const struct bpe *v, const uint8_t *s, size_t len, int flags, uint64_t base, bpe_error *err);
/* Encodes checked text into o, in rank space. */
int bpe_encode_checked(const struct bpe *v, const uint8_t *s, size_t len, int flags, out_t *o, bpe_error *err);
/* bpe_encode, for text at offset base of a stream; ids out. */
int bpe_encode_at(const struct bpe *v, const void *text, size_t len, int flags, uint32_t *ids, size_t *offsets,
                  size_t cap, size_t *n_tokens, uint64_t base, bpe_error *err);
/* Ranks to public ids, in place. */
void bpe_ranks_to_ids(const struct bpe *v, uint32_t *ids, size_t n);

/* ---- pieces (pretok.c) --------------------------------------------------- */

/* Encodes s[i..end) as a whole text: `end` is the end of input for the
 * regex, and every invalid byte is a piece of its own. Offsets are
 * s-relative. */
void bpe_encode_text(out_t *o, const uint8_t *s, size_t i, size_t end);
/* The same with the window scanner built for one instruction set (the
 * tests run each): BPE_SCAN_AUTO, the widest this CPU has; the baseline;
 * AVX2 with BMI1/2. bpe_scan_supported: whether this CPU has it. */
enum { BPE_SCAN_AUTO, BPE_SCAN_BASE, BPE_SCAN_AVX2 };
void bpe_encode_text_isa(out_t *o, const uint8_t *s, size_t i, size_t end, int isa);
int bpe_scan_supported(int isa);

/* A piece that is not a whole token (h: its hash, bpe_hash_bytes; avail:
 * the bytes that may be read from p on, n or more): its cached merges, or
 * its merges (the short-piece loop, or long.c's ways for long pieces).
 * (pretok.c) */
void bpe_merge_piece(out_t *o, const uint8_t *p, size_t n, size_t off, uint64_t h, size_t avail);

/* One piece: the token that is all of it, or bpe_merge_piece (avail as
 * there). */
static inline void encode_piece(out_t *o, const uint8_t *p, size_t n, size_t off, size_t avail) {
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
    bpe_merge_piece(o, p, n, off, h, avail);
}

#endif
