/* fuzz_safetensors - libFuzzer target for the safetensors reader.
 *
 * The input is a whole file image given to embed_open_mem. When it is
 * accepted, every tensor view must lie inside the image, follow the
 * previous one (data-offset order, contiguous from 0, ending at the file's
 * end), hold exactly elements x dtype bits / 8 bytes, and be found again by
 * name; every byte of every tensor is read (ASan catches reads outside the
 * image), and each tensor that is a valid table (embed_table_from_tensor,
 * embed_wte, embed_wpe) is read row by row through embed_row and
 * embed_forward, which must agree. A rejected image must come with a
 * message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"

#include "fuzz_check.h"
#include "table_rows.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    embed_error err;
    err.msg[0] = 0;
    embed_file *f = embed_open_mem_kind(data, size, "fuzz.safetensors", EMBED_KIND_SAFETENSORS, &err);
    if (!f) {
        CHECK(err.msg[0] != 0 && memchr(err.msg, 0, sizeof err.msg));
        CHECK(!strchr(err.msg, '\n'));
        return 0;
    }
    CHECK(size >= 8);
    uint64_t n;
    memcpy(&n, data, 8);
    CHECK(embed_header_len(f) == n && n <= size - 8);
    const unsigned char *buf = data + 8 + n, *hi = data + size;

    size_t count = embed_tensor_count(f);
    uint64_t expect_begin = 0;
    volatile unsigned sum = 0;
    for (size_t i = 0; i < count; i++) {
        const embed_tensor *t = embed_tensor_at(f, i);
        CHECK(t && t->name && t->dtype < EMBED_DTYPE_COUNT);
        CHECK(t->ndim >= 0 && t->ndim <= EMBED_MAX_DIMS);
        CHECK(t->begin == expect_begin && t->end >= t->begin);
        expect_begin = t->end;
        CHECK(t->end <= (uint64_t)(hi - buf));
        CHECK(t->data == buf + t->begin);
        /* elements x bits / 8 == bytes, computed in 128 bits */
        unsigned __int128 el = 1;
        for (int d = 0; d < t->ndim; d++) {
            el *= t->shape[d];
            if (el > ((unsigned __int128)1 << 70)) el = (unsigned __int128)1 << 70;
        }
        unsigned __int128 bits = el * embed_dtype_bits(t->dtype);
        CHECK(bits % 8 == 0 && bits / 8 == t->end - t->begin);
        for (uint64_t b = 0; b < t->end - t->begin; b++) sum += t->data[b];
        const embed_tensor *g = embed_find(f, t->name);
        CHECK(g && !strcmp(g->name, t->name));
        CHECK(embed_dtype_name(t->dtype) != NULL);
        CHECK(embed_dtype_from_name(embed_dtype_name(t->dtype)) == (int)t->dtype);
        CHECK(t->dtype == EMBED_F32 || t->dtype == EMBED_F16 || t->dtype == EMBED_BF16 ||
              embed_table_from_tensor(t, &(embed_table){0}, &err) != EMBED_OK);

        embed_table tab;
        if (embed_table_from_tensor(t, &tab, &err) == EMBED_OK)
            check_table(&tab, buf, hi);
        else
            CHECK(err.msg[0]);
    }
    CHECK(expect_begin == (uint64_t)(hi - buf));
    CHECK(!embed_find(f, "no such tensor \x01"));

    for (size_t i = 0; i < embed_metadata_count(f); i++) {
        const char *k = NULL, *v = NULL;
        embed_metadata_at(f, i, &k, &v);
        CHECK(k && v);
        sum += (unsigned)strlen(k) + (unsigned)strlen(v);
    }

    embed_table tab;
    if (embed_wte(f, NULL, &tab, &err) == EMBED_OK) check_table(&tab, buf, hi);
    else CHECK(err.msg[0]);
    if (embed_wpe(f, NULL, &tab, &err) == EMBED_OK) check_table(&tab, buf, hi);
    else CHECK(err.msg[0]);

    (void)sum;
    embed_close(f);
    return 0;
}
