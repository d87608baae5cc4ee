/* test_bpe_cut.c - pieces merged by their stretches (bpe/long.c: the
 * places where no token joins the byte before to the byte after cut a
 * piece into stretches, each merged alone) against tiktoken's loop step by
 * step (bpe_merge_traced) and the heap (bpe_merge_long), through bpe.c's
 * internals (it is included):
 *   - bpe_merge_cut (a piece that missed the piece cache) on random mixes
 *     of CJK ideographs, Hangul, kana, Cyrillic, Greek, Arabic, accented
 *     Latin, ASCII and of GPT-2's own tokens glued, so that tokens of
 *     several characters join stretches across characters;
 *   - bpe_split_piece (long pieces) writing straight into the caller's ids,
 *     into a buffer first (offsets wanted, a buffer without room for a
 *     token a byte, no buffer at all), with and without a piece cache;
 *   - bpe_merge_piece, the way a piece of the pre-tokenizer goes, through
 *     one piece cache, against the uncached heap. */
#include "../bpe/bpe.c"

static int failures;
#define RND_SEED 0x5DEECE66Dull
#include "rnd.h"

/* UTF-8 of code point c to p; its length. */
static size_t put_utf8(uint8_t *p, uint32_t c) {
    if (c < 0x80) {
        p[0] = (uint8_t)c;
        return 1;
    }
    if (c < 0x800) {
        p[0] = (uint8_t)(0xC0 | c >> 6);
        p[1] = (uint8_t)(0x80 | (c & 63));
        return 2;
    }
    p[0] = (uint8_t)(0xE0 | c >> 12);
    p[1] = (uint8_t)(0x80 | (c >> 6 & 63));
    p[2] = (uint8_t)(0x80 | (c & 63));
    return 3;
}

/* A random character of one of the scripts (common ones more often: the
 * first 200 ideographs and syllables of their blocks are most of GPT-2's
 * tokens of them). */
static uint32_t rnd_char(int script) {
    switch (script) {
    case 0: return rnd() % 2 ? 0x4E00 + rnd() % 200 : 0x4E00 + rnd() % 0x51A0;  /* CJK ideographs */
    case 1: return rnd() % 2 ? 0xAC00 + rnd() % 200 : 0xAC00 + rnd() % 11172;  /* Hangul syllables */
    case 2: return 0x3041 + rnd() % 0xBE;                                       /* hiragana, katakana */
    case 3: return 0x0410 + rnd() % 64;                                         /* Cyrillic */
    case 4: return 0x03B1 + rnd() % 25;                                         /* Greek */
    case 5: return 0x0627 + rnd() % 36;                                         /* Arabic */
    case 6: return "\xe0\xe9\xe8\xfc\xf6\xe4\xdf\xe7\xf1"[rnd() % 9] & 0xFF;    /* accented Latin */
    case 7: return 0x3000 + rnd() % 0x40;                                       /* CJK punctuation */
    default: return "abcdefghijklmnopqrstuvwxyz0123456789 +/="[rnd() % 40];
    }
}

/* n or a few more bytes of mixed text: characters of one to three
 * scripts, or GPT-2 tokens of two bytes or more (of any script) glued. */
static size_t rnd_piece(const struct bpe *v, uint8_t *p, size_t n) {
    int kind = (int)(rnd() % 4), a = (int)(rnd() % 9), b = (int)(rnd() % 9), c = (int)(rnd() % 9);
    size_t k = 0;
    while (k < n) {
        if (kind == 3) {
            uint32_t t = rnd() % v->n_tokens;
            size_t len = token_len(v, t);
            if (len < 2 || (rnd() % 3 && v->tok_bytes[v->tok_off[t]] < 0x80)) continue;
            memcpy(p + k, v->tok_bytes + v->tok_off[t], len);
            k += len;
        } else {
            int script = kind == 0 ? a : rnd() % (unsigned)kind ? b : rnd() % 2 ? a : c;
            k += put_utf8(p + k, rnd_char(script));
        }
    }
    return k;
}

static int same(const uint32_t *a, size_t na, const uint32_t *b, size_t nb) {
    return na == nb && !memcmp(a, b, na * sizeof *a);
}

/* bpe_merge_cut against the loop step by step, on 2-256 bytes. */
static void test_merge_cut(const struct bpe *v, int rounds) {
    uint8_t p[SHORT_PIECE + 8];
    uint32_t a[SHORT_PIECE], b[SHORT_PIECE];
    int bad = 0;
    size_t cut_pieces = 0;
    for (int r = 0; r < rounds; r++) {
        size_t n = rnd_piece(v, p, r % 4 ? 2 + rnd() % 29 : 2 + rnd() % (SHORT_PIECE - 8));
        if (n > SHORT_PIECE) n = SHORT_PIECE;
        size_t na = bpe_merge_cut(v, p, n, a), nb = bpe_merge_traced(v, p, n, b, NULL);
        for (size_t i = 1; i < n; i++)
            if (!bpe_inner_pair(v, p[i - 1], p[i])) {
                cut_pieces++;
                break;
            }
        if (!same(a, na, b, nb) && bad++ < 5) {
            fprintf(stderr, "bpe_merge_cut: %zu bytes:", n);
            for (size_t i = 0; i < n; i++) fprintf(stderr, " %02x", p[i]);
            fprintf(stderr, ": %zu tokens, the loop %zu\n", na, nb);
        }
    }
    if (cut_pieces < (size_t)rounds / 4) {
        fprintf(stderr, "bpe_merge_cut: only %zu of %d pieces have a cut\n", cut_pieces, rounds);
        bad++;
    }
    if (bad) failures++;
    printf("bpe_merge_cut: %d mixed pieces (%zu with a cut) == the loop step by step\n", rounds, cut_pieces);
}

/* bpe_split_piece on pieces of 300 bytes to 40 KB, each way of writing
 * the tokens, against the heap. */
static void test_split(const struct bpe *v, int rounds) {
    enum { MAX_N = 40000 };
    uint8_t *p = malloc(MAX_N + 8);
    uint32_t *want = malloc(MAX_N * 4), *got = malloc((MAX_N + 16) * 4);
    size_t *offs = malloc(MAX_N * sizeof *offs);
    cache_slot *cache = bpe_cache_new();
    int bad = 0;
    for (int r = 0; r < rounds && p && want && got && offs && cache; r++) {
        size_t n = rnd_piece(v, p, r % 5 ? 300 + rnd() % 3000 : 10000 + rnd() % (MAX_N - 10000));
        if (n > MAX_N) n = MAX_N;
        out_t ow = {v, want, NULL, MAX_N, 0, 0, NULL, 1};
        bpe_merge_long(&ow, p, n, 0);
        /* mode 0: room for a token a byte; 1: offsets too; 2: room for
         * fewer tokens than bytes (but all of them); 3: room for all but
         * the last, or for a third of them less one; 4: no buffer
         * (counting) */
        int mode = r % 5;
        size_t cap = mode < 2 ? n : mode == 2 ? ow.n : mode == 3 ? ow.n - 1 - r / 5 % 2 * (ow.n / 3) : 0;
        for (size_t i = 0; i < cap + 16; i++) got[i] = 0xDEADBEEF;
        out_t o = {v, mode == 4 ? NULL : got, mode == 1 ? offs : NULL, cap, 0, 0, r % 2 ? cache : NULL, 1};
        if (!bpe_split_piece(&o, p, n, 7)) bpe_merge_stretch(&o, p, n, 7);
        size_t kept = o.n < cap ? o.n : cap;
        int ok = o.n == ow.n && !memcmp(got, want, kept * 4) && got[cap] == 0xDEADBEEF;
        for (size_t i = 0, at = 7; ok && mode == 1 && i < o.n; at += token_len(v, want[i++])) ok = offs[i] == at;
        if (!ok && bad++ < 5)
            fprintf(stderr, "bpe_split_piece: %zu bytes, mode %d, %s: %zu tokens, the heap %zu\n", n, mode,
                    r % 2 ? "cache" : "no cache", o.n, ow.n);
    }
    if (bad) failures++;
    printf("bpe_split_piece: %d mixed pieces of 300 bytes to 40 KB, five ways of writing == the heap\n", rounds);
    bpe_big_free(cache);
    free(p);
    free(want);
    free(got);
    free(offs);
}

/* bpe_merge_piece (what the pre-tokenizer calls for a piece that is not a
 * token) through one piece cache, pieces drawn from a pool so that they
 * recur, against the heap. */
static void test_cached(const struct bpe *v, int rounds) {
    enum { POOL = 500 };
    static uint8_t pool[POOL][SHORT_PIECE + 40];
    static size_t len[POOL];
    uint32_t want[SHORT_PIECE + 40], got[SHORT_PIECE + 40];
    cache_slot *cache = bpe_cache_new();
    int bad = 0;
    for (int k = 0; k < POOL; k++) {
        size_t n = rnd_piece(v, pool[k], k % 3 ? 2 + rnd() % 40 : 2 + rnd() % (SHORT_PIECE - 8));
        len[k] = n > SHORT_PIECE ? SHORT_PIECE : n;
    }
    for (int r = 0; r < rounds && cache; r++) {
        int k = (int)(rnd() % POOL);
        const uint8_t *p = pool[k];
        size_t n = len[k];
        out_t ow = {v, want, NULL, sizeof want / 4, 0, 0, NULL, 1}, o = {v, got, NULL, sizeof got / 4, 0, 0, cache, 1};
        bpe_merge_long(&ow, p, n, 0);
        bpe_merge_piece(&o, p, n, 0, bpe_hash_bytes(p, n), n);
        if (!same(got, o.n, want, ow.n) && bad++ < 5)
            fprintf(stderr, "bpe_merge_piece: pool piece %d, %zu bytes: %zu tokens, the heap %zu\n", k, n, o.n, ow.n);
    }
    if (bad) failures++;
    printf("bpe_merge_piece: %d mixed pieces from a pool of %d through a piece cache == the heap\n", rounds, POOL);
    bpe_big_free(cache);
}

int main(void) {
    const struct bpe *v = bpe_gpt2();
    int sanitized = getenv("SANITIZED") && !strcmp(getenv("SANITIZED"), "1");
    test_merge_cut(v, sanitized ? 20000 : 200000);
    test_split(v, sanitized ? 40 : 400);
    test_cached(v, sanitized ? 10000 : 100000);
    if (failures) {
        fprintf(stderr, "test_bpe_cut: failed\n");
        return 1;
    }
    return 0;
}
