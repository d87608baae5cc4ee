/* test_tables_api.c - the library side of the llm.c, GGUF and .npy table
 * readers, on images built here byte by byte from the formats' documented
 * layouts (no gpt2in writer involved):
 *  - embed_open_mem tells the kinds apart; embed_open_mem_kind refuses a
 *    file of another kind naming both ("x.npy is a NumPy array (.npy), not
 *    a safetensors file"); embed_file_kind / embed_file_info / embed_table_name;
 *  - llm.c: the token table is V rows (not Vp), the padding rows are not
 *    tokens; embed_save writes it back byte for byte, replaces the V token
 *    rows keeping the padding, refuses a new tensor, another shape, metadata;
 *  - GGUF: dims reversed, Q8_0 rows dequantised as ggml does (q * f32(d)),
 *    in embed_row, embed_forward and embed_nearest alike; a quantised
 *    replacement is EMBED_ERR_DTYPE; metadata becomes a string key-value
 *    and a second save replaces it rather than adding a second;
 *  - a .npy table: one tensor "array", no position table. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "check.h"
#include "embed.h"

typedef struct {
    unsigned char *p;
    size_t n;
} img;

static void put(img *b, const void *s, size_t n) {
    b->p = realloc(b->p, b->n + n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void le(img *b, uint64_t v, int n) {
    unsigned char x[8];
    for (int k = 0; k < n; k++) x[k] = (unsigned char)(v >> (8 * k));
    put(b, x, (size_t)n);
}
static void gstr(img *b, const char *s) {
    le(b, strlen(s), 8);
    put(b, s, strlen(s));
}

/* llm.c: V 3, Vp 4, T 2, L 1, H 1, C 2, F32; value i of the parameters = i. */
static img llmc_image(void) {
    img b = {0};
    int32_t h[256] = {20240326, 3, 2, 3, 1, 1, 2, 4};
    put(&b, h, sizeof h);
    size_t n = 4 * 2 + 2 * 2 + (12 * 4 + 13 * 2) + 2 * 2;
    for (size_t i = 0; i < n; i++) {
        float f = (float)i;
        put(&b, &f, 4);
    }
    return b;
}

/* GGUF v3: token_embd Q8_0 [2 rows, 32 cols] (dims [32, 2]), position_embd
 * F32 [2, 32] (dims [32, 2]); one key-value. */
static img gguf_image(void) {
    img b = {0};
    put(&b, "GGUF", 4);
    le(&b, 3, 4);
    le(&b, 2, 8);
    le(&b, 1, 8);
    gstr(&b, "general.architecture");
    le(&b, 8, 4);
    gstr(&b, "gpt2");
    gstr(&b, "token_embd.weight");
    le(&b, 2, 4);
    le(&b, 32, 8);
    le(&b, 2, 8);
    le(&b, 8, 4);
    le(&b, 0, 8);
    gstr(&b, "position_embd.weight");
    le(&b, 2, 4);
    le(&b, 32, 8);
    le(&b, 2, 8);
    le(&b, 0, 4);
    le(&b, 96, 8); /* 68 bytes of Q8_0 padded to 32 */
    while (b.n % 32) le(&b, 0, 1);
    for (int r = 0; r < 2; r++) {
        uint16_t d = embed_f32_to_f16(r ? -0.375f : 0.01f);
        put(&b, &d, 2);
        for (int j = 0; j < 32; j++) le(&b, (uint64_t)(uint8_t)(int8_t)(j * 8 - 128 + r), 1);
    }
    while (b.n % 32) le(&b, 0, 1);
    for (int i = 0; i < 64; i++) {
        float f = (float)i / 4;
        put(&b, &f, 4);
    }
    return b;
}

static void test_llmc(void) {
    img b = llmc_image();
    embed_error err;
    embed_file *f = embed_open_mem(b.p, b.n, "m.bin", &err);
    CHECK(f, "llm.c image: %s", err.msg);
    if (!f) return;
    embed_info in;
    embed_file_info(f, &in);
    CHECK(embed_file_kind(f) == EMBED_KIND_LLMC_MODEL && in.version == 3 && in.data_start == 1024 &&
              in.llmc[3] == 3 && in.llmc[7] == 4, "info");
    CHECK(embed_tensor_count(f) == 16 && !strcmp(embed_tensor_at(f, 4)->name, "qkvw") &&
              embed_tensor_at(f, 4)->ndim == 3 && embed_tensor_at(f, 4)->shape[1] == 6,
          "tensors");
    CHECK(!strcmp(embed_table_name(f, 0), "wte") && !strcmp(embed_table_name(f, 1), "wpe"), "names");
    embed_table wte, wpe;
    CHECK(!embed_wte(f, NULL, &wte, &err) && wte.rows == 3 && wte.cols == 2, "wte: %s", err.msg);
    CHECK(!embed_wpe(f, NULL, &wpe, &err) && wpe.rows == 2, "wpe: %s", err.msg);
    uint32_t ids[2] = {2, 0};
    float out[4];
    CHECK(!embed_forward(out, &wte, &wpe, 0, ids, 2, &err) && out[0] == 4 + 8 && out[1] == 5 + 9 &&
              out[2] == 0 + 10 && out[3] == 1 + 11, "forward %g %g %g %g", out[0], out[1], out[2],
          out[3]);
    uint32_t pad = 3; /* a padding row: not a token */
    CHECK(embed_forward(out, &wte, NULL, 0, &pad, 1, &err) == EMBED_ERR_ID, "padding row looked up");
    char path[] = "/tmp/test_tables_api.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    close(fd);
    size_t n;
    unsigned char *back;
    CHECK(!embed_save(path, f, NULL, 0, NULL, 0, &err), "save: %s", err.msg);
    back = slurp(path, &n);
    CHECK(back && n == b.n && !memcmp(back, b.p, n), "written back differently");
    free(back);
    float rows[6] = {-1, -2, -3, -4, -5, -6};
    embed_out_tensor r = {"wte", EMBED_F32, 2, {3, 2}, rows};
    CHECK(!embed_save(path, f, &r, 1, NULL, 0, &err), "save wte: %s", err.msg);
    back = slurp(path, &n);
    CHECK(back && n == b.n && !memcmp(back + 1024, rows, 24) && !memcmp(back + 1048, b.p + 1048, n - 1048),
          "V rows replaced, padding and the rest kept");
    free(back);
    embed_out_tensor bad[3] = {{"wte", EMBED_F32, 2, {5, 2}, rows}, {"new", EMBED_F32, 1, {1}, rows},
                               {"wpe", EMBED_F16, 2, {2, 2}, rows}};
    for (int k = 0; k < 3; k++)
        CHECK(embed_save(path, f, &bad[k], 1, NULL, 0, &err) < 0 && err.msg[0], "bad replacement %d", k);
    const char *meta[] = {"k", "v"};
    CHECK(embed_save(path, f, NULL, 0, meta, 1, &err) == EMBED_ERR_FORMAT && strstr(err.msg, "metadata"),
          "metadata on llm.c: %s", err.msg);
    unlink(path);
    embed_close(f);
    /* the wrong kind, named */
    f = embed_open_mem_kind(b.p, b.n, "m.bin", EMBED_KIND_GGUF, &err);
    CHECK(!f && !strcmp(err.msg, "m.bin is an llm.c model checkpoint, not a GGUF file"), "%s", err.msg);
    free(b.p);
}

static void test_gguf(void) {
    img b = gguf_image();
    embed_error err;
    embed_file *f = embed_open_mem(b.p, b.n, "m.gguf", &err);
    CHECK(f, "GGUF image: %s", err.msg);
    if (!f) return;
    const embed_tensor *t = embed_find(f, "token_embd.weight");
    CHECK(t && t->dtype == EMBED_Q8_0 && t->shape[0] == 2 && t->shape[1] == 32 &&
              !strcmp(embed_dtype_name(t->dtype), "Q8_0"), "Q8_0 tensor");
    const char *k, *v;
    embed_metadata_at(f, 0, &k, &v);
    CHECK(embed_metadata_count(f) == 1 && !strcmp(k, "general.architecture") && !strcmp(v, "gpt2"), "kv");
    embed_table wte, wpe;
    CHECK(!embed_wte(f, NULL, &wte, &err) && !embed_wpe(f, NULL, &wpe, &err), "%s", err.msg);
    CHECK(embed_table_row_bytes(&wte) == 34, "row bytes");
    float row[32], out[64];
    uint32_t ids[2] = {1, 0};
    CHECK(!embed_forward(out, &wte, &wpe, 0, ids, 2, &err), "%s", err.msg);
    for (int r = 0; r < 2; r++) {
        embed_row(&wte, (size_t)r, row);
        float d = embed_f16_to_f32(embed_f32_to_f16(r ? -0.375f : 0.01f));
        for (int j = 0; j < 32; j++) {
            float want = (float)(int8_t)(j * 8 - 128 + r) * d;
            CHECK(row[j] == want, "row %d col %d: %g, want %g", r, j, row[j], want);
            float pos = (float)((1 - r) * 32 + j) / 4; /* token 1-r at position 1-r */
            CHECK(out[(1 - r) * 32 + j] == want + pos, "forward %d %d", r, j);
        }
    }
    embed_hit hit[2];
    size_t nh;
    embed_row(&wte, 1, row);
    CHECK(!embed_nearest(&wte, NULL, row, NULL, 0, 2, hit, &nh, &err) && nh == 2 && hit[0].id == 1,
          "nearest on Q8_0: %s", err.msg);
    char path[] = "/tmp/test_tables_api.XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    embed_out_tensor r = {"token_embd.weight", EMBED_Q8_0, 2, {2, 32}, b.p};
    CHECK(embed_save(path, f, &r, 1, NULL, 0, &err) == EMBED_ERR_DTYPE && strstr(err.msg, "re-quantise"),
          "quantised replacement: %s", err.msg);
    float z[64] = {0};
    embed_out_tensor rp = {"position_embd.weight", EMBED_F32, 2, {2, 32}, z};
    const char *meta[] = {"gpt2in.x", "1"};
    CHECK(!embed_save(path, f, &rp, 1, meta, 1, &err), "save with metadata: %s", err.msg);
    size_t n;
    unsigned char *once = slurp(path, &n);
    embed_file *g = once ? embed_open_mem(once, n, "once.gguf", &err) : NULL;
    CHECK(g && embed_metadata_count(g) == 2, "reopen: %s", err.msg);
    const char *meta2[] = {"gpt2in.x", "22"};
    char path2[] = "/tmp/test_tables_api.XXXXXX";
    fd = mkstemp(path2);
    close(fd);
    CHECK(g && !embed_save(path2, g, NULL, 0, meta2, 1, &err), "second save: %s", err.msg);
    size_t n2;
    unsigned char *twice = slurp(path2, &n2);
    embed_file *h = twice ? embed_open_mem(twice, n2, "twice.gguf", &err) : NULL;
    CHECK(h && embed_metadata_count(h) == 2, "a key set twice is one key-value: %s", err.msg);
    if (h) {
        embed_metadata_at(h, 1, &k, &v);
        CHECK(!strcmp(k, "gpt2in.x") && !strcmp(v, "22"), "%s = %s", k, v);
        const embed_tensor *p = embed_find(h, "position_embd.weight");
        CHECK(p && !memcmp(p->data, z, sizeof z), "replaced table");
        const embed_tensor *q = embed_find(h, "token_embd.weight");
        CHECK(q && !memcmp(q->data, t->data, 68), "kept table");
    }
    embed_close(h);
    embed_close(g);
    free(once);
    free(twice);
    unlink(path);
    unlink(path2);
    embed_close(f);
    free(b.p);
    /* key-values only (a vocabulary file), ending unpadded: no tensors */
    img kvo = {0};
    put(&kvo, "GGUF", 4);
    le(&kvo, 3, 4);
    le(&kvo, 0, 8);
    le(&kvo, 1, 8);
    gstr(&kvo, "general.architecture");
    le(&kvo, 8, 4);
    gstr(&kvo, "gpt2");
    f = embed_open_mem(kvo.p, kvo.n, "vocab.gguf", &err);
    CHECK(f && embed_tensor_count(f) == 0 && embed_metadata_count(f) == 1, "kv-only GGUF: %s",
          f ? "" : err.msg);
    embed_close(f);
    le(&kvo, 0, 1); /* a byte after the key-values: neither padding to 32 nor data */
    f = embed_open_mem(kvo.p, kvo.n, "vocab.gguf", &err);
    CHECK(f, "kv-only GGUF with a partial padding: %s", f ? "" : err.msg);
    embed_close(f);
    free(kvo.p);
}

static void test_npy_and_kinds(void) {
    char hdr[256];
    uint64_t shape[2] = {3, 4};
    size_t hl = embed_npy_header(EMBED_F32, 2, shape, hdr);
    img b = {0};
    put(&b, hdr, hl);
    for (int i = 0; i < 12; i++) {
        float x = (float)i;
        put(&b, &x, 4);
    }
    embed_error err;
    embed_file *f = embed_open_mem(b.p, b.n, "x.npy", &err);
    CHECK(f && embed_file_kind(f) == EMBED_KIND_NPY && embed_tensor_count(f) == 1 &&
              !strcmp(embed_tensor_at(f, 0)->name, "array"), "npy: %s", err.msg);
    embed_table t;
    CHECK(f && !embed_wte(f, NULL, &t, &err) && t.rows == 3 && t.cols == 4, "npy wte: %s", err.msg);
    CHECK(f && embed_wpe(f, NULL, &t, &err) == EMBED_ERR_NOTFOUND && strstr(err.msg, "no position table"),
          "npy wpe: %s", err.msg);
    CHECK(f && embed_table_name(f, 1) == NULL, "npy has no position table name");
    embed_close(f);
    f = embed_open_mem_kind(b.p, b.n, "x.npy", EMBED_KIND_SAFETENSORS, &err);
    CHECK(!f && !strcmp(err.msg, "x.npy is a NumPy array (.npy), not a safetensors file"), "%s", err.msg);
    /* an llm.c token shard is no weights file */
    int32_t sh[256] = {20240520, 1, 0};
    f = embed_open_mem(sh, sizeof sh, "s.bin", &err);
    CHECK(!f && strstr(err.msg, "s.bin is an llm.c token shard, not a weights file"), "%s", err.msg);
    free(b.p);
}

#ifdef GPT2IN_FAULTS
/* Every allocation of opening and saving each kind made to fail in turn
 * (and all after it): each run either works or says "out of memory", and
 * leaks nothing (the sanitizer build checks). */
static void alloc_failures(void) {
    img ims[3] = {llmc_image(), gguf_image(), {0}};
    char hdr[256];
    uint64_t shape[2] = {2, 2};
    size_t hl = embed_npy_header(EMBED_F32, 2, shape, hdr);
    put(&ims[2], hdr, hl);
    put(&ims[2], "0123456789abcdef", 16);
    char path[] = "/tmp/test_tables_api.XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    const char *meta[] = {"k", "v"};
    for (int i = 0; i < 3; i++)
        for (int sticky = 0; sticky <= 1; sticky++)
            for (long n = 1; n < 10000; n++) {
                embed_error err;
                err.msg[0] = 0;
                gpt2in_fault_set(n, sticky);
                embed_file *f = embed_open_mem(ims[i].p, ims[i].n, "img", &err);
                int rc = f ? embed_save(path, f, NULL, 0, meta, i == 1, &err) : EMBED_ERR_NOMEM;
                long made = gpt2in_fault_set(0, 0);
                embed_close(f);
                if (made < n) {
                    CHECK(f && rc == EMBED_OK, "kind %d: failed with no allocation failing: %s", i,
                          err.msg);
                    break;
                }
                CHECK(rc == EMBED_OK || rc == EMBED_ERR_NOMEM, "kind %d, allocation %ld: rc %d", i, n, rc);
                CHECK(rc == EMBED_OK || strstr(err.msg, "out of memory"), "kind %d, allocation %ld: %s",
                      i, n, err.msg);
            }
    unlink(path);
    for (int i = 0; i < 3; i++) free(ims[i].p);
}
#endif

int main(void) {
#ifdef GPT2IN_FAULTS
    alloc_failures();
#endif
    test_llmc();
    test_gguf();
    test_npy_and_kinds();
    printf("test_tables_api: %s\n", failures ? "FAILED" : "all checks passed");
    return failures ? 1 : 0;
}
