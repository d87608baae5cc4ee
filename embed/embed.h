/* embed.h - GPT-2's token and position embeddings: file I/O (safetensors,
 * .npy), forward lookup, autograd-free backward and optimiser steps on the
 * touched rows.
 *
 * Shapes use llm.c's letters: T tokens, C channels (768), V rows (50257).
 * The caller owns every buffer; each function says how big it must be.
 * Errors are returned (a negative status and a one-line message in an
 * embed_error naming the file and what is wrong), never printed. Nothing
 * here keeps global state; a table opened read-only may be used from
 * several threads at once.
 */
#ifndef EMBED_H
#define EMBED_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Marks the library's exported functions (it is built -fvisibility=hidden). */
#ifndef GPT2IN_API
#ifdef __GNUC__
#define GPT2IN_API __attribute__((visibility("default")))
#else
#define GPT2IN_API
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct embed_error {
    char msg[512];
} embed_error;

enum {
    EMBED_OK = 0,
    EMBED_ERR_IO = -1,      /* open/read/write/mmap failed */
    EMBED_ERR_FORMAT = -2,  /* the file is not valid safetensors / .npy */
    EMBED_ERR_DTYPE = -3,   /* valid file, but a dtype this operation cannot use */
    EMBED_ERR_SHAPE = -4,   /* shapes do not fit together */
    EMBED_ERR_ID = -5,      /* a token id or position outside the table */
    EMBED_ERR_NOTFOUND = -6,/* no tensor of that name */
    EMBED_ERR_NOMEM = -7,
    EMBED_ERR_ARG = -8,
};

/* ---- dtypes ------------------------------------------------------------- */

typedef enum embed_dtype {
    EMBED_BOOL, EMBED_U8, EMBED_I8, EMBED_I16, EMBED_U16, EMBED_F16, EMBED_BF16,
    EMBED_I32, EMBED_U32, EMBED_F32, EMBED_I64, EMBED_U64, EMBED_F64,
    EMBED_F8_E5M2, EMBED_F8_E4M3, EMBED_F8_E8M0, EMBED_F8_E4M3FNUZ, EMBED_F8_E5M2FNUZ,
    EMBED_F4, EMBED_F6_E2M3, EMBED_F6_E3M2, EMBED_C64,
    EMBED_DTYPE_COUNT,
    /* GGUF's Q8_0 (ggml type 8): blocks of 32 values along a row, each an F16
     * scale d then 32 int8 q (34 bytes), value = d * q. Not a safetensors
     * dtype (so outside the count above); embed_dtype_bits gives 0. */
    EMBED_Q8_0 = 64,
    /* GGUF's other tensor types: EMBED_GGML + the ggml type number (e.g.
     * + 12 for Q4_K). Listed and named (embed_dtype_name), never decoded. */
    EMBED_GGML = 128
} embed_dtype;

GPT2IN_API const char *embed_dtype_name(embed_dtype dt);     /* "F32", ... */
GPT2IN_API int embed_dtype_from_name(const char *name);       /* -1 if unknown */
GPT2IN_API size_t embed_dtype_bits(embed_dtype dt);           /* 4 for F4, 32 for F32, ... */

/* Conversions used for F16/BF16 tables: exact on the way up, round-to-nearest-
 * even on the way down, as PyTorch 1.13's x.float(), x.half() and x.bfloat16()
 * (on a CPU with AVX2) bit for bit, NaNs included: F32 -> F16 writes a NaN as
 * sign | 0x7e00, F32 -> BF16 writes every NaN as 0xffff. */
GPT2IN_API float embed_f16_to_f32(uint16_t h);
GPT2IN_API float embed_bf16_to_f32(uint16_t b);
GPT2IN_API uint16_t embed_f32_to_f16(float f);
GPT2IN_API uint16_t embed_f32_to_bf16(float f);

/* ---- tensors and weight files ------------------------------------------- */

#define EMBED_MAX_DIMS 8

/* A view of n-dimensional, row-major, little-endian data. `data` may be
 * unaligned (it often points into a mapped file): read it with memcpy. */
typedef struct embed_tensor {
    const char *name;
    embed_dtype dtype;
    int ndim;
    uint64_t shape[EMBED_MAX_DIMS];
    uint64_t begin, end;          /* offsets in the file's data (safetensors' data_offsets) */
    const unsigned char *data;    /* end - begin bytes */
} embed_tensor;

typedef struct embed_file embed_file;

/* Maps a weights file read-only and validates it, whichever of the four
 * kinds it is (told by its first bytes, embed_detect):
 *  - safetensors, as strictly as the reference implementation (and
 *    duplicate names refused);
 *  - an llm.c checkpoint (gpt2_124M.bin: 256 int32 header, magic 20240326,
 *    version 3 = F32 or 5 = BF16), its 16 parameters as tensors named as in
 *    llm.c's train_gpt2.c: wte [Vp, C], wpe [maxT, C], ln1w [L, C], ln1b,
 *    qkvw [L, 3C, C], qkvb [L, 3C], attprojw [L, C, C], attprojb, ln2w,
 *    ln2b, fcw [L, 4C, C], fcb [L, 4C], fcprojw [L, C, 4C], fcprojb,
 *    lnfw [C], lnfb [C]; the file must be exactly header + parameters;
 *  - GGUF (versions 2 and 3, little-endian): every tensor, its dims in
 *    row-major order (GGUF's [C, V] is shape [V, C]), at offsets checked as
 *    llama.cpp does (each the previous end padded to the alignment); the
 *    string, number and bool key-values as metadata (arrays summarised);
 *  - a .npy array: one tensor named "array".
 * A file of another kind (an llm.c token shard, a zip, ...) is refused
 * with a message naming what it is. Nothing is loaded: tables are read in
 * place from the mapping. */
GPT2IN_API embed_file *embed_open(const char *path, embed_error *err);
/* Validates an image already in memory (not copied; must outlive the
 * result). `name` is used in messages. */
GPT2IN_API embed_file *embed_open_mem(const void *buf, size_t len, const char *name, embed_error *err);
GPT2IN_API void embed_close(embed_file *f);


GPT2IN_API size_t embed_tensor_count(const embed_file *f);
GPT2IN_API const embed_tensor *embed_tensor_at(const embed_file *f, size_t i);   /* in data-offset order */
GPT2IN_API const embed_tensor *embed_find(const embed_file *f, const char *name); /* NULL if none */
GPT2IN_API size_t embed_metadata_count(const embed_file *f);
GPT2IN_API void embed_metadata_at(const embed_file *f, size_t i, const char **key, const char **value);
/* safetensors: N, the JSON length; the other kinds: the bytes before the data */
GPT2IN_API size_t embed_header_len(const embed_file *f);

/* A tensor to write; data is row-major little-endian, (bits * elements)/8 bytes. */
typedef struct embed_out_tensor {
    const char *name;
    embed_dtype dtype;
    int ndim;
    uint64_t shape[EMBED_MAX_DIMS];
    const void *data;
} embed_out_tensor;

/* Writes a weights file: every tensor of `base` (may be NULL) kept
 * bit-for-bit unless a tensor of the same name is in `repl` (which replaces
 * it; new names are added), plus base's __metadata__ with `meta` pairs
 * (key, value, key, value, ...; n_meta pairs) set on top. Compact JSON header
 * with __metadata__ first, padded with spaces to a multiple of 8, contiguous
 * offsets. Written to a temporary file in the destination's directory,
 * flushed and renamed over `path`, so an existing file (even one mapped by
 * `base`) is never truncated or left half-written.
 * The file is of base's kind (safetensors without a base):
 *  - llm.c: the header and every byte outside the replaced tensors are
 *    copied; a replacement must have its tensor's dtype and shape, except
 *    that wte may be given with its V token rows only (the padding rows
 *    V..Vp-1 are then kept); no new tensors, no metadata (llm.c has no
 *    place for it: EMBED_ERR_ARG);
 *  - GGUF: the same, for F32, F16 and BF16 tensors (a quantised one cannot
 *    be replaced: EMBED_ERR_DTYPE); `meta` pairs become string key-values
 *    (replacing a key of that name), the data moved to the new alignment
 *    boundary if the header grew;
 *  - .npy: the array, replaced or not; no metadata. */
GPT2IN_API int embed_save(const char *path, const embed_file *base, const embed_out_tensor *repl,
               size_t n_repl, const char *const *meta, size_t n_meta, embed_error *err);

/* The path (or name) a file was opened with as messages show it (quoted
 * and escaped when it holds control or format characters), and its size in
 * bytes. */
GPT2IN_API const char *embed_file_name(const embed_file *f);
GPT2IN_API size_t embed_file_size(const embed_file *f);
/* Whether the file still holds every byte it held when opened: EMBED_OK,
 * or EMBED_ERR_IO naming it when another program truncated it. Reading a
 * mapped view past the new end raises SIGBUS; embed_forward checks first,
 * and a caller that reads a file's views itself may too. */
GPT2IN_API int embed_file_check(const embed_file *f, embed_error *err);

/* Streaming crash-safe writer (what embed_save and embed_npy_write use): the
 * bytes go to a temporary file .NAME.tmp.XXXXXX in path's directory; commit
 * flushes, fsyncs, renames it over path and fsyncs the directory; abort (or
 * any failure) removes it, leaving path untouched. Both free the writer.
 * A process killed while writing leaves the temporary file behind, never a
 * partial file under the final name; a program that stops on a signal can
 * remove it first (embed_writer_temp_path).
 * What path names decides how it is written, checked when it is opened:
 *  - a regular file or nothing yet: replaced as above. The new file keeps
 *    the old one's mode, and its owner where allowed (as root); being a new
 *    file, it is no longer hard-linked to the old one's other names.
 *  - a symbolic link: followed; its final target is replaced as above (or
 *    created) and the link stays a link.
 *  - a character device or FIFO (/dev/null, a terminal, a pipe): written
 *    straight through, as it cannot be replaced; not atomic.
 *  - a directory, socket or block device, or an empty name: refused (NULL,
 *    the reason in err). On NULL, errno is ENOMEM when memory ran out.
 * Test builds (-DGPT2IN_FAULTS) only: the environment variable
 * GPT2IN_TEST_FAIL_WRITE_AFTER=K makes embed_writer_write fail (ENOSPC)
 * once K bytes have been written. */
typedef struct embed_writer embed_writer;
GPT2IN_API embed_writer *embed_writer_open(const char *path, embed_error *err);
GPT2IN_API int embed_writer_write(embed_writer *w, const void *buf, size_t n, embed_error *err);
GPT2IN_API int embed_writer_commit(embed_writer *w, embed_error *err);
GPT2IN_API void embed_writer_abort(embed_writer *w);
/* The stdio stream the bytes go to, for a caller that formats its output
 * (fprintf) or patches a header in place (fseeko: a temporary file is
 * seekable, a FIFO is not). Errors on it are reported by commit. */
GPT2IN_API FILE *embed_writer_stream(embed_writer *w);
/* The temporary file's path, or NULL when path is written straight through;
 * valid until commit or abort. For a program that removes it when a signal
 * stops it: copy the path when the writer is opened (with the signals
 * blocked), and have the handler unlink(2) the copy (async-signal-safe) and
 * re-raise. After the rename the name is gone, so that unlink is harmless. */
GPT2IN_API const char *embed_writer_temp_path(const embed_writer *w);
/* embed_save into a writer opened by the caller (embed_writer_open) that
 * nothing was written to yet, named in messages by its path. The file is
 * written but not committed: the caller commits (renaming it into place)
 * or, on failure, aborts it, e.g. to know the temporary's name (above), or
 * to write two files and rename both only once both are complete. */
GPT2IN_API int embed_save_to(embed_writer *w, const embed_file *base, const embed_out_tensor *repl,
                             size_t n_repl, const char *const *meta, size_t n_meta,
                             embed_error *err);

/* Fills w[0..n) with Normal(0, std) samples, the same for a given seed on
 * every machine (GPT-2 uses std 0.02). Element i comes from pair k = i/2:
 * the splitmix64 outputs number 2k and 2k+1 of the stream seeded with `seed`
 * give two uniforms, Box-Muller (in double) gives cos for even i, sin for
 * odd i. Being counter-based, a big table can be made in pieces:
 * embed_init_normal_at fills elements first..first+n-1 of the same stream. */
GPT2IN_API void embed_init_normal(float *w, size_t n, float std, uint64_t seed);
GPT2IN_API void embed_init_normal_at(float *w, uint64_t first, size_t n, float std, uint64_t seed);

/* ---- .npy --------------------------------------------------------------- */

/* An .npy array read into memory the caller frees with embed_npy_free. The
 * dtypes read are <f4 <f2 <f8 <i4 <i8 <u2 <u4 |u1 and also |i1 <i2 <u8 |b1
 * (versions 1, 2 and 3, C order); `dtype` names them with the safetensors
 * dtype codes. The header is capped at 10000 bytes and must hold exactly
 * descr, fortran_order and shape; the data must fill the rest exactly. */
typedef struct embed_npy {
    embed_dtype dtype;
    int ndim;
    uint64_t shape[EMBED_MAX_DIMS];
    uint64_t count;        /* elements */
    void *data;            /* count elements, aligned, native order */
} embed_npy;

GPT2IN_API int embed_npy_read(const char *path, embed_npy *out, embed_error *err);
GPT2IN_API int embed_npy_read_mem(const void *buf, size_t len, const char *name, embed_npy *out,
                       embed_error *err);
GPT2IN_API void embed_npy_free(embed_npy *a);
/* The header of a (version 1.0) .npy file for dtype/shape, padded so the data
 * starts at a multiple of 64; returns its length (<= 256) and fills hdr. */
GPT2IN_API size_t embed_npy_header(embed_dtype dtype, int ndim, const uint64_t *shape, char hdr[256]);
/* Writes a whole .npy file crash-safely (temporary file + rename). */
GPT2IN_API int embed_npy_write(const char *path, embed_dtype dtype, int ndim, const uint64_t *shape,
                    const void *data, embed_error *err);
/* Validates a whole .npy image like embed_npy_read but copies nothing:
 * fills out (data NULL), the major version (1, 2, 3) and the data's offset. */
GPT2IN_API int embed_npy_inspect(const void *buf, size_t len, const char *name, embed_npy *out,
                      unsigned *version, size_t *data_start, embed_error *err);
/* Validates only the preamble and header at the start of buf[0..len) (the
 * data may follow or not), for readers that stream the data: fills out (data
 * NULL, count and shape) and the data's offset. A header not wholly in buf is
 * an error. */
GPT2IN_API int embed_npy_inspect_header(const void *buf, size_t len, const char *name, embed_npy *out,
                             size_t *data_start, embed_error *err);

/* ---- telling formats apart (embed/detect.c) ------------------------------ */

/* What a file or stream is, told by its first bytes alone (never its name):
 * magic numbers first (.npy, GGUF, llm.c's int32 magics, safetensors' u64
 * header length then blanks and '{', zip, gzip, zstd, pickle, a Git LFS
 * pointer), then JSON (first non-blank byte '[' or '{', after an optional
 * UTF-8 BOM), then text (no control bytes but blanks, and no byte that
 * never occurs in UTF-8, in its first 1 KB), else UNKNOWN. Give it at
 * least EMBED_DETECT_BYTES bytes, or the whole file when it is shorter;
 * more only helps JSON after much leading white space. Raw u16/u32 ids
 * have no magic: they come out UNKNOWN (or TEXT). */
#define EMBED_DETECT_BYTES 64
#define EMBED_LLMC_SHARD_MAGIC 20240520      /* token shard (uint16 tokens) */
#define EMBED_LLMC_MODEL_MAGIC 20240326      /* gpt2_124M.bin and its family */
#define EMBED_LLMC_TOKENIZER_MAGIC 20240328  /* gpt2_tokenizer.bin */
typedef enum embed_kind {
    EMBED_KIND_EMPTY, EMBED_KIND_UNKNOWN, EMBED_KIND_TEXT, EMBED_KIND_JSON, EMBED_KIND_NPY,
    EMBED_KIND_SAFETENSORS, EMBED_KIND_GGUF, EMBED_KIND_LLMC_SHARD, EMBED_KIND_LLMC_MODEL,
    EMBED_KIND_LLMC_TOKENIZER, EMBED_KIND_ZIP, EMBED_KIND_PICKLE, EMBED_KIND_GZIP,
    EMBED_KIND_ZSTD, EMBED_KIND_GIT_LFS, EMBED_KIND_COUNT
} embed_kind;
GPT2IN_API embed_kind embed_detect(const void *buf, size_t len);
/* "npy", "safetensors", "gguf", "llmc", "llmc-model", "llmc-tokenizer",
 * "json", "text", ...: a short name for options and JSON output. */
GPT2IN_API const char *embed_kind_name(embed_kind k);
GPT2IN_API int embed_kind_from_name(const char *name);  /* -1 if unknown */
/* A noun phrase for messages: "x.npy is a NumPy array (.npy), not a
 * safetensors file" is "%s is %s, not %s" with embed_kind_desc of both. */
GPT2IN_API const char *embed_kind_desc(embed_kind k);

/* ---- weights files by kind (embed/safetensors.c, llmc.c, gguf.c) -------- */

/* embed_open / embed_open_mem for a file that must be of kind `want` (one
 * of the four table kinds; EMBED_KIND_UNKNOWN = any): another kind is
 * refused as "x.npy is a NumPy array (.npy), not a safetensors file". */
GPT2IN_API embed_file *embed_open_kind(const char *path, embed_kind want, embed_error *err);
GPT2IN_API embed_file *embed_open_mem_kind(const void *buf, size_t len, const char *name,
                                           embed_kind want, embed_error *err);

/* Which kind a file is, and what its header says. */
GPT2IN_API embed_kind embed_file_kind(const embed_file *f);
typedef struct embed_info {
    embed_kind kind;
    unsigned version;     /* .npy major, llm.c 3 or 5, GGUF 2 or 3; safetensors 0 */
    uint64_t data_start;  /* file offset of the first tensor's data */
    uint64_t alignment;   /* GGUF's general.alignment (32 by default); else 0 */
    uint64_t gguf_kv;     /* GGUF: key-value pairs in the header */
    int32_t llmc[8];      /* llm.c: magic, version, maxT, V, L, heads, C, Vp */
} embed_info;
GPT2IN_API void embed_file_info(const embed_file *f, embed_info *out);

/* ---- embedding tables --------------------------------------------------- */

/* A (rows, cols) table of F32, F16, BF16 or Q8_0 values, possibly
 * unaligned. Q8_0 rows (cols a multiple of 32) are dequantised on lookup,
 * value = f32(d) * q, exactly ggml's dequantize_row_q8_0. */
typedef struct embed_table {
    embed_dtype dtype;
    size_t rows, cols;
    const unsigned char *data;
    const embed_file *file;   /* the file data is mapped from (embed_wte/embed_wpe), or NULL */
} embed_table;

/* Bytes of one row of tab (cols * 4, * 2, or cols / 32 * 34 for Q8_0). */
GPT2IN_API size_t embed_table_row_bytes(const embed_table *tab);

/* Finds the token table or the position table by name, or with name NULL
 * by its kind's usual name: safetensors "wte.weight" or
 * "transformer.wte.weight" ("wpe.weight", "transformer.wpe.weight"); llm.c
 * "wte" (its first V rows: the padding rows are not tokens) and "wpe";
 * GGUF "token_embd.weight" and "position_embd.weight"; a .npy's one array
 * is the token table (it has no position table). Any other dtype or rank
 * is EMBED_ERR_DTYPE / EMBED_ERR_SHAPE with a message naming it. */
GPT2IN_API int embed_wte(const embed_file *f, const char *name, embed_table *out, embed_error *err);
/* The name embed_wte (positions 0) or embed_wpe (1) looks for with name
 * NULL: the first of the kind's usual names that f holds (else the first
 * usual name; NULL for a .npy's position table). */
GPT2IN_API const char *embed_table_name(const embed_file *f, int positions);
GPT2IN_API int embed_wpe(const embed_file *f, const char *name, embed_table *out, embed_error *err);
/* Same, from a tensor view. */
GPT2IN_API int embed_table_from_tensor(const embed_tensor *t, embed_table *out, embed_error *err);

/* Copies row r of the table into dst (cols floats), converting to F32. */
GPT2IN_API void embed_row(const embed_table *tab, size_t r, float *dst);

/* ---- forward and backward ----------------------------------------------- */

/* out (T,C) = wte[ids] (+ wpe[pos0 + t] when wpe is not NULL).
 * The first few rows (V/16 over the life of the open file) of a table
 * mapped from a file are read with pread: touching a mapped file makes the
 * kernel map up to 64 KB of page cache around every row (fault-around),
 * which for scattered lookups in a 154 MB table would dwarf the output;
 * later calls, a long stream of small batches among them, use the mapping.
 * The values are the same either way.
 * wte (V,C), wpe (maxT,C), ids (T). out must hold T*C floats. An id >= V or a
 * position >= maxT is EMBED_ERR_ID naming t and the value. */
GPT2IN_API int embed_forward(float *out, const embed_table *wte, const embed_table *wpe, size_t pos0,
                  const uint32_t *ids, size_t T, embed_error *err);

/* Sparse backward of wte: dwte[ids[t]] += dout[t] for the touched rows only.
 * dout (T,C), ids (T). Writes the distinct ids in increasing order to rows
 * (n_rows of them, at most T) and their summed gradients to grad (n_rows,C);
 * each row is summed in token order onto a zero, so it is bit for bit that
 * row of PyTorch's dense backward (F.embedding(ids, W).backward(dout)), and
 * the same run to run. (torch's sparse=True gradient, coalesced, sums a row
 * in its sort's order: the same bits when T <= 16 or no id occurs more than
 * twice.) rows must hold T ids, grad T*C floats, and scratch T uint32. */
GPT2IN_API int embed_backward_sparse(const float *dout, const uint32_t *ids, size_t T, size_t C,
                          size_t V, uint32_t *rows, float *grad, size_t *n_rows,
                          uint32_t *scratch, embed_error *err);

/* Dense variant: dwte (V,C) += scatter(dout) in token order (the caller
 * zeroes it, or keeps accumulating, e.g. a tied output head's gradient). */
GPT2IN_API int embed_backward_dense(float *dwte, size_t V, const float *dout, const uint32_t *ids,
                         size_t T, size_t C, embed_error *err);

/* Position gradient: dwpe (maxT,C) rows pos0..pos0+T-1 += dout (T,C). */
GPT2IN_API int embed_backward_positions(float *dwpe, size_t maxT, size_t pos0, const float *dout,
                             size_t T, size_t C, embed_error *err);

/* ---- optimisers on touched rows ----------------------------------------- */

/* Writable F32 table, e.g. a copy of wte (V,C). */
typedef struct embed_param {
    float *w;
    size_t rows, cols;
} embed_param;

/* w[rows[i]] = w + (-lr) * grad[i] for i < n, in one rounding (a fused
 * multiply-add), as torch.optim.SGD's w.add_(g, alpha=-lr) on CPU. Plain SGD,
 * no momentum or decay: with embed_backward_sparse's rows it is bit for bit
 * SGD after the dense backward. grad (n,C). */
GPT2IN_API int embed_sgd(embed_param *p, const uint32_t *rows, const float *grad, size_t n, float lr,
              embed_error *err);

/* embed_backward_sparse followed by embed_sgd, fused: the same bits, but no
 * (n,C) gradient is written (rows used once are stepped straight from dout),
 * so about half the memory traffic. w (V,C), dout (T,C), ids (T); scratch
 * must hold 2*T uint32. */
GPT2IN_API int embed_backward_sgd(embed_param *p, const float *dout, const uint32_t *ids, size_t T,
                       float lr, uint32_t *scratch, embed_error *err);

/* PyTorch's SparseAdam: lazy moments, updated only for the rows in this
 * step, one global step count for bias correction, eps added to sqrt(v)
 * before bias correction. m and v are (V,C) and start at zero; *step is
 * incremented by this call. rows must be distinct (as embed_backward_sparse
 * writes them). */
typedef struct embed_adam {
    double lr, beta1, beta2, eps;   /* doubles, as torch keeps them in Python */
    float *m, *v;        /* (V,C) each */
    int64_t step;
} embed_adam;

/* torch defaults: betas (0.9, 0.999), eps 1e-8, step 0. */
GPT2IN_API void embed_adam_init(embed_adam *a, double lr, float *m, float *v);
GPT2IN_API int embed_adam_step(embed_param *p, embed_adam *a, const uint32_t *rows, const float *grad,
                    size_t n, embed_error *err);

/* ---- similarity (embed/similarity.c) ----------------------------------- */

/* Cosine similarity of a (n) and b (n), accumulated in double; 0 when either
 * vector is all zeros. */
GPT2IN_API float embed_cosine(const float *a, const float *b, size_t n);

/* L2 norm of every row: norms (tab->rows). Optional input to embed_nearest. */
GPT2IN_API void embed_row_norms(const embed_table *tab, float *norms);

/* One result of a nearest-row search. */
typedef struct embed_hit {
    uint32_t id;     /* row */
    float score;     /* cosine similarity to the query */
} embed_hit;

/* The k rows of tab (V,C) most similar by cosine to query (C), best first
 * (ties: lower id first), skipping the n_exclude ids in exclude and rows that
 * are all zeros. norms (V) may be NULL (computed in the same pass) or from
 * embed_row_norms. hits must hold k entries; *n_hits receives min(k, rows
 * searched). F32 tables are read in place; F16/BF16 rows are converted. */
GPT2IN_API int embed_nearest(const embed_table *tab, const float *norms, const float *query,
                  const uint32_t *exclude, size_t n_exclude, size_t k, embed_hit *hits,
                  size_t *n_hits, embed_error *err);

/* Floats of scratch embed_pca2 needs for n vectors of C values. */
#define EMBED_PCA2_SCRATCH(n, C) (4 * (size_t)(C) + (size_t)(n))

/* 2-D PCA of vecs (n,C): out (n,2) = the centred vectors projected on the top
 * two principal axes (power iteration on the covariance, from a fixed start,
 * so the result is deterministic; each axis's sign makes its largest-magnitude
 * entry positive). axes (2,C) and var (2, variance along each axis, divided
 * by n-1 as np.cov does) may be NULL. scratch holds EMBED_PCA2_SCRATCH(n, C)
 * floats. Needs n >= 1. */
GPT2IN_API int embed_pca2(const float *vecs, size_t n, size_t C, float *out, float *axes, float *var,
               float *scratch, embed_error *err);

#ifdef __cplusplus
}
#endif
#endif
