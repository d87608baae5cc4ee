/* test_bpe_ids.c - vocabularies whose ids are not their merge ranks
 * (Hugging Face, RoBERTa): the encoder works in rank space and only the
 * public functions translate (bpe_set_ids). A small vocabulary is loaded
 * twice, the second time with its ids shuffled; every public function must
 * give the first one's answers through the shuffle: bpe_encode, an
 * encoder (bpe_encoder_encode), bpe_encode_parallel (two threads), the
 * stream's sink, bpe_decode, bpe_token_bytes and bpe_eot_id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe_internal.h"

static int failures;

#define FAIL(...)                         \
    do {                                  \
        fprintf(stderr, __VA_ARGS__);     \
        fputc('\n', stderr);              \
        failures++;                       \
    } while (0)

/* GPT-2's 256 byte tokens (ids 0-255, in encoder.json's characters), then
 * a few merges and <|endoftext|>. */
static bpe *small_vocab(void) {
    char enc[8192], *e = enc;
    e += sprintf(e, "{");
    for (int i = 0, k = 0; i < 256; i++) {
        int printable = (i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE;
        e += sprintf(e, "%s\"\\u%04x\": %d", i ? ", " : "", printable ? i : 0x100 + k++, i);
    }
    sprintf(e, ", \"ab\": 256, \"cd\": 257, \"abcd\": 258, \"\\u0120ab\": 259, \"12\": 260, \"<|endoftext|>\": 261}");
    const char *merges = "#version: 0.2\na b\nc d\nab cd\n\xC4\xA0 ab\n1 2\n";
    bpe_error err;
    bpe *v = bpe_load_mem(enc, strlen(enc), "e.json", merges, strlen(merges), "m.bpe", &err);
    if (!v) FAIL("small vocabulary: %s", err.msg);
    return v;
}

typedef struct {
    uint32_t *ids;
    size_t n, cap;
} collected;

static int collect(void *ctx, const uint32_t *ids, const uint64_t *offs, size_t n) {
    (void)offs;
    collected *c = ctx;
    if (c->n + n > c->cap) return 1;
    memcpy(c->ids + c->n, ids, n * sizeof *ids);
    c->n += n;
    return 0;
}

int main(void) {
    bpe *plain = small_vocab(), *shuffled = small_vocab();
    if (!plain || !shuffled) return 1;
    uint32_t n_tok = (uint32_t)bpe_vocab_size(plain);
    uint32_t *perm = malloc(n_tok * sizeof *perm);
    if (!perm) return 1;
    for (uint32_t r = 0; r < n_tok; r++) perm[r] = r;
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    for (uint32_t r = n_tok; r > 1; r--) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        uint32_t k = (uint32_t)(rng % r), t = perm[r - 1];
        perm[r - 1] = perm[k];
        perm[k] = t;
    }
    bpe_error err;
    if (bpe_set_ids(shuffled, perm, &err)) FAIL("bpe_set_ids: %s", err.msg);

    /* not a permutation: refused, and the vocabulary keeps its ids */
    uint32_t twice = perm[1];
    perm[1] = perm[0];
    if (bpe_set_ids(plain, perm, &err) != BPE_ERR_FORMAT) FAIL("bpe_set_ids took an id given twice");
    perm[1] = twice;
    if (plain->id_of_rank) FAIL("a refused id table was kept");

    if (bpe_eot_id(shuffled) != (int32_t)perm[bpe_eot_id(plain)])
        FAIL("eot: %d, want %u", bpe_eot_id(shuffled), perm[bpe_eot_id(plain)]);
    for (uint32_t r = 0; r < n_tok; r++) {
        size_t la, lb;
        const char *a = bpe_token_bytes(plain, r, &la), *b = bpe_token_bytes(shuffled, perm[r], &lb);
        if (!a || !b || la != lb || memcmp(a, b, la)) FAIL("bpe_token_bytes of id %u (rank %u)", perm[r], r);
    }
    if (bpe_token_bytes(shuffled, n_tok, NULL)) FAIL("bpe_token_bytes took id %u", n_tok);

    /* A text of a megabyte, so that two threads and the stream's blocks
     * take part. */
    static const char unit[] = "abcd ab cdab 12 1212 x<|endoftext|>abcdabcd  ab\n";
    size_t len = 1u << 20, unit_len = sizeof unit - 1;
    char *text = malloc(len);
    uint32_t *want = malloc(len * sizeof *want), *got = malloc(len * sizeof *got);
    char *back = malloc(len);
    if (!text || !want || !got || !back) return 1;
    for (size_t i = 0; i < len; i++) text[i] = unit[i % unit_len];
    int flags = BPE_SPECIAL_ALLOW;
    size_t nw = 0, ng = 0, nb = 0;
    if (bpe_encode(plain, text, len, flags, want, NULL, len, &nw, &err)) FAIL("encode: %s", err.msg);
    for (size_t i = 0; i < nw; i++) want[i] = perm[want[i]];

    if (bpe_encode(shuffled, text, len, flags, got, NULL, len, &ng, &err)) FAIL("encode: %s", err.msg);
    if (ng != nw || memcmp(got, want, nw * sizeof *got)) FAIL("bpe_encode: ids not translated");
    /* a buffer too small: what fits is translated, nothing past it is touched */
    got[5] = 0xDEADBEEF;
    if (bpe_encode(shuffled, text, 64, flags, got, NULL, 5, &ng, &err) || memcmp(got, want, 5 * sizeof *got) ||
        got[5] != 0xDEADBEEF)
        FAIL("bpe_encode into 5 ids");

    /* an encoder, twice (the second time from its kept cache), and into 5 ids */
    bpe_encoder *enc = bpe_encoder_new(shuffled, &err);
    if (!enc) FAIL("bpe_encoder_new: %s", err.msg);
    for (int k = 0; enc && k < 2; k++) {
        memset(got, 0, len * sizeof *got);
        if (bpe_encoder_encode(enc, text, len, flags, got, NULL, len, &ng, &err)) FAIL("encoder: %s", err.msg);
        if (ng != nw || memcmp(got, want, nw * sizeof *got)) FAIL("bpe_encoder_encode: ids not translated");
    }
    got[5] = 0xDEADBEEF;
    if (enc && (bpe_encoder_encode(enc, text, 64, flags, got, NULL, 5, &ng, &err) ||
                memcmp(got, want, 5 * sizeof *got) || got[5] != 0xDEADBEEF))
        FAIL("bpe_encoder_encode into 5 ids");
    bpe_encoder_free(enc);

    memset(got, 0, len * sizeof *got);
    if (bpe_encode_parallel(shuffled, text, len, flags, 2, got, NULL, len, &ng, &err))
        FAIL("encode_parallel: %s", err.msg);
    if (ng != nw || memcmp(got, want, nw * sizeof *got)) FAIL("bpe_encode_parallel: ids not translated");

    memset(got, 0, len * sizeof *got);
    collected c = {got, 0, len};
    bpe_stream *st = bpe_stream_new(shuffled, flags, 2, &err);
    if (!st || bpe_stream_write(st, text, len, collect, &c, &err) || bpe_stream_finish(st, collect, &c, &err))
        FAIL("stream: %s", err.msg);
    bpe_stream_free(st);
    if (c.n != nw || memcmp(got, want, nw * sizeof *got)) FAIL("stream: ids not translated");

    if (bpe_decode(shuffled, want, nw, back, len, &nb, &err)) FAIL("decode: %s", err.msg);
    if (nb != len || memcmp(back, text, len)) FAIL("bpe_decode: bytes differ");
    uint32_t bad = n_tok;
    if (bpe_decode(shuffled, &bad, 1, back, len, &nb, &err) != BPE_ERR_ID) FAIL("decode took id %u", n_tok);

    printf("ids apart from ranks: %zu tokens through a shuffle of %u ids: encode, encoder, 2 threads, stream, decode, "
           "token bytes, eot\n", nw, n_tok);
    free(text);
    free(want);
    free(got);
    free(back);
    free(perm);
    bpe_free(plain);
    bpe_free(shuffled);
    return failures ? 1 : 0;
}
