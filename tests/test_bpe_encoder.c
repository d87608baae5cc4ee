/* test_bpe_encoder.c - the caller-kept encoder (bpe_encoder_*): one
 * encoder, many calls, each compared with bpe_encode on the same arguments
 * (return code, count, ids, offsets, error message and offset; nothing
 * written past the buffers' cap):
 *   - texts of every kind mixed (the tokenizer fixtures cut anywhere, so
 *     that some start or end inside a character; random words in several
 *     scripts; numbers; rules of dashes of 2-300 bytes, which use the long
 *     slots; <|endoftext|> and prefixes of it; invalid bytes), from one byte
 *     to hundreds of kilobytes, with flags, offsets and buffer sizes that
 *     change from call to call;
 *   - texts of tens of thousands of distinct words that are not tokens, so
 *     that the cache fills and evicts, then the earlier texts again;
 *   - errors between good calls (a special token under BPE_SPECIAL_ERROR,
 *     invalid UTF-8 under BPE_STRICT, bad arguments, and, in a build with
 *     fault injection, running out of memory inside a call);
 *   - that the cache is kept: a slot the first call filled, altered through
 *     the internals (this file includes bpe.c), changes what the next call
 *     gives, for a text far below the 64 KB at which bpe_encode makes a
 *     cache of its own;
 *   - bpe_encoder_new without a vocabulary, and out of memory. */
#include "../bpe/bpe.c"
#include "../bpe/merge.h"

#include "check.h"

#define RND_SEED 0x8BADF00D5EEDull
#include "rnd.h"

static unsigned char *fixtures;
static size_t fixtures_len;

/* The tokenizer fixtures' texts, one after the other. */
static void load_fixtures(void) {
    static const char *names[] = {"code_c", "code_js", "code_python", "contractions", "crlf", "data_json",
                                  "decomposed", "digits", "emoji", "english_prose", "invalid_utf8",
                                  "lang_arabic", "lang_chinese", "lang_cyrillic", "lang_devanagari",
                                  "lang_greek", "lang_hebrew", "lang_japanese", "lang_korean", "lang_mixed",
                                  "lang_thai", "long_base64", "long_dashes_mixed", "long_eq", "minified_js",
                                  "special_allow_doc", "whitespace"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        char path[256];
        size_t n;
        snprintf(path, sizeof path, "tests/fixtures/tokenizer/%s.txt", names[k]);
        unsigned char *b = slurp(path, &n);
        if (!b) {
            fprintf(stderr, "cannot read %s (run from the source tree)\n", path);
            exit(2);
        }
        fixtures = realloc(fixtures, fixtures_len + n);
        if (!fixtures) exit(2);
        memcpy(fixtures + fixtures_len, b, n);
        fixtures_len += n;
        free(b);
    }
}

typedef struct {
    unsigned char *b;
    size_t n, cap;
} text;

static void put(text *t, const void *p, size_t n) {
    if (t->n + n > t->cap) {
        t->cap = (t->n + n) * 2;
        t->b = realloc(t->b, t->cap);
        if (!t->b) exit(2);
    }
    memcpy(t->b + t->n, p, n);
    t->n += n;
}

static void put_str(text *t, const char *s) { put(t, s, strlen(s)); }

/* A word that is most likely not a token: random letters. */
static void put_word(text *t, int distinct) {
    static const char *cyr[] = {"\xD0\xB0", "\xD0\xB1", "\xD0\xB2", "\xD0\xB3", "\xD0\xB4", "\xD0\xB5",
                                "\xD0\xBA", "\xD0\xBB", "\xD0\xBC", "\xD0\xBD", "\xD0\xBE", "\xD0\xBF"};
    static const char *cjk[] = {"\xE4\xB8\x80", "\xE4\xBA\xBA", "\xE5\xA4\xA7", "\xE5\xAD\x90", "\xE6\x97\xA5",
                                "\xE6\x9C\xAC", "\xE7\x9A\x84", "\xE8\xAA\x9E", "\xE3\x81\xAE", "\xE3\x81\x82"};
    if (rnd() % 4) put_str(t, " ");
    unsigned kind = rnd() % 8, len = 2 + rnd() % (distinct ? 12 : 5);
    for (unsigned i = 0; i < len; i++) {
        if (kind == 0) put_str(t, cyr[rnd() % 12]);
        else if (kind == 1) put_str(t, cjk[rnd() % 10]);
        else if (kind == 2) put(t, &"0123456789"[rnd() % 10], 1);
        else {
            char c = (char)((i == 0 && kind == 3 ? 'A' : 'a') + rnd() % (distinct ? 26 : 6));
            put(t, &c, 1);
        }
    }
}

/* A text of about n bytes, of a random mix. */
static void make_text(text *t, size_t n, int distinct) {
    t->n = 0;
    while (t->n < n) {
        unsigned k = rnd() % 20;
        if (k < 8) {
            put_word(t, distinct);
        } else if (k < 12) {  /* a slice of the fixtures, cut anywhere */
            size_t at = rnd() % fixtures_len, m = 1 + rnd() % 400;
            if (m > fixtures_len - at) m = fixtures_len - at;
            put(t, fixtures + at, m);
        } else if (k == 12) {  /* a rule of dashes or equals signs, long slots and long pieces */
            size_t m = 2 + rnd() % (rnd() % 8 ? 60 : 300);
            char c = "-=*~"[rnd() % 4];
            put_str(t, "\n");
            for (size_t i = 0; i < m; i++) put(t, &c, 1);
            put_str(t, "\n");
        } else if (k == 13) {
            put_str(t, rnd() % 2 ? "<|endoftext|>" : "<|endo");
        } else if (k == 14) {  /* invalid UTF-8 */
            static const char *bad[] = {"\xFF", "\xC3", "\x80\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80"};
            put_str(t, bad[rnd() % 5]);
        } else if (k == 15) {  /* a number */
            size_t m = 1 + rnd() % 40;
            put_str(t, " ");
            for (size_t i = 0; i < m; i++) put(t, &"0123456789"[rnd() % 10], 1);
        } else if (k == 16) {
            put_str(t, rnd() % 2 ? "\n\n    " : "\t\t  \n");
        } else {
            put_str(t, rnd() % 2 ? " the" : ", and");
        }
    }
}

#define SENTINEL 0xA5A5A5A5u

static size_t calls, compared_tokens;

/* One call through the encoder and one through bpe_encode, with the same
 * arguments: everything observable must be the same. */
static void compare(bpe_encoder *e, const bpe *v, const unsigned char *s, size_t len, int flags, int with_offsets,
                    size_t cap, const char *what) {
    size_t room = cap + 16;  /* past cap: must stay untouched */
    uint32_t *ia = malloc(room * sizeof *ia), *ib = malloc(room * sizeof *ib);
    size_t *oa = malloc(room * sizeof *oa), *ob = malloc(room * sizeof *ob);
    if (!ia || !ib || !oa || !ob) exit(2);
    for (size_t i = 0; i < room; i++) ia[i] = ib[i] = SENTINEL, oa[i] = ob[i] = SENTINEL;
    size_t na = 12345, nb = 12345;
    bpe_error ea = {{0}, 0}, eb = {{0}, 0};
    int ra = bpe_encoder_encode(e, s, len, flags, cap ? ia : NULL, with_offsets ? oa : NULL, cap, &na, &ea);
    int rb = bpe_encode(v, s, len, flags, cap ? ib : NULL, with_offsets ? ob : NULL, cap, &nb, &eb);
    calls++;
    CHECK(ra == rb, "%s: encoder returns %d, bpe_encode %d (len %zu, flags %d)", what, ra, rb, len, flags);
    CHECK(na == nb, "%s: encoder counts %zu tokens, bpe_encode %zu (len %zu, flags %d)", what, na, nb, len, flags);
    if (ra || rb) {
        CHECK(!strcmp(ea.msg, eb.msg) && ea.offset == eb.offset, "%s: errors differ: '%s' at %llu, '%s' at %llu",
              what, ea.msg, (unsigned long long)ea.offset, eb.msg, (unsigned long long)eb.offset);
    } else {
        size_t m = na < cap ? na : cap, first = m;
        compared_tokens += m;
        for (size_t i = 0; i < m && first == m; i++)
            if (ia[i] != ib[i] || (with_offsets && oa[i] != ob[i])) first = i;
        CHECK(first == m, "%s: token %zu differs: %u at %zu, bpe_encode %u at %zu (len %zu, flags %d, cap %zu)",
              what, first, ia[first], oa[first], ib[first], ob[first], len, flags, cap);
    }
    /* (between the count and cap, either may have written what it likes) */
    for (size_t i = cap; i < room; i++)
        CHECK(ia[i] == SENTINEL && oa[i] == SENTINEL, "%s: the encoder wrote past cap %zu", what, cap);
    free(ia);
    free(ib);
    free(oa);
    free(ob);
}

/* A random call's flags, offsets and buffer. */
static void compare_random(bpe_encoder *e, const bpe *v, const unsigned char *s, size_t len, const char *what) {
    static const int modes[] = {BPE_SPECIAL_ERROR, BPE_SPECIAL_ALLOW, BPE_SPECIAL_TEXT};
    int flags = modes[rnd() % 3] | (rnd() % 4 == 0 ? BPE_STRICT : 0);
    unsigned k = rnd() % 8;
    size_t cap = k == 0 ? 0 : k == 1 ? len / 3 : len;
    compare(e, v, s, len, flags, rnd() % 4 == 0, cap, what);
}

/* The number of tokens the encoder's cache keeps for piece p[0..n) (0:
 * none), or with `alter`, whether their first could be made `id`. */
static size_t find_slot(bpe_encoder *e, const char *p, size_t n, int alter, uint32_t id) {
    uint32_t tok[CACHE_TOKENS];
    uint64_t h = bpe_hash_bytes((const uint8_t *)p, n);
    if (alter) return (size_t)bpe_cache_alter(e->cache, (const uint8_t *)p, n, h, id);
    return bpe_cache_kept(e->cache, (const uint8_t *)p, n, h, tok);
}

static void test_kept(const bpe *v) {
    bpe_error err;
    bpe_encoder *e = bpe_encoder_new(v, &err);
    CHECK(e, "bpe_encoder_new: %s", err.msg);
    if (!e) return;
    /* " zqxjvkw" is no token: merged, and cached even in a text of 9 bytes */
    static const char word[] = " zqxjvkw", txt[] = "a zqxjvkw";
    uint32_t first[16], again[16];
    size_t n1 = 0, n2 = 0;
    CHECK(!bpe_encoder_encode(e, txt, 9, 0, first, NULL, 16, &n1, &err), "%s", err.msg);
    size_t kept = find_slot(e, word, 8, 0, 0);
    CHECK(kept == n1 - 1, "the piece of a short text is not in the encoder's cache");
    if (kept == n1 - 1) {
        CHECK(find_slot(e, word, 8, 1, 50000), "the kept piece cannot be altered");  /* the next call reads it */
        CHECK(!bpe_encoder_encode(e, txt, 9, 0, again, NULL, 16, &n2, &err), "%s", err.msg);
        CHECK(n2 == n1 && again[1] == 50000, "the next call did not use the kept cache (token %u, was %u)",
              again[1], first[1]);
        CHECK(!bpe_encode(v, txt, 9, 0, again, NULL, 16, &n2, &err) && again[1] == first[1],
              "bpe_encode saw another call's cache");
    }
    bpe_encoder_free(e);
}

static void test_args(const bpe *v) {
    bpe_error err = {{0}, 0};
    CHECK(!bpe_encoder_new(NULL, &err), "bpe_encoder_new(NULL) made an encoder");
    CHECK(strstr(err.msg, "bad argument"), "bpe_encoder_new(NULL): '%s'", err.msg);
    CHECK(!bpe_encoder_new(NULL, NULL), "bpe_encoder_new(NULL, NULL) made an encoder");
    uint32_t ids[4];
    size_t n;
    CHECK(bpe_encoder_encode(NULL, "ab", 2, 0, ids, NULL, 4, &n, &err) == BPE_ERR_ARG, "a NULL encoder was taken");
    bpe_encoder_free(NULL);
    bpe_encoder *e = bpe_encoder_new(v, &err);
    if (!e) return;
    CHECK(bpe_encoder_encode(e, "ab", 2, 3, ids, NULL, 4, &n, &err) == BPE_ERR_ARG, "flags 3 were taken");
    CHECK(bpe_encoder_encode(e, "ab", 2, BPE_OFFSETS, ids, NULL, 4, &n, &err) == BPE_ERR_ARG,
          "BPE_OFFSETS was taken");
    CHECK(bpe_encoder_encode(e, NULL, 2, 0, ids, NULL, 4, &n, &err) == BPE_ERR_ARG, "NULL text was taken");
    CHECK(!bpe_encoder_encode(e, NULL, 0, 0, NULL, NULL, 0, &n, &err) && n == 0, "empty text");
    compare(e, v, (const unsigned char *)"hello world", 11, 0, 1, 11, "after bad arguments");
    bpe_encoder_free(e);
}

#ifdef GPT2IN_FAULTS
/* The Nth allocation fails (and, sticky, every one after it), for every N:
 * bpe_encoder_new fails cleanly or works; and an encoder whose call runs
 * out of memory in a long piece gives the right ids in the calls after. */
static void test_nomem(const bpe *v) {
    long nomem = 0;
    for (int sticky = 0; sticky <= 1; sticky++)
        for (long n = 1; n < 100; n++) {
            bpe_error err = {{0}, 0};
            gpt2in_fault_set(n, sticky);
            bpe_encoder *e = bpe_encoder_new(v, &err);
            gpt2in_fault_set(0, 0);
            if (!e) {
                CHECK(strstr(err.msg, "out of memory"), "bpe_encoder_new, allocation %ld failing: '%s'", n, err.msg);
                nomem++;
                continue;
            }
            bpe_encoder_free(e);
            break;
        }
    CHECK(nomem >= 2, "bpe_encoder_new never ran out of memory");

    bpe_error err;
    bpe_encoder *e = bpe_encoder_new(v, &err);
    if (!e) return;
    text t = {0};
    make_text(&t, 3000, 1);
    size_t at = t.n;
    for (int i = 0; i < 3000; i++) put(&t, &"0123456789"[rnd() % 10], 1);  /* one piece: its own buffers */
    make_text(&t, t.n + 3000, 1);
    uint32_t *ids = malloc(t.n * sizeof *ids);
    long failed = 0;
    for (long n = 1; n < 20; n++) {
        size_t m;
        gpt2in_fault_set(n, 1);
        int rc = bpe_encoder_encode(e, t.b, t.n, BPE_SPECIAL_TEXT, ids, NULL, t.n, &m, &err);
        gpt2in_fault_set(0, 0);
        CHECK(rc == 0 || rc == BPE_ERR_NOMEM, "out of memory in a call: %d", rc);
        failed += rc == BPE_ERR_NOMEM;
        compare(e, v, t.b, t.n, BPE_SPECIAL_TEXT, 0, t.n, "after running out of memory");
        compare(e, v, t.b, at, BPE_SPECIAL_TEXT, 1, at, "after running out of memory");
    }
    CHECK(failed > 0, "a long piece never ran out of memory");
    free(ids);
    free(t.b);
    bpe_encoder_free(e);
}
#endif

int main(void) {
    const bpe *v = bpe_gpt2();
    load_fixtures();
    test_args(v);
    test_kept(v);

    bpe_error err;
    bpe_encoder *e = bpe_encoder_new(v, &err);
    if (!e) {
        fprintf(stderr, "bpe_encoder_new: %s\n", err.msg);
        return 1;
    }
    /* texts kept to come back to after the cache has been filled */
    enum { KEPT = 8 };
    text kept[KEPT] = {{0}};
    text t = {0};
    for (int round = 0; round < 300; round++) {
        unsigned k = rnd() % 100;
        size_t len = k < 50 ? 1 + rnd() % 200 : k < 90 ? 200 + rnd() % 20000 : 64000 + rnd() % 200000;
        make_text(&t, len, rnd() % 2);
        compare_random(e, v, t.b, t.n, "mixed texts");
        if (round % 40 == 0) {
            text *s = &kept[round / 40 % KEPT];
            s->n = 0;
            put(s, t.b, t.n);
        }
    }
    /* the cache fills and evicts: 60,000 distinct words, twice over its slots */
    make_text(&t, 600000, 1);
    compare(e, v, t.b, t.n, BPE_SPECIAL_TEXT, 0, t.n, "many distinct words");
    compare(e, v, t.b, t.n, BPE_SPECIAL_ALLOW, 1, t.n, "many distinct words, again");
    for (int i = 0; i < KEPT; i++)
        if (kept[i].n) compare_random(e, v, kept[i].b, kept[i].n, "earlier texts after evictions");

    /* errors between good calls */
    static const char special[] = "some text <|endoftext|> more text and wordsxyzzy";
    static const char bad_utf8[] = "caf\xC3\x28 and morewordsxyzzy";
    for (int i = 0; i < 20; i++) {
        make_text(&t, 1 + rnd() % 3000, 1);
        compare(e, v, (const unsigned char *)special, sizeof special - 1, BPE_SPECIAL_ERROR, 0, 100, "special");
        compare_random(e, v, t.b, t.n, "after an error");
        compare(e, v, (const unsigned char *)bad_utf8, sizeof bad_utf8 - 1, BPE_STRICT, 1, 100, "strict");
        compare(e, v, (const unsigned char *)bad_utf8, sizeof bad_utf8 - 1, 0, 1, 100, "not strict");
        compare_random(e, v, t.b, t.n, "after an error");
    }
    for (int i = 0; i < KEPT; i++) free(kept[i].b);
    free(t.b);
    bpe_encoder_free(e);
#ifdef GPT2IN_FAULTS
    test_nomem(v);
#endif
    free(fixtures);
    printf("bpe_encoder: %zu calls, %zu tokens, equal to bpe_encode's%s\n", calls, compared_tokens,
           failures ? " NOT" : "");
    return failures ? 1 : 0;
}
