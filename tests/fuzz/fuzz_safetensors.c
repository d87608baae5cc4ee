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

/* Reads a table through embed_row (first, last and a middle row) and
 * embed_forward for the same rows; both must give the same floats. */
static void check_table(const embed_table *tab, const unsigned char *lo, const unsigned char *hi) {
    CHECK(tab->dtype == EMBED_F32 || tab->dtype == EMBED_F16 || tab->dtype == EMBED_BF16);
    size_t es = tab->dtype == EMBED_F32 ? 4 : 2;
    if (tab->rows == 0 || tab->cols == 0) return;
    CHECK(tab->data >= lo && tab->cols <= (size_t)(hi - lo) / es &&
          tab->rows <= (size_t)(hi - lo) / es / tab->cols);
    CHECK(tab->data + tab->rows * tab->cols * es <= hi);
    size_t C = tab->cols;
    float *row = malloc(C * sizeof *row), *out = malloc(3 * C * sizeof *out);
    CHECK(row && out);
    uint32_t ids[3] = {0, (uint32_t)(tab->rows - 1), (uint32_t)(tab->rows / 2)};
    if (tab->rows - 1 > UINT32_MAX) ids[1] = ids[2] = 0;
    embed_error err;
    CHECK(embed_forward(out, tab, NULL, 0, ids, 3, &err) == EMBED_OK);
    for (int i = 0; i < 3; i++) {
        embed_row(tab, ids[i], row);
        /* compare bits: NaN payloads must survive too */
        CHECK(!memcmp(row, out + (size_t)i * C, C * sizeof *row));
    }
    /* an id just past the table is an error, not a read */
    if (tab->rows <= UINT32_MAX) {
        uint32_t badid = (uint32_t)tab->rows;
        CHECK(embed_forward(out, tab, NULL, 0, &badid, 1, &err) == EMBED_ERR_ID && err.msg[0]);
    }
    free(row);
    free(out);
}

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
