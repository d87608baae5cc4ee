/* load_llmc.c - llm.c's decoding table gpt2_tokenizer.bin: a header of 256
 * little-endian uint32 ([0] 20240328, [1] version 1 or 2, [2] vocab size,
 * [3] end-of-text id in version 2; version 1 is GPT-2's, 50257 tokens with
 * end of text 50256, as llm.c assumes), then each token as a uint8 length
 * (1..255) and its raw bytes, nothing after.
 *
 * The file has no merges: it is for decoding. It can encode too, ranking
 * tokens by id as tiktoken does, which for GPT-2's file is GPT-2's encoder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load_vocab.h"

#define LLMC_MAGIC 20240328u

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

bpe *bpe_load_llmc_mem(const char *data, size_t len, const char *name, bpe_error *err) {
    if (!data) {
        bpe_fail(err, BPE_ERR_ARG, 0, "bpe_load_llmc_mem: NULL buffer");
        return NULL;
    }
    if (!name) name = "llm.c tokenizer";
    const uint8_t *d = (const uint8_t *)data;
    if (len < 1024) {
        bpe_fail(err, BPE_ERR_FORMAT, len, "%s: truncated: %zu bytes, the header alone is 1024", name, len);
        return NULL;
    }
    uint32_t magic = le32(d), version = le32(d + 4), n = le32(d + 8), eot = le32(d + 12);
    if (magic != LLMC_MAGIC) {
        bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: at byte 0: magic %u is not llm.c's tokenizer magic %u", name, magic,
                 LLMC_MAGIC);
        return NULL;
    }
    if (version != 1 && version != 2) {
        bpe_fail(err, BPE_ERR_FORMAT, 4, "%s: at byte 4: version %u is not supported (1 or 2)", name, version);
        return NULL;
    }
    if (version == 1) {
        /* version 1 did not store the end-of-text id: it was GPT-2's */
        if (n != 50257) {
            bpe_fail(err, BPE_ERR_FORMAT, 8, "%s: at byte 8: a version 1 file is GPT-2's 50257 tokens, not %u", name, n);
            return NULL;
        }
        eot = 50256;
    }
    if (n == 0 || n >= BPE_MAX_TOKENS) {
        bpe_fail(err, BPE_ERR_FORMAT, 8, "%s: at byte 8: vocabulary size %u (1..%u)", name, n, BPE_MAX_TOKENS - 1);
        return NULL;
    }
    if (eot >= n) {
        bpe_fail(err, BPE_ERR_FORMAT, 12, "%s: at byte 12: end-of-text id %d is not a token id (0..%u)", name,
                 (int32_t)eot, n - 1);
        return NULL;
    }
    if ((len - 1024) / 2 < n) {  /* a token takes 2 bytes at least */
        bpe_fail(err, BPE_ERR_FORMAT, 8, "%s: at byte 8: %u tokens cannot fit in the %zu bytes after the header",
                 name, n, len - 1024);
        return NULL;
    }
    lv_vocab lv;
    if (bpe_lv_init(&lv, name, n, err)) return NULL;
    lv.eot = (int32_t)eot;
    bpe_lv_special(&lv, eot, 0);
    bpe *v = NULL;
    char q[160];
    size_t at = 1024;
    for (uint32_t i = 0; i < n; i++) {
        if (at >= len) {
            bpe_fail(err, BPE_ERR_FORMAT, at, "%s: at byte %zu: truncated: token %u of %u is missing", name, at, i, n);
            goto out;
        }
        size_t tl = d[at];
        if (tl == 0) {
            bpe_fail(err, BPE_ERR_FORMAT, at, "%s: at byte %zu: token %u has length 0", name, at, i);
            goto out;
        }
        if (tl > len - at - 1) {
            bpe_fail(err, BPE_ERR_FORMAT, at, "%s: at byte %zu: truncated: token %u needs %zu bytes, %zu left", name,
                     at, i, tl, len - at - 1);
            goto out;
        }
        uint32_t other;
        int e = bpe_lv_set(&lv, i, d + at + 1, tl, &other);
        if (e == BPE_ERR_NOMEM) {
            bpe_fail(err, e, 0, "%s: out of memory", name);
            goto out;
        }
        if (e) {
            bpe_fail(err, BPE_ERR_FORMAT, at, "%s: at byte %zu: token %u %s is token %u already", name, at, i,
                     bpe_lv_quote(q, sizeof q, d + at + 1, tl), other);
            goto out;
        }
        at += 1 + tl;
    }
    if (at != len) {
        bpe_fail(err, BPE_ERR_FORMAT, at, "%s: at byte %zu: %zu bytes after the last of %u tokens", name, at, len - at, n);
        goto out;
    }
    if (bpe_lv_rank_bytes(&lv, err)) goto out;
    bpe_lv_rank_by_id(&lv);
    v = bpe_lv_finish(&lv, err);
out:
    bpe_lv_free(&lv);
    return v;
}
