/* gguf.c - GGUF model files (llama.cpp's format), read in place and written
 * back.
 *
 * Layout (little-endian, versions 2 and 3): "GGUF", u32 version, u64
 * tensor_count, u64 kv_count; the key-values (key: u64 length + bytes; u32
 * value type; the value, arrays as u32 element type + u64 count +
 * elements); the tensor infos (name, u32 n_dims, u64 dims[n_dims] with
 * dims[0] the fastest-varying, u32 ggml type, u64 offset into the data);
 * padding to general.alignment (32 by default); the data. As llama.cpp's
 * reader does, each tensor must start where the previous one ended, padded
 * to the alignment; on top, the file must end there (no trailing bytes).
 * Every count is checked against the bytes left before anything is sized
 * from it. Dims are handed out in row-major order: GGUF's [C, V] token
 * table is shape [V, C]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st_internal.h"

#define GGUF_DEFAULT_ALIGN 32
#define GGUF_MAX_NAME 63 /* ggml's GGML_MAX_NAME is 64 with the NUL */

/* ggml's types: name, values per block, bytes per block (0: removed). */
static const struct {
    const char *name;
    unsigned blck, size;
} ggml_types[] = {
    {"F32", 1, 4},        {"F16", 1, 2},       {"Q4_0", 32, 18},    {"Q4_1", 32, 20},
    {NULL, 0, 0},         {NULL, 0, 0},        {"Q5_0", 32, 22},    {"Q5_1", 32, 24},
    {"Q8_0", 32, 34},     {"Q8_1", 32, 36},    {"Q2_K", 256, 84},   {"Q3_K", 256, 110},
    {"Q4_K", 256, 144},   {"Q5_K", 256, 176},  {"Q6_K", 256, 210},  {"Q8_K", 256, 292},
    {"IQ2_XXS", 256, 66}, {"IQ2_XS", 256, 74}, {"IQ3_XXS", 256, 98}, {"IQ1_S", 256, 50},
    {"IQ4_NL", 32, 18},   {"IQ3_S", 256, 110}, {"IQ2_S", 256, 82},  {"IQ4_XS", 256, 136},
    {"I8", 1, 1},         {"I16", 1, 2},       {"I32", 1, 4},       {"I64", 1, 8},
    {"F64", 1, 8},        {"IQ1_M", 256, 56},  {"BF16", 1, 2},      {NULL, 0, 0},
    {NULL, 0, 0},         {NULL, 0, 0},        {"TQ1_0", 256, 54},  {"TQ2_0", 256, 66},
    {NULL, 0, 0},         {NULL, 0, 0},        {NULL, 0, 0},        {"MXFP4", 32, 17},
};
#define N_GGML ((unsigned)(sizeof ggml_types / sizeof ggml_types[0]))

const char *embed_ggml_name(unsigned type) {
    return type < N_GGML ? ggml_types[type].name : NULL;
}

static embed_dtype dtype_of(unsigned type) {
    switch (type) {
    case 0: return EMBED_F32;
    case 1: return EMBED_F16;
    case 8: return EMBED_Q8_0;
    case 30: return EMBED_BF16;
    case 24: return EMBED_I8;
    case 25: return EMBED_I16;
    case 26: return EMBED_I32;
    case 27: return EMBED_I64;
    case 28: return EMBED_F64;
    default: return (embed_dtype)(EMBED_GGML + type);
    }
}

/* ---- a bounds-checked cursor ------------------------------------------------ */

typedef struct {
    const unsigned char *b;
    size_t len, i;
    const char *fn;
    embed_error *err;
} cur;

static int cfail(cur *c, size_t at, const char *fmt, const char *what) {
    char m[800];
    snprintf(m, sizeof m, fmt, what);
    return embed_fail(c->err, EMBED_ERR_FORMAT, "%s: %s at byte %zu", c->fn, m, at);
}

static int need(cur *c, uint64_t n, const char *what) {
    if (n > c->len - c->i)
        return cfail(c, c->i, "%s runs past the end of the file (truncated?)", what);
    return 0;
}

static uint64_t le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; k--) v = v << 8 | p[k];
    return v;
}

static int rd(cur *c, int n, uint64_t *v, const char *what) {
    if (need(c, (uint64_t)n, what)) return EMBED_ERR_FORMAT;
    *v = le(c->b + c->i, n);
    c->i += (size_t)n;
    return 0;
}

/* A string: u64 length and bytes; *s points into the image. */
static int rd_str(cur *c, const unsigned char **s, uint64_t *n, const char *what) {
    size_t at = c->i;
    if (rd(c, 8, n, what)) return EMBED_ERR_FORMAT;
    if (*n > c->len - c->i) {
        c->i = at;
        return cfail(c, at, "%s's length runs past the end of the file (truncated?)", what);
    }
    *s = c->b + c->i;
    c->i += (size_t)*n;
    return 0;
}

static const char *const vt_names[13] = {"u8",  "i8",  "u16",    "i16",   "u32", "i32", "f32",
                                         "bool", "string", "array", "u64", "i64", "f64"};
static const unsigned vt_size[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

/* Renders a scalar of type t at p (bounds checked) into out (>= 48 bytes). */
static void render(unsigned t, const unsigned char *p, char *out, size_t cap) {
    uint64_t u = le(p, (int)vt_size[t]);
    switch (t) {
    case 0: case 2: case 4: case 10: snprintf(out, cap, "%llu", (unsigned long long)u); break;
    case 1: snprintf(out, cap, "%d", (int)(int8_t)u); break;
    case 3: snprintf(out, cap, "%d", (int)(int16_t)u); break;
    case 5: snprintf(out, cap, "%d", (int)(int32_t)u); break;
    case 11: snprintf(out, cap, "%lld", (long long)(int64_t)u); break;
    case 6: {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, 4);
        snprintf(out, cap, "%.9g", f);
        break;
    }
    case 12: {
        double d;
        memcpy(&d, &u, 8);
        snprintf(out, cap, "%.17g", d);
        break;
    }
    case 7: snprintf(out, cap, u == 0 ? "false" : u == 1 ? "true" : "bool %llu",
                     (unsigned long long)u); break;
    }
}

/* Arena for keys and rendered values: counted in pass 1, filled in pass 2. */
typedef struct {
    char *p;
    size_t n;
} arena;

static const char *put(arena *a, const void *s, size_t n) {
    char *at = a->p ? a->p + a->n : NULL;
    if (at) {
        memcpy(at, s, n);
        at[n] = 0;
    }
    a->n += n + 1;
    return at;
}

/* One key-value at c->i; fills *key, *val (pass 2) and, for
 * general.alignment, *align. */
static int parse_kv(cur *c, uint64_t idx, arena *a, const char **key, const char **val,
                    uint64_t *align) {
    char q[128], m[400], txt[64];
    const unsigned char *k, *s;
    uint64_t kn, t, n;
    size_t at = c->i;
    snprintf(m, sizeof m, "key-value %llu's key", (unsigned long long)idx);
    if (rd_str(c, &k, &kn, m)) return EMBED_ERR_FORMAT;
    if (kn == 0 || embed_st_utf8_check(k, (size_t)kn) != kn || memchr(k, 0, (size_t)kn)) {
        snprintf(m, sizeof m, "key-value %llu: its key is empty or not UTF-8 text",
                 (unsigned long long)idx);
        return cfail(c, at, "%s", m);
    }
    *key = put(a, k, (size_t)kn);
    char kq[128];
    {
        char tmp[96];
        size_t cut = kn < 80 ? (size_t)kn : 80;
        memcpy(tmp, k, cut);
        tmp[cut] = 0;
        embed_st_quote(tmp, kq, sizeof kq);
    }
    size_t tat = c->i;
    snprintf(m, sizeof m, "the type of %s", kq);
    if (rd(c, 4, &t, m)) return EMBED_ERR_FORMAT;
    if (t > 12) {
        snprintf(m, sizeof m, "%s has value type %llu (0..12 exist)", kq, (unsigned long long)t);
        return cfail(c, tat, "%s", m);
    }
    int is_align = kn == 17 && !memcmp(k, "general.alignment", 17);
    if (is_align && t != 4) {
        snprintf(m, sizeof m, "general.alignment is of type %s, not u32", vt_names[t]);
        return cfail(c, tat, "%s", m);
    }
    if (t == 8) {
        snprintf(m, sizeof m, "the value of %s", kq);
        if (rd_str(c, &s, &n, m)) return EMBED_ERR_FORMAT;
        *val = put(a, s, (size_t)n);
        if (*val && memchr(s, 0, (size_t)n)) { /* shown up to a NUL; kept whole on write */ }
        return 0;
    }
    if (t != 9) {
        snprintf(m, sizeof m, "the value of %s", kq);
        if (need(c, vt_size[t], m)) return EMBED_ERR_FORMAT;
        render((unsigned)t, c->b + c->i, txt, sizeof txt);
        if (is_align) {
            uint64_t v = le(c->b + c->i, 4);
            if (v == 0 || (v & (v - 1))) {
                snprintf(m, sizeof m, "general.alignment %llu is not a power of two",
                         (unsigned long long)v);
                return cfail(c, c->i, "%s", m);
            }
            *align = v;
        }
        c->i += vt_size[t];
        *val = put(a, txt, strlen(txt));
        return 0;
    }
    uint64_t et, count;
    size_t eat = c->i;
    snprintf(m, sizeof m, "the array %s", kq);
    if (rd(c, 4, &et, m) || rd(c, 8, &count, m)) return EMBED_ERR_FORMAT;
    if (et > 12 || et == 9) {
        snprintf(m, sizeof m, "array %s has element type %llu (%s)", kq, (unsigned long long)et,
                 et == 9 ? "arrays of arrays are not read" : "0..12 exist");
        return cfail(c, eat, "%s", m);
    }
    if (et == 8) {
        /* each string takes at least its 8-byte length */
        if (count > (c->len - c->i) / 8) {
            snprintf(m, sizeof m, "array %s's %llu strings cannot fit in the file", kq,
                     (unsigned long long)count);
            return cfail(c, eat, "%s", m);
        }
        for (uint64_t j = 0; j < count; j++) {
            snprintf(m, sizeof m, "string %llu of array %s", (unsigned long long)j, kq);
            if (rd_str(c, &s, &n, m)) return EMBED_ERR_FORMAT;
        }
    } else {
        if (count > (c->len - c->i) / vt_size[et]) {
            snprintf(m, sizeof m, "array %s's %llu elements of %u bytes run past the end of the "
                                  "file", kq, (unsigned long long)count, vt_size[et]);
            return cfail(c, eat, "%s", m);
        }
        c->i += (size_t)(count * vt_size[et]);
    }
    snprintf(txt, sizeof txt, "[%llu %s]", (unsigned long long)count, vt_names[et]);
    *val = put(a, txt, strlen(txt));
    (void)q;
    return 0;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(embed_tensor *const *)a)->name, (*(embed_tensor *const *)b)->name);
}

int embed_gguf_validate(embed_file *f, embed_error *err) {
    const char *fn = f->name;
    cur c = {f->base, f->len, 0, fn, err};
    char m[480], q[128], s1[200];
    if (f->len < 24)
        return embed_fail(err, EMBED_ERR_FORMAT,
                          "%s: file is %zu bytes, shorter than GGUF's 24-byte header (truncated?)",
                          fn, f->len);
    if (memcmp(f->base, "GGUF", 4))
        return embed_fail(err, EMBED_ERR_FORMAT, "%s: no GGUF magic at byte 0", fn);
    uint64_t version = le(f->base + 4, 4), nt = le(f->base + 8, 8), nkv = le(f->base + 16, 8);
    if (version == 1)
        return embed_fail(err, EMBED_ERR_FORMAT,
                          "%s: GGUF version 1 (32-bit counts, 2023) is not read: convert it with "
                          "a current llama.cpp", fn);
    if ((version & 0xffff) == 0 && version)
        return embed_fail(err, EMBED_ERR_FORMAT,
                          "%s: GGUF version %llu read little-endian: a big-endian GGUF file "
                          "(not read)", fn, (unsigned long long)version);
    if (version != 2 && version != 3)
        return embed_fail(err, EMBED_ERR_FORMAT,
                          "%s: GGUF version %llu at byte 4 (versions 2 and 3 are read)", fn,
                          (unsigned long long)version);
    f->gguf_version = (uint32_t)version;
    c.i = 24;
    /* a key-value takes at least 8 + 1 + 4 + 1 bytes, a tensor info 8 + 1 +
     * 4 + 8 + 4 + 8: counts beyond that cannot be right */
    if (nkv > (f->len - 24) / 14)
        return embed_fail(err, EMBED_ERR_FORMAT,
                          "%s: key-value count %llu at byte 16 cannot fit in a %zu-byte file", fn,
                          (unsigned long long)nkv, f->len);
    if (nt > (f->len - 24) / 33)
        return embed_fail(err, EMBED_ERR_FORMAT,
                          "%s: tensor count %llu at byte 8 cannot fit in a %zu-byte file", fn,
                          (unsigned long long)nt, f->len);
    f->gguf_n_kv = nkv;
    f->gguf_kv_at = gpt2in_malloc(((size_t)nkv + 1) * sizeof *f->gguf_kv_at);
    f->meta = gpt2in_malloc(((size_t)nkv * 2 + 1) * sizeof *f->meta);
    if (!f->gguf_kv_at || !f->meta) return embed_fail(err, EMBED_ERR_NOMEM, "%s: out of memory", fn);
    /* pass 1 counts the arena, pass 2 fills it */
    uint64_t align = GGUF_DEFAULT_ALIGN;
    arena a = {NULL, 0};
    embed_keyset seen = {0};  /* pass 2's keys, for a repeated one */
    for (int pass = 0; pass < 2; pass++) {
        c.i = 24;
        for (uint64_t k = 0; k < nkv; k++) {
            const char *key = NULL, *val = NULL;
            f->gguf_kv_at[k] = c.i;
            int rc = parse_kv(&c, k, &a, &key, &val, &align);
            if (rc) {
                embed_keyset_free(&seen);
                return rc;
            }
            if (pass) {
                size_t j;
                f->meta[2 * k] = key;
                f->meta[2 * k + 1] = val;
                int dup = embed_keyset_add(&seen, f->meta, (size_t)k, &j);
                if (dup) {
                    embed_keyset_free(&seen);
                    if (dup < 0) return embed_fail(err, EMBED_ERR_NOMEM, "%s: out of memory", fn);
                    return embed_fail(err, EMBED_ERR_FORMAT,
                                      "%s: key %s appears twice (key-values %llu and %llu)",
                                      fn, embed_st_quote(key, q, sizeof q),
                                      (unsigned long long)j, (unsigned long long)k);
                }
            }
        }
        if (!pass) {
            f->strings = gpt2in_malloc(a.n + 1);
            if (!f->strings) return embed_fail(err, EMBED_ERR_NOMEM, "%s: out of memory", fn);
            a.p = f->strings;
            a.n = 0;
        }
    }
    embed_keyset_free(&seen);
    f->gguf_kv_at[nkv] = c.i;
    f->gguf_kv_end = c.i;
    f->n_meta = (size_t)nkv;
    f->has_meta = nkv > 0;
    f->gguf_align = align;

    /* tensor infos: names are kept in a second arena */
    f->t = gpt2in_calloc((size_t)nt + 1, sizeof *f->t);
    f->gguf_type = gpt2in_calloc((size_t)nt + 1, sizeof *f->gguf_type);
    char *names = gpt2in_malloc((size_t)nt * (GGUF_MAX_NAME + 1) + 1);
    if (!f->t || !f->gguf_type || !names) {
        free(names);
        return embed_fail(err, EMBED_ERR_NOMEM, "%s: out of memory", fn);
    }
    f->gguf_names = names;
    for (uint64_t i = 0; i < nt; i++) {
        embed_tensor *t = &f->t[i];
        const unsigned char *s;
        uint64_t n, nd, type, off;
        size_t at = c.i;
        snprintf(m, sizeof m, "tensor info %llu's name", (unsigned long long)i);
        if (rd_str(&c, &s, &n, m)) return EMBED_ERR_FORMAT;
        if (n == 0 || n > GGUF_MAX_NAME || memchr(s, 0, (size_t)n) ||
            embed_st_utf8_check(s, (size_t)n) != n) {
            snprintf(m, sizeof m, "tensor info %llu: its name is empty, over 63 bytes or not "
                                  "UTF-8 text", (unsigned long long)i);
            return cfail(&c, at, "%s", m);
        }
        char *nm = names + i * (GGUF_MAX_NAME + 1);
        memcpy(nm, s, (size_t)n);
        nm[n] = 0;
        t->name = nm;
        embed_st_quote(nm, q, sizeof q);
        snprintf(m, sizeof m, "tensor %s's dimensions", q);
        size_t dat = c.i;
        if (rd(&c, 4, &nd, m)) return EMBED_ERR_FORMAT;
        if (nd < 1 || nd > 4) {
            snprintf(m, sizeof m, "tensor %s has %llu dimensions (1 to 4)", q,
                     (unsigned long long)nd);
            return cfail(&c, dat, "%s", m);
        }
        uint64_t dims[4];
        for (uint64_t d = 0; d < nd; d++) {
            if (rd(&c, 8, &dims[d], m)) return EMBED_ERR_FORMAT;
            if (dims[d] > INT64_MAX) {
                snprintf(m, sizeof m, "tensor %s: dimension %llu is negative as ggml's int64", q,
                         (unsigned long long)d);
                return cfail(&c, c.i - 8, "%s", m);
            }
        }
        size_t tat = c.i;
        snprintf(m, sizeof m, "tensor %s's type", q);
        if (rd(&c, 4, &type, m)) return EMBED_ERR_FORMAT;
        if (type >= N_GGML || !ggml_types[type].name) {
            snprintf(m, sizeof m, "tensor %s has ggml type %llu, which gpt2in does not know", q,
                     (unsigned long long)type);
            return cfail(&c, tat, "%s", m);
        }
        snprintf(m, sizeof m, "tensor %s's offset", q);
        if (rd(&c, 8, &off, m)) return EMBED_ERR_FORMAT;
        /* row-major shape: GGUF's dims reversed */
        t->ndim = (int)nd;
        for (uint64_t d = 0; d < nd; d++) t->shape[nd - 1 - d] = dims[d];
        t->dtype = dtype_of((unsigned)type);
        f->gguf_type[i] = (uint32_t)type;
        unsigned bl = ggml_types[type].blck, bs = ggml_types[type].size;
        uint64_t count = 1;
        int over = 0;
        for (uint64_t d = 0; d < nd; d++) {
            if (dims[d] && count > INT64_MAX / dims[d]) over = 1;
            else count *= dims[d];
        }
        embed_st_shape_str(t->dtype, t->ndim, t->shape, s1, sizeof s1);
        if (over || (count / bl) > UINT64_MAX / bs) {
            snprintf(m, sizeof m, "tensor %s: %s has too many elements", q, s1);
            return cfail(&c, dat, "%s", m);
        }
        if (dims[0] % bl) {
            snprintf(m, sizeof m, "tensor %s: %s rows of %llu are not whole %s blocks of %u", q,
                     s1, (unsigned long long)dims[0], ggml_types[type].name, bl);
            return cfail(&c, dat, "%s", m);
        }
        t->begin = off;
        t->end = count / bl * bs; /* bytes for now; made an offset below */
    }
    f->gguf_info_end = c.i;
    f->n_t = (size_t)nt;
    uint64_t data = ((uint64_t)c.i + align - 1) / align * align;
    /* a file of key-values only (a vocabulary) may end unpadded */
    if (!f->n_t && data > f->len) data = f->len;
    if (data > f->len)
        return embed_fail(err, EMBED_ERR_FORMAT,
                          "%s: the data section would start at byte %llu (the tensor infos end at "
                          "%zu, aligned to %llu) but the file is %zu bytes (truncated?)", fn,
                          (unsigned long long)data, c.i, (unsigned long long)align, f->len);
    uint64_t dlen = f->len - data, expect = 0;
    for (size_t i = 0; i < f->n_t; i++) {
        embed_tensor *t = &f->t[i];
        uint64_t bytes = t->end;
        embed_st_quote(t->name, q, sizeof q);
        if (t->begin != expect)
            return embed_fail(err, EMBED_ERR_FORMAT,
                              "%s: tensor %s has data offset %llu; it should be %llu (each tensor "
                              "starts where the previous ends, padded to %llu bytes)", fn, q,
                              (unsigned long long)t->begin, (unsigned long long)expect,
                              (unsigned long long)align);
        if (bytes > dlen - t->begin)
            return embed_fail(err, EMBED_ERR_FORMAT,
                              "%s: tensor %s (%s, %llu bytes at data offset %llu) runs past the "
                              "end of the file (%llu data bytes; truncated?)", fn, q,
                              embed_st_shape_str(t->dtype, t->ndim, t->shape, s1, sizeof s1),
                              (unsigned long long)bytes, (unsigned long long)t->begin,
                              (unsigned long long)dlen);
        t->end = t->begin + bytes;
        t->data = f->base + data + t->begin;
        expect = t->end + (align - t->end % align) % align;
        if (expect < t->end) expect = UINT64_MAX; /* cannot happen below the file size */
    }
    uint64_t used = f->n_t ? f->t[f->n_t - 1].end : 0;
    /* the last tensor's padding may be there or not */
    if (f->n_t && dlen > expect)
        return embed_fail(err, EMBED_ERR_FORMAT,
                          "%s: %llu trailing bytes after the last tensor's data (which ends at "
                          "byte %llu)", fn, (unsigned long long)(dlen - used),
                          (unsigned long long)(data + used));
    if (!f->n_t && dlen)
        return embed_fail(err, EMBED_ERR_FORMAT, "%s: %llu bytes of data but no tensors", fn,
                          (unsigned long long)dlen);
    f->header_len = (size_t)data;
    /* duplicate names */
    if (f->n_t > 1) {
        embed_tensor **by = gpt2in_malloc(f->n_t * sizeof *by);
        if (!by) return embed_fail(err, EMBED_ERR_NOMEM, "%s: out of memory", fn);
        for (size_t i = 0; i < f->n_t; i++) by[i] = &f->t[i];
        qsort(by, f->n_t, sizeof *by, cmp_name);
        for (size_t i = 1; i < f->n_t; i++)
            if (!strcmp(by[i]->name, by[i - 1]->name)) {
                embed_st_quote(by[i]->name, q, sizeof q);
                free(by);
                return embed_fail(err, EMBED_ERR_FORMAT, "%s: tensor %s appears twice", fn, q);
            }
        free(by);
    }
    return EMBED_OK;
}

/* ---- writing back ------------------------------------------------------------ */

static void put_u32(unsigned char *p, uint32_t v) {
    for (int k = 0; k < 4; k++) p[k] = (unsigned char)(v >> (8 * k));
}
static void put_u64(unsigned char *p, uint64_t v) {
    for (int k = 0; k < 8; k++) p[k] = (unsigned char)(v >> (8 * k));
}

/* A string key-value: u64 key length, key, u32 8, u64 value length, value. */
static int write_str_kv(embed_writer *w, const char *k, const char *v, embed_error *err) {
    unsigned char b[8];
    size_t kn = strlen(k), vn = strlen(v);
    put_u64(b, kn);
    int rc = embed_writer_write(w, b, 8, err);
    if (!rc) rc = embed_writer_write(w, k, kn, err);
    put_u32(b, 8);
    if (!rc) rc = embed_writer_write(w, b, 4, err);
    put_u64(b, vn);
    if (!rc) rc = embed_writer_write(w, b, 8, err);
    if (!rc) rc = embed_writer_write(w, v, vn, err);
    return rc;
}

int embed_gguf_save(embed_writer *given, const char *path, const embed_file *base,
                    const embed_out_tensor *repl, size_t n_repl, const char *const *meta,
                    size_t n_meta, embed_error *err) {
    char q[128];
    int rc = embed_repl_check(path, base, repl, n_repl, 0, err);
    if (rc) return rc;
    for (size_t r = 0; r < n_repl; r++) {
        const embed_tensor *t = embed_find(base, repl[r].name);
        if (t->dtype != EMBED_F32 && t->dtype != EMBED_F16 && t->dtype != EMBED_BF16)
            return embed_fail(err, EMBED_ERR_DTYPE,
                              "%s: tensor %s of %s is %s: gpt2in writes back only F32, F16 and "
                              "BF16 tensors (it does not re-quantise); convert the table to F16 "
                              "or F32 first", path, embed_st_quote(t->name, q, sizeof q),
                              base->name, embed_dtype_name(t->dtype));
    }
    for (size_t i = 0; i < n_meta; i++) {
        const char *k = meta[2 * i], *v = meta[2 * i + 1];
        if (!k || !v || !*k)
            return embed_fail(err, EMBED_ERR_ARG, "%s: metadata pair %zu has no key or value",
                              path, i);
        if (!strcmp(k, "general.alignment"))
            return embed_fail(err, EMBED_ERR_ARG,
                              "%s: general.alignment cannot be set as metadata", path);
    }
    embed_writer *w = embed_save_open(given, path, &rc, err);
    if (!w) return rc;
    if (!n_meta) {
        /* the header as it is: every byte outside the replaced tensors kept */
        rc = embed_write_replaced(w, base, repl, n_repl, base->header_len, 0, err);
    } else {
        /* key-values: base's in order, a key given in meta replaced by a
         * string; the new keys after them */
        uint64_t nkv = base->gguf_n_kv;
        for (size_t i = 0; i < n_meta; i++) {
            size_t j;
            for (j = 0; j < base->n_meta; j++)
                if (!strcmp(base->meta[2 * j], meta[2 * i])) break;
            size_t d;
            for (d = 0; d < i; d++)
                if (!strcmp(meta[2 * d], meta[2 * i])) break;
            if (j == base->n_meta && d == i) nkv++;
        }
        unsigned char h[24];
        memcpy(h, base->base, 16);
        put_u64(h + 16, nkv);
        rc = embed_writer_write(w, h, 24, err);
        uint64_t pos = 24;
        for (size_t j = 0; j < base->n_meta && !rc; j++) {
            size_t i, last = n_meta;
            for (i = 0; i < n_meta; i++)
                if (!strcmp(base->meta[2 * j], meta[2 * i])) last = i;
            size_t a = base->gguf_kv_at[j], b = base->gguf_kv_at[j + 1];
            if (last < n_meta) {
                rc = write_str_kv(w, meta[2 * last], meta[2 * last + 1], err);
                pos += 20 + strlen(meta[2 * last]) + strlen(meta[2 * last + 1]);
            } else {
                rc = embed_writer_write(w, base->base + a, b - a, err);
                pos += b - a;
            }
        }
        for (size_t i = 0; i < n_meta && !rc; i++) {
            size_t j, d, last = i;
            for (j = 0; j < base->n_meta; j++)
                if (!strcmp(base->meta[2 * j], meta[2 * i])) break;
            for (d = i + 1; d < n_meta; d++)
                if (!strcmp(meta[2 * d], meta[2 * i])) last = d;
            int first = 1;
            for (d = 0; d < i; d++)
                if (!strcmp(meta[2 * d], meta[2 * i])) first = 0;
            if (j == base->n_meta && first) {
                rc = write_str_kv(w, meta[2 * last], meta[2 * last + 1], err);
                pos += 20 + strlen(meta[2 * last]) + strlen(meta[2 * last + 1]);
            }
        }
        /* tensor infos as they are, then zeros to the alignment */
        if (!rc)
            rc = embed_writer_write(w, base->base + base->gguf_kv_end,
                                    base->gguf_info_end - base->gguf_kv_end, err);
        pos += base->gguf_info_end - base->gguf_kv_end;
        if (!rc) {
            static const unsigned char zeros[256];
            uint64_t A = base->gguf_align, pad = (A - pos % A) % A;
            while (!rc && pad) {
                size_t k = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
                rc = embed_writer_write(w, zeros, k, err);
                pad -= k;
            }
        }
        if (!rc)
            rc = embed_write_replaced(w, base, repl, n_repl, base->header_len, base->header_len,
                                      err);
    }
    return embed_save_close(given, w, rc, err);
}
