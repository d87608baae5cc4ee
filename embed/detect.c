/* detect.c - what kind of file a buffer starts: told by its first bytes
 * only (magic numbers, then JSON's first character, then text), never by
 * a file name, so that a pipe is told apart as well as a file, and a file
 * of the wrong kind can be named for what it is.
 *
 * The magics cannot collide: a safetensors header length is at most 10^8,
 * so its top bytes are zero, while JSON and text start with printable
 * bytes, and llm.c's int32 magics come before the safetensors test. */
#include <string.h>

#include "embed.h"

static const struct {
    const char *name, *desc;
} kinds[EMBED_KIND_COUNT] = {
    [EMBED_KIND_EMPTY] = {"empty", "empty"},
    [EMBED_KIND_UNKNOWN] = {"unknown", "binary data of no known kind"},
    [EMBED_KIND_TEXT] = {"text", "text"},
    [EMBED_KIND_JSON] = {"json", "JSON"},
    [EMBED_KIND_NPY] = {"npy", "a NumPy array (.npy)"},
    [EMBED_KIND_SAFETENSORS] = {"safetensors", "a safetensors file"},
    [EMBED_KIND_GGUF] = {"gguf", "a GGUF file"},
    [EMBED_KIND_LLMC_SHARD] = {"llmc", "an llm.c token shard"},
    [EMBED_KIND_LLMC_MODEL] = {"llmc-model", "an llm.c model checkpoint"},
    [EMBED_KIND_LLMC_TOKENIZER] = {"llmc-tokenizer", "an llm.c tokenizer file"},
    [EMBED_KIND_ZIP] = {"zip", "a zip archive (a PyTorch .pt/.bin or .npz?)"},
    [EMBED_KIND_PICKLE] = {"pickle", "a Python pickle (an old PyTorch checkpoint?)"},
    [EMBED_KIND_GZIP] = {"gzip", "gzip-compressed data"},
    [EMBED_KIND_ZSTD] = {"zstd", "zstd-compressed data"},
    [EMBED_KIND_GIT_LFS] = {"git-lfs", "a Git LFS pointer file (not the data itself)"},
};

const char *embed_kind_name(embed_kind k) {
    return (unsigned)k < EMBED_KIND_COUNT ? kinds[k].name : "unknown";
}

const char *embed_kind_desc(embed_kind k) {
    return (unsigned)k < EMBED_KIND_COUNT ? kinds[k].desc : kinds[EMBED_KIND_UNKNOWN].desc;
}

int embed_kind_from_name(const char *name) {
    if (!name)
        return -1;
    for (int i = 0; i < EMBED_KIND_COUNT; i++)
        if (!strcmp(name, kinds[i].name))
            return i;
    return -1;
}

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int is_ws(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* How far into a text the check for control bytes and bytes never in
 * UTF-8 looks: a text is judged by its start, as a binary file is by its
 * magic. */
#define TEXT_LOOK 1024

embed_kind embed_detect(const void *buf, size_t len) {
    const unsigned char *p = buf;
    if (len == 0)
        return EMBED_KIND_EMPTY;
    if (len >= 6 && !memcmp(p, "\x93NUMPY", 6))
        return EMBED_KIND_NPY;
    if (len >= 4 && !memcmp(p, "GGUF", 4))
        return EMBED_KIND_GGUF;
    if (len >= 4) {
        switch (le32(p)) { /* llm.c's int32 magics */
        case EMBED_LLMC_SHARD_MAGIC: return EMBED_KIND_LLMC_SHARD;
        case EMBED_LLMC_MODEL_MAGIC: return EMBED_KIND_LLMC_MODEL;
        case EMBED_LLMC_TOKENIZER_MAGIC: return EMBED_KIND_LLMC_TOKENIZER;
        }
    }
    /* safetensors: a u64 header length the reader would take (at most
     * 10^8), then the header's '{' (JSON allows blanks before it) */
    if (len >= 9) {
        uint64_t n = le32(p) | (uint64_t)le32(p + 4) << 32;
        if (n >= 2 && n <= 100000000) {
            size_t i = 8;
            while (i < len && i - 8 < n && is_ws(p[i]))
                i++;
            if (i < len && i - 8 < n && p[i] == '{')
                return EMBED_KIND_SAFETENSORS;
        }
    }
    if (len >= 4 && !memcmp(p, "PK\x03\x04", 4))
        return EMBED_KIND_ZIP;
    if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b)
        return EMBED_KIND_GZIP;
    if (len >= 4 && !memcmp(p, "\x28\xb5\x2f\xfd", 4))
        return EMBED_KIND_ZSTD;
    if (len >= 2 && p[0] == 0x80 && p[1] >= 2 && p[1] <= 5)
        return EMBED_KIND_PICKLE;
    if (len >= 23 && !memcmp(p, "version https://git-lfs", 23))
        return EMBED_KIND_GIT_LFS;
    size_t i = 0;
    if (len >= 3 && !memcmp(p, "\xef\xbb\xbf", 3))
        i = 3; /* a UTF-8 byte order mark */
    while (i < len && is_ws(p[i]))
        i++;
    size_t end = len - i > TEXT_LOOK ? i + TEXT_LOOK : len;
    for (size_t k = i; k < end; k++)
        if ((p[k] < 0x20 && !is_ws(p[k])) || p[k] == 0x7f || p[k] == 0xc0 || p[k] == 0xc1 ||
            p[k] >= 0xf5) /* (bytes that are never in UTF-8) */
            return EMBED_KIND_UNKNOWN;
    if (i < len && (p[i] == '[' || p[i] == '{'))
        return EMBED_KIND_JSON;
    return EMBED_KIND_TEXT;
}
