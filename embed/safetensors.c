/* safetensors.c - reading (mmap, strict validation) and crash-safe writing of
 * .safetensors files.
 *
 * Layout: u64 little-endian N, N bytes of UTF-8 JSON, then the data buffer.
 * The reader validates everything the reference (huggingface/safetensors)
 * does, plus duplicate names, before handing out a single pointer: the JSON
 * is parsed by a small schema-driven parser (no recursion, no doubles,
 * unsigned integers with overflow checks), and nothing is allocated from a
 * length that has not been checked against the file size first.
 *
 * Mapped data is rarely aligned (the real GPT-2 file's data starts at byte
 * 14291), so tensors are handed out as byte pointers; read them with memcpy. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shown.h"

#include "embed.h"
#include "st_internal.h"

#define ST_MAX_HEADER 100000000u /* the reference's limit: 10^8 bytes */


/* ---- errors --------------------------------------------------------------- */

static void verror(embed_error *err, const char *fmt, va_list ap) {
    if (!err) return;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    /* one line, whatever the file contained */
    for (char *p = err->msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

void embed_st_error(embed_error *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    verror(err, fmt, ap);
    va_end(ap);
}

int embed_fail(embed_error *err, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    verror(err, fmt, ap);
    va_end(ap);
    return code;
}

/* s quoted, each byte a message may not show as it is written \xNN, cut
 * after max_in bytes of s (with "...") or where cap ends. */
static const char *quote(const char *s, size_t max_in, char *buf, size_t cap) {
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0, n = strlen(s);
    if (cap < 8) return "";
    buf[o++] = '"';
    for (size_t i = 0; i < n;) {
        size_t k = gpt2in_shown_len(u + i, n - i);
        if (o + (k ? k : 4) + 5 >= cap || i >= max_in) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (k) {
            memcpy(buf + o, s + i, k);
            o += k;
            i += k;
        } else {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", u[i++]);
        }
    }
    buf[o++] = '"';
    buf[o] = 0;
    return buf;
}

/* A name from a file as it may appear in a message: quoted, escaped, cut
 * at 80 bytes. */
const char *embed_st_quote(const char *s, char *buf, size_t cap) { return quote(s, 80, buf, cap); }

/* A path as messages show it (malloc'd, NULL when out of memory): as it is
 * when every character may be shown, else quoted and escaped in full. */
static char *shown_path(const char *path) {
    size_t n = strlen(path), i = 0, k;
    while (i < n && (k = gpt2in_shown_len((const unsigned char *)path + i, n - i))) i += k;
    if (i == n) return gpt2in_strdup(path);
    size_t cap = 4 * n + 8;
    char *b = gpt2in_malloc(cap);
    if (b) quote(path, n, b, cap);
    return b;
}

/* ---- a strict JSON parser for exactly the safetensors schema -------------- */

typedef struct {
    const unsigned char *s; /* the header text */
    size_t n, i;
    char *out;              /* string arena, grows from the front */
    size_t out_len;
    const char *file;
    embed_error *err;
} jp;

static int jp_fail(jp *p, const char *what) {
    embed_st_error(p->err, "%s: header JSON: %s at header byte %zu (file byte %zu)", p->file,
                    what, p->i, p->i + 8);
    return EMBED_ERR_FORMAT;
}

static void jp_ws(jp *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
                           p->s[p->i] == '\r'))
        p->i++;
}

static int jp_expect(jp *p, char c, const char *what) {
    jp_ws(p);
    if (p->i >= p->n || p->s[p->i] != (unsigned char)c) return jp_fail(p, what);
    p->i++;
    return 0;
}

/* Is the next non-space byte c? (consumes it if so) */
static int jp_peek(jp *p, char c) {
    jp_ws(p);
    if (p->i < p->n && p->s[p->i] == (unsigned char)c) {
        p->i++;
        return 1;
    }
    return 0;
}

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int jp_hex4(jp *p, unsigned *v) {
    if (p->n - p->i < 4) return jp_fail(p, "truncated \\u escape");
    unsigned x = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(p->s[p->i + k]);
        if (h < 0) return jp_fail(p, "bad \\u escape");
        x = x << 4 | (unsigned)h;
    }
    p->i += 4;
    *v = x;
    return 0;
}

/* Decodes a string into the arena; *str points at its first byte. The input
 * was checked as UTF-8 beforehand, so only escapes need care. The decoded
 * form is never longer than the source, so the arena (sized to the header)
 * cannot overflow. */
static int jp_string(jp *p, const char **str) {
    int rc = jp_expect(p, '"', "expected a string");
    if (rc) return rc;
    char *o = p->out + p->out_len;
    char *start = o;
    for (;;) {
        if (p->i >= p->n) return jp_fail(p, "unterminated string");
        unsigned char c = p->s[p->i];
        if (c == '"') {
            p->i++;
            break;
        }
        if (c < 0x20) return jp_fail(p, "control character in a string");
        if (c != '\\') {
            *o++ = (char)c;
            p->i++;
            continue;
        }
        p->i++;
        if (p->i >= p->n) return jp_fail(p, "unterminated string");
        c = p->s[p->i++];
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp;
            if ((rc = jp_hex4(p, &cp))) return rc;
            if (cp >= 0xdc00 && cp <= 0xdfff) return jp_fail(p, "lone low surrogate in \\u escape");
            if (cp >= 0xd800 && cp <= 0xdbff) {
                unsigned lo;
                if (p->n - p->i < 2 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u')
                    return jp_fail(p, "lone high surrogate in \\u escape");
                p->i += 2;
                if ((rc = jp_hex4(p, &lo))) return rc;
                if (lo < 0xdc00 || lo > 0xdfff)
                    return jp_fail(p, "high surrogate not followed by a low one");
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            /* a NUL cannot live in a C string name: refuse rather than cut */
            if (cp == 0) return jp_fail(p, "\\u0000 in a string");
            /* escapes are >= 6 source bytes, UTF-8 output <= 4: still no overflow */
            if (cp < 0x80) {
                *o++ = (char)cp;
            } else if (cp < 0x800) {
                *o++ = (char)(0xc0 | cp >> 6);
                *o++ = (char)(0x80 | (cp & 0x3f));
            } else if (cp < 0x10000) {
                *o++ = (char)(0xe0 | cp >> 12);
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                *o++ = (char)(0x80 | (cp & 0x3f));
            } else {
                *o++ = (char)(0xf0 | cp >> 18);
                *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                *o++ = (char)(0x80 | (cp & 0x3f));
            }
            break;
        }
        default: p->i--; return jp_fail(p, "bad escape in a string");
        }
    }
    *o++ = 0;
    p->out_len = (size_t)(o - p->out);
    *str = start;
    return 0;
}

/* An unsigned integer: digits only (no sign, fraction or exponent, no leading
 * zeros), exact up to 2^64-1, never through a double. */
static int jp_u64(jp *p, uint64_t *v, const char *what) {
    char msg[128];
    jp_ws(p);
    size_t st = p->i;
    if (p->i < p->n && p->s[p->i] == '-') {
        snprintf(msg, sizeof msg, "%s is negative", what);
        return jp_fail(p, msg);
    }
    if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') {
        snprintf(msg, sizeof msg, "%s is not an unsigned integer", what);
        return jp_fail(p, msg);
    }
    uint64_t x = 0;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
        unsigned d = p->s[p->i] - '0';
        if (x > (UINT64_MAX - d) / 10) {
            p->i = st;
            snprintf(msg, sizeof msg, "%s does not fit in 64 bits", what);
            return jp_fail(p, msg);
        }
        x = x * 10 + d;
        p->i++;
    }
    if (p->i - st > 1 && p->s[st] == '0') {
        p->i = st;
        snprintf(msg, sizeof msg, "%s has a leading zero", what);
        return jp_fail(p, msg);
    }
    if (p->i < p->n && (p->s[p->i] == '.' || p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        snprintf(msg, sizeof msg, "%s is not an unsigned integer (fraction or exponent)", what);
        return jp_fail(p, msg);
    }
    *v = x;
    return 0;
}

/* ---- UTF-8 --------------------------------------------------------------- */

/* Returns the offset of the first invalid byte, or n if the text is valid
 * (shortest forms only, no surrogates, <= U+10FFFF). */
size_t embed_st_utf8_check(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) len = 2, cp = c & 0x1f, min = 0x80;
        else if (c >= 0xe0 && c <= 0xef) len = 3, cp = c & 0x0f, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4) len = 4, cp = c & 0x07, min = 0x10000;
        else return i;
        if (n - i < len) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return i;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += len;
    }
    return n;
}

/* ---- validation ---------------------------------------------------------- */

static uint64_t rd_u64le(const unsigned char *b) {
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) v = v << 8 | b[k];
    return v;
}

static int cmp_tensor(const void *a, const void *b) {
    const embed_tensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Element count and byte size of a shape; 0 on overflow or a non-whole byte
 * count (F4/F6 with an odd number of elements), with *why set. */
int embed_st_shape_bytes(embed_dtype dt, int ndim, const uint64_t *shape, uint64_t *count,
                      uint64_t *bytes) {
    uint64_t c = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] != 0 && c > UINT64_MAX / shape[d]) return -1;
        c *= shape[d];
    }
    uint64_t bits = embed_dtype_bits(dt);
    if (c != 0 && c > UINT64_MAX / bits) return -1;
    if ((c * bits) % 8) return -2;
    *count = c;
    *bytes = c * bits / 8;
    return 0;
}

/* "F32 [2, 2]" into buf. */
const char *embed_st_shape_str(embed_dtype dt, int ndim, const uint64_t *shape, char *buf,
                            size_t cap) {
    size_t o = (size_t)snprintf(buf, cap, "%s [", embed_dtype_name(dt));
    for (int d = 0; d < ndim && o < cap; d++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%llu", d ? ", " : "",
                              (unsigned long long)shape[d]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
    return buf;
}

/* Parses one tensor entry {"dtype":..., "shape":[...], "data_offsets":[b,e]}. */
static int parse_entry(jp *p, embed_tensor *t) {
    char q[128], msg[256];
    int rc, have_dt = 0, have_shape = 0, have_off = 0;
    if ((rc = jp_expect(p, '{', "a tensor entry must be an object"))) return rc;
    if (jp_peek(p, '}')) goto check;
    for (;;) {
        const char *key;
        size_t key_at = p->i;
        if ((rc = jp_string(p, &key))) return rc;
        p->out_len -= strlen(key) + 1; /* keys of an entry need no storage */
        if ((rc = jp_expect(p, ':', "expected ':'"))) return rc;
        if (!strcmp(key, "dtype")) {
            if (have_dt++) return p->i = key_at, jp_fail(p, "duplicate field \"dtype\"");
            const char *v;
            jp_ws(p);
            size_t at = p->i;
            if ((rc = jp_string(p, &v))) return rc;
            int dt = embed_dtype_from_name(v);
            if (dt < 0) {
                p->i = at;
                snprintf(msg, sizeof msg, "tensor %s: unknown dtype %s", t->name,
                         embed_st_quote(v, q, sizeof q));
                return jp_fail(p, msg);
            }
            p->out_len -= strlen(v) + 1;
            t->dtype = (embed_dtype)dt;
        } else if (!strcmp(key, "shape")) {
            if (have_shape++) return p->i = key_at, jp_fail(p, "duplicate field \"shape\"");
            if ((rc = jp_expect(p, '[', "\"shape\" must be an array"))) return rc;
            t->ndim = 0;
            if (!jp_peek(p, ']')) {
                for (;;) {
                    if (t->ndim == EMBED_MAX_DIMS)
                        return jp_fail(p, "shape has more than 8 dimensions");
                    if ((rc = jp_u64(p, &t->shape[t->ndim], "a shape entry"))) return rc;
                    t->ndim++;
                    if (jp_peek(p, ']')) break;
                    if ((rc = jp_expect(p, ',', "expected ',' or ']' in shape"))) return rc;
                }
            }
        } else if (!strcmp(key, "data_offsets")) {
            if (have_off++) return p->i = key_at, jp_fail(p, "duplicate field \"data_offsets\"");
            if ((rc = jp_expect(p, '[', "\"data_offsets\" must be an array"))) return rc;
            if ((rc = jp_u64(p, &t->begin, "a data offset"))) return rc;
            if ((rc = jp_expect(p, ',', "\"data_offsets\" must hold exactly 2 numbers"))) return rc;
            if ((rc = jp_u64(p, &t->end, "a data offset"))) return rc;
            if ((rc = jp_expect(p, ']', "\"data_offsets\" must hold exactly 2 numbers"))) return rc;
        } else {
            p->i = key_at;
            snprintf(msg, sizeof msg, "tensor %s: unknown field %s", t->name,
                     embed_st_quote(key, q, sizeof q));
            return jp_fail(p, msg);
        }
        if (jp_peek(p, '}')) break;
        if ((rc = jp_expect(p, ',', "expected ',' or '}'"))) return rc;
    }
check:
    if (!have_dt || !have_shape || !have_off) {
        snprintf(msg, sizeof msg, "tensor %s: missing field \"%s\"", t->name,
                 !have_dt ? "dtype" : !have_shape ? "shape" : "data_offsets");
        p->i--;
        return jp_fail(p, msg);
    }
    return 0;
}

static int parse_metadata_keys(jp *p, const char ***meta, size_t *n_meta, size_t *cap, embed_keyset *seen) {
    int rc;
    char q[128], msg[256];
    if ((rc = jp_expect(p, '{', "\"__metadata__\" must be an object"))) return rc;
    if (jp_peek(p, '}')) return 0;
    for (;;) {
        const char *k, *v;
        size_t at = p->i, earlier;
        if ((rc = jp_string(p, &k))) return rc;
        if (*n_meta == *cap) {
            size_t nc = *cap ? *cap * 2 : 8;
            const char **nm = gpt2in_realloc(*meta, nc * 2 * sizeof *nm);
            if (!nm) return embed_st_error(p->err, "%s: out of memory", p->file), EMBED_ERR_NOMEM;
            *meta = nm;
            *cap = nc;
        }
        (*meta)[2 * *n_meta] = k;
        rc = embed_keyset_add(seen, *meta, *n_meta, &earlier);
        if (rc < 0) return embed_st_error(p->err, "%s: out of memory", p->file), EMBED_ERR_NOMEM;
        if (rc) {
            p->i = at;
            snprintf(msg, sizeof msg, "duplicate __metadata__ key %s",
                     embed_st_quote(k, q, sizeof q));
            return jp_fail(p, msg);
        }
        if ((rc = jp_expect(p, ':', "expected ':'"))) return rc;
        jp_ws(p);
        if (p->i < p->n && p->s[p->i] != '"') {
            snprintf(msg, sizeof msg, "__metadata__ value of %s is not a string",
                     embed_st_quote(k, q, sizeof q));
            return jp_fail(p, msg);
        }
        if ((rc = jp_string(p, &v))) return rc;
        (*meta)[2 * *n_meta + 1] = v;
        (*n_meta)++;
        if (jp_peek(p, '}')) return 0;
        if ((rc = jp_expect(p, ',', "expected ',' or '}'"))) return rc;
    }
}

static int parse_metadata(jp *p, const char ***meta, size_t *n_meta, size_t *cap) {
    embed_keyset seen = {0};
    int rc = parse_metadata_keys(p, meta, n_meta, cap, &seen);
    embed_keyset_free(&seen);
    return rc;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(embed_tensor *const *)a)->name, (*(embed_tensor *const *)b)->name);
}

/* Validates the image and fills f (base, len, name already set). */
static int st_validate(embed_file *f, embed_error *err) {
    const char *fn = f->name;
    char q[128], s1[256], s2[256];
    if (f->len >= 23 && !memcmp(f->base, "version https://git-lfs", 23)) {
        embed_st_error(err, "%s: this is a Git LFS pointer file, not the weights (fetch the "
                             "real file: git lfs pull, or gpt2_weights/download.sh)", fn);
        return EMBED_ERR_FORMAT;
    }
    if (f->len < 8) {
        embed_st_error(err, "%s: file is %zu bytes, shorter than the 8-byte header length",
                        fn, f->len);
        return EMBED_ERR_FORMAT;
    }
    uint64_t n = rd_u64le(f->base);
    if (n > ST_MAX_HEADER) {
        embed_st_error(err, "%s: header length %llu is over the limit of 100000000 bytes: not "
                             "a safetensors file, nor any other kind gpt2in reads (.npy, llm.c "
                             "checkpoint, GGUF)", fn, (unsigned long long)n);
        return EMBED_ERR_FORMAT;
    }
    if (n > f->len - 8) {
        embed_st_error(err, "%s: header length %llu runs past the end of the file (%zu bytes)",
                        fn, (unsigned long long)n, f->len);
        return EMBED_ERR_FORMAT;
    }
    const unsigned char *h = f->base + 8;
    size_t bad = embed_st_utf8_check(h, (size_t)n);
    if (bad < n) {
        embed_st_error(err, "%s: header is not valid UTF-8 at header byte %zu (file byte %zu)",
                        fn, bad, bad + 8);
        return EMBED_ERR_FORMAT;
    }
    f->header_len = (size_t)n;
    /* n <= file size, so these allocations are bounded by what is really there.
     * Every tensor entry takes more than 40 header bytes. */
    f->strings = gpt2in_malloc((size_t)n + 1);
    size_t cap_t = (size_t)n / 40 + 1;
    f->t = gpt2in_malloc(cap_t * sizeof *f->t);
    if (!f->strings || !f->t) {
        embed_st_error(err, "%s: out of memory for a %llu-byte header", fn,
                        (unsigned long long)n);
        return EMBED_ERR_NOMEM;
    }
    jp p = {h, (size_t)n, 0, f->strings, 0, fn, err};
    size_t meta_cap = 0;
    int rc, have_meta = 0;
    if ((rc = jp_expect(&p, '{', "the header must be a JSON object"))) return rc;
    if (!jp_peek(&p, '}')) {
        for (;;) {
            const char *key;
            size_t key_at = (jp_ws(&p), p.i);
            if ((rc = jp_string(&p, &key))) return rc;
            if ((rc = jp_expect(&p, ':', "expected ':'"))) return rc;
            if (!strcmp(key, "__metadata__")) {
                if (have_meta++) return p.i = key_at, jp_fail(&p, "duplicate \"__metadata__\"");
                rc = parse_metadata(&p, &f->meta, &f->n_meta, &meta_cap);
                if (rc) return rc;
                f->has_meta = 1;
            } else {
                if (f->n_t == cap_t) return jp_fail(&p, "too many tensors for the header size");
                embed_tensor *t = &f->t[f->n_t++];
                memset(t, 0, sizeof *t);
                t->name = key;
                if ((rc = parse_entry(&p, t))) return rc;
            }
            if (jp_peek(&p, '}')) break;
            if ((rc = jp_expect(&p, ',', "expected ',' or '}'"))) return rc;
        }
    }
    jp_ws(&p);
    if (p.i < p.n) {
        if (h[p.i] == 0) return jp_fail(&p, "NUL byte after the JSON (NUL padding is not allowed)");
        return jp_fail(&p, "trailing characters after the JSON object");
    }

    /* duplicate names (the reference only notices them indirectly) */
    if (f->n_t > 1) {
        embed_tensor **by = gpt2in_malloc(f->n_t * sizeof *by);
        if (!by) return embed_st_error(err, "%s: out of memory", fn), EMBED_ERR_NOMEM;
        for (size_t i = 0; i < f->n_t; i++) by[i] = &f->t[i];
        qsort(by, f->n_t, sizeof *by, cmp_name);
        for (size_t i = 1; i < f->n_t; i++)
            if (!strcmp(by[i]->name, by[i - 1]->name)) {
                embed_st_error(err, "%s: tensor %s appears twice in the header", fn,
                                embed_st_quote(by[i]->name, q, sizeof q));
                free(by);
                return EMBED_ERR_FORMAT;
            }
        free(by);
    }

    /* sizes, then contiguity in offset order */
    for (size_t i = 0; i < f->n_t; i++) {
        embed_tensor *t = &f->t[i];
        uint64_t count, bytes;
        embed_st_shape_str(t->dtype, t->ndim, t->shape, s1, sizeof s1);
        if (t->end < t->begin) {
            embed_st_error(err, "%s: tensor %s: data_offsets [%llu, %llu] end before they begin",
                            fn, embed_st_quote(t->name, q, sizeof q), (unsigned long long)t->begin,
                            (unsigned long long)t->end);
            return EMBED_ERR_FORMAT;
        }
        int r = embed_st_shape_bytes(t->dtype, t->ndim, t->shape, &count, &bytes);
        if (r == -1) {
            embed_st_error(err, "%s: tensor %s: %s has more than 2^64 bits of data", fn,
                            embed_st_quote(t->name, q, sizeof q), s1);
            return EMBED_ERR_FORMAT;
        }
        if (r == -2) {
            embed_st_error(err, "%s: tensor %s: %s is not a whole number of bytes", fn,
                            embed_st_quote(t->name, q, sizeof q), s1);
            return EMBED_ERR_FORMAT;
        }
        if (bytes != t->end - t->begin) {
            embed_st_error(err, "%s: tensor %s: data_offsets [%llu, %llu] hold %llu bytes but "
                                 "%s needs %llu", fn, embed_st_quote(t->name, q, sizeof q),
                            (unsigned long long)t->begin, (unsigned long long)t->end,
                            (unsigned long long)(t->end - t->begin), s1,
                            (unsigned long long)bytes);
            return EMBED_ERR_FORMAT;
        }
    }
    qsort(f->t, f->n_t, sizeof *f->t, cmp_tensor);
    uint64_t data_len = f->len - 8 - n, pos = 0;
    for (size_t i = 0; i < f->n_t; i++) {
        embed_tensor *t = &f->t[i];
        if (t->begin != pos) {
            if (t->begin > pos)
                snprintf(s2, sizeof s2, "a hole of %llu bytes before it",
                         (unsigned long long)(t->begin - pos));
            else
                snprintf(s2, sizeof s2, "it overlaps the previous tensor (which ends at %llu)",
                         (unsigned long long)pos);
            embed_st_error(err, "%s: tensor %s: data_offsets [%llu, %llu] should begin at %llu: %s",
                            fn, embed_st_quote(t->name, q, sizeof q), (unsigned long long)t->begin,
                            (unsigned long long)t->end, (unsigned long long)pos, s2);
            return EMBED_ERR_FORMAT;
        }
        if (t->end > data_len) {
            embed_st_error(err, "%s: tensor %s: data_offsets [%llu, %llu] run past the end of the "
                                 "data (%llu bytes; file truncated?)", fn,
                            embed_st_quote(t->name, q, sizeof q), (unsigned long long)t->begin,
                            (unsigned long long)t->end, (unsigned long long)data_len);
            return EMBED_ERR_FORMAT;
        }
        pos = t->end;
        t->data = f->base + 8 + n + t->begin;
    }
    if (pos != data_len) {
        embed_st_error(err, "%s: the tensors cover %llu data bytes but the file holds %llu "
                             "(%llu trailing bytes)", fn, (unsigned long long)pos,
                        (unsigned long long)data_len, (unsigned long long)(data_len - pos));
        return EMBED_ERR_FORMAT;
    }
    return 0;
}

static embed_file *st_new(const char *name, embed_error *err) {
    embed_file *f = gpt2in_calloc(1, sizeof *f);
    if (f) f->fd = -1, f->kind = EMBED_KIND_SAFETENSORS;
    if (f) f->name = shown_path(name ? name : "(memory)");
    if (!f || !f->name) {
        free(f);
        embed_st_error(err, "%s: out of memory", name ? name : "(memory)");
        return NULL;
    }
    return f;
}

/* The file's kind, and its validation by that kind's reader. `want` is
 * the kind the caller needs (EMBED_KIND_UNKNOWN: any table kind). Files of
 * no recognised kind go to the safetensors reader, whose messages say what
 * is wrong with them as a safetensors file. */
static int validate_any(embed_file *f, embed_kind want, embed_error *err) {
    embed_kind k = embed_detect(f->base, f->len);
    int table = k == EMBED_KIND_SAFETENSORS || k == EMBED_KIND_NPY ||
                k == EMBED_KIND_LLMC_MODEL || k == EMBED_KIND_GGUF;
    /* no magic at all (or empty, or a Git LFS pointer): what is wrong with
     * it is best said by the safetensors reader, the format without one */
    int unnamed = k == EMBED_KIND_UNKNOWN || k == EMBED_KIND_EMPTY || k == EMBED_KIND_GIT_LFS;
    /* bytes that are never UTF-8 (a u64 length like 0xff..ff) are not text */
    for (size_t i = 0; k == EMBED_KIND_TEXT && i < f->len && i < 16; i++)
        if (f->base[i] >= 0xf5 || f->base[i] == 0xc0 || f->base[i] == 0xc1) unnamed = 1;
    if (want != EMBED_KIND_UNKNOWN && k != want &&
        !(unnamed && want == EMBED_KIND_SAFETENSORS)) {
        embed_st_error(err, "%s is %s, not %s", f->name, embed_kind_desc(k), embed_kind_desc(want));
        return EMBED_ERR_FORMAT;
    }
    if (!table && !unnamed) {
        embed_st_error(err, "%s is %s, not a weights file (safetensors, .npy, llm.c checkpoint "
                            "or GGUF)", f->name, embed_kind_desc(k));
        return EMBED_ERR_FORMAT;
    }
    f->kind = table ? k : EMBED_KIND_SAFETENSORS;
    switch (f->kind) {
    case EMBED_KIND_NPY: return embed_npyt_validate(f, err);
    case EMBED_KIND_LLMC_MODEL: return embed_llmc_validate(f, err);
    case EMBED_KIND_GGUF: return embed_gguf_validate(f, err);
    default: return st_validate(f, err);
    }
}

embed_file *embed_open_mem_kind(const void *buf, size_t len, const char *name, embed_kind want,
                                embed_error *err) {
    embed_file *f = st_new(name, err);
    if (!f) return NULL;
    f->base = buf;
    f->len = len;
    if (validate_any(f, want, err)) {
        embed_close(f);
        return NULL;
    }
    return f;
}

embed_file *embed_open_mem(const void *buf, size_t len, const char *name, embed_error *err) {
    return embed_open_mem_kind(buf, len, name, EMBED_KIND_UNKNOWN, err);
}

embed_file *embed_open(const char *path, embed_error *err) {
    return embed_open_kind(path, EMBED_KIND_UNKNOWN, err);
}

embed_file *embed_open_kind(const char *path, embed_kind want, embed_error *err) {
    if (!path) {
        embed_fail(err, EMBED_ERR_ARG, "embed_open: NULL path");
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        char *shown = shown_path(path);
        embed_st_error(err, "%s: cannot open: %s", shown ? shown : "(a file)", strerror(e));
        free(shown);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        char *shown = shown_path(path);
        embed_st_error(err, "%s: %s", shown ? shown : "(a file)",
                       S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
        free(shown);
        close(fd);
        return NULL;
    }
    embed_file *f = st_new(path, err);
    if (!f) {
        close(fd);
        return NULL;
    }
    f->len = (size_t)st.st_size;
    static const unsigned char empty[1];
    if (f->len == 0) {
        f->base = empty; /* mmap of 0 bytes is an error; validation reports it */
    } else {
        void *m = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            embed_st_error(err, "%s: cannot map %zu bytes: %s", f->name, f->len, strerror(errno));
            close(fd);
            free(f->name);
            free(f);
            return NULL;
        }
        f->base = m;
        f->mapped = 1;
    }
    f->fd = fd;
    if (validate_any(f, want, err)) {
        embed_close(f);
        return NULL;
    }
    return f;
}

void embed_close(embed_file *f) {
    if (!f) return;
    if (f->mapped) munmap((void *)f->base, f->len);
    if (f->fd >= 0) close(f->fd);
    free(f->t);
    free(f->meta);
    free(f->strings);
    free(f->gguf_kv_at);
    free(f->gguf_type);
    free(f->gguf_names);
    free(f->name);
    free(f);
}

embed_kind embed_file_kind(const embed_file *f) { return f->kind; }

void embed_file_info(const embed_file *f, embed_info *out) {
    memset(out, 0, sizeof *out);
    out->kind = f->kind;
    out->data_start = f->kind == EMBED_KIND_SAFETENSORS ? 8 + f->header_len : f->header_len;
    if (f->kind == EMBED_KIND_LLMC_MODEL) {
        memcpy(out->llmc, f->llmc, sizeof out->llmc);
        out->version = (unsigned)f->llmc[1];
    } else if (f->kind == EMBED_KIND_GGUF) {
        out->version = f->gguf_version;
        out->alignment = f->gguf_align;
        out->gguf_kv = f->gguf_n_kv;
    } else if (f->kind == EMBED_KIND_NPY) {
        out->version = f->base[6];
    }
}

int embed_st_pread_fd(const embed_file *f, const unsigned char *p, size_t rows, size_t budget,
                      uint64_t *offset) {
    if (f->fd < 0 || p < f->base || p >= f->base + f->len) return -1;
    /* The count is a cache of how the file has been used, not part of its
     * value: the struct is the library's own (malloc), so it may change. */
    atomic_size_t *read = &((embed_file *)f)->rows_read;
    size_t seen = atomic_load(read);
    do
        if (rows > budget || seen > budget - rows) return -1;
    while (!atomic_compare_exchange_weak(read, &seen, seen + rows));
    *offset = (uint64_t)(p - f->base);
    return f->fd;
}

size_t embed_tensor_count(const embed_file *f) { return f->n_t; }

const embed_tensor *embed_tensor_at(const embed_file *f, size_t i) {
    return i < f->n_t ? &f->t[i] : NULL;
}

const embed_tensor *embed_find(const embed_file *f, const char *name) {
    for (size_t i = 0; i < f->n_t; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

size_t embed_metadata_count(const embed_file *f) { return f->n_meta; }

void embed_metadata_at(const embed_file *f, size_t i, const char **key, const char **value) {
    if (i >= f->n_meta) {
        *key = *value = NULL;
        return;
    }
    *key = f->meta[2 * i];
    *value = f->meta[2 * i + 1];
}

size_t embed_header_len(const embed_file *f) { return f->header_len; }

const char *embed_file_name(const embed_file *f) { return f->name; }

size_t embed_file_size(const embed_file *f) { return f->len; }

int embed_file_check(const embed_file *f, embed_error *err) {
    struct stat st;
    if (!f || f->fd < 0 || !f->mapped) return EMBED_OK;  /* memory the caller owns */
    if (fstat(f->fd, &st) == 0 && (uint64_t)st.st_size < f->len)
        return embed_fail(err, EMBED_ERR_IO, "%s: the file was truncated to %llu bytes while in use (it held %zu)",
                          f->name, (unsigned long long)st.st_size, f->len);
    return EMBED_OK;
}

/* ---- crash-safe writing --------------------------------------------------- */

struct embed_writer {
    FILE *fp;
    char *path;          /* as given, for messages */
    char *target, *tmp;  /* the file replaced (a symlink's target) and its temporary; NULL when direct */
    uint64_t written, fail_after; /* fail_after: test hook, UINT64_MAX = off */
    int failed;
};

static char *dir_of(const char *path) {
    const char *sl = strrchr(path, '/');
    if (!sl) return gpt2in_strdup(".");
    if (sl == path) return gpt2in_strdup("/");
    return gpt2in_strndup(path, (size_t)(sl - path));
}

static void writer_free(embed_writer *w) {
    free(w->path);
    free(w->target);
    free(w->tmp);
    free(w);
}

/* What a write to path replaces: path itself, or the end of its chain of
 * symbolic links, so the link stays a link (as the shell's > does); that
 * end may not exist yet. NULL with errno set on failure. */
static char *link_target(const char *path) {
    char *cur = gpt2in_strdup(path);
    for (int hops = 0; cur && hops < 40; hops++) {
        struct stat st;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode)) return cur;
        size_t cap = (size_t)st.st_size + 2 > 256 ? (size_t)st.st_size + 2 : 256;
        char *to = gpt2in_malloc(cap), *dir = NULL, *next = NULL;
        ssize_t n = to ? readlink(cur, to, cap - 1) : -1;
        int e = !to ? ENOMEM : n < 0 ? errno : 0;
        if (!e) {
            to[n] = 0; /* relative to the link's own directory */
            if (to[0] != '/' && !(dir = dir_of(cur))) {
                e = ENOMEM;
            } else {
                size_t need = (dir ? strlen(dir) + 1 : 0) + (size_t)n + 1;
                if (!(next = gpt2in_malloc(need))) e = ENOMEM;
                else snprintf(next, need, "%s%s%s", dir ? dir : "", dir ? "/" : "", to);
            }
        }
        free(dir);
        free(to);
        free(cur);
        if (e) {
            errno = e;
            return NULL;
        }
        cur = next;
    }
    errno = cur ? ELOOP : ENOMEM;
    free(cur);
    return NULL;
}

/* The new file takes the old one's owner where allowed (as root, or a group
 * the user is in) and its mode; set-id bits only if the owner was kept. */
static void keep_owner_and_mode(int fd, const struct stat *old) {
    struct stat now;
    if ((old->st_uid != geteuid() || old->st_gid != getegid()) &&
        fchown(fd, old->st_uid, old->st_gid) != 0 && fchown(fd, (uid_t)-1, old->st_gid) != 0) {
        /* not fatal: the contents are right, only the owner differs */
    }
    mode_t mode = old->st_mode & 07777;
    if (fstat(fd, &now) != 0 || now.st_uid != old->st_uid || now.st_gid != old->st_gid)
        mode &= 0777;
    if (fchmod(fd, mode) != 0) {
        /* not fatal either */
    }
}

static embed_writer *writer_stream(embed_writer *w, int fd, const char *what, embed_error *err) {
    w->fp = fdopen(fd, "wb");
    if (!w->fp) {
        embed_st_error(err, "%s: %s", what, strerror(errno));
        close(fd);
        if (w->tmp) unlink(w->tmp);
        writer_free(w);
        return NULL;
    }
    setvbuf(w->fp, NULL, _IOFBF, 1 << 20);
    return w;
}

embed_writer *embed_writer_open(const char *path, embed_error *err) {
    embed_writer *w = gpt2in_calloc(1, sizeof *w);
    char *dir = NULL;
    if (!w) goto oom;
    w->fail_after = UINT64_MAX;
#ifdef GPT2IN_FAULTS
    /* Test hook: GPT2IN_TEST_FAIL_WRITE_AFTER=K makes writing fail (as if the
     * disk were full) once K bytes of the new file have been written. */
    const char *fa = getenv("GPT2IN_TEST_FAIL_WRITE_AFTER");
    if (fa && *fa >= '0' && *fa <= '9') w->fail_after = strtoull(fa, NULL, 10);
#endif
    const char *why = NULL;
    if (!path || !*path) {
        writer_free(w);
        embed_st_error(err, "the output file name is empty");
        return NULL;
    }
    if (!(w->path = gpt2in_strdup(path))) goto oom;
    /* What the name stands for decides how it is written: see embed.h. */
    struct stat st;
    int exists = stat(path, &st) == 0;
    if (!exists && errno != ENOENT) why = strerror(errno);
    else if (exists && S_ISDIR(st.st_mode)) why = "is a directory";
    else if (exists && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))) {
        /* a device or pipe cannot be replaced: written straight through */
        int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) why = strerror(errno);
        else return writer_stream(w, fd, path, err);
    } else if (exists && !S_ISREG(st.st_mode))
        why = "not a regular file, character device or FIFO (a socket or block device)";
    else if (!exists && path[strlen(path) - 1] == '/')
        why = "ends in '/': a file name is needed";
    if (why) {
        embed_st_error(err, "%s: cannot write: %s", path, why);
        writer_free(w);
        return NULL;
    }
    if (!(w->target = link_target(path))) {
        if (errno == ENOMEM) goto oom;
        embed_st_error(err, "%s: cannot follow the symbolic link: %s", path, strerror(errno));
        writer_free(w);
        return NULL;
    }
    const char *sl = strrchr(w->target, '/');
    dir = dir_of(w->target);
    size_t need = (dir ? strlen(dir) : 0) + strlen(w->target) + 32;
    w->tmp = gpt2in_malloc(need);
    if (!dir || !w->tmp) goto oom;
    /* a hidden temporary next to the target, so rename() stays on one
     * filesystem; a long name is shortened (at a character's start) so that
     * "." NAME ".tmp.XXXXXX" stays a valid file name */
    const char *base = sl ? sl + 1 : w->target;
    size_t keep = strlen(base), max_keep = NAME_MAX - strlen("..tmp.XXXXXX");
    if (keep > max_keep) {
        keep = max_keep;
        while (keep > 0 && ((unsigned char)base[keep] & 0xC0) == 0x80) keep--;
    }
    snprintf(w->tmp, need, "%s/.%.*s.tmp.XXXXXX", dir, (int)keep, base);
    free(dir);
    int fd = mkstemp(w->tmp);
    if (fd < 0) {
        embed_st_error(err, "%s: cannot create a temporary file next to it: %s", path,
                       strerror(errno));
        free(w->tmp);
        w->tmp = NULL;
        writer_free(w);
        return NULL;
    }
    /* mkstemp makes 0600: keep the replaced file's owner and mode, else 0644 */
    if (exists) keep_owner_and_mode(fd, &st);
    else if (fchmod(fd, 0644) != 0) {
        /* not fatal: the file is still correct, only its mode differs */
    }
    return writer_stream(w, fd, w->tmp, err);
oom:
    free(dir);
    if (w) writer_free(w);
    embed_st_error(err, "%s: out of memory", path ? path : "(no name)");
    errno = ENOMEM;  /* how a caller tells EMBED_ERR_NOMEM from EMBED_ERR_IO */
    return NULL;
}

int embed_writer_write(embed_writer *w, const void *buf, size_t n, embed_error *err) {
    if (w->failed) {
        embed_st_error(err, "%s: writing after an earlier failure", w->path);
        return EMBED_ERR_IO;
    }
    if (w->fail_after != UINT64_MAX && w->written + n > w->fail_after) {
        size_t part = (size_t)(w->fail_after - w->written);
        if (part) fwrite(buf, 1, part, w->fp);
        w->written += part;
        w->failed = 1;
        embed_st_error(err, "%s: write error: %s (after %llu bytes; injected by "
                            "GPT2IN_TEST_FAIL_WRITE_AFTER)", w->path, strerror(ENOSPC),
                       (unsigned long long)w->written);
        return EMBED_ERR_IO;
    }
    if (n && fwrite(buf, 1, n, w->fp) != n) {
        w->failed = 1;
        embed_st_error(err, "%s: write error: %s (after %llu bytes)", w->path, strerror(errno),
                       (unsigned long long)w->written);
        return EMBED_ERR_IO;
    }
    w->written += n;
    return 0;
}

void embed_writer_abort(embed_writer *w) {
    if (!w) return;
    if (w->fp) fclose(w->fp);
    if (w->tmp) unlink(w->tmp);
    writer_free(w);
}

FILE *embed_writer_stream(embed_writer *w) { return w->fp; }

const char *embed_writer_temp_path(const embed_writer *w) { return w ? w->tmp : NULL; }

int embed_writer_commit(embed_writer *w, embed_error *err) {
    if (w->failed) {
        embed_writer_abort(w);
        return EMBED_ERR_IO;
    }
    const char *what = NULL;
    errno = EIO; /* what ferror reports if the failed write's errno is gone */
    if (fflush(w->fp) != 0 || ferror(w->fp)) what = "write";
    else if (w->tmp && fsync(fileno(w->fp)) != 0) what = "fsync"; /* not for a pipe */
    if (what) {
        embed_st_error(err, "%s: %s failed: %s", w->path, what, strerror(errno));
        embed_writer_abort(w);
        return EMBED_ERR_IO;
    }
    int rc = fclose(w->fp);
    w->fp = NULL;
    if (rc != 0) {
        embed_st_error(err, "%s: close failed: %s", w->path, strerror(errno));
        embed_writer_abort(w);
        return EMBED_ERR_IO;
    }
    if (!w->tmp) { /* written straight through */
        writer_free(w);
        return 0;
    }
    if (rename(w->tmp, w->target) != 0) {
        embed_st_error(err, "%s: cannot rename the temporary file over it: %s", w->path,
                       strerror(errno));
        embed_writer_abort(w);
        return EMBED_ERR_IO;
    }
    /* make the rename itself durable */
    char *dir = dir_of(w->target);
    if (dir) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    writer_free(w);
    return 0;
}

/* ---- embed_save ------------------------------------------------------------ */

typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->n + n + 1) nc *= 2;
        char *ns = gpt2in_realloc(b->s, nc);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* A JSON string literal (escapes what JSON requires). */
static void sb_json(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char e[8];
        if (c == '"' || c == '\\') {
            e[0] = '\\', e[1] = (char)c;
            sb_put(b, e, 2);
        } else if (c < 0x20) {
            snprintf(e, sizeof e, "\\u%04x", c);
            sb_put(b, e, 6);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static void sb_u64(sbuf *b, uint64_t v) {
    char t[24];
    sb_put(b, t, (size_t)snprintf(t, sizeof t, "%llu", (unsigned long long)v));
}

static void header_entry(sbuf *b, const char *name, embed_dtype dt, int ndim,
                        const uint64_t *shape, uint64_t begin, uint64_t end) {
    sb_json(b, name);
    sb_str(b, ":{\"dtype\":");
    sb_json(b, embed_dtype_name(dt));
    sb_str(b, ",\"shape\":[");
    for (int d = 0; d < ndim; d++) {
        if (d) sb_put(b, ",", 1);
        sb_u64(b, shape[d]);
    }
    sb_str(b, "],\"data_offsets\":[");
    sb_u64(b, begin);
    sb_put(b, ",", 1);
    sb_u64(b, end);
    sb_str(b, "]}");
}

typedef struct {
    const char *name;
    embed_dtype dt;
    int ndim;
    const uint64_t *shape;
    const void *data;
    uint64_t bytes;
} save_item;

embed_writer *embed_save_open(embed_writer *given, const char *path, int *rc, embed_error *err) {
    if (given) return given;
    embed_writer *w = embed_writer_open(path, err);
    if (!w) *rc = errno == ENOMEM ? EMBED_ERR_NOMEM : EMBED_ERR_IO;
    return w;
}

int embed_save_close(embed_writer *given, embed_writer *w, int rc, embed_error *err) {
    if (given) return rc;
    if (rc) {
        embed_writer_abort(w);
        return rc;
    }
    return embed_writer_commit(w, err);
}

/* embed_save (given NULL) and embed_save_to (given, path its name) */
static int save(embed_writer *given, const char *path, const embed_file *base,
                const embed_out_tensor *repl, size_t n_repl, const char *const *meta,
                size_t n_meta, embed_error *err) {
    char q[128];
    size_t nb = base ? base->n_t : 0, mb = base ? base->n_meta : 0;
    /* a base of another kind is written back in its own kind */
    if (base && base->kind == EMBED_KIND_LLMC_MODEL)
        return embed_llmc_save(given, path, base, repl, n_repl, meta, n_meta, err);
    if (base && base->kind == EMBED_KIND_GGUF)
        return embed_gguf_save(given, path, base, repl, n_repl, meta, n_meta, err);
    if (base && base->kind == EMBED_KIND_NPY)
        return embed_npyt_save(given, path, base, repl, n_repl, meta, n_meta, err);
    save_item *it = gpt2in_calloc(nb + n_repl + 1, sizeof *it);
    const char **mk = gpt2in_calloc(2 * (mb + n_meta) + 1, sizeof *mk);
    sbuf h = {0};
    int rc = EMBED_ERR_NOMEM;
    if (!it || !mk) {
        embed_st_error(err, "%s: out of memory", path);
        goto out;
    }
    /* base's tensors in their data order, replaced in place; new ones after.
     * A safetensors base whose tensors keep their dtypes and shapes, with no
     * new tensor or metadata, keeps its header's bytes as they were (another
     * writer's key order and spacing): only the replaced data changes. */
    int same_header = base && base->kind == EMBED_KIND_SAFETENSORS && n_meta == 0;
    size_t n = 0;
    for (size_t i = 0; i < nb; i++) {
        const embed_tensor *t = &base->t[i];
        if (t->begin != (i ? base->t[i - 1].end : 0)) same_header = 0;  /* a hole would move data */
        it[n++] = (save_item){t->name, t->dtype, t->ndim, t->shape, t->data, t->end - t->begin};
    }
    rc = EMBED_ERR_ARG;
    for (size_t r = 0; r < n_repl; r++) {
        const embed_out_tensor *o = &repl[r];
        if (!o->name || !*o->name || !strcmp(o->name, "__metadata__") ||
            (unsigned)o->dtype >= EMBED_DTYPE_COUNT || o->ndim < 0 || o->ndim > EMBED_MAX_DIMS) {
            embed_st_error(err, "%s: tensor %s: bad name, dtype or rank", path,
                            o->name ? embed_st_quote(o->name, q, sizeof q) : "(null)");
            goto out;
        }
        if (embed_st_utf8_check((const unsigned char *)o->name, strlen(o->name)) != strlen(o->name)) {
            embed_st_error(err, "%s: tensor name %s is not valid UTF-8", path,
                            embed_st_quote(o->name, q, sizeof q));
            goto out;
        }
        uint64_t count, bytes;
        if (embed_st_shape_bytes(o->dtype, o->ndim, o->shape, &count, &bytes) || (bytes && !o->data)) {
            embed_st_error(err, "%s: tensor %s: shape too large, not whole bytes, or no data",
                            path, embed_st_quote(o->name, q, sizeof q));
            goto out;
        }
        save_item ni = {o->name, o->dtype, o->ndim, o->shape, o->data, bytes};
        size_t j;
        for (j = 0; j < n; j++)
            if (!strcmp(it[j].name, o->name)) break;
        if (j < nb) {
            const embed_tensor *t = &base->t[j];
            if (ni.dt != t->dtype || ni.ndim != t->ndim ||
                (ni.ndim && memcmp(ni.shape, t->shape, (size_t)ni.ndim * sizeof *ni.shape)))
                same_header = 0;
            it[j] = ni;
        } else if (j < n) {
            embed_st_error(err, "%s: tensor %s is given twice", path,
                            embed_st_quote(o->name, q, sizeof q));
            goto out;
        } else {
            it[n++] = ni;
            same_header = 0;
        }
    }
    /* metadata: base's, with meta set on top (same key = new value) */
    size_t nm = 0;
    for (size_t i = 0; i < mb; i++) {
        mk[2 * nm] = base->meta[2 * i];
        mk[2 * nm + 1] = base->meta[2 * i + 1];
        nm++;
    }
    for (size_t i = 0; i < n_meta; i++) {
        const char *k = meta[2 * i], *v = meta[2 * i + 1];
        if (!k || !v) {
            embed_st_error(err, "%s: metadata pair %zu has a NULL key or value", path, i);
            goto out;
        }
        size_t j;
        for (j = 0; j < nm; j++)
            if (!strcmp(mk[2 * j], k)) break;
        mk[2 * j] = k;
        mk[2 * j + 1] = v;
        if (j == nm) nm++;
    }
    /* the header */
    sb_put(&h, "{", 1);
    /* an empty __metadata__ {} of base is written back too */
    int with_meta = nm || (base && base->has_meta);
    if (with_meta) {
        sb_str(&h, "\"__metadata__\":{");
        for (size_t i = 0; i < nm; i++) {
            if (i) sb_put(&h, ",", 1);
            sb_json(&h, mk[2 * i]);
            sb_put(&h, ":", 1);
            sb_json(&h, mk[2 * i + 1]);
        }
        sb_put(&h, "}", 1);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (with_meta || i) sb_put(&h, ",", 1);
        if (off + it[i].bytes < off) {
            embed_st_error(err, "%s: total data size overflows", path);
            goto out;
        }
        header_entry(&h, it[i].name, it[i].dt, it[i].ndim, it[i].shape, off,
                           off + it[i].bytes);
        off += it[i].bytes;
    }
    sb_put(&h, "}", 1);
    while (h.n % 8) sb_put(&h, " ", 1);
    if (h.oom) {
        rc = EMBED_ERR_NOMEM;
        embed_st_error(err, "%s: out of memory", path);
        goto out;
    }
    {
        unsigned char len8[8];
        for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)h.n >> (8 * k));
        embed_writer *w = embed_save_open(given, path, &rc, err);
        if (!w) goto out;
        if (same_header) {
            rc = embed_writer_write(w, base->base, 8 + base->header_len, err);
        } else {
            rc = embed_writer_write(w, len8, 8, err);
            if (!rc) rc = embed_writer_write(w, h.s, h.n, err);
        }
        /* base's data may live in a mapping of `path` itself: that stays valid
         * (the old inode) until it is closed, and the rename happens last */
        for (size_t i = 0; i < n && !rc; i++) rc = embed_writer_write(w, it[i].data, it[i].bytes, err);
        rc = embed_save_close(given, w, rc, err);
    }
out:
    free(it);
    free(mk);
    free(h.s);
    return rc;
}

int embed_save(const char *path, const embed_file *base, const embed_out_tensor *repl,
               size_t n_repl, const char *const *meta, size_t n_meta, embed_error *err) {
    if (!path || (n_repl && !repl) || (n_meta && !meta)) {
        embed_st_error(err, "embed_save: bad arguments");
        return EMBED_ERR_ARG;
    }
    return save(NULL, path, base, repl, n_repl, meta, n_meta, err);
}

int embed_save_to(embed_writer *w, const embed_file *base, const embed_out_tensor *repl,
                  size_t n_repl, const char *const *meta, size_t n_meta, embed_error *err) {
    if (!w || (n_repl && !repl) || (n_meta && !meta)) {
        embed_st_error(err, "embed_save_to: bad arguments");
        return EMBED_ERR_ARG;
    }
    if (w->failed || w->written) {
        embed_st_error(err, "%s: embed_save_to needs a writer nothing was written to", w->path);
        return EMBED_ERR_ARG;
    }
    return save(w, w->path, base, repl, n_repl, meta, n_meta, err);
}
