/* test_bpe_long.c - the long-piece encoder of bpe/bpe.c against the
 * definition, through bpe.c's internals (it is included):
 *   - bpe_compatible_fast (the spine walk, which reads pairs of up to 4 bytes
 *     from the text) against re-encoding bytes(a) bytes(b),
 *     on random token pairs and on pairs that occur in real encodings;
 *   - the automaton: the tokens it names at a place against every token
 *     that ends there;
 *   - bpe_merge_last (the last token at each place, on 1-4 segments joined)
 *     against bpe_merge_long (the heap), and bpe_merge_short against
 *     bpe_merge_traced, on random long pieces from small alphabets, where
 *     merges interact most.
 * The heap and the quadratic loop follow tiktoken's definition step by step,
 * so they are the reference for the fast paths. */
#include "../bpe/bpe.c"

static int failures;
#define RND_SEED 0x9E3779B97F4A7C15ull
#include "rnd.h"
#include "tiktoken_text.h"

static int slow_compatible(const struct bpe *v, uint32_t a, uint32_t b) {
    uint8_t buf[SHORT_PIECE];
    uint32_t tok[SHORT_PIECE];
    size_t la = token_len(v, a), lb = token_len(v, b);
    memcpy(buf, v->tok_bytes + v->tok_off[a], la);
    memcpy(buf + la, v->tok_bytes + v->tok_off[b], lb);
    size_t m = bpe_merge_short(v, buf, la + lb, tok);
    return m == 2 && tok[0] == a && tok[1] == b;
}

static void check_pair(const struct bpe *v, uint32_t a, uint32_t b, size_t *checked) {
    uint8_t buf[SHORT_PIECE];
    size_t la = token_len(v, a), lb = token_len(v, b);
    memcpy(buf, v->tok_bytes + v->tok_off[a], la);
    memcpy(buf + la, v->tok_bytes + v->tok_off[b], lb);
    int fast;
    if (!bpe_compatible_fast(v, buf, la, a, b, &fast)) return;
    (*checked)++;
    if (fast != slow_compatible(v, a, b) && failures++ < 10)
        fprintf(stderr, "compatible(%u, %u): fast %d, by definition %d\n", a, b, fast, !fast);
}

static void test_pairs(const struct bpe *v, int rounds) {
    size_t checked = 0;
    uint32_t V = v->n_tokens - 1;  /* no <|endoftext|> */
    for (int i = 0; i < rounds; i++) check_pair(v, rnd() % V, rnd() % V, &checked);
    /* Short tokens interact most: pairs of 1-3 byte tokens. */
    uint32_t *small = malloc(V * sizeof *small), n_small = 0;
    for (uint32_t t = 0; t < V; t++)
        if (token_len(v, t) <= 3) small[n_small++] = t;
    for (int i = 0; i < rounds; i++) check_pair(v, small[rnd() % n_small], small[rnd() % n_small], &checked);
    /* Each token with its own pieces. */
    for (uint32_t t = 0; t < V; t++)
        if (v->split[2 * t] != BPE_EMPTY) check_pair(v, v->split[2 * t], v->split[2 * t + 1], &checked);
    free(small);
    printf("bpe_compatible_fast: %zu pairs checked against the definition\n", checked);
}

/* The tokens the automaton names where p[0..n) ends, longest first,
 * against every token (that is its own encoding) that is a suffix. */
static void test_automaton(const struct bpe *v, int rounds) {
    static const char *const alphabets[] = {"abcdefghijklmnopqrstuvwxyz ", "0123456789", "=-_ a",
                                            "\xe4\xb8\x80\xe4\xba\x8c\xe4\xb8\x89 ", "ing th"};
    uint8_t p[300];
    int bad = 0;
    for (int r = 0; r < rounds; r++) {
        const char *al = alphabets[r % 5];
        size_t k = strlen(al), n = 1 + rnd() % 299;
        for (size_t i = 0; i < n; i++) p[i] = (uint8_t)al[rnd() % k];
        uint32_t s = 0;
        for (size_t i = 0; i < n; i++) s = bpe_ac_next(v, s, p[i]);
        uint32_t got[200], want[200];
        size_t ng = 0, nw = 0;
        for (uint32_t u = v->ac_nodes[s].tok != BPE_EMPTY ? s : v->ac_nodes[s].dict; u && ng < 200; u = v->ac_nodes[u].dict)
            got[ng++] = v->ac_nodes[u].tok;
        for (size_t len = n < v->max_token_len ? n : v->max_token_len; len > 0; len--) {
            uint32_t t = bpe_find_token(v, p + n - len, len);
            if (t != BPE_EMPTY && bpe_token_alone(v, t)) want[nw++] = t;
        }
        if (ng != nw || memcmp(got, want, ng * 4)) {
            if (bad++ < 5) fprintf(stderr, "automaton: %zu tokens end after %zu bytes of \"%s\", want %zu\n", ng, n, al, nw);
        }
    }
    if (bad) failures++;
    printf("automaton: the tokens at the end of %d random texts\n", rounds);
}

static void test_pieces(const struct bpe *v, int rounds) {
    static const char *const alphabets[] = {
        "a", "=", "0123456789", "abcdefghijklmnopqrstuvwxyz", "ab", "aab", "01",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", "-=_", "ing",
        "\xe4\xb8\x80\xe4\xba\x8c\xe4\xb8\x89", "\xc3\xa9\x65\xcc\x81",
        /* digits: GPT-2 has runs of zeros up to 16 long, and years */
        "0", "0000000001", "1290", "0123456789", "acgt", "etaoin"};
    enum { MAX_N = 16384 };
    uint8_t *p = malloc(MAX_N);
    uint32_t *a = malloc(MAX_N * 4), *b = malloc(MAX_N * 4), *c = malloc(MAX_N * 4);
    size_t *offs = malloc(MAX_N * sizeof *offs);
    int bad = 0, fell_back = 0;
    for (int r = 0; r < rounds; r++) {
        const char *al = alphabets[r % (sizeof alphabets / sizeof *alphabets)];
        size_t k = strlen(al), n = r % 5 == 4 ? 4096 + rnd() % 8000 : 257 + rnd() % 1500;
        for (size_t i = 0; i < n; i++) p[i] = (uint8_t)al[rnd() % k];
        if (r % 3 == 0) p[0] = ' ';  /* the piece " 123...", " abc..." */
        /* Cut into 1-4 segments, each encoded alone and then joined; with
         * offsets every other time. */
        int segments = 1 + r % 4;
        out_t oa = {v, a, r % 2 ? offs : NULL, MAX_N, 0, 0, NULL, 1}, ob = {v, b, NULL, MAX_N, 0, 0, NULL, 1};
        bpe_merge_long(&ob, p, n, 0);
        if (!bpe_merge_last(&oa, p, n, 0, segments)) {
            fell_back++;
        } else {
            int same = oa.n == ob.n && !memcmp(a, b, oa.n * 4);
            for (size_t i = 0, at = 0; same && r % 2 && i < oa.n; at += token_len(v, b[i++])) same = offs[i] == at;
            if (!same && bad++ < 5)
                fprintf(stderr, "alphabet \"%s\", %zu bytes, %d segments: last tokens %zu, heap %zu\n", al, n,
                        segments, oa.n, ob.n);
        }
        /* No room in the caller's buffer: counting only. */
        out_t oz = {v, NULL, NULL, 0, 0, 0, NULL, 1};
        if (bpe_merge_last(&oz, p, n, 0, segments) && oz.n != ob.n) {
            if (bad++ < 5) fprintf(stderr, "alphabet \"%s\", %zu bytes: last tokens count %zu, heap %zu\n", al, n, oz.n, ob.n);
        }
        /* Cut where no token joins two bytes, when there is such a place. */
        out_t os = {v, c, NULL, MAX_N, 0, 0, NULL, 1};
        if (bpe_split_piece(&os, p, n, 0) && (os.n != ob.n || memcmp(c, b, os.n * 4))) {
            if (bad++ < 5) fprintf(stderr, "alphabet \"%s\", %zu bytes: split %zu tokens, heap %zu\n", al, n, os.n, ob.n);
        }
        /* On 1..256 bytes: the heap, the quadratic loop as tiktoken writes
         * it, and bpe_merge_short, the quadratic loop with a vector minimum. */
        size_t len = 1 + rnd() % SHORT_PIECE;
        uint32_t s[SHORT_PIECE], t[SHORT_PIECE];
        size_t ns = bpe_merge_short(v, p, len, s), nt = bpe_merge_traced(v, p, len, t, NULL);
        out_t od = {v, a, NULL, MAX_N, 0, 0, NULL, 1};
        bpe_merge_long(&od, p, len, 0);
        if (od.n != ns || memcmp(a, s, ns * 4) || nt != ns || memcmp(t, s, ns * 4)) {
            if (bad++ < 5) fprintf(stderr, "alphabet \"%s\", %zu bytes: heap, quadratic loop and bpe_merge_short differ\n", al, len);
        }
        /* encode_piece as tiktoken: the token that is the whole piece, or
         * the merges of the piece */
        uint32_t whole = bpe_find_token(v, p, len);
        out_t oe = {v, a, NULL, MAX_N, 0, 0, NULL, 1};
        encode_piece(&oe, p, len, 0, len);
        if (whole != BPE_EMPTY ? oe.n != 1 || a[0] != whole : oe.n != nt || memcmp(a, t, nt * 4)) {
            if (bad++ < 5) fprintf(stderr, "alphabet \"%s\", %zu bytes: encode_piece differs\n", al, len);
        }
    }
    free(offs);
    if (bad) failures++;
    if (fell_back) {
        fprintf(stderr, "bpe_merge_last gave up on %d pieces\n", fell_back);
        failures++;
    }
    printf("long pieces: %d random pieces, last tokens (1-4 segments) == split == heap == quadratic loop\n", rounds);
    free(p);
    free(a);
    free(b);
    free(c);
}

/* A small vocabulary: GPT-2's 256 byte tokens (ids 0-255, in encoder.json's
 * characters), then the tokens of `more` (JSON members) and `merges`. */
static bpe *small_vocab(const char *more, const char *merges, const char *what) {
    char enc[8192], *e = enc;
    e += sprintf(e, "{");
    for (int i = 0, k = 0; i < 256; i++) {
        int printable = (i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE;
        e += sprintf(e, "%s\"\\u%04x\": %d", i ? ", " : "", printable ? i : 0x100 + k++, i);
    }
    sprintf(e, ", %s}", more);
    bpe_error err;
    bpe *v = bpe_load_mem(enc, strlen(enc), "e.json", merges, strlen(merges), "m.bpe", &err);
    if (!v) {
        fprintf(stderr, "%s vocabulary: %s\n", what, err.msg);
        failures++;
    }
    return v;
}

/* A vocabulary whose token "abc" (256) is made from "ab" (257), a later
 * token: its merge process is not monotone, so pair checks take the slow,
 * cached path. Long pieces over it must still equal the heap. A tiktoken
 * rank file: GPT-2's encoder.json + vocab.bpe cannot hold it (there the
 * k-th merge line makes the k-th token). */
static void test_non_monotone(void) {
    static char text[8192];
    char *t = text + tik_bytes(text);
    const char *more[] = {"abc", "ab", "abcabc"};
    for (int k = 0; k < 3; k++) t += tik_line(t, more[k], strlen(more[k]), 256 + k);
    bpe_error err;
    bpe *v = bpe_load_tiktoken_mem(text, strlen(text), "non-monotone.tiktoken", &err);
    if (!v) {
        fprintf(stderr, "non-monotone vocabulary: %s\n", err.msg);
        failures++;
        return;
    }
    if (v->split[2 * 256] != BPE_EMPTY) {
        fprintf(stderr, "token 256 should be marked non-monotone\n");
        failures++;
    }
    uint8_t p[2048];
    uint32_t a[2048], b[2048];
    int bad = 0;
    for (int r = 0; r < 200; r++) {
        size_t n = 300 + rnd() % 1500;
        for (size_t i = 0; i < n; i++) p[i] = (uint8_t)"abcab"[rnd() % 5];
        out_t oa = {v, a, NULL, 2048, 0, 0, NULL, 1}, ob = {v, b, NULL, 2048, 0, 0, NULL, 1};
        int ok = bpe_merge_last(&oa, p, n, 0, 1 + r % 3);
        bpe_merge_long(&ob, p, n, 0);
        if (!ok || oa.n != ob.n || memcmp(a, b, oa.n * 4)) bad++;
    }
    if (bad) {
        fprintf(stderr, "non-monotone vocabulary: %d of 200 pieces differ from the heap\n", bad);
        failures++;
    }
    bpe_free(v);
}

/* A piece cut where no token joins two bytes, on several threads: 600 KB
 * of random lowercase letters (a cut every 7 bytes on average) and of
 * spaces (after every byte), against the heap. */
static void test_split_threads(void) {
    const struct bpe *v = bpe_gpt2();
    size_t n = 600000;
    uint8_t *p = malloc(n);
    uint32_t *a = malloc(n * 4), *b = malloc(n * 4);
    for (int kind = 0; kind < 2; kind++) {
        for (size_t i = 0; i < n; i++) p[i] = kind ? ' ' : (uint8_t)('a' + rnd() % 26);
        out_t ob = {v, b, NULL, n, 0, 0, NULL, 1};
        bpe_merge_long(&ob, p, n, 0);
        for (int threads = 1; threads <= 3; threads++) {
            out_t oa = {v, a, NULL, n, 0, 0, NULL, threads};
            if (!bpe_split_piece(&oa, p, n, 0) || oa.n != ob.n || memcmp(a, b, oa.n * 4)) {
                fprintf(stderr, "split on %d threads (%s): %zu tokens, heap %zu\n", threads,
                        kind ? "spaces" : "letters", oa.n, ob.n);
                failures++;
            }
        }
    }
    free(p), free(a), free(b);
}

static int short_differs(const struct bpe *v, const uint8_t *p, size_t n);

/* A token that the merges cannot reach from its bytes: in "bc" 256, "ab"
 * 257, "cd" 258, "abcd" 259, the bytes abcd merge into a, bc, d and stop.
 * tiktoken gives 259 for the piece "abcd" alone, but inside "abcdz..." the
 * stretch abcd (no token joins d and z) must come out as a, bc, d. */

static void test_unreachable(void) {
    bpe *v = small_vocab("\"bc\": 256, \"ab\": 257, \"cd\": 258, \"abcd\": 259",
                         "#version: 0.2\nb c\na b\nc d\nab cd\n", "unreachable");
    if (!v) return;
    char text[1001];
    uint32_t ids[1000], want[4] = {'a', 256, 'd', 'z'};
    size_t n;
    bpe_error err;
    int bad = bpe_encode(v, "abcd", 4, 0, ids, NULL, 1000, &n, &err) || n != 1 || ids[0] != 259;
    for (size_t reps = 1; reps <= 200 && !bad; reps += 9) {  /* 5 to 1000 bytes, one piece */
        for (size_t r = 0; r < reps; r++) memcpy(text + 5 * r, "abcdz", 5);
        bad = bpe_encode(v, text, 5 * reps, 0, ids, NULL, 1000, &n, &err) || n != 4 * reps;
        for (size_t i = 0; i < n && !bad; i++) bad = ids[i] != want[i % 4];
        if (bad) fprintf(stderr, "unreachable token: \"abcdz\" x %zu gives %zu tokens\n", reps, n);
    }
    for (unsigned x = 0; x < 125 && !bad; x++) {  /* every 2 and 3 bytes of "abcdz" */
        uint8_t p[3] = {(uint8_t)"abcdz"[x % 5], (uint8_t)"abcdz"[x / 5 % 5], (uint8_t)"abcdz"[x / 25]};
        bad = short_differs(v, p, 2) || short_differs(v, p, 3);
        if (bad) fprintf(stderr, "unreachable token: bpe_merge_short of \"%.3s\" differs from the loop\n", p);
    }
    if (bad) failures++;
    bpe_free(v);
}

/* The short-token table marks free slots with a key no token has: for a
 * vocabulary with the token FF FF FF FF, another one. A lookup of that key
 * finds free slots and must still answer right. */
static void test_short_free(void) {
    const struct bpe *g = bpe_gpt2();
    if (bpe_short_token(g, g->short_free, 4) != BPE_EMPTY || bpe_short_token(g, 0xFFFFFF, 3) != BPE_EMPTY ||
        bpe_short_token(g, 'a' | 'n' << 8 | 'd' << 16, 3) != bpe_find_token(g, (const uint8_t *)"and", 3) ||
        bpe_find_token(g, (const uint8_t *)"and", 3) == BPE_EMPTY) {
        fprintf(stderr, "short tokens: lookups of the free key or of \"and\" are wrong\n");
        failures++;
    }
    bpe *v = small_vocab("\"\\u00ff\\u00ff\": 256, \"\\u00ff\\u00ff\\u00ff\\u00ff\": 257",
                         "#version: 0.2\n\xc3\xbf \xc3\xbf\n\xc3\xbf\xc3\xbf \xc3\xbf\xc3\xbf\n", "FF");
    if (!v) return;
    uint8_t p[1001];
    uint32_t a[1001], b[1001];
    memset(p, 0xFF, sizeof p);
    out_t oa = {v, a, NULL, 1001, 0, 0, NULL, 1}, ob = {v, b, NULL, 1001, 0, 0, NULL, 1};
    int ok = bpe_merge_last(&oa, p, sizeof p, 0, 2);
    bpe_merge_long(&ob, p, sizeof p, 0);
    if (v->short_free == 0xFFFFFFFFu || bpe_short_token(v, 0xFFFFFFFFu, 4) != 257 || !ok || oa.n != 251 ||
        oa.n != ob.n || memcmp(a, b, oa.n * 4)) {
        fprintf(stderr, "FF vocabulary: free key %08x, token FFFFFFFF %u, last tokens %zu, heap %zu\n",
                v->short_free, bpe_short_token(v, 0xFFFFFFFFu, 4), oa.n, ob.n);
        failures++;
    }
    bpe_free(v);
}

/* More parts than bytes: empty parts (found by fuzz_pieces: an empty
 * first part once read as "no token"). */
static void test_tiny_parts(const struct bpe *v) {
    uint8_t p[8];
    uint32_t a[8], b[8];
    for (size_t n = 2; n <= 8; n++) {
        for (size_t i = 0; i < n; i++) p[i] = (uint8_t)"U1 ab=="[i % 7];
        out_t ob = {v, b, NULL, 8, 0, 0, NULL, 1};
        bpe_merge_long(&ob, p, n, 0);
        for (int parts = 1; parts <= 12; parts++) {
            out_t oa = {v, a, NULL, 8, 0, 0, NULL, 1};
            if (!bpe_merge_last(&oa, p, n, 0, parts) || oa.n != ob.n || memcmp(a, b, oa.n * 4)) {
                fprintf(stderr, "%zu bytes in %d parts: %zu tokens, heap %zu\n", n, parts, oa.n, ob.n);
                failures++;
            }
        }
    }
}

/* bpe_merge_short against bpe_merge_traced (tiktoken's loop step by step)
 * on pieces of 2 and 3 bytes, which it writes out without the loop: every
 * 2 bytes; every token of 3 bytes, every byte three times, each token of 2
 * bytes with a byte before and after it, and random 3 bytes. */
static int short_differs(const struct bpe *v, const uint8_t *p, size_t n) {
    uint32_t a[4], b[4];
    size_t na = bpe_merge_short(v, p, n, a), nb = bpe_merge_traced(v, p, n, b, NULL);
    return na != nb || memcmp(a, b, na * sizeof *a);
}

static void check_short(const struct bpe *v, const uint8_t *p, size_t n, size_t *checked, int *bad) {
    (*checked)++;
    if (short_differs(v, p, n) && (*bad)++ < 5)
        fprintf(stderr, "bpe_merge_short of %zu bytes %02x %02x %02x differs from the loop\n", n, p[0], p[1],
                n > 2 ? p[2] : 0);
}

static void test_tiny_pieces(const struct bpe *v, int sanitized) {
    size_t checked = 0;
    int bad = 0;
    uint8_t p[3];
    for (unsigned x = 0; x < 65536; x++) {
        p[0] = (uint8_t)(x >> 8), p[1] = (uint8_t)x;
        check_short(v, p, 2, &checked, &bad);
    }
    for (unsigned x = 0; x < 256; x++) {
        p[0] = p[1] = p[2] = (uint8_t)x;
        check_short(v, p, 3, &checked, &bad);
    }
    for (uint32_t t = 0; t < v->n_tokens; t++) {
        const uint8_t *b = v->tok_bytes + v->tok_off[t];
        if (token_len(v, t) == 3) check_short(v, b, 3, &checked, &bad);
        if (token_len(v, t) != 2) continue;
        for (int k = 0; k < (sanitized ? 4 : 32); k++) {
            uint8_t c = (uint8_t)rnd();
            p[0] = c, p[1] = b[0], p[2] = b[1];
            check_short(v, p, 3, &checked, &bad);
            p[0] = b[0], p[1] = b[1], p[2] = c;
            check_short(v, p, 3, &checked, &bad);
        }
    }
    for (int k = 0; k < (sanitized ? 100000 : 1000000); k++) {
        uint32_t r = rnd();
        p[0] = (uint8_t)r, p[1] = (uint8_t)(r >> 8), p[2] = (uint8_t)(r >> 16);
        check_short(v, p, 3, &checked, &bad);
    }
    if (bad) failures++;
    printf("pieces of 2 and 3 bytes: %zu, bpe_merge_short == the loop\n", checked);
}

/* A piece after a byte whose token has id 0 (GPT-2's "!"): an encoder
 * that marks "nothing before" with 0 would confuse the two. */
static void test_after_id_0(const struct bpe *v) {
    uint8_t p[101] = "!";
    for (int i = 1; i < 101; i++) p[i] = (uint8_t)('a' + (i * 7) % 26);
    uint32_t a[102], b[102];
    out_t oa = {v, a, NULL, 102, 0, 0, NULL, 1}, ob = {v, b, NULL, 102, 0, 0, NULL, 1};
    bpe_merge_long(&ob, p, sizeof p, 0);
    if (!bpe_merge_last(&oa, p, sizeof p, 0, 1) || oa.n != ob.n || memcmp(a, b, oa.n * 4)) {
        fprintf(stderr, "bpe_merge_last after \"!\": %zu tokens, heap %zu\n", oa.n, ob.n);
        failures++;
    }
}

int main(void) {
    const struct bpe *v = bpe_gpt2();
    test_after_id_0(v);
    test_tiny_parts(v);
    int sanitized = getenv("SANITIZED") && !strcmp(getenv("SANITIZED"), "1");
    test_tiny_pieces(v, sanitized);
    test_pairs(v, sanitized ? 20000 : 300000);
    test_automaton(v, sanitized ? 2000 : 20000);
    test_pieces(v, sanitized ? 60 : 600);
    test_non_monotone();
    test_short_free();
    test_split_threads();
    test_unreachable();
    if (failures) {
        fprintf(stderr, "test_bpe_long: failed\n");
        return 1;
    }
    return 0;
}
