/* image.c - building a vocabulary image from its tokens, and reading one.
 *
 * Every loader (load.c, load_*.c) hands its tokens, in rank order, to
 * bpe_build_image; the build-time generator (tools/bpe_gen.c) writes the
 * same bytes into the library for the built-in vocabulary. The layout is
 * the list BPE_IMAGE_ARRAYS in bpe_internal.h.
 */
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "bpe_internal.h"
#include "encode.h"
#include "unicode_update.h"

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

/* Token bytes, their offsets, and the hash from bytes to id. Special
 * tokens (sp[i] set) are never produced by merging, so they are not hashed. */
static void fill_tokens(uint32_t n_tokens, const uint8_t *const *tokens, const uint32_t *lens, const uint8_t *sp,
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
        if (sp[i]) continue;
        uint64_t hh = bpe_hash_bytes(tokens[i], lens[i]);
        while (slots[hh & tok_mask].id != BPE_EMPTY) hh++;
        bpe_slot *sl = &slots[hh & tok_mask];
        sl->id = i;
        sl->len = (uint8_t)(lens[i] < 255 ? lens[i] : 255);
        memcpy(sl->bytes, tokens[i], lens[i] < BPE_SLOT_BYTES ? lens[i] : BPE_SLOT_BYTES);
    }
}

/* The number of (token, token) -> token merges: every split of a token into
 * two tokens. Uses a temporary token hash (a big buffer, as the trie's);
 * UINT64_MAX when out of memory. */
static uint64_t count_pairs(uint32_t n_tokens, const uint8_t *const *tokens, const uint32_t *lens,
                            const uint8_t *sp, uint64_t total_bytes, uint32_t tok_mask) {
    struct bpe v = {0};
    uint32_t *off = gpt2in_malloc(((size_t)n_tokens + 1) * 4);
    bpe_slot *slots = bpe_big_alloc(((size_t)tok_mask + 1) * sizeof *slots);
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
    fill_tokens(n_tokens, tokens, lens, sp, off, bytes, slots, tok_mask);
    for (uint32_t t = 0; t < n_tokens; t++) {
        if (sp[t]) continue;
        for (uint32_t k = 1; k < lens[t]; k++)
            n += bpe_find_token(&v, tokens[t], k) != BPE_EMPTY && bpe_find_token(&v, tokens[t] + k, lens[t] - k) != BPE_EMPTY;
    }
out:
    free(off);
    bpe_big_free(slots);
    free(bytes);
    return n;
}

/* ---- the automaton ------------------------------------------------------------ */

/* The trie of the tokens' bytes, built before the image's layout is known
 * (its size is the number of nodes): nodes in the order they are made,
 * with each one's parent and last byte, and the child table, bucketed as
 * in the image. */
typedef struct {
    uint32_t n, mask;
    uint32_t *parent;
    uint8_t *byte;
    uint32_t *depth;
    uint64_t *child;
} trie;

static void trie_free(trie *t) {
    bpe_big_free(t->parent);
    bpe_big_free(t->byte);
    bpe_big_free(t->depth);
    bpe_big_free(t->child);
}

static uint32_t trie_child(const trie *t, uint32_t node, uint8_t c) {
    struct bpe v = {0};
    v.ac_child = t->child;
    v.ac_child_mask = t->mask;
    return bpe_ac_child(&v, node, c);
}

static void trie_put(uint64_t *child, uint32_t mask, uint32_t node, uint8_t c, uint32_t to) {
    uint32_t key = node << 8 | c;
    size_t at = bpe_hash_pair(key) & mask & ~(size_t)(BPE_PAIR_BUCKET - 1);
    while (child[at] != BPE_AC_EMPTY) at = (at + 1) & mask;
    child[at] = (uint64_t)key << 32 | to;
}

/* 0, or -1 when out of memory or when there are too many nodes. The
 * tables are written all over, so they are memory.c's buffers (huge
 * pages: a fault for 2 MB, not one for each 4 KB). */
static int trie_build(trie *t, uint32_t n_tokens, const uint8_t *const *tokens, const uint32_t *lens, const uint8_t *sp,
                      uint64_t total_bytes) {
    memset(t, 0, sizeof *t);
    uint64_t most = total_bytes + 1;  /* the root, and at most a node a byte */
    if (most > BPE_AC_MAX_NODES) return -1;
    t->mask = pow2_at_least(most * 2 + BPE_PAIR_BUCKET) - 1;
    t->parent = bpe_big_alloc(most * sizeof *t->parent);
    t->byte = bpe_big_alloc(most);
    t->depth = bpe_big_alloc(most * sizeof *t->depth);
    t->child = bpe_big_alloc(((size_t)t->mask + 1) * sizeof *t->child);
    if (!t->parent || !t->byte || !t->depth || !t->child) return -1;
    memset(t->child, 0xFF, ((size_t)t->mask + 1) * sizeof *t->child);
    t->n = 1;
    t->parent[0] = 0;
    t->byte[0] = 0;
    t->depth[0] = 0;
    for (uint32_t k = 0; k < n_tokens; k++) {
        if (sp[k]) continue;
        uint32_t node = 0;
        for (uint32_t j = 0; j < lens[k]; j++) {
            uint32_t next = trie_child(t, node, tokens[k][j]);
            if (next == BPE_EMPTY) {
                next = t->n++;
                t->parent[next] = node;
                t->byte[next] = tokens[k][j];
                t->depth[next] = j + 1;
                trie_put(t->child, t->mask, node, tokens[k][j], next);
            }
            node = next;
        }
    }
    /* The table was sized for a node a byte; most prefixes are shared. */
    uint32_t mask = pow2_at_least((uint64_t)t->n * 2 + BPE_PAIR_BUCKET) - 1;
    uint64_t *child = bpe_big_alloc(((size_t)mask + 1) * sizeof *child);
    if (!child) return -1;
    memset(child, 0xFF, ((size_t)mask + 1) * sizeof *child);
    for (size_t k = 0; k <= t->mask; k++)
        if (t->child[k] != BPE_AC_EMPTY)
            trie_put(child, mask, (uint32_t)(t->child[k] >> 40), (uint8_t)(t->child[k] >> 32), (uint32_t)t->child[k]);
    bpe_big_free(t->child);
    t->child = child;
    t->mask = mask;
    return 0;
}

/* Fills the automaton of the image that v reads (its node count and child
 * table size from t): outputs (only tokens that are their own encoding
 * can be in an encoding), fail links and dict links, nodes taken in order
 * of depth so that every shorter node is done first. 0, or -1 when out of
 * memory. */
static int automaton_fill(const struct bpe *v, const trie *t, bpe_ac_node *nodes, uint64_t *child, uint32_t *root,
                          uint32_t max_len) {
    uint32_t *by_depth = gpt2in_malloc((size_t)t->n * sizeof *by_depth);
    uint32_t *start = gpt2in_calloc((size_t)max_len + 2, sizeof *start);
    uint8_t *buf = gpt2in_malloc((size_t)max_len + 1);
    int rc = -1;
    if (!by_depth || !start || !buf) goto out;
    memcpy(child, t->child, ((size_t)t->mask + 1) * sizeof *child);
    for (uint32_t u = 0; u < t->n; u++) start[t->depth[u] + 1]++;
    for (uint32_t d = 1; d <= max_len + 1; d++) start[d] += start[d - 1];
    for (uint32_t u = 0; u < t->n; u++) by_depth[start[t->depth[u]]++] = u;
    for (uint32_t c = 0; c < 256; c++) root[c] = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        uint32_t u = by_depth[i];
        bpe_ac_node *a = &nodes[u];
        a->depth = t->depth[u];
        a->tok = BPE_EMPTY;
        a->fail = a->dict = 0;
        if (u == 0) continue;
        uint32_t p = t->parent[u];
        uint8_t c = t->byte[u];
        if (p == 0) {
            root[c] = u;
        } else {
            a->fail = bpe_ac_next(v, nodes[p].fail, c);  /* the longest proper suffix's node */
        }
        /* the node's own token, when it is its own encoding */
        uint32_t w = u;
        for (uint32_t j = a->depth; j-- > 0; w = t->parent[w]) buf[j] = t->byte[w];
        uint32_t tok = bpe_find_token(v, buf, a->depth);
        if (tok != BPE_EMPTY && bpe_token_alone(v, tok)) a->tok = tok;
        const bpe_ac_node *f = &nodes[a->fail];
        a->dict = a->fail == 0 ? 0 : f->tok != BPE_EMPTY ? a->fail : f->dict;
    }
    rc = 0;
out:
    free(by_depth);
    free(start);
    free(buf);
    return rc;
}

/* ---- the image -------------------------------------------------------------- */

/* Special tokens by first byte, longest first (bpe_special_here). */
typedef struct {
    uint32_t first, len, rank, late;
} special_key;
static int by_first_byte(const void *x, const void *y) {
    const special_key *a = x, *b = y;
    if (a->first != b->first) return a->first < b->first ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->rank < b->rank ? -1 : a->rank > b->rank;
}

void *bpe_build_image(uint32_t n_tokens, const uint8_t *const *tokens, const uint32_t *lens,
                      const uint32_t *specials, const uint8_t *late, uint32_t n_specials, int32_t eot,
                      uint64_t *size) {
    uint64_t total_bytes = 0;
    uint32_t max_len = 0;
    for (uint32_t i = 0; i < n_tokens; i++) {
        total_bytes += lens[i];
        if (lens[i] > max_len) max_len = lens[i];
    }
    if (total_bytes > UINT32_MAX) return NULL;

    /* Unicode classes: stage-2 blocks are deduplicated. */
    uint16_t *cls1 = gpt2in_malloc(BPE_CLS_STAGE1 * sizeof *cls1);
    uint8_t *cls2 = gpt2in_malloc((size_t)BPE_CLS_STAGE1 * 256);
    uint8_t *sp = gpt2in_calloc(n_tokens ? n_tokens : 1, 1);
    trie tr = {0};
    uint8_t *img = NULL;
    if (!cls1 || !cls2 || !sp) goto fail;
    for (uint32_t k = 0; k < n_specials; k++) sp[specials[k]] = 1;
    uint32_t n_blocks = 0;
    for (uint32_t blk = 0; blk < BPE_CLS_STAGE1; blk++) {
        uint8_t *block = cls2 + (size_t)n_blocks * 256;
        for (uint32_t j = 0; j < 256; j++) block[j] = (uint8_t)classify(blk << 8 | j);
        uint32_t k = 0;
        while (k < n_blocks && memcmp(cls2 + (size_t)k * 256, block, 256)) k++;
        if (k == n_blocks) n_blocks++;
        cls1[blk] = (uint16_t)k;
    }
    if (trie_build(&tr, n_tokens, tokens, lens, sp, total_bytes)) goto fail;

    bpe_image_header h = {0};
    memcpy(h.magic, BPE_IMAGE_MAGIC, 8);
    h.n_tokens = n_tokens;
    h.eot = eot;
    h.n_specials = n_specials;
    h.special_byte = n_specials ? tokens[specials[0]][0] : -1;
    for (uint32_t k = 0; k < n_specials; k++) {
        if (lens[specials[k]] > h.special_max_len) h.special_max_len = lens[specials[k]];
        if (tokens[specials[k]][0] != h.special_byte) h.special_byte = -1;
        h.n_late += late && late[k];
    }
    if (h.n_late == n_specials) h.n_late = 0;  /* all in one pass */
    h.max_token_len = max_len;
    h.n_tok_bytes = (uint32_t)total_bytes;
    h.tok_mask = pow2_at_least((uint64_t)n_tokens * 2 + 2) - 1;
    uint64_t n_pairs = count_pairs(n_tokens, tokens, lens, sp, total_bytes, h.tok_mask);
    if (n_pairs == UINT64_MAX) goto fail;
    /* Load factor at most 1/2, so that a bucket is rarely full. */
    h.pair_mask = pow2_at_least(n_pairs * 2 + BPE_PAIR_BUCKET) - 1;
    h.n_cls_blocks = n_blocks;
    uint64_t n_short = 0;
    for (uint32_t i = 0; i < n_tokens; i++)
        if (!sp[i] && lens[i] >= BPE_SHORT_MIN && lens[i] <= BPE_SHORT_MAX) n_short++;
    h.short_mask = pow2_at_least(n_short * 2 + BPE_SHORT_BUCKET) - 1;
    h.ac_nodes_n = tr.n;
    h.ac_child_mask = tr.mask;
    size_t off = align64(sizeof h);
#define X(type, name, count) \
    h.off_##name = off;      \
    off = align64(off + (size_t)(count) * sizeof(type));
    BPE_IMAGE_ARRAYS(X)
#undef X
    h.image_size = off;

    /* The free key of the short-token table: 0xFFFFFFFF, unless a token
     * of 4 bytes FF has it. */
    h.short_free = UINT32_MAX;
    for (int again = 1; again;) {
        again = 0;
        for (uint32_t t = 0; t < n_tokens && !again; t++)
            if (!sp[t] && lens[t] == 4 && short_bytes(tokens[t], 4) == h.short_free) {
                h.short_free--;
                again = 1;
            }
    }
    img = bpe_big_zalloc(off);
    if (!img) goto fail;
    memcpy(img, &h, sizeof h);
    memcpy(img + h.off_cls1, cls1, BPE_CLS_STAGE1 * 2);
    memcpy(img + h.off_cls2, cls2, (size_t)n_blocks * 256);

    struct bpe v;
    bpe_attach_image(&v, img);
    uint32_t *tok_off = (uint32_t *)(img + h.off_tok_off);
    uint8_t *bytes = img + h.off_tok_bytes;
    bpe_slot *slots = (bpe_slot *)(img + h.off_tok_slots);
    bpe_pair *pairs = (bpe_pair *)(img + h.off_pairs);
    uint32_t *byte_tok = (uint32_t *)(img + h.off_byte_tok);
    memset(pairs, 0xFF, ((size_t)h.pair_mask + 1) * sizeof *pairs);
    memset(byte_tok, 0xFF, 256 * 4);

    fill_tokens(n_tokens, tokens, lens, sp, tok_off, bytes, slots, h.tok_mask);
    for (uint32_t i = 0; i < n_tokens; i++)
        if (!sp[i] && lens[i] == 1) byte_tok[tokens[i][0]] = i;
    /* Lookups check the bloom, so it is filled with its table. */
    uint64_t *tok_bloom = (uint64_t *)(img + h.off_tok_bloom);
    for (uint32_t t = 0; t < n_tokens; t++) {
        if (sp[t]) continue;
        uint64_t bit = BPE_BLOOM_BIT(bpe_hash_bytes(tokens[t], lens[t]));
        tok_bloom[bit >> 6] |= 1ull << (bit & 63);
    }
    /* Every split of a token into two tokens is a merge that makes it.
     * Its proper prefixes and suffixes that are tokens can be extended. */
    uint8_t *ext = img + h.off_tok_ext;
    for (uint32_t t = 0; t < n_tokens; t++) {
        if (sp[t]) continue;
        for (uint32_t k = 1; k < lens[t]; k++) {
            uint32_t a = bpe_find_token(&v, tokens[t], k);
            uint32_t b = bpe_find_token(&v, tokens[t] + k, lens[t] - k);
            if (a != BPE_EMPTY) ext[a] |= BPE_EXT_RIGHT;
            if (b != BPE_EMPTY) ext[b] |= BPE_EXT_LEFT;
            if (a == BPE_EMPTY || b == BPE_EMPTY) continue;
            uint64_t key = bpe_pair_key(a, b);
            size_t at = bpe_hash_pair(key) & h.pair_mask & ~(size_t)(BPE_PAIR_BUCKET - 1);
            while (pairs[at] != BPE_PAIR_EMPTY) at = (at + 1) & h.pair_mask;
            pairs[at] = key << 21 | t;
        }
    }
    /* A token whose bytes another one has too (a file may list them
     * twice): the flags of the one the lookups find. */
    for (uint32_t t = 0; t < n_tokens; t++) {
        uint32_t c = sp[t] ? BPE_EMPTY : bpe_find_token(&v, tokens[t], lens[t]);
        if (c != BPE_EMPTY && c != t) ext[t] = ext[c];
    }
    uint32_t *short_table = (uint32_t *)(img + h.off_short_table);
    for (size_t k = 0; k <= h.short_mask; k++) {
        short_table[bpe_short_slot(k)] = h.short_free;
        short_table[bpe_short_slot(k) + BPE_SHORT_BUCKET] = BPE_EMPTY;
    }
    for (uint32_t t = 0; t < n_tokens; t++) {
        if (sp[t] || lens[t] < BPE_SHORT_MIN || lens[t] > BPE_SHORT_MAX) continue;
        uint32_t key = short_bytes(tokens[t], lens[t]);
        size_t at = bpe_short_hash(key, lens[t]) & h.short_mask & ~(size_t)(BPE_SHORT_BUCKET - 1);
        while (short_table[bpe_short_slot(at) + BPE_SHORT_BUCKET] != BPE_EMPTY) at = (at + 1) & h.short_mask;
        short_table[bpe_short_slot(at)] = key;
        short_table[bpe_short_slot(at) + BPE_SHORT_BUCKET] = t | lens[t] << 24;
    }
    uint64_t *inner = (uint64_t *)(img + h.off_inner_pairs);
    for (uint32_t t = 0; t < n_tokens; t++) {
        if (sp[t]) continue;
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
        if (sp[t] || lens[t] < 2 || !bpe_token_split(&v, t, &split[2 * t], &split[2 * t + 1]))
            split[2 * t] = split[2 * t + 1] = BPE_EMPTY;
    /* Needs every table above: its outputs are tokens that are their own
     * encoding, and its fail links take steps of the automaton so far. */
    if (automaton_fill(&v, &tr, (bpe_ac_node *)(img + h.off_ac_nodes), (uint64_t *)(img + h.off_ac_child),
                       (uint32_t *)(img + h.off_ac_root), max_len))
        goto fail;
    /* The special tokens: as listed, and by first byte, longest first. */
    uint32_t *list = (uint32_t *)(img + h.off_special_list), *by = (uint32_t *)(img + h.off_special_by);
    uint32_t *at = (uint32_t *)(img + h.off_special_at);
    if (n_specials) memcpy(list, specials, (size_t)n_specials * sizeof *list);
    special_key *keys = gpt2in_malloc((n_specials ? n_specials : 1) * sizeof *keys);
    if (!keys) goto fail;
    for (uint32_t k = 0; k < n_specials; k++)
        keys[k] = (special_key){tokens[specials[k]][0], lens[specials[k]], specials[k],
                                h.n_late && late[k] ? BPE_SPECIAL_LATE : 0};
    if (n_specials) qsort(keys, n_specials, sizeof *keys, by_first_byte);
    for (uint32_t k = 0; k < n_specials; k++) by[k] = keys[k].rank | keys[k].late;
    for (uint32_t b = 0, k = 0; b <= 256; b++) {
        while (k < n_specials && keys[k].first < b) k++;
        at[b] = k;
    }
    free(keys);
    free(cls1);
    free(cls2);
    free(sp);
    trie_free(&tr);
    *size = off;
    return img;
fail:
    bpe_big_free(img);
    free(cls1);
    free(cls2);
    free(sp);
    trie_free(&tr);
    return NULL;
}

void bpe_attach_image(struct bpe *v, const void *image) {
    const uint8_t *img = image;
    bpe_image_header h;
    memcpy(&h, img, sizeof h);
#define X(type, name) v->name = h.name;
    BPE_IMAGE_SCALARS(X)
#undef X
#define X(type, name, count) v->name = (const type *)(img + h.off_##name);
    BPE_IMAGE_ARRAYS(X)
#undef X
    v->owned = NULL;
    v->id_of_rank = v->rank_of_id = NULL;
    v->owned_ids = NULL;
}
