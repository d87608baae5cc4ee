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

#include "vocab_check.h"

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
    check_vocab(v, data, size, 1);
    bpe_free(v);
    free(a);
    free(b);
    return 0;
}
