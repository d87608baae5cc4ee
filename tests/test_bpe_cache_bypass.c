/* test_bpe_cache_bypass.c - the piece cache's line slots (pieces of 15-30
 * bytes) stop being probed and kept while their pieces do not recur, and
 * are used again when they do (bpe/piece_cache.c, line_use):
 *   - a long run of pieces of random letters that never recur (base64):
 *     afterwards only a sample of the pieces merged is kept;
 *   - then pieces drawn from a small pool (recurring, as words do in
 *     English or code): afterwards every piece merged is kept again;
 * every piece's ids, through the cache in either state, against
 * bpe_merge_short, uncached, with and without offsets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "merge.h"

static int failures;
#define RND_SEED 0x13198A2E03707344ull
#include "rnd.h"

enum { LONGEST = CACHE_BYTES, PHASE = 24 * 1024, POOL = 200, FRESH = 2000 };

static const struct bpe *V;
static cache_slot *cache;

/* Tokens of 4-8 ASCII letters, to glue into pieces. */
static uint32_t words[60000], n_words;

/* A line slot's piece, 15-30 bytes: tokens of letters glued, the last one
 * cut (such pieces merge into few tokens, so the line slots keep them). */
static size_t random_piece(uint8_t *p) {
    size_t want = 15 + rnd() % (LONGEST - 14), n = 0;
    while (n < want) {
        uint32_t t = words[rnd() % n_words];
        size_t l = token_len(V, t);
        if (l > want - n) l = want - n;
        memcpy(p + n, V->tok_bytes + V->tok_off[t], l);
        n += l;
    }
    return n;
}

/* Merges p[0..n) through the cache and checks it against the loop.
 * Returns whether the cache keeps it afterwards, or -1 when it never keeps
 * such a piece (more tokens than a line slot holds). */
static int merge_one(const uint8_t *p, size_t n) {
    uint32_t want[LONGEST], ids[LONGEST + 8], kept[CACHE_TOKENS];
    size_t offs[LONGEST + 8], m = bpe_merge_short(V, p, n, want);
    uint8_t text[LONGEST + 32];
    memset(text, 'q', sizeof text);
    memcpy(text, p, n);
    int with_offs = rnd() % 4 == 0;
    out_t o = {V, ids, with_offs ? offs : NULL, LONGEST + 8, 0, 0, cache, 1};
    uint64_t h = bpe_hash_bytes(p, n);
    bpe_merge_piece(&o, text, n, 500, h, n + 32);
    int same = o.n == m && !memcmp(ids, want, m * sizeof *want);
    for (size_t i = 0, at = 500; same && with_offs && i < m; at += token_len(V, want[i++])) same = offs[i] == at;
    if (!same && failures++ < 5) fprintf(stderr, "piece of %zu bytes: %zu ids, the loop %zu\n", n, o.n, m);
    if (m > CACHE_TOKENS) return -1;
    return bpe_cache_kept(cache, p, n, h, kept) == m;
}

/* Of FRESH new pieces that a line slot can keep, the percentage the cache
 * keeps right after merging them. */
static int fresh_kept(void) {
    uint8_t p[LONGEST];
    int k = 0, all = 0;
    for (int i = 0; i < FRESH; i++) {
        size_t n = random_piece(p);
        int r = merge_one(p, n);
        if (r >= 0) all++, k += r;
    }
    return all ? 100 * k / all : -1;
}

int main(void) {
    V = bpe_gpt2();
    cache = bpe_cache_new();
    if (!cache) return 1;
    for (uint32_t t = 0; t < V->n_tokens && n_words < 60000; t++) {
        size_t l = token_len(V, t), k = 0;
        while (k < l && (unsigned)((V->tok_bytes[V->tok_off[t] + k] | 32) - 'a') < 26u) k++;
        if (l >= 4 && l <= 8 && k == l) words[n_words++] = t;
    }
    uint8_t p[LONGEST];
    int before = fresh_kept();
    for (int i = 0; i < PHASE; i++) {
        size_t n = random_piece(p);
        merge_one(p, n);
    }
    int rare = fresh_kept();
    printf("line slots: %d%% of new pieces kept at first, %d%% after %d that never recur\n", before, rare, PHASE);
    if (before < 90 || rare > 15 || rare <= 0) {
        fprintf(stderr, "the line slots do not stop keeping pieces that never recur (or keep none)\n");
        failures++;
    }
    static uint8_t pool[POOL][LONGEST];
    static size_t len[POOL];
    for (int i = 0; i < POOL; i++) len[i] = random_piece(pool[i]);
    for (int i = 0; i < PHASE; i++) {
        int k = (int)(rnd() % POOL);
        merge_one(pool[k], len[k]);
    }
    int again = fresh_kept();
    printf("line slots: %d%% of new pieces kept after %d drawn from %d\n", again, PHASE, POOL);
    if (again < 90) {
        fprintf(stderr, "the line slots are not used again when pieces recur\n");
        failures++;
    }
    bpe_big_free(cache);
    if (failures) printf("FAILED: %d\n", failures);
    return failures != 0;
}
