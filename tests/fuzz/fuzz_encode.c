/* fuzz_encode - libFuzzer target for the tokenizer on the built-in GPT-2
 * vocabulary (bpe_gpt2()).
 *
 * Input: byte 0 selects the mode, bytes 1-2 pick a cut position k and a
 * stream chunk size, the rest is the text. Properties checked:
 *  - decode(encode(text)) == text, for each special mode (lossy);
 *  - counting (cap 0) gives the same count as encoding; a short cap writes
 *    exactly the first cap ids; offsets point at each token's bytes;
 *  - BPE_STRICT succeeds exactly on valid UTF-8 (checked by our own
 *    validator) and then equals the lossy encoding;
 *  - BPE_SPECIAL_ERROR fails exactly when "<|endoftext|>" occurs;
 *    BPE_SPECIAL_ALLOW equals the TEXT encodings of the pieces between the
 *    occurrences joined by the <|endoftext|> id;
 *  - p = bpe_safe_cut(v, text, k, mode): encode(text[0..p)) ++
 *    encode(text[p..n)) == encode(text), in ALLOW and TEXT mode;
 *  - the streaming encoder fed in chunks and bpe_encode_parallel give the
 *    same ids as bpe_encode;
 *  - decode of arbitrary ids never writes past cap and reports bad ids;
 *  - with GPT2IN_FUZZ_BIG=1, the input repeated past 1 MB, through the stream (which
 *    then cuts blocks) and two threads.
 * A broken property calls abort(), which libFuzzer reports as a crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"

#include "fuzz_check.h"

static const char EOT[] = "<|endoftext|>";
#define EOT_LEN (sizeof EOT - 1)

typedef struct {
    uint32_t *ids;
    size_t n;
} idvec;

/* Encodes into a fresh exactly-sized array; returns the status. */
static int enc(const bpe *v, const uint8_t *t, size_t len, int flags, idvec *out, size_t **offs) {
    bpe_error err;
    size_t count = 0;
    int rc = bpe_encode(v, t, len, flags, NULL, NULL, 0, &count, &err);
    if (rc != BPE_OK) {
        CHECK(rc < 0 && err.msg[0] != 0);
        out->ids = NULL;
        out->n = 0;
        return rc;
    }
    CHECK(count <= len);
    /* exact-size heap buffers: ASan catches any write past cap */
    uint32_t *ids = malloc((count ? count : 1) * sizeof *ids);
    size_t *off = malloc((count ? count : 1) * sizeof *off);
    CHECK(ids && off);
    size_t n2 = 0;
    rc = bpe_encode(v, t, len, flags, ids, off, count, &n2, &err);
    CHECK(rc == BPE_OK && n2 == count);
    out->ids = ids;
    out->n = count;
    if (offs)
        *offs = off;
    else
        free(off);
    return rc;
}

static int same(const idvec *a, const idvec *b) {
    return a->n == b->n && (a->n == 0 || !memcmp(a->ids, b->ids, a->n * sizeof *a->ids));
}

/* Our own UTF-8 validator (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
 * Returns the offset of the first byte that does not start a valid sequence,
 * or n when all is valid. */
static size_t utf8_bad_at(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k;
        uint32_t cp, min;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) { k = 1; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { k = 2; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { k = 3; cp = c & 0x07; min = 0x10000; }
        else return i;
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += k + 1;
    }
    return n;
}

static const uint8_t *find_eot(const uint8_t *s, size_t n) {
    if (n < EOT_LEN) return NULL;
    for (size_t i = 0; i + EOT_LEN <= n; i++)
        if (s[i] == '<' && !memcmp(s + i, EOT, EOT_LEN)) return s + i;
    return NULL;
}

static void check_decode(const bpe *v, const idvec *x, const uint8_t *text, size_t len) {
    bpe_error err;
    size_t cap = x->n * bpe_max_token_bytes(v);
    char *out = malloc(cap ? cap : 1);
    CHECK(out);
    size_t nb = 0;
    int rc = bpe_decode(v, x->ids, x->n, out, cap, &nb, &err);
    CHECK(rc == BPE_OK);
    CHECK(nb == len);
    CHECK(len == 0 || !memcmp(out, text, len));
    free(out);
    /* a cap too small: never writes past it, still reports the full length */
    if (len > 1) {
        size_t small = len / 2;
        char *o2 = malloc(small);
        CHECK(o2);
        nb = 0;
        rc = bpe_decode(v, x->ids, x->n, o2, small, &nb, &err);
        CHECK(rc == BPE_OK ? nb == len : rc < 0);
        free(o2);
    }
}

/* What a stream's sink received: ids, and offsets when asked for. */
typedef struct {
    idvec v;
    uint64_t *offs;
    int want_offsets;
} streamed;

static int sink(void *ctx, const uint32_t *ids, const uint64_t *offsets, size_t n) {
    streamed *acc = ctx;
    if (n) CHECK((offsets != NULL) == acc->want_offsets);
    uint32_t *p = realloc(acc->v.ids, (acc->v.n + n + 1) * sizeof *p);
    uint64_t *o = realloc(acc->offs, (acc->v.n + n + 1) * sizeof *o);
    CHECK(p && o);
    if (n) memcpy(p + acc->v.n, ids, n * sizeof *ids);
    if (n && offsets) memcpy(o + acc->v.n, offsets, n * sizeof *offsets);
    acc->v.ids = p;
    acc->offs = o;
    acc->v.n += n;
    return 0;
}

static int has_cut(const uint8_t *s, size_t n) {
    for (size_t i = 1; i < n; i++)
        if (s[i] == ' ' && s[i - 1] > ' ' && s[i - 1] < 0x80) return 1;
    return 0;
}

/* The text repeated to just over 1 MB (the last copy cut short, so copies
 * do not always end on a boundary): bpe_encode, the stream
 * fed in chunks of up to 64 KB (with offsets) and bpe_encode_parallel with
 * two threads must agree, and decode must give the bytes back. */
static void big_checks(const bpe *v, const uint8_t *text, size_t len, int mode, uint8_t chunkb) {
    size_t n = (1u << 20) + (64u << 10) + len / 2 + 1;
    uint8_t *big = malloc(n);
    CHECK(big);
    for (size_t i = 0; i < n; i += len) memcpy(big + i, text, n - i < len ? n - i : len);
    bpe_error err;
    idvec whole = {malloc(n * sizeof(uint32_t)), 0};
    CHECK(whole.ids);
    if (bpe_encode(v, big, n, mode, whole.ids, NULL, n, &whole.n, &err) != BPE_OK) {
        free(whole.ids); /* SPECIAL_ERROR with <|endoftext|> in the text */
        free(big);
        return;
    }
    {
        char *out = malloc(whole.n * bpe_max_token_bytes(v));
        size_t nb = 0;
        CHECK(out && bpe_decode(v, whole.ids, whole.n, out, whole.n * bpe_max_token_bytes(v), &nb,
                                &err) == BPE_OK);
        CHECK(nb == n && !memcmp(out, big, n));
        free(out);
    }

    size_t chunk = ((size_t)chunkb << 8 | 0xFF) + 1;
    streamed got = {{NULL, 0}, NULL, 1};
    bpe_stream *st = bpe_stream_new(v, mode | BPE_OFFSETS, 1, &err);
    CHECK(st);
    for (size_t i = 0; i < n; i += chunk) {
        size_t m = n - i < chunk ? n - i : chunk;
        CHECK(bpe_stream_write(st, big + i, m, sink, &got, &err) == BPE_OK);
    }
    CHECK(bpe_stream_finish(st, sink, &got, &err) == BPE_OK);
    bpe_stream_free(st);
    CHECK(same(&got.v, &whole));
    for (size_t i = 0, o = 0; i < got.v.n; i++) {
        size_t tl;
        CHECK(got.offs[i] == o);
        bpe_token_bytes(v, got.v.ids[i], &tl);
        o += tl;
    }
    free(got.v.ids);
    free(got.offs);

    uint32_t *ids = malloc(n * sizeof *ids);
    CHECK(ids);
    size_t cnt = 0;
    CHECK(bpe_encode_parallel(v, big, n, mode, 2, ids, NULL, n, &cnt, &err) == BPE_OK);
    idvec par = {ids, cnt};
    CHECK(same(&par, &whole));
    free(ids);
    free(whole.ids);
    free(big);
}

static int big_mode;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *e = getenv("GPT2IN_FUZZ_BIG");
    big_mode = e && *e == '1';
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    const bpe *v = bpe_gpt2();
    uint8_t sel = data[0], kb = data[1], chunkb = data[2];
    const uint8_t *text = data + 3;
    size_t len = size - 3;
    bpe_error err;

    /* Mode 3 of the selector: arbitrary ids through bpe_decode. */
    if ((sel & 3) == 3) {
        size_t n = len / 4;
        uint32_t *ids = malloc((n ? n : 1) * sizeof *ids);
        CHECK(ids);
        size_t want = 0, first_bad = (size_t)-1, V = bpe_vocab_size(v);
        for (size_t i = 0; i < n; i++) {
            uint32_t x;
            memcpy(&x, text + 4 * i, 4);
            /* mostly valid ids, sometimes just past the end, sometimes huge */
            ids[i] = (sel & 4) ? x : (x % (V + 2));
            size_t tl = 0;
            const char *tb = bpe_token_bytes(v, ids[i], &tl);
            CHECK((tb != NULL) == (ids[i] < V));
            if (tb) want += tl;
            else if (first_bad == (size_t)-1) first_bad = i;
        }
        size_t cap = first_bad == (size_t)-1 ? want : n * bpe_max_token_bytes(v);
        char *out = malloc(cap ? cap : 1);
        CHECK(out);
        size_t nb = 0;
        int rc = bpe_decode(v, ids, n, out, cap, &nb, &err);
        if (first_bad == (size_t)-1) {
            CHECK(rc == BPE_OK && nb == want);
            /* the bytes are each token's bytes in order */
            size_t at = 0;
            for (size_t i = 0; i < n; i++) {
                size_t tl;
                const char *tb = bpe_token_bytes(v, ids[i], &tl);
                CHECK(!memcmp(out + at, tb, tl));
                at += tl;
            }
        } else {
            CHECK(rc == BPE_ERR_ID && err.offset == first_bad && err.msg[0]);
        }
        free(out);
        free(ids);
        return 0;
    }

    int mode = sel & 3; /* BPE_SPECIAL_ERROR / ALLOW / TEXT */
    const uint8_t *eot = find_eot(text, len);

    /* Lossy encode in the chosen special mode, with offsets. */
    idvec x;
    size_t *offs = NULL;
    int rc = enc(v, text, len, mode, &x, &offs);
    if (mode == BPE_SPECIAL_ERROR && eot) {
        CHECK(rc == BPE_ERR_SPECIAL);
        {
            bpe_error e2;
            size_t cnt;
            CHECK(bpe_encode(v, text, len, mode, NULL, NULL, 0, &cnt, &e2) == BPE_ERR_SPECIAL);
            CHECK(e2.offset == (uint64_t)(eot - text));
        }
        mode = BPE_SPECIAL_TEXT; /* go on checking the rest in TEXT mode */
        rc = enc(v, text, len, mode, &x, &offs);
    }
    CHECK(rc == BPE_OK);
    check_decode(v, &x, text, len);

    /* offsets: start at 0, each token's bytes are the text at its offset */
    size_t at = 0;
    for (size_t i = 0; i < x.n; i++) {
        size_t tl;
        const char *tb = bpe_token_bytes(v, x.ids[i], &tl);
        CHECK(tb && offs[i] == at && at + tl <= len && !memcmp(text + at, tb, tl));
        at += tl;
    }
    CHECK(at == len);
    free(offs);

    /* a short cap writes exactly the first cap ids and still counts them all */
    if (x.n > 1) {
        size_t cap = kb % x.n;
        uint32_t *few = malloc((cap ? cap : 1) * sizeof *few);
        CHECK(few);
        size_t cnt = 0;
        CHECK(bpe_encode(v, text, len, mode, few, NULL, cap, &cnt, &err) == BPE_OK);
        CHECK(cnt == x.n && (cap == 0 || !memcmp(few, x.ids, cap * sizeof *few)));
        free(few);
    }

    /* TEXT-mode reference for the other properties */
    idvec plain;
    CHECK(enc(v, text, len, BPE_SPECIAL_TEXT, &plain, NULL) == BPE_OK);
    if (mode == BPE_SPECIAL_TEXT || !eot) CHECK(same(&x, &plain));

    if (mode == BPE_SPECIAL_ALLOW) {
        /* pieces between <|endoftext|> occurrences, each encoded alone */
        idvec want = {malloc((len + 1) * sizeof(uint32_t)), 0};
        CHECK(want.ids);
        const uint8_t *p = text, *end = text + len;
        for (;;) {
            const uint8_t *e = find_eot(p, (size_t)(end - p));
            idvec part;
            CHECK(enc(v, p, (size_t)((e ? e : end) - p), BPE_SPECIAL_TEXT, &part, NULL) == BPE_OK);
            if (part.n) memcpy(want.ids + want.n, part.ids, part.n * sizeof *part.ids);
            want.n += part.n;
            free(part.ids);
            if (!e) break;
            want.ids[want.n++] = (uint32_t)bpe_eot_id(v);
            p = e + EOT_LEN;
        }
        CHECK(same(&x, &want));
        free(want.ids);
    }

    /* strict: succeeds exactly on valid UTF-8, and then changes nothing */
    {
        idvec s;
        size_t bad_at = utf8_bad_at(text, len);
        int src = enc(v, text, len, BPE_SPECIAL_TEXT | BPE_STRICT, &s, NULL);
        CHECK(bad_at == len ? src == BPE_OK : src == BPE_ERR_UTF8);
        if (src != BPE_OK) {
            bpe_error e2;
            size_t cnt;
            CHECK(bpe_encode(v, text, len, BPE_SPECIAL_TEXT | BPE_STRICT, NULL, NULL, 0, &cnt,
                             &e2) == BPE_ERR_UTF8);
            CHECK(e2.offset == bad_at);
        }
        if (src == BPE_OK) CHECK(same(&s, &plain));
        free(s.ids);
    }

    /* safe cut of the prefix text[0..k) */
    {
        size_t k = len ? ((size_t)kb * 257 + chunkb) % (len + 1) : 0;
        size_t p = bpe_safe_cut(v, text, k, mode);
        CHECK(p <= k);
        idvec a, b;
        CHECK(enc(v, text, p, mode, &a, NULL) == BPE_OK);
        CHECK(enc(v, text + p, len - p, mode, &b, NULL) == BPE_OK);
        CHECK(a.n + b.n == x.n);
        CHECK(a.n == 0 || !memcmp(a.ids, x.ids, a.n * sizeof *a.ids));
        CHECK(b.n == 0 || !memcmp(b.ids, x.ids + a.n, b.n * sizeof *b.ids));
        free(a.ids);
        free(b.ids);
    }

    /* streaming in chunks of 1..64 bytes (or everything at once), with or
     * without offsets: the same ids (and offsets) as one bpe_encode */
    {
        size_t chunk = chunkb & 0x40 ? len + 1 : (size_t)(chunkb & 0x3F) + 1;
        streamed got = {{NULL, 0}, NULL, (chunkb & 0x80) != 0};
        bpe_stream *st = bpe_stream_new(v, mode | (got.want_offsets ? BPE_OFFSETS : 0), 1, &err);
        CHECK(st);
        for (size_t i = 0; i < len; i += chunk) {
            size_t m = len - i < chunk ? len - i : chunk;
            CHECK(bpe_stream_write(st, text + i, m, sink, &got, &err) == BPE_OK);
        }
        CHECK(bpe_stream_finish(st, sink, &got, &err) == BPE_OK);
        bpe_stream_free(st);
        CHECK(same(&got.v, &x));
        if (got.want_offsets)
            for (size_t i = 0, o = 0; i < got.v.n; i++) {
                size_t tl;
                CHECK(got.offs[i] == o);
                bpe_token_bytes(v, got.v.ids[i], &tl);
                o += tl;
            }
        free(got.v.ids);
        free(got.offs);
    }

    /* two threads give the same ids (small inputs may use one) */
    if (sel & 0x80) {
        uint32_t *ids = malloc((len ? len : 1) * sizeof *ids);
        CHECK(ids);
        size_t cnt = 0;
        CHECK(bpe_encode_parallel(v, text, len, mode, 2, ids, NULL, len, &cnt, &err) == BPE_OK);
        idvec par = {ids, cnt};
        CHECK(same(&par, &x));
        free(ids);
    }

    /* With GPT2IN_FUZZ_BIG=1 in the environment, every input with an ASCII
     * space after a non-space (so that the stream finds cuts) is also
     * repeated past 1 MB, enough for the stream to cut and encode blocks
     * before the end and for bpe_encode_parallel to really use two threads.
     * About a second per input under ASan, so off by default: left on, the
     * fuzzer steers toward it and the corpus fills with slow inputs.
     * tests/test_huge.sh covers the same paths at scale. */
    if (big_mode && has_cut(text, len))
        big_checks(v, text, len, mode, chunkb);

    free(plain.ids);
    free(x.ids);
    return 0;
}
