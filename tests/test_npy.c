/* test_npy.c - .npy reading against files NumPy wrote (every supported descr,
 * versions 1.0, 2.0, 3.0, 0-d, empty), writing (byte-identical to NumPy's own
 * header and data), and rejection of broken headers built in memory. The
 * malformed-file catalogue (tests/test_malformed.sh) covers the CLI side. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embed.h"
#include "check.h"

#define DIR "tests/fixtures/formats/"

/* element i of a as a double */
static double elem(const embed_npy *a, size_t i) {
    const unsigned char *p = a->data;
    switch (a->dtype) {
    case EMBED_F16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return embed_f16_to_f32(v); }
    case EMBED_F32: { float v; memcpy(&v, p + 4 * i, 4); return v; }
    case EMBED_F64: { double v; memcpy(&v, p + 8 * i, 8); return v; }
    case EMBED_I8: return ((const int8_t *)p)[i];
    case EMBED_I16: return ((const int16_t *)p)[i];
    case EMBED_I32: return ((const int32_t *)p)[i];
    case EMBED_I64: return (double)((const int64_t *)p)[i];
    case EMBED_U8: case EMBED_BOOL: return p[i];
    case EMBED_U16: return ((const uint16_t *)p)[i];
    case EMBED_U32: return ((const uint32_t *)p)[i];
    case EMBED_U64: return (double)((const uint64_t *)p)[i];
    default: return -999;
    }
}

static const struct {
    const char *tag;
    embed_dtype dt;
} types[] = {
    {"f2", EMBED_F16}, {"f4", EMBED_F32}, {"f8", EMBED_F64}, {"i1", EMBED_I8},
    {"i2", EMBED_I16}, {"i4", EMBED_I32}, {"i8", EMBED_I64}, {"u1", EMBED_U8},
    {"u2", EMBED_U16}, {"u4", EMBED_U32}, {"u8", EMBED_U64}, {"b1", EMBED_BOOL},
};

/* expects the read to fail with code and a message containing `part` */
static void expect_bad(const char *text, size_t len, int code, const char *part) {
    embed_npy a;
    embed_error err = {{0}};
    int rc = embed_npy_read_mem(text, len, "bad.npy", &a, &err);
    CHECK(rc == code, "expected %d, got %d (%s) for [%s]", code, rc, err.msg, part);
    CHECK(strstr(err.msg, part) != NULL, "message '%s' lacks '%s'", err.msg, part);
    CHECK(strncmp(err.msg, "bad.npy: ", 9) == 0, "message '%s' does not name the file", err.msg);
    CHECK(strchr(err.msg, '\n') == NULL, "message has a newline");
    if (rc == 0) embed_npy_free(&a);
}

/* a v1.0 file from a dict literal and n data bytes (padding like NumPy) */
static size_t build(char *out, const char *dict, size_t ndata) {
    size_t d = strlen(dict), total = (10 + d + 1 + 63) / 64 * 64;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (char)((total - 10) & 0xff);
    out[9] = (char)((total - 10) >> 8);
    memcpy(out + 10, dict, d);
    memset(out + 10 + d, ' ', total - 10 - d - 1);
    out[total - 1] = '\n';
    memset(out + total, 0, ndata);
    return total + ndata;
}

int main(void) {
    char path[256];
    embed_error err;
    /* every descr, every version */
    for (int v = 1; v <= 3; v++)
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            snprintf(path, sizeof path, DIR "npy_v%d_%s.npy", v, types[t].tag);
            embed_npy a;
            int rc = embed_npy_read(path, &a, &err);
            CHECK(rc == 0, "%s: %s", path, err.msg);
            if (rc) continue;
            CHECK(a.dtype == types[t].dt && a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3 &&
                      a.count == 6, "%s: dtype/shape", path);
            for (size_t i = 0; i < 6; i++) {
                double want = types[t].dt == EMBED_BOOL ? (double)(i % 2) : (double)i;
                CHECK(elem(&a, i) == want, "%s: element %zu = %g, want %g", path, i, elem(&a, i),
                      want);
            }
            CHECK(((uintptr_t)a.data % 8) == 0, "%s: data not aligned", path);
            /* header-only view agrees */
            size_t len, start;
            unsigned ver;
            unsigned char *b = slurp(path, &len);
            embed_npy h;
            CHECK(b && embed_npy_inspect(b, len, path, &h, &ver, &start, &err) == 0 &&
                      ver == (unsigned)v && h.data == NULL && start % 64 == 0 && h.count == 6,
                  "%s: inspect", path);
            /* our writer makes the same bytes as NumPy (version 1.0 files) */
            if (v == 1 && b) {
                char hdr[256];
                size_t hl = embed_npy_header(a.dtype, a.ndim, a.shape, hdr);
                CHECK(hl == start && !memcmp(hdr, b, hl), "%s: header differs from NumPy's", path);
                snprintf(path, sizeof path, "%s/gpt2in-npy-%d.npy",
                         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
                CHECK(embed_npy_write(path, a.dtype, a.ndim, a.shape, a.data, &err) == 0, "%s",
                      err.msg);
                size_t l2;
                unsigned char *w = slurp(path, &l2);
                CHECK(w && l2 == len && !memcmp(w, b, len), "written file differs from NumPy's");
                free(w);
                unlink(path);
            }
            free(b);
            embed_npy_free(&a);
            CHECK(a.data == NULL, "free clears data");
        }

    embed_npy a;
    CHECK(embed_npy_read(DIR "npy_scalar.npy", &a, &err) == 0 && a.ndim == 0 && a.count == 1 &&
              a.dtype == EMBED_F64 && elem(&a, 0) == 2.5, "0-d: %s", err.msg);
    embed_npy_free(&a);
    CHECK(embed_npy_read(DIR "npy_empty.npy", &a, &err) == 0 && a.ndim == 2 && a.count == 0 &&
              a.shape[0] == 0 && a.shape[1] == 3, "empty: %s", err.msg);
    embed_npy_free(&a);
    CHECK(embed_npy_read(DIR "npy_1d.npy", &a, &err) == 0 && a.ndim == 1 && a.count == 5 &&
              elem(&a, 4) == 4, "1-d: %s", err.msg);
    embed_npy_free(&a);
    CHECK(embed_npy_read(DIR "does-not-exist.npy", &a, &err) == EMBED_ERR_IO, "missing file");

    /* header writer: 1-d tuples get a comma, the data starts at a multiple of 64 */
    char hdr[256];
    uint64_t sh8[8];
    for (int i = 0; i < 8; i++) sh8[i] = UINT64_MAX;
    size_t hl = embed_npy_header(EMBED_F32, 8, sh8, hdr);
    CHECK(hl == 256 && hdr[255] == '\n', "8 huge dims: %zu", hl);
    uint64_t s1 = 7;
    hl = embed_npy_header(EMBED_U16, 1, &s1, hdr);
    CHECK(hl == 128 && memmem(hdr, hl, "'shape': (7,), }", 16) != NULL, "1-d header");
    CHECK(embed_npy_header(EMBED_BF16, 1, &s1, hdr) == 0, "BF16 has no descr");

    /* rejected headers */
    char buf[1024];
    size_t n;
    n = build(buf, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8);
    expect_bad(buf, n, EMBED_ERR_FORMAT, "fortran_order True");
    n = build(buf, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8);
    expect_bad(buf, n, EMBED_ERR_DTYPE, "big-endian");
    n = build(buf, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16);
    expect_bad(buf, n, EMBED_ERR_DTYPE, "not supported");
    n = build(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1, }", 8);
    expect_bad(buf, n, EMBED_ERR_FORMAT, "unknown key 'x'");
    n = build(buf, "{'descr': '<f4', 'shape': (2,), }", 8);
    expect_bad(buf, n, EMBED_ERR_FORMAT, "missing key 'fortran_order'");
    n = build(buf, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8);
    expect_bad(buf, n, EMBED_ERR_FORMAT, "duplicate key");
    n = build(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", 8);
    expect_bad(buf, n, EMBED_ERR_FORMAT, "not a tuple");
    n = build(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8);
    expect_bad(buf, n, EMBED_ERR_FORMAT, "negative");
    n = build(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,), }", 8);
    expect_bad(buf, n, EMBED_ERR_FORMAT, "expected ','");
    n = build(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551616,), }", 0);
    expect_bad(buf, n, EMBED_ERR_FORMAT, "64 bits");
    n = build(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 0);
    expect_bad(buf, n, EMBED_ERR_FORMAT, "more than 2^64");
    n = build(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20);
    expect_bad(buf, n, EMBED_ERR_FORMAT, "needs 24 data bytes");
    expect_bad(buf, n, EMBED_ERR_FORMAT, "truncated");
    n = build(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 28);
    expect_bad(buf, n, EMBED_ERR_FORMAT, "trailing bytes");
    n = build(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", 8);
    expect_bad(buf, n, EMBED_ERR_FORMAT, "after the dict");
    n = build(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8);
    buf[6] = 4;
    expect_bad(buf, n, EMBED_ERR_FORMAT, "version 4.0");
    buf[6] = 1;
    buf[8] = 0x11, buf[9] = 0x27; /* 10001 */
    expect_bad(buf, n, EMBED_ERR_FORMAT, "over the limit of 10000");
    expect_bad("\x93NUMPY\x01", 7, EMBED_ERR_FORMAT, "not a .npy file");
    expect_bad("PK\x03\x04 zip file!", 14, EMBED_ERR_FORMAT, "no \\x93NUMPY magic");
    expect_bad("version https://git-lfs.github.com/spec/v1\n", 43, EMBED_ERR_FORMAT, "Git LFS");

    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("npy: all checks passed\n");
    return 0;
}
