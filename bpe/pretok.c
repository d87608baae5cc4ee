/* pretok.c - the pre-tokenizer: GPT-2's regex as a hand-written scanner
 * over character classes (pretok.h), each piece encoded as it is found
 * (encode_piece, encode.h). */
#include "encode.h"
#include "pretok.h"

void bpe_merge_piece(out_t *o, const uint8_t *p, size_t n, size_t off, uint64_t h) {
    const struct bpe *v = o->v;
    if (n <= CACHE_BYTES) {
        cache_slot *c = o->cache ? &o->cache[h & (CACHE_SLOTS - 2)] : NULL;
        if (c) {
            if (c[0].len == n && !memcmp(c[0].bytes, p, n)) {
                emit_tokens(o, c[0].tok, c[0].n_tok, off);
                return;
            }
            if (c[1].len == n && !memcmp(c[1].bytes, p, n)) {
                emit_tokens(o, c[1].tok, c[1].n_tok, off);
                return;
            }
        }
        uint32_t tok[CACHE_BYTES];
        size_t m = bpe_merge_short(v, p, n, tok);
        emit_tokens(o, tok, m, off);
        if (c && m <= CACHE_TOKENS) {
            c[1] = c[0];
            c->len = (uint8_t)n;
            c->n_tok = (uint8_t)m;
            memcpy(c->bytes, p, n);
            memcpy(c->tok, tok, m * sizeof *tok);
        }
        return;
    }
    long_slot *c = o->cache && n <= SHORT_PIECE ? (long_slot *)(o->cache + CACHE_SLOTS) + (h & (LONG_SLOTS - 1)) : NULL;
    if (c && c->len == n && !memcmp(c->bytes, p, n)) {
        emit_tokens(o, c->tok, c->n_tok, off);
        return;
    }
    size_t first = o->n;
    if (!bpe_split_piece(o, p, n, off)) bpe_merge_stretch(o, p, n, off);
    size_t m = o->n - first;
    /* the tokens are in o->ids when they all fit */
    if (c && m <= LONG_TOKENS && !o->nomem && o->ids && o->n <= o->cap) {
        c->len = (uint16_t)n;
        c->n_tok = (uint16_t)m;
        memcpy(c->bytes, p, n);
        memcpy(c->tok, o->ids + first, m * sizeof *c->tok);
    }
}

/* The piece (or the invalid byte) that starts at i, by the rules for any
 * character; returns where the next one starts. */
static size_t any_piece(out_t *o, const uint8_t *s, size_t i, size_t end) {
    const struct bpe *v = o->v;
    size_t start = i, len, len2;
    uint8_t c = s[i];
    int cls = char_at(v, s, i, end, &len);
    if (cls == CLS_INVALID) {
        emit(o, v->byte_tok[c], i);
        return i + 1;
    }
    if (c == '\'' && i + 1 < end) {  /* 's 't 're 've 'm 'll 'd */
        uint8_t d = s[i + 1], e = i + 2 < end ? s[i + 2] : 0;
        size_t n = (d == 's' || d == 't' || d == 'm' || d == 'd') ? 2
                   : ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l')) ? 3
                   : 0;
        if (n) {
            encode_piece(o, s + i, n, i);
            return i + n;
        }
    }
    if (cls == CLS_SPACE) {
        /* " ?X+": one U+0020 joins the letter/number/other run after it. */
        if (c == ' ' && i + 1 < end) {
            int next = char_at(v, s, i + 1, end, &len2);
            if (next != CLS_SPACE && next != CLS_INVALID) {
                i = class_run_end(v, s, i + 1 + len2, end, next);
                encode_piece(o, s + start, i - start, start);
                return i;
            }
        }
        /* "\s+(?!\S)|\s+": a run followed by a non-space gives its last
         * character to the next piece, unless the run is one character. */
        size_t last = i, j = i + len;
        int after = CLS_INVALID;
        while (j < end) {
            after = char_at(v, s, j, end, &len2);
            if (after != CLS_SPACE) break;
            last = j;
            j += len2;
        }
        if (j < end && after != CLS_INVALID && last > i) j = last;
        encode_piece(o, s + start, j - start, start);
        return j;
    }
    i = class_run_end(v, s, i + len, end, cls);
    encode_piece(o, s + start, i - start, start);
    return i;
}

/* bpe_find_short_piece for a piece of 2..BPE_SLOT_BYTES bytes with 16
 * bytes of text from p on: the same words, hash and slot compare, but each
 * word is one load and a mask instead of the loads that stay inside the
 * piece. */
static inline __attribute__((always_inline)) uint32_t find_wide(const uint64_t *bloom, const bpe_slot *slots,
                                                                size_t mask, const uint8_t *p, size_t n,
                                                                uint64_t *hash) {
    uint64_t lo = bpe_load64(p), hi = bpe_load64(p + 8), h = BPE_HASH_SEED(n);
    if (n < 8) {
        lo &= ~0ull >> (64 - 8 * n);
        h = bpe_hash_tail(h, lo);
        hi = 0;
    } else {
        hi &= (1ull << (8 * (n - 8))) - 1;
        h = bpe_hash_word(h, lo);
        if (n > 8) h = bpe_hash_tail(h, hi);
    }
    h = bpe_hash_end(h);
    *hash = h;
    if (!bpe_bloom_has(bloom, h)) return BPE_EMPTY;
    uint32_t want_a = (uint32_t)(n | lo << 8);
    uint64_t want_b = lo >> 24 | hi << 40;
    for (;; h++) {
        const bpe_slot *s = &slots[h & mask];
        uint64_t a, b;
        __builtin_memcpy(&a, s, 8);
        __builtin_memcpy(&b, (const uint8_t *)s + 8, 8);
        if ((uint32_t)a == BPE_EMPTY) return BPE_EMPTY;
        if ((uint32_t)(a >> 32) == want_a && b == want_b) return (uint32_t)a;
    }
}

/* Encodes s[i..end) as a whole text: `end` is the end of input for the
 * regex, and every invalid byte ends a stretch of text as well (it becomes
 * its own piece). Offsets are s-relative.
 *
 * Most pieces are ASCII: a letter, number or other run, with or without one
 * space before it, or a run of ASCII white space. Those are cut here from
 * the byte table ascii_run (no UTF-8 decoding), looked up as a whole token
 * and written without a bounds check (the buffer has room for a token a
 * byte); a piece that starts with an apostrophe or touches a byte of 0x80
 * and up is left to any_piece, from its start. */
void bpe_encode_text(out_t *o, const uint8_t *s, size_t i, size_t end) {
    const struct bpe *v = o->v;
    if (o->offs || !has_room(o, end - i)) {
        while (i < end) i = any_piece(o, s, i, end);
        return;
    }
    /* in locals: the compiler cannot tell that writing ids leaves v's
     * fields alone */
    uint32_t *ids = o->ids;
    size_t n = o->n;
    const uint32_t *byte_tok = v->byte_tok;
    const uint64_t *bloom = v->tok_bloom;
    const bpe_slot *slots = v->tok_slots;
    size_t mask = v->tok_mask;
    while (i < end) {
        size_t start = i, j = i + 1;
        int k = ascii_run[s[i]];
        if (k == CLS_SPACE) {
            int next = j < end ? ascii_run[s[j]] : CLS_SPACE;
            if (s[i] == ' ' && next < CLS_SPACE) {
                k = next;  /* " ?X+" */
                j++;
            } else if (next != RUN_HIGH) {
                /* "\s+(?!\S)|\s+": the last of two or more gives itself to
                 * what follows */
                while (j < end && ascii_run[s[j]] == CLS_SPACE) j++;
                if (j < end && ascii_run[s[j]] == RUN_HIGH) goto any;
                if (j < end && j - start > 1) j--;
                goto piece;
            } else {
                goto any;
            }
        } else if (k == RUN_HIGH || s[i] == '\'') {
            goto any;
        }
        if (k == CLS_LETTER) j = ascii_letters_end(s, j, end);
        while (j < end && ascii_run[s[j]] == k) j++;
        if (j < end && ascii_run[s[j]] == RUN_HIGH) goto any;
    piece:;
        size_t len = j - start;
        i = j;
        if (len == 1) {
            ids[n++] = byte_tok[s[start]];
            continue;
        }
        if (BPE_LITTLE_ENDIAN && len <= BPE_SLOT_BYTES && bloom) {
            uint64_t h;
            uint32_t id = end - start >= 16 ? find_wide(bloom, slots, mask, s + start, len, &h)
                                            : bpe_find_short_piece(v, s + start, len, 1, &h);
            if (id != BPE_EMPTY) {
                ids[n++] = id;
                continue;
            }
            o->n = n;
            bpe_merge_piece(o, s + start, len, start, h);
        } else {
            o->n = n;
            encode_piece(o, s + start, len, start);
        }
        n = o->n;
        continue;
    any:
        o->n = n;
        i = any_piece(o, s, start, end);
        n = o->n;
    }
    o->n = n;
}
