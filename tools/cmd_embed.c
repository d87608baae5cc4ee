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

enum { OUT_NPY, OUT_F32, OUT_TEXT };

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
    "                    [--wpe-tensor NAME] [--input-format text|u16|u32|npy|json|llmc]\n"
    "                    [--format npy|f32|text] [-o OUT] [--] [IDS]\n"
    "\n"
    "Looks up each token id's row of the token embedding (wte.weight or\n"
    "transformer.wte.weight, or --tensor NAME; F32, F16 or BF16) and writes the\n"
    "rows as float32 [T, C]. --positions adds the position embedding\n"
    "(wpe.weight) row pos-offset + t. Ids come from IDS or stdin, in the formats\n"
    "'gpt2in decode' reads (default: from the file name, else text).\n"
    "--format npy (default) | f32 (raw little-endian) | text (one row a line).\n"
    "OUT defaults to stdout (also -).\n"
    "\n" CLI_OUTPUT_HELP;

/* An .npy v1.0 header for (T, C) float32, padded with spaces to exactly len
 * bytes (len a multiple of 64, at least the natural length). */
static size_t npy_header_len(uint64_t T, uint64_t C, size_t len, char hdr[256]) {
    uint64_t shape[2] = {T, C};
    size_t n = embed_npy_header(EMBED_F32, 2, shape, hdr);
    if (!n || len < n || len > 256)
        return n;
    memset(hdr + n - 1, ' ', len - n); /* the '\n' moves to the new end */
    hdr[len - 1] = '\n';
    hdr[8] = (char)((len - 10) & 0xff);
    hdr[9] = (char)((len - 10) >> 8);
    return len;
}

typedef struct {
    FILE *out;
    int format;
    size_t C;
    const char *name; /* for messages */
} writer;

static int write_rows(writer *w, const float *x, size_t T) {
    if (w->format == OUT_TEXT) {
        for (size_t t = 0; t < T; t++) {
            const float *r = x + t * w->C;
            for (size_t c = 0; c < w->C; c++)
                fprintf(w->out, c ? " %.9g" : "%.9g", r[c]);
            fputc('\n', w->out);
        }
    } else {
        fwrite(x, sizeof *x, T * w->C, w->out);  /* little-endian host */
    }
    if (ferror(w->out))
        return cli_write_error(w->name);
    return CLI_OK;
}

/* Forward of one block of ids at global index t0; positions checked here so
 * the message gives the index in the whole input. */
static int embed_block(const cli_model *m, size_t pos0, const uint32_t *ids, size_t n,
                       size_t t0, float *x) {
    if (m->has_wpe) {
        size_t maxT = m->wpe.rows;
        if (pos0 + t0 + n > maxT) {
            size_t t = maxT > pos0 + t0 ? maxT - pos0 : t0; /* the first bad index */
            return cli_error("position %zu (token index %zu) is out of range: %s has %zu "
                             "positions",
                             pos0 + t, t, cli_q(m->wpe_name), maxT);
        }
    }
    embed_error err;
    if (embed_forward(x, &m->wte, m->has_wpe ? &m->wpe : NULL, pos0 + t0, ids, n, &err))
        return cli_error("%s", err.msg);
    return CLI_OK;
}

int cmd_embed(int argc, char **argv) {
    cli_model_opts mo = {0};
    const char *out_fmt = "npy", *out_path = NULL, *in_path = NULL, *v;
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
    int format = !strcmp(out_fmt, "npy") ? OUT_NPY : !strcmp(out_fmt, "f32") ? OUT_F32
               : !strcmp(out_fmt, "text") ? OUT_TEXT : -1;
    if (format < 0)
        return cli_error("embed: unknown --format %s (npy, f32, text)", cli_q(out_fmt));
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
    if (!ids || !x) {
        cli_error("out of memory");
        goto done;
    }
    const char *in_name = in_path && strcmp(in_path, "-") ? in_path : "<stdin>";
    in = cli_open_in(in_path);
    if (!in)
        goto done;
    if (out_path && strcmp(out_path, "-")) {
        if (!(wr = embed_writer_open(out_path, &err))) {
            cli_error("%s", err.msg);
            goto done;
        }
        out = embed_writer_stream(wr);
    } else {
        out = stdout;
    }
    const char *out_name = out == stdout ? "<stdout>" : out_path;
    writer w = {out, format, C, out_name};

    /* .npy needs T in its header: patch it (seekable) or read all ids first. */
    off_t start = format == OUT_NPY ? ftello(out) : -1;
    int fl = fcntl(fileno(out), F_GETFL);  /* O_APPEND would defeat the patch */
    int seekable = start >= 0 && fl >= 0 && !(fl & O_APPEND) &&
                   lseek(fileno(out), 0, SEEK_CUR) >= 0;
    size_t hdr_len = 0;
    char hdr[256];
    size_t T = 0;
    if (format == OUT_NPY && !seekable) {
        if (ids_read_all(in, in_name, (ids_format)ifmt, V, &all, &T))
            goto done;
        hdr_len = npy_header_len(T, C, 0, hdr);
        fwrite(hdr, 1, hdr_len, out);
        for (size_t t0 = 0, n; t0 < T; t0 += n) {
            n = T - t0 < block_at(t0) ? T - t0 : block_at(t0);
            if (embed_block(&m, mo.pos0, all + t0, n, t0, x) || write_rows(&w, x, n))
                goto done;
        }
    } else {
        if (format == OUT_NPY) { /* room for the largest T: 20 digits */
            hdr_len = npy_header_len(UINT64_MAX, C, 0, hdr);
            fwrite(hdr, 1, hdr_len, out);
        }
        rd = ids_reader_open(in, in_name, (ids_format)ifmt, V);
        if (!rd)
            goto done;
        for (;;) {
            size_t n;
            if (ids_reader_next(rd, ids, block_at(T), &n))
                goto done;
            if (!n)
                break;
            if (embed_block(&m, mo.pos0, ids, n, T, x) || write_rows(&w, x, n))
                goto done;
            T += n;
        }
        if (format == OUT_NPY) {
            npy_header_len(T, C, hdr_len, hdr);
            if (fflush(out) || fseeko(out, start, SEEK_SET) || fwrite(hdr, 1, hdr_len, out) != hdr_len ||
                fseeko(out, 0, SEEK_END)) {
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
    if (wr && rc == CLI_OK && embed_writer_commit(wr, &err))
        rc = cli_error("%s", err.msg);
    else if (wr && rc != CLI_OK)
        embed_writer_abort(wr);   /* no half-written output left behind */
    free(all);
    free(ids);
    free(x);
    cli_model_close(&m);
    return rc;
}
