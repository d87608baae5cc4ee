/* test_alloc_fail - out of memory, SQLite-style: the Nth allocation of an
 * operation fails, for N = 1, 2, 3 ... until the operation makes fewer than
 * N allocations (it then succeeded). Once with only the Nth failing, once
 * with every allocation from the Nth on failing. Each time the operation
 * must fail with its out-of-memory error (BPE_ERR_NOMEM, EMBED_ERR_NOMEM,
 * "out of memory" for those that return NULL) or succeed with the right
 * result; files it writes keep their old bytes and no temporary stays
 * behind; the sanitizer build's LeakSanitizer finds nothing leaked at exit.
 * Operations: bpe_load of a small vocabulary in GPT-2's format (written
 * here), the stream encoder and bpe_encode, the .npy readers and writer,
 * embed_open (safetensors) and embed_save.
 * Needs a test build (-DGPT2IN_FAULTS); elsewhere it is skipped. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "bpe.h"
#include "embed.h"

#ifndef GPT2IN_FAULTS
int main(void) {
    printf("skipped: needs a build with -DGPT2IN_FAULTS (the ASan build of make test)\n");
    return 77;
}
#else
#include "check.h"

enum { OP_OK = 0, OP_NOMEM = 1, OP_WRONG = -1 };

static char dir[256];
static char what_failed[600];
static long op_made; /* allocations the library made, when an op checks its result after */

/* Ends the library's part of an op: what follows (checking the result) may
 * allocate without failing. */
static void library_done(void) { op_made = gpt2in_fault_set(0, 0); }

static int count_files(void) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.' || strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static int is_oom(const char *msg) { return strstr(msg, "out of memory") != NULL; }

/* Runs op with failing allocations as described above; `name` for messages.
 * must_fail: some run must report running out of memory (an allocation that
 * is only an optimisation may fail without an error). */
static void each_failure(const char *name, int (*op)(void), int must_fail) {
    long nomem = 0, runs = 0;
    for (int sticky = 0; sticky <= 1; sticky++) {
        for (long n = 1;; n++) {
            op_made = -1;
            gpt2in_fault_set(n, sticky);
            int r = op();
            long made = op_made >= 0 ? op_made : gpt2in_fault_set(0, 0);
            runs++;
            if (made < n) {
                CHECK(r == OP_OK, "%s: failed with no allocation failing: %s", name, what_failed);
                break;
            }
            CHECK(r != OP_WRONG, "%s: allocation %ld of %ld failed%s: %s", name, n, made,
                  sticky ? " (and all after)" : "", what_failed);
            nomem += r == OP_NOMEM;
            if (n > 100000) {
                CHECK(0, "%s: more than 100000 allocations", name);
                break;
            }
        }
    }
    CHECK(nomem > 0 || !must_fail, "%s: no run reported running out of memory", name);
    printf("%-24s %6ld runs, %6ld out of memory\n", name, runs, nomem);
}

/* ---- bpe_load ------------------------------------------------------------- */

static char enc_path[300], merges_path[300];

/* GPT-2's byte -> character map, as UTF-8. */
static size_t byte_char(int b, char *out) {
    int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    unsigned cp = (unsigned)b;
    if (!printable) {
        int n = 0;
        for (int c = 0; c < b; c++) n += !((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE);
        cp = 0x100 + (unsigned)n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* 256 byte tokens, a few merges (as GPT-2's files: " the", "and", ...) and
 * <|endoftext|>. */
static void write_vocab(void) {
    static const char *merges[][2] = {{"h", "e"}, {"\xc4\xa0", "t"}, {"\xc4\xa0t", "he"}, {"a", "n"},
                                      {"an", "d"}, {"i", "n"}, {"\xc4\xa0", "a"}, {"1", "2"}};
    FILE *e = fopen(enc_path, "w"), *m = fopen(merges_path, "w");
    if (!e || !m) exit(2);
    fputc('{', e);
    for (int b = 0; b < 256; b++) {
        char c[3] = {0};
        byte_char(b, c);
        fprintf(e, "%s\"%s%s\": %d", b ? ", " : "", c[0] == '"' || c[0] == '\\' ? "\\" : "", c, b);
    }
    fprintf(m, "#version: 0.2\n");
    int id = 256;
    for (size_t i = 0; i < sizeof merges / sizeof *merges; i++, id++) {
        fprintf(e, ", \"%s%s\": %d", merges[i][0], merges[i][1], id);
        fprintf(m, "%s %s\n", merges[i][0], merges[i][1]);
    }
    fprintf(e, ", \"<|endoftext|>\": %d}", id);
    fclose(e);
    fclose(m);
}

static int op_load(void) {
    bpe_error err;
    bpe *v = bpe_load(enc_path, merges_path, &err);
    library_done();
    if (!v) {
        snprintf(what_failed, sizeof what_failed, "%s", err.msg);
        return is_oom(err.msg) ? OP_NOMEM : OP_WRONG;
    }
    uint32_t ids[8];
    size_t n = 0;
    int rc = bpe_encode(v, " the and", 8, 0, ids, NULL, 8, &n, &err);
    int ok = bpe_vocab_size(v) == 265 && bpe_eot_id(v) == 264 && rc == BPE_OK && n == 3 && ids[0] == 258 &&
             ids[1] == 32 && ids[2] == 260;
    snprintf(what_failed, sizeof what_failed, "a wrong vocabulary (rc %d, %zu tokens)", rc, n);
    bpe_free(v);
    return ok ? OP_OK : OP_WRONG;
}

/* ---- the stream encoder and bpe_encode ------------------------------------ */

static char *text;
static size_t text_len, want_n;
static uint32_t *want;

typedef struct {
    size_t n;
    int wrong;
} sink_ctx;

static int sink(void *ctx, const uint32_t *ids, const uint64_t *offsets, size_t n) {
    sink_ctx *c = ctx;
    (void)offsets;
    for (size_t i = 0; i < n; i++, c->n++)
        if (c->n >= want_n || ids[i] != want[c->n]) c->wrong = 1;
    return 0;
}

static int stream_rc(int rc, const bpe_error *err) {
    snprintf(what_failed, sizeof what_failed, "rc %d: %s", rc, err->msg);
    return rc == BPE_ERR_NOMEM ? OP_NOMEM : OP_WRONG;
}

static int stream_threads = 1;
static size_t stream_chunk = 1000;

/* With offsets, so that their buffer is allocated too. */
static int op_stream(void) {
    bpe_error err;
    bpe_stream *s = bpe_stream_new(bpe_gpt2(), BPE_SPECIAL_ALLOW | BPE_OFFSETS, stream_threads, &err);
    if (!s) {
        snprintf(what_failed, sizeof what_failed, "%s", err.msg);
        return is_oom(err.msg) ? OP_NOMEM : OP_WRONG;
    }
    sink_ctx c = {0};
    int rc = BPE_OK;
    for (size_t at = 0; at < text_len && rc == BPE_OK; at += stream_chunk)
        rc = bpe_stream_write(s, text + at, text_len - at < stream_chunk ? text_len - at : stream_chunk, sink,
                              &c, &err);
    if (rc == BPE_OK) rc = bpe_stream_finish(s, sink, &c, &err);
    bpe_stream_free(s);
    if (rc != BPE_OK) return stream_rc(rc, &err);
    snprintf(what_failed, sizeof what_failed, "wrong tokens (%zu, want %zu)", c.n, want_n);
    return c.wrong || c.n != want_n ? OP_WRONG : OP_OK;
}

/* Counting only: the tokens of long pieces go to the library's buffers. */
static int op_count(void) {
    bpe_error err;
    size_t n = 0;
    int rc = bpe_encode(bpe_gpt2(), text, text_len, BPE_SPECIAL_ALLOW, NULL, NULL, 0, &n, &err);
    if (rc != BPE_OK) return stream_rc(rc, &err);
    snprintf(what_failed, sizeof what_failed, "counted %zu tokens, want %zu", n, want_n);
    return n == want_n ? OP_OK : OP_WRONG;
}

static int op_encode(void) {
    bpe_error err;
    size_t n = 0;
    uint32_t *ids = malloc(text_len * sizeof *ids);  /* the caller's, not the library's */
    if (!ids) exit(2);
    int rc = bpe_encode(bpe_gpt2(), text, text_len, BPE_SPECIAL_ALLOW, ids, NULL, text_len, &n, &err);
    library_done();
    int ok = rc == BPE_OK && n == want_n && !memcmp(ids, want, n * sizeof *ids);
    free(ids);
    if (rc != BPE_OK) return stream_rc(rc, &err);
    snprintf(what_failed, sizeof what_failed, "wrong tokens");
    return ok ? OP_OK : OP_WRONG;
}

/* ---- .npy ------------------------------------------------------------------ */

static char npy_path[300], npy_out[300];
static unsigned char *npy_old;
static size_t npy_old_len;

static int npy_result(int rc, embed_npy *a, const embed_error *err) {
    if (rc != EMBED_OK) {
        snprintf(what_failed, sizeof what_failed, "rc %d: %s", rc, err->msg);
        return rc == EMBED_ERR_NOMEM ? OP_NOMEM : OP_WRONG;
    }
    const float *f = a->data;
    int ok = a->dtype == EMBED_F32 && a->ndim == 2 && a->shape[0] == 3 && a->shape[1] == 4 && f[11] == 11.5f;
    embed_npy_free(a);
    snprintf(what_failed, sizeof what_failed, "wrong array");
    return ok ? OP_OK : OP_WRONG;
}

static int op_npy_read(void) {
    embed_error err;
    embed_npy a;
    return npy_result(embed_npy_read(npy_path, &a, &err), &a, &err);
}

static int op_npy_read_mem(void) {
    embed_error err;
    embed_npy a;
    size_t len;
    unsigned char *b = slurp(npy_path, &len);
    if (!b) exit(2);
    int r = npy_result(embed_npy_read_mem(b, len, "a.npy", &a, &err), &a, &err);
    free(b);
    return r;
}

/* The out-of-memory error of the functions that write through an
 * embed_writer (embed_writer_open says it with errno ENOMEM). */
static int writer_nomem(int rc, const char *msg) {
    return rc == EMBED_ERR_NOMEM && is_oom(msg);
}

/* Overwrites npy_out, which holds npy_old: on failure it must still. */
static int op_npy_write(void) {
    embed_error err;
    float v[12];
    for (int i = 0; i < 12; i++) v[i] = (float)i + 0.5f;
    uint64_t shape[2] = {3, 4};
    int before = count_files();
    int rc = embed_npy_write(npy_out, EMBED_F32, 2, shape, v, &err);
    library_done();
    if (rc != EMBED_OK) {
        size_t len;
        unsigned char *now = slurp(npy_out, &len);
        int same = now && len == npy_old_len && !memcmp(now, npy_old, len);
        free(now);
        snprintf(what_failed, sizeof what_failed, "rc %d: %s%s%s", rc, err.msg, same ? "" : "; file changed",
                 count_files() == before ? "" : "; temporary file left");
        return writer_nomem(rc, err.msg) && same && count_files() == before ? OP_NOMEM : OP_WRONG;
    }
    /* put the old bytes back for the next run */
    FILE *f = fopen(npy_out, "wb");
    if (!f || fwrite(npy_old, 1, npy_old_len, f) != npy_old_len || fclose(f)) exit(2);
    return OP_OK;
}

/* ---- safetensors ----------------------------------------------------------- */

static const char *sample = "tests/fixtures/formats/sample.safetensors";
static char st_out[300];
static unsigned char *st_old;
static size_t st_old_len;

static int op_open(void) {
    embed_error err;
    embed_file *f = embed_open(sample, &err);
    if (!f) {
        snprintf(what_failed, sizeof what_failed, "%s", err.msg);
        return is_oom(err.msg) ? OP_NOMEM : OP_WRONG;
    }
    int ok = embed_tensor_count(f) > 0 && embed_find(f, "a.f32") != NULL;
    embed_close(f);
    snprintf(what_failed, sizeof what_failed, "wrong file");
    return ok ? OP_OK : OP_WRONG;
}

static int op_open_mem(void) {
    embed_error err;
    size_t len;
    unsigned char *b = slurp(sample, &len);
    if (!b) exit(2);
    embed_file *f = embed_open_mem(b, len, "sample", &err);
    int r = OP_OK;
    if (!f) {
        snprintf(what_failed, sizeof what_failed, "%s", err.msg);
        r = is_oom(err.msg) ? OP_NOMEM : OP_WRONG;
    } else if (!embed_find(f, "a.f32")) {
        snprintf(what_failed, sizeof what_failed, "wrong file");
        r = OP_WRONG;
    }
    embed_close(f);
    free(b);
    return r;
}

static embed_file *save_base;

/* Overwrites st_out (holding st_old) from save_base plus a replaced and a
 * new tensor and metadata. */
static int op_save(void) {
    embed_error err;
    float a_new[6] = {10, 11, 12, 13, 14, 15};
    uint16_t z[2] = {0x3f80, 0x4000};
    embed_out_tensor repl[2] = {
        {"a.f32", EMBED_F32, 2, {2, 3}, a_new},
        {"z.new", EMBED_BF16, 1, {2}, z},
    };
    const char *meta[] = {"format", "np", "added", "yes"};
    int before = count_files();
    int rc = embed_save(st_out, save_base, repl, 2, meta, 2, &err);
    library_done();
    if (rc != EMBED_OK) {
        size_t len;
        unsigned char *now = slurp(st_out, &len);
        int same = now && len == st_old_len && !memcmp(now, st_old, len);
        free(now);
        snprintf(what_failed, sizeof what_failed, "rc %d: %s%s%s", rc, err.msg, same ? "" : "; file changed",
                 count_files() == before ? "" : "; temporary file left");
        return writer_nomem(rc, err.msg) && same && count_files() == before ? OP_NOMEM : OP_WRONG;
    }
    embed_file *o = embed_open(st_out, &err);
    int ok = o && embed_find(o, "z.new") && embed_find(o, "a.f32");
    embed_close(o);
    FILE *f = fopen(st_out, "wb");
    if (!f || fwrite(st_old, 1, st_old_len, f) != st_old_len || fclose(f)) exit(2);
    snprintf(what_failed, sizeof what_failed, "wrong saved file");
    return ok ? OP_OK : OP_WRONG;
}

int main(void) {
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof dir, "%s/gpt2in-allocfail.XXXXXX", tmp);
    if (!mkdtemp(dir)) return 2;
    snprintf(enc_path, sizeof enc_path, "%s/encoder.json", dir);
    snprintf(merges_path, sizeof merges_path, "%s/vocab.bpe", dir);
    snprintf(npy_path, sizeof npy_path, "%s/a.npy", dir);
    snprintf(npy_out, sizeof npy_out, "%s/out.npy", dir);
    snprintf(st_out, sizeof st_out, "%s/out.safetensors", dir);

    write_vocab();
    CHECK(op_load() == OP_OK, "the small vocabulary does not load: %s", what_failed);
    each_failure("bpe_load", op_load, 1);

    /* Text with short and long pieces (a long piece takes the merge
     * buffers), <|endoftext|> and invalid UTF-8; more than the 256 KB a
     * text needs before threads share it. */
    size_t cap = 300000;
    text = malloc(cap);
    if (!text) return 2;
    for (int k = 0; text_len + 2000 < cap; k++) {
        text_len += (size_t)snprintf(text + text_len, cap - text_len,
                                     "The quick brown fox %d jumps over the lazy dog's back. \xff\xfe ", k * 7919);
        if (k % 50 == 25) {
            memset(text + text_len, 'a' + k % 26, 1500);
            text_len += 1500;
            for (int i = 0; i < 1500; i++) text[text_len++] = "QwErTyUiOpAsDfGhJkLzXcVbNm"[(i * 7 + k) % 26];
            text_len += (size_t)snprintf(text + text_len, cap - text_len, "<|endoftext|>\n");
        }
    }
    want = malloc(text_len * sizeof *want);
    bpe_error berr;
    CHECK(want && bpe_encode(bpe_gpt2(), text, text_len, BPE_SPECIAL_ALLOW, want, NULL, text_len, &want_n,
                             &berr) == BPE_OK, "reference: %s", berr.msg);
    CHECK(op_stream() == OP_OK, "stream: %s", what_failed);
    each_failure("bpe_stream", op_stream, 1);
    stream_threads = 2;  /* one write of all: the threads take parts of it */
    stream_chunk = text_len;
    each_failure("bpe_stream (2 threads)", op_stream, 1);
    each_failure("bpe_encode", op_encode, 0);
    each_failure("bpe_encode (count)", op_count, 1);

    embed_error err;
    float v[12];
    for (int i = 0; i < 12; i++) v[i] = (float)i;
    v[11] = 11.5f;
    uint64_t shape[2] = {3, 4};
    CHECK(embed_npy_write(npy_path, EMBED_F32, 2, shape, v, &err) == EMBED_OK, "%s", err.msg);
    uint64_t one = 2;
    CHECK(embed_npy_write(npy_out, EMBED_U8, 1, &one, "xy", &err) == EMBED_OK, "%s", err.msg);
    npy_old = slurp(npy_out, &npy_old_len);
    each_failure("embed_npy_read", op_npy_read, 1);
    each_failure("embed_npy_read_mem", op_npy_read_mem, 1);
    each_failure("embed_npy_write", op_npy_write, 1);

    each_failure("embed_open", op_open, 1);
    each_failure("embed_open_mem", op_open_mem, 1);
    save_base = embed_open(sample, &err);
    CHECK(save_base != NULL, "%s", err.msg);
    st_old = slurp(sample, &st_old_len);
    FILE *f = fopen(st_out, "wb");
    if (!f || !st_old || fwrite(st_old, 1, st_old_len, f) != st_old_len || fclose(f)) return 2;
    each_failure("embed_save", op_save, 1);

    embed_close(save_base);
    free(st_old);
    free(npy_old);
    free(want);
    free(text);
    unlink(enc_path);
    unlink(merges_path);
    unlink(npy_path);
    unlink(npy_out);
    unlink(st_out);
    CHECK(count_files() == 0, "files left in %s", dir);
    rmdir(dir);
    if (failures) fprintf(stderr, "test_alloc_fail: %d failures\n", failures);
    return failures ? 1 : 0;
}
#endif
