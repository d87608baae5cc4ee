/* test_bpe_merge_cache.c - the piece cache (bpe/piece_cache.c) gives what
 * the merge loop gives, whichever of its ways keeps a piece:
 *   - GPT-2: pieces of 2-14 bytes in the small slots, their tokens kept
 *     as 16 bits; runs of one byte and pieces whose bytes are all tokens
 *     kept as such (SAME_BYTES, ALL_BYTES); pieces of 15-30 bytes in the
 *     line slots;
 *   - a vocabulary of more than 65536 tokens, whose small slots keep
 *     32-bit tokens;
 * each piece drawn many times from a pool (so that it is merged, kept,
 * found, and evicted by others), its ids written with and without
 * offsets, into a buffer with room to spare or just enough, and with the
 * bytes after it readable or not; against bpe_merge_short, uncached. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "merge.h"

static int failures;
#define RND_SEED 0x243F6A8885A308D3ull
#include "rnd.h"
#include "tiktoken_text.h"

enum { POOL = 3000, DRAWS = 60000, MAXN = CACHE_BYTES };

typedef struct {
    uint8_t b[MAXN];
    size_t n;
} piece;

/* A piece of `kind`: tokens glued (words that are not tokens), a run of
 * one byte (spaces), a newline and spaces, bytes of a small alphabet, or
 * (wide) bytes that the wide vocabulary merges into its last tokens. */
static void make_piece(const struct bpe *v, piece *p, int kind, size_t most) {
    size_t want = 2 + rnd() % (most - 1), n = 0;
    switch (kind) {
    case 0:
        while (n < want) {
            uint32_t t = rnd() % v->n_tokens;
            size_t l = token_len(v, t);
            if (l > want - n) l = want - n;
            memcpy(p->b + n, v->tok_bytes + v->tok_off[t], l);
            n += l;
        }
        break;
    case 1:
        memset(p->b, " \t-="[rnd() % 4], want);
        n = want;
        break;
    case 2:
        p->b[0] = '\n';
        memset(p->b + 1, ' ', want - 1);
        n = want;
        break;
    case 3:
        for (; n < want; n++) p->b[n] = (uint8_t)"aeiouxyzAB \xd0\xb0\xe4"[rnd() % 14];
        break;
    default:
        for (; n < want; n++) p->b[n] = rnd() % 3 ? 0xFF : (uint8_t)(0xF0 + rnd() % 16);
        break;
    }
    p->n = n;
}

/* Draws pieces from a pool of `kinds` (a bit each) through one cache, and
 * compares each with the uncached loop. Returns the draws that found the
 * piece kept after it was merged. */
static size_t check_vocab(const struct bpe *v, unsigned kinds, const char *what) {
    static piece pool[POOL];
    cache_slot *cache = bpe_cache_new();
    uint8_t *text = malloc(MAXN + 64);
    uint32_t *ids = malloc(4 * (MAXN + 64)), want[MAXN], kept[CACHE_TOKENS];
    size_t *offs = malloc(sizeof *offs * (MAXN + 64)), found = 0;
    if (!cache || !text || !ids || !offs) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (int i = 0; i < POOL; i++) {
        int kind;
        do kind = (int)(rnd() % 5);
        while (!(kinds >> kind & 1));
        make_piece(v, &pool[i], kind, MAXN);
    }
    int bad = 0;
    for (int d = 0; d < DRAWS; d++) {
        const piece *p = &pool[rnd() % 64 < 48 ? rnd() % (POOL / 10) : rnd() % POOL];
        size_t m = bpe_merge_short(v, p->b, p->n, want);
        /* the piece at the end of the text or with 32 bytes after it */
        int at_end = rnd() % 4 == 0;
        memset(text, 'q', MAXN + 64);
        memcpy(text, p->b, p->n);
        int with_offs = rnd() % 3 == 0, tight = rnd() % 3 == 0;
        size_t lead = rnd() % 3, off = 1000 + rnd() % 100;
        out_t o = {v, ids, with_offs ? offs : NULL, tight ? lead + m : MAXN + 64, lead, 0, cache, 1};
        bpe_merge_piece(&o, text, p->n, off, bpe_hash_bytes(p->b, p->n), at_end ? p->n : p->n + 32);
        int same = o.n == lead + m && !memcmp(ids + lead, want, m * sizeof *want);
        for (size_t i = 0, at = off; same && with_offs && i < m; at += token_len(v, want[i++]))
            same = offs[lead + i] == at;
        if (!same && bad++ < 5)
            fprintf(stderr, "%s: piece of %zu bytes (draw %d): %zu ids, the loop %zu\n", what, p->n, d, o.n - lead, m);
        size_t k = bpe_cache_kept(cache, p->b, p->n, bpe_hash_bytes(p->b, p->n), kept);
        if (k && (k != m || memcmp(kept, want, m * sizeof *want)) && bad++ < 5)
            fprintf(stderr, "%s: piece of %zu bytes kept with other tokens\n", what, p->n);
        found += k == m;
    }
    if (bad) failures++;
    printf("%s: %d draws from %d pieces through a piece cache == the loop (%zu found kept)\n", what, DRAWS, POOL,
           found);
    bpe_big_free(cache);
    free(text);
    free(ids);
    free(offs);
    return found;
}

/* Every byte, then every pair of bytes (ranks 256 .. 65791: those with
 * first byte 0xFF are above 65535), then some of 3 and 4 bytes of the
 * last ones. */
static bpe *wide_vocab(void) {
    size_t cap = 80000 * 16, len = 0;
    char *text = malloc(cap);
    if (!text) return NULL;
    len = tik_bytes(text);
    uint32_t rank = 256;
    for (int i = 0; i < 65536; i++) {
        uint8_t b[2] = {(uint8_t)(i >> 8), (uint8_t)i};
        len += (size_t)tik_line(text + len, b, 2, rank++);
    }
    for (int i = 0xF0; i < 0x100; i++) {
        uint8_t b3[3] = {0xFF, 0xFF, (uint8_t)i}, b4[4] = {0xFF, 0xFF, 0xFF, (uint8_t)i};
        len += (size_t)tik_line(text + len, b3, 3, rank++);
        len += (size_t)tik_line(text + len, b4, 4, rank++);
    }
    bpe_error err;
    bpe *v = bpe_load_tiktoken_mem(text, len, "wide.tiktoken", &err);
    if (!v) fprintf(stderr, "wide vocabulary: %s\n", err.msg);
    free(text);
    return v;
}

int main(void) {
    const struct bpe *g = bpe_gpt2();
    /* small slots (16-bit tokens), runs, all-byte pieces, line slots */
    if (!check_vocab(g, 1 | 2 | 4 | 8, "GPT-2")) failures++;
    bpe *w = wide_vocab();
    if (!w) return 1;
    if (w->n_tokens <= 65536) {
        fprintf(stderr, "the wide vocabulary has %u tokens\n", w->n_tokens);
        failures++;
    }
    if (!check_vocab(w, 16 | 8, "more than 65536 tokens")) failures++;
    bpe_free(w);
    if (failures) printf("FAILED: %d\n", failures);
    return failures != 0;
}
