/* table_check.h - the property check the fuzz_table_* targets share: one
 * weights-file kind each (TABLE_KIND), opened from memory with
 * embed_open_mem_kind.
 *
 * Rejected: a one-line message. Accepted: the kind is the one asked for;
 * every tensor's view lies inside the image, in data-offset order without
 * overlaps, and is found again by name; every byte is read (ASan catches a
 * read outside); each tensor that is a valid table (and embed_wte and
 * embed_wpe) is read through embed_row and embed_forward, which must agree
 * bit for bit, and an id just past it is an error; the metadata is
 * readable. Then embed_save with no replacement writes the image back byte
 * for byte (llm.c, GGUF, .npy); for GGUF, with a new key-value it reopens
 * with that key and every tensor's bytes unchanged. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embed.h"

#include "fuzz_check.h"
#include "table_rows.h"

/* The file's bytes; NULL if it cannot be read. */
static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    CHECK(b && fread(b, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    embed_error err;
    err.msg[0] = 0;
    embed_file *f = embed_open_mem_kind(data, size, "fuzz", TABLE_KIND, &err);
    if (!f) {
        CHECK(err.msg[0] != 0 && memchr(err.msg, 0, sizeof err.msg));
        CHECK(!strchr(err.msg, '\n'));
        return 0;
    }
    CHECK(embed_file_kind(f) == TABLE_KIND);
    const unsigned char *hi = data + size;
    embed_info in;
    embed_file_info(f, &in);
    CHECK(in.kind == TABLE_KIND && in.data_start <= size);
    const unsigned char *buf = data + in.data_start;
    uint64_t prev_end = 0;
    volatile unsigned sum = 0;
    for (size_t i = 0; i < embed_tensor_count(f); i++) {
        const embed_tensor *t = embed_tensor_at(f, i);
        CHECK(t && t->name && t->ndim >= 0 && t->ndim <= EMBED_MAX_DIMS);
        CHECK(t->begin >= prev_end && t->end >= t->begin);
        prev_end = t->end;
        CHECK(t->end <= (uint64_t)(hi - buf) && t->data == buf + t->begin);
        for (uint64_t b = 0; b < t->end - t->begin; b++) sum += t->data[b];
        CHECK(embed_find(f, t->name) == t);
        CHECK(strcmp(embed_dtype_name(t->dtype), "?"));
        if (t->dtype < EMBED_DTYPE_COUNT) { /* elements x bits / 8 == bytes */
            unsigned __int128 el = 1;
            for (int d = 0; d < t->ndim; d++) {
                el *= t->shape[d];
                if (el > ((unsigned __int128)1 << 70)) el = (unsigned __int128)1 << 70;
            }
            CHECK(el * embed_dtype_bits(t->dtype) / 8 == t->end - t->begin);
        }
        embed_table tab;
        if (embed_table_from_tensor(t, &tab, &err) == EMBED_OK) check_table(&tab, buf, hi);
        else CHECK(err.msg[0]);
    }
    for (size_t i = 0; i < embed_metadata_count(f); i++) {
        const char *k = NULL, *v = NULL;
        embed_metadata_at(f, i, &k, &v);
        CHECK(k && v);
        sum += (unsigned)strlen(k) + (unsigned)strlen(v);
    }
    embed_table tab;
    if (embed_wte(f, NULL, &tab, &err) == EMBED_OK) check_table(&tab, buf, hi);
    else CHECK(err.msg[0] && !strchr(err.msg, '\n'));
    if (embed_wpe(f, NULL, &tab, &err) == EMBED_OK) check_table(&tab, buf, hi);
    else CHECK(err.msg[0] && !strchr(err.msg, '\n'));

    /* written back unchanged: the same bytes */
    if (size <= 1 << 20) {
        char path[64];
        snprintf(path, sizeof path, "/tmp/fuzz_table.%d", (int)getpid());
        CHECK(embed_save(path, f, NULL, 0, NULL, 0, &err) == EMBED_OK);
        size_t n;
        unsigned char *back = slurp(path, &n);
        CHECK(back && n == size && !memcmp(back, data, size));
        free(back);
        if (TABLE_KIND == EMBED_KIND_GGUF) {
            const char *meta[] = {"fuzz.key", "value"};
            CHECK(embed_save(path, f, NULL, 0, meta, 1, &err) == EMBED_OK);
            back = slurp(path, &n);
            CHECK(back);
            embed_file *g = embed_open_mem_kind(back, n, "again", TABLE_KIND, &err);
            if (!g) fprintf(stderr, "reopen: %s\n", err.msg);
            CHECK(g && embed_tensor_count(g) == embed_tensor_count(f));
            int seen = 0;
            for (size_t i = 0; i < embed_metadata_count(g); i++) {
                const char *k, *v;
                embed_metadata_at(g, i, &k, &v);
                if (!strcmp(k, "fuzz.key")) {
                    seen++;
                    CHECK(!strcmp(v, "value"));
                }
            }
            CHECK(seen == 1);
            for (size_t i = 0; i < embed_tensor_count(f); i++) {
                const embed_tensor *a = embed_tensor_at(f, i), *b = embed_tensor_at(g, i);
                CHECK(!strcmp(a->name, b->name) && a->end - a->begin == b->end - b->begin);
                CHECK(!memcmp(a->data, b->data, a->end - a->begin));
            }
            embed_close(g);
            free(back);
        }
        unlink(path);
    }
    (void)sum;
    embed_close(f);
    return 0;
}
