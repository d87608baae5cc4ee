/* fuzz_vocab - libFuzzer target for the vocabulary loader (bpe_load_mem).
 *
 * The input is an encoder.json, one 0xFF byte (never part of UTF-8 text),
 * then a vocab.bpe; without 0xFF it is all encoder.json and the merges are
 * empty. When the pair loads, the vocabulary must be self-consistent
 * (token bytes no longer than bpe_max_token_bytes, the end-of-text id in
 * range) and a few short strings, including bytes of the input itself, must
 * encode to ids inside the vocabulary and decode back to the same bytes.
 * A rejected pair must come with a message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"

#include "fuzz_check.h"

static void roundtrip(const bpe *v, const void *text, size_t len, int flags) {
    bpe_error err;
    uint32_t *ids = malloc((len ? len : 1) * sizeof *ids);
    CHECK(ids);
    size_t n = 0;
    int rc = bpe_encode(v, text, len, flags, ids, NULL, len, &n, &err);
    if (rc != BPE_OK) {
        /* e.g. a vocabulary without every single byte cannot encode all text */
        CHECK(rc < 0 && err.msg[0]);
        free(ids);
        return;
    }
    CHECK(n <= len);
    size_t V = bpe_vocab_size(v);
    for (size_t i = 0; i < n; i++) CHECK(ids[i] < V);
    size_t cap = n * bpe_max_token_bytes(v);
    char *out = malloc(cap ? cap : 1);
    CHECK(out);
    size_t nb = 0;
    CHECK(bpe_decode(v, ids, n, out, cap, &nb, &err) == BPE_OK);
    CHECK(nb == len && (len == 0 || !memcmp(out, text, len)));
    free(out);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *sep = memchr(data, 0xFF, size);
    size_t elen = sep ? (size_t)(sep - data) : size;
    const char *merges = sep ? (const char *)sep + 1 : "";
    size_t mlen = sep ? size - elen - 1 : 0;
    /* exact-size copies so that ASan sees any read past either buffer */
    char *ej = malloc(elen ? elen : 1), *vb = malloc(mlen ? mlen : 1);
    CHECK(ej && vb);
    if (elen) memcpy(ej, data, elen);
    if (mlen) memcpy(vb, merges, mlen);

    bpe_error err;
    err.msg[0] = 0;
    bpe *v = bpe_load_mem(ej, elen, "fuzz/encoder.json", vb, mlen, "fuzz/vocab.bpe", &err);
    if (!v) {
        CHECK(err.msg[0] && !strchr(err.msg, '\n'));
        free(ej);
        free(vb);
        return 0;
    }
    size_t V = bpe_vocab_size(v), maxb = bpe_max_token_bytes(v);
    CHECK(V > 0 && maxb > 0);
    int32_t eot = bpe_eot_id(v);
    CHECK(eot == -1 || (eot >= 0 && (size_t)eot < V));
    for (size_t id = 0; id < V && id < 4096; id++) {
        size_t tl = 0;
        const char *tb = bpe_token_bytes(v, (uint32_t)id, &tl);
        if (tb) CHECK(tl <= maxb);
    }
    CHECK(bpe_token_bytes(v, (uint32_t)V, &(size_t){0}) == NULL);

    static const char *const samples[] = {
        "Hello world", " the cat's  hat\n\n", "0000000000", "na\xcc\x81ive \xe4\xb8\xad\xe6\x96\x87",
        "\xff\xfe bad \xc3", "a<|endoftext|>b",
    };
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        roundtrip(v, samples[i], strlen(samples[i]), BPE_SPECIAL_TEXT);
        if (eot >= 0) roundtrip(v, samples[i], strlen(samples[i]), BPE_SPECIAL_ALLOW);
    }
    roundtrip(v, data, size < 64 ? size : 64, BPE_SPECIAL_TEXT);
    bpe_free(v);
    free(ej);
    free(vb);
    return 0;
}
