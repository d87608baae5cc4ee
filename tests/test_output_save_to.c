/* test_output_save_to.c - embed_save_to and embed_writer_temp_path, what a
 * program uses to remove its temporary file when a signal stops it
 * (tests/test_output_signal.sh checks the CLI doing so):
 *  - the temporary's path is next to the target, named .NAME.tmp.XXXXXX,
 *    exists while the writer is open and is gone after commit or abort;
 *    NULL for an output written straight through (/dev/null);
 *  - embed_save_to writes the bytes embed_save writes (safetensors with
 *    replacements and metadata, a .npy base, an llm.c base) but leaves the
 *    rename to the caller: nothing under the final name until commit, and
 *    an existing file as it was after abort;
 *  - a writer already written to, a NULL writer, and a save that fails
 *    (llm.c has no place for metadata) return an error and leave the
 *    writer to the caller's abort, which removes the temporary. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "embed.h"

static char dir[256];

static const char *at(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static int same_file(const char *a, const char *b) {
    size_t na, nb;
    unsigned char *pa = slurp(a, &na), *pb = slurp(b, &nb);
    int same = pa && pb && na == nb && !memcmp(pa, pb, na);
    free(pa);
    free(pb);
    return same;
}

static void put_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(p, 1, n, f);
        fclose(f);
    }
}

/* embed_save(path_a) and embed_save_to(a writer on path_b) + commit give
 * the same bytes, nothing under path_b before the commit. Returns the
 * status of embed_save_to. */
static int both_ways(const embed_file *base, const embed_out_tensor *repl, size_t n_repl,
                     const char *const *meta, size_t n_meta, const char *what) {
    embed_error err;
    const char *a = at("a.out"), *b = at("b.out");
    unlink(a);
    unlink(b);
    int rc_a = embed_save(a, base, repl, n_repl, meta, n_meta, &err);
    embed_writer *w = embed_writer_open(b, &err);
    CHECK(w, "%s: %s", what, err.msg);
    if (!w) return -1;
    const char *tmp = embed_writer_temp_path(w);
    char tmp_copy[600];
    snprintf(tmp_copy, sizeof tmp_copy, "%s", tmp ? tmp : "");
    CHECK(tmp && !strncmp(tmp, at(".b.out.tmp."), strlen(at(".b.out.tmp."))),
          "%s: temporary %s", what, tmp ? tmp : "(null)");
    CHECK(tmp && access(tmp, F_OK) == 0, "%s: the temporary does not exist", what);
    int rc_b = embed_save_to(w, base, repl, n_repl, meta, n_meta, &err);
    CHECK(rc_a == rc_b, "%s: embed_save %d, embed_save_to %d", what, rc_a, rc_b);
    CHECK(access(b, F_OK) != 0, "%s: the file is there before the commit", what);
    if (rc_b) {
        embed_writer_abort(w);
    } else {
        CHECK(embed_writer_commit(w, &err) == 0, "%s: commit: %s", what, err.msg);
        CHECK(same_file(a, b), "%s: embed_save_to wrote other bytes than embed_save", what);
    }
    CHECK(access(tmp_copy, F_OK) != 0, "%s: the temporary %s is left", what, tmp_copy);
    return rc_b;
}

int main(void) {
    snprintf(dir, sizeof dir, "%s/gpt2in-saveto.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    embed_error err;
    embed_file *st = embed_open("tests/fixtures/embed/f32/model.safetensors", &err);
    if (!st) {
        fprintf(stderr, "skipped: run from the source folder (%s)\n", err.msg);
        rmdir(dir);
        return 77;
    }

    /* safetensors: as it is, with a replacement and metadata */
    CHECK(both_ways(st, NULL, 0, NULL, 0, "safetensors as it is") == 0, "status");
    const embed_tensor *wte = embed_find(st, "wte.weight");
    CHECK(wte != NULL, "no wte.weight in the fixture");
    if (wte) {
        size_t bytes = (size_t)(wte->end - wte->begin);
        float *rows = calloc(1, bytes);
        embed_out_tensor repl = {"wte.weight", EMBED_F32, 2, {wte->shape[0], wte->shape[1]}, rows};
        const char *meta[] = {"k", "v"};
        CHECK(both_ways(st, &repl, 1, meta, 1, "safetensors replaced, metadata") == 0, "status");
        /* no base: a new file of one tensor */
        CHECK(both_ways(NULL, &repl, 1, NULL, 0, "safetensors without a base") == 0, "status");
        free(rows);
    }

    /* a .npy base */
    embed_file *npy = embed_open("tests/fixtures/formats/npy_v1_f4.npy", &err);
    CHECK(npy, "%s", err.msg);
    if (npy) CHECK(both_ways(npy, NULL, 0, NULL, 0, ".npy base") == 0, "status");
    embed_close(npy);

    /* an llm.c base (V 3, Vp 4, T 2, L 1, H 1, C 2): written back; metadata
     * refused the same way by both */
    int32_t h[256] = {20240326, 3, 2, 3, 1, 1, 2, 4};
    size_t nparam = 4 * 2 + 2 * 2 + (12 * 4 + 13 * 2) + 2 * 2;
    unsigned char *img = malloc(sizeof h + 4 * nparam);
    memcpy(img, h, sizeof h);
    for (size_t i = 0; i < nparam; i++) {
        float f = (float)i;
        memcpy(img + sizeof h + 4 * i, &f, 4);
    }
    put_file(at("m.bin"), img, sizeof h + 4 * nparam);
    free(img);
    embed_file *lm = embed_open(at("m.bin"), &err);
    CHECK(lm, "%s", err.msg);
    if (lm) {
        CHECK(both_ways(lm, NULL, 0, NULL, 0, "llm.c base") == 0, "status");
        const char *meta[] = {"k", "v"};
        CHECK(both_ways(lm, NULL, 0, meta, 1, "llm.c base with metadata") == EMBED_ERR_FORMAT, "status");
    }
    embed_close(lm);

    /* abort: an existing file stays as it was, the temporary goes */
    put_file(at("keep.out"), "old\n", 4);
    embed_writer *w = embed_writer_open(at("keep.out"), &err);
    CHECK(w, "%s", err.msg);
    if (w) {
        char tmp[600];
        snprintf(tmp, sizeof tmp, "%s", embed_writer_temp_path(w));
        CHECK(embed_save_to(w, st, NULL, 0, NULL, 0, &err) == 0, "%s", err.msg);
        embed_writer_abort(w);
        CHECK(access(tmp, F_OK) != 0, "abort left the temporary %s", tmp);
        size_t n;
        unsigned char *p = slurp(at("keep.out"), &n);
        CHECK(p && n == 4 && !memcmp(p, "old\n", 4), "abort changed the existing file");
        free(p);
    }

    /* a writer already written to, or none: refused */
    w = embed_writer_open(at("used.out"), &err);
    CHECK(w, "%s", err.msg);
    if (w) {
        CHECK(embed_writer_write(w, "x", 1, &err) == 0, "%s", err.msg);
        CHECK(embed_save_to(w, st, NULL, 0, NULL, 0, &err) == EMBED_ERR_ARG,
              "a writer written to was taken");
        CHECK(strstr(err.msg, "used.out") != NULL, "message: %s", err.msg);
        embed_writer_abort(w);
    }
    CHECK(embed_save_to(NULL, st, NULL, 0, NULL, 0, &err) == EMBED_ERR_ARG, "NULL writer taken");
    CHECK(embed_writer_temp_path(NULL) == NULL, "a temporary for no writer");

    /* written straight through: no temporary */
    w = embed_writer_open("/dev/null", &err);
    CHECK(w, "%s", err.msg);
    if (w) {
        CHECK(embed_writer_temp_path(w) == NULL, "/dev/null has a temporary: %s",
              embed_writer_temp_path(w));
        CHECK(embed_save_to(w, st, NULL, 0, NULL, 0, &err) == 0, "%s", err.msg);
        CHECK(embed_writer_commit(w, &err) == 0, "%s", err.msg);
    }
    embed_close(st);

    const char *left[] = {"a.out", "b.out", "m.bin", "keep.out", "used.out"};
    for (size_t i = 0; i < sizeof left / sizeof *left; i++) unlink(at(left[i]));
    CHECK(rmdir(dir) == 0, "%s is not empty: a temporary file was left", dir);
    printf("save_to: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
