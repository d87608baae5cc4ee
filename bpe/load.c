/* load.c - reading encoder.json + vocab.bpe (the image is built by image.c).
 *
 * Ranks are the ids of encoder.json, as in tiktoken: two adjacent parts of a
 * piece merge when their concatenated bytes are a token, lowest id first.
 * For GPT-2's files this equals the order of vocab.bpe (merge line i makes
 * token 256 + i); vocab.bpe is checked for consistency with encoder.json.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "bpe_internal.h"
#include "encode.h"
#include "load_vocab.h"

/* ---- checked growth ---------------------------------------------------------- */

/* A growable array of elements of one size; every allocation is checked. */
typedef struct {
    void *p;
    size_t n, cap; /* in elements */
} vec;

/* Room for count more elements at the end (returned, counted in n), or NULL
 * with v unchanged when out of memory. */
static void *vec_add(vec *v, size_t elem, size_t count) {
    if (count > v->cap - v->n) {
        size_t cap = v->cap ? v->cap : 16;
        while (cap - v->n < count) {
            if (cap > SIZE_MAX / 2 / elem) return NULL;
            cap *= 2;
        }
        void *p = gpt2in_realloc(v->p, cap * elem);
        if (!p) return NULL;
        v->p = p;
        v->cap = cap;
    }
    void *at = (char *)v->p + v->n * elem;
    v->n += count;
    return at;
}

/* ---- GPT-2's byte <-> unicode map ---------------------------------------- */

/* Printable bytes stand for themselves; the other 68 are shifted to U+0100+n
 * so every token is a printable string. Returns -1 for other code points. */
static int unicode_to_byte(uint32_t cp) {
    static const int shifted_first = 0x100;
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return (int)cp;
    if (cp < shifted_first || cp >= shifted_first + 68) return -1;
    int n = (int)(cp - shifted_first);
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        if (!printable && n-- == 0) return b;
    }
    return -1;
}

/* ---- encoder.json --------------------------------------------------------- */

typedef struct {
    const char *p, *end, *name;
    size_t line;
    const char *line_start;  /* for columns: the real encoder.json is one line */
    bpe_error *err;
} json_in;

static void json_ws(json_in *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) {
        if (*j->p == '\n') j->line++, j->line_start = j->p + 1;
        j->p++;
    }
}

static size_t json_col(const json_in *j) { return (size_t)(j->p - j->line_start) + 1; }

static int json_fail(json_in *j, const char *what) {
    if (j->p >= j->end)
        return bpe_fail(j->err, BPE_ERR_FORMAT, 0, "%s:%zu:%zu: %s (unexpected end of file)", j->name, j->line,
                    json_col(j), what);
    return bpe_fail(j->err, BPE_ERR_FORMAT, 0, "%s:%zu:%zu: %s", j->name, j->line, json_col(j), what);
}

static int hex4(const char *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

/* Reads a JSON string of byte-level characters and maps it to the token's
 * bytes (appended to out, a vec of bytes). */
static int json_token_string(json_in *j, vec *out) {
    if (j->p >= j->end || *j->p != '"') return json_fail(j, "expected a string");
    j->p++;
    for (;;) {
        if (j->p >= j->end) return json_fail(j, "unterminated string");
        uint32_t cp;
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') {
            j->p++;
            return 0;
        } else if (c == '\\') {
            if (j->end - j->p < 2) return json_fail(j, "unterminated string");
            char e = j->p[1];
            j->p += 2;
            switch (e) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = 8; break;
            case 'f': cp = 12; break;
            case 'n': cp = 10; break;
            case 'r': cp = 13; break;
            case 't': cp = 9; break;
            case 'u':
                if (j->end - j->p < 4 || hex4(j->p, &cp)) return json_fail(j, "bad \\u escape");
                j->p += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t lo;
                    if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' || hex4(j->p + 2, &lo) ||
                        lo < 0xDC00 || lo > 0xDFFF)
                        return json_fail(j, "unpaired surrogate in \\u escape");
                    j->p += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return json_fail(j, "unpaired surrogate in \\u escape");
                }
                break;
            default:
                return json_fail(j, "bad escape in string");
            }
        } else if (c < 0x20) {
            return json_fail(j, "control character in string");
        } else {
            utf8proc_int32_t u;
            utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)j->p, j->end - j->p, &u);
            if (n < 0) return json_fail(j, "invalid UTF-8 in string");
            cp = (uint32_t)u;
            j->p += n;
        }
        int b = unicode_to_byte(cp);
        if (b < 0) {
            char what[96];
            snprintf(what, sizeof what, "U+%04X is not a byte-level BPE character", cp);
            return json_fail(j, what);
        }
        uint8_t *at = vec_add(out, 1, 1);
        if (!at) return bpe_fail(j->err, BPE_ERR_NOMEM, 0, "%s: out of memory", j->name);
        *at = (uint8_t)b;
    }
}

typedef struct {
    uint32_t n;
    uint8_t **tok;     /* malloc'd bytes per id */
    uint32_t *len;
    int32_t eot;
} vocab_parse;

static void vocab_parse_free(vocab_parse *vp) {
    if (vp->tok)
        for (uint32_t i = 0; i < vp->n; i++) free(vp->tok[i]);
    free(vp->tok);
    free(vp->len);
}

/* The tokens of encoder.json in file order. */
struct entry {
    uint8_t *bytes;
    size_t nb;
    uint64_t id;
    size_t line, col;
};

/* An open-addressing set of the tokens seen, for duplicate keys: slots hold
 * 1 + an index in entries (0: empty), at most half of them used. */
typedef struct {
    uint32_t *slot;
    size_t mask;
} token_set;

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h ^ h >> 29;
}

/* The index in entries of a token equal to e, or -1 when there is none. */
static ptrdiff_t set_find(const token_set *s, const struct entry *entries, const struct entry *e) {
    if (!s->slot) return -1;
    for (size_t h = hash_bytes(e->bytes, e->nb);; h++) {
        uint32_t x = s->slot[h & s->mask];
        if (!x) return -1;
        const struct entry *o = &entries[x - 1];
        if (o->nb == e->nb && (!e->nb || !memcmp(o->bytes, e->bytes, e->nb))) return (ptrdiff_t)x - 1;
    }
}

/* Adds entries[i], whose token is not in the set yet (entries[0..i) are);
 * -1 when out of memory. */
static int set_add(token_set *s, const struct entry *entries, uint32_t i) {
    if (!s->slot || (size_t)i + 1 > (s->mask + 1) / 2) {
        size_t size = s->slot ? (s->mask + 1) * 2 : 1024;
        uint32_t *slot = gpt2in_calloc(size, sizeof *slot);
        if (!slot) return -1;
        free(s->slot);
        s->slot = slot;
        s->mask = size - 1;
        for (uint32_t k = 0; k < i; k++) {
            size_t h = hash_bytes(entries[k].bytes, entries[k].nb);
            while (slot[h & s->mask]) h++;
            slot[h & s->mask] = k + 1;
        }
    }
    size_t h = hash_bytes(entries[i].bytes, entries[i].nb);
    while (s->slot[h & s->mask]) h++;
    s->slot[h & s->mask] = i + 1;
    return 0;
}

static const char EOT_TEXT[] = "<|endoftext|>";

static int parse_encoder(const char *buf, size_t len, const char *name, vocab_parse *vp,
                         bpe_error *err) {
    json_in j = {buf, buf + len, name, 1, buf, err};
    vec ev = {0};        /* struct entry */
    token_set seen = {0};
    int rc = BPE_OK;
    vec bytes = {0};

    json_ws(&j);
    if (j.p >= j.end || *j.p != '{') { rc = json_fail(&j, "expected '{' (an encoder.json object)"); goto out; }
    j.p++;
    json_ws(&j);
    if (j.p < j.end && *j.p == '}') { rc = json_fail(&j, "empty vocabulary"); goto out; }
    for (;;) {
        json_ws(&j);
        size_t line = j.line, col = json_col(&j);
        if ((rc = json_token_string(&j, &bytes))) goto out;
        json_ws(&j);
        if (j.p >= j.end || *j.p != ':') { rc = json_fail(&j, "expected ':'"); goto out; }
        j.p++;
        json_ws(&j);
        uint64_t id = 0;
        if (j.p >= j.end || *j.p < '0' || *j.p > '9') { rc = json_fail(&j, "expected a non-negative integer id"); goto out; }
        while (j.p < j.end && *j.p >= '0' && *j.p <= '9') {
            id = id * 10 + (uint64_t)(*j.p++ - '0');
            if (id >= BPE_MAX_TOKENS) { rc = json_fail(&j, "id too large (at most 2097150)"); goto out; }
        }
        if (j.p < j.end && (*j.p == '.' || *j.p == 'e' || *j.p == 'E')) { rc = json_fail(&j, "id is not an integer"); goto out; }
        struct entry e = {bytes.p, bytes.n, id, line, col}, *entries = ev.p;
        ptrdiff_t prev = set_find(&seen, entries, &e);
        if (prev >= 0) {
            rc = bpe_fail(err, BPE_ERR_FORMAT, 0, "%s:%zu:%zu: duplicate token (first at %zu:%zu)", name, line,
                          col, entries[prev].line, entries[prev].col);
            goto out;
        }
        struct entry *at = vec_add(&ev, sizeof e, 1);
        if (!at) { rc = bpe_fail(err, BPE_ERR_NOMEM, 0, "%s: out of memory", name); goto out; }
        *at = e;
        bytes = (vec){0};
        if (set_add(&seen, ev.p, (uint32_t)(ev.n - 1))) {
            rc = bpe_fail(err, BPE_ERR_NOMEM, 0, "%s: out of memory", name);
            goto out;
        }
        json_ws(&j);
        if (j.p < j.end && *j.p == ',') { j.p++; continue; }
        if (j.p < j.end && *j.p == '}') { j.p++; break; }
        rc = json_fail(&j, "expected ',' or '}'");
        goto out;
    }
    json_ws(&j);
    if (j.p != j.end) { rc = json_fail(&j, "unexpected data after the object"); goto out; }

    struct entry *entries = ev.p;
    size_t n = ev.n;
    vp->n = (uint32_t)n;
    vp->eot = -1;
    vp->tok = gpt2in_calloc(n, sizeof *vp->tok);
    vp->len = gpt2in_calloc(n, sizeof *vp->len);
    if (!vp->tok || !vp->len) { rc = bpe_fail(err, BPE_ERR_NOMEM, 0, "%s: out of memory", name); goto out; }
    size_t *entry_of = gpt2in_calloc(n, sizeof *entry_of);  /* 1 + index in entries, 0: not seen */
    if (!entry_of) { rc = bpe_fail(err, BPE_ERR_NOMEM, 0, "%s: out of memory", name); goto out; }
    for (size_t i = 0; i < n; i++) {
        struct entry *e = &entries[i];
        if (e->id >= n) {
            rc = bpe_fail(err, BPE_ERR_FORMAT, 0, "%s:%zu:%zu: id %llu is out of range: %zu tokens need ids 0..%zu",
                      name, e->line, e->col, (unsigned long long)e->id, n, n - 1);
            break;
        }
        if (entry_of[e->id]) {
            const struct entry *first = &entries[entry_of[e->id] - 1];
            rc = bpe_fail(err, BPE_ERR_FORMAT, 0, "%s:%zu:%zu: duplicate id %llu (also at %zu:%zu)", name, e->line,
                      e->col, (unsigned long long)e->id, first->line, first->col);
            break;
        }
        entry_of[e->id] = i + 1;
        size_t nb = e->nb;
        if (nb == 0) {
            rc = bpe_fail(err, BPE_ERR_FORMAT, 0, "%s:%zu:%zu: empty token", name, e->line, e->col);
            break;
        }
        vp->tok[e->id] = e->bytes;  /* handed over */
        e->bytes = NULL;
        vp->len[e->id] = (uint32_t)nb;
        if (nb == sizeof EOT_TEXT - 1 && !memcmp(vp->tok[e->id], EOT_TEXT, nb)) vp->eot = (int32_t)e->id;
    }
    free(entry_of);
    if (rc) goto out;
    uint8_t have[256] = {0};
    for (size_t i = 0; i < n; i++)
        if (vp->len[i] == 1) have[vp->tok[i][0]] = 1;
    for (int b = 0; b < 256; b++)
        if (!have[b]) {
            rc = bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: no token for byte 0x%02X (all 256 bytes must be tokens)", name, b);
            goto out;
        }
out:
    free(bytes.p);
    for (size_t i = 0; i < ev.n; i++) free(((struct entry *)ev.p)[i].bytes);
    free(ev.p);
    free(seen.slot);
    return rc;
}

/* ---- vocab.bpe -------------------------------------------------------------- */

/* Decodes a byte-level token string [p, end) into bytes; -1 if not one. */
static int decode_token_text(const char *p, const char *end, uint8_t *out, size_t cap, size_t *n) {
    size_t k = 0;
    while (p < end) {
        utf8proc_int32_t u;
        utf8proc_ssize_t m = utf8proc_iterate((const utf8proc_uint8_t *)p, end - p, &u);
        if (m < 0) return -1;
        int b = unicode_to_byte((uint32_t)u);
        if (b < 0 || k >= cap) return -1;
        out[k++] = (uint8_t)b;
        p += m;
    }
    *n = k;
    return 0;
}

/* Whether token id is one of the two tiktoken's loader takes out of
 * encoder.json before it compares it with the merges. */
static int merge_exempt(const struct bpe *v, uint32_t id) {
    static const char sot[] = "<|startoftext|>";
    uint32_t a = v->tok_off[id], n = v->tok_off[id + 1] - a;
    return (int32_t)id == v->eot || (n == sizeof sot - 1 && !memcmp(v->tok_bytes + a, sot, n));
}

/* The first id from `id` on that a merge makes (a token of two bytes or
 * more, not <|endoftext|> nor <|startoftext|>), or n_tokens. */
static uint32_t next_merged(const struct bpe *v, uint32_t id) {
    while (id < v->n_tokens && (v->tok_off[id + 1] - v->tok_off[id] < 2 || merge_exempt(v, id))) id++;
    return id;
}

/* vocab.bpe against encoder.json's ids, as tiktoken's loader checks them
 * (data_gym_to_mergeable_bpe_ranks: the ranks the merges give must equal
 * encoder.json's ids): each line joins two tokens into a token, the k-th
 * line making the k-th token a merge makes in id order, and no such token
 * left over (a file cut short, a line lost or lines swapped are refused). */
static int check_merges(const char *buf, size_t len, const char *name, const struct bpe *v,
                        bpe_error *err) {
    const char *p = buf, *end = buf + len;
    size_t line = 0;
    uint8_t a[1024], b[1024];
    uint32_t want = next_merged(v, 0);
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        line++;
        const char *le = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
        if (line == 1 && le - p >= 8 && !memcmp(p, "#version", 8)) { p = eol + (eol < end); continue; }
        if (le == p) { p = eol + (eol < end); continue; }  /* blank line */
        const char *sp = memchr(p, ' ', (size_t)(le - p));
        size_t na, nb;
        if (!sp || sp == p || sp + 1 == le || memchr(sp + 1, ' ', (size_t)(le - sp - 1)))
            return bpe_fail(err, BPE_ERR_FORMAT, 0, "%s:%zu: a merge line must be two tokens separated by one space",
                        name, line);
        if (decode_token_text(p, sp, a, sizeof a, &na) || decode_token_text(sp + 1, le, b, sizeof b, &nb))
            return bpe_fail(err, BPE_ERR_FORMAT, 0, "%s:%zu: not byte-level BPE text", name, line);
        uint32_t ta = bpe_find_token(v, a, na), tb = bpe_find_token(v, b, nb), t;
        if (ta == BPE_EMPTY || tb == BPE_EMPTY)
            return bpe_fail(err, BPE_ERR_FORMAT, 0, "%s:%zu: unknown token \"%.*s\" in merge", name, line,
                        ta == BPE_EMPTY ? (int)(sp - p) : (int)(le - sp - 1), ta == BPE_EMPTY ? p : sp + 1);
        if (na + nb > sizeof a || (memcpy(a + na, b, nb), (t = bpe_find_token(v, a, na + nb)) == BPE_EMPTY))
            return bpe_fail(err, BPE_ERR_FORMAT, 0, "%s:%zu: the merge of \"%.*s\" makes no token of encoder.json",
                        name, line, (int)(le - p), p);
        if (t != want) {
            if (want == v->n_tokens)
                return bpe_fail(err, BPE_ERR_FORMAT, 0,
                            "%s:%zu: one merge too many: every token of encoder.json is made by a line before",
                            name, line);
            return bpe_fail(err, BPE_ERR_FORMAT, 0,
                        "%s:%zu: the merge of \"%.*s\" makes id %u, but the next token of encoder.json a merge "
                        "makes is id %u (line k must make the k-th, as tiktoken's ranks require)",
                        name, line, (int)(le - p), p, t, want);
        }
        want = next_merged(v, want + 1);
        p = eol + (eol < end);
    }
    if (line == 0) return bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: empty merges file", name);
    if (want < v->n_tokens)
        return bpe_fail(err, BPE_ERR_FORMAT, 0,
                    "%s: ends at line %zu, but no merge makes id %u of encoder.json or any after it (a file cut short?)",
                    name, line, want);
    return BPE_OK;
}

/* ---- public loading API ------------------------------------------------------ */

bpe *bpe_load_mem(const char *encoder_json, size_t encoder_len, const char *encoder_name,
                  const char *vocab_bpe, size_t vocab_len, const char *vocab_name, bpe_error *err) {
    vocab_parse vp = {0};
    if (!encoder_json || !vocab_bpe) {
        bpe_fail(err, BPE_ERR_ARG, 0, "bpe_load_mem: NULL buffer");
        return NULL;
    }
    if (parse_encoder(encoder_json, encoder_len, encoder_name ? encoder_name : "encoder.json", &vp, err)) {
        vocab_parse_free(&vp);
        return NULL;
    }
    uint64_t size;
    uint32_t eot = (uint32_t)vp.eot;  /* GPT-2's files: <|endoftext|>, the one special token */
    void *img = bpe_build_image(vp.n, (const uint8_t *const *)vp.tok, vp.len, &eot, NULL, vp.eot >= 0, vp.eot, &size);
    vocab_parse_free(&vp);
    struct bpe *v = img ? gpt2in_malloc(sizeof *v) : NULL;
    if (!v) {
        bpe_big_free(img);
        bpe_fail(err, BPE_ERR_NOMEM, 0, "%s: out of memory", encoder_name ? encoder_name : "encoder.json");
        return NULL;
    }
    bpe_attach_image(v, img);
    v->owned = img;
    if (check_merges(vocab_bpe, vocab_len, vocab_name ? vocab_name : "vocab.bpe", v, err)) {
        bpe_free(v);
        return NULL;
    }
    return v;
}

/* The files are read (or mapped) by the one reader every vocabulary format
 * uses, bpe_lv_read, which bounds what a pipe or device may feed it. */
bpe *bpe_load(const char *encoder_json_path, const char *vocab_bpe_path, bpe_error *err) {
    lv_file e, m;
    if (bpe_lv_read(encoder_json_path, &e, err)) return NULL;
    if (bpe_lv_read(vocab_bpe_path, &m, err)) {
        bpe_lv_unread(&e);
        return NULL;
    }
    bpe *v = bpe_load_mem(e.data, e.len, e.name, m.data, m.len, m.name, err);
    bpe_lv_unread(&e);
    bpe_lv_unread(&m);
    return v;
}

void bpe_free(const bpe *vocab) {
    if (!vocab || !vocab->owned) return;  /* the built-in vocabulary is static */
    bpe_big_free(vocab->owned);
    free(vocab->owned_ids);
    free((bpe *)vocab);
}

size_t bpe_vocab_size(const bpe *v) { return v ? v->n_tokens : 0; }
int32_t bpe_eot_id(const bpe *v) {
    if (!v) return -1;
    return v->eot >= 0 && v->id_of_rank ? (int32_t)v->id_of_rank[v->eot] : v->eot;
}
size_t bpe_max_token_bytes(const bpe *v) { return v ? v->max_token_len : 0; }
