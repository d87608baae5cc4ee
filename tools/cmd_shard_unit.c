/* cmd_shard_unit.c - `gpt2in shard --unit`: reads corpora (plain text or
 * JSON Lines, raw, gzip or zstd) and writes their documents' tokens, each
 * document after <|endoftext|>, as one unit (raw uint16 + a JSON sidecar).
 *
 * Documents of a line-oriented input are cut into batches of whole lines;
 * worker threads parse and encode batches while the main thread reads the
 * next ones and writes finished batches strictly in input order, so the
 * output does not depend on the number of threads. A compressed file of
 * lines is decompressed on a thread of its own, a chunk ahead (sin_ahead). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "shard.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

double shard_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* json_load_file reads a character at a time through stdio; a sidecar
 * or manifest listing thousands of inputs is read whole, then parsed. */
json_t *shard_json_load(const char *path, json_error_t *je) {
    FILE *f = fopen(path, "rb");
    if (!f) return je ? json_load_file(path, 0, je) : NULL;   /* its error text */
    size_t cap = 1 << 16, len = 0, got;
    char *b = malloc(cap);
    while (b && (got = fread(b + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            char *t = cap <= SIZE_MAX / 2 ? realloc(b, cap * 2) : NULL;
            if (!t) {
                free(b);
                b = NULL;
                break;
            }
            b = t;
            cap *= 2;
        }
    }
    int bad = !b || ferror(f);
    fclose(f);
    json_t *j = bad ? json_load_file(path, 0, je) : json_loadb(b, len, 0, je);
    free(b);
    return j;
}

/* ---- identity objects ---------------------------------------------------- */

/* The vocabulary is identified by the sha256 of its id -> bytes table (each
 * token as a u32 LE length and its bytes, in id order). Shards are made with
 * the built-in GPT-2 vocabulary only, whose table is fixed: its hash is a
 * constant, not 50,257 tokens hashed every run (tests/test_shard_cli.sh
 * computes it from gpt2_weights/encoder.json). */
#define GPT2_TABLE_SHA256 "a5623714bcf19049eb0fd78df19b6daa1e61ac435b86a5deae767768e7fcdc3d"

json_t *shard_vocab_json(void) {
    const bpe *v = bpe_gpt2();
    return json_pack("{s:s, s:I, s:I, s:s}", "name", "gpt2", "size", (json_int_t)bpe_vocab_size(v), "eot",
                     (json_int_t)bpe_eot_id(v), "sha256", GPT2_TABLE_SHA256);
}

json_t *shard_options_json(const shard_opts *o) {
    static const char *const fmts[] = {"auto", "text", "jsonl"};
    return json_pack("{s:s, s:s, s:b, s:s}", "format", fmts[o->format], "field", o->field, "split_lines",
                     o->split_lines, "on_error", o->skip_errors ? "skip" : "fail");
}

/* ---- the inputs' JSON text ------------------------------------------------ */

static void buf_put(shard_buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 1 << 12;
        while (c < b->len + n + 1) c *= 2;
        char *q = realloc(b->p, c);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = c;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void buf_s(shard_buf *b, const char *s) { buf_put(b, s, strlen(s)); }

static void buf_int(shard_buf *b, int64_t v) {
    char t[24], *e = t + sizeof t, *q = e;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do *--q = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0) *--q = '-';
    buf_put(b, q, (size_t)(e - q));
}

/* A JSON string as jansson writes it (no flags): \ and " escaped, control
 * characters as \b \f \n \r \t or \u00XX, everything else as is. */
static void buf_str(shard_buf *b, const char *s) {
    buf_put(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        buf_put(b, run, (size_t)(s - run));
        run = s + 1;
        char e[8];
        switch (c) {
        case '"': buf_put(b, "\\\"", 2); break;
        case '\\': buf_put(b, "\\\\", 2); break;
        case '\b': buf_put(b, "\\b", 2); break;
        case '\f': buf_put(b, "\\f", 2); break;
        case '\n': buf_put(b, "\\n", 2); break;
        case '\r': buf_put(b, "\\r", 2); break;
        case '\t': buf_put(b, "\\t", 2); break;
        default:
            snprintf(e, sizeof e, "\\u%04X", c);
            buf_put(b, e, 6);
        }
    }
    buf_put(b, run, (size_t)(s - run));
    buf_put(b, "\"", 1);
}

/* before, "key", colon: the start of a member */
static void buf_key(shard_buf *b, const char *before, const char *key, const char *colon) {
    buf_s(b, before);
    buf_s(b, key);
    buf_s(b, colon);
}

void shard_inputs_text(shard_buf *b, const shard_input *in, size_t n, int manifest) {
    /* the separators of JSON_COMPACT, and of JSON_INDENT(2) at depth 2 */
    const char *open = manifest ? "\n    {\n      \"" : "{\"", *sep = manifest ? ",\n      \"" : ",\"",
               *colon = manifest ? "\": " : "\":", *close = manifest ? "\n    }" : "}";
    buf_put(b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        const shard_input *e = &in[i];
        if (i) buf_put(b, ",", 1);
        buf_key(b, open, "path", colon);
        buf_str(b, e->path);
        buf_key(b, sep, "size", colon);
        buf_int(b, (int64_t)e->size);
        if (!manifest) {
            buf_key(b, sep, "mtime_ns", colon);
            buf_int(b, e->mtime_ns);
        }
        buf_key(b, sep, "sha256", colon);
        buf_str(b, e->sha256);
        buf_key(b, sep, "documents", colon);
        buf_int(b, (int64_t)e->documents);
        buf_key(b, sep, "skipped", colon);
        buf_int(b, (int64_t)e->skipped);
        buf_key(b, sep, "tokens", colon);
        buf_int(b, (int64_t)e->tokens);
        buf_key(b, sep, "tokens_sha256", colon);
        buf_str(b, e->tokens_sha256);
        buf_s(b, close);
    }
    if (manifest && n) buf_s(b, "\n  ");
    buf_put(b, "]", 1);
}

char *shard_dumps(json_t *j, size_t flags, const shard_buf *text) {
    char *t = json_dumps(j, flags);
    if (!t || text->oom) {
        free(t);
        return NULL;
    }
    /* "inputs" is a top-level key, and inside a JSON string every " is
     * escaped: the first match is the key */
    const char *key = flags & JSON_COMPACT ? "\"inputs\":[]" : "\"inputs\": []";
    char *at = strstr(t, key);
    if (!at) {
        free(t);
        return NULL;
    }
    size_t head = (size_t)(at - t) + strlen(key) - 2, tail = strlen(at + strlen(key));
    char *r = malloc(head + text->len + tail + 1);
    if (r) {
        memcpy(r, t, head);
        memcpy(r + head, text->p, text->len);
        memcpy(r + head + text->len, at + strlen(key), tail + 1);
    }
    free(t);
    return r;
}

/* ---- progress (one line on stderr, across the units of a run) ------------- */

static struct {
    uint64_t total;        /* bytes of all inputs on disk, 0 = unknown */
    uint64_t done;         /* bytes of the inputs finished */
    uint64_t docs, tokens;
    double t0, last;
    int shown;
} prog;

void shard_progress_total(uint64_t total) {
    prog.total = total;
    prog.t0 = shard_now();
}

static void progress(const shard_opts *o, uint64_t cur, int force) {
    if (!o->progress) return;
    double t = shard_now();
    if (!force && t - prog.last < 0.5) return;
    prog.last = t;
    if (!prog.t0) prog.t0 = t;
    double el = t - prog.t0, bytes = (double)(prog.done + cur);
    double mbs = el > 0 ? bytes / el / 1e6 : 0;
    char eta[32] = "";
    if (prog.total && mbs > 0 && bytes <= prog.total) {
        long s = (long)((prog.total - bytes) / (mbs * 1e6));
        snprintf(eta, sizeof eta, ", ETA %ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    }
    fprintf(stderr, "\r\033[Kgpt2in: shard: %llu documents, %llu tokens, %.0f MB, %.1f MB/s%s",
            (unsigned long long)prog.docs, (unsigned long long)prog.tokens, bytes / 1e6, mbs, eta);
    prog.shown = 1;
}

void shard_progress_end(void) {
    if (prog.shown) fputs("\r\033[K", stderr);
    prog.shown = 0;
}

/* A message goes over the progress line, which the next update redraws. */
static void progress_clear(void) {
    if (prog.shown) fputs("\r\033[K", stderr);
}

/* ---- reading: raw, gzip or zstd, detected by magic bytes ------------------ */

enum { IN_RAW, IN_GZ, IN_ZST };
#define IBUF (1 << 20)

typedef struct {
    int fd;
    uint64_t expect;       /* its size when regular (bytes past it are not read), else UINT64_MAX */
    const char *name;      /* as messages show it */
    int kind;
    shard_sha sha;         /* of the bytes on disk */
    uint64_t raw;          /* bytes read from disk */
    unsigned char *ib;
    size_t ilen, ipos;
    int eof;
    z_stream z;
    int z_ready, z_end;
    ZSTD_DStream *zs;
    size_t zs_left;        /* ZSTD_decompressStream's last hint: 0 = frame complete */
    int keep_err;          /* read by a thread of its own: errors into err, not printed */
    char err[1024];
} sin;

/* An error of input s: printed, or kept in s->err for the main thread to
 * print in its turn (sin_ahead), so that messages keep their order. */
static int sin_fail(sin *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sin_fail(sin *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    return s->keep_err ? CLI_ERR : cli_error("%s", s->err);
}

/* Up to cap bytes into buf, fewer only at the end of the file: a regular
 * file ends at the size fstat gave (so a small file is one read, with no
 * second one to see the end), or earlier if it shrank. */
static int sin_get(sin *s, void *buf, size_t cap, size_t *got) {
    *got = 0;
    while (*got < cap && !s->eof) {
        uint64_t left = s->expect - s->raw - *got;
        size_t want = cap - *got < left ? cap - *got : (size_t)left;
        ssize_t n = want ? read(s->fd, (char *)buf + *got, want) : 0;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            return sin_fail(s, "%s: read error at byte %llu: %s", s->name, (unsigned long long)(s->raw + *got),
                             strerror(errno));
        *got += (size_t)n;
        if (n == 0 || (size_t)n == left) s->eof = 1;
    }
    shard_sha_update(&s->sha, buf, *got);
    s->raw += *got;
    return 0;
}

static int sin_fill_n(sin *s, size_t cap) {
    if (s->ipos < s->ilen || s->eof) return 0;
    s->ipos = 0;
    return sin_get(s, s->ib, cap, &s->ilen);
}

static int sin_fill(sin *s) { return sin_fill_n(s, IBUF); }

/* ib: the caller's buffer of IBUF bytes (one for every input of a unit);
 * size: the file's when it is a regular file, else UINT64_MAX. */
static int sin_open(sin *s, int fd, uint64_t size, const char *name, unsigned char *ib) {
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->expect = size;
    s->name = name;
    s->ib = ib;
    if (shard_sha_init(&s->sha)) return cli_error("out of memory");
    /* A file that a read of IBUF would not take whole is read (and hashed)
     * 64 KB first, its magic bytes: a big plain file is mapped, and its
     * first block goes to the workers sooner. */
    if (sin_fill_n(s, size != UINT64_MAX && size > IBUF ? IBUF / 16 : IBUF)) return CLI_ERR;
    const unsigned char *m = s->ib;
    if (s->ilen >= 2 && m[0] == 0x1f && m[1] == 0x8b) {
        s->kind = IN_GZ;
        if (inflateInit2(&s->z, 15 + 16) != Z_OK) return cli_error("out of memory");
        s->z_ready = 1;
    } else if (s->ilen >= 4 && ((m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) ||
                                /* a skippable frame first (pzstd writes one): zstd too */
                                ((m[0] & 0xf0) == 0x50 && m[1] == 0x2a && m[2] == 0x4d && m[3] == 0x18))) {
        s->kind = IN_ZST;
        if (!(s->zs = ZSTD_createDStream())) return cli_error("out of memory");
        ZSTD_initDStream(s->zs);
    }
    return 0;
}

static void sin_close(sin *s) {
    if (s->z_ready) inflateEnd(&s->z);
    ZSTD_freeDStream(s->zs);
    shard_sha_free(&s->sha);
}

/* Up to cap decompressed bytes into buf; *got = 0 at the end. */
static int sin_read(sin *s, char *buf, size_t cap, size_t *got) {
    *got = 0;
    for (;;) {
        if (s->kind == IN_RAW && s->ipos == s->ilen && !s->eof && cap >= IBUF / 4) {
            /* a big read: straight into buf, not through ib */
            return sin_get(s, buf, cap, got);
        }
        if (sin_fill(s)) return CLI_ERR;
        size_t avail = s->ilen - s->ipos;
        if (s->kind == IN_RAW) {
            size_t n = avail < cap ? avail : cap;
            memcpy(buf, s->ib + s->ipos, n);
            s->ipos += n;
            *got = n;
            return 0;
        }
        if (s->kind == IN_GZ) {
            if (avail == 0) {   /* end of file */
                if (!s->z_end) return sin_fail(s, "%s: truncated gzip data", s->name);
                return 0;
            }
            if (s->z_end) {   /* zero padding (as gzip and Python's gzip skip it), or another member */
                while (s->ipos < s->ilen && !s->ib[s->ipos]) s->ipos++;
                if (s->ipos == s->ilen) continue;
                inflateReset(&s->z);
                s->z_end = 0;
                avail = s->ilen - s->ipos;
            }
            s->z.next_in = s->ib + s->ipos;
            s->z.avail_in = (uInt)avail;
            s->z.next_out = (unsigned char *)buf;
            s->z.avail_out = (uInt)(cap > (1u << 30) ? (1u << 30) : cap);
            uInt before = s->z.avail_out;
            int r = inflate(&s->z, Z_NO_FLUSH);
            s->ipos = s->ilen - s->z.avail_in;
            if (r == Z_STREAM_END) s->z_end = 1;
            else if (r != Z_OK && r != Z_BUF_ERROR)
                return sin_fail(s, "%s: corrupt gzip data (%s)", s->name, s->z.msg ? s->z.msg : "inflate failed");
            *got = before - s->z.avail_out;
        } else {
            if (avail == 0) {
                if (s->zs_left) return sin_fail(s, "%s: truncated zstd data", s->name);
                return 0;
            }
            ZSTD_inBuffer in = {s->ib, s->ilen, s->ipos};
            ZSTD_outBuffer out = {buf, cap, 0};
            size_t r = ZSTD_decompressStream(s->zs, &out, &in);
            if (ZSTD_isError(r) && ZSTD_getErrorCode(r) == ZSTD_error_frameParameter_windowTooLarge)
                return sin_fail(s, "%s: zstd window too large (over 128 MB: compressed with --long or "
                                 "--ultra); recompress it without", s->name);
            if (ZSTD_isError(r)) return sin_fail(s, "%s: corrupt zstd data (%s)", s->name, ZSTD_getErrorName(r));
            s->ipos = in.pos;
            s->zs_left = r;
            *got = out.pos;
        }
        if (*got) return 0;
    }
}

/* A compressed file decompressed on a thread of its own, a chunk ahead of
 * the main thread (a producer-consumer pair of buffers): inflating costs
 * most of what the tokenizing does, and the main thread has the JSON to
 * parse. Regular files only: a read from a pipe may wait for ever, and
 * the thread must end when the main thread stops early. */
#define AHEAD_CHUNK ((size_t)1 << 20)

typedef struct {
    sin *s;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct {
        char *p;
        size_t len;
        int rc;            /* the error that ends the input here (s->err) */
        uint64_t raw;      /* s->raw once it was read (progress) */
    } c[2];
    unsigned filled, taken;
    size_t pos;            /* consumed of chunk taken % 2 */
    int stop;
} sin_ahead;

static void *ahead_run(void *arg) {
    sin_ahead *a = arg;
    int pend = 0, fin = 0;   /* met after the data of the last chunk: an error, the end */
    for (;;) {
        pthread_mutex_lock(&a->mu);
        while (!a->stop && a->filled - a->taken == 2) pthread_cond_wait(&a->cv, &a->mu);
        int stop = a->stop;
        pthread_mutex_unlock(&a->mu);
        if (stop) break;
        unsigned k = a->filled % 2;
        size_t len = 0, got = 1;
        int rc = pend;
        while (!rc && !fin && len < AHEAD_CHUNK) {   /* full chunks, as long as there is data */
            rc = sin_read(a->s, a->c[k].p + len, AHEAD_CHUNK - len, &got);
            len += rc ? 0 : got;
            fin = !rc && !got;
        }
        if (len && rc) {   /* the data first; the error is the next chunk */
            pend = rc;
            rc = 0;
        }
        pthread_mutex_lock(&a->mu);
        a->c[k].len = len;
        a->c[k].rc = rc;
        a->c[k].raw = a->s->raw;
        a->filled++;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
        if (!len) break;   /* the end, or an error: the last chunk */
    }
    return NULL;
}

static int ahead_start(sin_ahead *a, sin *s) {
    memset(a, 0, sizeof *a);
    a->s = s;
    if (!(a->c[0].p = malloc(AHEAD_CHUNK)) || !(a->c[1].p = malloc(AHEAD_CHUNK))) {
        free(a->c[0].p);
        return -1;
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    if (pthread_create(&a->th, NULL, ahead_run, a)) {
        pthread_cond_destroy(&a->cv);
        pthread_mutex_destroy(&a->mu);
        free(a->c[0].p);
        free(a->c[1].p);
        return -1;
    }
    return 0;
}

/* sin_read's contract, from the thread's chunks (an error is in s->err,
 * not printed); *raw: the input's bytes read so far. */
static int ahead_read(sin_ahead *a, char *buf, size_t cap, size_t *got, uint64_t *raw) {
    pthread_mutex_lock(&a->mu);
    while (a->filled == a->taken) pthread_cond_wait(&a->cv, &a->mu);
    pthread_mutex_unlock(&a->mu);
    unsigned k = a->taken % 2;
    *raw = a->c[k].raw;
    if (a->c[k].rc) return CLI_ERR;
    size_t n = a->c[k].len - a->pos < cap ? a->c[k].len - a->pos : cap;
    memcpy(buf, a->c[k].p + a->pos, n);
    *got = n;
    a->pos += n;
    if (a->pos == a->c[k].len && n) {   /* (the end stays: read again, it is the end again) */
        a->pos = 0;
        pthread_mutex_lock(&a->mu);
        a->taken++;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
    }
    return 0;
}

static void ahead_stop(sin_ahead *a) {
    pthread_mutex_lock(&a->mu);
    a->stop = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->th, NULL);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a->c[0].p);
    free(a->c[1].p);
}

/* ---- files of the one-machine run ----------------------------------------- */

int shard_rfile_open(shard_rfile *f, const char *path) {
    const char *sl = strrchr(path, '/');
    size_t dl = sl ? (size_t)(sl - path) + 1 : 0;
    f->fd = -1;
    f->synced = 0;
    if (!(f->tmp = malloc(strlen(path) + 16))) return cli_error("out of memory");
    sprintf(f->tmp, "%.*s.%s.tmp.XXXXXX", (int)dl, path, path + dl);
    if ((f->fd = mkstemp(f->tmp)) < 0 || fchmod(f->fd, 0644)) {
        int e = errno;
        if (f->fd >= 0) close(f->fd), unlink(f->tmp);
        free(f->tmp);
        f->tmp = NULL;
        f->fd = -1;
        return cli_error("%s: cannot create a temporary file next to it: %s", cli_n(path), strerror(e));
    }
    return 0;
}

int shard_rfile_write(shard_rfile *f, const char *path, const void *p, size_t n) {
    while (n) {
        ssize_t k = write(f->fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return cli_error("%s: write error: %s", cli_n(path), k < 0 ? strerror(errno) : "no progress");
        p = (const char *)p + k;
        n -= (size_t)k;
    }
    return 0;
}

void shard_rfile_abort(shard_rfile *f) {
    if (f->fd >= 0) close(f->fd);
    if (f->tmp) unlink(f->tmp);
    free(f->tmp);
    f->fd = -1;
    f->tmp = NULL;
}

int shard_rfile_sync(shard_rfile *f, const char *path) {
    if (fsync(f->fd)) {
        int e = errno;
        shard_rfile_abort(f);
        return cli_error("%s: write error: %s", cli_n(path), strerror(e));
    }
    f->synced = 1;
    return 0;
}

int shard_rfile_commit(shard_rfile *f, const char *path, int durable) {
    if ((durable && !f->synced && fsync(f->fd)) || close(f->fd)) {
        f->fd = -1;
        int e = errno;
        shard_rfile_abort(f);
        return cli_error("%s: write error: %s", cli_n(path), strerror(e));
    }
    f->fd = -1;
    if (rename(f->tmp, path)) {
        int e = errno;
        shard_rfile_abort(f);
        return cli_error("%s: cannot rename the temporary file over it: %s", cli_n(path), strerror(e));
    }
    free(f->tmp);
    f->tmp = NULL;
    if (durable == 1) {
        const char *sl = strrchr(path, '/');
        char *dir = sl ? strndup(path, (size_t)(sl - path) + (sl == path)) : strdup(".");
        int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        if (dfd >= 0) fsync(dfd), close(dfd);
        free(dir);
    }
    return 0;
}

static void fd_writeback(int fd, uint64_t *synced, uint64_t written) {
    if (written - *synced < SHARD_WRITEBACK) return;
    sync_file_range(fd, (off_t)*synced, (off_t)(written - *synced), SYNC_FILE_RANGE_WRITE);
    *synced = written;
}

/* ---- shards written as the tokens come (the one-machine run) ---------------- */

/* The run's tokens are cut into shards as they reach the unit, so that
 * --assemble has only to rename them (and write the manifest), not to read
 * and copy the units again once they are all done. A shard's header holds
 * its planned size; the last one, if shorter, gets its header again at the
 * end. So a shard is hashed once complete, read back from the page cache on
 * a thread of its own (one at a time), not as its tokens come: the last
 * one's hash would be wasted work, and a run of one shard has only that.
 * And fsynced once complete, on another thread beside the hashing, so that
 * the run's end waits for the last shard's fsync only, and that one runs
 * while the manifest is made. */
struct shard_tee {
    char *dir, *name;
    uint64_t S, V, pos;        /* pos: tokens received */
    shard_rfile f;             /* the open shard (f.fd < 0: none) */
    uint64_t a, b;             /* its planned tokens [a, b) of the stream */
    uint64_t written, synced;
    struct {
        char *tmp;
        char sha[65];
        uint64_t tokens;
        int err;
        int synced, serr;      /* fsynced (serr: its errno, 0 if it worked) */
    } *sh;                     /* finished shards */
    size_t nsh, cap;
    pthread_t th;              /* hashing shard hk (hj: the thread's own, for sh may move) */
    size_t hk;
    int hashing;
    struct { int fd; uint64_t end; char sha[65]; int err; } hj;
    struct { pthread_t th; int fd, err, running; size_t k; } sj;   /* fsyncing shard k */
};

shard_tee *shard_tee_new(const char *dir, const char *name, uint64_t S, uint64_t V) {
    shard_tee *t = calloc(1, sizeof *t);
    if (!t || !(t->dir = strdup(dir)) || !(t->name = strdup(name))) {
        if (t) free(t->dir);
        free(t);
        return NULL;
    }
    t->S = S;
    t->V = V;
    t->f.fd = -1;
    return t;
}

static char *tee_path(const shard_tee *t, uint64_t s) {
    char *p = malloc(strlen(t->dir) + strlen(t->name) + 40);
    if (p) sprintf(p, "%s/%s_%s_%06llu.bin", t->dir, t->name, s ? "train" : "val", (unsigned long long)s);
    return p;
}

static void tee_header(unsigned char h[1024], uint64_t n) {
    memset(h, 0, 1024);
    const uint32_t hv[3] = {20240520, 1, (uint32_t)n};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 4; k++) h[4 * i + k] = (unsigned char)(hv[i] >> (8 * k));
}

static int tee_open(shard_tee *t) {
    uint64_t s = t->nsh;
    if (s == t->cap) {
        size_t c = t->cap ? 2 * t->cap : 16;
        void *q = realloc(t->sh, c * sizeof *t->sh);
        if (!q) return cli_error("out of memory");
        t->sh = q;
        t->cap = c;
    }
    t->a = s ? t->V + (s - 1) * t->S : 0;
    t->b = s ? t->a + t->S : t->V;
    char *p = tee_path(t, s);
    int rc = p ? shard_rfile_open(&t->f, p) : cli_error("out of memory");
    unsigned char h[1024];
    tee_header(h, t->b - t->a);
    if (!rc && (rc = shard_rfile_write(&t->f, p, h, sizeof h))) shard_rfile_abort(&t->f);
    t->written = t->synced = sizeof h;
    free(p);
    return rc;
}

/* The sha256 of the file hj.fd's bytes [0, hj.end), which it closes. */
static void *tee_hash(void *arg) {
    shard_tee *t = arg;
    shard_sha sha;
    shard_sha_init(&sha);
    static char buf[1 << 20];   /* (one shard is hashed at a time) */
    t->hj.err = 0;
    for (uint64_t off = 0; off < t->hj.end;) {
        size_t want = t->hj.end - off < sizeof buf ? (size_t)(t->hj.end - off) : sizeof buf;
        ssize_t n = pread(t->hj.fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            t->hj.err = n < 0 ? errno : EIO;
            break;
        }
        shard_sha_update(&sha, buf, (size_t)n);
        off += (uint64_t)n;
    }
    close(t->hj.fd);
    shard_sha_hex(&sha, t->hj.sha);
    return NULL;
}

/* The shard being hashed, if any, done: its sha256 and error to sh[]. */
static void tee_hash_wait(shard_tee *t) {
    if (!t->hashing) return;
    if (t->hashing == 1) pthread_join(t->th, NULL);
    memcpy(t->sh[t->hk].sha, t->hj.sha, sizeof t->hj.sha);
    t->sh[t->hk].err = t->hj.err;
    t->hashing = 0;
}

static void *tee_sync(void *arg) {
    shard_tee *t = arg;
    t->sj.err = fsync(t->sj.fd) ? errno : 0;
    close(t->sj.fd);
    return NULL;
}

/* The shard being fsynced, if any, done: sh[] says how it went. */
static void tee_sync_wait(shard_tee *t) {
    if (!t->sj.running) return;
    pthread_join(t->sj.th, NULL);
    t->sh[t->sj.k].synced = 1;
    t->sh[t->sj.k].serr = t->sj.err;
    t->sj.running = 0;
}

/* The open shard is complete (its header right): closed once hashed. */
static void tee_close(shard_tee *t) {
    tee_hash_wait(t);
    tee_sync_wait(t);
    size_t k = t->nsh++;
    t->sh[k].tokens = t->pos - t->a;
    t->sh[k].tmp = t->f.tmp;   /* renamed by shard_tee_commit */
    t->sh[k].err = 0;
    t->sh[k].synced = t->sh[k].serr = 0;
    t->hk = k;
    t->hj.fd = t->f.fd;
    t->hj.end = 1024 + 2 * t->sh[k].tokens;
    /* fsynced now, while it is hashed and the tokens after it come, not at
     * its commit (the hashing closes hj.fd: the fsync has its own) */
    t->sj.k = k;
    t->sj.fd = dup(t->hj.fd);
    t->sj.running = t->sj.fd >= 0 && !pthread_create(&t->sj.th, NULL, tee_sync, t);
    if (!t->sj.running) {   /* fsynced at its commit; its writeback starts now */
        if (t->sj.fd >= 0) close(t->sj.fd);
        sync_file_range(t->hj.fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    }
    t->f.fd = -1;
    t->f.tmp = NULL;
    t->hashing = pthread_create(&t->th, NULL, tee_hash, t) ? 2 : 1;   /* 2: done here */
    if (t->hashing == 2) tee_hash(t);
}

static int tee_write(shard_tee *t, const void *p, size_t bytes) {
    const char *c = p;
    while (bytes) {
        if (t->f.fd < 0 && tee_open(t)) return CLI_ERR;
        size_t k = (t->b - t->pos) * 2 < bytes ? (size_t)(t->b - t->pos) * 2 : bytes;
        if (shard_rfile_write(&t->f, t->f.tmp, c, k)) return CLI_ERR;
        fd_writeback(t->f.fd, &t->synced, t->written += k);
        t->pos += k / 2;
        c += k;
        bytes -= k;
        if (t->pos == t->b) tee_close(t);
    }
    return 0;
}

int shard_tee_finish(shard_tee *t, uint64_t *tokens, uint64_t *nshards) {
    if (t->f.fd >= 0) {   /* the last shard, shorter than planned: its header again */
        unsigned char h[1024];
        tee_header(h, t->pos - t->a);
        if (pwrite(t->f.fd, h, sizeof h, 0) != (ssize_t)sizeof h)
            return cli_error("%s: write error: %s", t->f.tmp, strerror(errno));
        tee_close(t);
    }
    *tokens = t->pos;
    *nshards = t->nsh;
    return 0;
}

int shard_tee_sha(shard_tee *t, uint64_t s, char sha[65], uint64_t *tokens) {
    if (s >= t->nsh || !t->sh[s].tmp) return cli_error("internal error: shard %llu was not written", (unsigned long long)s);
    if (t->hashing && t->hk == s) tee_hash_wait(t);
    if (t->sh[s].err) return cli_error("%s: read error: %s", t->sh[s].tmp, strerror(t->sh[s].err));
    memcpy(sha, t->sh[s].sha, 65);
    *tokens = t->sh[s].tokens;
    return 0;
}

int shard_tee_commit(shard_tee *t, uint64_t s, char sha[65], uint64_t *tokens) {
    if (s >= t->nsh || !t->sh[s].tmp) return cli_error("internal error: shard %llu was not written", (unsigned long long)s);
    char *p = tee_path(t, s);
    if (!p) return cli_error("out of memory");
    if (t->sj.running && t->sj.k == s) tee_sync_wait(t);
    /* (fsynced already, or here) */
    shard_rfile f = {t->sh[s].synced ? -1 : open(t->sh[s].tmp, O_WRONLY | O_CLOEXEC), t->sh[s].tmp, 0};
    t->sh[s].tmp = NULL;
    int rc;
    if (t->sh[s].synced) {   /* the directory: as below */
        if (t->sh[s].serr) rc = cli_error("%s: write error: %s", cli_n(p), strerror(t->sh[s].serr));
        else if (rename(f.tmp, p))
            rc = cli_error("%s: cannot rename the temporary file over it: %s", cli_n(p), strerror(errno));
        else rc = 0;
        if (rc) unlink(f.tmp);
        free(f.tmp);
    } else if (f.fd < 0) {
        rc = cli_error("%s: cannot open: %s", f.tmp, strerror(errno));
        shard_rfile_abort(&f);
    } else {
        /* (while it is hashed, if it is the last). The directory is fsynced
         * by the manifest's commit, which follows every shard's: one fsync
         * makes both renames durable. A crash between them loses at most
         * the rename; the rerun writes that shard again. */
        rc = shard_rfile_commit(&f, p, 2);
    }
    if (t->hashing && t->hk == s) tee_hash_wait(t);
    if (t->sh[s].err && !rc) rc = cli_error("%s: read error: %s", cli_n(p), strerror(t->sh[s].err));
    free(p);
    memcpy(sha, t->sh[s].sha, 65);
    *tokens = t->sh[s].tokens;
    return rc;
}

uint64_t shard_tee_pos(const shard_tee *t) { return t->pos; }

int shard_tee_copy(shard_tee *t, uint64_t from, uint64_t to, int fd, const char *path, shard_sha *sha) {
    const size_t cap = (size_t)1 << 20;
    char *buf = malloc(cap);
    int rc = buf ? 0 : cli_error("out of memory");
    while (!rc && from < to) {
        uint64_t s = from < t->V ? 0 : 1 + (from - t->V) / t->S;
        uint64_t a = s ? t->V + (s - 1) * t->S : 0, b = s ? a + t->S : t->V, end = to < b ? to : b;
        const char *tmp = s < t->nsh ? t->sh[s].tmp : s == t->nsh && t->f.fd >= 0 ? t->f.tmp : NULL;
        int in = tmp ? open(tmp, O_RDONLY | O_CLOEXEC) : -1;
        if (in < 0) {
            rc = cli_error("%s: cannot read back shard %llu: %s", cli_n(path), (unsigned long long)s,
                           tmp ? strerror(errno) : "not written");
            break;
        }
        for (uint64_t off = 1024 + 2 * (from - a), stop = 1024 + 2 * (end - a); !rc && off < stop;) {
            size_t want = stop - off < cap ? (size_t)(stop - off) : cap;
            ssize_t n = pread(in, buf, want, (off_t)off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                rc = cli_error("%s: read error: %s", tmp, n < 0 ? strerror(errno) : "short file");
                break;
            }
            if (sha) shard_sha_update(sha, buf, (size_t)n);
            for (ssize_t k = 0; !rc && k < n;) {
                ssize_t w = write(fd, buf + k, (size_t)(n - k));
                if (w < 0 && errno == EINTR) continue;
                if (w <= 0) rc = cli_error("%s: write error: %s", cli_n(path), w < 0 ? strerror(errno) : "no progress");
                else k += w;
            }
            off += (uint64_t)n;
        }
        close(in);
        from = end;
    }
    free(buf);
    return rc;
}

void shard_tee_free(shard_tee *t) {
    if (!t) return;
    shard_rfile_abort(&t->f);
    tee_hash_wait(t);
    tee_sync_wait(t);
    for (size_t i = 0; i < t->nsh; i++)
        if (t->sh[i].tmp) unlink(t->sh[i].tmp), free(t->sh[i].tmp);
    free(t->sh);
    free(t->dir);
    free(t->name);
    free(t);
}

/* ---- one input's tokens, written to the unit -------------------------------- */

typedef struct {
    embed_writer *w;                     /* --unit: embed's writer, fsynced */
    shard_rfile rf;                      /* a unit of the one-machine run (w NULL) */
    shard_tee *tee;                      /* the run's shards, or NULL */
    int defer;                           /* no unit file yet: the tokens go to tee only */
    int last;                            /* (defer) the input is the run's last */
    uint64_t tee0;                       /* (defer) the unit's first token in tee */
    const char *unit;
    shard_sha unit_sha, in_sha;
    int one;                             /* one input: its tokens are the unit's */
    uint64_t docs, skipped, tokens;      /* this input */
    unsigned char *ib;                   /* the inputs' read buffer */
    char *text;                          /* a compressed whole file */
    size_t textcap;
    uint64_t written, synced;            /* bytes of the unit; written back */
    shard_input *ins;                    /* the sidecar's inputs so far */
    size_t nins, inscap;
    uint64_t all_docs, all_skipped, all_tokens;
    char unit_hex[65];                   /* one input: its tokens' sha256 */
    bpe_encoder *enc[64];                /* worker i's encoder, kept from input to input */
    struct shard_scratch *ws;            /* worker i's scratch buffers (ws[i]), likewise */
    size_t ntmp;                         /* tokens in tmp, not yet written */
    uint16_t tmp[1 << 17];
} unit_out;

void shard_writeback(embed_writer *w, uint64_t *synced, uint64_t written) {
    if (written - *synced < SHARD_WRITEBACK) return;
    FILE *f = embed_writer_stream(w);
    if (f && !fflush(f)) sync_file_range(fileno(f), (off_t)*synced, (off_t)(written - *synced), SYNC_FILE_RANGE_WRITE);
    *synced = written;
}

/* Tokens to the unit (and to the run's shards). A unit of the run is not
 * written back early: it is not fsynced, and is often removed before the
 * kernel would have written it. */
static int out_write(unit_out *u, const void *p, size_t bytes) {
    if (u->w) {
        embed_error err;
        if (embed_writer_write(u->w, p, bytes, &err)) return cli_error("%s", err.msg);
        u->written += bytes;
        shard_writeback(u->w, &u->synced, u->written);
    } else if (!u->defer && shard_rfile_write(&u->rf, u->unit, p, bytes)) {
        return CLI_ERR;
    }
    return u->tee ? tee_write(u->tee, p, bytes) : 0;
}

/* The tokens go through u->tmp, written when full (and at the end of the
 * unit): documents of a few KB each still make writes of 256 KB. */
static int flush_tokens(unit_out *u) {
    if (u->ntmp && out_write(u, u->tmp, u->ntmp * 2)) return CLI_ERR;
    u->ntmp = 0;
    return 0;
}

static void count_tokens(unit_out *u, const uint16_t *t, size_t n) {
    if (!u->one && !u->defer) shard_sha_update(&u->unit_sha, t, n * 2);
    shard_sha_update(&u->in_sha, t, n * 2);
    u->tokens += n;
    prog.tokens += n;
}

#define TMP_CAP (sizeof ((unit_out *)0)->tmp / sizeof ((unit_out *)0)->tmp[0])

static int grow(void **p, size_t *cap, size_t need, size_t elem);

/* An input's entry in the sidecar (e: path, size, mtime_ns, sha256 so
 * far) completed with its figures and tokens' sha256 (u->in_sha, ended). */
static int input_done(unit_out *u, const shard_input *e) {
    if (grow((void **)&u->ins, &u->inscap, u->nins + 1, sizeof *u->ins)) {
        shard_sha_free(&u->in_sha);
        return cli_error("out of memory");
    }
    shard_input *r = &u->ins[u->nins++];
    *r = *e;
    shard_sha_hex(&u->in_sha, r->tokens_sha256);
    if (u->one) memcpy(u->unit_hex, r->tokens_sha256, sizeof u->unit_hex);
    r->documents = u->docs;
    r->skipped = u->skipped;
    r->tokens = u->tokens;
    u->all_docs += u->docs;
    u->all_skipped += u->skipped;
    u->all_tokens += u->tokens;
    return 0;
}

/* Tokens already counted, to the unit. */
static int write_tokens(unit_out *u, const uint16_t *t, size_t n) {
    /* a batch's tokens are written as they are, after those buffered */
    if ((u->ntmp + n > TMP_CAP || n >= TMP_CAP / 2) && flush_tokens(u)) return CLI_ERR;
    if (n >= TMP_CAP / 2) return out_write(u, t, n * 2);
    memcpy(u->tmp + u->ntmp, t, n * 2);
    u->ntmp += n;
    return 0;
}

static int put_tokens(unit_out *u, const uint16_t *t, size_t n) {
    count_tokens(u, t, n);
    return write_tokens(u, t, n);
}

/* After the tokens of the run's last input: its last shard is complete,
 * and its hashing and fsync start now, not once the unit is torn down. */
static int tokens_end(unit_out *u) {
    uint64_t tokens, shards;
    if (!u->last) return 0;
    return flush_tokens(u) || shard_tee_finish(u->tee, &tokens, &shards) ? CLI_ERR : 0;
}

/* Line number (1-based) of byte off in text. */
static uint64_t line_of(const char *text, size_t off) {
    uint64_t line = 1;
    for (const char *p = text, *end = text + off; (p = memchr(p, '\n', (size_t)(end - p))); p++) line++;
    return line;
}

/* Offset of the first byte of s[0..n) that does not start a valid UTF-8
 * sequence (Unicode's Table 3-7: no overlong forms, surrogates or code
 * points above U+10FFFF), or n. */
static size_t utf8_bad(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {   /* a run of ASCII: to its end 16 (8) bytes at a time */
            i++;
#ifdef __SSE2__
            for (int m; i + 16 <= n; i += 16)
                if ((m = _mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(s + i))))) {
                    i += (size_t)__builtin_ctz((unsigned)m);
                    break;
                }
#else
            for (uint64_t w; i + 8 <= n && (memcpy(&w, s + i, 8), !(w & 0x8080808080808080ull));) i += 8;
#endif
            continue;
        }
        size_t k = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (!k || i + k > n) return i;
        unsigned lo = 0x80, hi = 0xbf, c1 = s[i + 1];
        if (c == 0xe0) lo = 0xa0;
        else if (c == 0xed) hi = 0x9f;
        else if (c == 0xf0) lo = 0x90;
        else if (c == 0xf4) hi = 0x8f;
        if (c1 < lo || c1 > hi) return i;
        for (size_t m = 2; m < k; m++)
            if ((s[i + m] & 0xc0) != 0x80) return i;
        i += k;
    }
    return n;
}

/* Big buffers that live for the whole unit (reused by every document and
 * every input), 2 MB-aligned and asking for transparent huge pages: a fresh
 * 4 KB page costs a fault on first touch, a huge page one for 2 MB. */
static int big_grow(void **p, size_t *cap, size_t need, size_t keep) {
    if (need <= *cap) return 0;
    const size_t huge = (size_t)2 << 20;
    size_t c = *cap ? *cap : 1 << 16;
    while (c < need) {
        if (c > SIZE_MAX / 2) return -1;
        c *= 2;
    }
    if (c >= huge / 8 && c < huge) c = huge;   /* no steps of fresh pages between */
    void *q = NULL;
    if (c >= huge) {
        c = (c + huge - 1) & ~(huge - 1);
        if (posix_memalign(&q, huge, c)) q = NULL;
#ifdef MADV_HUGEPAGE
        if (q) madvise(q, c, MADV_HUGEPAGE);   /* a hint: the kernel may ignore it */
#endif
    } else {
        q = malloc(c);
    }
    if (!q) return -1;
    if (keep) memcpy(q, *p, keep);
    free(*p);
    *p = q;
    *cap = c;
    return 0;
}

/* A whole file, one document. A raw file is mapped, never copied; a
 * compressed one is decompressed into the unit's text buffer. The text is
 * encoded a block at a time by the workers (whole_file), so a document of
 * any size touches a few MB of fresh memory a thread at most. */
#define WHOLE_BLOCK ((size_t)1 << 20)

typedef struct {
    shard_sha *sha;
    const char *p;
    size_t n;
} hash_job;

static void *hash_run(void *arg) {
    hash_job *h = arg;
    shard_sha_update(h->sha, h->p, h->n);
    return NULL;
}

/* ---- line-oriented inputs: batches of lines on worker threads --------------- */

typedef struct {
    char *data;
    size_t len, cap;
    uint64_t line0, off0;        /* line number and stream offset of data[0] */
    uint16_t *out;
    size_t nout, outcap;
    uint32_t *ids;
    size_t idcap;
    shard_json *sj;              /* JSON Lines' fast path */
    char *fixed;                 /* a line with its unpaired surrogates replaced */
    size_t fixedcap;
    unsigned char *text;         /* the batch's documents, joined by 0xFF */
    size_t tlen, tcap;
    uint64_t docs, skipped;
    char *msg;                   /* messages, one a line */
    size_t msglen, msgcap;
    int fatal;
    int done;
    bpe_encoder *enc;            /* the running worker's (NULL: bpe_encode) */
    /* a batch of small whole files (text: their documents joined by 0xFF) */
    int files;
    struct small_in {
        shard_input entry;       /* the input's sidecar entry so far */
        int skipped;             /* invalid UTF-8 under --on-error skip: no document */
    } *fin;
    size_t nfin, fincap;
    size_t *ntok;                /* each input's tokens in out (<|endoftext|> included) */
    size_t ntokcap;
    /* a block of a whole file: ext[0..len), at off0 of the text */
    int parsed;                  /* its documents joined into text by the main thread */
    int block, bad;              /* bad: invalid UTF-8 at off0 + bad_off */
    const char *ext;
    uint64_t bad_off;
} job;

typedef struct {
    const bpe *v;
    const shard_opts *o;
    uint32_t sep_id;             /* the token of the lone byte 0xFF */
    int jsonl;
    char name[512];
    pthread_mutex_t mu;
    pthread_cond_t work, fin;
    job *jobs;
    size_t njobs;
    uint64_t submitted, taken, emitted;
    int stop;
    pthread_t *th;
    int nth;
    uint64_t utf8_bad;           /* a whole file's first invalid UTF-8 byte, once met */
    bpe_encoder **enc;           /* the unit's encoders: worker i takes enc[i] */
    struct shard_scratch *ws;    /* and its scratch buffers ws[i] */
    int started;
    size_t batch;                /* bytes of the next batch (pool_submitted) */
} pool;

/* With the job's encoder, its worker's (NULL: bpe_encode). Each worker
 * keeps its piece cache warm from job to job, and from pool to pool of a
 * unit: a unit's pools never encode at the same time (one is drained
 * before the next starts). */
static int encode_(const pool *p, const job *j, const void *t, size_t n, int flags, uint32_t *ids, size_t cap,
                   size_t *nt, bpe_error *err) {
    return j->enc ? bpe_encoder_encode(j->enc, t, n, flags, ids, NULL, cap, nt, err)
                  : bpe_encode(p->v, t, n, flags, ids, NULL, cap, nt, err);
}

/* *p with room for `need` elements of `elem` bytes, its contents kept. */
static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    if (need > SIZE_MAX / elem) return -1;
    size_t bytes = *cap * elem;
    if (big_grow(p, &bytes, need * elem, bytes)) return -1;
    *cap = bytes / elem;
    return 0;
}

static void job_msg(job *j, pool *p, uint64_t line, uint64_t off, const char *what) {
    char m[1024];
    int n = snprintf(m, sizeof m, "gpt2in: %s:%llu: byte %llu: %s%s\n", p->name, (unsigned long long)line,
                     (unsigned long long)off, what, p->o->skip_errors ? " (document skipped)" : "");
    if (n < 0) return;
    if ((size_t)n >= sizeof m) n = sizeof m - 1;
    if (grow((void **)&j->msg, &j->msgcap, j->msglen + (size_t)n + 1, 1)) return;
    memcpy(j->msg + j->msglen, m, (size_t)n + 1);
    j->msglen += (size_t)n;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

static int hex4(const char *s, unsigned *u) {
    *u = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                     : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (unsigned)((c | 0x20) - 'a' + 10) : 16;
        if (d > 15) return 0;
        *u = *u << 4 | d;
    }
    return 1;
}

/* Python's json.loads takes an unpaired surrogate escape ("\ud800") into
 * its str, and tiktoken's encode then writes it as U+FFFD: that is how
 * fineweb.py meets such a line, where simdjson and jansson refuse it. Writes
 * into out (n bytes) the line with each unpaired one as "\ufffd", the same
 * length, so that offsets stay; returns 0 when the line has none. */
static int unpaired_surrogates_replaced(const char *s, size_t n, char *out) {
    int found = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '\\') continue;
        unsigned u, w;
        if (s[i + 1] != 'u' || n - i < 6 || !hex4(s + i + 2, &u)) {
            i++;  /* \\ \" ... or a bad escape, which the parsers report */
            continue;
        }
        if (u >= 0xd800 && u <= 0xdbff && n - i >= 12 && s[i + 6] == '\\' && s[i + 7] == 'u' &&
            hex4(s + i + 8, &w) && w >= 0xdc00 && w <= 0xdfff) {
            i += 11;  /* a pair */
            continue;
        }
        if (u >= 0xd800 && u <= 0xdfff) {
            if (!found) memcpy(out, s, n);
            memcpy(out + i, "\\ufffd", 6);
            found = 1;
        }
        i += 5;
    }
    return found;
}

/* jansson's message with the input's bytes it quotes ("near '...'") as the
 * project's messages show bytes: cli_quote_buf's rule, without its quotes. */
static void shown_text(const char *s, char *out, size_t cap) {
    cli_quote_buf(out, cap, s, strlen(s));
    size_t n = strlen(out);
    if (n >= 2) {
        memmove(out, out + 1, n - 2);
        out[n - 2] = 0;
    }
}

/* Python's json.loads takes any number (1e400 as inf, 2**64 and more as an
 * int), where jansson and simdjson refuse one past double or 64 bits, and
 * NaN, Infinity and -Infinity, which its json.dumps writes for floats. A
 * number is never the document (the field is a string), so out gets the
 * line (n bytes) with each well-formed number and each of those three
 * outside strings as "0" and blanks: the same length, offsets stay, and a
 * bad number stays bad. Returns the number of NaN and Infinity replaced. */
static int numbers_zeroed(const char *s, size_t n, char *out) {
    int nonfinite = 0;
    memcpy(out, s, n);
    for (size_t i = 0; i < n;) {
        if (s[i] == '"') {   /* a string: to its closing quote */
            for (i++; i < n && s[i] != '"'; i++)
                if (s[i] == '\\') i++;
            i++;
            continue;
        }
        /* as Python's scanner: NaN, Infinity, -Infinity (not -NaN, +Infinity) */
        size_t w = s[i] == 'N' && n - i >= 3 && !memcmp(s + i, "NaN", 3)                ? 3
                   : s[i] == 'I' && n - i >= 8 && !memcmp(s + i, "Infinity", 8)         ? 8
                   : s[i] == '-' && n - i >= 9 && !memcmp(s + i + 1, "Infinity", 8) ? 9
                                                                                        : 0;
        if (w && (i == 0 || (s[i - 1] != '-' && s[i - 1] != '+'))) {
            out[i] = '0';
            memset(out + i + 1, ' ', w - 1);
            nonfinite++;
            i += w;
            continue;
        }
        if (s[i] != '-' && (s[i] < '0' || s[i] > '9')) {
            i++;
            continue;
        }
        size_t a = i, e = i;
        while (e < n && (strchr("+-.eE", s[e]) || (s[e] >= '0' && s[e] <= '9'))) e++;
        /* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? exactly */
        size_t k = a + (s[a] == '-'), d;
        int ok = k < e && s[k] >= '0' && s[k] <= '9';
        if (ok && s[k++] != '0')
            while (k < e && s[k] >= '0' && s[k] <= '9') k++;
        if (ok && k < e && s[k] == '.') {
            for (d = ++k; k < e && s[k] >= '0' && s[k] <= '9';) k++;
            ok = k > d;
        }
        if (ok && k < e && (s[k] == 'e' || s[k] == 'E')) {
            k++;
            if (k < e && (s[k] == '+' || s[k] == '-')) k++;
            for (d = k; k < e && s[k] >= '0' && s[k] <= '9';) k++;
            ok = k > d;
        }
        if (ok && k == e) {
            out[a] = '0';
            memset(out + a + 1, ' ', e - a - 1);
        }
        i = e;
    }
    return nonfinite;
}

/* The field's string of a JSON line by simdjson, or of the line with its
 * unpaired surrogates replaced (*ln, in j->fixed, is then that line, for
 * jansson's messages); SHARD_JSON_BAD leaves the verdict to jansson. */
static int json_field(job *j, const pool *p, const char *s, size_t n, const char **ln,
                      const char **str, size_t *slen) {
    if (!j->sj) return SHARD_JSON_BAD;
    int rc = shard_json_field(j->sj, s, n, p->o->field, str, slen);
    if (rc != SHARD_JSON_BAD || !memchr(s, '\\', n)) return rc;
    if (grow((void **)&j->fixed, &j->fixedcap, n + SHARD_JSON_PADDING, 1)) return SHARD_JSON_NOMEM;
    if (!unpaired_surrogates_replaced(s, n, j->fixed)) return SHARD_JSON_BAD;
    *ln = j->fixed;
    return shard_json_field(j->sj, j->fixed, n, p->o->field, str, slen);
}

static const char *json_kind(const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* One good document: appended to the batch's text after a 0xFF. Returns 0,
 * or 1 when out of memory (recorded, fatal). */
static int doc(job *j, pool *p, const char *text, size_t n, uint64_t line, uint64_t off) {
    if (grow((void **)&j->text, &j->tcap, j->tlen + n + 1, 1)) {
        job_msg(j, p, line, off, "out of memory");
        j->fatal = 1;
        return 1;
    }
    if (j->docs) j->text[j->tlen++] = 0xff;
    memcpy(j->text + j->tlen, text, n);
    j->tlen += n;
    j->docs++;
    return 0;
}

/* o[k] = ids[k] as uint16, sep mapped to SHARD_EOT: eight at a time
 * (SSE2 has no unsigned 32 -> 16 pack: the low halves, sign-extended,
 * survive the signed one). A plain loop costs as much a token as a
 * short piece's merging. */
static void ids_u16(uint16_t *restrict o, const uint32_t *restrict ids, size_t n, uint32_t sep) {
    size_t k = 0;
#ifdef __SSE2__
    const __m128i s = _mm_set1_epi32((int)sep), eot = _mm_set1_epi32(SHARD_EOT);
    for (; k + 8 <= n; k += 8) {
        __m128i a = _mm_loadu_si128((const __m128i *)(ids + k)), b = _mm_loadu_si128((const __m128i *)(ids + k + 4));
        __m128i ma = _mm_cmpeq_epi32(a, s), mb = _mm_cmpeq_epi32(b, s);
        a = _mm_or_si128(_mm_andnot_si128(ma, a), _mm_and_si128(ma, eot));
        b = _mm_or_si128(_mm_andnot_si128(mb, b), _mm_and_si128(mb, eot));
        a = _mm_srai_epi32(_mm_slli_epi32(a, 16), 16);
        b = _mm_srai_epi32(_mm_slli_epi32(b, 16), 16);
        _mm_storeu_si128((__m128i *)(o + k), _mm_packs_epi32(a, b));
    }
#endif
    for (; k < n; k++) o[k] = ids[k] == sep ? SHARD_EOT : (uint16_t)ids[k];
}

/* The first sep in ids[0..n), or n (wchar_t is 32 bits on Linux, and libc's
 * wmemchr vectorized). */
static size_t ids_find(const uint32_t *ids, size_t n, uint32_t sep) {
    if (sizeof(wchar_t) != sizeof(uint32_t)) {
        size_t k = 0;
        while (k < n && ids[k] != sep) k++;
        return k;
    }
    const wchar_t *w = wmemchr((const wchar_t *)ids, (wchar_t)sep, n);
    return w ? (size_t)((const uint32_t *)w - ids) : n;
}

/* The batch's documents in one call: valid UTF-8 joined by byte 0xFF,
 * which is then a piece of its own (bpe.h: the valid text between invalid
 * bytes is encoded exactly as it would be alone), so each 0xFF token ends
 * a document; one long text lets the tokenizer cache its pieces. */
static void encode_batch(job *j, pool *p) {
    size_t nt = 0;
    bpe_error err;
    if (grow((void **)&j->ids, &j->idcap, j->tlen ? j->tlen : 1, sizeof *j->ids) ||
        encode_(p, j, j->text, j->tlen, BPE_SPECIAL_TEXT, j->ids, j->tlen, &nt, &err) ||
        grow((void **)&j->out, &j->outcap, nt + 1, sizeof *j->out)) {
        job_msg(j, p, j->line0, j->off0, "out of memory");
        j->fatal = 1;
        return;
    }
    j->out[j->nout++] = SHARD_EOT;
    ids_u16(j->out + j->nout, j->ids, nt, p->sep_id);
    j->nout += nt;
}

/* Plain text lines, all valid UTF-8 (the common case), one library call
 * for a run of consecutive lines where the \n before each line but the
 * first gets token 198 ("\n") of its own and the line exactly the tokens
 * it gets alone, so that the run's tokens are cut at the 198s. That holds
 * when the line starts with ASCII whitespace R (maybe none) and then an
 * ASCII character that is not whitespace, whatever the line before ends
 * with: only the whitespace patterns (\s+(?!\S), \s+) take a \n, and
 * \s+(?!\S) stops one short of the text, so the \n's piece is \n + R less
 * its last character where the line alone has R less its last character;
 * and GPT-2 merges the \n byte only with another \n or after it with a
 * no-break space (vocab.bpe: "Ċ Ċ", "Ċ Âł"), so the \n stays token 198 and
 * the rest of the piece gets the tokens it gets alone. Empty lines between
 * two such lines add \n bytes to the piece, which merge only among
 * themselves (198 and 628, "\n\n"): the run's tokens are cut at each run
 * of 198s and 628s. Otherwise (a blank line, a non-ASCII first character)
 * the run ends, and a run whose newline tokens do not match its \n bytes
 * and cuts (never) is encoded a line at a call. Not the batch joined by 0xFF as for JSON Lines: an invalid byte
 * every few dozen bytes leaves the pre-tokenizer's fast path. */
static int ascii_space(unsigned char c) {
    /* at least the pattern's \s among ASCII: \t-\r, space (0x1c-0x1f too,
     * which some engines count as \s: here that only ends runs sooner) */
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

static int joinable(const char *b, size_t nb) {
    size_t i = 0;
    while (i < nb && ascii_space((unsigned char)b[i])) i++;
    return i < nb && (unsigned char)b[i] < 0x80;
}

#define NEWLINE_TOKEN 198u    /* "\n" */
#define NEWLINES_TOKEN 628u   /* "\n\n" */

/* The number of bits set in m < 256 (SWAR: without -mpopcnt,
 * __builtin_popcount is a call). */
static unsigned bits8(unsigned m) {
    m -= (m >> 1) & 0x55;
    m = (m & 0x33) + ((m >> 2) & 0x33);
    return (m + (m >> 4)) & 0x0f;
}

/* ids[0..8) as uint16 into o, each newline token (NEWLINE_TOKEN or
 * NEWLINES_TOKEN) as SHARD_EOT; returns the bitmask of the newline tokens
 * (bit k: ids[k]) and *two that of the NEWLINES_TOKENs. Eight at once: a
 * token at a time, the scan cost as much as the encoding of short pieces. */
static unsigned newline8_u16(uint16_t *restrict o, const uint32_t *restrict ids, unsigned *two) {
#ifdef __SSE2__
    const __m128i n1 = _mm_set1_epi32(NEWLINE_TOKEN), n2 = _mm_set1_epi32(NEWLINES_TOKEN),
                  eot = _mm_set1_epi32(SHARD_EOT);
    __m128i a = _mm_loadu_si128((const __m128i *)ids), b = _mm_loadu_si128((const __m128i *)(ids + 4));
    __m128i a2 = _mm_cmpeq_epi32(a, n2), b2 = _mm_cmpeq_epi32(b, n2);
    __m128i ma = _mm_or_si128(_mm_cmpeq_epi32(a, n1), a2), mb = _mm_or_si128(_mm_cmpeq_epi32(b, n1), b2);
    a = _mm_or_si128(_mm_andnot_si128(ma, a), _mm_and_si128(ma, eot));
    b = _mm_or_si128(_mm_andnot_si128(mb, b), _mm_and_si128(mb, eot));
    a = _mm_srai_epi32(_mm_slli_epi32(a, 16), 16);   /* (as in ids_u16) */
    b = _mm_srai_epi32(_mm_slli_epi32(b, 16), 16);
    _mm_storeu_si128((__m128i *)o, _mm_packs_epi32(a, b));
    const __m128i z = _mm_setzero_si128();
    *two = (unsigned)_mm_movemask_epi8(_mm_packs_epi16(_mm_packs_epi32(a2, b2), z)) & 0xff;
    return (unsigned)_mm_movemask_epi8(_mm_packs_epi16(_mm_packs_epi32(ma, mb), z)) & 0xff;
#else
    unsigned m = 0;
    *two = 0;
    for (int k = 0; k < 8; k++) {
        int nl = ids[k] == NEWLINE_TOKEN || ids[k] == NEWLINES_TOKEN;
        o[k] = nl ? SHARD_EOT : (uint16_t)ids[k];
        m |= (unsigned)nl << k;
        *two |= (unsigned)(ids[k] == NEWLINES_TOKEN) << k;
    }
    return m;
#endif
}

static int line_encode(job *j, pool *p, const char *s, size_t n) {
    size_t nt = 0;
    bpe_error err;
    if (encode_(p, j, s, n, BPE_SPECIAL_TEXT, j->ids, j->len, &nt, &err)) return -1;
    j->docs++;
    j->out[j->nout++] = SHARD_EOT;
    for (size_t i = 0; i < nt; i++) j->out[j->nout++] = (uint16_t)j->ids[i];
    return 0;
}

static void text_batch(job *j, pool *p) {
    const char *d = j->data, *end = d + j->len, *s = d;
    bpe_error err;
    /* a line's tokens are at most its bytes, and its 50256 takes the \n's place */
    if (grow((void **)&j->ids, &j->idcap, j->len, sizeof *j->ids) ||
        grow((void **)&j->out, &j->outcap, j->len + 1, sizeof *j->out)) {
        job_msg(j, p, j->line0, j->off0, "out of memory");
        j->fatal = 1;
        return;
    }
    while (s < end) {
        const char *q = memchr(s, '\n', (size_t)(end - s)), *e = q ? q : end;
        if (e == s) {   /* an empty line: no document */
            s = e + 1;
            continue;
        }
        /* the run: lines [s, e), e at a \n or the end, empty lines within */
        size_t joins = 0, nlbytes = 0;
        while (e < end) {
            const char *b = e + 1;
            while (b < end && *b == '\n') b++;   /* empty lines */
            const char *bq = b < end ? memchr(b, '\n', (size_t)(end - b)) : NULL, *be = bq ? bq : end;
            if (b >= end || !joinable(b, (size_t)(be - b))) break;
            nlbytes += (size_t)(b - e);
            e = be;
            joins++;
        }
        /* between two lines, their \n and the empty lines': 198s and 628s
         * ("\n\n"), one run of them a boundary. Written as they come, taken
         * back if they do not add up. */
        size_t nt = 0, nl = 0, cuts = 0, out0 = j->nout;
        int bad = encode_(p, j, s, (size_t)(e - s), BPE_SPECIAL_TEXT, j->ids, j->len, &nt, &err), in = 0;
        if (!bad) {
            const uint32_t *ids = j->ids;
            uint16_t *o = j->out + j->nout;
            *o++ = SHARD_EOT;
            for (size_t i = 0; i < nt;) {
                size_t end = nt;
                if (nt - i >= 8) {   /* eight tokens, no newline token right after another: each one as a cut */
                    unsigned two, m = newline8_u16(o, ids + i, &two);
                    if (!(m & (m << 1 | (unsigned)in))) {
                        unsigned c = bits8(m);
                        nl += c + (two ? bits8(two) : 0);
                        cuts += c;
                        in = (int)(m >> 7);
                        o += 8;
                        i += 8;
                        continue;
                    }
                    end = i + 8;
                }
                for (; i < end; i++) {
                    uint32_t id = ids[i];
                    if (id != NEWLINE_TOKEN && id != NEWLINES_TOKEN) {
                        *o++ = (uint16_t)id;
                        in = 0;
                        continue;
                    }
                    nl += id == NEWLINES_TOKEN ? 2 : 1;
                    if (!in) {
                        *o++ = SHARD_EOT;
                        cuts++;
                    }
                    in = 1;
                }
            }
            j->nout = (size_t)(o - j->out);
        }
        if (!bad && nl == nlbytes && cuts == joins) {
            j->docs += joins + 1;
        } else {
            j->nout = out0;
            for (const char *t = s; !bad && t < e;) {
                const char *tq = memchr(t, '\n', (size_t)(e - t)), *te = tq ? tq : e;
                if (te > t) bad = line_encode(j, p, t, (size_t)(te - t));
                t = te + 1;
            }
        }
        if (bad) {
            job_msg(j, p, j->line0, j->off0, "out of memory");
            j->fatal = 1;
            return;
        }
        s = e + 1;
    }
}

/* Small whole files: one call for all their documents, cut at the 0xFF
 * tokens; an input skipped has no document (and no separator). */
static void files_batch(job *j, pool *p) {
    size_t nt = 0, i = 0;
    bpe_error err;
    j->nout = 0;
    if (grow((void **)&j->ids, &j->idcap, j->tlen ? j->tlen : 1, sizeof *j->ids) ||
        encode_(p, j, j->text, j->tlen, BPE_SPECIAL_TEXT, j->ids, j->tlen, &nt, &err) ||
        grow((void **)&j->out, &j->outcap, nt + j->nfin, sizeof *j->out) ||
        grow((void **)&j->ntok, &j->ntokcap, j->nfin, sizeof *j->ntok)) {
        j->fatal = 1;
        return;
    }
    for (size_t r = 0; r < j->nfin; r++) {
        if (j->fin[r].skipped) {
            j->ntok[r] = 0;
            continue;
        }
        size_t e = i < nt ? i + ids_find(j->ids + i, nt - i, p->sep_id) : nt;
        j->out[j->nout++] = SHARD_EOT;
        ids_u16(j->out + j->nout, j->ids + i, e - i, p->sep_id);
        j->nout += e - i;
        j->ntok[r] = e - i + 1;
        i = e + 1;
    }
}

/* A whole file's block (its UTF-8 checked by the main thread: the worker
 * only encodes). */
static void block_job(job *j, pool *p) {
    size_t n = 0;
    bpe_error err;
    int flags = BPE_SPECIAL_TEXT, e;
    j->nout = 0;
    j->bad = j->fatal = 0;
    if (grow((void **)&j->ids, &j->idcap, j->len, sizeof *j->ids)) {
        j->fatal = 1;
        return;
    }
    if (j->len > 2 * WHOLE_BLOCK)   /* a long piece without a cut: its threads */
        e = bpe_encode_parallel(p->v, j->ext, j->len, flags, p->o->threads, j->ids, NULL, j->len, &n, &err);
    else
        e = encode_(p, j, j->ext, j->len, flags, j->ids, j->len, &n, &err);
    if (e == BPE_ERR_UTF8) {
        j->bad = 1;
        j->bad_off = err.offset;
        return;
    }
    if (e || grow((void **)&j->out, &j->outcap, n, sizeof *j->out)) {
        j->fatal = 1;
        return;
    }
    ids_u16(j->out, j->ids, n, UINT32_MAX);
    j->nout = n;
}

/* The documents of a batch of lines that is JSON Lines, or text with
 * invalid UTF-8, each checked, joined into j->text (doc); messages into
 * j->msg. */
static void parse_lines(job *j, pool *p) {
    const char *s = j->data, *end = j->data + j->len;
    uint64_t line = j->line0;
    while (s < end && !j->fatal) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = (size_t)((nl ? nl : end) - s);
        uint64_t off = j->off0 + (uint64_t)(s - j->data);
        if (p->jsonl && off == 0 && n >= 3 && !memcmp(s, "\xef\xbb\xbf", 3)) {
            s += 3;   /* a UTF-8 BOM opening the file: skipped, as Python's json.loads skips it in bytes */
            n -= 3;
            off = 3;
        }
        int bad = 0, fast;
        const char *str, *ln = s;
        size_t slen;
        if (!p->jsonl) {
            size_t b = n ? utf8_bad((const unsigned char *)s, n) : 0;
            if (b < n) {
                job_msg(j, p, line, off + b, "invalid UTF-8");
                bad = 1;
            } else if (n && doc(j, p, s, n, line, off)) {
                break;
            }
        } else if (is_blank(s, n)) {
        } else if ((fast = json_field(j, p, s, n, &ln, &str, &slen)) == SHARD_JSON_OK) {
            if (doc(j, p, str, slen, line, off)) break;
        } else if (fast == SHARD_JSON_NOMEM) {
            job_msg(j, p, line, off, "out of memory");
            j->fatal = 1;
            break;
        } else {   /* not a good line: jansson says why (or, rarely, takes it) */
            json_error_t je;
            json_t *root = json_loadb(ln, n, JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
            enum json_error_code code0 = root ? json_error_unknown : json_error_code(&je);
            if (code0 == json_error_numeric_overflow || code0 == json_error_invalid_syntax) {   /* (numbers_zeroed) */
                char *z = malloc(n + 1);
                if (!z) {
                    job_msg(j, p, line, off, "out of memory");
                    j->fatal = 1;
                    break;
                }
                if (numbers_zeroed(ln, n, z) || code0 == json_error_numeric_overflow)
                    root = json_loadb(z, n, JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);   /* (its strings are copies) */
                free(z);
            }
            if (!root) {
                char m[256];
                enum json_error_code code = json_error_code(&je);
                if (code == json_error_invalid_utf8) snprintf(m, sizeof m, "invalid UTF-8");
                else {
                    char t[200];
                    shown_text(je.text, t, sizeof t);
                    snprintf(m, sizeof m, "malformed JSON: %s", t);
                }
                /* jansson's position is just past the offending byte, or at
                 * an invalid UTF-8 byte; the end for a line cut short. */
                uint64_t at = je.position > 0 ? (uint64_t)je.position : 0;
                if (code == json_error_premature_end_of_input) at = n;
                else if (code != json_error_invalid_utf8 && at) at--;
                if (at > n) at = n;
                /* a bad token ("near 'TOKEN'", jansson's copy of its bytes,
                 * which it read just before that position): its start */
                const char *tk = code == json_error_invalid_utf8 ? NULL : strstr(je.text, " near '");
                size_t tl = tk ? strlen(tk += 7) : 0;
                if (tl > 1 && tk[tl - 1] == '\'') {
                    tl--;
                    for (size_t c = at + 1 < n - tl + 1 ? at + 1 : n - tl + 1; tl <= n && c-- > 0 && c + tl + 2 >= at;)
                        if (!memcmp(ln + c, tk, tl)) {
                            at = c;
                            break;
                        }
                }
                job_msg(j, p, line, off + at, m);
                bad = 1;
            } else {
                json_t *f = json_is_object(root) ? json_object_get(root, p->o->field) : NULL;
                char m[256];
                if (!json_is_object(root)) {
                    snprintf(m, sizeof m, "the line is %s, not a JSON object", json_kind(root));
                    job_msg(j, p, line, off, m);
                    bad = 1;
                } else if (!f) {
                    snprintf(m, sizeof m, "no field %s", cli_quote_buf((char[200]){0}, 200, p->o->field,
                                                                       strlen(p->o->field)));
                    job_msg(j, p, line, off, m);
                    bad = 1;
                } else if (!json_is_string(f)) {
                    snprintf(m, sizeof m, "field %s is %s, not a string",
                             cli_quote_buf((char[200]){0}, 200, p->o->field, strlen(p->o->field)), json_kind(f));
                    job_msg(j, p, line, off, m);
                    bad = 1;
                } else if (doc(j, p, json_string_value(f), json_string_length(f), line, off)) {
                    json_decref(root);
                    break;
                }
                json_decref(root);
            }
        }
        if (bad) {
            j->skipped++;
            if (!p->o->skip_errors) j->fatal = 1;
        }
        line++;
        s = nl ? nl + 1 : end;
    }
}

static void run_job(job *j, pool *p) {
    if (j->block) {
        block_job(j, p);
        return;
    }
    if (j->files) {
        files_batch(j, p);
        return;
    }
    if (j->parsed) {
        if (j->docs && !j->fatal) encode_batch(j, p);
        return;
    }
    j->nout = j->docs = j->skipped = j->msglen = j->tlen = 0;
    if (p->jsonl && !j->sj) j->sj = shard_json_new();   /* NULL: jansson alone */
    j->fatal = 0;
    if (!p->jsonl && utf8_bad((const unsigned char *)j->data, j->len) == j->len) {
        text_batch(j, p);
        return;
    }
    parse_lines(j, p);
    if (j->docs && !j->fatal) encode_batch(j, p);
}

/* A job's buffers that only its run needs: the token ids (4 bytes a byte
 * of text), the parser, a line's repair, and but for small files (whose
 * text the main thread joins) the joined documents. Each worker lends its
 * own to the job it runs, kept for the whole unit: fresh memory costs a
 * page fault and the zeroing of a page, and every slot of the ring with
 * buffers of its own made the unit's memory several times bigger. */
struct shard_scratch {
    uint32_t *ids;
    size_t idcap;
    shard_json *sj;
    char *fixed;
    size_t fixedcap;
    unsigned char *text;
    size_t tcap;
};

#define SWAP(T, a, b) do { T t_ = (a); (a) = (b); (b) = t_; } while (0)
static void scratch_swap(job *j, struct shard_scratch *w) {
    SWAP(uint32_t *, j->ids, w->ids);
    SWAP(size_t, j->idcap, w->idcap);
    SWAP(shard_json *, j->sj, w->sj);
    SWAP(char *, j->fixed, w->fixed);
    SWAP(size_t, j->fixedcap, w->fixedcap);
    if (!j->files && !j->parsed) {
        SWAP(unsigned char *, j->text, w->text);
        SWAP(size_t, j->tcap, w->tcap);
    }
}

static void scratch_free(struct shard_scratch *w) {
    free(w->ids);
    shard_json_free(w->sj);
    free(w->fixed);
    free(w->text);
    memset(w, 0, sizeof *w);
}

/* One worker: a batch of JSON Lines is parsed here, by the main thread
 * (its own parser, ms), before the worker gets it, so that the worker
 * only encodes: with one encoding thread the main thread has time to
 * spare and the worker none. The same documents either way. */
static void main_parse(job *j, pool *p, struct shard_scratch *ms) {
    SWAP(shard_json *, j->sj, ms->sj);
    SWAP(char *, j->fixed, ms->fixed);
    SWAP(size_t, j->fixedcap, ms->fixedcap);
    j->nout = j->docs = j->skipped = j->msglen = j->tlen = 0;
    j->fatal = 0;
    if (!j->sj) j->sj = shard_json_new();   /* NULL: jansson alone */
    parse_lines(j, p);
    SWAP(shard_json *, j->sj, ms->sj);
    SWAP(char *, j->fixed, ms->fixed);
    SWAP(size_t, j->fixedcap, ms->fixedcap);
}

static void *worker(void *arg) {
    pool *p = arg;
    pthread_mutex_lock(&p->mu);
    struct shard_scratch *ws = &p->ws[p->started];
    bpe_encoder *enc = p->enc[p->started++];
    for (;;) {
        while (!p->stop && p->taken >= p->submitted) pthread_cond_wait(&p->work, &p->mu);
        if (p->stop) break;
        job *j = &p->jobs[p->taken++ % p->njobs];
        pthread_mutex_unlock(&p->mu);
        scratch_swap(j, ws);
        j->enc = enc;
        run_job(j, p);
        scratch_swap(j, ws);
        pthread_mutex_lock(&p->mu);
        j->done = 1;
        pthread_cond_broadcast(&p->fin);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Writes job seq (waiting for it) to the unit. */
static int emit(pool *p, uint64_t seq, unit_out *u) {
    job *j = &p->jobs[seq % p->njobs];
    pthread_mutex_lock(&p->mu);
    while (!j->done) pthread_cond_wait(&p->fin, &p->mu);
    pthread_mutex_unlock(&p->mu);
    if (j->msglen && (j->fatal || !p->o->quiet)) {
        progress_clear();
        fputs(j->msg, stderr);
    }
    if (j->block) {
        if (j->bad) {
            p->utf8_bad = j->off0 + j->bad_off;
            return CLI_ERR;
        }
        if (j->fatal) return cli_error("%s: out of memory", p->name);
        return put_tokens(u, j->out, j->nout);
    }
    if (j->files) {
        if (j->fatal) return cli_error("out of memory");
        size_t at = 0;
        for (size_t r = 0; r < j->nfin; r++) {
            if (shard_sha_init(&u->in_sha)) return cli_error("out of memory");
            u->docs = !j->fin[r].skipped;
            u->skipped = j->fin[r].skipped;
            u->tokens = 0;
            count_tokens(u, j->out + at, j->ntok[r]);
            at += j->ntok[r];
            prog.docs += u->docs;
            if (input_done(u, &j->fin[r].entry)) return CLI_ERR;
        }
        j->nfin = 0;
        return write_tokens(u, j->out, j->nout);
    }
    if (j->fatal) return CLI_ERR;
    u->docs += j->docs;
    u->skipped += j->skipped;
    prog.docs += j->docs;
    return put_tokens(u, j->out, j->nout);
}

#define BATCH (1 << 20)

/* A pool's batches start small and double up to BATCH: the worker starts
 * on the first one sooner (the main thread reads and checks a batch before
 * the worker can take it), and later batches are as big as ever. */
static void pool_submitted(pool *p) {
    if (p->batch < BATCH) p->batch *= 2;
}

/* The worker threads and their ring of 2 x threads + 1 jobs. */
static int pool_start(pool *p, const bpe *v, const shard_opts *o, int jsonl, const char *name, unit_out *u) {
    memset(p, 0, sizeof *p);
    p->v = v;
    p->enc = u->enc;
    p->ws = u->ws;
    p->batch = BATCH / 8;
    p->o = o;
    p->jsonl = jsonl;
    p->utf8_bad = UINT64_MAX;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->fin, NULL);
    size_t one = 0;
    if (bpe_encode(v, "\xff", 1, 0, &p->sep_id, NULL, 1, &one, &(bpe_error){0}) || one != 1)
        return cli_error("the vocabulary has no token for the byte 0xFF");
    snprintf(p->name, sizeof p->name, "%s", name);
    p->njobs = 2 * (size_t)o->threads + 1;
    p->jobs = calloc(p->njobs, sizeof *p->jobs);
    p->th = calloc((size_t)o->threads, sizeof *p->th);
    if (!p->jobs || !p->th) return cli_error("out of memory");
    for (int i = 0; i < o->threads; i++)   /* (made here: the threads see them) */
        if (!u->enc[i]) u->enc[i] = bpe_encoder_new(v, &(bpe_error){0});   /* NULL: bpe_encode */
    for (; p->nth < o->threads; p->nth++)
        if (pthread_create(&p->th[p->nth], NULL, worker, p)) return cli_error("cannot start a thread");
    return 0;
}

/* The slot of the next job, once the job it held is written. */
static job *pool_slot(pool *p, unit_out *u, int *rc) {
    uint64_t seq = p->submitted;
    if (seq - p->emitted >= p->njobs && (*rc = emit(p, p->emitted++, u))) return NULL;
    return &p->jobs[seq % p->njobs];
}

static void pool_submit(pool *p, job *j) {
    j->done = 0;
    pthread_mutex_lock(&p->mu);
    p->submitted++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
}

/* Writes every job submitted. */
static int pool_drain(pool *p, unit_out *u) {
    int rc = 0;
    while (!rc && p->emitted < p->submitted) rc = emit(p, p->emitted++, u);
    return rc;
}

static void job_free(job *j) {
    free(j->data);
    free(j->out);
    free(j->ids);
    free(j->text);
    shard_json_free(j->sj);
    free(j->fixed);
    free(j->msg);
    free(j->fin);
    free(j->ntok);
}

static void pool_stop(pool *p) {
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nth; i++) pthread_join(p->th[i], NULL);
    for (size_t i = 0; p->jobs && i < p->njobs; i++) job_free(&p->jobs[i]);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->fin);
    pthread_mutex_destroy(&p->mu);
    free(p->jobs);
    free(p->th);
    memset(p, 0, sizeof *p);
}

static int lines(sin *s, unit_out *u, const bpe *v, const shard_opts *o, int jsonl) {
    pool p;
    int rc = pool_start(&p, v, o, jsonl, s->name, u);
    /* A read error (corrupt or truncated data) is said after the messages
     * of the lines before it, whatever the threads and the read-ahead (set
     * before the read-ahead's thread starts reading). */
    int rerr = 0;
    s->keep_err = 1;
    sin_ahead ah;
    int ahead = !rc && s->kind != IN_RAW && s->expect != UINT64_MAX && !ahead_start(&ah, s);
    uint64_t raw = s->raw;
    /* (gzip's only with its own thread: inflate would keep this one busy) */
    int pre = jsonl && o->threads == 1 && (s->kind != IN_GZ || ahead);
    struct shard_scratch ms;
    memset(&ms, 0, sizeof ms);
    char *acc = NULL;
    size_t acclen = 0, acccap = 0;
    uint64_t line = 1, off = 0;
    size_t pad = SHARD_JSON_PADDING;
    int at_end = 0;
    while (!rc && !at_end) {
        /* simdjson reads up to `pad` bytes past a line's end */
        if (grow((void **)&acc, &acccap, acclen + (1 << 16) + pad, 1)) {
            rc = cli_error("%s: out of memory", s->name);
            break;
        }
        size_t got;
        if (ahead ? ahead_read(&ah, acc + acclen, acccap - acclen - pad, &got, &raw)
                  : sin_read(s, acc + acclen, acccap - acclen - pad, &got)) {
            rerr = 1;
            break;
        }
        if (!ahead) raw = s->raw;
        acclen += got;
        at_end = got == 0;
        size_t cut = acclen;
        if (!at_end) {
            if (acclen < p.batch) continue;
            char *nl = memrchr(acc, '\n', acclen);
            if (!nl) continue;   /* a line longer than a batch: read on */
            cut = (size_t)(nl - acc) + 1;
        }
        if (!cut) break;
        /* The slot's oldest job goes out first. */
        job *j = pool_slot(&p, u, &rc);
        if (!j) break;
        char *old = j->data;
        size_t oldcap = j->cap;
        j->data = acc;
        j->cap = acccap;
        j->len = cut;
        j->line0 = line;
        j->off0 = off;
        for (const char *q = acc; (q = memchr(q, '\n', (size_t)(acc + cut - q))); q++) line++;
        off += cut;
        acc = old;
        acccap = oldcap;
        size_t rest = acclen - cut;
        if (grow((void **)&acc, &acccap, rest + (1 << 16) + pad, 1)) {
            rc = cli_error("%s: out of memory", s->name);
            break;
        }
        memcpy(acc, j->data + cut, rest);
        acclen = rest;
        j->parsed = pre;
        if (pre) main_parse(j, &p, &ms);
        pool_submit(&p, j);
        pool_submitted(&p);
        progress(o, raw, 0);
    }
    if (ahead) ahead_stop(&ah);
    while (!rc && p.emitted < p.submitted) {
        rc = emit(&p, p.emitted++, u);
        progress(o, s->raw, 0);
    }
    if (!rc && rerr) rc = cli_error("%s", s->err);
    if (!rc) rc = tokens_end(u);
    s->keep_err = 0;
    pool_stop(&p);
    scratch_free(&ms);
    free(acc);
    return rc;
}

/* ---- a whole file, one document ------------------------------------------- */

static int whole_file(sin *s, uint64_t size, unit_out *u, const bpe *v, const shard_opts *o) {
    const char *text = NULL;
    size_t len = 0;
    void *map = NULL;
    int rc = 0, hashing = 0;
    pthread_t hth;
    hash_job hj;
    if (s->kind == IN_RAW && s->ipos == 0 && s->ilen < IBUF && s->eof) {
        text = (const char *)s->ib;   /* a small file: sin_open read all of it */
        len = s->ilen;
        s->ipos = s->ilen;
        s->eof = 1;
    } else if (s->kind == IN_RAW && size > 0 && size <= SIZE_MAX && s->ilen <= size) {
        cli_mapped_as(s->name);   /* a SIGBUS if it shrinks: one line naming it, exit 2 */
        map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, s->fd, 0);
        if (map == MAP_FAILED) map = NULL;
    }
    if (map) {
        /* sin_open read and hashed the first bytes already */
        madvise(map, (size_t)size, MADV_SEQUENTIAL);
        text = map;
        len = (size_t)size;
        /* hashed beside the encoding, on another core when there is one */
        hj = (hash_job){&s->sha, text + s->ilen, len - s->ilen};
        hashing = len > WHOLE_BLOCK && !pthread_create(&hth, NULL, hash_run, &hj);
        if (!hashing) hash_run(&hj);
        s->raw = size;
        s->ipos = s->ilen;
        s->eof = 1;
    } else if (!text) {
        for (;;) {
            if (big_grow((void **)&u->text, &u->textcap, len + (1 << 16), len)) {
                rc = cli_error("%s: out of memory", s->name);
                break;
            }
            size_t got;
            if ((rc = sin_read(s, u->text + len, u->textcap - len, &got))) break;
            if (!got) break;
            len += got;
            progress(o, s->raw, 0);
        }
        text = u->text;
    }
    /* --on-error skip: the whole text is checked before a token is written;
     * fail: each block is, by this thread before the workers get it. */
    size_t bad = !rc && o->skip_errors ? utf8_bad((const unsigned char *)text, len) : len;
    if (!rc && bad == len) {
        uint16_t eot = SHARD_EOT;
        rc = put_tokens(u, &eot, 1);
    }
    /* Blocks of WHOLE_BLOCK cut where bpe_safe_cut says no token changes
     * (so the tokens are those of the whole), encoded by the workers while
     * this thread writes and hashes the blocks before. */
    pool p;
    int pool_on = !rc && bad == len && len;
    if (pool_on) rc = pool_start(&p, v, o, 0, s->name, u);
    for (size_t pos = 0; pool_on && !rc && pos < len;) {
        size_t end = len - pos <= WHOLE_BLOCK ? len : pos + WHOLE_BLOCK, cut = end - pos;
        while (end < len && !(cut = bpe_safe_cut(v, text + pos, end - pos, BPE_SPECIAL_TEXT)))
            end = len - end <= WHOLE_BLOCK ? len : end + WHOLE_BLOCK;   /* no cut in a long piece: take more */
        if (end == len) cut = len - pos;
        size_t b = o->skip_errors ? cut : utf8_bad((const unsigned char *)text + pos, cut);
        if (b < cut) {   /* (reported below, once the blocks before are written) */
            bad = pos + b;
            break;
        }
        job *j = pool_slot(&p, u, &rc);
        if (!j) break;
        j->block = 1;
        j->ext = text + pos;
        j->len = cut;
        j->off0 = pos;
        pool_submit(&p, j);
        pos += cut;
        progress(o, map ? pos : s->raw, 0);
    }
    if (pool_on) {
        if (!rc) rc = pool_drain(&p, u);
        if (rc && p.utf8_bad < len) {   /* (reported below) */
            bad = (size_t)p.utf8_bad;
            rc = 0;
        }
        if (!rc && bad == len) rc = tokens_end(u);
        pool_stop(&p);
    }
    if (!rc && bad < len) {
        if (!o->skip_errors || !o->quiet) {
            progress_clear();
            fprintf(stderr, "gpt2in: %s:%llu: byte %llu: invalid UTF-8%s\n", s->name,
                    (unsigned long long)line_of(text, bad), (unsigned long long)bad,
                    o->skip_errors ? " (document skipped)" : "");
        }
        if (o->skip_errors) u->skipped++;
        else rc = CLI_ERR;
    } else if (!rc) {
        u->docs++;
        prog.docs++;
    }
    if (hashing) pthread_join(hth, NULL);
    if (map) munmap(map, (size_t)size);
    return rc;
}

/* ---- small whole files: batches of documents on the worker threads --------- */

/* A plain file that sin_open read whole: its document joins the batch
 * being filled (fb), sent to the workers once it holds p->batch bytes. Its
 * UTF-8 is checked here, so that messages come in input order. */
/* The batch being filled to the workers (its slot's old buffers back to fb). */
static int small_send(pool *p, job *fb, unit_out *u) {
    if (!fb->nfin) return 0;
    int rc = 0;
    job *j = pool_slot(p, u, &rc);
    if (!j) return rc;
    job t = *j;
    *j = *fb;
    *fb = t;
    j->files = fb->files = 1;
    fb->tlen = fb->nfin = fb->nout = 0;
    fb->docs = 0;
    fb->fatal = 0;
    pool_submit(p, j);
    pool_submitted(p);
    return 0;
}

static int small_file(pool *p, job *fb, sin *s, const shard_input *e, unit_out *u, const shard_opts *o) {
    const char *text = (const char *)s->ib;
    size_t len = s->ilen, bad = utf8_bad((const unsigned char *)text, len);
    s->ipos = s->ilen;
    s->eof = 1;
    if (bad < len) {
        if (!o->skip_errors || !o->quiet) {
            progress_clear();
            fprintf(stderr, "gpt2in: %s:%llu: byte %llu: invalid UTF-8%s\n", s->name,
                    (unsigned long long)line_of(text, bad), (unsigned long long)bad,
                    o->skip_errors ? " (document skipped)" : "");
        }
        if (!o->skip_errors) return CLI_ERR;
    }
    if (grow((void **)&fb->fin, &fb->fincap, fb->nfin + 1, sizeof *fb->fin) ||
        (bad == len && grow((void **)&fb->text, &fb->tcap, fb->tlen + len + 1, 1)))
        return cli_error("out of memory");
    fb->fin[fb->nfin].entry = *e;
    fb->fin[fb->nfin++].skipped = bad < len;
    if (bad == len) {
        if (fb->docs++) fb->text[fb->tlen++] = 0xff;
        memcpy(fb->text + fb->tlen, text, len);
        fb->tlen += len;
    }
    if (fb->tlen < p->batch) return 0;
    return small_send(p, fb, u);
}

/* ---- a unit --------------------------------------------------------------- */

/* The name less .gz/.zst/.zstd ends in .jsonl, .ndjson or .json. */
static int jsonl_name(const char *path) {
    size_t n = strlen(path);
    static const char *const comp[] = {".gz", ".zst", ".zstd"};
    for (int i = 0; i < 3; i++) {
        size_t k = strlen(comp[i]);
        if (n > k && !strcasecmp(path + n - k, comp[i])) {
            n -= k;
            break;
        }
    }
    static const char *const ext[] = {".jsonl", ".ndjson", ".json"};
    for (int i = 0; i < 3; i++) {
        size_t k = strlen(ext[i]);
        if (n > k && !strncasecmp(path + n - k, ext[i], k)) return 1;   /* X.JSONL too */
    }
    return 0;
}

static json_t *stat_json(const char *path, struct stat *st) {
    return json_pack("{s:s, s:I, s:I}", "path", path, "size", (json_int_t)st->st_size, "mtime_ns",
                     (json_int_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec);
}

/* UNIT.json names the same inputs (path, size, mtime), vocabulary and
 * options, and UNIT holds its tokens: returns how many inputs it holds
 * (0: not up to date). They are inputs[0..n), or with unit_bytes the first
 * ones of inputs[0..n) that the grouping by unit_bytes gives. */
static int up_to_date(const char *unit, const char *side, const char *const *inputs, int n, uint64_t unit_bytes,
                      json_t *vocab, json_t *opts) {
    json_t *j = shard_json_load(side, NULL);
    if (!j) return 0;
    int ok = json_equal(json_object_get(j, "vocabulary"), vocab) &&
             json_equal(json_object_get(j, "options"), opts);
    json_t *in = json_object_get(j, "inputs");
    size_t m = json_array_size(in);
    ok = ok && json_is_array(in) && (unit_bytes ? m >= 1 && m <= (size_t)n : m == (size_t)n);
    uint64_t acc = 0;
    for (size_t i = 0; ok && i < m; i++) {
        struct stat st;
        json_t *e = json_array_get(in, i), *want;
        if (stat(inputs[i], &st) || !(want = stat_json(inputs[i], &st))) return json_decref(j), 0;
        ok = json_equal(json_object_get(e, "path"), json_object_get(want, "path")) &&
             json_equal(json_object_get(e, "size"), json_object_get(want, "size")) &&
             json_equal(json_object_get(e, "mtime_ns"), json_object_get(want, "mtime_ns"));
        json_decref(want);
        /* and the same bytes: an edit that kept the size and put the mtime
         * back (cp -p, rsync -t, touch -r) would keep a stale unit. A FIFO
         * or device cannot be read twice: its unit is always redone. */
        char hex[65];
        uint64_t size;
        const char *sha = json_string_value(json_object_get(e, "sha256"));
        ok = ok && S_ISREG(st.st_mode) && sha && !shard_file_sha(inputs[i], hex, &size) && !strcmp(hex, sha);
        acc += S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
        /* the unit is closed at its last input, not before */
        if (unit_bytes) ok = ok && (i + 1 == m ? acc >= unit_bytes || m == (size_t)n : acc < unit_bytes);
    }
    struct stat st;
    json_t *t = json_object_get(j, "tokens");
    ok = ok && json_is_integer(t) && !stat(unit, &st) && S_ISREG(st.st_mode) &&
         (json_int_t)st.st_size == 2 * json_integer_value(t);
    json_decref(j);
    return ok ? (int)m : 0;
}

/* A unit file of the one-machine run: its folder (DIR/NAME_units/) is made
 * with its first unit file, so a run of one unit, the last, which goes to
 * the shards alone, has no folder to make and remove. */
static int unit_open(shard_rfile *f, const char *unit) {
    const char *sl = strrchr(unit, '/');
    char *dir = sl ? strndup(unit, (size_t)(sl - unit)) : NULL;
    if (dir) mkdir(dir, 0777);   /* (it exists, mostly; any other error is the open's to say) */
    free(dir);
    return shard_rfile_open(f, unit);
}

/* --unit alone: UNIT holds the tokens UNIT.json names, as --assemble checks
 * (the one-machine run checks its units itself: unit_intact). */
static int tokens_intact(const char *unit, const char *side) {
    json_t *j = shard_json_load(side, NULL);
    const char *sha = json_string_value(json_object_get(j, "tokens_sha256"));
    char hex[65];
    uint64_t size;
    int ok = sha && !shard_file_sha(unit, hex, &size) && !strcmp(hex, sha);
    json_decref(j);
    return ok;
}

/* The hidden temporaries (embed_writer's ".NAME.tmp.XXXXXX") that a killed
 * --unit run of this very file left: regular files of exactly that name,
 * nothing else. remove: removes them; otherwise refuses (one line) an input
 * that is one of them under any name (a symlink, a hard link), before
 * anything is removed. */
static int stale_temps(const char *path, const char *const *inputs, int n, int remove) {
    const char *sl = strrchr(path, '/'), *base = sl ? sl + 1 : path;
    char *dir = sl ? strndup(path, (size_t)(sl - path) + (sl == path)) : strdup(".");
    size_t keep = strlen(base), max_keep = NAME_MAX - strlen("..tmp.XXXXXX");
    if (keep > max_keep) {   /* shortened as embed_writer shortens it */
        keep = max_keep;
        while (keep > 0 && ((unsigned char)base[keep] & 0xC0) == 0x80) keep--;
    }
    DIR *dh = dir ? opendir(dir) : NULL;
    struct dirent *e;
    int rc = 0;
    while (dh && !rc && (e = readdir(dh))) {
        const char *d = e->d_name, *x = d + 1 + keep + 5;
        if (d[0] != '.' || strncmp(d + 1, base, keep) || strncmp(d + 1 + keep, ".tmp.", 5) || strlen(x) != 6 ||
            strspn(x, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != 6)
            continue;
        struct stat st, in;
        if (fstatat(dirfd(dh), d, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode)) continue;
        if (remove) {
            unlinkat(dirfd(dh), d, 0);
            continue;
        }
        for (int i = 0; i < n && !rc; i++) {
            if (stat(inputs[i], &in) || in.st_dev != st.st_dev || in.st_ino != st.st_ino) continue;
            char full[PATH_MAX + NAME_MAX + 2] = "";   /* the temporary, named as path names its unit */
            snprintf(full, sizeof full, "%.*s%s", (int)(sl ? sl - path + 1 : 0), path, d);
            if (strcmp(full, inputs[i]))
                rc = cli_error("input %s is %s, a temporary file a killed run of --unit %s left, which this run "
                               "removes; move it or rename it", cli_n(inputs[i]), cli_n(full), cli_n(path));
            else
                rc = cli_error("input %s is a temporary file a killed run of --unit %s left, which this run "
                               "removes; move it or rename it", cli_n(inputs[i]), cli_n(path));
        }
    }
    if (dh) closedir(dh);
    free(dir);
    return rc;
}

int shard_unit(const char *unit, const char *const *inputs, int n, uint64_t unit_bytes, const shard_opts *o,
               int *fresh, shard_unit_info *info, int *used) {
    const bpe *v = bpe_gpt2();
    const int n0 = n;   /* n becomes the inputs the unit takes */
    size_t ul = strlen(unit);
    char *side = malloc(ul + 6);
    json_t *vocab = shard_vocab_json(), *opts = shard_options_json(o), *ins = json_array();
    shard_buf itext = {0};
    if (!side || !vocab || !opts || !ins) {
        free(side);
        json_decref(vocab);
        json_decref(opts);
        json_decref(ins);
        return cli_error("out of memory");
    }
    memcpy(side, unit, ul);
    memcpy(side + ul, ".json", 6);
    int rc = CLI_OK;
    unit_out *u = NULL;
    *fresh = 0;
    /* --assemble reads a unit back and its sidecar lies beside it: a device
     * or a pipe cannot be one (/dev/null would get /dev/null.json). */
    struct stat ust;
    if (!stat(unit, &ust) && !S_ISREG(ust.st_mode)) {
        rc = cli_error("shard: --unit %s is not a regular file; a unit is read back by --assemble", cli_q(unit));
        goto done;
    }
    *used = n;
    int m = up_to_date(unit, side, inputs, n, unit_bytes, vocab, opts);
    if (m && !o->in_run && !tokens_intact(unit, side)) m = 0;   /* damaged: redone */
    if (m) {
        if (!o->quiet && !o->in_run) fprintf(stderr, "gpt2in: %s: up to date\n", cli_n(unit));
        *used = m;
        goto done;
    }
    /* (the one-machine run checked its inputs against its units already:
     * check_inputs_not_outputs, by inode, without a stat an input here) */
    if (!o->in_run && (cli_output_check("shard", "--unit", unit, inputs, (size_t)n, 0) ||
                       cli_output_check("shard", "--unit", side, inputs, (size_t)n, 0))) {
        rc = CLI_ERR;
        goto done;
    }
    if (!o->in_run) {   /* what a killed run of this unit left (not an input) */
        if (stale_temps(unit, inputs, n, 0) || stale_temps(side, inputs, n, 0)) {
            rc = CLI_ERR;
            goto done;
        }
        stale_temps(unit, inputs, n, 1);
        stale_temps(side, inputs, n, 1);
    }
    /* The sidecar says the unit is complete: it goes first, comes back last. */
    if (unlink(side) && errno != ENOENT) {
        rc = cli_error("%s: cannot remove: %s", cli_n(side), strerror(errno));
        goto done;
    }
    embed_error eerr;
    u = calloc(1, sizeof *u);
    if (!u || !(u->ib = malloc(IBUF)) || !(u->ws = calloc(64, sizeof *u->ws)) || shard_sha_init(&u->unit_sha)) {
        rc = cli_error("out of memory");
        goto done;
    }
    u->unit = unit;
    u->one = n == 1;   /* (or, with unit_bytes, once the first input is known to fill the unit) */
    u->tee = o->tee;
    u->rf.fd = -1;
    u->defer = o->in_run && o->tee && o->to_end;
    if (u->defer) u->tee0 = shard_tee_pos(o->tee);
    if (u->defer ? 0 : o->in_run ? unit_open(&u->rf, unit) : !(u->w = cli_writer_open(unit, &eerr))) {
        rc = o->in_run ? CLI_ERR : cli_error("%s", eerr.msg);
        goto done;
    }
    pool fp;              /* small files' workers, started at the first one */
    int fp_on = 0;
    job fb;               /* the batch of small files being filled */
    memset(&fb, 0, sizeof fb);
    fb.files = 1;
    uint64_t acc = 0;      /* bytes of the inputs on disk (unit_bytes) */
    for (int i = 0; i < n && !rc; i++) {
        int f = open(inputs[i], O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (f < 0) {
            rc = cli_error("%s: cannot open: %s", cli_n(inputs[i]), strerror(errno));
            break;
        }
        if (fstat(f, &st) || S_ISDIR(st.st_mode)) {
            rc = cli_error("%s: not a file", cli_n(inputs[i]));
            close(f);
            break;
        }
        if (unit_bytes) {   /* the unit's last input? */
            acc += S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
            if (acc >= unit_bytes) n = i + 1;
            if (i == 0) u->one = n == 1;
        }
        u->last = u->defer && i == n0 - 1;
        char namebuf[512];
        sin s;
        /* (a size of 0 may be a /proc file's: read to its end) */
        rc = sin_open(&s, f, S_ISREG(st.st_mode) && st.st_size > 0 ? (uint64_t)st.st_size : UINT64_MAX,
                      cli_name(inputs[i], namebuf, sizeof namebuf), u->ib);
        int jsonl = o->format == SHARD_FMT_JSONL || (o->format == SHARD_FMT_AUTO && jsonl_name(inputs[i]));
        uint64_t size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
        int small = !rc && !jsonl && !o->split_lines && s.kind == IN_RAW && s.ipos == 0 && s.ilen < IBUF &&
                    s.eof;
        if (!rc && !small && fp_on) {   /* the small files before it go first */
            rc = small_send(&fp, &fb, u);
            if (!rc) rc = pool_drain(&fp, u);
        }
        if (!rc && small && !fp_on) {
            fp_on = 1;
            rc = pool_start(&fp, v, o, 0, "", u);
        }
        if (!rc && !small) {   /* (u's per-input figures are free now) */
            u->docs = u->skipped = u->tokens = 0;
            if (shard_sha_init(&u->in_sha)) rc = cli_error("out of memory");
            else rc = jsonl || o->split_lines ? lines(&s, u, v, o, jsonl) : whole_file(&s, size, u, v, o);
        }
        if (!rc) {
            char hin[65];
            shard_sha_hex(&s.sha, hin);
            shard_input e = {.path = inputs[i], .size = s.raw,
                             .mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec};
            memcpy(e.sha256, hin, sizeof hin);
            if (small) rc = small_file(&fp, &fb, &s, &e, u, o);   /* its figures once its batch is encoded */
            else rc = input_done(u, &e);
        }
        prog.done += s.raw;
        shard_sha_free(&u->in_sha);
        sin_close(&s);
        close(f);
    }
    *used = n;
    if (!rc && fp_on && !(rc = small_send(&fp, &fb, u))) rc = pool_drain(&fp, u);
    if (!rc) rc = tokens_end(u);
    if (fp_on) pool_stop(&fp);
    job_free(&fb);
    if (!rc) rc = flush_tokens(u);
    if (!rc && u->defer && n < n0) {   /* not the run's last unit after all: its file now */
        u->defer = 0;
        if (!(rc = unit_open(&u->rf, unit)))
            rc = shard_tee_copy(o->tee, u->tee0, shard_tee_pos(o->tee), u->rf.fd, unit, u->one ? NULL : &u->unit_sha);
    }
    if (rc) {
        if (u->w) cli_writer_abort(u->w);
        shard_rfile_abort(&u->rf);
        goto done;
    }
    if (!u->defer &&
        (u->w ? cli_writer_commit(u->w, &eerr) && cli_error("%s", eerr.msg) : shard_rfile_commit(&u->rf, unit, 0))) {
        rc = CLI_ERR;
        goto done;
    }
    char htok[65];
    shard_sha_hex(&u->unit_sha, htok);
    if (u->one) memcpy(htok, u->unit_hex, sizeof htok);
    /* (the run's last unit: no file, no sidecar; its figures go to info) */
    json_t *j = u->defer ? NULL : json_pack("{s:s, s:i, s:s, s:O, s:O, s:O, s:I, s:I, s:I, s:s}", "format", "gpt2in-unit",
                          "version", 1, "tool", SHARD_TOOL, "vocabulary", vocab, "options", opts, "inputs", ins,
                          "documents", (json_int_t)u->all_docs, "skipped", (json_int_t)u->all_skipped, "tokens",
                          (json_int_t)u->all_tokens, "tokens_sha256", htok);
    if (!u->defer) shard_inputs_text(&itext, u->ins, u->nins, 0);
    char *txt = j ? shard_dumps(j, JSON_COMPACT, &itext) : NULL;
    json_decref(j);
    embed_writer *w = txt && !o->in_run ? cli_writer_open(side, &eerr) : NULL;
    shard_rfile sf = {-1, NULL, 0};
    if (u->defer) {
    } else if (!txt) {
        rc = cli_error("out of memory");
    } else if (o->in_run) {   /* as its unit: not fsynced */
        if (!(rc = shard_rfile_open(&sf, side)) && !(rc = shard_rfile_write(&sf, side, txt, strlen(txt))) &&
            !(rc = shard_rfile_write(&sf, side, "\n", 1)))
            rc = shard_rfile_commit(&sf, side, 0);
        if (rc) shard_rfile_abort(&sf);
    } else if (!w) rc = cli_error("%s", eerr.msg);
    else if (embed_writer_write(w, txt, strlen(txt), &eerr) || embed_writer_write(w, "\n", 1, &eerr)) {
        cli_writer_abort(w);
        rc = cli_error("%s", eerr.msg);
    } else if (cli_writer_commit(w, &eerr)) {
        rc = cli_error("%s", eerr.msg);
    }
    if (!rc) *fresh = 1;
    if (!rc && info) {
        info->in = u->ins;
        info->nin = u->nins;
        u->ins = NULL;
        info->documents = u->all_docs;
        info->skipped = u->all_skipped;
        info->tokens = u->all_tokens;
        memcpy(info->tokens_sha256, htok, sizeof htok);
    }
    free(txt);
done:
    if (u) {
        shard_sha_free(&u->unit_sha);
        free(u->text);
        free(u->ib);
        free(u->ins);
        for (int i = 0; i < 64; i++) bpe_encoder_free(u->enc[i]);
        for (int i = 0; u->ws && i < 64; i++) scratch_free(&u->ws[i]);
        free(u->ws);
    }
    free(u);
    free(side);
    json_decref(vocab);
    json_decref(opts);
    json_decref(ins);
    free(itext.p);
    return rc;
}
