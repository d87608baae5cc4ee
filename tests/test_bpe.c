/* test_bpe.c - the tokenizer library (bpe/bpe.h) against itself where the
 * property is structural, and against tiktoken's ids where it is not:
 *   - the worked cases of the shared reference (ids from npm tiktoken 1.0.22,
 *     see tests/oracle/gen_fixtures.js), through the C API;
 *   - cutting at bpe_safe_cut never changes a token, for every prefix length;
 *   - streaming in chunks of many sizes == encoding the whole text;
 *   - several threads == one thread, on one shared vocabulary;
 *   - decode(encode(x)) == x for random byte strings, invalid UTF-8 included;
 *   - offsets point at each token's bytes;
 *   - the files in gpt2_weights/ load to the same tokenizer as the built-in one;
 *   - malformed vocabulary files fail with file:line messages.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "check.h"
#include "collect.h"

#include "rnd.h"

static size_t encode(const bpe *v, const void *s, size_t n, int flags, uint32_t *ids) {
    size_t nt = 0;
    bpe_error err;
    int rc = bpe_encode(v, s, n, flags, ids, NULL, n, &nt, &err);
    CHECK(rc == 0, "encode failed: %s", err.msg);
    return nt;
}

static char *read_file(const char *path, size_t *n) { return (char *)slurp(path, n); }

/* ---- known ids ----------------------------------------------------------- */

struct vec { const char *text; int flags; uint32_t ids[16]; };

static void test_vectors(const bpe *v) {
    static const struct vec vecs[] = {
        {"hello world", 0, {31373, 995}},
        {"0000000000000000", 0, {25645}},
        {"00000000000000000", 0, {8269, 10535, 830}},
        {"000000000", 0, {10535, 830}},
        {"hello <|endoftext|>", BPE_SPECIAL_ALLOW, {31373, 220, 50256}},
        {"<|endoftext|>", BPE_SPECIAL_TEXT, {27, 91, 437, 1659, 5239, 91, 29}},
        {"Hello   world", 0, {15496, 220, 220, 995}},
        {"DON'T don't", 0, {41173, 6, 51, 836, 470}},
        {"can't've", 0, {5171, 470, 1053}},
        {"a\xc2\xa0" "b", 0, {64, 1849, 65}},
    };
    uint32_t ids[64];
    for (size_t i = 0; i < sizeof vecs / sizeof *vecs; i++) {
        size_t n = encode(v, vecs[i].text, strlen(vecs[i].text), vecs[i].flags, ids);
        size_t want = 0;
        while (want < 16 && vecs[i].ids[want]) want++;
        int same = n == want;
        for (size_t k = 0; same && k < n; k++) same = ids[k] == vecs[i].ids[k];
        CHECK(same, "\"%s\": %zu ids, first %u", vecs[i].text, n, n ? ids[0] : 0);
    }
    /* tiktoken's default: the special token in text is an error, at its offset. */
    bpe_error err;
    size_t nt;
    int rc = bpe_encode(v, "ab <|endoftext|>", 16, BPE_SPECIAL_ERROR, ids, NULL, 64, &nt, &err);
    CHECK(rc == BPE_ERR_SPECIAL && err.offset == 3, "rc %d offset %llu", rc, (unsigned long long)err.offset);
    rc = bpe_encode(v, "ok\xff", 3, BPE_STRICT | BPE_SPECIAL_TEXT, ids, NULL, 64, &nt, &err);
    CHECK(rc == BPE_ERR_UTF8 && err.offset == 2, "rc %d offset %llu", rc, (unsigned long long)err.offset);
    /* Lossy: an invalid byte is its own piece and ends the text before it:
     * "a \xff" -> "a", " " (as at end of input), byte 0xFF. */
    {
        size_t n = encode(v, "a \xff", 3, BPE_SPECIAL_TEXT, ids);
        CHECK(n == 3 && ids[0] == 64 && ids[1] == 220, "n %zu", n);
        size_t len;
        const char *b = bpe_token_bytes(v, ids[2], &len);
        CHECK(len == 1 && (unsigned char)b[0] == 0xFF, "invalid byte token");
    }
    /* Counting only. */
    rc = bpe_encode(v, "hello world", 11, 0, NULL, NULL, 0, &nt, &err);
    CHECK(rc == 0 && nt == 2, "count %zu", nt);
}

/* ---- cutting, streaming, threads -------------------------------------------- */

static int same_ids(const uint32_t *a, size_t na, const uint32_t *b, size_t nb) {
    return na == nb && !memcmp(a, b, na * sizeof *a);
}

static void test_safe_cut(const bpe *v, const char *text, size_t n) {
    uint32_t *whole = malloc((n + 1) * 4), *parts = malloc((n + 1) * 4);
    size_t nw = encode(v, text, n, BPE_SPECIAL_TEXT, whole);
    size_t bad = 0, last = (size_t)-1;
    for (size_t p = 0; p <= n; p++) {
        size_t cut = bpe_safe_cut(v, text, p, BPE_SPECIAL_TEXT);
        CHECK(cut <= p, "cut %zu > %zu", cut, p);
        if (cut == last) continue;  /* checked already */
        last = cut;
        size_t a = encode(v, text, cut, BPE_SPECIAL_TEXT, parts);
        size_t b = encode(v, text + cut, n - cut, BPE_SPECIAL_TEXT, parts + a);
        if (!same_ids(whole, nw, parts, a + b)) bad++;
    }
    CHECK(bad == 0, "%zu of %zu cuts changed the tokens", bad, n + 1);
    free(whole);
    free(parts);
}


static void test_stream(const bpe *v, const char *text, size_t n) {
    uint32_t *whole = malloc((n + 1) * 4);
    size_t *woffs = malloc((n + 1) * sizeof *woffs);
    size_t nw;
    bpe_error err;
    CHECK(!bpe_encode(v, text, n, BPE_SPECIAL_ALLOW, whole, woffs, n, &nw, &err), "%s", err.msg);
    static const size_t chunks[] = {61, 4093, 65537, 1 << 20, 3 << 20};
    for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
        for (int threads = 1; threads <= 2; threads++) {
            collect col = {malloc((n + 1) * 4), malloc((n + 1) * 8), 0, n + 1};
            bpe_stream *st = bpe_stream_new(v, BPE_SPECIAL_ALLOW | BPE_OFFSETS, threads, &err);
            int rc = 0;
            for (size_t i = 0; i < n && !rc; i += chunks[c])
                rc = bpe_stream_write(st, text + i, n - i < chunks[c] ? n - i : chunks[c], collect_sink, &col, &err);
            if (!rc) rc = bpe_stream_finish(st, collect_sink, &col, &err);
            CHECK(rc == 0, "stream: %s", err.msg);
            CHECK(same_ids(whole, nw, col.ids, col.n), "chunk %zu threads %d: %zu vs %zu tokens", chunks[c],
                  threads, col.n, nw);
            int offs_ok = col.n == nw;
            for (size_t i = 0; offs_ok && i < nw; i++) offs_ok = col.offs[i] == woffs[i];
            CHECK(offs_ok, "chunk %zu: offsets differ", chunks[c]);
            bpe_stream_free(st);
            free(col.ids);
            free(col.offs);
        }
    }
    /* Offsets: each token's bytes are at its offset. */
    int ok = 1;
    for (size_t i = 0; i < nw && ok; i++) {
        size_t len;
        const char *b = bpe_token_bytes(v, whole[i], &len);
        ok = woffs[i] + len <= n && !memcmp(text + woffs[i], b, len) &&
             (i + 1 == nw || woffs[i + 1] == woffs[i] + len);
    }
    CHECK(ok, "offsets do not point at the tokens' bytes");
    free(whole);
    free(woffs);
}

typedef struct { const bpe *v; const char *text; size_t n; uint32_t *ids; size_t nt; } job;

static void *run_job(void *arg) {
    job *j = arg;
    bpe_error err;
    bpe_encode(j->v, j->text, j->n, BPE_SPECIAL_ALLOW, j->ids, NULL, j->n, &j->nt, &err);
    return NULL;
}

static void test_threads(const bpe *v, const char *text, size_t n) {
    uint32_t *one = malloc((n + 1) * 4), *two = malloc((n + 1) * 4);
    size_t n1, n2;
    bpe_error err;
    CHECK(!bpe_encode(v, text, n, BPE_SPECIAL_ALLOW, one, NULL, n, &n1, &err), "%s", err.msg);
    /* Any number of threads: the text is cut into parts of falling size,
     * taken by whichever thread is free, and put back in order. */
    for (int threads = 2; threads <= 7; threads += 5) {
        size_t *offs = malloc((n + 1) * sizeof *offs), *offs1 = malloc((n + 1) * sizeof *offs1);
        CHECK(!bpe_encode_parallel(v, text, n, BPE_SPECIAL_ALLOW, threads, two, NULL, n, &n2, &err), "%s", err.msg);
        CHECK(same_ids(one, n1, two, n2), "parallel, %d threads: %zu vs %zu tokens", threads, n2, n1);
        CHECK(!bpe_encode(v, text, n, BPE_SPECIAL_ALLOW, two, offs1, n, &n2, &err), "%s", err.msg);
        CHECK(!bpe_encode_parallel(v, text, n, BPE_SPECIAL_ALLOW, threads, two, offs, n, &n2, &err), "%s", err.msg);
        CHECK(n2 == n1 && !memcmp(offs, offs1, n1 * sizeof *offs), "parallel offsets, %d threads", threads);
        free(offs);
        free(offs1);
    }
    /* Two threads sharing one vocabulary at once. */
    job jobs[2] = {{v, text, n, malloc((n + 1) * 4), 0}, {v, text, n, malloc((n + 1) * 4), 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, run_job, &jobs[i]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        CHECK(same_ids(one, n1, jobs[i].ids, jobs[i].nt), "shared vocabulary, thread %d", i);
        free(jobs[i].ids);
    }
    free(one);
    free(two);
}

/* ---- round trips ------------------------------------------------------------- */

static void test_round_trip(const bpe *v, int rounds) {
    uint8_t buf[512];
    uint32_t ids[512];
    char back[512 * 128];
    static const char *const alphabet[] = {"a", "Z", " ", "  ", "\n", "\r\n", "\t", "'", "'s", "7",
                                           "\xc3\xa9", "\xe3\x80\x80", "\xc2\xa0", "\xf0\x9f\x98\x80",
                                           "\xcc\x81", "\xff", "\xe2\x82", "\xed\xa0\x80", "=", "<|endoftext|>"};
    int bad = 0;
    for (int r = 0; r < rounds; r++) {
        size_t n = 0, len = rnd() % 200;
        while (n < len) {
            if (rnd() % 2) {
                buf[n++] = (uint8_t)rnd();
            } else {
                const char *a = alphabet[rnd() % (sizeof alphabet / sizeof *alphabet)];
                size_t l = strlen(a);
                if (n + l > sizeof buf) break;
                memcpy(buf + n, a, l);
                n += l;
            }
        }
        size_t nt = encode(v, buf, n, BPE_SPECIAL_TEXT, ids), nb;
        bpe_error err;
        int rc = bpe_decode(v, ids, nt, back, sizeof back, &nb, &err);
        if (rc || nb != n || memcmp(back, buf, n)) bad++;
    }
    CHECK(bad == 0, "%d of %d random byte strings did not round-trip", bad, rounds);
    /* Bad ids. */
    uint32_t bad_ids[3] = {31373, 50257, 0};
    size_t nb;
    bpe_error err;
    int rc = bpe_decode(v, bad_ids, 3, back, sizeof back, &nb, &err);
    CHECK(rc == BPE_ERR_ID && err.offset == 1, "decode of 50257: rc %d", rc);
}

/* ---- loading files ------------------------------------------------------------ */

static void write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    fputs(s, f);
    fclose(f);
}

static void expect_load_error(const char *enc, const char *merges, const char *want) {
    bpe_error err = {{0}, 0};
    bpe *v = bpe_load_mem(enc, strlen(enc), "e.json", merges, strlen(merges), "m.bpe", &err);
    CHECK(!v && strstr(err.msg, want), "want \"%s\", got \"%s\"", want, v ? "(loaded)" : err.msg);
    bpe_free(v);
}

static void test_load(const char *text, size_t n) {
    bpe_error err;
    /* NULL arguments are refused, never dereferenced */
    err.msg[0] = 0;
    CHECK(bpe_load(NULL, NULL, &err) == NULL && strstr(err.msg, "NULL path"), "bpe_load(NULL, NULL): '%s'", err.msg);
    CHECK(bpe_vocab_size(NULL) == 0 && bpe_eot_id(NULL) == -1 && bpe_max_token_bytes(NULL) == 0,
          "accessors of a NULL vocabulary");
    bpe *v = bpe_load("gpt2_weights/encoder.json", "gpt2_weights/vocab.bpe", &err);
    CHECK(v != NULL, "load: %s", err.msg);
    if (!v) return;
    CHECK(bpe_vocab_size(v) == 50257 && bpe_eot_id(v) == 50256, "vocab %zu", bpe_vocab_size(v));
    uint32_t *a = malloc((n + 1) * 4), *b = malloc((n + 1) * 4);
    size_t na = encode(v, text, n, BPE_SPECIAL_ALLOW, a), nb = encode(bpe_gpt2(), text, n, BPE_SPECIAL_ALLOW, b);
    CHECK(same_ids(a, na, b, nb), "loaded and built-in vocabularies differ");
    free(a);
    free(b);
    bpe_free(v);

    /* GPT-2 with the ids of "!" (0) and the space (220) swapped: a byte
     * numbered 0 before a run of letters, which merge_run once took for the
     * start of the run. The same tokens come out, their ids swapped. */
    size_t json_n;
    char *json = read_file("gpt2_weights/encoder.json", &json_n);
    static const char bang_was[] = "{\"!\": 0, ", space_was[] = "\"\\u0120\": 220,";
    const char *bang = json ? strstr(json, bang_was) : NULL, *space = json ? strstr(json, space_was) : NULL;
    CHECK(bang && space && bang < space, "encoder.json: \"!\" or the space not where expected");
    if (bang && space && bang < space) {
        char *sw = malloc(json_n + 16);
        size_t at = 0, after_bang = (size_t)(bang - json) + strlen(bang_was);
        size_t after_space = (size_t)(space - json) + strlen(space_was);
        at += (size_t)sprintf(sw, "{\"!\": 220, ");
        memcpy(sw + at, json + after_bang, (size_t)(space - json) - after_bang);
        at += (size_t)(space - json) - after_bang;
        at += (size_t)sprintf(sw + at, "\"\\u0120\": 0,");
        memcpy(sw + at, json + after_space, json_n - after_space);
        at += json_n - after_space;
        size_t merges_n;
        char *merges = read_file("gpt2_weights/vocab.bpe", &merges_n);
        bpe *swapped = merges ? bpe_load_mem(sw, at, "swapped.json", merges, merges_n, "vocab.bpe", &err) : NULL;
        CHECK(swapped != NULL, "swapped vocabulary: %s", err.msg);
        char piece[801] = " ";
        for (int i = 1; i < 801; i++) piece[i] = (char)('a' + (i * i * 7 + i) % 26);
        const char *texts[] = {piece, text};
        size_t lens[] = {sizeof piece, n};
        for (int k = 0; swapped && k < 2; k++) {
            uint32_t *x = malloc((lens[k] + 1) * 4), *y = malloc((lens[k] + 1) * 4);
            size_t nx = encode(swapped, texts[k], lens[k], BPE_SPECIAL_ALLOW, x),
                   ny = encode(bpe_gpt2(), texts[k], lens[k], BPE_SPECIAL_ALLOW, y);
            for (size_t i = 0; i < ny; i++) y[i] = y[i] == 0 ? 220 : y[i] == 220 ? 0 : y[i];
            CHECK(same_ids(x, nx, y, ny), "swapped ids, text %d: %zu vs %zu tokens", k, nx, ny);
            free(x);
            free(y);
        }
        bpe_free(swapped);
        free(merges);
        free(sw);
    }
    free(json);

    /* A tiny vocabulary: the 256 bytes and one merge. */
    char *enc = malloc(1 << 16), *p = enc;
    p += sprintf(p, "{");
    for (int i = 0; i < 256; i++) {
        int cp = (i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE ? i : -1;
        if (cp < 0) {
            int k = 0;
            for (int j = 0; j < i; j++)
                if (!((j >= 0x21 && j <= 0x7E) || (j >= 0xA1 && j <= 0xAC) || j >= 0xAE)) k++;
            cp = 0x100 + k;
        }
        p += sprintf(p, "%s\"\\u%04x\": %d", i ? ", " : "", cp, i);
    }
    char good[1 << 16], tmp[1 << 16];
    sprintf(good, "%s, \"ab\": 256}", enc);
    bpe *tiny = bpe_load_mem(good, strlen(good), "e.json", "#version: 0.2\na b\n", 18, "m.bpe", &err);
    CHECK(tiny != NULL, "tiny vocabulary: %s", err.msg);
    if (tiny) {
        uint32_t ids[8];
        size_t nt = encode(tiny, "abab", 4, 0, ids);
        CHECK(nt == 2 && ids[0] == 256 && ids[1] == 256, "tiny encode: %zu", nt);
        bpe_free(tiny);
    }
    expect_load_error("{\"a\": 1,", "", "e.json:1:");
    sprintf(tmp, "%s, \"ab\": 255}", enc);
    expect_load_error(tmp, "a b\n", "duplicate id 255");
    sprintf(tmp, "%s, \"ab\": 256}", enc);
    expect_load_error(tmp, "#version: 0.2\na b\nab\n", "m.bpe:3:");
    expect_load_error(tmp, "#version: 0.2\na b\nab c\n", "m.bpe:3: the merge");
    sprintf(tmp, "%s, \"ab\": 256, \"xyz\": 257}", enc);
    expect_load_error(tmp, "a b\nxy z\n", "m.bpe:2: unknown token \"xy\"");
    sprintf(tmp, "%s, \"ab\": 257}", enc);
    expect_load_error(tmp, "a b\n", "out of range");
    expect_load_error("{\"a\": 0}", "", "no token for byte 0x00");
    expect_load_error("{\"a\": 2097151}", "", "id too large");
    write_text("/dev/null", "");
    v = bpe_load("/nonexistent/encoder.json", "gpt2_weights/vocab.bpe", &err);
    CHECK(!v && strstr(err.msg, "/nonexistent/encoder.json"), "missing file: %s", err.msg);
    free(enc);
}

int main(void) {
    const bpe *v = bpe_gpt2();
    size_t n;
    char *text = read_file("tests/fixtures/tokenizer/english_prose.txt", &n);
    if (!text) {
        fprintf(stderr, "test_bpe: run from the repository root\n");
        return 1;
    }
    test_vectors(v);

    /* A mixed text for the structural properties: every fixture, joined. */
    static const char *const names[] = {"english_prose", "code_c", "lang_mixed", "emoji", "contractions",
                                        "digits", "crlf", "invalid_utf8", "decomposed", "lang_japanese"};
    size_t cap = 1 << 20, len = 0;
    char *mixed = malloc(cap);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[256];
        size_t m;
        snprintf(path, sizeof path, "tests/fixtures/tokenizer/%s.txt", names[i]);
        char *t = read_file(path, &m);
        CHECK(t != NULL, "%s missing", path);
        if (!t) continue;
        if (len + m > cap) m = cap - len;
        memcpy(mixed + len, t, m);
        len += m;
        free(t);
    }
    test_safe_cut(v, mixed, len < 6000 ? len : 6000);
    /* Cuts after non-ASCII characters, and next to non-ASCII whitespace. */
    static const char *const cut_names[] = {"lang_chinese", "lang_japanese", "lang_devanagari", "whitespace",
                                            "invalid_utf8", "emoji"};
    for (size_t i = 0; i < sizeof cut_names / sizeof *cut_names; i++) {
        char path[256];
        size_t m;
        snprintf(path, sizeof path, "tests/fixtures/tokenizer/%s.txt", cut_names[i]);
        char *t = read_file(path, &m);
        CHECK(t != NULL, "%s missing", path);
        if (t) test_safe_cut(v, t, m < 20000 ? m : 20000);
        free(t);
    }
    {   /* NBSP and U+3000 before a newline are whitespace: no cut there. */
        static const char ws[] = "a\xc2\xa0\nb\xe3\x80\x80\n\xe3\x80\x82\nc";
        CHECK(bpe_safe_cut(v, ws, 5, 0) == 0 && bpe_safe_cut(v, ws, 8, 0) == 0, "cut after non-ASCII whitespace");
        CHECK(bpe_safe_cut(v, ws, sizeof ws - 2, 0) == 12, "no cut after U+3002");
        test_safe_cut(v, ws, sizeof ws - 1);
    }
    {   /* Long runs of one class are passed over in blocks: the cuts at
         * their ends are still found, from every end of the text. */
        static char run[1400];
        memset(run, 'a', 1000), memset(run + 1000, '7', 300), memset(run + 1300, 'B', 100);
        size_t bad = 0;
        for (size_t p = 0; p <= sizeof run; p++)
            bad += bpe_safe_cut(v, run, p, 0) != (p > 1300 ? 1300 : p > 1000 ? 1000 : 0);
        CHECK(bad == 0, "%zu ends of a text of three long runs give the wrong last cut", bad);
    }
    test_round_trip(v, getenv("SANITIZED") && !strcmp(getenv("SANITIZED"), "1") ? 500 : 3000);
    test_load(mixed, len);

    /* Large: several MB so that streams cut and threads split. */
    size_t big_n = 3u << 20;
    char *big = malloc(big_n);
    for (size_t i = 0; i < big_n; i += len) memcpy(big + i, mixed, big_n - i < len ? big_n - i : len);
    test_stream(v, big, big_n);
    test_threads(v, big, big_n);

    /* Pieces longer than a stream block, held whole while the stream waits
     * for their end: random letters, then a run of one letter. */
    size_t ln = 0, long_n = len + (3u << 19) + len + (5u << 18) + len;
    char *longp = malloc(long_n);
    memcpy(longp + ln, mixed, len), ln += len;
    for (size_t i = 0; i < 3u << 19; i++) longp[ln++] = (char)('a' + rnd() % 26);
    memcpy(longp + ln, mixed, len), ln += len;
    memset(longp + ln, 'a', 5u << 18), ln += 5u << 18;
    memcpy(longp + ln, mixed, len), ln += len;
    test_stream(v, longp, long_n);
    free(longp);

    free(big);
    free(mixed);
    free(text);
    if (failures) {
        fprintf(stderr, "test_bpe: %d checks failed\n", failures);
        return 1;
    }
    printf("test_bpe: all checks passed\n");
    return 0;
}
