/* load.c - reading encoder.json + vocab.bpe and building a vocabulary image.
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
#include "unicode_update.h"

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

/* ---- building the image --------------------------------------------------- */

/* GPT-2's classes for the pre-tokenizer: \s is the 25 White_Space code
 * points; \p{L} and \p{N} come from utf8proc (Unicode 15.0) and, for code
 * points assigned since, from unicode_update.h (Unicode 16.0, the version of
 * the tiktoken this project matches). */

static uint32_t classify(uint32_t cp) {
    if (bpe_is_space(cp)) return CLS_SPACE;
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)cp);
    if (cat == UTF8PROC_CATEGORY_CN) { /* unassigned in Unicode 15.0: maybe assigned since */
        for (size_t i = 0; i < sizeof unicode_update / sizeof *unicode_update; i++)
            if (cp >= unicode_update[i].lo && cp <= unicode_update[i].hi) return unicode_update[i].cls;
        return CLS_OTHER;
    }
    switch (cat) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
        return CLS_LETTER;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return CLS_NUMBER;
    default:
        return CLS_OTHER;
    }
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* A token of 3 or 4 bytes as a short-table key. */
static uint32_t short_bytes(const uint8_t *b, uint32_t len) {
    uint32_t x = 0;
    for (uint32_t k = 0; k < len; k++) x |= (uint32_t)b[k] << (8 * k);
    return x;
}

static uint32_t pow2_at_least(uint64_t n) {
    uint32_t p = 1;
    while (p < n) p <<= 1;
    return p;
}

/* Token bytes, their offsets, and the hash from bytes to id. The special
 * token is never produced by merging, so it is not hashed. */
static void fill_tokens(uint32_t n_tokens, const uint8_t *const *tokens, const uint32_t *lens, int32_t eot,
                        uint32_t *tok_off, uint8_t *bytes, bpe_slot *slots, uint32_t tok_mask) {
    uint32_t pos = 0;
    for (uint32_t i = 0; i < n_tokens; i++) {
        tok_off[i] = pos;
        memcpy(bytes + pos, tokens[i], lens[i]);
        pos += lens[i];
    }
    tok_off[n_tokens] = pos;
    memset(slots, 0, ((size_t)tok_mask + 1) * sizeof *slots);
    for (size_t k = 0; k <= tok_mask; k++) slots[k].id = BPE_EMPTY;
    for (uint32_t i = 0; i < n_tokens; i++) {
        if ((int32_t)i == eot) continue;
        uint64_t hh = bpe_hash_bytes(tokens[i], lens[i]);
        while (slots[hh & tok_mask].id != BPE_EMPTY) hh++;
        bpe_slot *sl = &slots[hh & tok_mask];
        sl->id = i;
        sl->len = (uint8_t)(lens[i] < 255 ? lens[i] : 255);
        memcpy(sl->bytes, tokens[i], lens[i] < BPE_SLOT_BYTES ? lens[i] : BPE_SLOT_BYTES);
    }
}


/* The number of (token, token) -> token merges: every split of a token into
 * two tokens. Uses a temporary token hash; UINT64_MAX when out of memory. */
static uint64_t count_pairs(uint32_t n_tokens, const uint8_t *const *tokens, const uint32_t *lens,
                            int32_t eot, uint64_t total_bytes, uint32_t tok_mask) {
    struct bpe v = {0};
    uint32_t *off = gpt2in_malloc(((size_t)n_tokens + 1) * 4);
    bpe_slot *slots = gpt2in_malloc(((size_t)tok_mask + 1) * sizeof *slots);
    uint8_t *bytes = gpt2in_malloc(total_bytes ? total_bytes : 1);
    uint64_t n = 0;
    if (!off || !slots || !bytes) {
        n = UINT64_MAX;
        goto out;
    }
    v.tok_off = off;
    v.tok_bytes = bytes;
    v.tok_slots = slots;
    v.tok_mask = tok_mask;
    fill_tokens(n_tokens, tokens, lens, eot, off, bytes, slots, tok_mask);
    for (uint32_t t = 0; t < n_tokens; t++) {
        if ((int32_t)t == eot) continue;
        for (uint32_t k = 1; k < lens[t]; k++)
            n += bpe_find_token(&v, tokens[t], k) != BPE_EMPTY && bpe_find_token(&v, tokens[t] + k, lens[t] - k) != BPE_EMPTY;
    }
out:
    free(off);
    free(slots);
    free(bytes);
    return n;
}

/* Whether token t is made of bytes of the alphabet (lo, size). */
static int run_token(uint8_t lo, uint32_t size, const uint8_t *const *tokens, const uint32_t *lens, int32_t eot,
                     uint32_t t) {
    if ((int32_t)t == eot || lens[t] == 0) return 0;
    for (uint32_t j = 0; j < lens[t]; j++)
        if (!bpe_run_has(lo, size, tokens[t][j])) return 0;
    return 1;
}

/* The string of len bytes of the alphabet (lo, size) whose value is x. */
static void run_string(uint8_t lo, uint32_t size, uint32_t x, uint32_t len, uint8_t *s) {
    for (uint32_t j = len; j-- > 0; x /= size) s[j] = (uint8_t)(lo + x % size);
}

void *bpe_build_image(uint32_t n_tokens, const uint8_t *const *tokens, const uint32_t *lens,
                      int32_t eot, uint64_t *size) {
    uint64_t total_bytes = 0;
    uint32_t max_len = 0;
    for (uint32_t i = 0; i < n_tokens; i++) {
        total_bytes += lens[i];
        if (lens[i] > max_len) max_len = lens[i];
    }

    /* Unicode classes: stage-2 blocks are deduplicated. */
    uint16_t *cls1 = gpt2in_malloc(BPE_CLS_STAGE1 * sizeof *cls1);
    vec cls2v = {0};
    if (!cls1) return NULL;
    for (uint32_t blk = 0; blk < BPE_CLS_STAGE1; blk++) {
        uint8_t block[256], *at;
        for (uint32_t j = 0; j < 256; j++) block[j] = (uint8_t)classify(blk << 8 | j);
        size_t nb = cls2v.n / 256, k;
        for (k = 0; k < nb && memcmp((uint8_t *)cls2v.p + k * 256, block, 256); k++) {}
        if (k == nb) {
            if (!(at = vec_add(&cls2v, 1, 256))) {
                free(cls1);
                free(cls2v.p);
                return NULL;
            }
            memcpy(at, block, 256);
        }
        cls1[blk] = (uint16_t)k;
    }
    uint8_t *cls2 = cls2v.p;
    uint32_t n_blocks = (uint32_t)(cls2v.n / 256);

    bpe_image_header h = {0};
    memcpy(h.magic, BPE_IMAGE_MAGIC, 8);
    h.n_tokens = n_tokens;
    h.eot = eot;
    h.max_token_len = max_len;
    h.tok_mask = pow2_at_least((uint64_t)n_tokens * 2 + 2) - 1;
    uint64_t n_pairs = count_pairs(n_tokens, tokens, lens, eot, total_bytes, h.tok_mask);
    if (n_pairs == UINT64_MAX) {
        free(cls1);
        free(cls2);
        return NULL;
    }
    /* Load factor at most 1/2, so that a bucket is rarely full. */
    h.pair_mask = pow2_at_least(n_pairs * 2 + BPE_PAIR_BUCKET) - 1;
    h.n_cls_blocks = n_blocks;
    uint64_t n_short = 0;
    for (uint32_t i = 0; i < n_tokens; i++)
        if ((int32_t)i != eot && lens[i] >= BPE_SHORT_MIN && lens[i] <= BPE_SHORT_MAX) n_short++;
    h.short_mask = pow2_at_least(n_short * 2 + BPE_SHORT_BUCKET) - 1;
    size_t off = align64(sizeof h);
    h.off_tok_off = off;   off = align64(off + ((size_t)n_tokens + 1) * 4);
    h.off_tok_bytes = off; off = align64(off + total_bytes);
    h.off_tok_slots = off; off = align64(off + ((size_t)h.tok_mask + 1) * sizeof(bpe_slot));
    h.off_pairs = off;     off = align64(off + ((size_t)h.pair_mask + 1) * sizeof(bpe_pair));
    h.off_byte_tok = off;  off = align64(off + 256 * 4);
    h.off_cls1 = off;      off = align64(off + BPE_CLS_STAGE1 * 2);
    h.off_cls2 = off;      off = align64(off + (size_t)n_blocks * 256);
    h.off_maxlen2 = off;   off = align64(off + 65536 * 2);
    h.off_split = off;     off = align64(off + (size_t)n_tokens * 8);
    h.off_maxlen3 = off;   off = align64(off + 65536);
    h.off_tok_bloom = off; off = align64(off + BPE_BLOOM_WORDS * 8);
    h.off_byte_pairs = off; off = align64(off + 65536 * 4);
    h.off_short_keys = off; off = align64(off + ((size_t)h.short_mask + 1) * 4);
    h.off_short_ids = off; off = align64(off + ((size_t)h.short_mask + 1) * 4);
    h.off_inner_pairs = off; off = align64(off + 1024 * 8);
    for (int k = 0; k < BPE_RUNS; k++) {
        uint8_t lo = bpe_run_alphabets[k].lo, size = bpe_run_alphabets[k].size, klen = bpe_run_alphabets[k].k;
        bpe_run_image *r = &h.runs[k];
        uint64_t numbered = 0, keyed = 0, slots = 0, ends = 0, words = ((uint64_t)bpe_pow(size, 4) + 63) / 64;
        uint64_t *seen = gpt2in_calloc(words, 8);  /* the 4-byte ends of longer tokens, to count them */
        if (!seen) {
            free(cls1);
            free(cls2);
            return NULL;
        }
        for (uint32_t t = 0; t < n_tokens; t++) {
            if (!run_token(lo, size, tokens, lens, eot, t)) continue;
            if (lens[t] > r->max_len) r->max_len = lens[t];
            numbered += lens[t] <= klen;
            keyed += lens[t] > klen && lens[t] <= bpe_run_alphabets[k].key_max;
            if (lens[t] > klen) {
                uint32_t x = bpe_run_value(lo, size, tokens[t] + lens[t] - 4, 4);
                ends += !bpe_bit(seen, x);
                seen[x / 64] |= 1ull << (x % 64);
            }
        }
        free(seen);
        r->n = numbered <= BPE_RUN_MAX ? (uint32_t)numbered : 0;
        if (!r->n || numbered + 1 + keyed > BPE_RUN_ALL_MAX) keyed = 0;  /* the longer ones go without */
        r->n_all = r->n ? r->n + 1 + (uint32_t)keyed : 0;
        r->key_mask = (uint32_t)pow2_at_least(keyed * 2 + 1) - 1;
        for (unsigned len = 1; len <= klen; len++) slots += bpe_pow(size, len);
        r->off_number = off; off = align64(off + slots * 2);
        r->off_window = off; off = align64(off + (uint64_t)bpe_pow(size, klen) * 8);
        r->off_longer = off; off = align64(off + words * 8);
        r->off_longer_rank = off; off = align64(off + words * 4);
        r->off_longer_lens = off; off = align64(off + ends * 8);
        r->off_tok = off;    off = align64(off + (uint64_t)r->n_all * 4);
        r->off_len = off;    off = align64(off + r->n_all);
        r->off_kids = off;   off = align64(off + (uint64_t)r->n_all * 4);
        r->off_keys = off;   off = align64(off + ((uint64_t)r->key_mask + 1) * 8);
        r->off_key_num = off; off = align64(off + ((uint64_t)r->key_mask + 1) * 2);
        r->off_compat = off; off = align64(off + ((uint64_t)r->n * (r->n + 1) + 63) / 64 * 8);
    }
    h.image_size = off;

    /* The free key of the short-token table: 0xFFFFFFFF, unless a token
     * of 4 bytes FF has it. */
    h.short_free = UINT32_MAX;
    for (int again = 1; again;) {
        again = 0;
        for (uint32_t t = 0; t < n_tokens && !again; t++)
            if ((int32_t)t != eot && lens[t] == 4 && short_bytes(tokens[t], 4) == h.short_free) {
                h.short_free--;
                again = 1;
            }
    }
    uint8_t *img = gpt2in_calloc(1, off);
    if (!img) {
        free(cls1);
        free(cls2);
        return NULL;
    }
    memcpy(img, &h, sizeof h);
    memcpy(img + h.off_cls1, cls1, BPE_CLS_STAGE1 * 2);
    memcpy(img + h.off_cls2, cls2, (size_t)n_blocks * 256);
    free(cls1);
    free(cls2);

    struct bpe v;
    bpe_attach_image(&v, img);
    uint32_t *tok_off = (uint32_t *)(img + h.off_tok_off);
    uint8_t *bytes = img + h.off_tok_bytes;
    bpe_slot *slots = (bpe_slot *)(img + h.off_tok_slots);
    bpe_pair *pairs = (bpe_pair *)(img + h.off_pairs);
    uint32_t *byte_tok = (uint32_t *)(img + h.off_byte_tok);
    memset(pairs, 0xFF, ((size_t)h.pair_mask + 1) * sizeof *pairs);
    memset(byte_tok, 0xFF, 256 * 4);

    fill_tokens(n_tokens, tokens, lens, eot, tok_off, bytes, slots, h.tok_mask);
    for (uint32_t i = 0; i < n_tokens; i++)
        if ((int32_t)i != eot && lens[i] == 1) byte_tok[tokens[i][0]] = i;
    uint16_t *maxlen2 = (uint16_t *)(img + h.off_maxlen2);
    for (uint32_t i = 0; i < n_tokens; i++) {
        if ((int32_t)i == eot || lens[i] < 2) continue;
        uint16_t *m = &maxlen2[tokens[i][0] << 8 | tokens[i][1]];
        uint32_t l = lens[i] > 0xFFFF ? 0xFFFF : lens[i];
        if (l > *m) *m = (uint16_t)l;
    }
    uint8_t *maxlen3 = img + h.off_maxlen3;
    for (uint32_t i = 0; i < n_tokens; i++) {
        if ((int32_t)i == eot || lens[i] < 3) continue;
        uint8_t *m = &maxlen3[BPE_PREFIX3(tokens[i])];
        uint32_t l = lens[i] > 255 ? 255 : lens[i];
        if (l > *m) *m = (uint8_t)l;
    }
    /* Lookups check the bloom, so it is filled with its table. */
    uint64_t *tok_bloom = (uint64_t *)(img + h.off_tok_bloom);
    for (uint32_t t = 0; t < n_tokens; t++) {
        if ((int32_t)t == eot) continue;
        uint64_t bit = BPE_BLOOM_BIT(bpe_hash_bytes(tokens[t], lens[t]));
        tok_bloom[bit >> 6] |= 1ull << (bit & 63);
    }
    /* Every split of a token into two tokens is a merge that makes it. */
    for (uint32_t t = 0; t < n_tokens; t++) {
        if ((int32_t)t == eot) continue;
        for (uint32_t k = 1; k < lens[t]; k++) {
            uint32_t a = bpe_find_token(&v, tokens[t], k);
            uint32_t b = bpe_find_token(&v, tokens[t] + k, lens[t] - k);
            if (a == BPE_EMPTY || b == BPE_EMPTY) continue;
            uint64_t key = bpe_pair_key(a, b);
            size_t at = bpe_hash_pair(key) & h.pair_mask & ~(size_t)(BPE_PAIR_BUCKET - 1);
            while (pairs[at] != BPE_PAIR_EMPTY) at = (at + 1) & h.pair_mask;
            pairs[at] = key << 21 | t;
        }
    }
    uint32_t *short_keys = (uint32_t *)(img + h.off_short_keys);
    uint32_t *short_ids = (uint32_t *)(img + h.off_short_ids);
    for (size_t k = 0; k <= h.short_mask; k++) {
        short_keys[k] = h.short_free;
        short_ids[k] = BPE_EMPTY;
    }
    for (uint32_t t = 0; t < n_tokens; t++) {
        if ((int32_t)t == eot || lens[t] < BPE_SHORT_MIN || lens[t] > BPE_SHORT_MAX) continue;
        uint32_t bytes = short_bytes(tokens[t], lens[t]);
        size_t at = bpe_short_hash(bytes, lens[t]) & h.short_mask & ~(size_t)(BPE_SHORT_BUCKET - 1);
        while (short_ids[at] != BPE_EMPTY) at = (at + 1) & h.short_mask;
        short_keys[at] = bytes;
        short_ids[at] = t | lens[t] << 24;
    }
    uint64_t *inner = (uint64_t *)(img + h.off_inner_pairs);
    for (uint32_t t = 0; t < n_tokens; t++) {
        if ((int32_t)t == eot) continue;
        for (uint32_t k = 1; k < lens[t]; k++) {
            unsigned xy = (unsigned)tokens[t][k - 1] << 8 | tokens[t][k];
            inner[xy >> 6] |= 1ull << (xy & 63);
        }
    }
    uint32_t *byte_pairs = (uint32_t *)(img + h.off_byte_pairs);
    for (uint32_t xy = 0; xy < 65536; xy++)
        byte_pairs[xy] = byte_tok[xy >> 8] == BPE_EMPTY || byte_tok[xy & 255] == BPE_EMPTY
                             ? BPE_EMPTY
                             : bpe_pair_rank(&v, byte_tok[xy >> 8], byte_tok[xy & 255]);
    /* Needs the finished pair table: it runs the merge process. */
    uint32_t *split = (uint32_t *)(img + h.off_split);
    for (uint32_t t = 0; t < n_tokens; t++)
        if ((int32_t)t == eot || lens[t] < 2 || !bpe_token_split(&v, t, &split[2 * t], &split[2 * t + 1]))
            split[2 * t] = split[2 * t + 1] = BPE_EMPTY;
    for (int k = 0; k < BPE_RUNS; k++) {
        if (!h.runs[k].n) continue;
        const struct bpe_run *r = &v.runs[k];
        uint16_t *number = (uint16_t *)(img + h.runs[k].off_number);
        uint32_t *rtok = (uint32_t *)(img + h.runs[k].off_tok);
        uint8_t *rlen = img + h.runs[k].off_len;
        uint64_t *window = (uint64_t *)(img + h.runs[k].off_window);
        uint64_t *longer = (uint64_t *)(img + h.runs[k].off_longer);
        uint32_t count = 0;
        for (uint32_t slot = 0, len = 1; len <= r->k; len++) {
            for (uint32_t x = 0; x < bpe_pow(r->size, len); x++, slot++) {
                uint8_t s[4];
                run_string(r->lo, r->size, x, len, s);
                uint32_t t = bpe_find_token(&v, s, len);
                number[slot] = t == BPE_EMPTY ? BPE_RUN_NONE : (uint16_t)count;
                if (t != BPE_EMPTY) {
                    rtok[count] = t;
                    rlen[count++] = (uint8_t)len;
                }
            }
        }
        /* "none", then the longer tokens by their keys (what makes each: below) */
        rtok[count] = BPE_EMPTY;
        rlen[count++] = 0;
        uint64_t *keys = (uint64_t *)(img + h.runs[k].off_keys);
        uint16_t *key_num = (uint16_t *)(img + h.runs[k].off_key_num);
        for (uint32_t t = 0; t < n_tokens && count < r->n_all; t++) {
            if (lens[t] <= r->k || lens[t] > r->key_max || !run_token(r->lo, r->size, tokens, lens, eot, t)) continue;
            uint64_t key = bpe_run_key(r->lo, r->size, tokens[t], lens[t]);
            size_t at = bpe_hash_pair(key) & r->key_mask;
            while (keys[at]) at = (at + 1) & r->key_mask;
            keys[at] = key;
            key_num[at] = (uint16_t)count;
            rtok[count] = t;
            rlen[count++] = (uint8_t)lens[t];
        }
        for (uint32_t w = 0; w < bpe_pow(r->size, r->k); w++) {
            uint8_t s[4];
            run_string(r->lo, r->size, w, r->k, s);
            uint64_t e = 0;
            for (uint32_t len = 2; len <= r->k; len++) {
                uint32_t num = number[bpe_run_slot(r->lo, r->size, s + r->k - len, len)];
                e |= (uint64_t)(num == BPE_RUN_NONE ? r->n : num) << (16 * (len - 2));
            }
            window[w] = e;
        }
        /* The 4-byte ends of the longer tokens, the bits before each word,
         * then the lengths that end with each. */
        uint32_t *rank = (uint32_t *)(img + h.runs[k].off_longer_rank);
        uint64_t *lens_of = (uint64_t *)(img + h.runs[k].off_longer_lens);
        for (uint32_t t = 0; t < n_tokens; t++) {
            if (lens[t] <= r->k || !run_token(r->lo, r->size, tokens, lens, eot, t)) continue;
            uint32_t x = bpe_run_value(r->lo, r->size, tokens[t] + lens[t] - 4, 4);
            longer[x / 64] |= 1ull << (x % 64);
        }
        for (uint32_t wd = 0, below = 0; wd < (bpe_pow(r->size, 4) + 63) / 64; wd++) {
            rank[wd] = below;
            below += (uint32_t)__builtin_popcountll(longer[wd]);
        }
        for (uint32_t t = 0; t < n_tokens; t++) {
            if (lens[t] <= r->k || !run_token(r->lo, r->size, tokens, lens, eot, t)) continue;
            uint32_t x = bpe_run_value(r->lo, r->size, tokens[t] + lens[t] - 4, 4);
            lens_of[bpe_run_longer_index(longer, rank, x)] |= 1ull << (lens[t] < 64 ? lens[t] - 1 : 63);
        }
        /* What makes each token, found as the encoder finds tokens (with
         * the bitmap of the longer ones' ends, filled above). */
        uint16_t *kids = (uint16_t *)(img + h.runs[k].off_kids);
        for (uint32_t u = 0; u < r->n_all; u++) {
            uint32_t t = rtok[u], left = BPE_RUN_NONE, right = BPE_RUN_NONE;
            if (t != BPE_EMPTY && split[2 * t] != BPE_EMPTY) {
                left = bpe_run_number(r, tokens[split[2 * t]], lens[split[2 * t]]);
                right = bpe_run_number(r, tokens[split[2 * t + 1]], lens[split[2 * t + 1]]);
                if (left == BPE_RUN_NONE || right == BPE_RUN_NONE) left = right = BPE_RUN_NONE;
            }
            kids[2 * u] = (uint16_t)left;
            kids[2 * u + 1] = (uint16_t)right;
        }
        /* Needs every table above: it checks pairs as the encoder does. */
        bpe_fill_run_compat(&v, r, (uint64_t *)(img + h.runs[k].off_compat));
    }
    *size = off;
    return img;
}

void bpe_attach_image(struct bpe *v, const void *image) {
    const uint8_t *img = image;
    bpe_image_header h;
    memcpy(&h, img, sizeof h);
    v->n_tokens = h.n_tokens;
    v->eot = h.eot;
    v->max_token_len = h.max_token_len;
    v->tok_mask = h.tok_mask;
    v->pair_mask = h.pair_mask;
    v->tok_off = (const uint32_t *)(img + h.off_tok_off);
    v->tok_bytes = img + h.off_tok_bytes;
    v->tok_slots = (const bpe_slot *)(img + h.off_tok_slots);
    v->pairs = (const bpe_pair *)(img + h.off_pairs);
    v->byte_tok = (const uint32_t *)(img + h.off_byte_tok);
    v->cls1 = (const uint16_t *)(img + h.off_cls1);
    v->cls2 = img + h.off_cls2;
    v->maxlen2 = (const uint16_t *)(img + h.off_maxlen2);
    v->split = (const uint32_t *)(img + h.off_split);
    v->maxlen3 = img + h.off_maxlen3;
    v->tok_bloom = (const uint64_t *)(img + h.off_tok_bloom);
    v->byte_pairs = (const uint32_t *)(img + h.off_byte_pairs);
    v->short_mask = h.short_mask;
    v->short_free = h.short_free;
    v->short_keys = (const uint32_t *)(img + h.off_short_keys);
    v->short_ids = (const uint32_t *)(img + h.off_short_ids);
    v->inner_pairs = (const uint64_t *)(img + h.off_inner_pairs);
    for (int k = 0; k < BPE_RUNS; k++) {
        const bpe_run_image *r = &h.runs[k];
        v->runs[k] = (struct bpe_run){bpe_run_alphabets[k].lo,
                                      bpe_run_alphabets[k].size,
                                      bpe_run_alphabets[k].k,
                                      bpe_run_alphabets[k].key_max,
                                      r->n,
                                      r->n_all,
                                      r->key_mask,
                                      r->max_len,
                                      (const uint16_t *)(img + r->off_number),
                                      (const uint64_t *)(img + r->off_window),
                                      (const uint64_t *)(img + r->off_longer),
                                      (const uint32_t *)(img + r->off_longer_rank),
                                      (const uint64_t *)(img + r->off_longer_lens),
                                      (const uint32_t *)(img + r->off_tok),
                                      img + r->off_len,
                                      (const uint16_t *)(img + r->off_kids),
                                      (const uint64_t *)(img + r->off_keys),
                                      (const uint16_t *)(img + r->off_key_num),
                                      (const uint64_t *)(img + r->off_compat)};
    }
    v->owned = NULL;
    v->id_of_rank = v->rank_of_id = NULL;
    v->owned_ids = NULL;
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

static int check_merges(const char *buf, size_t len, const char *name, const struct bpe *v,
                        bpe_error *err) {
    const char *p = buf, *end = buf + len;
    size_t line = 0;
    uint8_t a[1024], b[1024];
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
        uint32_t ta = bpe_find_token(v, a, na), tb = bpe_find_token(v, b, nb);
        if (ta == BPE_EMPTY || tb == BPE_EMPTY)
            return bpe_fail(err, BPE_ERR_FORMAT, 0, "%s:%zu: unknown token \"%.*s\" in merge", name, line,
                        ta == BPE_EMPTY ? (int)(sp - p) : (int)(le - sp - 1), ta == BPE_EMPTY ? p : sp + 1);
        if (na + nb > sizeof a || (memcpy(a + na, b, nb), bpe_find_token(v, a, na + nb) == BPE_EMPTY))
            return bpe_fail(err, BPE_ERR_FORMAT, 0, "%s:%zu: the merge of \"%.*s\" makes no token of encoder.json",
                        name, line, (int)(le - p), p);
        p = eol + (eol < end);
    }
    if (line == 0) return bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: empty merges file", name);
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
    void *img = bpe_build_image(vp.n, (const uint8_t *const *)vp.tok, vp.len, vp.eot, &size);
    vocab_parse_free(&vp);
    struct bpe *v = img ? gpt2in_malloc(sizeof *v) : NULL;
    if (!v) {
        free(img);
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

static char *read_file(const char *path, size_t *len, bpe_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        bpe_fail(err, BPE_ERR_IO, 0, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 20;
            char *nb = gpt2in_realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                bpe_fail(err, BPE_ERR_NOMEM, 0, "%s: out of memory", path);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        bpe_fail(err, BPE_ERR_IO, 0, "%s: read error", path);
        return NULL;
    }
    *len = n;
    return buf;
}

bpe *bpe_load(const char *encoder_json_path, const char *vocab_bpe_path, bpe_error *err) {
    size_t el, vl;
    char *e = read_file(encoder_json_path, &el, err);
    if (!e) return NULL;
    char *m = read_file(vocab_bpe_path, &vl, err);
    if (!m) {
        free(e);
        return NULL;
    }
    bpe *v = bpe_load_mem(e, el, encoder_json_path, m, vl, vocab_bpe_path, err);
    free(e);
    free(m);
    return v;
}

void bpe_free(const bpe *vocab) {
    if (!vocab || !vocab->owned) return;  /* the built-in vocabulary is static */
    free(vocab->owned);
    free(vocab->owned_ids);
    free((bpe *)vocab);
}

size_t bpe_vocab_size(const bpe *v) { return v->n_tokens; }
int32_t bpe_eot_id(const bpe *v) { return v->eot >= 0 && v->id_of_rank ? (int32_t)v->id_of_rank[v->eot] : v->eot; }
size_t bpe_max_token_bytes(const bpe *v) { return v->max_token_len; }
