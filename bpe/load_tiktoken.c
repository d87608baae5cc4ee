/* load_tiktoken.c - tiktoken's rank files (r50k_base.tiktoken): one line per
 * token, "base64(bytes) rank". The rank is the id, as in tiktoken; the file
 * has no special token, so <|endoftext|> gets the id after the last rank
 * (as tiktoken's r50k_base and gpt2 encodings). Ranks must be 0..n-1, each
 * once; blank lines are skipped, as tiktoken does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load_vocab.h"

static int blank(char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f'; }

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Strict standard base64 (padded, no stray bits): the length, or -1 with
 * the offset of the first bad character in *bad. */
static long b64_decode(const char *s, size_t n, uint8_t *out, size_t *bad) {
    if (n == 0 || n % 4) {
        *bad = n;
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            unsigned char c = (unsigned char)s[i + j];
            if (c == '=' && i + 4 == n && j >= 2) {
                pad++;
                v[j] = 0;
                continue;
            }
            if (pad || (v[j] = b64_value(c)) < 0) {
                *bad = i + (size_t)j;
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        /* the bits a padded group leaves over must be zero (one encoding a token) */
        if ((pad == 1 && (w & 0xFF)) || (pad == 2 && (w & 0xFFFF))) {
            *bad = i + 3 - (size_t)pad;
            return -1;
        }
        out[k++] = (uint8_t)(w >> 16);
        if (pad < 2) out[k++] = (uint8_t)(w >> 8);
        if (pad < 1) out[k++] = (uint8_t)w;
    }
    return (long)k;
}

bpe *bpe_load_tiktoken_mem(const char *data, size_t len, const char *name, bpe_error *err) {
    if (!data) {
        bpe_fail(err, BPE_ERR_ARG, 0, "bpe_load_tiktoken_mem: NULL buffer");
        return NULL;
    }
    if (!name) name = "tiktoken file";
    const char *p = data, *end = data + len;
    /* count the tokens first: ranks must be 0..n-1 */
    uint64_t n = 0;
    for (const char *q = p; q < end;) {
        const char *eol = memchr(q, '\n', (size_t)(end - q));
        if (!eol) eol = end;
        n += eol > q && !(eol == q + 1 && *q == '\r');
        q = eol + (eol < end);
    }
    if (n == 0) {
        bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: no tokens (a tiktoken file has lines \"base64 rank\")", name);
        return NULL;
    }
    if (n + 1 >= BPE_MAX_TOKENS) {
        bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: %llu tokens, more than %u", name, (unsigned long long)n,
                 BPE_MAX_TOKENS - 2);
        return NULL;
    }
    lv_vocab lv;
    if (bpe_lv_init(&lv, name, (uint32_t)n + 1, err)) return NULL;
    lv.eot = (int32_t)n;
    bpe_lv_special(&lv, (uint32_t)n, 0);
    uint32_t *line_of = gpt2in_malloc((size_t)n * sizeof *line_of);
    uint8_t *buf = gpt2in_malloc(LV_MAX_TEXT);
    bpe *v = NULL;
    char q[160];
    if (!line_of || !buf) {
        bpe_fail(err, BPE_ERR_NOMEM, 0, "%s: out of memory", name);
        goto out;
    }
    uint32_t line = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        line++;
        const char *le = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
        if (le == p) {
            p = eol + (eol < end);
            continue;
        }
        /* Two fields split by any run of blanks, as tiktoken's line.split(). */
        const char *a = p, *z = le;
        while (a < z && blank(*a)) a++;
        while (z > a && blank(z[-1])) z--;
        const char *sp = a, *r;
        while (sp < z && !blank(*sp)) sp++;
        for (r = sp; r < z && blank(*r); r++) {}
        if (a == z || sp == z) {
            bpe_fail(err, BPE_ERR_FORMAT, line, "%s:%u: not \"base64 rank\"", name, line);
            goto out;
        }
        uint64_t rank = 0;
        for (const char *d = r; d < z; d++) {
            if (*d < '0' || *d > '9' || (d > r && r[0] == '0') || rank > UINT32_MAX) {
                bpe_fail(err, BPE_ERR_FORMAT, line, "%s:%u:%zu: the rank is not a number", name, line,
                         (size_t)(d - p) + 1);
                goto out;
            }
            rank = rank * 10 + (uint64_t)(*d - '0');
        }
        if (rank >= n) {
            bpe_fail(err, BPE_ERR_FORMAT, line, "%s:%u: rank %llu is out of range: %llu tokens need ranks 0..%llu",
                     name, line, (unsigned long long)rank, (unsigned long long)n, (unsigned long long)n - 1);
            goto out;
        }
        size_t bad = 0;
        if (sp - a > LV_MAX_TEXT) {
            bpe_fail(err, BPE_ERR_FORMAT, line, "%s:%u:1: a token of %zu base64 characters, more than the %d of a token",
                     name, line, (size_t)(sp - a), LV_MAX_TEXT);
            goto out;
        }
        long nb = b64_decode(a, (size_t)(sp - a), buf, &bad);
        if (nb <= 0) {
            bpe_fail(err, BPE_ERR_FORMAT, line, "%s:%u:%zu: bad base64", name, line, (size_t)(a - p) + bad + 1);
            goto out;
        }
        uint32_t other;
        int e = bpe_lv_set(&lv, (uint32_t)rank, buf, (size_t)nb, &other);
        if (e == BPE_ERR_NOMEM) {
            bpe_fail(err, e, 0, "%s: out of memory", name);
            goto out;
        }
        if (e && other == LV_NONE) {
            bpe_fail(err, BPE_ERR_FORMAT, line, "%s:%u: rank %llu is given twice (first on line %u)", name, line,
                     (unsigned long long)rank, line_of[rank]);
            goto out;
        }
        if (e) {
            bpe_fail(err, BPE_ERR_FORMAT, line, "%s:%u: duplicate token %s (first on line %u)", name, line,
                     bpe_lv_quote(q, sizeof q, buf, (size_t)nb), line_of[other]);
            goto out;
        }
        line_of[rank] = line;
        p = eol + (eol < end);
    }
    static const char eot[] = "<|endoftext|>";
    uint32_t have = bpe_lv_find(&lv, (const uint8_t *)eot, sizeof eot - 1), other;
    if (have != LV_NONE) {
        bpe_fail(err, BPE_ERR_FORMAT, line_of[have], "%s:%u: <|endoftext|> is an ordinary token here; tiktoken's "
                 "files leave it out (it is the special token, id %llu)", name, line_of[have], (unsigned long long)n);
        goto out;
    }
    if (bpe_lv_set(&lv, (uint32_t)n, (const uint8_t *)eot, sizeof eot - 1, &other)) {
        bpe_fail(err, BPE_ERR_NOMEM, 0, "%s: out of memory", name);
        goto out;
    }
    if (bpe_lv_rank_bytes(&lv, err)) goto out;
    bpe_lv_rank_by_id(&lv);
    v = bpe_lv_finish(&lv, err);
out:
    free(line_of);
    free(buf);
    bpe_lv_free(&lv);
    return v;
}
