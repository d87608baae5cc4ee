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

#include "vocab_check.h"

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
    check_vocab(v, data, size, 0);
    bpe_free(v);
    free(ej);
    free(vb);
    return 0;
}
