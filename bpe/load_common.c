/* load_common.c - ranks, ids and the image for the other vocabulary files
 * (see load_vocab.h), reading files, and recognising a file's format. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "load_vocab.h"
#include "shown.h"

static uint64_t lv_hash(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h ^ h >> 29;
}

int bpe_lv_init(lv_vocab *lv, const char *name, uint32_t n, bpe_error *err) {
    memset(lv, 0, sizeof *lv);
    lv->name = name;
    lv->n = n;
    lv->eot = -1;
    lv->mask = 1;
    while (lv->mask < (uint64_t)n * 2 + 1) lv->mask = lv->mask * 2 + 1;
    lv->tok = gpt2in_calloc(n ? n : 1, sizeof *lv->tok);
    lv->len = gpt2in_calloc(n ? n : 1, sizeof *lv->len);
    lv->rank = gpt2in_malloc((n ? n : 1) * sizeof *lv->rank);
    lv->where = gpt2in_calloc(n ? n : 1, sizeof *lv->where);
    lv->special = gpt2in_calloc(n ? n : 1, 1);
    lv->slot = gpt2in_malloc(((size_t)lv->mask + 1) * sizeof *lv->slot);
    if (!lv->tok || !lv->len || !lv->rank || !lv->where || !lv->special || !lv->slot) {
        bpe_lv_free(lv);
        return bpe_fail(err, BPE_ERR_NOMEM, 0, "%s: out of memory", name);
    }
    memset(lv->rank, 0xFF, (n ? n : 1) * sizeof *lv->rank);
    memset(lv->slot, 0xFF, ((size_t)lv->mask + 1) * sizeof *lv->slot);
    return BPE_OK;
}

void bpe_lv_free(lv_vocab *lv) {
    if (lv->tok)
        for (uint32_t i = 0; i < lv->n; i++) free(lv->tok[i]);
    free(lv->tok);
    free(lv->len);
    free(lv->rank);
    free(lv->where);
    free(lv->special);
    free(lv->slot);
    memset(lv, 0, sizeof *lv);
}

void bpe_lv_special(lv_vocab *lv, uint32_t id, int late) {
    lv->n_special += !lv->special[id];
    lv->special[id] = late ? 2 : 1;
}

uint32_t bpe_lv_find(const lv_vocab *lv, const uint8_t *bytes, size_t len) {
    for (uint64_t h = lv_hash(bytes, len);; h++) {
        uint32_t id = lv->slot[h & lv->mask];
        if (id == LV_NONE) return LV_NONE;
        if (lv->len[id] == len && !memcmp(lv->tok[id], bytes, len)) return id;
    }
}

int bpe_lv_set(lv_vocab *lv, uint32_t id, const uint8_t *bytes, size_t len, uint32_t *other) {
    *other = LV_NONE;
    if (lv->tok[id]) return BPE_ERR_FORMAT;
    int special = lv->special[id];
    if (!special && (*other = bpe_lv_find(lv, bytes, len)) != LV_NONE) return BPE_ERR_FORMAT;
    if (len > UINT32_MAX / 2) return BPE_ERR_FORMAT;
    uint8_t *copy = gpt2in_malloc(len ? len : 1);
    if (!copy) return BPE_ERR_NOMEM;
    if (len) memcpy(copy, bytes, len);
    lv->tok[id] = copy;
    lv->len[id] = (uint32_t)len;
    if (special) return BPE_OK;
    uint64_t h = lv_hash(bytes, len);
    while (lv->slot[h & lv->mask] != LV_NONE) h++;
    lv->slot[h & lv->mask] = id;
    return BPE_OK;
}

const char *bpe_lv_quote(char *buf, size_t cap, const void *bytes, size_t n) {
    const unsigned char *s = bytes;
    size_t o = 0;
    buf[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (o + 8 >= cap || i >= 40) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        size_t k = gpt2in_shown_len(s + i, n - i);
        if (k && o + k + 8 < cap) {
            memcpy(buf + o, s + i, k);
            o += k;
            i += k - 1;
        } else {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02X", s[i]);
        }
    }
    buf[o++] = '"';
    buf[o] = 0;
    return buf;
}

int bpe_lv_rank_bytes(lv_vocab *lv, bpe_error *err) {
    uint32_t byte_id[256], special_id[256];
    memset(byte_id, 0xFF, sizeof byte_id);
    memset(special_id, 0xFF, sizeof special_id);
    for (uint32_t i = 0; i < lv->n; i++)
        if (lv->tok[i] && lv->len[i] == 1) (lv->special[i] ? special_id : byte_id)[lv->tok[i][0]] = i;
    for (int b = 0; b < 256; b++)
        if (byte_id[b] == LV_NONE && special_id[b] != LV_NONE)
            return bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: the special token (id %u) is byte 0x%02X, which must be an "
                            "ordinary token", lv->name, special_id[b], b);
        else if (byte_id[b] == LV_NONE)
            return bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: no token for byte 0x%02X (all 256 bytes must be tokens)",
                            lv->name, b);
    for (uint32_t i = 0; i < lv->n; i++)
        if (lv->tok[i] && lv->len[i] == 1 && !lv->special[i]) lv->rank[i] = lv->next_rank++;
    return BPE_OK;
}

int bpe_lv_merge(lv_vocab *lv, const uint8_t *a, size_t na, const uint8_t *b, size_t nb, const char *what,
             uint32_t pos, bpe_error *err) {
    char q[160], q2[160];
    uint32_t ta = bpe_lv_find(lv, a, na), tb = bpe_lv_find(lv, b, nb);
    if (ta == LV_NONE || tb == LV_NONE)
        return bpe_fail(err, BPE_ERR_FORMAT, pos, "%s: merge %s %u: unknown token %s", lv->name, what, pos,
                        ta == LV_NONE ? bpe_lv_quote(q, sizeof q, a, na) : bpe_lv_quote(q, sizeof q, b, nb));
    for (int k = 0; k < 2; k++) {
        uint32_t t = k ? tb : ta;
        if (lv->rank[t] == LV_NONE)
            return bpe_fail(err, BPE_ERR_FORMAT, pos,
                            "%s: merge %s %u: uses %s, which no earlier merge makes (a merge must come after "
                            "the merges of its parts)",
                            lv->name, what, pos, bpe_lv_quote(q, sizeof q, lv->tok[t], lv->len[t]));
    }
    uint8_t *ab = gpt2in_malloc(na + nb);
    if (!ab) return bpe_fail(err, BPE_ERR_NOMEM, 0, "%s: out of memory", lv->name);
    memcpy(ab, a, na);
    memcpy(ab + na, b, nb);
    uint32_t t = bpe_lv_find(lv, ab, na + nb), special = LV_NONE;
    /* (special tokens are not hashed: looked for only on this way out) */
    for (uint32_t i = 0; t == LV_NONE && special == LV_NONE && i < lv->n; i++)
        if (lv->special[i] && lv->tok[i] && lv->len[i] == na + nb && !memcmp(lv->tok[i], ab, na + nb)) special = i;
    bpe_lv_quote(q2, sizeof q2, ab, na + nb);
    free(ab);
    if (t == LV_NONE && special != LV_NONE)
        return bpe_fail(err, BPE_ERR_FORMAT, pos, "%s: merge %s %u: makes %s, the special token (id %u); a merge "
                        "cannot make it", lv->name, what, pos, q2, special);
    if (t == LV_NONE)
        return bpe_fail(err, BPE_ERR_FORMAT, pos, "%s: merge %s %u: makes %s, which is not in the vocabulary",
                        lv->name, what, pos, q2);
    if (lv->rank[t] != LV_NONE)
        /* Hugging Face ranks merges and this library ranks tokens (as
         * tiktoken): one rank for two merges would change some encodings. */
        return bpe_fail(err, BPE_ERR_FORMAT, pos,
                        "%s: merge %s %u: makes %s, which merge %s %u makes already (a token made by two "
                        "merges is not supported: this library ranks tokens, not merges)",
                        lv->name, what, pos, q2, what, lv->where[lv->rank[t] - 256]);
    lv->where[lv->next_rank - 256] = pos;
    lv->rank[t] = lv->next_rank++;
    return BPE_OK;
}

void bpe_lv_rank_by_id(lv_vocab *lv) {
    for (uint32_t i = 0; i < lv->n; i++)
        if (lv->rank[i] == LV_NONE && !lv->special[i]) lv->rank[i] = lv->next_rank++;
}

bpe *bpe_lv_finish(lv_vocab *lv, bpe_error *err) {
    char q[160];
    /* the special tokens last, in id order (so that their ranks are too) */
    for (uint32_t i = 0; i < lv->n; i++)
        if (lv->special[i] && lv->rank[i] == LV_NONE) lv->rank[i] = lv->next_rank++;
    for (uint32_t i = 0; i < lv->n; i++) {
        if (!lv->tok[i]) {
            bpe_fail(err, BPE_ERR_FORMAT, i, "%s: no token has id %u (ids must be 0..%u)", lv->name, i, lv->n - 1);
            return NULL;
        }
        if (lv->rank[i] == LV_NONE) {
            bpe_fail(err, BPE_ERR_FORMAT, i,
                     "%s: token %s (id %u) is not a byte, no merge makes it and it is not a special token",
                     lv->name, bpe_lv_quote(q, sizeof q, lv->tok[i], lv->len[i]), i);
            return NULL;
        }
        if (lv->len[i] == 0) {
            bpe_fail(err, BPE_ERR_FORMAT, i, "%s: token %u is empty", lv->name, i);
            return NULL;
        }
    }
    /* Two special tokens of the same bytes: which one the text holds would
     * be a guess. */
    uint32_t mask = 1;
    while (mask < (uint64_t)lv->n_special * 2 + 1) mask = mask * 2 + 1;
    uint32_t *seen = gpt2in_malloc(((size_t)mask + 1) * sizeof *seen);
    if (!seen) {
        bpe_fail(err, BPE_ERR_NOMEM, 0, "%s: out of memory", lv->name);
        return NULL;
    }
    memset(seen, 0xFF, ((size_t)mask + 1) * sizeof *seen);
    for (uint32_t i = 0; i < lv->n; i++) {
        if (!lv->special[i]) continue;
        uint64_t h = lv_hash(lv->tok[i], lv->len[i]);
        for (; seen[h & mask] != LV_NONE; h++) {
            uint32_t o = seen[h & mask];
            if (lv->len[o] == lv->len[i] && !memcmp(lv->tok[o], lv->tok[i], lv->len[i])) {
                bpe_fail(err, BPE_ERR_FORMAT, i, "%s: special tokens %u and %u are the same bytes %s", lv->name, o, i,
                         bpe_lv_quote(q, sizeof q, lv->tok[i], lv->len[i]));
                free(seen);
                return NULL;
            }
        }
        seen[h & mask] = i;
    }
    free(seen);
    uint32_t n = lv->n;
    const uint8_t **by_rank = gpt2in_malloc((n ? n : 1) * sizeof *by_rank);
    uint32_t *len = gpt2in_malloc((n ? n : 1) * sizeof *len), *id_of_rank = gpt2in_malloc((n ? n : 1) * 4);
    uint32_t *specials = gpt2in_malloc((lv->n_special ? lv->n_special : 1) * sizeof *specials), n_sp = 0;
    uint8_t *late = gpt2in_malloc(lv->n_special ? lv->n_special : 1);
    struct bpe *v = gpt2in_malloc(sizeof *v);
    void *img = NULL;
    int identity = 1;
    if (!by_rank || !len || !id_of_rank || !specials || !late || !v) goto nomem;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r = lv->rank[i];
        by_rank[r] = lv->tok[i];
        len[r] = lv->len[i];
        id_of_rank[r] = i;
        identity &= r == i;
    }
    for (uint32_t i = 0; i < n; i++)
        if (lv->special[i]) {
            late[n_sp] = lv->special[i] == 2;
            specials[n_sp++] = lv->rank[i];  /* ranks in id order, increasing */
        }
    uint64_t size;
    img = bpe_build_image(n, by_rank, len, specials, late, n_sp, lv->eot >= 0 ? (int32_t)lv->rank[lv->eot] : -1, &size);
    if (!img) goto nomem;
    bpe_attach_image(v, img);
    v->owned = img;
    /* GPT-2's own files: no tables, the same speed as the built-in image. */
    if (!identity && bpe_set_ids(v, id_of_rank, err)) {
        bpe_free(v);
        v = NULL;
    }
    free(by_rank);
    free(len);
    free(id_of_rank);
    free(specials);
    free(late);
    return v;
nomem:
    free(by_rank);
    free(len);
    free(id_of_rank);
    free(specials);
    free(late);
    free(v);
    bpe_fail(err, BPE_ERR_NOMEM, 0, "%s: out of memory", lv->name);
    return NULL;
}

/* ---- GPT-2's byte-level alphabet -------------------------------------------- */

int bpe_lv_unicode_byte(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return (int)cp;
    if (cp < 0x100 || cp >= 0x100 + 68) return -1;
    int n = (int)(cp - 0x100);
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        if (!printable && n-- == 0) return b;
    }
    return -1;
}

long bpe_lv_byte_level(const char *s, size_t n, uint8_t *out, size_t *bad) {
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, k = 0;
    while (i < n) {
        uint32_t cp;
        size_t m;
        /* Every character of the alphabet is at most U+0143: 1 or 2 bytes. */
        if (p[i] < 0x80) {
            cp = p[i];
            m = 1;
        } else if (p[i] >= 0xC2 && p[i] <= 0xDF && i + 1 < n && (p[i + 1] & 0xC0) == 0x80) {
            cp = (uint32_t)(p[i] & 0x1F) << 6 | (p[i + 1] & 0x3F);
            m = 2;
        } else {
            *bad = i;
            return -1;
        }
        int b = bpe_lv_unicode_byte(cp);
        if (b < 0) {
            *bad = i;
            return -1;
        }
        out[k++] = (uint8_t)b;
        i += m;
    }
    return (long)k;
}

/* ---- files ---------------------------------------------------------------- */

#define LV_READ_MAX ((size_t)256 << 20)

static void shown_path(const char *path, char *buf, size_t cap) {
    const unsigned char *u = (const unsigned char *)path;
    size_t n = strlen(path), i = 0, k;
    while (i < n && (k = gpt2in_shown_len(u + i, n - i))) i += k;
    if (i == n && n < cap) {
        memcpy(buf, path, n + 1);
        return;
    }
    size_t o = 0;
    buf[o++] = '"';
    for (i = 0; i < n && o + 9 < cap; i++) {
        if ((k = gpt2in_shown_len(u + i, n - i)) && o + k + 9 < cap) {
            memcpy(buf + o, path + i, k);
            o += k;
            i += k - 1;
        } else {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02X", u[i]);
        }
    }
    if (i < n) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = 0;
}

int bpe_lv_read(const char *path_in, lv_file *f, bpe_error *err) {
    memset(f, 0, sizeof *f);
    if (!path_in) return bpe_fail(err, BPE_ERR_ARG, 0, "NULL path");
    shown_path(path_in, f->name, sizeof f->name);
    const char *path = f->name;  /* in messages */
    int fd = open(path_in, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return bpe_fail(err, BPE_ERR_IO, 0, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        return bpe_fail(err, BPE_ERR_IO, 0, "%s: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return bpe_fail(err, BPE_ERR_IO, 0, "%s: %s", path, strerror(EISDIR));
    }
    if (S_ISREG(st.st_mode) && st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            close(fd);
            f->map = m;
            f->data = m;
            f->len = (size_t)st.st_size;
            return BPE_OK;
        }
    }
    /* A pipe, a device, an empty file, or a file that cannot be mapped: read
     * it, up to a bound, so an endless stream (/dev/zero, `yes`) is refused
     * rather than read until memory runs out. GPT-2's files are 1-2 MB. */
    size_t n = 0, cap = 0;
    char *buf = NULL;
    for (;;) {
        if (n == LV_READ_MAX) {
            free(buf);
            close(fd);
            return bpe_fail(err, BPE_ERR_FORMAT, n, "%s: more than %u MiB from a stream: not a vocabulary", path,
                            (unsigned)(LV_READ_MAX >> 20));
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            if (cap > LV_READ_MAX) cap = LV_READ_MAX;
            char *nb = gpt2in_realloc(buf, cap);
            if (!nb) {
                free(buf);
                close(fd);
                return bpe_fail(err, BPE_ERR_NOMEM, 0, "%s: out of memory", path);
            }
            buf = nb;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return bpe_fail(err, BPE_ERR_IO, 0, "%s: %s", path, strerror(e));
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    close(fd);
    f->heap = buf;
    f->data = buf ? buf : "";
    f->len = n;
    return BPE_OK;
}

void bpe_lv_unread(lv_file *f) {
    if (f->map) munmap(f->map, f->len);
    free(f->heap);
    memset(f, 0, sizeof *f);
}

/* ---- recognising a vocabulary file ------------------------------------------ */

/* The kinds of file bpe_load_file tells apart by their first bytes; the
 * last ones are files of other kinds, named in the message. */
enum { KIND_GGUF, KIND_LLMC, KIND_JSON, KIND_TIKTOKEN, KIND_UNKNOWN, KIND_NPY, KIND_CHECKPOINT, KIND_SHARD,
       KIND_SAFETENSORS, KIND_JSON_ARRAY };
static const char *const kind_names[] = {"", "", "", "", "", "a NumPy array", "an llm.c checkpoint",
                                         "an llm.c token shard", "a safetensors file", "a JSON array"};

static uint32_t le32(const char *d) {
    const uint8_t *p = (const uint8_t *)d;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Whether the first line looks like "base64 rank" (blanks around and between). */
static int tiktoken_line(const char *d, size_t n) {
    size_t i = 0;
    while (i < n && (d[i] == '\n' || d[i] == '\r' || d[i] == ' ' || d[i] == '\t')) i++;
    size_t b = i;
    while (i < n && ((d[i] >= 'A' && d[i] <= 'Z') || (d[i] >= 'a' && d[i] <= 'z') || (d[i] >= '0' && d[i] <= '9') ||
                     d[i] == '+' || d[i] == '/' || d[i] == '='))
        i++;
    if (i == b || i >= n || (d[i] != ' ' && d[i] != '\t')) return 0;
    while (i < n && (d[i] == ' ' || d[i] == '\t')) i++;   /* any blanks, as tiktoken's split() */
    if (i >= n || d[i] < '0' || d[i] > '9') return 0;
    return 1;
}

static int kind_of(const char *d, size_t n) {
    if (n >= 4 && !memcmp(d, "GGUF", 4)) return KIND_GGUF;
    if (n >= 4 && le32(d) == 20240328) return KIND_LLMC;
    if (n >= 4 && le32(d) == 20240326) return KIND_CHECKPOINT;
    if (n >= 4 && le32(d) == 20240520) return KIND_SHARD;
    if (n >= 6 && !memcmp(d, "\x93NUMPY", 6)) return KIND_NPY;
    if (n >= 9 && d[8] == '{' && le32(d + 4) == 0 && le32(d) <= n - 8) return KIND_SAFETENSORS;
    size_t i = 0;
    if (n >= 3 && !memcmp(d, "\xEF\xBB\xBF", 3)) i = 3;
    while (i < n && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r')) i++;
    if (i < n && d[i] == '{') return KIND_JSON;
    if (i < n && d[i] == '[') return KIND_JSON_ARRAY;
    return tiktoken_line(d, n) ? KIND_TIKTOKEN : KIND_UNKNOWN;
}

bpe *bpe_load_file_mem(const char *data, size_t len, const char *name, const char *merges, size_t merges_len,
                       const char *merges_name, bpe_error *err) {
    if (!data) {
        bpe_fail(err, BPE_ERR_ARG, 0, "bpe_load_file_mem: NULL buffer");
        return NULL;
    }
    if (!name) name = "vocabulary";
    int kind = kind_of(data, len);
#define KNOWN "tokenizer.json, vocab.json with merges, .tiktoken, GGUF, llm.c tokenizer"
    if (kind == KIND_UNKNOWN) {
        bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: not a vocabulary file gpt2in reads (" KNOWN ")", name);
        return NULL;
    }
    if (kind > KIND_UNKNOWN) {
        bpe_fail(err, BPE_ERR_FORMAT, 0, "%s is %s, not a vocabulary (" KNOWN ")", name, kind_names[kind]);
        return NULL;
    }
    if (kind == KIND_JSON && merges) return bpe_load_hf_pair_mem(data, len, name, merges, merges_len, merges_name, err);
    if (merges) {
        bpe_fail(err, BPE_ERR_ARG, 0, "%s: a %s holds its merges; a merges file goes only with a vocab.json",
                 name, kind == KIND_GGUF ? "GGUF file" : kind == KIND_LLMC ? "llm.c tokenizer" : "tiktoken file");
        return NULL;
    }
    switch (kind) {
    case KIND_GGUF: return bpe_load_gguf_mem(data, len, name, err);
    case KIND_LLMC: return bpe_load_llmc_mem(data, len, name, err);
    case KIND_JSON: return bpe_load_hf_json_mem(data, len, name, err);
    default: return bpe_load_tiktoken_mem(data, len, name, err);
    }
}

bpe *bpe_load_file(const char *path, const char *merges_path, bpe_error *err) {
    if (!path) {
        bpe_fail(err, BPE_ERR_ARG, 0, "bpe_load_file: NULL path");
        return NULL;
    }
    lv_file f, m = {0};
    if (bpe_lv_read(path, &f, err)) return NULL;
    if (merges_path && bpe_lv_read(merges_path, &m, err)) {
        bpe_lv_unread(&f);
        return NULL;
    }
    bpe *v = bpe_load_file_mem(f.data, f.len, f.name, merges_path ? m.data : NULL, m.len, merges_path ? m.name : NULL,
                               err);
    bpe_lv_unread(&f);
    bpe_lv_unread(&m);
    return v;
}

/* The single-file loaders by path. */
#define LV_BY_PATH(fn, fn_mem)                                    \
    bpe *fn(const char *path, bpe_error *err) {                   \
        if (!path) {                                              \
            bpe_fail(err, BPE_ERR_ARG, 0, #fn ": NULL path");     \
            return NULL;                                          \
        }                                                         \
        lv_file f;                                                \
        if (bpe_lv_read(path, &f, err)) return NULL;                  \
        bpe *v = fn_mem(f.data, f.len, f.name, err);              \
        bpe_lv_unread(&f);                                            \
        return v;                                                 \
    }
LV_BY_PATH(bpe_load_hf_json, bpe_load_hf_json_mem)
LV_BY_PATH(bpe_load_tiktoken, bpe_load_tiktoken_mem)
LV_BY_PATH(bpe_load_gguf, bpe_load_gguf_mem)
LV_BY_PATH(bpe_load_llmc, bpe_load_llmc_mem)

bpe *bpe_load_hf_pair(const char *vocab_json_path, const char *merges_txt_path, bpe_error *err) {
    if (!vocab_json_path || !merges_txt_path) {
        bpe_fail(err, BPE_ERR_ARG, 0, "bpe_load_hf_pair: NULL path");
        return NULL;
    }
    lv_file f, m;
    if (bpe_lv_read(vocab_json_path, &f, err)) return NULL;
    if (bpe_lv_read(merges_txt_path, &m, err)) {
        bpe_lv_unread(&f);
        return NULL;
    }
    bpe *v = bpe_load_hf_pair_mem(f.data, f.len, f.name, m.data, m.len, m.name, err);
    bpe_lv_unread(&f);
    bpe_lv_unread(&m);
    return v;
}
