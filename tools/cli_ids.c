/* cli_ids.c - token-id files in the formats gpt2in reads and writes:
 * decimal text, raw u16/u32, .npy, JSON and llm.c token shards. Readers
 * stream (except .npy, read whole); errors name the file, the id's index
 * and, for text, the byte offset. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define LLMC_MAGIC 20240520
#define LLMC_VERSION 1
#define LLMC_HEADER_INTS 256

static const char *const format_names[] = {"text", "u16", "u32", "npy", "json", "llmc"};

int ids_format_from_name(const char *name) {
    for (int i = 0; i < (int)(sizeof format_names / sizeof *format_names); i++)
        if (!strcmp(name, format_names[i])) return i;
    return -1;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

int cli_ids_format(const char *name, const char *path) {
    if (name) {
        int f = ids_format_from_name(name);
        if (f < 0)
            cli_error("unknown --input-format '%s' (text, u16, u32, npy, json, llmc)", name);
        return f;
    }
    if (path && ends_with(path, ".npy"))
        return IDS_NPY;
    if (path && ends_with(path, ".json"))
        return IDS_JSON;
    return IDS_TEXT;
}

/* ---- reading ------------------------------------------------------------- */

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
    uint64_t llmc_left;    /* ids still expected in an llm.c shard */
    embed_npy npy;         /* .npy: the whole array */
    uint64_t npy_next;
};

static int refill(ids_reader *r) {
    if (r->pos < r->len) return 1;
    if (r->eof) return 0;
    r->len = fread(r->buf, 1, sizeof r->buf, r->in);
    r->pos = 0;
    if (r->len == 0) {
        r->eof = 1;
        if (ferror(r->in)) {
            cli_error("%s: read error: %s", r->name, strerror(errno));
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

static int check_id(ids_reader *r, uint64_t id) {
    if (r->vocab && id >= r->vocab)
        return cli_error("%s: id %llu at index %llu is outside the vocabulary (0..%zu)", r->name,
                         (unsigned long long)id, (unsigned long long)r->index, r->vocab - 1);
    return 0;
}

static int is_space(int c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* A decimal id; the caller has skipped whitespace (and for JSON, commas). */
static int read_number(ids_reader *r, uint64_t *out, int json) {
    uint64_t at = r->byte, v = 0;
    char shown[24];
    size_t ns = 0;
    int c, digits = 0, bad = 0;
    while ((c = peek_byte(r)) >= 0 && !is_space(c) && !(json && (c == ',' || c == ']'))) {
        next_byte(r);
        if (ns + 1 < sizeof shown) shown[ns++] = (char)c;
        if (c >= '0' && c <= '9' && !bad) {
            v = v * 10 + (uint64_t)(c - '0');
            if (v > 0xFFFFFFFFull) bad = 2;
            digits++;
        } else {
            bad = 1;
        }
    }
    if (c == -2) return CLI_ERR;
    shown[ns] = 0;
    if (bad == 1 || !digits)
        return cli_error("%s: id %llu at byte %llu: '%s' is not a token id (a non-negative integer)",
                         r->name, (unsigned long long)r->index, (unsigned long long)at, shown);
    if (bad == 2)
        return cli_error("%s: id %llu at byte %llu: '%s' is outside the vocabulary", r->name,
                         (unsigned long long)r->index, (unsigned long long)at, shown);
    *out = v;
    return 0;
}

ids_reader *ids_reader_open(FILE *in, const char *name, ids_format fmt, size_t vocab_size) {
    ids_reader *r = calloc(1, sizeof *r);
    if (!r) {
        cli_error("out of memory");
        return NULL;
    }
    r->in = in;
    r->name = name ? name : "<stdin>";
    r->fmt = fmt;
    r->vocab = vocab_size;
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
        return cli_error("%s: not an llm.c token shard (magic %d, expected %d)", r->name, h[0], LLMC_MAGIC);
    if (h[1] != LLMC_VERSION)
        return cli_error("%s: llm.c token shard version %d, only %d is known", r->name, h[1], LLMC_VERSION);
    if (h[2] < 0) return cli_error("%s: negative token count %d in the llm.c header", r->name, h[2]);
    r->llmc_left = (uint64_t)h[2];
    return 0;
}

static int start_npy(ids_reader *r) {
    unsigned char *all = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            unsigned char *b = realloc(all, cap);
            if (!b) {
                free(all);
                return cli_error("%s: out of memory", r->name);
            }
            all = b;
        }
        size_t got;
        if (read_exact(r, all + n, cap - n, &got)) {
            free(all);
            return CLI_ERR;
        }
        n += got;
        if (got == 0) break;
    }
    embed_error err;
    int rc = embed_npy_read_mem(all, n, r->name, &r->npy, &err);
    free(all);
    if (rc) return cli_error("%s", err.msg);
    switch (r->npy.dtype) {
    case EMBED_U8: case EMBED_I8: case EMBED_U16: case EMBED_I16: case EMBED_U32: case EMBED_I32:
    case EMBED_U64: case EMBED_I64:
        return 0;
    default:
        return cli_error("%s: .npy of %s holds no token ids (an integer array is needed)", r->name,
                         embed_dtype_name(r->npy.dtype));
    }
}

static int npy_id(ids_reader *r, uint64_t i, uint64_t *out) {
    const void *d = r->npy.data;
    int64_t s;
    switch (r->npy.dtype) {
    case EMBED_U8: *out = ((const uint8_t *)d)[i]; return 0;
    case EMBED_U16: *out = ((const uint16_t *)d)[i]; return 0;
    case EMBED_U32: *out = ((const uint32_t *)d)[i]; return 0;
    case EMBED_U64: *out = ((const uint64_t *)d)[i]; return 0;
    case EMBED_I8: s = ((const int8_t *)d)[i]; break;
    case EMBED_I16: s = ((const int16_t *)d)[i]; break;
    case EMBED_I32: s = ((const int32_t *)d)[i]; break;
    default: s = ((const int64_t *)d)[i]; break;
    }
    if (s < 0)
        return cli_error("%s: id %lld at index %llu is negative", r->name, (long long)s, (unsigned long long)i);
    *out = (uint64_t)s;
    return 0;
}

int ids_reader_next(ids_reader *r, uint32_t *out, size_t cap, size_t *n) {
    *n = 0;
    if (!r->started) {
        r->started = 1;
        if (r->fmt == IDS_LLMC && start_llmc(r)) return CLI_ERR;
        if (r->fmt == IDS_NPY && start_npy(r)) return CLI_ERR;
        if (r->fmt == IDS_JSON) {
            int c;
            while ((c = next_byte(r)) >= 0 && is_space(c)) {}
            if (c != '[')
                return cli_error("%s: byte %llu: expected '[' (a JSON array of ids)", r->name,
                                 (unsigned long long)(r->byte ? r->byte - 1 : 0));
        }
    }
    size_t k = 0;
    while (k < cap && !r->ended) {
        uint64_t id = 0;
        switch (r->fmt) {
        case IDS_TEXT: {
            int c;
            while ((c = peek_byte(r)) >= 0 && is_space(c)) next_byte(r);
            if (c == -2) return CLI_ERR;
            if (c < 0) {
                r->ended = 1;
                continue;
            }
            if (read_number(r, &id, 0)) return CLI_ERR;
            break;
        }
        case IDS_JSON: {
            int c;
            while ((c = peek_byte(r)) >= 0 && is_space(c)) next_byte(r);
            if (c == ']') {
                next_byte(r);
                while ((c = next_byte(r)) >= 0 && is_space(c)) {}
                if (c >= 0)
                    return cli_error("%s: byte %llu: data after the JSON array", r->name,
                                     (unsigned long long)(r->byte - 1));
                r->ended = 1;
                continue;
            }
            if (r->index > 0) {
                if (c != ',')
                    return cli_error("%s: byte %llu: expected ',' or ']'", r->name, (unsigned long long)r->byte);
                next_byte(r);
                while ((c = peek_byte(r)) >= 0 && is_space(c)) next_byte(r);
            }
            if (c < 0) return c == -2 ? CLI_ERR : cli_error("%s: unterminated JSON array", r->name);
            if (read_number(r, &id, 1)) return CLI_ERR;
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
            if (r->llmc_left == 0) {
                if (read_exact(r, b, 1, &got)) return CLI_ERR;
                if (got) return cli_error("%s: more tokens than the llm.c header's count", r->name);
                r->ended = 1;
                continue;
            }
            if (read_exact(r, b, 2, &got)) return CLI_ERR;
            if (got != 2)
                return cli_error("%s: truncated llm.c shard: %llu tokens missing", r->name,
                                 (unsigned long long)r->llmc_left);
            r->llmc_left--;
            id = (uint64_t)(b[0] | b[1] << 8);
            break;
        }
        case IDS_NPY:
            if (r->npy_next == r->npy.count) {
                r->ended = 1;
                continue;
            }
            if (npy_id(r, r->npy_next++, &id)) return CLI_ERR;
            break;
        }
        if (check_id(r, id)) return CLI_ERR;
        out[k++] = (uint32_t)id;
        r->index++;
    }
    *n = k;
    return 0;
}

void ids_reader_close(ids_reader *r) {
    if (!r) return;
    embed_npy_free(&r->npy);
    free(r);
}

int ids_read_all(FILE *in, const char *name, ids_format fmt, size_t vocab_size, uint32_t **ids,
                 size_t *n) {
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
    ids_reader_close(r);
    if (rc) {
        free(all);
        return rc;
    }
    *ids = all;
    *n = len;
    return 0;
}

/* ---- writing ------------------------------------------------------------- */

struct ids_writer {
    FILE *out;
    ids_format fmt;
    uint64_t count;
    int seekable;
    off_t start;           /* where the header went, to patch it */
    uint32_t *held;        /* npy/llmc to a pipe: ids kept until the count is known */
    size_t n_held, cap_held;
    char buf[1 << 16];
    size_t len;
};

static int flush_buf(ids_writer *w) {
    if (w->len && fwrite(w->buf, 1, w->len, w->out) != w->len)
        return cli_error("write error: %s", strerror(errno));
    w->len = 0;
    return 0;
}

static int put_bytes(ids_writer *w, const void *p, size_t n) {
    if (w->len + n > sizeof w->buf && flush_buf(w)) return CLI_ERR;
    if (n > sizeof w->buf) return fwrite(p, 1, n, w->out) == n ? 0 : cli_error("write error: %s", strerror(errno));
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return 0;
}

static size_t npy_ids_header(uint64_t count, char hdr[256]) {
    uint64_t shape[1] = {count};
    return embed_npy_header(EMBED_I32, 1, shape, hdr);
}

static int write_header(ids_writer *w) {
    if (w->fmt == IDS_NPY) {
        char hdr[256];
        size_t n = npy_ids_header(w->count, hdr);
        return put_bytes(w, hdr, n);
    }
    if (w->fmt == IDS_LLMC) {
        if (w->count > INT32_MAX) return cli_error("too many tokens for an llm.c shard (%llu)", (unsigned long long)w->count);
        int32_t h[LLMC_HEADER_INTS] = {LLMC_MAGIC, LLMC_VERSION, (int32_t)w->count};
        return put_bytes(w, h, sizeof h);
    }
    if (w->fmt == IDS_JSON) return put_bytes(w, "[", 1);
    return 0;
}

ids_writer *ids_writer_open(FILE *out, ids_format fmt) {
    ids_writer *w = calloc(1, sizeof *w);
    if (!w) {
        cli_error("out of memory");
        return NULL;
    }
    w->out = out;
    w->fmt = fmt;
    if (fmt == IDS_NPY || fmt == IDS_LLMC) {
        /* A header with count 0 now, patched at the end: its length does not
         * depend on the count (npy pads to 128 bytes; llm.c is fixed). */
        w->start = ftello(out);
        w->seekable = w->start >= 0 && lseek(fileno(out), 0, SEEK_CUR) >= 0;
        if (w->seekable && write_header(w)) {
            free(w);
            return NULL;
        }
    } else if (write_header(w)) {
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
                if (x > 0xFFFF)
                    return cli_error("id %u (token %llu) does not fit in 16 bits", x,
                                     (unsigned long long)(w->count + i + k));
                p[0] = (char)x, p[1] = (char)(x >> 8);
            }
            break;
        case IDS_U32: case IDS_NPY:
            for (size_t k = 0; k < m; k++, p += 4) {
                uint32_t x = id[k];  /* a local: the byte stores merge into one */
                if (w->fmt == IDS_NPY && x > INT32_MAX)
                    return cli_error("id %u (token %llu) does not fit in int32 (.npy)", x,
                                     (unsigned long long)(w->count + i + k));
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
    if (n == 0) return 0;
    if ((w->fmt == IDS_NPY || w->fmt == IDS_LLMC) && !w->seekable) {
        if (w->n_held + n > w->cap_held) {
            size_t c = (w->n_held + n) * 2;
            uint32_t *b = realloc(w->held, c * sizeof *b);
            if (!b) return cli_error("out of memory holding %zu ids (write to a file instead of a pipe)", w->n_held + n);
            w->held = b;
            w->cap_held = c;
        }
        memcpy(w->held + w->n_held, ids, n * sizeof *ids);
        w->n_held += n;
        return 0;
    }
    return put_ids(w, ids, n);
}

int ids_writer_close(ids_writer *w) {
    int rc = 0;
    if ((w->fmt == IDS_NPY || w->fmt == IDS_LLMC) && !w->seekable) {
        w->count = w->n_held;
        rc = write_header(w);
        w->count = 0;
        if (!rc) rc = put_ids(w, w->held, w->n_held);
    }
    if (!rc && w->fmt == IDS_JSON) rc = put_bytes(w, "]\n", 2);
    if (!rc && w->fmt == IDS_TEXT && w->count) rc = put_bytes(w, "\n", 1);
    if (!rc) rc = flush_buf(w);
    if (!rc && (w->fmt == IDS_NPY || w->fmt == IDS_LLMC) && w->seekable) {
        /* Patch the count into the header written at the start. */
        off_t end = ftello(w->out);
        if (fseeko(w->out, w->start, SEEK_SET)) rc = cli_error("cannot seek the output: %s", strerror(errno));
        if (!rc) rc = write_header(w);
        if (!rc) rc = flush_buf(w);
        if (!rc && fseeko(w->out, end, SEEK_SET)) rc = cli_error("cannot seek the output: %s", strerror(errno));
    }
    if (!rc && fflush(w->out)) rc = cli_error("write error: %s", strerror(errno));
    free(w->held);
    free(w);
    return rc;
}
