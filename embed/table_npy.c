/* table_npy.c - a .npy array opened as a weights file: one tensor, named
 * "array", read in place from the mapping (NumPy puts the data at a
 * multiple of 64 bytes, so an F32 table is aligned), and written back with
 * its header as it was. */
#include <string.h>

#include "st_internal.h"

int embed_npyt_validate(embed_file *f, embed_error *err) {
    embed_npy a;
    unsigned version;
    size_t start;
    int rc = embed_npy_inspect(f->base, f->len, f->name, &a, &version, &start, err);
    if (rc) return rc;
    f->t = gpt2in_calloc(1, sizeof *f->t);
    if (!f->t) return embed_fail(err, EMBED_ERR_NOMEM, "%s: out of memory", f->name);
    embed_tensor *t = &f->t[0];
    t->name = "array";
    t->dtype = a.dtype;
    t->ndim = a.ndim;
    memcpy(t->shape, a.shape, sizeof t->shape);
    t->begin = 0;
    t->end = f->len - start;
    t->data = f->base + start;
    f->n_t = 1;
    f->header_len = start;
    return EMBED_OK;
}

int embed_npyt_save(embed_writer *given, const char *path, const embed_file *base,
                    const embed_out_tensor *repl, size_t n_repl, const char *const *meta,
                    size_t n_meta, embed_error *err) {
    (void)meta;
    if (n_meta)
        return embed_fail(err, EMBED_ERR_FORMAT,
                          "%s: a NumPy array has no place for metadata: nothing was written", path);
    int rc = embed_repl_check(path, base, repl, n_repl, 0, err);
    if (rc) return rc;
    embed_writer *w = embed_save_open(given, path, &rc, err);
    if (!w) return rc;
    rc = embed_write_replaced(w, base, repl, n_repl, base->header_len, 0, err);
    return embed_save_close(given, w, rc, err);
}
