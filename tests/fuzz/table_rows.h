/* table_rows.h - the fuzz targets' check of one table a weights file
 * gives (fuzz_safetensors, fuzz_table_*): it lies inside the image
 * [lo, hi), its first, last and middle rows read through embed_row and
 * embed_forward agree bit for bit (NaN payloads too), and an id just past
 * it is an error, not a read. */
#ifndef TABLE_ROWS_H
#define TABLE_ROWS_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"

#include "fuzz_check.h"

static void check_table(const embed_table *tab, const unsigned char *lo, const unsigned char *hi) {
    size_t rb = embed_table_row_bytes(tab);
    if (tab->rows == 0 || tab->cols == 0) return;
    CHECK(tab->data >= lo && rb && tab->rows <= (size_t)(hi - tab->data) / rb);
    size_t C = tab->cols;
    float *row = malloc(C * sizeof *row), *out = malloc(3 * C * sizeof *out);
    CHECK(row && out);
    uint32_t ids[3] = {0, (uint32_t)(tab->rows - 1), (uint32_t)(tab->rows / 2)};
    if (tab->rows - 1 > UINT32_MAX) ids[1] = ids[2] = 0;
    embed_error err;
    CHECK(embed_forward(out, tab, NULL, 0, ids, 3, &err) == EMBED_OK);
    for (int i = 0; i < 3; i++) {
        embed_row(tab, ids[i], row);
        CHECK(!memcmp(row, out + (size_t)i * C, C * sizeof *row));
    }
    if (tab->rows <= UINT32_MAX) {
        uint32_t badid = (uint32_t)tab->rows;
        CHECK(embed_forward(out, tab, NULL, 0, &badid, 1, &err) == EMBED_ERR_ID && err.msg[0]);
    }
    free(row);
    free(out);
}

#endif
