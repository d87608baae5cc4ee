/* merge.h - the merges of pieces of two or three bytes, written out, for
 * merge.c's short-piece loop and long.c's stretches. Not a public header. */
#ifndef BPE_MERGE_H
#define BPE_MERGE_H

#include "encode.h"

/* bpe_merge_short with the loop built for one instruction set (the tests
 * run each): BPE_MERGE_AUTO, the best this CPU has; the baseline; SSE4.1
 * (x86-64). bpe_merge_isa_supported: whether this CPU has it. (merge.c) */
enum { BPE_MERGE_AUTO, BPE_MERGE_BASE, BPE_MERGE_SSE41 };
size_t bpe_merge_short_isa(const struct bpe *v, const uint8_t *p, size_t n, uint32_t *out, int isa);
int bpe_merge_isa_supported(int isa);

/* For the tests (piece_cache.c): the tokens a piece cache keeps for
 * p[0..n) (h: its hash, as bpe_merge_piece was given it) into tok (room
 * for CACHE_TOKENS), and their count; 0 when it keeps none, or keeps only
 * that each byte is a token. bpe_cache_alter makes the first of them id
 * (1), or returns 0. */
size_t bpe_cache_kept(cache_slot *cache, const uint8_t *p, size_t n, uint64_t h, uint32_t *tok);
int bpe_cache_alter(cache_slot *cache, const uint8_t *p, size_t n, uint64_t h, uint32_t id);

/* Two or three bytes (a stretch of one CJK character, a Cyrillic letter
 * pair): the loop's outcome written out. Of three bytes, the lower-ranked
 * of the two byte pairs merges first (the left one on a tie), and then the
 * part it made joins the third byte exactly when all three are a token. */
static inline size_t bpe_merge_tiny(const struct bpe *v, const uint8_t *p, size_t n, uint32_t *out) {
    uint32_t r1 = v->byte_pairs[p[0] << 8 | p[1]];
    if (n == 2) {
        if (r1 != BPE_EMPTY) {
            out[0] = r1;
            return 1;
        }
        out[0] = v->byte_tok[p[0]];
        out[1] = v->byte_tok[p[1]];
        return 2;
    }
    uint32_t r2 = v->byte_pairs[p[1] << 8 | p[2]];
    if (r1 == BPE_EMPTY && r2 == BPE_EMPTY) {
        out[0] = v->byte_tok[p[0]];
        out[1] = v->byte_tok[p[1]];
        out[2] = v->byte_tok[p[2]];
        return 3;
    }
    uint32_t all = bpe_short_token(v, p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16, 3);
    if (all != BPE_EMPTY) {
        out[0] = all;
        return 1;
    }
    if (r1 <= r2) {
        out[0] = r1;
        out[1] = v->byte_tok[p[2]];
    } else {
        out[0] = v->byte_tok[p[0]];
        out[1] = r2;
    }
    return 2;
}

#endif
