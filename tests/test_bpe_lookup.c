/* test_bpe_lookup.c - the token lookups of bpe/bpe_internal.h against
 * their plain definitions:
 *   - bpe_hash_bytes (word and tail loads) against a byte-at-a-time hash,
 *     for every length up to 40, with the bytes at the very end of a
 *     buffer of their own size, so that AddressSanitizer sees any read past
 *     them;
 *   - bpe_find_token (short pieces: two-word hash and slot compare) against
 *     a probe that hashes byte by byte and compares with memcmp, on every
 *     token of GPT-2, on every prefix and suffix of every token (most are
 *     no token), and on random strings from few bytes (most miss);
 *   - the piece encoder (bpe_encode) on every token of ASCII letters, with
 *     or without a leading space (one piece): one id, its own;
 *   - the pre-tokenizer's letter scan (16 bytes at a time where 16 are
 *     left, byte by byte at the end): random texts of letters and the
 *     bytes around them in ASCII, alone and then followed by more text,
 *     give the same ids for their own part. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe_internal.h"

static int failures;
#include "rnd.h"

static uint64_t ref_hash(const uint8_t *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull * (n + 1);
    while (n >= 8) {
        uint64_t w = 0;
        for (int i = 0; i < 8; i++) w |= (uint64_t)p[i] << (8 * i);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        for (size_t i = 0; i < n; i++) w |= (uint64_t)p[i] << (8 * i);
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    }
    return h ^ h >> 29;
}

static uint32_t ref_find(const struct bpe *v, const uint8_t *p, size_t n) {
    for (uint64_t h = ref_hash(p, n);; h++) {
        const bpe_slot *s = &v->tok_slots[h & v->tok_mask];
        if (s->id == BPE_EMPTY) return BPE_EMPTY;
        uint32_t a = v->tok_off[s->id];
        if (v->tok_off[s->id + 1] - a == n && !memcmp(v->tok_bytes + a, p, n)) return s->id;
    }
}

/* p[0..n) copied to the end of a buffer of exactly n bytes. */
static void check(const struct bpe *v, const uint8_t *p, size_t n, const char *what) {
    uint8_t *b = malloc(n ? n : 1);
    if (!b) abort();
    memcpy(b, p, n);
    uint64_t h = bpe_hash_bytes(b, n), rh = ref_hash(b, n);
    uint32_t id = bpe_find_token(v, b, n), rid = ref_find(v, b, n);
    if (h != rh || id != rid) {
        if (failures++ < 10)
            fprintf(stderr, "test_bpe_lookup: %s of %zu bytes: hash %016llx (want %016llx), id %u (want %u)\n",
                    what, n, (unsigned long long)h, (unsigned long long)rh, id, rid);
    }
    free(b);
}

static void test_letter_scan(const struct bpe *v) {
    static const char *atoms[] = {"a", "z", "A", "Z", "m", "Q", "@", "[", "`", "{", "\xc3\xa9", "\xc3\x89",
                                  "\xe4\xb8\xad", "0", "9", " ", ".", "'", "\x7f", "\xff", "_", "\t"};
    char text[256];
    uint32_t a[256], b[256];
    for (int r = 0; r < 100000; r++) {
        size_t n = 0, goal = rnd() % 48;
        while (n < goal) {
            /* mostly letters, so that runs cross 16-byte blocks */
            const char *t = atoms[rnd() % 4 ? rnd() % 6 : rnd() % (sizeof atoms / sizeof *atoms)];
            size_t k = strlen(t);
            memcpy(text + n, t, k);
            n += k;
        }
        text[n++] = '.';
        size_t na, nb;
        bpe_error err;
        memset(text + n, '\n', 2);
        memset(text + n + 2, 'x', 40);
        if (bpe_encode(v, text, n, BPE_SPECIAL_TEXT, a, NULL, 256, &na, &err) ||
            bpe_encode(v, text, n + 42, BPE_SPECIAL_TEXT, b, NULL, 256, &nb, &err) || nb < na ||
            memcmp(a, b, na * sizeof *a)) {
            if (failures++ < 10) fprintf(stderr, "test_bpe_lookup: text %.*s: ids differ when followed by more\n", (int)n, text);
        }
    }
}

int main(void) {
    const struct bpe *v = bpe_gpt2();
    uint8_t buf[64];
    for (size_t n = 0; n <= 40; n++)
        for (int r = 0; r < 200; r++) {
            for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)rnd();
            check(v, buf, n, "random bytes");
        }
    for (uint32_t t = 0; t < v->n_tokens; t++) {
        if ((int32_t)t == v->eot) continue;
        const uint8_t *p = v->tok_bytes + v->tok_off[t];
        size_t n = v->tok_off[t + 1] - v->tok_off[t];
        check(v, p, n, "token");
        for (size_t k = 1; k < n; k++) {
            check(v, p, k, "token prefix");
            check(v, p + k, n - k, "token suffix");
        }
        size_t k = p[0] == ' ';
        while (k < n && ((p[k] | 32) >= 'a' && (p[k] | 32) <= 'z')) k++;
        if (k < n || n == (p[0] == ' ')) continue;
        uint32_t id;
        size_t m;
        bpe_error err;
        if (bpe_encode(v, p, n, BPE_SPECIAL_TEXT, &id, NULL, 1, &m, &err) || m != 1 || id != t) {
            if (failures++ < 10) fprintf(stderr, "test_bpe_lookup: token %u does not encode to itself\n", t);
        }
    }
    static const char alpha[] = "etaoin shr";
    for (int r = 0; r < 200000; r++) {
        size_t n = 1 + rnd() % 16;
        for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)alpha[rnd() % 10];
        check(v, buf, n, "random letters");
    }
    test_letter_scan(v);
    if (failures) {
        fprintf(stderr, "test_bpe_lookup: %d failures\n", failures);
        return 1;
    }
    return 0;
}
