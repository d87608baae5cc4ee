/* bpe.c - encoding and decoding with a loaded vocabulary.
 *
 * Encoding is two steps, as in GPT-2:
 *   1. pre-tokenization: GPT-2's regex
 *        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *      cuts the text into pieces; here it is a hand-written scanner over
 *      character classes (leftmost, first alternative wins, as a backtracking
 *      regex does; pretok.c);
 *   2. byte-pair merging inside each piece: most pieces are whole tokens
 *      (one hash lookup); the rest merge the adjacent pair of lowest rank,
 *      leftmost first, until no pair is a token -- tiktoken's O(n^2) loop for
 *      short pieces (merge.c; results cached per call, per stream or per
 *      bpe_encoder), and for long ones the last token at each place, in
 *      linear time (long.c).
 *
 * Words for parts of a text, used the same way in every file:
 *   text     what the caller passes; a stream's text comes in blocks.
 *   piece    one match of the pre-tokenizer's regex: merged alone.
 *   run      characters of one class in a row, as the scanner reads them.
 *   stretch  the bytes of a piece between places where no token joins the
 *            byte before to the byte after: each merged alone too.
 *   part     what one thread takes: of a text, cut at safe cuts (encoded
 *            alone); of a piece, cut where no token joins two bytes
 *            (encoded alone); of a long stretch, cut anywhere (found alone,
 *            then joined: long.c).
 *   place    a position between two bytes of a piece (0..n).
 * Inside a merge, the "parts" of a piece are the tokens it is made of so
 * far.
 *
 * Files: pretok.h (character classes), pretok.c (the scanner and
 * each piece's way), merge.c (merging by the
 * definition), long.c (long pieces), parallel.c (safe cuts, threads,
 * streams), memory.c (large buffers), image.c (building a vocabulary),
 * load.c (reading GPT-2's files).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "pretok.h"
#include "shown.h"

int bpe_fail(bpe_error *err, int code, uint64_t offset, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->offset = offset;
    }
    return code;
}

/* Offset of the first byte that starts no valid UTF-8 character, or len. */
static size_t first_invalid(const uint8_t *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        if (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        uint32_t cp;
        size_t n = utf8_decode(s, i, len, &cp);
        if (!n) return i;
        i += n;
    }
    return len;
}

/* The leftmost special token of a pass (0, 1, or -1: either) in
 * s[0..len), the longest of those that start there: its start, and its
 * rank in *tok; NULL when there is none. Several are looked for at each
 * byte that starts one (found by memchr when they share their first byte,
 * as <s>, </s>, <pad> ... do). */
static const uint8_t *find_pass(const struct bpe *v, const uint8_t *s, size_t len, int pass, uint32_t *tok) {
    const uint8_t *end = s + len;
    if (v->special_byte >= 0) {
        for (const uint8_t *p = s; p < end && (p = memchr(p, v->special_byte, (size_t)(end - p))); p++)
            if ((*tok = bpe_special_here(v, p, (size_t)(end - p), pass)) != BPE_EMPTY) return p;
        return NULL;
    }
    const uint32_t *at = v->special_at;
    for (const uint8_t *p = s; p < end; p++)
        if (at[*p] != at[*p + 1] && (*tok = bpe_special_here(v, p, (size_t)(end - p), pass)) != BPE_EMPTY) return p;
    return NULL;
}

/* The first special token in s[0..len) as Hugging Face splits added
 * tokens: leftmost, the longest of those starting there; with two passes
 * (n_late), the first pass's over the whole text, and the second's only in
 * the text before that one. One token (GPT-2's) is found by memmem. */
static const uint8_t *find_special(const struct bpe *v, const uint8_t *s, size_t len, uint32_t *tok) {
    if (v->n_specials == 1) {
        uint32_t t = v->special_list[0];
        *tok = t;
        return memmem(s, len, v->tok_bytes + v->tok_off[t], token_len(v, t));
    }
    if (!v->n_specials) return NULL;
    if (!v->n_late) return find_pass(v, s, len, -1, tok);
    uint32_t t1;
    const uint8_t *m1 = find_pass(v, s, len, 0, &t1), *m2 = find_pass(v, s, m1 ? (size_t)(m1 - s) : len, 1, tok);
    if (m2) return m2;
    *tok = t1;
    return m1;
}

/* Flags other than `allowed`, or two special-token modes at once. */
int bpe_bad_flags(int flags, int allowed) {
    return (flags & ~allowed) || (flags & BPE_SPECIAL_MASK) == BPE_SPECIAL_MASK;
}

/* Checks flags that reject input (strict UTF-8, special token as error).
 * Offsets in errors count from `base`: s is at that offset of a stream. */
int bpe_check_input(const struct bpe *v, const uint8_t *s, size_t len, int flags, uint64_t base,
                       bpe_error *err) {
    /* Of the two errors, the one that comes first in the text: the same
     * whatever block or part of a larger text s is. */
    size_t bad = flags & BPE_STRICT ? first_invalid(s, len) : len;
    if ((flags & BPE_SPECIAL_MASK) == BPE_SPECIAL_ERROR) {
        uint32_t t;
        const uint8_t *sp = find_special(v, s, len, &t);
        if (sp && (size_t)(sp - s) < bad) {
            /* the token as it stands when it is all visible ASCII (<|endoftext|>),
             * else quoted, with \xNN for what gpt2in_shown_len does not allow */
            char name[200];
            size_t o = 0, k = 0, tl = token_len(v, t), c;
            const uint8_t *b = v->tok_bytes + v->tok_off[t];
            int plain = 1;
            for (size_t j = 0; j < tl; j++) plain &= b[j] > 0x20 && b[j] < 0x7F;
            if (!plain) name[o++] = '"';
            for (; k < tl && o + 8 < sizeof name; k++) {
                if (plain) {
                    name[o++] = (char)b[k];
                } else if ((c = gpt2in_shown_len(b + k, tl - k)) && o + c + 8 < sizeof name) {
                    memcpy(name + o, b + k, c);
                    o += c;
                    k += c - 1;
                } else {
                    o += (size_t)snprintf(name + o, sizeof name - o, "\\x%02X", b[k]);
                }
            }
            if (k < tl) o += (size_t)snprintf(name + o, sizeof name - o, "...");
            if (!plain) name[o++] = '"';
            name[o] = 0;
            return bpe_fail(err, BPE_ERR_SPECIAL, base + (uint64_t)(sp - s),
                        "the special token %s is in the text at byte %llu", name,
                        (unsigned long long)(base + (uint64_t)(sp - s)));
        }
    }
    if (bad < len)
        return bpe_fail(err, BPE_ERR_UTF8, base + bad, "invalid UTF-8 at byte %llu (0x%02X)",
                        (unsigned long long)(base + bad), s[bad]);
    return BPE_OK;
}

int bpe_encode_checked(const struct bpe *v, const uint8_t *s, size_t len, int flags, out_t *o,
                          bpe_error *err) {
    size_t i = 0;
    /* The cache pays for its page only over a long text (and if it cannot
     * be had, pieces are merged without it); a caller may lend its own. */
    cache_slot *own = !o->cache && len >= CACHE_MIN_TEXT ? bpe_cache_new() : NULL;
    if (own) o->cache = own;
    if ((flags & BPE_SPECIAL_MASK) == BPE_SPECIAL_ALLOW && v->n_specials && !v->n_late) {
        const uint8_t *sp;
        uint32_t t;
        while ((sp = find_special(v, s + i, len - i, &t))) {
            size_t at = (size_t)(sp - s);
            bpe_encode_text(o, s, i, at);
            emit(o, t, at);
            i = at + token_len(v, t);
        }
    } else if ((flags & BPE_SPECIAL_MASK) == BPE_SPECIAL_ALLOW && v->n_specials) {
        /* Two passes: the next first-pass token is kept until passed, so
         * that each byte is looked at about once per pass. */
        uint32_t t1 = 0, t2;
        const uint8_t *m1 = find_pass(v, s, len, 0, &t1);
        for (;;) {
            if (m1 && m1 < s + i) m1 = find_pass(v, s + i, len - i, 0, &t1);
            const uint8_t *m2 = find_pass(v, s + i, (m1 ? (size_t)(m1 - s) : len) - i, 1, &t2);
            const uint8_t *sp = m2 ? m2 : m1;
            uint32_t t = m2 ? t2 : t1;
            if (!sp) break;
            size_t at = (size_t)(sp - s);
            bpe_encode_text(o, s, i, at);
            emit(o, t, at);
            i = at + token_len(v, t);
        }
    }
    bpe_encode_text(o, s, i, len);
    if (own) {
        bpe_big_free(own);
        o->cache = NULL;
    }
    if (o->nomem) return bpe_fail(err, BPE_ERR_NOMEM, 0, "out of memory");
    return BPE_OK;
}

/* The encoder works in rank space; a vocabulary whose ids differ from its
 * ranks has its ids written once, here, at the public boundary. */
void bpe_ranks_to_ids(const struct bpe *v, uint32_t *ids, size_t n) {
    if (!v->id_of_rank) return;
    for (size_t i = 0; i < n; i++) ids[i] = v->id_of_rank[ids[i]];
}

int bpe_set_ids(struct bpe *v, const uint32_t *id_of_rank, bpe_error *err) {
    size_t n = v->n_tokens;
    uint32_t *t = gpt2in_malloc(2 * (n ? n : 1) * sizeof *t);
    if (!t) return bpe_fail(err, BPE_ERR_NOMEM, 0, "out of memory");
    uint32_t *inverse = t + n;
    for (size_t i = 0; i < n; i++) inverse[i] = BPE_EMPTY;
    for (size_t r = 0; r < n; r++) {
        uint32_t id = id_of_rank[r];
        if (id >= n || inverse[id] != BPE_EMPTY) {
            free(t);
            return bpe_fail(err, BPE_ERR_FORMAT, r, "token %zu: id %u is out of range or given twice", r, id);
        }
        t[r] = id;
        inverse[id] = (uint32_t)r;
    }
    free(v->owned_ids);
    v->owned_ids = t;
    v->id_of_rank = t;
    v->rank_of_id = inverse;
    return BPE_OK;
}

/* bpe_encode with a piece cache the caller keeps (NULL: the call makes
 * one for a long text), for text at offset `base` of a stream (for error
 * offsets). */
static int encode_cached(const struct bpe *v, cache_slot *cache, const void *text, size_t len, int flags,
                         uint32_t *ids, size_t *offsets, size_t cap, size_t *n_tokens, uint64_t base,
                         bpe_error *err) {
    if (!v || (!text && len) || (!ids && cap) || bpe_bad_flags(flags, BPE_SPECIAL_MASK | BPE_STRICT))
        return bpe_fail(err, BPE_ERR_ARG, 0, "bpe_encode: bad argument");
    if (n_tokens) *n_tokens = 0;
    if (len == 0) return BPE_OK;
    int rc = bpe_check_input(v, text, len, flags, base, err);
    if (rc) return rc;
    out_t o = {v, ids, offsets, cap, 0, 0, cache, 1};
    rc = bpe_encode_checked(v, text, len, flags, &o, err);
    if (!rc) bpe_ranks_to_ids(v, ids, o.n < cap ? o.n : cap);
    if (n_tokens) *n_tokens = o.n;
    return rc;
}

int bpe_encode_at(const struct bpe *v, const void *text, size_t len, int flags, uint32_t *ids,
                      size_t *offsets, size_t cap, size_t *n_tokens, uint64_t base, bpe_error *err) {
    return encode_cached(v, NULL, text, len, flags, ids, offsets, cap, n_tokens, base, err);
}

int bpe_encode(const bpe *v, const void *text, size_t len, int flags, uint32_t *ids,
               size_t *offsets, size_t cap, size_t *n_tokens, bpe_error *err) {
    return encode_cached(v, NULL, text, len, flags, ids, offsets, cap, n_tokens, 0, err);
}

/* An encoder is its vocabulary and a piece cache kept from call to call:
 * the cache maps a piece's bytes to its tokens (in rank space), whatever
 * the text, the flags or the buffers of the call, so no call needs to
 * clear it. */
struct bpe_encoder {
    const struct bpe *v;
    cache_slot *cache;
};

bpe_encoder *bpe_encoder_new(const bpe *v, bpe_error *err) {
    if (!v) {
        bpe_fail(err, BPE_ERR_ARG, 0, "bpe_encoder_new: bad argument");
        return NULL;
    }
    bpe_encoder *e = gpt2in_malloc(sizeof *e);
    cache_slot *cache = e ? bpe_cache_new() : NULL;
    if (!cache) {
        free(e);
        bpe_fail(err, BPE_ERR_NOMEM, 0, "out of memory");
        return NULL;
    }
    e->v = v;
    e->cache = cache;
    return e;
}

int bpe_encoder_encode(bpe_encoder *e, const void *text, size_t len, int flags, uint32_t *ids, size_t *offsets,
                       size_t cap, size_t *n_tokens, bpe_error *err) {
    if (!e) return bpe_fail(err, BPE_ERR_ARG, 0, "bpe_encoder_encode: bad argument");
    return encode_cached(e->v, e->cache, text, len, flags, ids, offsets, cap, n_tokens, 0, err);
}

void bpe_encoder_free(bpe_encoder *e) {
    if (!e) return;
    bpe_big_free(e->cache);
    free(e);
}

size_t bpe_special_count(const bpe *v) { return v ? v->n_specials : 0; }

int32_t bpe_special_id(const bpe *v, size_t i) {
    if (!v || i >= v->n_specials) return -1;
    uint32_t r = v->special_list[i];
    return (int32_t)(v->id_of_rank ? v->id_of_rank[r] : r);
}

/* ---- decoding ------------------------------------------------------------------------- */

const char *bpe_token_bytes(const bpe *v, uint32_t id, size_t *len) {
    uint32_t r = v ? bpe_rank_of(v, id) : BPE_EMPTY;
    if (r == BPE_EMPTY) return NULL;
    if (len) *len = token_len(v, r);
    return (const char *)v->tok_bytes + v->tok_off[r];
}

int bpe_decode(const bpe *v, const uint32_t *ids, size_t n, char *out, size_t cap, size_t *n_bytes,
               bpe_error *err) {
    if (!v || (!ids && n) || (!out && cap)) return bpe_fail(err, BPE_ERR_ARG, 0, "bpe_decode: bad argument");
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t r = bpe_rank_of(v, ids[i]);
        if (r == BPE_EMPTY)
            return bpe_fail(err, BPE_ERR_ID, i, "token %zu: id %u is not in the vocabulary (0..%u)", i, ids[i],
                        v->n_tokens - 1);
        uint32_t a = v->tok_off[r], l = v->tok_off[r + 1] - a;
        if (total + l <= cap) memcpy(out + total, v->tok_bytes + a, l);
        total += l;
    }
    if (n_bytes) *n_bytes = total;
    return BPE_OK;
}

