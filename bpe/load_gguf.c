/* load_gguf.c - the vocabulary of a GGUF file (versions 2 and 3): the keys
 * tokenizer.ggml.model ("gpt2"), .tokens (byte-level strings, index = id),
 * .merges ("a b", rank order), .token_type (1 normal, 3 control, 4
 * user-defined) and .eos_token_id. Only the key-value section is read; the
 * tensors after it are never touched (a mapped model file costs its header
 * only).
 *
 * Special tokens are the control and user-defined ones and the end-of-text
 * id (also the end of text, bpe_eot_id; without an eos id, the one control
 * token when there is one); their strings are taken as they stand, as
 * llama.cpp does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load_vocab.h"

enum {
    G_U8, G_I8, G_U16, G_I16, G_U32, G_I32, G_F32, G_BOOL, G_STRING, G_ARRAY, G_U64, G_I64, G_F64, G_TYPES
};
static const char *const type_names[G_TYPES] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                                "bool", "string", "array", "u64", "i64", "f64"};
/* bytes of a scalar; a string's least (its length) */
static const uint8_t type_size[G_TYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8};

typedef struct {
    const uint8_t *d;
    size_t len, at;
    const char *name;
    bpe_error *err;
} cur;

static int fail_at(cur *c, size_t at, const char *what) {
    return bpe_fail(c->err, BPE_ERR_FORMAT, at, "%s: at byte %zu: %s", c->name, at, what);
}

static uint64_t le(const uint8_t *p, int n) {
    uint64_t x = 0;
    for (int i = n; i-- > 0;) x = x << 8 | p[i];
    return x;
}

static int get(cur *c, int n, uint64_t *x, const char *what) {
    if (c->len - c->at < (size_t)n) {
        char m[160];
        snprintf(m, sizeof m, "truncated (%s needs %d bytes, %zu left)", what, n, c->len - c->at);
        return fail_at(c, c->at, m);
    }
    *x = le(c->d + c->at, n);
    c->at += (size_t)n;
    return BPE_OK;
}

/* A string: its bytes stay in the file. */
static int get_str(cur *c, const uint8_t **s, size_t *n, const char *what) {
    uint64_t l = 0;
    size_t at = c->at;
    if (get(c, 8, &l, what)) return BPE_ERR_FORMAT;
    if (l > c->len - c->at) {
        char m[200];
        snprintf(m, sizeof m, "%s of %llu bytes runs past the end of the file (%zu left)", what,
                 (unsigned long long)l, c->len - c->at);
        return fail_at(c, at, m);
    }
    *s = c->d + c->at;
    *n = (size_t)l;
    c->at += (size_t)l;
    return BPE_OK;
}

/* Skips a value of type t (arrays nest at most 4 deep). */
static int skip(cur *c, uint32_t t, int depth) {
    size_t at = c->at;
    if (t >= G_TYPES) {
        char m[80];
        snprintf(m, sizeof m, "unknown value type %u", t);
        return fail_at(c, at, m);
    }
    if (t == G_STRING) {
        const uint8_t *s;
        size_t n;
        return get_str(c, &s, &n, "a string");
    }
    if (t != G_ARRAY) {
        uint64_t x;
        return get(c, type_size[t], &x, type_names[t]);
    }
    uint64_t et = 0, count = 0;
    if (depth >= 4) return fail_at(c, at, "arrays nested more than 4 deep");
    if (get(c, 4, &et, "an array's type") || get(c, 8, &count, "an array's count")) return BPE_ERR_FORMAT;
    if (et >= G_TYPES) {
        char m[80];
        snprintf(m, sizeof m, "unknown array element type %llu", (unsigned long long)et);
        return fail_at(c, at, m);
    }
    if (count > (c->len - c->at) / type_size[et]) {
        char m[160];
        snprintf(m, sizeof m, "an array of %llu %s does not fit in the %zu bytes left", (unsigned long long)count,
                 type_names[et], c->len - c->at);
        return fail_at(c, at, m);
    }
    if (et != G_STRING && et != G_ARRAY) {
        c->at += (size_t)count * type_size[et];
        return BPE_OK;
    }
    for (uint64_t i = 0; i < count; i++)
        if (skip(c, (uint32_t)et, depth + 1)) return BPE_ERR_FORMAT;
    return BPE_OK;
}

/* Where an array of the tokenizer's keys starts (after its header). */
typedef struct {
    int have;
    size_t key_at, at;
    uint64_t count;
    uint32_t type;
} arr;

static int key_is(const uint8_t *k, size_t n, const char *s) { return n == strlen(s) && !memcmp(k, s, n); }

/* A key's bytes and its place among the key-values. */
typedef struct {
    const uint8_t *s;
    size_t n;
    uint64_t i;
} key_span;

static int key_order(const void *pa, const void *pb) {
    const key_span *a = pa, *b = pb;
    if (a->n != b->n) return a->n < b->n ? -1 : 1;
    int c = memcmp(a->s, b->s, a->n);
    return c ? c : a->i < b->i ? -1 : 1;
}

/* Refuses a key that stands twice (as llama.cpp's reader does), naming the
 * first repeat in the file: sorted, equal keys are neighbours, in
 * O(n log n). */
static int no_duplicate_key(cur *c, key_span *keys, uint64_t n) {
    qsort(keys, (size_t)n, sizeof *keys, key_order);
    uint64_t first = 0;  /* the repeat earliest in the file, 0: none */
    for (uint64_t i = 1; i < n; i++)
        if (keys[i].n == keys[i - 1].n && !memcmp(keys[i].s, keys[i - 1].s, keys[i].n) &&
            (!first || keys[i].i < keys[first].i))
            first = i;
    if (!first) return BPE_OK;
    char m[300], q[160];
    const key_span *k = &keys[first];
    snprintf(m, sizeof m, "key %s appears twice (key-values %llu and %llu)", bpe_lv_quote(q, sizeof q, k->s, k->n),
             (unsigned long long)k[-1].i, (unsigned long long)k->i);
    return fail_at(c, (size_t)(k->s - c->d) - 8, m);
}

/* What the key-value section says about the vocabulary. */
typedef struct {
    arr tokens, merges, types;
    const uint8_t *model, *pre;
    size_t model_n, pre_n, eos_at;
    int have_eos, prefix;
    uint64_t eos;
} kv_found;

/* Reads key-value i at c->at: a tokenizer key into f, any other key's value
 * skipped; the key's bytes into *k. */
static int read_kv(cur *c, uint64_t i, key_span *k, kv_found *f) {
    const uint8_t *key;
    size_t kn, key_at = c->at;
    uint64_t t = 0;
    char m[300], q[160];
    if (get_str(c, &key, &kn, "a key") || get(c, 4, &t, "a value type")) return BPE_ERR_FORMAT;
    *k = (key_span){key, kn, i};
    if (!(kn > 16 && !memcmp(key, "tokenizer.ggml.", 15))) return skip(c, (uint32_t)t, 0);
    arr *a = key_is(key, kn, "tokenizer.ggml.tokens") ? &f->tokens : key_is(key, kn, "tokenizer.ggml.merges") ? &f->merges
             : key_is(key, kn, "tokenizer.ggml.token_type") ? &f->types : NULL;
    if (a) {
        uint64_t et = 0;
        size_t start = c->at;
        if (t == G_ARRAY && skip(c, G_ARRAY, 0)) return BPE_ERR_FORMAT;
        if (t == G_ARRAY) et = le(c->d + start, 4);
        int want = a == &f->types ? G_I32 : G_STRING;
        if (t != G_ARRAY || (et != (uint64_t)want && !(a == &f->types && et == G_U32))) {
            snprintf(m, sizeof m, "%s is %s, not an array of %s", bpe_lv_quote(q, sizeof q, key, kn),
                     t < G_TYPES ? (t == G_ARRAY && et < G_TYPES ? type_names[et] : type_names[t]) : "unknown",
                     type_names[want]);
            return fail_at(c, key_at, m);
        }
        *a = (arr){1, key_at, start + 12, le(c->d + start + 4, 8), (uint32_t)et};
        return BPE_OK;
    }
    size_t vat = c->at;
    if (key_is(key, kn, "tokenizer.ggml.model") || key_is(key, kn, "tokenizer.ggml.pre")) {
        const uint8_t *s;
        size_t n;
        if (t != G_STRING) {
            snprintf(m, sizeof m, "%s is not a string", bpe_lv_quote(q, sizeof q, key, kn));
            return fail_at(c, key_at, m);
        }
        if (get_str(c, &s, &n, "a string")) return BPE_ERR_FORMAT;
        if (key[15] == 'm') f->model = s, f->model_n = n;
        else f->pre = s, f->pre_n = n;
        return BPE_OK;
    }
    if (key_is(key, kn, "tokenizer.ggml.eos_token_id")) {
        if (t != G_U32 && t != G_I32 && t != G_U64 && t != G_I64) {
            snprintf(m, sizeof m, "tokenizer.ggml.eos_token_id is %s, not an integer",
                     t < G_TYPES ? type_names[t] : "unknown");
            return fail_at(c, key_at, m);
        }
        if (get(c, type_size[t], &f->eos, "the end-of-text id")) return BPE_ERR_FORMAT;
        if ((t == G_I32 && f->eos >> 31) || (t == G_I64 && f->eos >> 63)) f->eos = UINT64_MAX;
        f->have_eos = 1;
        f->eos_at = vat;
        return BPE_OK;
    }
    if (key_is(key, kn, "tokenizer.ggml.add_space_prefix")) {
        uint64_t b = 0;  /* (one that is not a bool counts as false) */
        int rc = t != G_BOOL ? skip(c, (uint32_t)t, 0) : get(c, 1, &b, "a bool");
        f->prefix = b != 0;
        return rc;
    }
    return skip(c, (uint32_t)t, 0);
}

/* Reads the n_kv key-values into f, then refuses a key that stands twice. */
static int read_kvs(cur *c, uint64_t n_kv, kv_found *f) {
    key_span *keys = gpt2in_malloc(n_kv ? (size_t)n_kv * sizeof *keys : 1);
    if (!keys) return bpe_fail(c->err, BPE_ERR_NOMEM, 0, "%s: out of memory", c->name);
    int rc = BPE_OK;
    for (uint64_t i = 0; i < n_kv && !rc; i++) rc = read_kv(c, i, &keys[i], f);
    if (!rc) rc = no_duplicate_key(c, keys, n_kv);
    free(keys);
    return rc;
}

bpe *bpe_load_gguf_mem(const char *data, size_t len, const char *name, bpe_error *err) {
    if (!data) {
        bpe_fail(err, BPE_ERR_ARG, 0, "bpe_load_gguf_mem: NULL buffer");
        return NULL;
    }
    if (!name) name = "GGUF file";
    cur c = {(const uint8_t *)data, len, 0, name, err};
    uint64_t magic = 0, version = 0, n_tensors = 0, n_kv = 0;
    if (get(&c, 4, &magic, "the magic")) return NULL;
    if (memcmp(data, "GGUF", 4)) {
        fail_at(&c, 0, "not a GGUF file (no \"GGUF\" magic)");
        return NULL;
    }
    if (get(&c, 4, &version, "the version")) return NULL;
    if (version != 2 && version != 3) {
        char m[120];
        snprintf(m, sizeof m, "GGUF version %llu is not supported (2 or 3)", (unsigned long long)version);
        fail_at(&c, 4, m);
        return NULL;
    }
    if (get(&c, 8, &n_tensors, "the tensor count") || get(&c, 8, &n_kv, "the key count")) return NULL;
    if (n_kv > (len - c.at) / 13) {  /* a key-value pair takes 13 bytes at least */
        char m[160];
        snprintf(m, sizeof m, "%llu keys cannot fit in the %zu bytes left", (unsigned long long)n_kv, len - c.at);
        fail_at(&c, 16, m);
        return NULL;
    }
    kv_found f = {0};
    if (read_kvs(&c, n_kv, &f)) return NULL;
    arr tokens = f.tokens, merges = f.merges, types = f.types;
    const uint8_t *model = f.model, *pre = f.pre;
    size_t model_n = f.model_n, pre_n = f.pre_n;
    uint64_t eos = f.eos;
    char m[300], q[160];
    if (!model) {
        fail_at(&c, c.at, "no tokenizer.ggml.model: this GGUF file carries no vocabulary");
        return NULL;
    }
    if (!key_is(model, model_n, "gpt2")) {
        snprintf(m, sizeof m, "tokenizer.ggml.model is %s, not \"gpt2\" (GPT-2's byte-level BPE)",
                 bpe_lv_quote(q, sizeof q, model, model_n));
        fail_at(&c, (size_t)(model - c.d), m);
        return NULL;
    }
    /* llama.cpp's "default" splits punctuation runs and digits in threes
     * before GPT-2's pattern: not GPT-2's pieces */
    if (pre && !key_is(pre, pre_n, "gpt-2")) {
        snprintf(m, sizeof m, "tokenizer.ggml.pre is %s, not GPT-2's pre-tokenizer (\"gpt-2\")%s",
                 bpe_lv_quote(q, sizeof q, pre, pre_n),
                 key_is(pre, pre_n, "default") ? ": llama.cpp's default also splits digits in threes" : "");
        fail_at(&c, (size_t)(pre - c.d), m);
        return NULL;
    }
    if (f.prefix) {
        fail_at(&c, 0, "tokenizer.ggml.add_space_prefix is true; GPT-2 adds no space");
        return NULL;
    }
    if (!tokens.have || !merges.have) {
        fail_at(&c, c.at, tokens.have ? "no tokenizer.ggml.merges" : "no tokenizer.ggml.tokens");
        return NULL;
    }
    if (tokens.count == 0 || tokens.count >= BPE_MAX_TOKENS) {
        snprintf(m, sizeof m, "tokenizer.ggml.tokens has %llu tokens (1..%u)", (unsigned long long)tokens.count,
                 BPE_MAX_TOKENS - 1);
        fail_at(&c, tokens.key_at, m);
        return NULL;
    }
    uint32_t n = (uint32_t)tokens.count;
    if (types.have && types.count != n) {
        snprintf(m, sizeof m, "tokenizer.ggml.token_type has %llu entries for %u tokens",
                 (unsigned long long)types.count, n);
        fail_at(&c, types.key_at, m);
        return NULL;
    }
    if (f.have_eos && eos >= n) {
        snprintf(m, sizeof m, "tokenizer.ggml.eos_token_id %lld is not a token id (0..%u)",
                 eos == UINT64_MAX ? -1LL : (long long)eos, n - 1);
        fail_at(&c, f.eos_at, m);
        return NULL;
    }
    /* Special tokens: control and user-defined ones, and the end of text. */
    int64_t eot = f.have_eos ? (int64_t)eos : -1;
    uint32_t n_control = 0, control = 0;
    for (uint32_t i = 0; types.have && i < n; i++) {
        size_t at = types.at + (size_t)i * 4;
        uint32_t ty = (uint32_t)le(c.d + at, 4);
        if (ty == 1 || ty == 4) continue;
        if (ty == 3) {
            n_control++;
            control = i;
            continue;
        }
        static const char *const kinds[] = {"undefined", "normal", "unknown", "control", "user-defined", "unused", "byte"};
        snprintf(m, sizeof m, "token %u has type %u (%s); a gpt2 vocabulary has normal, control and user-defined "
                 "tokens", i, ty, ty < 7 ? kinds[ty] : "unknown");
        fail_at(&c, at, m);
        return NULL;
    }
    if (eot < 0 && n_control == 1) eot = control;

    lv_vocab lv;
    char lname[600];
    snprintf(lname, sizeof lname, "%s: tokenizer.ggml.tokens", name);
    if (bpe_lv_init(&lv, name, n, err)) return NULL;
    lv.eot = (int32_t)eot;
    if (eot >= 0) bpe_lv_special(&lv, (uint32_t)eot, 0);
    for (uint32_t i = 0; types.have && i < n; i++) {
        uint32_t ty = (uint32_t)le(c.d + types.at + (size_t)i * 4, 4);
        if (ty == 3 || ty == 4) bpe_lv_special(&lv, i, 0);
    }
    bpe *v = NULL;
    uint8_t *buf = gpt2in_malloc(2 * LV_MAX_TEXT);
    if (!buf) {
        bpe_fail(err, BPE_ERR_NOMEM, 0, "%s: out of memory", name);
        goto out;
    }
    c.at = tokens.at;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *s;
        size_t sn, at = c.at, bad = 0;
        if (get_str(&c, &s, &sn, "a token")) goto out;
        int special = lv.special[i];
        if (!special && sn > LV_MAX_TEXT) {
            snprintf(m, sizeof m, "tokenizer.ggml.tokens[%u] %s has %zu characters, more than the %d of a token", i,
                     bpe_lv_quote(q, sizeof q, s, sn), sn, LV_MAX_TEXT);
            fail_at(&c, at, m);
            goto out;
        }
        long nb = special ? (long)sn : bpe_lv_byte_level((const char *)s, sn, buf, &bad);
        if (nb <= 0 || special) {
            if (nb < 0 || sn == 0) {
                snprintf(m, sizeof m, "tokenizer.ggml.tokens[%u] %s is %s", i, bpe_lv_quote(q, sizeof q, s, sn),
                         sn ? "not a byte-level token" : "empty");
                fail_at(&c, at, m);
                goto out;
            }
        }
        uint32_t other;
        int e = bpe_lv_set(&lv, i, special ? s : buf, (size_t)nb, &other);
        if (e == BPE_ERR_NOMEM) {
            bpe_fail(err, e, 0, "%s: out of memory", name);
            goto out;
        }
        if (e) {
            snprintf(m, sizeof m, "tokenizer.ggml.tokens[%u] %s is token %u already", i, bpe_lv_quote(q, sizeof q, s, sn),
                     other);
            fail_at(&c, at, m);
            goto out;
        }
    }
    if (bpe_lv_rank_bytes(&lv, err)) goto out;
    snprintf(lname, sizeof lname, "%s: tokenizer.ggml.merges", name);
    lv.name = lname;
    c.at = merges.at;
    for (uint64_t i = 0; i < merges.count; i++) {
        const uint8_t *s;
        size_t sn, at = c.at, bad;
        if (get_str(&c, &s, &sn, "a merge")) goto out;
        const uint8_t *sp = sn ? memchr(s, ' ', sn) : NULL;
        long la = -1, lb = -1;
        if (sp && sp > s && sp + 1 < s + sn && !memchr(sp + 1, ' ', sn - (size_t)(sp - s) - 1) &&
            sp - s <= LV_MAX_TEXT && sn - (size_t)(sp - s) - 1 <= LV_MAX_TEXT) {
            la = bpe_lv_byte_level((const char *)s, (size_t)(sp - s), buf, &bad);
            lb = la > 0 ? bpe_lv_byte_level((const char *)sp + 1, sn - (size_t)(sp - s) - 1, buf + LV_MAX_TEXT, &bad) : -1;
        }
        if (la <= 0 || lb <= 0) {
            snprintf(m, sizeof m, "tokenizer.ggml.merges[%llu] %s is not two byte-level tokens separated by one space",
                     (unsigned long long)i, bpe_lv_quote(q, sizeof q, s, sn));
            fail_at(&c, at, m);
            goto out;
        }
        if (i >= n) {  /* every merge makes a new token: more merges than tokens cannot be */
            fail_at(&c, at, "more merges than tokens");
            goto out;
        }
        if (bpe_lv_merge(&lv, buf, (size_t)la, buf + LV_MAX_TEXT, (size_t)lb, "index", (uint32_t)i, err)) goto out;
    }
    lv.name = lname;
    snprintf(lname, sizeof lname, "%s: tokenizer.ggml.tokens", name);
    v = bpe_lv_finish(&lv, err);
out:
    free(buf);
    bpe_lv_free(&lv);
    return v;
}
