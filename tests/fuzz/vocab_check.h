/* vocab_check.h - what the vocabulary fuzz targets (fuzz_vocab,
 * fuzz_vocab_files) check of a vocabulary that loaded: it is
 * self-consistent, and sample strings and the input's own bytes encode to
 * ids in range that decode back to the same bytes. */
#ifndef VOCAB_CHECK_H
#define VOCAB_CHECK_H
#include <stdint.h>
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

/* every_id: each id below the vocabulary's size has bytes (GPT-2's
 * encoder.json may leave gaps). */
static void check_vocab(const bpe *v, const uint8_t *data, size_t size, int every_id) {
    size_t V = bpe_vocab_size(v), maxb = bpe_max_token_bytes(v);
    CHECK(V > 0 && maxb > 0);
    int32_t eot = bpe_eot_id(v);
    CHECK(eot == -1 || (eot >= 0 && (size_t)eot < V));
    for (size_t id = 0; id < V && id < 4096; id++) {
        size_t tl = 0;
        const char *tb = bpe_token_bytes(v, (uint32_t)id, &tl);
        if (every_id) CHECK(tb && tl > 0);
        if (tb) CHECK(tl <= maxb);
    }
    CHECK(bpe_token_bytes(v, (uint32_t)V, &(size_t){0}) == NULL);
    /* the special tokens: ids in range, increasing, the end of text among them */
    size_t ns = bpe_special_count(v);
    int eot_listed = eot < 0;
    for (size_t k = 0; k < ns; k++) {
        int32_t id = bpe_special_id(v, k);
        CHECK(id >= 0 && (size_t)id < V && (k == 0 || id > bpe_special_id(v, k - 1)));
        eot_listed |= id == eot;
    }
    CHECK(eot_listed && bpe_special_id(v, ns) == -1);

    static const char *const samples[] = {
        "Hello world", " the cat's  hat\n\n", "0000000000", "na\xcc\x81ive \xe4\xb8\xad\xe6\x96\x87",
        "\xff\xfe bad \xc3", "a<|endoftext|>b", "<s><sep>x<s>x</s <s",
    };
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        roundtrip(v, samples[i], strlen(samples[i]), BPE_SPECIAL_TEXT);
        if (ns) roundtrip(v, samples[i], strlen(samples[i]), BPE_SPECIAL_ALLOW);
    }
    roundtrip(v, data, size < 64 ? size : 64, BPE_SPECIAL_TEXT);
    if (ns) roundtrip(v, data, size < 64 ? size : 64, BPE_SPECIAL_ALLOW);
}

#endif
