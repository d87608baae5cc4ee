/* test_safetensors.c - the safetensors reader on a file written by hand from
 * the spec (tests/gen_formats_refs.py: indented JSON, keys out of offset
 * order, unaligned data start, zero-size and rank-0 tensors, escaped
 * metadata), accepted edge cases, and the exact messages for rejected
 * headers built in memory. Saving is in test_save.c, the malformed-file
 * catalogue in test_malformed.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "check.h"

#define DIR "tests/fixtures/formats/"

/* An image: u64 N + header text + ndata zero bytes (caller frees). */
static unsigned char *image(const char *hdr, size_t ndata, size_t *len) {
    size_t n = strlen(hdr);
    unsigned char *b = calloc(1, 8 + n + ndata + 1);
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)n >> (8 * k));
    memcpy(b + 8, hdr, n);
    *len = 8 + n + ndata;
    return b;
}

static void expect_ok(const char *hdr, size_t ndata, size_t n_tensors) {
    size_t len;
    unsigned char *b = image(hdr, ndata, &len);
    embed_error err = {{0}};
    embed_file *f = embed_open_mem(b, len, "ok.safetensors", &err);
    CHECK(f != NULL, "rejected valid header %s: %s", hdr, err.msg);
    if (f) {
        CHECK(embed_tensor_count(f) == n_tensors, "%s: %zu tensors", hdr, embed_tensor_count(f));
        embed_close(f);
    }
    free(b);
}

/* Rejected, and the one-line message contains `part`. */
static void expect_bad(const char *hdr, size_t ndata, const char *part) {
    size_t len;
    unsigned char *b = image(hdr, ndata, &len);
    embed_error err = {{0}};
    embed_file *f = embed_open_mem(b, len, "x.safetensors", &err);
    CHECK(f == NULL, "accepted bad header %s", hdr);
    if (f) embed_close(f);
    CHECK(strstr(err.msg, part) != NULL, "message '%s' lacks '%s'", err.msg, part);
    CHECK(!strncmp(err.msg, "x.safetensors: ", 15), "message '%s' does not name the file", err.msg);
    CHECK(!strchr(err.msg, '\n'), "multi-line message");
    free(b);
}

static void expect_raw_bad(const void *buf, size_t len, const char *part) {
    embed_error err = {{0}};
    embed_file *f = embed_open_mem(buf, len, "x.safetensors", &err);
    CHECK(f == NULL, "accepted a bad image (%s)", part);
    if (f) embed_close(f);
    CHECK(strstr(err.msg, part) != NULL, "message '%s' lacks '%s'", err.msg, part);
}

int main(void) {
    embed_error err;
    embed_file *f = embed_open(DIR "sample.safetensors", &err);
    CHECK(f != NULL, "sample: %s", err.msg);
    if (!f) return 1;

    /* against the generator's manifest */
    FILE *m = fopen(DIR "sample.txt", "r");
    CHECK(m != NULL, "no sample.txt");
    char line[512];
    size_t i = 0;
    while (m && fgets(line, sizeof line, m)) {
        char name[64], dt[16], shape[64];
        unsigned long long b, e, hl;
        if (sscanf(line, "header_len %llu", &hl) == 1) {
            CHECK(embed_header_len(f) == hl, "header_len %zu, want %llu", embed_header_len(f), hl);
            CHECK((embed_header_len(f) + 8) % 4 != 0, "the sample should start unaligned");
            continue;
        }
        if (sscanf(line, "%63s %15s %63s %llu %llu", name, dt, shape, &b, &e) != 5) continue;
        const embed_tensor *t = embed_tensor_at(f, i++);
        CHECK(t && !strcmp(t->name, name), "tensor %zu: %s, want %s", i - 1, t ? t->name : "-", name);
        if (!t) continue;
        CHECK(embed_find(f, name) == t, "find %s", name);
        CHECK(!strcmp(embed_dtype_name(t->dtype), dt), "%s dtype", name);
        CHECK(t->begin == b && t->end == e, "%s offsets", name);
        char s[64] = "";
        size_t o = 0;
        for (int d = 0; d < t->ndim; d++)
            o += (size_t)snprintf(s + o, sizeof s - o, "%s%llu", d ? "," : "",
                                  (unsigned long long)t->shape[d]);
        CHECK(!strcmp(t->ndim ? s : "-", shape), "%s shape %s, want %s", name, s, shape);
        CHECK(t->data == (const unsigned char *)embed_tensor_at(f, 0)->data + t->begin,
              "%s data pointer", name);
    }
    if (m) fclose(m);
    CHECK(i == 7 && embed_tensor_count(f) == 7, "%zu tensors", embed_tensor_count(f));
    CHECK(embed_find(f, "nope") == NULL && embed_tensor_at(f, 7) == NULL, "absent tensor");

    /* values (read with memcpy: the data is unaligned) */
    const embed_tensor *a = embed_find(f, "a.f32");
    for (int k = 0; a && k < 6; k++) {
        float v;
        memcpy(&v, a->data + 4 * k, 4);
        CHECK(v == k * 0.25f - 1.0f, "a.f32[%d] = %g", k, v);
    }
    const embed_tensor *h = embed_find(f, "b.f16");
    uint16_t hv;
    memcpy(&hv, h->data + 2, 2);
    CHECK(h && embed_f16_to_f32(hv) == -2.0f, "b.f16[1]");
    const embed_tensor *bf = embed_find(f, "c.bf16");
    memcpy(&hv, bf->data + 4, 2);
    CHECK(bf && embed_bf16_to_f32(hv) > 3e38f, "c.bf16[2] is inf");
    const embed_tensor *sc = embed_find(f, "f.scalar");
    int32_t iv;
    memcpy(&iv, sc->data, 4);
    CHECK(sc->ndim == 0 && iv == 7, "rank-0 scalar");

    /* metadata, in file order, escapes decoded */
    CHECK(embed_metadata_count(f) == 2, "metadata count %zu", embed_metadata_count(f));
    const char *k, *v;
    embed_metadata_at(f, 0, &k, &v);
    CHECK(!strcmp(k, "format") && !strcmp(v, "pt"), "metadata 0");
    embed_metadata_at(f, 1, &k, &v);
    CHECK(!strcmp(k, "note") && !strcmp(v, "caf\xc3\xa9 \"quoted\""), "metadata 1: %s", v);
    embed_metadata_at(f, 2, &k, &v);
    CHECK(k == NULL && v == NULL, "metadata past the end");
    CHECK(!strcmp(embed_file_name(f), DIR "sample.safetensors"), "file name");

    /* the same image from memory */
    size_t len = embed_file_size(f);
    const unsigned char *base = embed_tensor_at(f, 0)->data - embed_header_len(f) - 8;
    embed_file *g = embed_open_mem(base, len, "mem", &err);
    CHECK(g && embed_tensor_count(g) == 7 && embed_find(g, "g.u8")->data[2] == 2, "open_mem");
    embed_close(g);
    embed_close(f);

    CHECK(embed_open(DIR "nope.safetensors", &err) == NULL && strstr(err.msg, "cannot open"),
          "missing file: %s", err.msg);
    CHECK(embed_open("tests", &err) == NULL && strstr(err.msg, "directory"), "directory: %s",
          err.msg);

    /* accepted edge cases */
    expect_ok("{}", 0, 0);
    expect_ok(" \t\r\n{ } \n", 0, 0);
    expect_ok("{\"__metadata__\":{}}", 0, 0);
    expect_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4, 1);
    expect_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[4294967296,0],\"data_offsets\":[0,0]}}", 0, 2);
    expect_ok("{\"data_offsets\":{\"data_offsets\":[0,1],\"shape\":[2],\"dtype\":\"F4\"}}", 1, 1);
    expect_ok("{\"\\u00e9\\ud83d\\ude00\\n\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[0,1]}}",
              1, 1);
    expect_ok("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]},"
              "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 2, 2);

    /* rejected, with the message the user sees */
    expect_bad("{\"wte.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12,
               "x.safetensors: tensor \"wte.weight\": data_offsets [0, 12] hold 12 bytes but "
               "F32 [2, 2] needs 16");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}",
               0, "more than 2^64 bits");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
               "end before they begin");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, "negative");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "hole of 4");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "overlaps");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 5,
               "1 trailing bytes");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
               "run past the end of the data");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
               "tensor \"a\" appears twice");
    expect_bad("{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "unknown dtype \"F33\"");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4,
               "unknown field \"x\"");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "missing field \"shape\"");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4,
               "fraction or exponent");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e0],\"data_offsets\":[0,4]}}", 4,
               "fraction or exponent");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", 4,
               "leading zero");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[18446744073709551616],\"data_offsets\":[0,4]}}",
               4, "does not fit in 64 bits");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4,
               "exactly 2 numbers");
    expect_bad("{\"__metadata__\":{\"n\":1}}", 0, "value of \"n\" is not a string");
    expect_bad("{\"__metadata__\":{\"n\":\"1\",\"n\":\"2\"}}", 0, "duplicate __metadata__ key");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, "expected ','");
    expect_bad("[]", 0, "must be a JSON object");
    expect_bad("{\"a\":1}", 0, "must be an object");
    expect_bad("{\"\\ud800\":{}}", 0, "lone high surrogate");
    expect_bad("{\"\\u0000\":{}}", 0, "\\u0000");
    expect_bad("{\"a\x01\":{}}", 0, "control character");
    expect_bad("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,1]}}", 1,
               "not a whole number of bytes");

    /* byte-level cases that strlen cannot build */
    unsigned char raw[64];
    memset(raw, 0, sizeof raw);
    raw[0] = 4;
    memcpy(raw + 8, "{}\0\0", 4);
    expect_raw_bad(raw, 12, "NUL padding is not allowed");
    memcpy(raw + 8, "{}\xff ", 4);
    expect_raw_bad(raw, 12, "not valid UTF-8 at header byte 2 (file byte 10)");
    memcpy(raw + 8, "{}\xc0\x80", 4); /* overlong NUL */
    expect_raw_bad(raw, 12, "not valid UTF-8");
    memcpy(raw + 8, "{}\xed\xa0\x80", 5); /* encoded surrogate */
    raw[0] = 5;
    expect_raw_bad(raw, 13, "not valid UTF-8");
    expect_raw_bad(raw, 7, "shorter than the 8-byte header length");
    expect_raw_bad(raw, 0, "shorter than the 8-byte header length");
    for (int q = 0; q < 8; q++) raw[q] = 0xff; /* N = 2^64 - 1: 8 + N wraps */
    expect_raw_bad(raw, 16, "over the limit of 100000000");
    memset(raw, 0, 8);
    raw[0] = 0x01, raw[1] = 0xe1, raw[2] = 0xf5, raw[3] = 0x05; /* 100000001 */
    expect_raw_bad(raw, 16, "over the limit");
    raw[0] = 0x00, raw[1] = 0xe1; /* exactly 10^8: under the limit, beyond the file */
    expect_raw_bad(raw, 16, "runs past the end of the file (16 bytes)");
    memset(raw, 0, 8);
    raw[0] = 9;
    expect_raw_bad(raw, 16, "runs past the end of the file");
    expect_raw_bad("version https://git-lfs.github.com/spec/v1\noid sha256:248d\nsize 548105171\n",
                   74, "Git LFS pointer");

    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("safetensors: all checks passed\n");
    return 0;
}
