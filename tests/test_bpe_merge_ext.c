/* test_bpe_merge_ext.c - the short-piece loop's skipped look-ups: a part
 * made by a merge looks up its pair with a neighbour only on the sides
 * the image's tok_ext says it can be extended to (bpe/merge.c).
 *   - tok_ext of every token against its definition, found another way:
 *     the tokens' bytes sorted (and sorted reversed), where the tokens
 *     that begin with P come right after P;
 *   - bpe_merge_short against bpe_merge_traced (tiktoken's loop, which
 *     looks every pair up) on pieces where the skip matters: words glued
 *     from tokens of other scripts, random letters and base64, Cyrillic;
 *     with the loop of each instruction set this CPU has (merge.h);
 *   - the stretches of long pieces merged through the piece cache against
 *     the heap (long.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "merge.h"

static int failures;
#define RND_SEED 0x6A09E667F3BCC908ull
#include "rnd.h"

static const struct bpe *V;
static int reversed;

/* The bytes of token t, k-th from the start (or from the end). */
static int byte_at(uint32_t t, size_t k) {
    const uint8_t *b = V->tok_bytes + V->tok_off[t];
    size_t n = token_len(V, t);
    return b[reversed ? n - 1 - k : k];
}

static int by_bytes(const void *x, const void *y) {
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    size_t la = token_len(V, a), lb = token_len(V, b);
    for (size_t k = 0; k < la && k < lb; k++)
        if (byte_at(a, k) != byte_at(b, k)) return byte_at(a, k) - byte_at(b, k);
    return la < lb ? -1 : la > lb;
}

/* Whether token a's bytes are a proper prefix (suffix when reversed) of b's. */
static int proper_start(uint32_t a, uint32_t b) {
    size_t la = token_len(V, a), lb = token_len(V, b);
    if (la >= lb) return 0;
    for (size_t k = 0; k < la; k++)
        if (byte_at(a, k) != byte_at(b, k)) return 0;
    return 1;
}

static void test_flags(const struct bpe *v) {
    uint32_t n = v->n_tokens, m = 0;
    uint32_t *order = malloc(n * sizeof *order);
    uint8_t *want = calloc(n, 1);
    for (uint32_t t = 0; t < n; t++)
        if (bpe_find_token(v, v->tok_bytes + v->tok_off[t], token_len(v, t)) == t) order[m++] = t;  /* no specials */
    for (reversed = 0; reversed < 2; reversed++) {
        qsort(order, m, sizeof *order, by_bytes);
        /* the tokens that extend P come right after P (and its equals) */
        for (uint32_t i = 0; i < m; i++) {
            uint32_t j = i + 1;
            while (j < m && by_bytes(&order[i], &order[j]) == 0) j++;
            if (j < m && proper_start(order[i], order[j])) want[order[i]] |= reversed ? BPE_EXT_LEFT : BPE_EXT_RIGHT;
        }
    }
    size_t bad = 0, left = 0, right = 0;
    for (uint32_t i = 0; i < m; i++) {
        uint32_t t = order[i];
        left += !(want[t] & BPE_EXT_LEFT);
        right += !(want[t] & BPE_EXT_RIGHT);
        if (v->tok_ext[t] != want[t] && bad++ < 5)
            fprintf(stderr, "tok_ext[%u] = %u, want %u\n", t, v->tok_ext[t], want[t]);
    }
    if (bad) failures++;
    printf("tok_ext: %u tokens, %zu never a part's right side, %zu never its left\n", m, left, right);
    free(order);
    free(want);
}

static int isas[2], n_isas;
static const char *const isa_name[] = {"auto", "baseline", "SSE4.1"};

static void check(const struct bpe *v, const uint8_t *p, size_t n, const char *what) {
    uint32_t a[SHORT_PIECE], b[SHORT_PIECE];
    size_t nb = bpe_merge_traced(v, p, n, b, NULL);
    for (int k = 0; k < n_isas; k++) {
        size_t na = bpe_merge_short_isa(v, p, n, a, isas[k]);
        if ((na != nb || memcmp(a, b, na * sizeof *a)) && failures++ < 5)
            fprintf(stderr, "%s, %zu bytes: bpe_merge_short (%s) gives %zu tokens, the loop %zu\n", what, n,
                    isa_name[isas[k]], na, nb);
    }
}

static void test_pieces(const struct bpe *v, int rounds) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint32_t V_ = v->n_tokens - 1, *high = malloc(V_ * sizeof *high), n_high = 0;
    for (uint32_t t = 0; t < V_; t++)
        if (v->tok_bytes[v->tok_off[t]] >= 0x80 || (token_len(v, t) > 1 && v->tok_bytes[v->tok_off[t] + 1] >= 0x80))
            high[n_high++] = t;
    uint8_t p[SHORT_PIECE];
    for (int r = 0; r < rounds; r++) {
        size_t n = 0, want = 2 + rnd() % 40;
        switch (r % 4) {
        case 0:  /* tokens of any kind glued */
        case 1:  /* tokens with bytes of 0x80 and up glued (other scripts) */
            while (n < want) {
                uint32_t t = r % 4 ? high[rnd() % n_high] : rnd() % V_;
                size_t l = token_len(v, t);
                if (n + l > SHORT_PIECE) break;
                memcpy(p + n, v->tok_bytes + v->tok_off[t], l);
                n += l;
            }
            break;
        case 2:  /* base64 */
            for (; n < want; n++) p[n] = (uint8_t)b64[rnd() % 52 + (r % 8 == 2 ? 0 : rnd() % 12)];
            break;
        default:  /* Cyrillic letters (U+0430..U+044F) */
            for (; n + 1 < want; n += 2) {
                unsigned c = 0x430 + rnd() % 32;
                p[n] = (uint8_t)(0xC0 | c >> 6);
                p[n + 1] = (uint8_t)(0x80 | (c & 63));
            }
        }
        if (n >= 2) check(v, p, n, r % 4 == 0 ? "tokens" : r % 4 == 1 ? "tokens of other scripts" : r % 4 == 2 ? "base64" : "Cyrillic");
    }
    free(high);
    printf("bpe_merge_short == the loop on %d glued, base64 and Cyrillic pieces (%s%s%s)\n", rounds,
           isa_name[isas[0]], n_isas > 1 ? ", " : "", n_isas > 1 ? isa_name[isas[1]] : "");
}

/* Long pieces cut where no token joins two bytes, with a piece cache (a
 * stretch of 4-30 bytes is looked up there and merged into it, as pieces
 * are), against the heap: CJK characters and Cyrillic letters from small
 * sets, so that stretches recur, and base64. Twice over one cache, and
 * with offsets every other time. */
static void test_cached_stretches(const struct bpe *v, int rounds) {
    static const char *const alphabets[] = {
        "\xe4\xb8\x80\xe4\xba\x8c\xe4\xb8\x89\xe7\x9a\x84\xe6\x98\xaf\xe5\x9c\xa8\xe4\xb8\x8d\xe4\xba\x86"
        "\xe3\x81\xae\xe3\x81\xab\xe3\x81\x97\xe3\x81\xa6\xe3\x83\xbc",
        "\xd0\xb0\xd0\xb1\xd0\xb2\xd0\xb3\xd0\xb4\xd0\xb5\xd0\xbe\xd0\xbf\xd1\x80\xd1\x81\xd1\x82",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"};
    enum { MAX_N = 2048 };
    cache_slot *cache = bpe_cache_new();
    uint8_t *p = malloc(MAX_N);
    uint32_t *a = malloc(MAX_N * 4), *b = malloc(MAX_N * 4);
    size_t *offs = malloc(MAX_N * sizeof *offs);
    if (!cache || !p || !a || !b || !offs) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    int bad = 0;
    for (int r = 0; r < rounds; r++) {
        int kind = r % 3;
        const char *al = alphabets[kind];
        size_t step = kind == 0 ? 3 : kind == 1 ? 2 : 1, k = strlen(al) / step, n = 0, want = 40 + rnd() % 600;
        while (n + step <= want) {
            memcpy(p + n, al + step * (rnd() % k), step);
            n += step;
        }
        for (int pass = 0; pass < 2; pass++) {
            out_t oa = {v, a, r % 2 ? offs : NULL, MAX_N, 0, 0, cache, 1}, ob = {v, b, NULL, MAX_N, 0, 0, NULL, 1};
            bpe_merge_long(&ob, p, n, 0);
            if (!bpe_split_piece(&oa, p, n, 0)) continue;  /* no cut near the start */
            int same = oa.n == ob.n && !memcmp(a, b, oa.n * 4);
            for (size_t i = 0, at = 0; same && r % 2 && i < oa.n; at += token_len(v, b[i++])) same = offs[i] == at;
            if (!same && bad++ < 5)
                fprintf(stderr, "cached stretches, kind %d, %zu bytes, pass %d: %zu tokens, the heap %zu\n", kind, n,
                        pass, oa.n, ob.n);
        }
    }
    if (bad) failures++;
    printf("long pieces' stretches through a piece cache == the heap on %d pieces\n", rounds);
    bpe_big_free(cache);
    free(p);
    free(a);
    free(b);
    free(offs);
}

int main(void) {
    const struct bpe *v = bpe_gpt2();
    V = v;
    int sanitized = getenv("SANITIZED") && !strcmp(getenv("SANITIZED"), "1");
    isas[n_isas++] = BPE_MERGE_BASE;
    if (bpe_merge_isa_supported(BPE_MERGE_SSE41)) isas[n_isas++] = BPE_MERGE_SSE41;
    test_flags(v);
    test_pieces(v, sanitized ? 20000 : 400000);
    test_cached_stretches(v, sanitized ? 600 : 6000);
    if (failures) {
        fprintf(stderr, "test_bpe_merge_ext: failed\n");
        return 1;
    }
    return 0;
}
