/* cli_ids.c - token-id files in the formats gpt2in reads and writes:
 * decimal text, raw u16/u32, .npy, JSON and llm.c token shards. Readers
 * stream with bounded memory (a 64 KB buffer; a text id is cut off after
 * 20 bytes; a .npy header is at most 10 KB); each error is one line naming
 * the file, the id's index and its byte offset, input bytes escaped. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define LLMC_MAGIC 20240520
#define LLMC_VERSION 1
#define LLMC_HEADER_INTS 256

static const char *const format_names[] = {"text", "u16", "u32", "npy", "json", "llmc", "auto"};

int ids_format_from_name(const char *name) {
    for (int i = 0; i < (int)(sizeof format_names / sizeof *format_names); i++)
        if (!strcmp(name, format_names[i])) return i;
    return -1;
}

int cli_ids_format(const char *name, const char *path) {
    (void)path; /* the content tells, not the name (an explicit name wins) */
    if (name) {
        int f = ids_format_from_name(name);
        if (f < 0)
            cli_error("unknown --input-format %s (text, u16, u32, npy, json, llmc, auto)", cli_q(name));
        return f;
    }
    return IDS_AUTO;
}

/* ---- reading ------------------------------------------------------------- */

/* A text or JSON id is at most this many bytes (4294967295 is 10 digits; the
 * rest allows leading zeros): a longer token is an error once this many are
 * read, so a run of digits or of NULs is not read to its end. */
#define ID_MAX_BYTES 20
/* .npy: the preamble (12 bytes at most) and the header (the library reads
 * headers up to 10000 bytes, embed.h). */
#define NPY_PREAMBLE 12
#define NPY_HEADER_MAX 10000

struct ids_reader {
    FILE *in;
    const char *name;
    ids_format fmt;
    size_t vocab;
    uint64_t index;        /* ids delivered so far */
    uint64_t byte;         /* bytes consumed so far */
    unsigned char buf[1 << 16];
    size_t pos, len;
    int eof, started, ended;
    uint64_t left;         /* llm.c and .npy: ids still expected */
    uint64_t total;        /* .npy: the ids its shape holds */
    embed_dtype dtype;     /* .npy: the ids' type */
    unsigned idbytes;      /* .npy: bytes an id */
    uint64_t npy_rows;     /* .npy [B, T]: B */
    char shown[300];       /* the name, escaped when it has control bytes */
    /* rows: a 2-D .npy, a JSON list of lists or blank-line-separated text
     * rows is [B, T]; everything else one row [T] */
    int ndim;              /* 1, or 2 once rows are seen */
    uint64_t row, col;     /* where the next id goes */
    uint64_t width;        /* T: the first row's length (a 2-D .npy: its shape's) */
    int width_known;
    int in_row;            /* JSON [B, T]: between a row's '[' and its ']' */
    int brk;               /* text: a blank line since the last id */
    int ragged_ok;         /* rows may differ in length (decode) */
};

static int refill(ids_reader *r) {
    if (r->pos < r->len) return 1;
    if (r->eof) return 0;
    r->len = fread(r->buf, 1, sizeof r->buf, r->in);
    r->pos = 0;
    if (r->len == 0) {
        r->eof = 1;
        if (ferror(r->in)) {
            cli_error("%s: read error at byte %llu: %s", r->name, (unsigned long long)r->byte,
                      strerror(errno));
            return -1;
        }
        return 0;
    }
    return 1;
}

/* Next byte or -1 at end (-2 on a read error). */
static int next_byte(ids_reader *r) {
    int ok = refill(r);
    if (ok <= 0) return ok < 0 ? -2 : -1;
    r->byte++;
    return r->buf[r->pos++];
}

static int peek_byte(ids_reader *r) {
    int ok = refill(r);
    if (ok <= 0) return ok < 0 ? -2 : -1;
    return r->buf[r->pos];
}

/* id, which starts at byte `at`, against the vocabulary. */
static int check_id(ids_reader *r, uint64_t id, uint64_t at) {
    if (r->vocab && id >= r->vocab)
        return cli_error("%s: index %llu, byte %llu: %llu is outside the vocabulary (0..%zu)", r->name,
                         (unsigned long long)r->index, (unsigned long long)at,
                         (unsigned long long)id, r->vocab - 1);
    return 0;
}

static int is_space(int c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* "byte N: expected X, found "c"" (or "the end"): c is escaped. */
static int unexpected(ids_reader *r, int c, const char *expected) {
    char q[16];
    unsigned char b = (unsigned char)c;
    if (c >= 0) cli_quote_buf(q, sizeof q, &b, 1);
    return cli_error("%s: byte %llu: expected %s, found %s", r->name, (unsigned long long)r->byte,
                     expected, c >= 0 ? q : "the end");
}

/* A decimal id; the caller has skipped whitespace (and for JSON, commas). */
static int read_number(ids_reader *r, uint64_t *out, int json, uint64_t *at) {
    uint64_t v = 0;
    unsigned char tok[ID_MAX_BYTES + 1];
    size_t ns = 0;
    int c, bad = 0;
    *at = r->byte;
    while ((c = peek_byte(r)) >= 0 && !is_space(c) && !(json && (c == ',' || c == ']'))) {
        if (ns == sizeof tok) break;  /* longer than any id: stop reading here */
        next_byte(r);
        tok[ns++] = (unsigned char)c;
        if (c >= '0' && c <= '9') {
            if (!bad) v = v * 10 + (uint64_t)(c - '0');
            if (v > 0xFFFFFFFFull) bad = 2;
        } else {
            bad = 1;
        }
    }
    if (c == -2) return CLI_ERR;
    char q[ID_MAX_BYTES * 4 + 8];
    cli_quote_buf(q, sizeof q, tok, ns > ID_MAX_BYTES ? ID_MAX_BYTES : ns);
    const char *cut = ns > ID_MAX_BYTES ? "..." : "";
    if (bad == 1 || !ns)
        return cli_error("%s: index %llu, byte %llu: %s%s is not a token id (a non-negative integer)",
                         r->name, (unsigned long long)r->index, (unsigned long long)*at, q, cut);
    if (ns > ID_MAX_BYTES)
        return cli_error("%s: index %llu, byte %llu: %s... is longer than any token id (%d bytes)",
                         r->name, (unsigned long long)r->index, (unsigned long long)*at, q, ID_MAX_BYTES);
    if (bad == 2)
        return cli_error("%s: index %llu, byte %llu: %s is outside the vocabulary", r->name,
                         (unsigned long long)r->index, (unsigned long long)*at, q);
    *out = v;
    return 0;
}

/* Row `row` is complete with `col` ids: all rows must be as long as the first. */
static int close_row(ids_reader *r) {
    if (!r->width_known || r->ragged_ok) {
        r->width = r->col;
        r->width_known = 1;
    } else if (r->col != r->width) {
        return cli_error("%s: byte %llu: row %llu has %llu ids but row 0 has %llu: the rows of a "
                         "batch [B, T] must all have T ids (pad them yourself: GPT-2 has no "
                         "padding token)", r->name, (unsigned long long)r->byte,
                         (unsigned long long)r->row, (unsigned long long)r->col,
                         (unsigned long long)r->width);
    }
    r->row++;
    r->col = 0;
    return 0;
}

/* One more id in the current row: past the first row's length is an error
 * now, not at the row's end, so a bad batch stops early. */
static int row_room(ids_reader *r, uint64_t at) {
    if (r->ndim == 2 && r->width_known && r->col >= r->width && !r->ragged_ok)
        return cli_error("%s: byte %llu: row %llu has more ids than row 0 (%llu): the rows of a "
                         "batch [B, T] must all have T ids (pad them yourself: GPT-2 has no "
                         "padding token)", r->name, (unsigned long long)at,
                         (unsigned long long)r->row, (unsigned long long)r->width);
    return 0;
}

/* Buffers at least n bytes (fewer only at the end of input): a short first
 * read (a pipe) is kept and read on. */
static int fill_start(ids_reader *r, size_t n) {
    while (r->len - r->pos < n && !r->eof) {
        /* a short first read (a pipe): keep what came and read on */
        if (r->pos) {
            memmove(r->buf, r->buf + r->pos, r->len - r->pos);
            r->len -= r->pos;
            r->pos = 0;
        }
        size_t got = fread(r->buf + r->len, 1, sizeof r->buf - r->len, r->in);
        if (got == 0) {
            r->eof = 1;
            if (ferror(r->in))
                return cli_error("%s: read error at byte 0: %s", r->name, strerror(errno));
        }
        r->len += got;
    }
    return 0;
}

/* Text and JSON ids may start with a UTF-8 byte order mark, as embed_detect
 * allows. */
static int skip_bom(ids_reader *r) {
    if (fill_start(r, 3)) return CLI_ERR;
    if (r->len - r->pos >= 3 && !memcmp(r->buf + r->pos, "\xef\xbb\xbf", 3)) {
        r->pos += 3;
        r->byte += 3;
    }
    return 0;
}

/* --input-format auto: the format from the first bytes (embed_detect). */
static int detect(ids_reader *r) {
    if (fill_start(r, EMBED_DETECT_BYTES)) return CLI_ERR;
    embed_kind k = embed_detect(r->buf + r->pos, r->len - r->pos);
    switch (k) {
    case EMBED_KIND_EMPTY: case EMBED_KIND_TEXT: r->fmt = IDS_TEXT; return 0;
    case EMBED_KIND_JSON: r->fmt = IDS_JSON; return 0;
    case EMBED_KIND_NPY: r->fmt = IDS_NPY; return 0;
    case EMBED_KIND_LLMC_SHARD: r->fmt = IDS_LLMC; return 0;
    case EMBED_KIND_UNKNOWN: {
        /* name the first byte that is not text, and show it escaped */
        size_t at = r->pos;
        while (at < r->len && !((r->buf[at] < 0x20 && !is_space(r->buf[at])) || r->buf[at] == 0x7f ||
                                r->buf[at] == 0xc0 || r->buf[at] == 0xc1 || r->buf[at] >= 0xf5))
            at++;
        if (at == r->len) at = r->pos;
        char q[80];
        size_t show = r->len - at < 16 ? r->len - at : 16;
        cli_quote_buf(q, sizeof q, r->buf + at, show);
        return cli_error("%s: byte %zu: %s%s is not text, JSON, .npy or an llm.c shard (the id "
                         "formats told from their bytes); raw ids need --input-format u16 or u32",
                         r->name, at - r->pos, q, r->len - at > 16 ? "..." : "");
    }
    default:
        return cli_error("%s is %s, not token ids (text, JSON, .npy or an llm.c shard)", r->name,
                         embed_kind_desc(k));
    }
}

ids_reader *ids_reader_open(FILE *in, const char *name, ids_format fmt, size_t vocab_size) {
    ids_reader *r = calloc(1, sizeof *r);
    if (!r) {
        cli_error("out of memory");
        return NULL;
    }
    r->in = in;
    r->name = cli_name(name ? name : "<stdin>", r->shown, sizeof r->shown);
    r->fmt = fmt;
    r->vocab = vocab_size;
    r->ndim = 1;
    return r;
}

static int read_exact(ids_reader *r, void *dst, size_t n, size_t *got) {
    unsigned char *d = dst;
    size_t k = 0;
    while (k < n) {
        int ok = refill(r);
        if (ok < 0) return CLI_ERR;
        if (ok == 0) break;
        size_t take = r->len - r->pos < n - k ? r->len - r->pos : n - k;
        memcpy(d + k, r->buf + r->pos, take);
        r->pos += take;
        r->byte += take;
        k += take;
    }
    *got = k;
    return 0;
}

static int start_llmc(ids_reader *r) {
    int32_t h[LLMC_HEADER_INTS];
    size_t got;
    if (read_exact(r, h, sizeof h, &got)) return CLI_ERR;
    if (got != sizeof h)
        return cli_error("%s: truncated llm.c shard: %zu bytes, the header alone is %zu", r->name, got,
                         sizeof h);
    if (h[0] != LLMC_MAGIC)
        return cli_error("%s: byte 0: not an llm.c token shard (magic %d, expected %d)", r->name, h[0],
                         LLMC_MAGIC);
    if (h[1] != LLMC_VERSION)
        return cli_error("%s: byte 4: llm.c token shard version %d, only %d is known", r->name, h[1],
                         LLMC_VERSION);
    if (h[2] < 0) return cli_error("%s: byte 8: negative token count %d in the llm.c header", r->name, h[2]);
    r->left = (uint64_t)h[2];
    return 0;
}

/* .npy: reads and checks the preamble and header only (at most 10012
 * bytes, fewer when the magic or the length is wrong); the data streams. */
static int start_npy(ids_reader *r) {
    unsigned char *h = malloc(NPY_PREAMBLE + NPY_HEADER_MAX);
    if (!h) return cli_error("%s: out of memory", r->name);
    size_t got, more = 0;
    int rc = read_exact(r, h, 10, &got);
    if (!rc && got == 10 && !memcmp(h, "\x93NUMPY", 6)) {
        if ((h[6] == 2 || h[6] == 3) && !(rc = read_exact(r, h + 10, 2, &more))) got += more;
        uint64_t hlen = h[6] == 1 ? (uint64_t)h[8] | (uint64_t)h[9] << 8
                                  : got < 12 ? 0
                                  : (uint64_t)h[8] | (uint64_t)h[9] << 8 | (uint64_t)h[10] << 16 |
                                        (uint64_t)h[11] << 24;
        /* a length over the limit is left for the library to name */
        if (!rc && hlen <= NPY_HEADER_MAX && (h[6] == 1 || got == 12) &&
            !(rc = read_exact(r, h + got, (size_t)hlen, &more)))
            got += more;
    }
    embed_npy a;
    embed_error err;
    size_t start;
    if (!rc && embed_npy_inspect_header(h, got, r->name, &a, &start, &err)) rc = cli_error("%s", err.msg);
    free(h);
    if (rc) return rc;
    if (start != got) return cli_error("%s: .npy header: internal size mismatch", r->name);
    switch (a.dtype) {
    case EMBED_U8: case EMBED_I8: case EMBED_U16: case EMBED_I16: case EMBED_U32: case EMBED_I32:
    case EMBED_U64: case EMBED_I64:
        break;
    default:
        return cli_error("%s: .npy of %s holds no token ids (an integer array is needed)", r->name,
                         embed_dtype_name(a.dtype));
    }
    if (a.ndim > 2) {
        char sh[160];
        int o = 0;
        for (int d = 0; d < a.ndim && o < (int)sizeof sh - 24; d++)
            o += snprintf(sh + o, sizeof sh - (size_t)o, "%s%llu", d ? ", " : "",
                          (unsigned long long)a.shape[d]);
        return cli_error("%s: a %d-D .npy [%s]: token ids are [T] or a batch [B, T]", r->name,
                         a.ndim, sh);
    }
    if (a.ndim == 2) {
        r->ndim = 2;
        r->width = a.shape[1];
        r->width_known = 1;
        r->npy_rows = a.shape[0];
    }
    r->dtype = a.dtype;
    r->idbytes = (unsigned)(embed_dtype_bits(a.dtype) / 8);
    r->total = r->left = a.count;
    return 0;
}

/* The next .npy id (little-endian, of r->dtype), sign-checked. */
static int npy_id(ids_reader *r, uint64_t *out, uint64_t *at) {
    unsigned char b[8];
    size_t got;
    *at = r->byte;
    if (read_exact(r, b, r->idbytes, &got)) return CLI_ERR;
    if (got != r->idbytes)
        return cli_error("%s: index %llu, byte %llu: truncated .npy, the data ends at byte %llu (its "
                         "shape holds %llu ids)", r->name, (unsigned long long)r->index,
                         (unsigned long long)*at, (unsigned long long)r->byte,
                         (unsigned long long)r->total);
    uint64_t u = 0;
    for (unsigned i = 0; i < r->idbytes; i++) u |= (uint64_t)b[i] << (8 * i);
    int64_t s = 0;
    switch (r->dtype) {
    case EMBED_I8: s = (int8_t)u; break;
    case EMBED_I16: s = (int16_t)u; break;
    case EMBED_I32: s = (int32_t)u; break;
    case EMBED_I64: s = (int64_t)u; break;
    default: *out = u; return 0;
    }
    if (s < 0)
        return cli_error("%s: index %llu, byte %llu: %lld is a negative id", r->name,
                         (unsigned long long)r->index, (unsigned long long)*at, (long long)s);
    *out = (uint64_t)s;
    return 0;
}

/* Skips white space; text: counts the newlines, a blank line between ids
 * being a row break. Returns the next byte (not consumed), -1 at the end,
 * -2 on a read error. */
static int skip_ws(ids_reader *r, int count_lines) {
    int c, lines = 0;
    while ((c = peek_byte(r)) >= 0 && is_space(c)) {
        if (c == '\n') lines++;
        next_byte(r);
    }
    if (count_lines && lines >= 2 && (r->col > 0 || r->row > 0)) r->brk = 1;
    return c;
}

/* The JSON array's start: '[' then, for a batch, another '['. */
static int start_json(ids_reader *r) {
    int c = skip_ws(r, 0);
    if (c == -2) return CLI_ERR;
    if (c != '[') return unexpected(r, c, "'[' (a JSON array of ids)");
    next_byte(r);
    c = skip_ws(r, 0);
    if (c == -2) return CLI_ERR;
    if (c == '[') r->ndim = 2;
    return 0;
}

/* JSON: the next id, or *end at the array's end; a batch's rows are
 * closed (close_row) on the way. Sets *brk when a row closed. */
static int json_next(ids_reader *r, uint64_t *id, uint64_t *at, int *end, int *brk) {
    int c = skip_ws(r, 0);
    if (c == -2) return CLI_ERR;
    if (r->ndim == 2 && !r->in_row) {
        /* between rows: ']' ends the batch, else [','] '[' starts a row */
        if (c == ']' || (r->row > 0 && c != ',')) {
            if (c != ']') return unexpected(r, c, "',' or ']' after a row");
            next_byte(r);
            c = skip_ws(r, 0);
            if (c == -2) return CLI_ERR;
            if (c >= 0) return unexpected(r, c, "the end after the JSON array");
            *end = 1;
            return 0;
        }
        if (r->row > 0) {
            next_byte(r);
            c = skip_ws(r, 0);
            if (c == -2) return CLI_ERR;
        }
        if (c != '[')
            return unexpected(r, c, "'[' (in a list of lists, every element is a row of ids)");
        next_byte(r);
        r->in_row = 1;
        c = skip_ws(r, 0);
        if (c == -2) return CLI_ERR;
    }
    if (c == ']') {
        next_byte(r);
        if (r->ndim == 2) {
            r->in_row = 0;
            *brk = 1;
            return close_row(r);
        }
        c = skip_ws(r, 0);
        if (c == -2) return CLI_ERR;
        if (c >= 0) return unexpected(r, c, "the end after the JSON array");
        *end = 1;
        return 0;
    }
    if (r->col > 0) {
        if (c != ',') return unexpected(r, c, "',' or ']'");
        next_byte(r);
        c = skip_ws(r, 0);
        if (c == -2) return CLI_ERR;
    }
    if (c < 0) return unexpected(r, c, "an id or ']' (unterminated JSON array)");
    if (c == '[')
        return unexpected(r, c, r->ndim == 2 ? "an id (ids are [T] or a batch [B, T], not deeper)"
                                             : "an id (a list of ids holds no lists)");
    return read_number(r, id, 1, at);
}

int ids_reader_next(ids_reader *r, uint32_t *out, size_t cap, size_t *n) {
    uint64_t row, col;
    return ids_reader_next_row(r, out, cap, n, &row, &col);
}

int ids_reader_next_row(ids_reader *r, uint32_t *out, size_t cap, size_t *n, uint64_t *row,
                        uint64_t *col) {
    *n = 0;
    if (!r->started) {
        r->started = 1;
        if (r->fmt == IDS_AUTO && detect(r)) return CLI_ERR;
        if ((r->fmt == IDS_TEXT || r->fmt == IDS_JSON) && skip_bom(r)) return CLI_ERR;
        if (r->fmt == IDS_LLMC && start_llmc(r)) return CLI_ERR;
        if (r->fmt == IDS_NPY && start_npy(r)) return CLI_ERR;
        if (r->fmt == IDS_JSON && start_json(r)) return CLI_ERR;
    }
    size_t k = 0;
    *row = r->row, *col = r->col;
    while (k < cap && !r->ended) {
        uint64_t id = 0, at = r->byte;
        switch (r->fmt) {
        case IDS_AUTO:  /* replaced by detect() */
        case IDS_TEXT: {
            int c = skip_ws(r, 1);
            if (c == -2) return CLI_ERR;
            if (c < 0) {
                if ((r->ndim == 2 || r->col > 0) && close_row(r)) return CLI_ERR;
                r->ended = 1;
                continue;
            }
            if (r->brk) {  /* a blank line: the row so far is complete */
                r->brk = 0;
                r->ndim = 2;
                if (close_row(r)) return CLI_ERR;
                if (k) goto out;
                *row = r->row, *col = r->col;
            }
            if (read_number(r, &id, 0, &at)) return CLI_ERR;
            break;
        }
        case IDS_JSON: {
            int end = 0, brk = 0;
            if (json_next(r, &id, &at, &end, &brk)) return CLI_ERR;
            if (end) {
                r->ended = 1;
                continue;
            }
            if (brk) {
                if (k) goto out;
                *row = r->row, *col = r->col;
                continue;
            }
            break;
        }
        case IDS_U16: case IDS_U32: {
            size_t w = r->fmt == IDS_U16 ? 2 : 4, got;
            unsigned char b[4];
            if (read_exact(r, b, w, &got)) return CLI_ERR;
            if (got == 0) {
                r->ended = 1;
                continue;
            }
            if (got != w)
                return cli_error("%s: truncated: %llu bytes is not a whole number of %zu-byte ids", r->name,
                                 (unsigned long long)r->byte, w);
            id = w == 2 ? (uint64_t)(b[0] | b[1] << 8)
                        : (uint64_t)b[0] | (uint64_t)b[1] << 8 | (uint64_t)b[2] << 16 | (uint64_t)b[3] << 24;
            break;
        }
        case IDS_LLMC: {
            unsigned char b[2];
            size_t got;
            if (r->left == 0) {
                if (read_exact(r, b, 1, &got)) return CLI_ERR;
                if (got)
                    return cli_error("%s: byte %llu: more tokens than the llm.c header's count", r->name,
                                     (unsigned long long)(r->byte - 1));
                r->ended = 1;
                continue;
            }
            if (read_exact(r, b, 2, &got)) return CLI_ERR;
            if (got != 2)
                return cli_error("%s: truncated llm.c shard: the data ends at byte %llu, %llu tokens "
                                 "missing", r->name, (unsigned long long)r->byte,
                                 (unsigned long long)r->left);
            r->left--;
            id = (uint64_t)(b[0] | b[1] << 8);
            break;
        }
        case IDS_NPY:
            if (r->ndim == 2 && r->col == r->width && r->width) {  /* a row is complete */
                r->row++;
                r->col = 0;
                if (k) goto out;
                *row = r->row, *col = r->col;
            }
            if (r->left == 0) {
                unsigned char b;
                size_t got;
                if (read_exact(r, &b, 1, &got)) return CLI_ERR;
                if (got)
                    return cli_error("%s: byte %llu: data after the %llu ids the .npy header's shape "
                                     "holds", r->name, (unsigned long long)(r->byte - 1),
                                     (unsigned long long)r->total);
                r->ended = 1;
                continue;
            }
            if (npy_id(r, &id, &at)) return CLI_ERR;
            r->left--;
            break;
        }
        if (row_room(r, at) || check_id(r, id, at)) return CLI_ERR;
        out[k++] = (uint32_t)id;
        r->index++;
        r->col++;
    }
out:
    *n = k;
    return 0;
}

void ids_reader_allow_ragged(ids_reader *r) { r->ragged_ok = 1; }

void ids_reader_shape(const ids_reader *r, ids_shape *shape) {
    shape->ndim = r->ndim;
    if (r->fmt == IDS_NPY && r->ndim == 2) {
        shape->B = r->npy_rows;
        shape->T = r->width;
    } else if (r->ndim == 2) {
        shape->B = r->row;
        shape->T = r->width;
    } else {
        shape->B = 1;
        shape->T = r->index;
    }
}

void ids_reader_close(ids_reader *r) { free(r); }

int ids_read_batch(FILE *in, const char *name, ids_format fmt, size_t vocab_size, uint32_t **ids,
                   ids_shape *shape) {
    ids_reader *r = ids_reader_open(in, name, fmt, vocab_size);
    if (!r) return CLI_ERR;
    uint32_t *all = NULL;
    size_t len = 0, cap = 0, got;
    int rc = 0;
    do {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            uint32_t *b = realloc(all, cap * sizeof *all);
            if (!b) {
                rc = cli_error("%s: out of memory", r->name);
                break;
            }
            all = b;
        }
        rc = ids_reader_next(r, all + len, cap - len, &got);
        len += got;
    } while (!rc && got);
    if (!rc) ids_reader_shape(r, shape);
    ids_reader_close(r);
    if (rc) {
        free(all);
        return rc;
    }
    *ids = all;
    return 0;
}

int ids_read_all(FILE *in, const char *name, ids_format fmt, size_t vocab_size, uint32_t **ids,
                 size_t *n) {
    ids_shape sh;
    int rc = ids_read_batch(in, name, fmt, vocab_size, ids, &sh);
    if (!rc) *n = (size_t)(sh.B * sh.T);
    return rc;
}

int cli_read_batch(const char *path, const char *fmt_name, size_t vocab, uint32_t **ids,
                   ids_shape *shape) {
    int fmt = cli_ids_format(fmt_name, path);
    if (fmt < 0) return CLI_ERR;
    FILE *in = cli_open_in(path);
    if (!in) return CLI_ERR;
    int rc = ids_read_batch(in, path && strcmp(path, "-") ? path : "<stdin>", (ids_format)fmt, vocab,
                            ids, shape);
    if (in != stdin) fclose(in);
    return rc;
}

/* ---- writing ------------------------------------------------------------- */

struct ids_writer {
    FILE *out;
    const char *name;      /* for messages */
    ids_format fmt;
    uint64_t count;
    int seekable;
    int failed;            /* an error was reported: say nothing more */
    off_t start;           /* where the header went, to patch it */
    uint32_t *held;        /* npy/llmc to a pipe: ids kept until the count is known */
    size_t n_held, cap_held;
    char buf[1 << 16];
    size_t len;
};

static int write_failed(ids_writer *w) {
    w->failed = 1;
    return cli_write_error(w->name);
}

static int flush_buf(ids_writer *w) {
    if (w->len && fwrite(w->buf, 1, w->len, w->out) != w->len) return write_failed(w);
    w->len = 0;
    return 0;
}

static int put_bytes(ids_writer *w, const void *p, size_t n) {
    if (w->len + n > sizeof w->buf && flush_buf(w)) return CLI_ERR;
    if (n > sizeof w->buf) return fwrite(p, 1, n, w->out) == n ? 0 : write_failed(w);
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return 0;
}

/* The largest count an llm.c header holds. */
#define LLMC_MAX_TOKENS INT32_MAX

/* The header for w->count ids, or (final 0) a placeholder of the same
 * length that no reader accepts: .npy with shape (2^64-1,), as embed
 * does, and llm.c with magic 0; a killed run leaves an invalid file, not
 * an empty array. */
static int write_header(ids_writer *w, int final) {
    if (w->fmt == IDS_NPY) {
        char hdr[256];
        uint64_t shape[1] = {final ? w->count : UINT64_MAX};
        size_t n = embed_npy_header(EMBED_I32, 1, shape, hdr);
        return put_bytes(w, hdr, n);
    }
    if (w->fmt == IDS_LLMC) {
        if (w->count > LLMC_MAX_TOKENS) {
            w->failed = 1;
            return cli_error("%s: too many tokens for an llm.c shard (%llu, at most %d)", w->name,
                             (unsigned long long)w->count, LLMC_MAX_TOKENS);
        }
        int32_t h[LLMC_HEADER_INTS] = {final ? LLMC_MAGIC : 0, LLMC_VERSION, final ? (int32_t)w->count : -1};
        return put_bytes(w, h, sizeof h);
    }
    if (w->fmt == IDS_JSON) return put_bytes(w, "[", 1);
    return 0;
}

ids_writer *ids_writer_open(FILE *out, ids_format fmt) {
    /* (not calloc: zeroing the 64 KB buffer would fault in pages a
     * u32 output never touches) */
    ids_writer *w = malloc(sizeof *w);
    if (!w) {
        cli_error("out of memory");
        return NULL;
    }
    memset(w, 0, offsetof(ids_writer, buf));
    w->len = 0;
    w->out = out;
    w->name = out == stdout ? "<stdout>" : "<output>";
    w->fmt = fmt;
    if (fmt == IDS_NPY || fmt == IDS_LLMC) {
        /* The count goes in the header: a seekable output gets a placeholder
         * now, rewritten in place at the end (its length does not depend on
         * the count: npy pads to 128 bytes, llm.c is fixed); other outputs
         * (pipes) get the ids held until the end. An output in append mode
         * would get the rewrite appended, so it is refused before anything
         * is written. */
        int fl = fcntl(fileno(out), F_GETFL);
        w->start = ftello(out);
        w->seekable = w->start >= 0 && lseek(fileno(out), 0, SEEK_CUR) >= 0;
        if (w->seekable && fl >= 0 && (fl & O_APPEND)) {
            cli_error("%s: --format %s cannot be appended to a file (>>): its header is rewritten "
                      "when the count is known; write a new file (>) or to a pipe", w->name,
                      format_names[fmt]);
            free(w);
            return NULL;
        }
        if (w->seekable && write_header(w, 0)) {
            free(w);
            return NULL;
        }
    } else if (write_header(w, 1)) {
        free(w);
        return NULL;
    }
    return w;
}

static char *put_u32(char *p, uint32_t v) {
    char tmp[10];
    int n = 0;
    do tmp[n++] = (char)('0' + v % 10); while ((v /= 10));
    while (n) *p++ = tmp[--n];
    return p;
}

/* Writes ids in batches of as many as surely fit in the buffer (16 bytes
 * each at most), one loop per format: a switch per id cost as much as a
 * tenth of encoding English. */
static int put_ids(ids_writer *w, const uint32_t *ids, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (w->fmt == IDS_U32 || w->fmt == IDS_NPY) {
        /* little-endian already: written as they are, not copied first */
        for (size_t k = 0; w->fmt == IDS_NPY && k < n; k++)
            if (ids[k] > INT32_MAX) {
                w->failed = 1;
                return cli_error("%s: id %u (token %llu) does not fit in int32 (.npy)", w->name, ids[k],
                                 (unsigned long long)(w->count + k));
            }
        if (flush_buf(w)) return CLI_ERR;
        if (fwrite(ids, sizeof *ids, n, w->out) != n) return write_failed(w);
        w->count += n;
        return 0;
    }
#endif
    for (size_t i = 0; i < n;) {
        if (w->len + 16 > sizeof w->buf && flush_buf(w)) return CLI_ERR;
        size_t m = (sizeof w->buf - w->len) / 16;
        if (m > n - i) m = n - i;
        const uint32_t *id = ids + i;
        char *p = w->buf + w->len;
        switch (w->fmt) {
        case IDS_TEXT:
        case IDS_JSON:
            for (size_t k = 0; k < m; k++) {
                if (w->count + i + k > 0) {
                    if (w->fmt == IDS_JSON) *p++ = ',';
                    *p++ = ' ';
                }
                p = put_u32(p, id[k]);
            }
            break;
        case IDS_U16: case IDS_LLMC:
            for (size_t k = 0; k < m; k++, p += 2) {
                uint32_t x = id[k];
                if (x > 0xFFFF) {
                    w->failed = 1;
                    return cli_error("%s: id %u (token %llu) does not fit in 16 bits", w->name, x,
                                     (unsigned long long)(w->count + i + k));
                }
                p[0] = (char)x, p[1] = (char)(x >> 8);
            }
            break;
        case IDS_U32: case IDS_NPY: case IDS_AUTO: /* (AUTO is never written) */
            if (w->fmt == IDS_NPY)
                for (size_t k = 0; k < m; k++)
                    if (id[k] > INT32_MAX) {
                        w->failed = 1;
                        return cli_error("%s: id %u (token %llu) does not fit in int32 (.npy)", w->name,
                                         id[k], (unsigned long long)(w->count + i + k));
                    }
            for (size_t k = 0; k < m; k++, p += 4) {
                uint32_t x = id[k];  /* a local: the byte stores merge into one */
                p[0] = (char)x, p[1] = (char)(x >> 8), p[2] = (char)(x >> 16), p[3] = (char)(x >> 24);
            }
            break;
        }
        w->len = (size_t)(p - w->buf);
        i += m;
    }
    w->count += n;
    return 0;
}

int ids_writer_put(ids_writer *w, const uint32_t *ids, size_t n) {
    if (w->failed) return CLI_ERR;
    if (n == 0) return 0;
    if (w->fmt == IDS_LLMC && w->count + w->n_held + n > LLMC_MAX_TOKENS) {
        w->failed = 1;
        return cli_error("%s: too many tokens for an llm.c shard (more than %d)", w->name, LLMC_MAX_TOKENS);
    }
    if ((w->fmt == IDS_NPY || w->fmt == IDS_LLMC) && !w->seekable) {
        if (w->n_held + n > w->cap_held) {
            size_t c = (w->n_held + n) * 2;
            uint32_t *b = realloc(w->held, c * sizeof *b);
            if (!b) {
                w->failed = 1;
                return cli_error("%s: out of memory holding %zu ids for --format %s to a pipe "
                                 "(write to a file instead)", w->name, w->n_held + n, format_names[w->fmt]);
            }
            w->held = b;
            w->cap_held = c;
        }
        memcpy(w->held + w->n_held, ids, n * sizeof *ids);
        w->n_held += n;
        return 0;
    }
    return put_ids(w, ids, n);
}

/* An output opened without truncation (1<> FILE) may be longer than what
 * was written: its old tail would follow the ids. */
static int cut_tail(ids_writer *w) {
    struct stat st;
    off_t end = ftello(w->out);
    if (end < 0 || fstat(fileno(w->out), &st) || !S_ISREG(st.st_mode) || st.st_size <= end) return 0;
    if (ftruncate(fileno(w->out), end)) return cli_error("%s: cannot cut the file's old tail: %s", w->name, strerror(errno));
    return 0;
}

void ids_writer_abort(ids_writer *w) {
    if (!w) return;
    /* npy and llm.c keep their placeholder header (a pipe got nothing yet)
     * and JSON its open bracket: no reader takes the part written so far
     * for a whole output */
    if (!w->failed) flush_buf(w);
    fflush(w->out);
    free(w->held);
    free(w);
}

int ids_writer_close(ids_writer *w) {
    int rc = w->failed ? CLI_ERR : 0;
    if (!rc && (w->fmt == IDS_NPY || w->fmt == IDS_LLMC) && !w->seekable) {
        w->count = w->n_held;
        rc = write_header(w, 1);
        w->count = 0;
        if (!rc) rc = put_ids(w, w->held, w->n_held);
    }
    if (!rc && w->fmt == IDS_JSON) rc = put_bytes(w, "]\n", 2);
    if (!rc && w->fmt == IDS_TEXT && w->count) rc = put_bytes(w, "\n", 1);
    if (!rc) rc = flush_buf(w);
    if (!rc && (w->fmt == IDS_NPY || w->fmt == IDS_LLMC) && w->seekable) {
        /* Patch the count into the header written at the start. */
        off_t end = ftello(w->out);
        if (fseeko(w->out, w->start, SEEK_SET))
            rc = cli_error("%s: cannot rewrite the header: %s", w->name, strerror(errno));
        if (!rc) rc = write_header(w, 1);
        if (!rc) rc = flush_buf(w);
        if (!rc && fseeko(w->out, end, SEEK_SET))
            rc = cli_error("%s: cannot rewrite the header: %s", w->name, strerror(errno));
    }
    if (!rc && fflush(w->out)) rc = write_failed(w);
    if (!rc) rc = cut_tail(w);
    free(w->held);
    free(w);
    return rc;
}
