/* fuzz_vocab_files - libFuzzer target for the readers of other vocabulary
 * files (bpe/load_*.c).
 *
 * The first byte picks the reader: 0 tokenizer.json, 1 vocab.json + 0xFF +
 * merges.txt (0xFF is never part of UTF-8 text), 2 tiktoken, 3 GGUF,
 * 4 llm.c, anything else bpe_load_file_mem (which tells the format from the
 * first bytes; with a 0xFF the rest is a merges file). A refusal must come
 * with a one-line message naming the file. A loaded vocabulary must be
 * self-consistent (ids in range, token bytes no longer than the maximum,
 * every id's bytes found) and a few strings, including the input itself,
 * must encode to ids in range and decode back to the same bytes. */
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
    if (size == 0) return 0;
    int which = data[0];
    data++;
    size--;
    const uint8_t *sep = memchr(data, 0xFF, size);
    int pair = which == 1 || (which > 4 && sep);
    size_t alen = pair && sep ? (size_t)(sep - data) : size;
    size_t blen = pair && sep ? size - alen - 1 : 0;
    /* exact-size copies so that ASan sees any read past either buffer */
    char *a = malloc(alen ? alen : 1), *b = malloc(blen ? blen : 1);
    CHECK(a && b);
    if (alen) memcpy(a, data, alen);
    if (blen) memcpy(b, sep + 1, blen);

    bpe_error err;
    err.msg[0] = 0;
    bpe *v;
    const char *name = "fuzz/vocab";
    switch (which) {
    case 0: v = bpe_load_hf_json_mem(a, alen, name, &err); break;
    case 1: v = bpe_load_hf_pair_mem(a, alen, name, b, blen, "fuzz/merges", &err); break;
    case 2: v = bpe_load_tiktoken_mem(a, alen, name, &err); break;
    case 3: v = bpe_load_gguf_mem(a, alen, name, &err); break;
    case 4: v = bpe_load_llmc_mem(a, alen, name, &err); break;
    default: v = bpe_load_file_mem(a, alen, name, pair ? b : NULL, blen, "fuzz/merges", &err); break;
    }
    if (!v) {
        CHECK(err.msg[0] && !strchr(err.msg, '\n'));
        CHECK(!strncmp(err.msg, "fuzz/", 5));
        free(a);
        free(b);
        return 0;
    }
    size_t V = bpe_vocab_size(v), maxb = bpe_max_token_bytes(v);
    CHECK(V > 0 && maxb > 0);
    int32_t eot = bpe_eot_id(v);
    CHECK(eot == -1 || (eot >= 0 && (size_t)eot < V));
    for (size_t id = 0; id < V && id < 4096; id++) {
        size_t tl = 0;
        const char *tb = bpe_token_bytes(v, (uint32_t)id, &tl);
        CHECK(tb && tl > 0 && tl <= maxb);
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
    bpe_free(v);
    free(a);
    free(b);
    return 0;
}
