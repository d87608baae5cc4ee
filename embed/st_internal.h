/* st_internal.h - helpers shared inside the embed module (the file formats,
 * the math, similarity); not part of the public API. */
#ifndef EMBED_ST_INTERNAL_H
#define EMBED_ST_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "embed.h"

/* printf into err->msg, newlines flattened (messages are one line). */
void embed_st_error(embed_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same, returning code: return embed_fail(err, EMBED_ERR_..., ...). */
int embed_fail(embed_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* s quoted and made printable for a message, cut after 80 bytes; cap >= 8. */
const char *embed_st_quote(const char *s, char *buf, size_t cap);
/* Offset of the first byte that is not valid UTF-8, or n. */
size_t embed_st_utf8_check(const unsigned char *s, size_t n);
/* Element count and byte size of dt[shape]: 0, -1 if either overflows 64
 * bits, -2 if the bits are not a whole number of bytes. */
int embed_st_shape_bytes(embed_dtype dt, int ndim, const uint64_t *shape, uint64_t *count,
                         uint64_t *bytes);
/* "F32 [2, 2]" */
const char *embed_st_shape_str(embed_dtype dt, int ndim, const uint64_t *shape, char *buf,
                               size_t cap);

/* The keys seen so far of a file's metadata (kv: key, value, key, ...),
 * to find a repeated key in linear time. Zero-initialised; free with
 * embed_keyset_free. */
typedef struct {
    size_t *slot;
    size_t mask;
} embed_keyset;
/* Adds key k (kv[2 * k], whose earlier keys were added): 0; 1 with
 * *earlier its first index when an earlier key is the same;
 * EMBED_ERR_NOMEM (negative). */
int embed_keyset_add(embed_keyset *s, const char *const *kv, size_t k, size_t *earlier);
void embed_keyset_free(embed_keyset *s);

/* The open file behind f and the file offset of p (inside f's image), for
 * reading `rows` more rows with pread; -1 for an image in memory, or once
 * the rows read so far over the file's life would pass budget (from then on
 * the mapping is cheaper). */
int embed_st_pread_fd(const embed_file *f, const unsigned char *p, size_t rows, size_t budget,
                      uint64_t *offset);

/* An open weights file of any of the four kinds. The tensors are views into
 * the image (base), sorted by data offset; strings and meta live in
 * `strings` (or in separate allocations listed below). */
struct embed_file {
    const unsigned char *base; /* the whole image */
    size_t len;
    int mapped;
    int fd;              /* kept open for pread (embed_forward); -1 for memory */
    atomic_size_t rows_read; /* rows embed_forward has read with pread so far */
    char *name;          /* for messages */
    embed_kind kind;     /* SAFETENSORS, NPY, LLMC_MODEL or GGUF */
    size_t header_len;   /* safetensors: N; other kinds: where the data starts */
    embed_tensor *t;     /* sorted by data offset */
    size_t n_t;
    const char **meta;   /* key, value, key, value... in file order */
    size_t n_meta;
    int has_meta;        /* the header has a __metadata__ object, maybe empty */
    char *strings;       /* every decoded string, NUL-terminated */
    /* llm.c */
    int32_t llmc[8];     /* the header's first 8 ints */
    /* GGUF */
    uint32_t gguf_version;
    uint64_t gguf_align;
    size_t gguf_kv_end;     /* file offset where the tensor infos start */
    size_t gguf_info_end;   /* file offset just past the tensor infos */
    uint64_t gguf_n_kv;
    size_t *gguf_kv_at;     /* (n_kv + 1) file offsets: kv i is [at[i], at[i+1]) */
    uint32_t *gguf_type;    /* ggml type of tensor i (in t's order) */
    char *gguf_names;       /* the tensor names */
};

/* Each kind's validator: f->base, len and name are set; fills the rest.
 * (safetensors' is in safetensors.c.) */
int embed_llmc_validate(embed_file *f, embed_error *err);
int embed_gguf_validate(embed_file *f, embed_error *err);
int embed_npyt_validate(embed_file *f, embed_error *err);
/* embed_save for a base of these kinds: the same kind written back, to
 * `given` (embed_save_to: left for the caller to commit or abort) or, when
 * it is NULL, to a writer opened on path and committed. */
int embed_llmc_save(embed_writer *given, const char *path, const embed_file *base,
                    const embed_out_tensor *repl, size_t n_repl, const char *const *meta,
                    size_t n_meta, embed_error *err);
int embed_gguf_save(embed_writer *given, const char *path, const embed_file *base,
                    const embed_out_tensor *repl, size_t n_repl, const char *const *meta,
                    size_t n_meta, embed_error *err);
int embed_npyt_save(embed_writer *given, const char *path, const embed_file *base,
                    const embed_out_tensor *repl, size_t n_repl, const char *const *meta,
                    size_t n_meta, embed_error *err);
/* The writer a save writes to: `given`, else one opened on path (NULL, with
 * *rc EMBED_ERR_NOMEM or EMBED_ERR_IO and err set, when that fails). */
embed_writer *embed_save_open(embed_writer *given, const char *path, int *rc, embed_error *err);
/* The end of a save: with `given`, rc as it is (the caller commits or
 * aborts); else w committed, or aborted when rc is set. */
int embed_save_close(embed_writer *given, embed_writer *w, int rc, embed_error *err);
/* Checks that every replacement names a tensor of base with its dtype and
 * shape (or, with allow_fewer_rows, fewer leading rows of a 2-D one, as
 * llm.c's wte is replaced by its V token rows). */
int embed_repl_check(const char *path, const embed_file *base, const embed_out_tensor *repl,
                     size_t n_repl, int allow_fewer_rows, embed_error *err);

/* Writes base's image from file offset `from` on, with the replacements'
 * bytes in place of their tensors (data_start: the file offset of data
 * offset 0; a replacement with fewer rows covers the leading rows). */
int embed_write_replaced(embed_writer *w, const embed_file *base, const embed_out_tensor *repl,
                         size_t n_repl, uint64_t data_start, uint64_t from, embed_error *err);

/* ggml type number -> name ("Q4_K"), NULL if unknown. */
const char *embed_ggml_name(unsigned type);

/* Bytes of one row of `cols` values of a table dtype (F32, F16, BF16, Q8_0). */
static inline size_t embed_row_bytes(embed_dtype dt, size_t cols) {
    return dt == EMBED_F32 ? cols * 4 : dt == EMBED_Q8_0 ? cols / 32 * 34 : cols * 2;
}

#endif
