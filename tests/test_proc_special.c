/* test_proc_special.c - under BPE_SPECIAL_ERROR a part of a text is
 * searched for special tokens only where their first two bytes stand side
 * by side (parallel.c looks for those pairs 64 or 128 bytes a step): a
 * special token at every place across those steps' edges, at a part's
 * first and last bytes, after pairs and prefixes that are no token (few,
 * and more than the 16 places looked at one by one), and those alone, through
 * streams of 1 and 2 threads (and a few through bpe_encode_parallel), with
 * GPT-2 and with a vocabulary of three special tokens (two pairs: "<|"
 * starts two of them). An error is reported at the token's first byte; a
 * text without one encodes as under BPE_SPECIAL_TEXT. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "check.h"
#include "collect.h"

#define N (100u << 10)  /* more than a part's smallest (64 KB): the parts' path */
#define NP (600u << 10) /* bpe_encode_parallel shares 512 KB and more */

/* A byte-level vocabulary: the 256 bytes, no merges, and three added
 * special tokens. */
static bpe *three_specials(void) {
    static char json[16384];
    size_t o = 0;
    o += (size_t)snprintf(json + o, sizeof json - o,
                          "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"normalizer\": null, "
                          "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
                          "\"use_regex\": true}, \"post_processor\": null, \"decoder\": {\"type\": \"ByteLevel\"}, "
                          "\"added_tokens\": [{\"id\": 256, \"content\": \"<|endoftext|>\", \"special\": true}, "
                          "{\"id\": 257, \"content\": \"<|sep|>\", \"special\": true}, "
                          "{\"id\": 258, \"content\": \"[MASK]\", \"special\": true}], "
                          "\"model\": {\"type\": \"BPE\", \"dropout\": null, \"vocab\": {");
    /* GPT-2's byte-to-character map */
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        unsigned cp = printable ? (unsigned)b : 256u + (unsigned)n++;
        char ch[4];
        if (cp < 0x80) ch[0] = (char)cp, ch[1] = 0;
        else ch[0] = (char)(0xC0 | cp >> 6), ch[1] = (char)(0x80 | (cp & 63)), ch[2] = 0;
        o += (size_t)snprintf(json + o, sizeof json - o, "%s\"%s%s\": %d", b ? ", " : "",
                              cp == '"' || cp == '\\' ? "\\" : "", ch, b);
    }
    o += (size_t)snprintf(json + o, sizeof json - o, "}, \"merges\": []}}");
    bpe_error err;
    bpe *v = bpe_load_hf_json_mem(json, o, "three.json", &err);
    CHECK(v, "the vocabulary of three special tokens: %s", v ? "" : err.msg);
    return v;
}

/* text[0..len) under BPE_SPECIAL_ERROR, through streams of 1 and 2
 * threads (with parallel, bpe_encode_parallel too): each must fail at
 * `want`, or succeed with the ids of BPE_SPECIAL_TEXT when want is
 * SIZE_MAX. */
static void check_text(const bpe *v, const char *name, const char *text, size_t len, size_t want, int parallel) {
    static uint32_t ids[NP + 1], ref[NP + 1];
    size_t nr = 0, nt = 0;
    bpe_error err;
    int rc;
    if (want == SIZE_MAX)
        CHECK(!bpe_encode(v, text, len, BPE_SPECIAL_TEXT, ref, NULL, len, &nr, &err), "%s: %s", name, err.msg);
    if (parallel) {
        rc = bpe_encode_parallel(v, text, len, BPE_SPECIAL_ERROR, 2, ids, NULL, len, &nt, &err);
        if (want == SIZE_MAX)
            CHECK(rc == 0 && nt == nr && !memcmp(ids, ref, nr * sizeof *ids), "%s, bpe_encode_parallel: rc %d", name,
                  rc);
        else
            CHECK(rc == BPE_ERR_SPECIAL && err.offset == want, "%s, bpe_encode_parallel: rc %d at %llu, want %zu",
                  name, rc, (unsigned long long)err.offset, want);
    }
    for (int threads = 1; threads <= 2; threads++) {
        collect col = {ids, NULL, 0, NP + 1};
        bpe_stream *st = bpe_stream_new(v, BPE_SPECIAL_ERROR, threads, &err);
        rc = bpe_stream_write(st, text, len, collect_sink, &col, &err);
        if (!rc) rc = bpe_stream_finish(st, collect_sink, &col, &err);
        if (want == SIZE_MAX)
            CHECK(rc == 0 && col.n == nr && !memcmp(ids, ref, nr * sizeof *ids), "%s, stream of %d: rc %d", name,
                  threads, rc);
        else
            CHECK(rc == BPE_ERR_SPECIAL && err.offset == want, "%s, stream of %d: rc %d at %llu, want %zu", name,
                  threads, rc, (unsigned long long)err.offset, want);
        bpe_stream_free(st);
    }
}

int main(void) {
    size_t demo_n;
    unsigned char *demo = slurp("tools/demo_corpus.txt", &demo_n);
    if (!demo) {
        fprintf(stderr, "skipped: run from the source folder (tools/demo_corpus.txt)\n");
        return 77;
    }
    /* prose without '<', '|', '[' (so that only what is put in counts) */
    char *base = malloc(NP), *text = malloc(NP);
    for (size_t i = 0; i < NP; i++) {
        char c = (char)demo[i % demo_n];
        base[i] = c == '<' || c == '|' || c == '[' || !c ? ' ' : c;
    }
    bpe *three = three_specials();
    const bpe *vocabs[2] = {bpe_gpt2(), three};
    static const char *const tokens[2][3] = {{"<|endoftext|>"}, {"<|endoftext|>", "<|sep|>", "[MASK]"}};
    for (int w = 0; w < 2 && vocabs[w]; w++) {
        const bpe *v = vocabs[w];
        for (int t = 0; t < 3 && tokens[w][t]; t++) {
            const char *tok = tokens[w][t];
            size_t tl = strlen(tok);
            char name[160];
            /* at every place across two steps' edges (a 32-byte vector at
             * 4 a step: 128 bytes), at the start, and at every place of
             * the last 140 bytes (where the steps end and byte-by-byte
             * looking takes over) */
            size_t places[300], np = 0;
            for (size_t d = 0; d < 140; d++) places[np++] = 70000 + d;
            places[np++] = 0;
            places[np++] = 1;
            for (size_t d = tl; d < 140; d++) places[np++] = N - d;
            for (size_t k = 0; k < np; k++) {
                memcpy(text, base, N);
                memcpy(text + places[k], tok, tl);
                snprintf(name, sizeof name, "vocabulary %d, %s at %zu", w, tok, places[k]);
                check_text(v, name, text, N, places[k], 0);
            }
            /* the token's first two bytes, and all but its last byte, at
             * every place across an edge: no token, no error */
            for (size_t d = 0; d < 140; d += 9) {
                memcpy(text, base, N);
                memcpy(text + 70000 + d, tok, 2);
                memcpy(text + 90000 + d, tok, tl - 1);
                memcpy(text + N - 2, tok, 2);
                snprintf(name, sizeof name, "vocabulary %d, %s's prefixes at %zu", w, tok, 70000 + d);
                check_text(v, name, text, N, SIZE_MAX, 0);
            }
            /* after 3 or 20 pairs that start no token (the search looks at
             * each of the first 16 such places, then at the rest whole),
             * and right after one ("<|<|endoftext|>") */
            for (int reps = 3; reps <= 20; reps += 17)
                for (size_t d = 0; d < 40; d += 13) {
                    memcpy(text, base, N);
                    for (int r = 0; r < reps; r++) memcpy(text + 50000 + 97 * (size_t)r, tok, tl - 1);
                    memcpy(text + 70000 + d - 2, tok, 2);
                    memcpy(text + 70000 + d, tok, tl);
                    snprintf(name, sizeof name, "vocabulary %d, %s at %zu after %d pairs", w, tok, 70000 + d, reps);
                    check_text(v, name, text, N, 70000 + d, 0);
                }
            /* bpe_encode_parallel's parts: at the start, inside, at the end */
            size_t at[3] = {0, NP / 2 + 3, NP - tl};
            for (int k = 0; k < 3; k++) {
                memcpy(text, base, NP);
                memcpy(text + at[k], tok, tl);
                snprintf(name, sizeof name, "vocabulary %d, %s at %zu of %u", w, tok, at[k], NP);
                check_text(v, name, text, NP, at[k], 1);
            }
        }
    }
    memcpy(text, base, NP);
    check_text(vocabs[0], "no special token", text, NP, SIZE_MAX, 1);
    /* With one pair a step is looked at for the pair only where its second
     * byte stands: prose full of '|' and '<' (apart, or the wrong way
     * round: "|<"), and a token at every place across two steps' edges,
     * right after a '|' or a '<' or far from both */
    char *bars = malloc(NP);
    for (size_t i = 0; i < N; i++) bars[i] = i % 37 == 5 ? '|' : i % 53 == 7 ? '<' : i % 97 == 11 ? '<' : base[i];
    for (size_t i = 0; i + 1 < N; i += 211) bars[i] = '|', bars[i + 1] = '<';
    for (size_t i = 0; i + 1 < N; i++)
        if (bars[i] == '<' && bars[i + 1] == '|') bars[i] = ' ';  /* no pair: each step is looked at */
    memcpy(text, bars, N);
    check_text(vocabs[0], "'|' and '<' apart", text, N, SIZE_MAX, 0);
    for (size_t d = 0; d < 140; d++) {
        memcpy(text, bars, N);
        memcpy(text + 70000 + d, "<|endoftext|>", 13);
        char name[80];
        snprintf(name, sizeof name, "<|endoftext|> at %zu among '|' and '<'", 70000 + d);
        check_text(vocabs[0], name, text, N, 70000 + d, 0);
    }
    free(bars);
    bpe_free(three);
    free(base);
    free(text);
    free(demo);
    printf("special tokens found where their first two bytes are: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
