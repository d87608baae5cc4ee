/* npy.c - NumPy .npy files: strict reading (versions 1.0, 2.0, 3.0, C order)
 * and crash-safe writing (version 1.0).
 *
 * Layout: "\x93NUMPY", major, minor, header length (u16 for 1.0, u32 for 2.0
 * and 3.0), then a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (50257, 768), }
 * padded with spaces and a newline so the data starts on a 64-byte boundary,
 * then the raw data. The header is read with a small parser for exactly
 * that dict (not a Python evaluator): three keys, no more, no less. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "embed.h"
#include "st_internal.h"

#define NPY_MAX_HEADER 10000 /* NumPy's own limit for reading */

static const struct {
    const char *descr;
    embed_dtype dt;
} npy_types[] = {
    {"<f2", EMBED_F16}, {"<f4", EMBED_F32}, {"<f8", EMBED_F64}, {"|i1", EMBED_I8},
    {"<i2", EMBED_I16}, {"<i4", EMBED_I32}, {"<i8", EMBED_I64}, {"|u1", EMBED_U8},
    {"<u2", EMBED_U16}, {"<u4", EMBED_U32}, {"<u8", EMBED_U64}, {"|b1", EMBED_BOOL},
};
#define N_NPY_TYPES (sizeof npy_types / sizeof npy_types[0])

static const char *npy_descr(embed_dtype dt) {
    for (size_t i = 0; i < N_NPY_TYPES; i++)
        if (npy_types[i].dt == dt) return npy_types[i].descr;
    return NULL;
}

typedef struct {
    const unsigned char *s;
    size_t n, i, base; /* base: file offset of s[0], for messages */
    const char *file;
    embed_error *err;
} hp;

static int hp_fail(hp *p, int code, const char *what) {
    embed_st_error(p->err, "%s: .npy header: %s at file byte %zu", p->file, what, p->base + p->i);
    return code;
}

static void hp_ws(hp *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
                           p->s[p->i] == '\r'))
        p->i++;
}

static int hp_peek(hp *p, char c) {
    hp_ws(p);
    if (p->i < p->n && p->s[p->i] == (unsigned char)c) {
        p->i++;
        return 1;
    }
    return 0;
}

/* A quoted Python string without escapes (all a valid header needs). */
static int hp_str(hp *p, char *buf, size_t cap) {
    hp_ws(p);
    if (p->i >= p->n || (p->s[p->i] != '\'' && p->s[p->i] != '"'))
        return hp_fail(p, EMBED_ERR_FORMAT, "expected a quoted string");
    unsigned char q = p->s[p->i++];
    size_t o = 0;
    while (p->i < p->n && p->s[p->i] != q) {
        unsigned char c = p->s[p->i];
        if (c == '\\' || c < 0x20 || c >= 0x7f)
            return hp_fail(p, EMBED_ERR_FORMAT, "unexpected character in a string");
        if (o + 1 >= cap) return hp_fail(p, EMBED_ERR_FORMAT, "string too long");
        buf[o++] = (char)c;
        p->i++;
    }
    if (p->i >= p->n) return hp_fail(p, EMBED_ERR_FORMAT, "unterminated string");
    p->i++;
    buf[o] = 0;
    return 0;
}

static int hp_word(hp *p, const char *w) {
    size_t l = strlen(w);
    hp_ws(p);
    if (p->n - p->i >= l && !memcmp(p->s + p->i, w, l)) {
        size_t e = p->i + l;
        /* a whole word: not "Truex" */
        if (e < p->n && (p->s[e] == '_' || ((p->s[e] | 0x20) >= 'a' && (p->s[e] | 0x20) <= 'z')))
            return 0;
        p->i = e;
        return 1;
    }
    return 0;
}

static int hp_u64(hp *p, uint64_t *v) {
    hp_ws(p);
    size_t st = p->i;
    if (p->i < p->n && p->s[p->i] == '-')
        return hp_fail(p, EMBED_ERR_FORMAT, "negative shape entry");
    if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
        return hp_fail(p, EMBED_ERR_FORMAT, "shape entry is not a whole number");
    uint64_t x = 0;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
        unsigned d = p->s[p->i] - '0';
        if (x > (UINT64_MAX - d) / 10) {
            p->i = st;
            return hp_fail(p, EMBED_ERR_FORMAT, "shape entry does not fit in 64 bits");
        }
        x = x * 10 + d;
        p->i++;
    }
    if (p->i - st > 1 && p->s[st] == '0') {
        p->i = st;
        return hp_fail(p, EMBED_ERR_FORMAT, "shape entry has a leading zero");
    }
    *v = x;
    return 0;
}

/* The preamble and header of buf[0..len); with whole, the data must fill
 * the rest of len exactly. */
static int npy_inspect(const void *buf, size_t len, const char *name, embed_npy *out,
                       unsigned *version, size_t *data_start, int whole, embed_error *err) {
    const unsigned char *b = buf;
    char msg[256], descr[32], sh[256];
    if (!name) name = "(memory)";
    memset(out, 0, sizeof *out);
    if (len >= 23 && !memcmp(b, "version https://git-lfs", 23)) {
        embed_st_error(err, "%s: this is a Git LFS pointer file, not the array (git lfs pull)",
                       name);
        return EMBED_ERR_FORMAT;
    }
    if (len < 10 || memcmp(b, "\x93NUMPY", 6)) {
        embed_st_error(err, "%s: not a .npy file (%s)", name,
                       len < 10 ? "shorter than the 10-byte preamble" : "no \\x93NUMPY magic");
        return EMBED_ERR_FORMAT;
    }
    unsigned major = b[6], minor = b[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0) {
        embed_st_error(err, "%s: .npy version %u.%u is not supported (1.0, 2.0, 3.0 are)", name,
                       major, minor);
        return EMBED_ERR_FORMAT;
    }
    size_t pre = major == 1 ? 10 : 12;
    if (len < pre) {
        embed_st_error(err, "%s: truncated .npy preamble (%zu bytes)", name, len);
        return EMBED_ERR_FORMAT;
    }
    uint64_t hlen = major == 1 ? (uint64_t)b[8] | (uint64_t)b[9] << 8
                               : (uint64_t)b[8] | (uint64_t)b[9] << 8 | (uint64_t)b[10] << 16 |
                                     (uint64_t)b[11] << 24;
    if (hlen > NPY_MAX_HEADER) {
        embed_st_error(err, "%s: .npy header length %llu is over the limit of %d bytes", name,
                       (unsigned long long)hlen, NPY_MAX_HEADER);
        return EMBED_ERR_FORMAT;
    }
    if (hlen > len - pre) {
        embed_st_error(err, "%s: .npy header length %llu runs past the end of the file "
                            "(%zu bytes)", name, (unsigned long long)hlen, len);
        return EMBED_ERR_FORMAT;
    }
    hp p = {b + pre, (size_t)hlen, 0, pre, name, err};
    if (major == 3) {
        size_t bad = embed_st_utf8_check(p.s, p.n);
        if (bad < p.n) {
            p.i = bad;
            return hp_fail(&p, EMBED_ERR_FORMAT, "not valid UTF-8");
        }
    }
    int rc, have_descr = 0, have_fo = 0, have_shape = 0, fortran = 0;
    if (!hp_peek(&p, '{')) return hp_fail(&p, EMBED_ERR_FORMAT, "expected '{'");
    while (!hp_peek(&p, '}')) {
        char key[32];
        size_t at = (hp_ws(&p), p.i);
        if ((rc = hp_str(&p, key, sizeof key))) return rc;
        if (!hp_peek(&p, ':')) return hp_fail(&p, EMBED_ERR_FORMAT, "expected ':'");
        if (!strcmp(key, "descr")) {
            if (have_descr++) return p.i = at, hp_fail(&p, EMBED_ERR_FORMAT, "duplicate key 'descr'");
            hp_ws(&p);
            size_t vat = p.i;
            if ((rc = hp_str(&p, descr, sizeof descr))) return rc;
            size_t k;
            for (k = 0; k < N_NPY_TYPES; k++)
                if (!strcmp(descr, npy_types[k].descr)) break;
            if (k == N_NPY_TYPES) {
                p.i = vat;
                snprintf(msg, sizeof msg, "dtype '%s' is not supported (%s)", descr,
                         descr[0] == '>' ? "big-endian"
                                         : "supported: <f2 <f4 <f8 |i1 <i2 <i4 <i8 |u1 <u2 <u4 "
                                           "<u8 |b1");
                return hp_fail(&p, EMBED_ERR_DTYPE, msg);
            }
            out->dtype = npy_types[k].dt;
        } else if (!strcmp(key, "fortran_order")) {
            if (have_fo++)
                return p.i = at, hp_fail(&p, EMBED_ERR_FORMAT, "duplicate key 'fortran_order'");
            if (hp_word(&p, "True")) fortran = 1;
            else if (!hp_word(&p, "False"))
                return hp_fail(&p, EMBED_ERR_FORMAT, "fortran_order must be True or False");
        } else if (!strcmp(key, "shape")) {
            if (have_shape++) return p.i = at, hp_fail(&p, EMBED_ERR_FORMAT, "duplicate key 'shape'");
            if (!hp_peek(&p, '(')) return hp_fail(&p, EMBED_ERR_FORMAT, "shape must be a tuple");
            int comma = 0;
            while (!hp_peek(&p, ')')) {
                if (out->ndim == EMBED_MAX_DIMS)
                    return hp_fail(&p, EMBED_ERR_FORMAT, "shape has more than 8 dimensions");
                if ((rc = hp_u64(&p, &out->shape[out->ndim]))) return rc;
                out->ndim++;
                comma = hp_peek(&p, ',');
                if (!comma) {
                    if (!hp_peek(&p, ')'))
                        return hp_fail(&p, EMBED_ERR_FORMAT, "expected ',' or ')' in shape");
                    break;
                }
            }
            /* "(5)" is the number 5 in Python, not a tuple */
            if (out->ndim == 1 && !comma)
                return hp_fail(&p, EMBED_ERR_FORMAT, "shape (N) is not a tuple (write (N,))");
        } else {
            p.i = at;
            snprintf(msg, sizeof msg, "unknown key '%s' (only descr, fortran_order, shape)", key);
            return hp_fail(&p, EMBED_ERR_FORMAT, msg);
        }
        if (!hp_peek(&p, ',')) {
            if (!hp_peek(&p, '}')) return hp_fail(&p, EMBED_ERR_FORMAT, "expected ',' or '}'");
            break;
        }
    }
    hp_ws(&p);
    if (p.i < p.n) return hp_fail(&p, EMBED_ERR_FORMAT, "unexpected characters after the dict");
    if (!have_descr || !have_fo || !have_shape) {
        snprintf(msg, sizeof msg, "missing key '%s'",
                 !have_descr ? "descr" : !have_fo ? "fortran_order" : "shape");
        return hp_fail(&p, EMBED_ERR_FORMAT, msg);
    }
    if (fortran) {
        embed_st_error(err, "%s: fortran_order True (column-major) arrays are not supported; "
                            "save with np.ascontiguousarray", name);
        return EMBED_ERR_FORMAT;
    }
    uint64_t count, bytes;
    embed_st_shape_str(out->dtype, out->ndim, out->shape, sh, sizeof sh);
    if (embed_st_shape_bytes(out->dtype, out->ndim, out->shape, &count, &bytes)) {
        embed_st_error(err, "%s: %s has more than 2^64 bytes of data", name, sh);
        return EMBED_ERR_FORMAT;
    }
    size_t start = pre + (size_t)hlen;
    uint64_t have = len - start;
    if (whole && have != bytes) {
        embed_st_error(err, "%s: %s needs %llu data bytes (file size %llu) but the file has "
                            "%llu (file size %zu)%s", name, sh, (unsigned long long)bytes,
                       (unsigned long long)(bytes + start), (unsigned long long)have, len,
                       have < bytes ? ": truncated" : ": trailing bytes");
        return EMBED_ERR_FORMAT;
    }
    out->count = count;
    if (version) *version = major;
    if (data_start) *data_start = start;
    return 0;
}

int embed_npy_inspect(const void *buf, size_t len, const char *name, embed_npy *out,
                      unsigned *version, size_t *data_start, embed_error *err) {
    return npy_inspect(buf, len, name, out, version, data_start, 1, err);
}

int embed_npy_inspect_header(const void *buf, size_t len, const char *name, embed_npy *out,
                             size_t *data_start, embed_error *err) {
    return npy_inspect(buf, len, name, out, NULL, data_start, 0, err);
}

int embed_npy_read_mem(const void *buf, size_t len, const char *name, embed_npy *out,
                       embed_error *err) {
    size_t start;
    int rc = embed_npy_inspect(buf, len, name, out, NULL, &start, err);
    if (rc) return rc;
    size_t bytes = len - start; /* checked equal to count * item size */
    out->data = gpt2in_malloc(bytes ? bytes : 1);
    if (!out->data) {
        embed_st_error(err, "%s: out of memory for %zu bytes", name ? name : "(memory)", bytes);
        return EMBED_ERR_NOMEM;
    }
    memcpy(out->data, (const unsigned char *)buf + start, bytes);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    {
        size_t w = embed_dtype_bits(out->dtype) / 8;
        unsigned char *d = out->data;
        for (size_t i = 0; w > 1 && i < bytes; i += w)
            for (size_t a = 0, z = w - 1; a < z; a++, z--) {
                unsigned char t = d[i + a];
                d[i + a] = d[i + z];
                d[i + z] = t;
            }
    }
#endif
    return 0;
}

int embed_npy_read(const char *path, embed_npy *out, embed_error *err) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        embed_st_error(err, "%s: cannot open: %s", path, strerror(errno));
        return EMBED_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        embed_st_error(err, "%s: not a regular file", path);
        close(fd);
        return EMBED_ERR_IO;
    }
    size_t len = (size_t)st.st_size;
    if (len == 0) {
        close(fd);
        return embed_npy_read_mem("", 0, path, out, err);
    }
    void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        embed_st_error(err, "%s: cannot map %zu bytes: %s", path, len, strerror(errno));
        return EMBED_ERR_IO;
    }
    int rc = embed_npy_read_mem(m, len, path, out, err);
    munmap(m, len);
    return rc;
}

void embed_npy_free(embed_npy *a) {
    if (!a) return;
    free(a->data);
    a->data = NULL;
}

size_t embed_npy_header(embed_dtype dtype, int ndim, const uint64_t *shape, char hdr[256]) {
    const char *d = npy_descr(dtype);
    if (!d || ndim < 0 || ndim > EMBED_MAX_DIMS) return 0;
    char dict[256];
    size_t o = (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, "
                                                   "'shape': (", d);
    for (int i = 0; i < ndim; i++)
        o += (size_t)snprintf(dict + o, sizeof dict - o, "%s%llu", i ? ", " : "",
                              (unsigned long long)shape[i]);
    o += (size_t)snprintf(dict + o, sizeof dict - o, "%s), }", ndim == 1 ? "," : "");
    /* 10-byte preamble + dict + spaces + '\n', a multiple of 64 (at most 256:
     * 8 dims of 20 digits make a 241-byte header) */
    size_t total = (10 + o + 1 + 63) / 64 * 64;
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    hdr[8] = (char)((total - 10) & 0xff);
    hdr[9] = (char)((total - 10) >> 8);
    memcpy(hdr + 10, dict, o);
    memset(hdr + 10 + o, ' ', total - 10 - o - 1);
    hdr[total - 1] = '\n';
    return total;
}

int embed_npy_write(const char *path, embed_dtype dtype, int ndim, const uint64_t *shape,
                    const void *data, embed_error *err) {
    char hdr[256];
    uint64_t count, bytes;
    size_t hl = embed_npy_header(dtype, ndim, shape, hdr);
    if (!hl) {
        embed_st_error(err, "%s: dtype %s has no .npy equivalent", path, embed_dtype_name(dtype));
        return EMBED_ERR_DTYPE;
    }
    if (embed_st_shape_bytes(dtype, ndim, shape, &count, &bytes) || bytes > SIZE_MAX ||
        (bytes && !data)) {
        embed_st_error(err, "%s: shape too large or no data", path);
        return EMBED_ERR_ARG;
    }
    embed_writer *w = embed_writer_open(path, err);
    if (!w) return errno == ENOMEM ? EMBED_ERR_NOMEM : EMBED_ERR_IO;
    int rc = embed_writer_write(w, hdr, hl, err);
    if (!rc) rc = embed_writer_write(w, data, (size_t)bytes, err);
    if (rc) {
        embed_writer_abort(w);
        return rc;
    }
    return embed_writer_commit(w, err);
}
