/* gpt2in embed - token ids -> their embedding rows, x (T,C) = wte[ids]
 * (+ wpe[pos0 + t] with --positions).
 *
 * Streams: ids are read and rows written in blocks, so memory stays bounded
 * for any length. The .npy header needs T up front: on a seekable output a
 * header sized for any T is written first and patched at the end; on a pipe
 * the ids (4 bytes a token, not 4*C) are read first, then rows stream out.
 * A named output goes through the library's embed_writer (temporary file,
 * renamed over it on success), so a failed or killed run leaves no partial
 * file and an existing one untouched; an output that is an input is refused
 * before anything is read. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_embed.h"

enum { OUT_NPY, OUT_RAW, OUT_TEXT, OUT_SAFETENSORS };

/* Tokens per block: 2048 x 768 floats = 6 MB, enough for two threads.
 * The first few thousand tokens go in blocks of 64, so that a short input
 * touches little of the buffer: each fresh page costs a page fault, which
 * for a short input costs more than the lookups. */
#define BLOCK 2048
#define SMALL_BLOCK 64
#define SMALL_TOKENS 4096

static size_t block_at(size_t t) { return t < SMALL_TOKENS ? SMALL_BLOCK : BLOCK; }

static const char usage_text[] =
    "usage: gpt2in embed --weights FILE [--positions] [--pos-offset N] [--tensor NAME]\n"
    "                    [--wpe-tensor NAME] [--input-format auto|text|u16|u32|npy|json|llmc]\n"
    "                    [--format npy|safetensors|raw|f32|text] [--dtype f32|f16|bf16]\n"
    "                    [-o OUT] [--] [IDS]\n"
    "\n"
    "Looks up each token id's row of the token embedding (wte.weight or\n"
    "transformer.wte.weight, or --tensor NAME; F32, F16 or BF16) and writes the\n"
    "rows, x [T, C]. --positions adds the position embedding (wpe.weight) row\n"
    "pos-offset + t. Ids come from IDS or stdin, in the formats 'gpt2in decode'\n"
    "reads, told from their first bytes (--input-format to say). A batch [B, T]\n"
    "(a 2-D .npy, a JSON list of lists, or text rows separated by a blank line)\n"
    "gives x [B, T, C], positions starting again at pos-offset in every row; rows\n"
    "of different lengths are an error (GPT-2 has no padding token: pad yourself).\n"
    "--format npy (default) | safetensors (one tensor \"x\") | raw (little-endian\n"
    "values, no header; f32 is raw with --dtype f32) | text (one row a line).\n"
    "--dtype f32 (default) | f16 | bf16: the values rounded to nearest even, as\n"
    "PyTorch's x.half() / x.bfloat16(); .npy has no bfloat16 (use safetensors).\n"
    "OUT defaults to stdout (also -).\n"
    "\n" CLI_OUTPUT_HELP;

/* The header of an npy or safetensors output of dt[shape], padded with
 * spaces to exactly len bytes when len is not 0 (at least the natural
 * length; a multiple of 64 for npy, of 8 for safetensors). Returns its
 * length, or 0 if it does not fit. */
static size_t out_header(int format, embed_dtype dt, int ndim, const uint64_t *shape, size_t len,
                         char hdr[512]) {
    if (format == OUT_NPY) {
        size_t n = embed_npy_header(dt, ndim, shape, hdr);
        if (!n || !len || len == n)
            return n;
        if (len < n || len > 256)
            return 0;
        memset(hdr + n - 1, ' ', len - n); /* the '\n' moves to the new end */
        hdr[len - 1] = '\n';
        hdr[8] = (char)((len - 10) & 0xff);
        hdr[9] = (char)((len - 10) >> 8);
        return len;
    }
    /* safetensors: u64 length, then {"x":{...}} padded with spaces */
    uint64_t bytes = 0, count = 1;
    int over = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] && count > UINT64_MAX / shape[d])
            over = 1;
        count *= shape[d];
    }
    size_t esz = embed_dtype_bits(dt) / 8;
    if (over || count > UINT64_MAX / esz)
        bytes = UINT64_MAX;  /* the placeholder: no reader takes it */
    else
        bytes = count * esz;
    int n = snprintf(hdr + 8, 512 - 8, "{\"x\":{\"dtype\":\"%s\",\"shape\":[", embed_dtype_name(dt));
    for (int d = 0; d < ndim; d++)
        n += snprintf(hdr + 8 + n, 512 - 8 - (size_t)n, "%s%llu", d ? "," : "",
                      (unsigned long long)shape[d]);
    n += snprintf(hdr + 8 + n, 512 - 8 - (size_t)n, "],\"data_offsets\":[0,%llu]}}",
                  (unsigned long long)bytes);
    size_t want = len ? len - 8 : ((size_t)n + 7) / 8 * 8;
    if ((size_t)n > want || want + 8 > 512)
        return 0;
    memset(hdr + 8 + n, ' ', want - (size_t)n);
    for (int k = 0; k < 8; k++)
        hdr[k] = (char)((uint64_t)want >> (8 * k));
    return want + 8;
}

/* Room for any shape: the placeholder written first on a seekable output. */
static size_t placeholder(int format, embed_dtype dt, size_t C, char hdr[512]) {
    uint64_t big[3] = {UINT64_MAX, UINT64_MAX, C};
    return out_header(format, dt, 3, big, 0, hdr);
}

typedef struct {
    FILE *out;
    int format;
    embed_dtype dtype;
    size_t C;
    uint16_t *half; /* BLOCK * C: rows rounded to F16/BF16 */
    const char *name; /* for messages */
} writer;

static int write_rows(writer *w, const float *x, size_t T) {
    size_t n = T * w->C;
    if (w->dtype != EMBED_F32)
        for (size_t i = 0; i < n; i++)
            w->half[i] = w->dtype == EMBED_F16 ? embed_f32_to_f16(x[i]) : embed_f32_to_bf16(x[i]);
    if (w->format == OUT_TEXT) {
        for (size_t t = 0; t < T; t++) {
            for (size_t c = 0; c < w->C; c++) {
                size_t i = t * w->C + c;
                float v = w->dtype == EMBED_F32 ? x[i]
                          : w->dtype == EMBED_F16 ? embed_f16_to_f32(w->half[i])
                                                  : embed_bf16_to_f32(w->half[i]);
                fprintf(w->out, c ? " %.9g" : "%.9g", v);
            }
            fputc('\n', w->out);
        }
    } else if (w->dtype == EMBED_F32) {
        fwrite(x, sizeof *x, n, w->out);  /* little-endian host */
    } else {
        fwrite(w->half, sizeof *w->half, n, w->out);
    }
    if (ferror(w->out))
        return cli_write_error(w->name);
    return CLI_OK;
}

/* Forward of one block of ids, in row `row` from column col; t is its
 * index in the whole input (for messages). Positions are checked here. */
static int embed_block(const cli_model *m, const char *in_name, size_t pos0, const uint32_t *ids,
                       size_t n, uint64_t row, uint64_t col, int batch, float *x) {
    if (m->has_wpe) {
        size_t maxT = m->wpe.rows;
        if (pos0 + col + n > maxT) {
            size_t c = maxT > pos0 + col ? maxT - pos0 : col; /* the first bad column */
            if (batch)
                return cli_error("%s: position %zu (row %llu, column %zu) is out of range: %s has %zu "
                                 "positions", cli_n(in_name), pos0 + c, (unsigned long long)row, c,
                                 cli_q(m->wpe_name), maxT);
            return cli_error("%s: position %zu (token index %zu) is out of range: %s has %zu "
                             "positions",
                             cli_n(in_name), pos0 + c, c, cli_q(m->wpe_name), maxT);
        }
    }
    embed_error err;
    if (embed_forward(x, &m->wte, m->has_wpe ? &m->wpe : NULL, pos0 + col, ids, n, &err))
        return cli_error("%s: %s", cli_n(in_name), err.msg);
    return CLI_OK;
}

/* The output's shape: [T, C] or [B, T, C]. */
static int out_shape(const ids_shape *sh, size_t C, uint64_t shape[3]) {
    if (sh->ndim == 2) {
        shape[0] = sh->B, shape[1] = sh->T, shape[2] = C;
        return 3;
    }
    shape[0] = sh->T, shape[1] = C;
    return 2;
}

int cmd_embed(int argc, char **argv) {
    cli_model_opts mo = {0};
    const char *out_fmt = "npy", *out_path = NULL, *in_path = NULL, *dtype_name = NULL, *v;
    int bad = 0, operands = 0;
    for (int i = 1; i < argc; i++) {
        int kind = cli_model_arg(argc, argv, &i, &operands, usage_text, NULL, &mo);
        if (kind < 0 || kind == CLI_ARG_HELP)
            return kind < 0 ? CLI_ERR : CLI_OK;
        if (kind == CLI_ARG_SKIP)
            continue;
        if (kind == CLI_ARG_OPERAND) {
            if (in_path)
                return cli_error("embed: more than one input file (%s, %s)", cli_q(in_path),
                                 cli_q(argv[i]));
            in_path = argv[i];
        } else if ((v = cli_opt(argc, argv, &i, "--format", &bad))) {
            out_fmt = v;
        } else if ((v = cli_opt(argc, argv, &i, "--dtype", &bad))) {
            dtype_name = v;
        } else if ((v = cli_opt(argc, argv, &i, "-o", &bad)) ||
                   (v = cli_opt(argc, argv, &i, "--output", &bad))) {
            out_path = v;
        } else if (bad) {
            return CLI_ERR;
        } else {
            return cli_unknown_option("embed", argv[i], kind);
        }
        if (bad)
            return CLI_ERR;
    }
    int format = !strcmp(out_fmt, "npy") ? OUT_NPY
               : !strcmp(out_fmt, "f32") || !strcmp(out_fmt, "raw") ? OUT_RAW
               : !strcmp(out_fmt, "text") ? OUT_TEXT
               : !strcmp(out_fmt, "safetensors") ? OUT_SAFETENSORS : -1;
    if (format < 0)
        return cli_error("embed: unknown --format %s (npy, safetensors, raw, f32, text)", cli_q(out_fmt));
    embed_dtype dtype = EMBED_F32;
    if (dtype_name) {
        if (!strcmp(dtype_name, "f16") || !strcmp(dtype_name, "F16") || !strcmp(dtype_name, "float16"))
            dtype = EMBED_F16;
        else if (!strcmp(dtype_name, "bf16") || !strcmp(dtype_name, "BF16") || !strcmp(dtype_name, "bfloat16"))
            dtype = EMBED_BF16;
        else if (strcmp(dtype_name, "f32") && strcmp(dtype_name, "F32") && strcmp(dtype_name, "float32"))
            return cli_error("embed: unknown --dtype %s (f32, f16, bf16)", cli_q(dtype_name));
    }
    if (!strcmp(out_fmt, "f32") && dtype != EMBED_F32)
        return cli_error("embed: --format f32 writes float32; for --dtype %s use --format raw",
                         cli_q(dtype_name));
    if (format == OUT_NPY && dtype == EMBED_BF16)
        return cli_error("embed: .npy has no bfloat16 dtype: use --format safetensors or raw "
                         "with --dtype bf16");
    int ifmt = cli_ids_format(mo.input_format, in_path);
    if (ifmt < 0)
        return CLI_ERR;
    const char *inputs[] = {mo.weights, in_path ? in_path : "-"};
    if (cli_output_check("embed", "-o", out_path ? out_path : "-", inputs, 2, 1))
        return CLI_ERR;

    cli_model m;
    if (cli_model_open(&mo, "embed", &m))
        return CLI_ERR;
    size_t C = m.wte.cols, V = m.wte.rows;
    int rc = CLI_ERR;
    FILE *in = NULL, *out = NULL;
    embed_writer *wr = NULL;
    embed_error err;
    ids_reader *rd = NULL;
    uint32_t *all = NULL, *ids = malloc(BLOCK * sizeof *ids);
    float *x = malloc((size_t)BLOCK * (C ? C : 1) * sizeof *x);
    uint16_t *half = dtype == EMBED_F32 ? NULL : malloc((size_t)BLOCK * (C ? C : 1) * sizeof *half);
    if (!ids || !x || (dtype != EMBED_F32 && !half)) {
        cli_error("out of memory");
        goto done;
    }
    const char *in_name = in_path && strcmp(in_path, "-") ? in_path : "<stdin>";
    in = cli_open_in(in_path);
    if (!in)
        goto done;
    if (out_path && strcmp(out_path, "-")) {
        if (!(wr = cli_writer_open(out_path, &err))) {
            cli_error("%s", err.msg);
            goto done;
        }
        out = embed_writer_stream(wr);
    } else {
        out = stdout;
    }
    const char *out_name = out == stdout ? "<stdout>" : out_path;
    writer w = {out, format, dtype, C, half, out_name};
    int headed = format == OUT_NPY || format == OUT_SAFETENSORS;

    /* The header needs the shape: patch it (seekable) or read all ids first. */
    off_t start = headed ? ftello(out) : -1;
    int fl = fcntl(fileno(out), F_GETFL);  /* O_APPEND would defeat the patch */
    int seekable = start >= 0 && fl >= 0 && !(fl & O_APPEND) &&
                   lseek(fileno(out), 0, SEEK_CUR) >= 0;
    size_t hdr_len = 0;
    char hdr[512];
    uint64_t shape[3];
    ids_shape sh;
    if (headed && !seekable) {
        if (ids_read_batch(in, in_name, (ids_format)ifmt, V, &all, &sh))
            goto done;
        int nd = out_shape(&sh, C, shape);
        hdr_len = out_header(format, dtype, nd, shape, 0, hdr);
        if (!hdr_len) {
            cli_error("embed: the output header does not fit");
            goto done;
        }
        fwrite(hdr, 1, hdr_len, out);
        for (uint64_t b = 0; b < sh.B; b++)
            for (size_t t0 = 0, n; t0 < sh.T; t0 += n) {
                n = sh.T - t0 < block_at(b * sh.T + t0) ? sh.T - t0 : block_at(b * sh.T + t0);
                if (embed_block(&m, in_name, mo.pos0, all + b * sh.T + t0, n, b, t0, sh.ndim == 2, x) ||
                    write_rows(&w, x, n))
                    goto done;
            }
    } else {
        if (headed) { /* room for the largest shape: 20 digits each */
            hdr_len = placeholder(format, dtype, C, hdr);
            fwrite(hdr, 1, hdr_len, out);
        }
        rd = ids_reader_open(in, in_name, (ids_format)ifmt, V);
        if (!rd)
            goto done;
        for (size_t T = 0;;) {
            size_t n;
            uint64_t row, col;
            if (ids_reader_next_row(rd, ids, block_at(T), &n, &row, &col))
                goto done;
            if (!n)
                break;
            if (embed_block(&m, in_name, mo.pos0, ids, n, row, col, row > 0, x) ||
                write_rows(&w, x, n))
                goto done;
            T += n;
        }
        ids_reader_shape(rd, &sh);
        if (headed) {
            int nd = out_shape(&sh, C, shape);
            if (out_header(format, dtype, nd, shape, hdr_len, hdr) != hdr_len) {
                cli_error("embed: the output header does not fit");
                goto done;
            }
            /* back to the end of the rows, not the file's (1<> FILE may be longer) */
            off_t end = fflush(out) ? -1 : ftello(out);
            if (end < 0 || fseeko(out, start, SEEK_SET) || fwrite(hdr, 1, hdr_len, out) != hdr_len ||
                fseeko(out, end, SEEK_SET)) {
                cli_write_error(out_name);
                goto done;
            }
        }
    }
    if (fflush(out) || ferror(out)) {
        cli_write_error(out_name);
        goto done;
    }
    rc = CLI_OK;
done:
    if (rd)
        ids_reader_close(rd);
    if (in && in != stdin)
        fclose(in);
    if (wr && rc == CLI_OK && cli_writer_commit(wr, &err))
        rc = cli_error("%s", err.msg);
    else if (wr && rc != CLI_OK)
        cli_writer_abort(wr);   /* no half-written output left behind */
    free(all);
    free(ids);
    free(x);
    free(half);
    cli_model_close(&m);
    return rc;
}
