/* llmc.c - llm.c model checkpoints (gpt2_124M.bin and its family), read in
 * place and written back.
 *
 * Layout (llm.c train_gpt2.c, gpt2_build_from_checkpoint): int32 header[256]
 * = magic 20240326, version (3: F32 parameters, 5: BF16), max_seq_len,
 * vocab_size V, num_layers L, num_heads, channels C, padded_vocab_size Vp;
 * then the 16 parameter tensors back to back in a fixed order, wte first
 * with Vp rows (rows V..Vp-1 are padding, never tokens). There is no
 * checksum and nothing else in the file, so its size must be exactly
 * 1024 + every parameter's bytes: that is what catches a truncated or
 * mislabelled file. */
#include <stdlib.h>
#include <string.h>

#include "st_internal.h"

#define LLMC_HEADER 1024
#define LLMC_N 16

static const char *const llmc_names[LLMC_N] = {
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb",
};

static int32_t rd_i32(const unsigned char *b) {
    uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    int32_t v;
    memcpy(&v, &u, 4);
    return v;
}

/* The shapes of the 16 tensors (llm.c's fill_in_parameter_sizes). */
static void llmc_shapes(uint64_t Vp, uint64_t T, uint64_t L, uint64_t C, int ndim[LLMC_N],
                        uint64_t shape[LLMC_N][3]) {
    const uint64_t s[LLMC_N][4] = {
        {2, Vp, C, 0}, {2, T, C, 0}, {2, L, C, 0}, {2, L, C, 0},
        {3, L, 3 * C, C}, {2, L, 3 * C, 0}, {3, L, C, C}, {2, L, C, 0},
        {2, L, C, 0}, {2, L, C, 0}, {3, L, 4 * C, C}, {2, L, 4 * C, 0},
        {3, L, C, 4 * C}, {2, L, C, 0}, {1, C, 0, 0}, {1, C, 0, 0},
    };
    for (int i = 0; i < LLMC_N; i++) {
        ndim[i] = (int)s[i][0];
        for (int d = 0; d < 3; d++) shape[i][d] = s[i][d + 1];
    }
}

int embed_llmc_validate(embed_file *f, embed_error *err) {
    const char *fn = f->name;
    if (f->len < LLMC_HEADER)
        return embed_fail(err, EMBED_ERR_FORMAT,
                          "%s: file is %zu bytes, shorter than llm.c's 1024-byte header "
                          "(truncated?)", fn, f->len);
    int32_t h[8];
    for (int k = 0; k < 8; k++) h[k] = rd_i32(f->base + 4 * k);
    memcpy(f->llmc, h, sizeof h);
    if (h[0] != EMBED_LLMC_MODEL_MAGIC)
        return embed_fail(err, EMBED_ERR_FORMAT,
                          "%s: header int 0 (magic) is %d, not llm.c's checkpoint magic 20240326",
                          fn, h[0]);
    if (h[1] != 3 && h[1] != 5)
        return embed_fail(err, EMBED_ERR_FORMAT,
                          "%s: llm.c checkpoint version %d (header int 1) is not 3 (F32) or 5 "
                          "(BF16)", fn, h[1]);
    static const char *const field[8] = {"magic", "version", "max_seq_len", "vocab_size",
                                         "num_layers", "num_heads", "channels",
                                         "padded_vocab_size"};
    for (int k = 2; k < 8; k++)
        if (h[k] <= 0)
            return embed_fail(err, EMBED_ERR_FORMAT,
                              "%s: header int %d (%s) is %d: it must be positive", fn, k,
                              field[k], h[k]);
    if (h[7] < h[3])
        return embed_fail(err, EMBED_ERR_FORMAT,
                          "%s: padded_vocab_size %d (header int 7) is below vocab_size %d "
                          "(header int 3)", fn, h[7], h[3]);
    embed_dtype dt = h[1] == 3 ? EMBED_F32 : EMBED_BF16;
    uint64_t esz = h[1] == 3 ? 4 : 2;
    int ndim[LLMC_N];
    uint64_t shape[LLMC_N][3];
    /* int32 fields: C * 4C and the like fit easily in 64 bits; the byte
     * total is summed with overflow checks anyway. */
    llmc_shapes((uint64_t)h[7], (uint64_t)h[2], (uint64_t)h[4], (uint64_t)h[6], ndim, shape);
    f->t = gpt2in_calloc(LLMC_N, sizeof *f->t);
    if (!f->t) return embed_fail(err, EMBED_ERR_NOMEM, "%s: out of memory", fn);
    uint64_t off = 0;
    for (int i = 0; i < LLMC_N; i++) {
        embed_tensor *t = &f->t[i];
        uint64_t count, bytes;
        t->name = llmc_names[i];
        t->dtype = dt;
        t->ndim = ndim[i];
        for (int d = 0; d < ndim[i]; d++) t->shape[d] = shape[i][d];
        if (embed_st_shape_bytes(dt, t->ndim, t->shape, &count, &bytes) || off + bytes < off)
            return embed_fail(err, EMBED_ERR_FORMAT,
                              "%s: the header's sizes (maxT %d, V %d, L %d, C %d, Vp %d) overflow",
                              fn, h[2], h[3], h[4], h[6], h[7]);
        t->begin = off;
        t->end = off + bytes;
        off += bytes;
    }
    (void)esz;
    uint64_t have = f->len - LLMC_HEADER;
    if (off != have)
        return embed_fail(err, EMBED_ERR_FORMAT,
                          "%s: the header (version %d, maxT %d, V %d, L %d, C %d, Vp %d) needs "
                          "%llu bytes of parameters after the 1024-byte header, but the file "
                          "holds %llu (%s)", fn, h[1], h[2], h[3], h[4], h[6], h[7],
                          (unsigned long long)off, (unsigned long long)have,
                          off > have ? "truncated?" : "trailing bytes");
    for (int i = 0; i < LLMC_N; i++) f->t[i].data = f->base + LLMC_HEADER + f->t[i].begin;
    f->n_t = LLMC_N;
    f->header_len = LLMC_HEADER;
    return EMBED_OK;
}

/* Checks that every replacement names a tensor of base with its dtype and
 * shape (or, with allow_fewer_rows, fewer leading rows of a 2-D one). */
int embed_repl_check(const char *path, const embed_file *base, const embed_out_tensor *repl,
                     size_t n_repl, int allow_fewer_rows, embed_error *err) {
    char q[128], s1[160], s2[160];
    for (size_t r = 0; r < n_repl; r++) {
        const embed_out_tensor *o = &repl[r];
        const embed_tensor *t = o->name ? embed_find(base, o->name) : NULL;
        if (!t)
            return embed_fail(err, EMBED_ERR_ARG,
                              "%s: %s has no tensor %s: %s files get no new tensors", path,
                              base->name, o->name ? embed_st_quote(o->name, q, sizeof q) : "(null)",
                              embed_kind_desc(base->kind));
        for (size_t k = 0; k < r; k++)
            if (!strcmp(repl[k].name, o->name))
                return embed_fail(err, EMBED_ERR_ARG, "%s: tensor %s is given twice", path,
                                  embed_st_quote(o->name, q, sizeof q));
        int same = o->dtype == t->dtype && o->ndim == t->ndim && o->data;
        for (int d = 0; same && d < t->ndim; d++)
            same = o->shape[d] == t->shape[d] ||
                   (allow_fewer_rows && d == 0 && t->ndim == 2 && o->shape[0] <= t->shape[0]);
        if (!same)
            return embed_fail(err, EMBED_ERR_SHAPE,
                              "%s: tensor %s is %s in %s; the replacement is %s%s", path,
                              embed_st_quote(o->name, q, sizeof q),
                              embed_st_shape_str(t->dtype, t->ndim, t->shape, s1, sizeof s1),
                              base->name,
                              embed_st_shape_str(o->dtype, o->ndim, o->shape, s2, sizeof s2),
                              o->data ? "" : " without data");
    }
    return EMBED_OK;
}

/* The replacement of tensor t, or NULL. */
static const embed_out_tensor *repl_for(const embed_out_tensor *repl, size_t n_repl,
                                        const embed_tensor *t) {
    for (size_t r = 0; r < n_repl; r++)
        if (!strcmp(repl[r].name, t->name)) return &repl[r];
    return NULL;
}

/* Writes base's image to w with the replacements' bytes in place of their
 * tensors (a replacement with fewer rows covers the leading rows only). */
static int write_replaced(embed_writer *w, const embed_file *base, const embed_out_tensor *repl,
                          size_t n_repl, uint64_t data_start, uint64_t pos, embed_error *err) {
    /* pos: the file offset of base written up to */
    int rc = 0;
    for (size_t i = 0; i < base->n_t && !rc; i++) {
        const embed_tensor *t = &base->t[i];
        const embed_out_tensor *o = repl_for(repl, n_repl, t);
        if (!o) continue;
        uint64_t at = data_start + t->begin, rb = t->shape[0] ? (t->end - t->begin) / t->shape[0] : 0;
        uint64_t n = t->ndim == 2 ? o->shape[0] * rb : t->end - t->begin;
        rc = embed_writer_write(w, base->base + pos, (size_t)(at - pos), err);
        if (!rc) rc = embed_writer_write(w, o->data, (size_t)n, err);
        pos = at + n;
    }
    if (!rc) rc = embed_writer_write(w, base->base + pos, base->len - (size_t)pos, err);
    return rc;
}

int embed_llmc_save(embed_writer *given, const char *path, const embed_file *base,
                    const embed_out_tensor *repl, size_t n_repl, const char *const *meta,
                    size_t n_meta, embed_error *err) {
    char q[128];
    if (n_meta)
        return embed_fail(err, EMBED_ERR_FORMAT,
                          "%s: an llm.c checkpoint has no place for metadata (%s): nothing "
                          "was written", path, embed_st_quote(meta[0] ? meta[0] : "", q, sizeof q));
    int rc = embed_repl_check(path, base, repl, n_repl, 1, err);
    if (rc) return rc;
    embed_writer *w = embed_save_open(given, path, &rc, err);
    if (!w) return rc;
    /* the header and every other byte as they are; base may be a mapping of
     * path itself, which stays valid until the rename */
    rc = write_replaced(w, base, repl, n_repl, LLMC_HEADER, 0, err);
    return embed_save_close(given, w, rc, err);
}

int embed_write_replaced(embed_writer *w, const embed_file *base, const embed_out_tensor *repl,
                         size_t n_repl, uint64_t data_start, uint64_t from, embed_error *err) {
    return write_replaced(w, base, repl, n_repl, data_start, from, err);
}
