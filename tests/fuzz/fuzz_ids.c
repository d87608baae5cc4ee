/* fuzz_ids - libFuzzer target for the token-id readers and writers of
 * tools/cli_ids.c (every format of tools/cli.h), over fmemopen.
 *
 * Byte 0 picks the format (bits 0-2: ids_format 0-5, 6 and 7 auto) and
 * whether ids are checked against GPT-2's vocabulary size (bit 3), byte 1
 * the streaming reader's buffer size; the rest is the file. ids_read_batch
 * and the streaming ids_reader must agree (both fail, or both give the same
 * ids and shape, B * T of them, each call's first id at row * T + col);
 * accepted ids are < the vocabulary size when one is given; and accepted
 * ids written back by ids_writer (to a seekable and to a pipe-like stream)
 * must read back to the same ids, in the format written and, for the
 * formats told from their bytes, as auto. The readers print their errors:
 * stderr goes to /dev/null around each call. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define FUZZ_CHECK_FIRST if (saved_stderr) stderr = saved_stderr
#include "fuzz_check.h"

static FILE *devnull, *saved_stderr;

static void quiet(void) {
    if (!devnull) devnull = fopen("/dev/null", "w");
    if (devnull) {
        saved_stderr = stderr;
        stderr = devnull;
    }
}

static void loud(void) {
    if (saved_stderr) stderr = saved_stderr;
    saved_stderr = NULL;
}

/* Reads with the streaming reader in blocks of cap, checking that each
 * block starts where its row and column say; returns 0 or CLI_ERR. */
static int read_stream(const uint8_t *buf, size_t len, ids_format fmt, size_t V, size_t cap,
                       uint32_t **ids, size_t *n, ids_shape *shape) {
    *ids = NULL;
    *n = 0;
    uint64_t *starts = NULL; /* (row, col, index) of each block */
    size_t n_blocks = 0;
    FILE *in = fmemopen((void *)buf, len, "r");
    if (!in) return -1;
    ids_reader *r = ids_reader_open(in, "fuzz.ids", fmt, V);
    if (!r) {
        fclose(in);
        return CLI_ERR;
    }
    uint32_t *block = malloc(cap * sizeof *block);
    CHECK(block);
    int rc = 0;
    for (;;) {
        size_t got = 0;
        uint64_t row = 0, col = 0;
        rc = ids_reader_next_row(r, block, cap, &got, &row, &col);
        if (rc != 0 || got == 0) break;
        CHECK(got <= cap);
        uint64_t *st = realloc(starts, (n_blocks + 1) * 3 * sizeof *st);
        CHECK(st);
        starts = st;
        st[3 * n_blocks] = row, st[3 * n_blocks + 1] = col, st[3 * n_blocks + 2] = *n;
        n_blocks++;
        uint32_t *p = realloc(*ids, (*n + got) * sizeof *p);
        CHECK(p);
        memcpy(p + *n, block, got * sizeof *p);
        *ids = p;
        *n += got;
    }
    if (rc == 0) {
        ids_reader_shape(r, shape);
        CHECK(shape->ndim == 1 || shape->ndim == 2);
        CHECK(shape->B * shape->T == *n);
        if (shape->ndim == 1) CHECK(shape->B == 1);
        for (size_t b = 0; b < n_blocks; b++) {
            uint64_t row = starts[3 * b], col = starts[3 * b + 1], at = starts[3 * b + 2];
            CHECK(row < shape->B && col < shape->T && row * shape->T + col == at);
        }
    }
    free(starts);
    free(block);
    ids_reader_close(r);
    fclose(in);
    return rc;
}

static int read_batch(const uint8_t *buf, size_t len, ids_format fmt, size_t V, uint32_t **ids,
                      ids_shape *shape) {
    *ids = NULL;
    FILE *in = fmemopen((void *)buf, len, "r");
    if (!in) return -1;
    int rc = ids_read_batch(in, "fuzz.ids", fmt, V, ids, shape);
    fclose(in);
    return rc;
}

/* read_batch, flattened: the count only. */
static int read_all(const uint8_t *buf, size_t len, ids_format fmt, size_t V, uint32_t **ids,
                    size_t *n) {
    ids_shape sh = {0};
    int rc = read_batch(buf, len, fmt, V, ids, &sh);
    *n = rc ? 0 : (size_t)(sh.B * sh.T);
    return rc;
}

/* Writes ids in format fmt into a malloc'd image; seekable chooses a
 * seekable stream (patched header) or a pipe-like one (buffered). Returns
 * 0, or -1 when the writer refuses (e.g. an id too big for u16). */
static int write_ids(ids_format fmt, const uint32_t *ids, size_t n, int seekable, char **img,
                     size_t *len) {
    FILE *out;
    char *mem = NULL;
    size_t memlen = 0;
    out = seekable ? tmpfile() : open_memstream(&mem, &memlen);
    CHECK(out);
    ids_writer *w = ids_writer_open(out, fmt);
    int rc = w ? 0 : -1;
    if (w) {
        /* in two parts, to exercise more than one put */
        size_t half = n / 2;
        if (ids_writer_put(w, ids, half) != 0) rc = -1;
        if (rc == 0 && ids_writer_put(w, ids + half, n - half) != 0) rc = -1;
        if (ids_writer_close(w) != 0) rc = -1;
    }
    if (seekable) {
        long end = ftell(out);
        CHECK(end >= 0);
        *len = (size_t)end;
        *img = malloc(*len + 1);
        CHECK(*img);
        rewind(out);
        CHECK(fread(*img, 1, *len, out) == *len);
        fclose(out);
    } else {
        fclose(out);
        *img = mem;
        *len = memlen;
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    ids_format fmt = (data[0] & 7) < 6 ? (ids_format)(data[0] & 7) : IDS_AUTO;
    size_t V = data[0] & 0x08 ? 50257 : 0;
    size_t cap = (size_t)data[1] + 1;
    const uint8_t *buf = data + 2;
    size_t len = size - 2;

    quiet();
    uint32_t *a = NULL, *b = NULL;
    size_t nb = 0;
    ids_shape sa = {0}, sb = {0};
    int ra = read_batch(buf, len, fmt, V, &a, &sa);
    int rb = read_stream(buf, len, fmt, V, cap, &b, &nb, &sb);
    loud();
    if (ra == -1 || rb == -1) { /* fmemopen refused (e.g. an empty buffer) */
        free(a);
        free(b);
        return 0;
    }
    CHECK((ra == 0) == (rb == 0));
    if (ra != 0) {
        CHECK(ra == CLI_ERR);
        free(a);
        free(b);
        return 0;
    }
    size_t na = (size_t)(sa.B * sa.T);
    CHECK(sa.ndim == sb.ndim && sa.B == sb.B && sa.T == sb.T);
    CHECK(na == nb && (na == 0 || !memcmp(a, b, na * sizeof *a)));
    for (size_t i = 0; i < na && V; i++) CHECK(a[i] < V);

    /* what was read writes back and reads again to the same ids */
    for (int seekable = 0; fmt != IDS_AUTO && seekable < 2; seekable++) {
        char *img = NULL;
        size_t ilen = 0;
        quiet();
        int wr = write_ids(fmt, a, na, seekable, &img, &ilen);
        loud();
        if (wr == 0) {
            uint32_t *c = NULL;
            size_t nc = 0;
            quiet();
            int rc = ilen ? read_all((const uint8_t *)img, ilen, fmt, V, &c, &nc) : 0;
            loud();
            if (rc != -1) {
                CHECK(rc == 0 && nc == na);
                CHECK(na == 0 || !memcmp(a, c, na * sizeof *a));
            }
            free(c);
            c = NULL;
            if (ilen && fmt != IDS_U16 && fmt != IDS_U32) { /* the others are told from their bytes */
                quiet();
                rc = read_all((const uint8_t *)img, ilen, IDS_AUTO, V, &c, &nc);
                loud();
                if (rc != -1) {
                    CHECK(rc == 0 && nc == na);
                    CHECK(na == 0 || !memcmp(a, c, na * sizeof *a));
                }
                free(c);
            }
        }
        free(img);
    }
    free(a);
    free(b);
    return 0;
}
