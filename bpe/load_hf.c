/* load_hf.c - Hugging Face vocabularies: tokenizer.json, and the older
 * vocab.json + merges.txt pair (JSON through jansson).
 *
 * Only what encodes exactly like GPT-2 is accepted: a BPE model, GPT-2's
 * byte-level pre-tokenizer and regex, no normaliser, no post-processor that
 * adds ids; every added token is a special token. A merge's rank is its
 * position; ids come from the vocabulary (load_vocab.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "load_vocab.h"

#define GPT2_PATTERN "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

static json_t *parse(const char *data, size_t len, const char *name, bpe_error *err) {
    json_error_t je;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    /* jansson says nothing when its own allocation fails before parsing */
    if (!root && (json_error_code(&je) == json_error_out_of_memory || !je.text[0])) {
        bpe_fail(err, BPE_ERR_NOMEM, 0, "%s: out of memory", name);
        return NULL;
    }
    if (!root) {
        /* jansson quotes the text near the error: it may hold a newline, an
         * escape sequence or a bidi override, shown as ? */
        for (char *c = je.text; *c; c++)
            if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7F) *c = '?';
        bpe_fail(err, BPE_ERR_FORMAT, (uint64_t)(je.position > 0 ? je.position : 0), "%s:%d:%d: %s", name, je.line,
                 je.column, je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: not a JSON object", name);
        json_decref(root);
        return NULL;
    }
    return root;
}

static const char *type_name(const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    default: return "null";
    }
}

/* A short description of a JSON value for a message: a string quoted, an
 * object by its "type", else its kind. */
static const char *describe(const json_t *j, char *buf, size_t cap) {
    if (!j) return "nothing";
    if (json_is_string(j)) return bpe_lv_quote(buf, cap, json_string_value(j), json_string_length(j));
    const json_t *t = json_is_object(j) ? json_object_get(j, "type") : NULL;
    if (t && json_is_string(t)) {
        char q[100];
        snprintf(buf, cap, "type %s", bpe_lv_quote(q, sizeof q, json_string_value(t), json_string_length(t)));
        return buf;
    }
    if (json_is_boolean(j)) return json_is_true(j) ? "true" : "false";
    return type_name(j);
}

/* Whether j is absent, null, false or the empty string (an unset option). */
static int unset(const json_t *j) {
    return !j || json_is_null(j) || json_is_false(j) || (json_is_string(j) && json_string_length(j) == 0);
}

static int is_str(const json_t *j, const char *s) { return json_is_string(j) && !strcmp(json_string_value(j), s); }

/* GPT-2's pre-tokenizer: ByteLevel with the regex, or a Sequence of a Split
 * on GPT-2's pattern (Isolated, not inverted) and a ByteLevel without it. */
static int check_byte_level(const json_t *p, int want_regex) {
    if (!json_is_object(p) || !is_str(json_object_get(p, "type"), "ByteLevel")) return 0;
    if (!unset(json_object_get(p, "add_prefix_space"))) return 0;
    const json_t *re = json_object_get(p, "use_regex");
    int regex = !re || json_is_null(re) ? 1 : json_is_true(re) ? 1 : json_is_false(re) ? 0 : -1;
    return regex == want_regex;
}

static int check_pre_tokenizer(const json_t *p) {
    if (check_byte_level(p, 1)) return 1;
    if (!json_is_object(p) || !is_str(json_object_get(p, "type"), "Sequence")) return 0;
    const json_t *seq = json_object_get(p, "pretokenizers");
    if (!json_is_array(seq) || json_array_size(seq) != 2) return 0;
    const json_t *split = json_array_get(seq, 0), *pat;
    if (!json_is_object(split) || !is_str(json_object_get(split, "type"), "Split")) return 0;
    pat = json_object_get(split, "pattern");
    if (!json_is_object(pat) || !is_str(json_object_get(pat, "Regex"), GPT2_PATTERN)) return 0;
    if (!is_str(json_object_get(split, "behavior"), "Isolated") || !unset(json_object_get(split, "invert")))
        return 0;
    return check_byte_level(json_array_get(seq, 1), 0);
}

/* The special tokens: every added token, matched in text as it stands
 * (Hugging Face splits them out before pre-tokenizing, leftmost-longest,
 * whether marked special or not). */
typedef struct {
    uint32_t id;
    const char *content;
    size_t len;
    int late;   /* "normalized": true */
} added_tok;

typedef struct {
    added_tok *t;
    size_t n;
} added_list;

static int read_added(const json_t *added, const char *name, added_list *al, bpe_error *err) {
    memset(al, 0, sizeof *al);
    if (!added || json_is_null(added)) return BPE_OK;
    if (!json_is_array(added)) return bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: added_tokens is %s, not an array", name, type_name(added));
    size_t n = json_array_size(added);
    if (n >= BPE_MAX_TOKENS)
        return bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: added_tokens holds %zu tokens, more than %u", name, n, BPE_MAX_TOKENS - 1);
    al->t = gpt2in_malloc((n ? n : 1) * sizeof *al->t);
    if (!al->t) return bpe_fail(err, BPE_ERR_NOMEM, 0, "%s: out of memory", name);
    char q[160], q2[160];
    for (size_t i = 0; i < n; i++) {
        const json_t *t = json_array_get(added, i);
        const json_t *id = json_object_get(t, "id"), *c = json_object_get(t, "content");
        if (!json_is_object(t) || !json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) >= BPE_MAX_TOKENS || !json_is_string(c) || json_string_length(c) == 0)
            return bpe_fail(err, BPE_ERR_FORMAT, i, "%s: added_tokens[%zu]: needs an id (0..%u) and a non-empty content",
                            name, i, BPE_MAX_TOKENS - 1);
        const char *cs = json_string_value(c);
        size_t cl = json_string_length(c);
        bpe_lv_quote(q, sizeof q, cs, cl);
        /* What would change where a token is found, refused by name. */
        static const char *const flags[] = {"lstrip", "rstrip", "single_word"};
        static const char *const why[] = {"gpt2in does not strip around special tokens",
                                          "gpt2in does not strip around special tokens",
                                          "gpt2in matches special tokens inside words too"};
        for (int k = 0; k < 3; k++)
            if (!unset(json_object_get(t, flags[k])))
                return bpe_fail(err, BPE_ERR_FORMAT, i, "%s: added_tokens[%zu] %s has %s: %s", name, i, q, flags[k], why[k]);
        /* Hugging Face splits out the tokens with "normalized": false
         * first, then, in the text between them, the others (true, the
         * default): the second pass (bpe_build_image). */
        const json_t *nj = json_object_get(t, "normalized");
        int normalized = !nj || json_is_null(nj) || json_is_true(nj);
        uint32_t idv = (uint32_t)json_integer_value(id);
        for (size_t k = 0; k < i; k++) {
            if (al->t[k].len == cl && !memcmp(al->t[k].content, cs, cl))
                return bpe_fail(err, BPE_ERR_FORMAT, i, "%s: added_tokens[%zu] %s is added_tokens[%zu] again", name, i, q, k);
            if (al->t[k].id == idv)
                return bpe_fail(err, BPE_ERR_FORMAT, i, "%s: added_tokens[%zu] %s has id %u, as added_tokens[%zu] %s has",
                                name, i, q, idv, k, bpe_lv_quote(q2, sizeof q2, al->t[k].content, al->t[k].len));
        }
        al->t[i] = (added_tok){idv, cs, cl, normalized};
        al->n = i + 1;
    }
    return BPE_OK;
}

/* vocab {token: id} into lv (n ids: the vocabulary's and the added tokens
 * that are not in it). An added token whose content is a key of the
 * vocabulary has that key's id; the others get the next ids after the
 * vocabulary's, in their order: Hugging Face numbers them so, whatever id
 * the file writes, so a file that writes others is refused. */
static int read_vocab(const json_t *vocab, const char *name, const char *where, const added_list *al, lv_vocab *lv,
                      bpe_error *err) {
    char q[160], q2[160];
    if (!json_is_object(vocab))
        return bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: %s is %s, not an object {token: id}", name, where,
                        vocab ? type_name(vocab) : "missing");
    size_t n = json_object_size(vocab);
    if (n == 0 || n >= BPE_MAX_TOKENS)
        return bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: %s has %zu tokens (1..%u)", name, where, n, BPE_MAX_TOKENS - 1);
    uint64_t n_ids = n;
    for (size_t i = 0; i < al->n; i++) {
        const added_tok *t = &al->t[i];
        const json_t *in = json_object_getn(vocab, t->content, t->len);
        bpe_lv_quote(q, sizeof q, t->content, t->len);
        if (in && (!json_is_integer(in) || json_integer_value(in) != t->id))
            return bpe_fail(err, BPE_ERR_FORMAT, i, "%s: added_tokens[%zu] %s has id %u, but %s gives it %s%lld", name,
                            i, q, t->id, where, json_is_integer(in) ? "id " : "", json_is_integer(in) ? (long long)json_integer_value(in) : 0LL);
        if (in && t->len <= LV_MAX_TEXT) {
            /* the key is a byte-level token too (bytes of its own, which merges may make): one id
             * would be two tokens, which the vocabulary image keeps apart */
            uint8_t bytes[LV_MAX_TEXT];
            size_t bad = 0;
            long nb = bpe_lv_byte_level(t->content, t->len, bytes, &bad);
            if (nb > 0 && ((size_t)nb != t->len || memcmp(bytes, t->content, t->len)))
                return bpe_fail(err, BPE_ERR_FORMAT, i,
                                "%s: added_tokens[%zu] %s (id %u) is also %s's byte-level token %s: an added token "
                                "that is an ordinary token as well is not supported",
                                name, i, q, t->id, where, bpe_lv_quote(q2, sizeof q2, bytes, (size_t)nb));
        }
        if (!in && t->id != n_ids)
            return bpe_fail(err, BPE_ERR_FORMAT, i,
                            "%s: added_tokens[%zu] %s has id %u; a token not in %s gets the next new id, %llu (as "
                            "Hugging Face tokenizers numbers it)",
                            name, i, q, t->id, where, (unsigned long long)n_ids);
        if (!in) n_ids++;
    }
    if (n_ids >= BPE_MAX_TOKENS)
        return bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: %llu tokens, more than %u", name, (unsigned long long)n_ids,
                        BPE_MAX_TOKENS - 1);
    if (bpe_lv_init(lv, name, (uint32_t)n_ids, err)) return BPE_ERR_NOMEM;
    for (size_t i = 0; i < al->n; i++) {
        uint32_t other;
        if (al->t[i].id >= n_ids)  /* a vocabulary id past the ids there are, found below by key */
            return bpe_fail(err, BPE_ERR_FORMAT, i, "%s: %s has id %u, outside 0..%llu",
                            name, bpe_lv_quote(q, sizeof q, al->t[i].content, al->t[i].len), al->t[i].id,
                            (unsigned long long)n_ids - 1);
        bpe_lv_special(lv, al->t[i].id, al->t[i].late);
        if (bpe_lv_set(lv, al->t[i].id, (const uint8_t *)al->t[i].content, al->t[i].len, &other))
            return bpe_fail(err, BPE_ERR_NOMEM, 0, "%s: out of memory", name);
    }
    uint8_t *buf = gpt2in_malloc(2 * LV_MAX_TEXT);
    if (!buf) return bpe_fail(err, BPE_ERR_NOMEM, 0, "%s: out of memory", name);
    const char *key;
    size_t klen;
    json_t *val;
    int rc = BPE_OK;
    json_object_keylen_foreach((json_t *)vocab, key, klen, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) >= (json_int_t)n_ids) {
            rc = bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: %s[%s]: the id is %s; %llu tokens need ids 0..%llu", name, where,
                          bpe_lv_quote(q, sizeof q, key, klen), json_is_integer(val) ? "out of range"
                          : json_is_real(val) ? "not written as an integer" : type_name(val),
                          (unsigned long long)n_ids, (unsigned long long)n_ids - 1);
            break;
        }
        uint32_t id = (uint32_t)json_integer_value(val), other;
        if (lv->special[id]) {
            if (klen != lv->len[id] || memcmp(key, lv->tok[id], klen)) {
                rc = bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: %s[%s]: id %u is the added token %s's", name, where,
                              bpe_lv_quote(q, sizeof q, key, klen), id, bpe_lv_quote(q2, sizeof q2, lv->tok[id], lv->len[id]));
                break;
            }
            continue;
        }
        size_t bad = 0;
        if (klen > LV_MAX_TEXT) {
            rc = bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: %s[%s]: %zu characters, more than the %d of a token", name,
                          where, bpe_lv_quote(q, sizeof q, key, klen), klen, LV_MAX_TEXT);
            break;
        }
        long nb = bpe_lv_byte_level(key, klen, buf, &bad);
        if (nb < 0) {
            rc = bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: %s[%s]: not a byte-level token (character at byte %zu)",
                          name, where, bpe_lv_quote(q, sizeof q, key, klen), bad);
            break;
        }
        if (nb == 0) {
            rc = bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: %s: empty token (id %u)", name, where, id);
            break;
        }
        int e = bpe_lv_set(lv, id, buf, (size_t)nb, &other);
        if (e == BPE_ERR_NOMEM) {
            rc = bpe_fail(err, e, 0, "%s: out of memory", name);
            break;
        }
        if (e) {
            if (other == LV_NONE)
                rc = bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: %s[%s]: duplicate id %u", name, where,
                              bpe_lv_quote(q, sizeof q, key, klen), id);
            else
                rc = bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: %s[%s]: ids %u and %u are the same bytes %s", name, where,
                              bpe_lv_quote(q, sizeof q, key, klen), other, id, bpe_lv_quote(q2, sizeof q2, buf, (size_t)nb));
            break;
        }
    }
    free(buf);
    if (rc) return rc;
    for (uint32_t i = 0; i < lv->n; i++)
        if (!lv->tok[i])
            return bpe_fail(err, BPE_ERR_FORMAT, i, "%s: %s: no token has id %u (%u tokens need ids 0..%u)", name, where,
                            i, lv->n, lv->n - 1);
    /* the end of text: <|endoftext|>, or else the one added token */
    for (size_t i = 0; i < al->n; i++)
        if ((al->t[i].len == 13 && !memcmp(al->t[i].content, "<|endoftext|>", 13)) || al->n == 1) lv->eot = (int32_t)al->t[i].id;
    return bpe_lv_rank_bytes(lv, err);
}

/* One merge: "a b" (split at its one space) or ["a", "b"]. */
static int merge_one(lv_vocab *lv, const char *a, size_t na, const char *b, size_t nb, const char *what, uint32_t pos,
                     uint8_t *buf, bpe_error *err) {
    char q[160];
    size_t bad;
    long la = na <= LV_MAX_TEXT ? bpe_lv_byte_level(a, na, buf, &bad) : -1;
    long lb = la >= 0 && nb <= LV_MAX_TEXT ? bpe_lv_byte_level(b, nb, buf + LV_MAX_TEXT, &bad) : -1;
    if (la <= 0 || lb <= 0)
        return bpe_fail(err, BPE_ERR_FORMAT, pos, "%s: merge %s %u: %s is not a byte-level token", lv->name, what, pos,
                        la <= 0 ? bpe_lv_quote(q, sizeof q, a, na) : bpe_lv_quote(q, sizeof q, b, nb));
    return bpe_lv_merge(lv, buf, (size_t)la, buf + LV_MAX_TEXT, (size_t)lb, what, pos, err);
}

static int split_merge(const char *s, size_t n, size_t *sp) {
    const char *p = memchr(s, ' ', n);
    if (!p || p == s || p + 1 == s + n || memchr(p + 1, ' ', n - (size_t)(p - s) - 1)) return -1;
    *sp = (size_t)(p - s);
    return 0;
}

static int read_merges_json(const json_t *merges, lv_vocab *lv, bpe_error *err) {
    if (!json_is_array(merges))
        return bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: model.merges is %s, not an array", lv->name,
                        merges ? type_name(merges) : "missing");
    uint8_t *buf = gpt2in_malloc(2 * LV_MAX_TEXT);
    if (!buf) return bpe_fail(err, BPE_ERR_NOMEM, 0, "%s: out of memory", lv->name);
    int rc = BPE_OK;
    for (size_t i = 0; i < json_array_size(merges) && !rc; i++) {
        const json_t *m = json_array_get(merges, i);
        uint32_t pos = (uint32_t)i;
        if (json_is_string(m)) {
            const char *s = json_string_value(m);
            size_t n = json_string_length(m), sp;
            if (split_merge(s, n, &sp))
                rc = bpe_fail(err, BPE_ERR_FORMAT, pos, "%s: merge index %u: not two tokens separated by one space",
                              lv->name, pos);
            else
                rc = merge_one(lv, s, sp, s + sp + 1, n - sp - 1, "index", pos, buf, err);
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) {
            const json_t *a = json_array_get(m, 0), *b = json_array_get(m, 1);
            rc = merge_one(lv, json_string_value(a), json_string_length(a), json_string_value(b),
                           json_string_length(b), "index", pos, buf, err);
        } else {
            rc = bpe_fail(err, BPE_ERR_FORMAT, pos, "%s: merge index %u: not \"a b\" nor [\"a\", \"b\"]", lv->name, pos);
        }
    }
    free(buf);
    return rc;
}

bpe *bpe_load_hf_json_mem(const char *data, size_t len, const char *name, bpe_error *err) {
    if (!data) {
        bpe_fail(err, BPE_ERR_ARG, 0, "bpe_load_hf_json_mem: NULL buffer");
        return NULL;
    }
    if (!name) name = "tokenizer.json";
    json_t *root = parse(data, len, name, err);
    if (!root) return NULL;
    lv_vocab lv = {0};
    added_list al = {0};
    bpe *v = NULL;
    char q[200];
    const json_t *model = json_object_get(root, "model"), *j;
    if (!json_is_object(model)) {
        bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: no \"model\" object (a vocab.json goes with a merges.txt)", name);
        goto out;
    }
    /* What would change the ids, refused by name. */
    if (!is_str(j = json_object_get(model, "type"), "BPE") && j) {
        bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: model.type is %s, not \"BPE\"", name, describe(j, q, sizeof q));
        goto out;
    }
    if (!unset(j = json_object_get(root, "normalizer"))) {
        bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: normalizer is %s; GPT-2 has none (null)", name, describe(j, q, sizeof q));
        goto out;
    }
    if (!check_pre_tokenizer(j = json_object_get(root, "pre_tokenizer"))) {
        bpe_fail(err, BPE_ERR_FORMAT, 0,
                 "%s: pre_tokenizer is %s, not GPT-2's (ByteLevel, add_prefix_space false, use_regex true)", name,
                 describe(j, q, sizeof q));
        goto out;
    }
    if (!unset(j = json_object_get(root, "post_processor")) && !is_str(json_object_get(j, "type"), "ByteLevel")) {
        bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: post_processor is %s, which adds tokens; GPT-2's is ByteLevel or null",
                 name, describe(j, q, sizeof q));
        goto out;
    }
    if (!unset(j = json_object_get(root, "decoder")) && !is_str(json_object_get(j, "type"), "ByteLevel")) {
        bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: decoder is %s, not ByteLevel", name, describe(j, q, sizeof q));
        goto out;
    }
    static const char *const off[] = {"truncation", "padding"};
    for (int k = 0; k < 2; k++)
        if (!unset(j = json_object_get(root, off[k]))) {
            bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: %s is set; gpt2in encodes whole texts", name, off[k]);
            goto out;
        }
    static const char *const model_off[] = {"dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix",
                                            "byte_fallback", "ignore_merges"};
    for (int k = 0; k < 6; k++)
        if (!unset(j = json_object_get(model, model_off[k])) &&
            !(k == 0 && json_is_number(j) && json_number_value(j) == 0)) {   /* dropout 0.0: none */
            bpe_fail(err, BPE_ERR_FORMAT, 0, "%s: model.%s is %s; GPT-2's BPE has none", name, model_off[k],
                     describe(j, q, sizeof q));
            goto out;
        }
    if (read_added(json_object_get(root, "added_tokens"), name, &al, err)) goto out;
    if (read_vocab(json_object_get(model, "vocab"), name, "model.vocab", &al, &lv, err)) goto out;
    if (read_merges_json(json_object_get(model, "merges"), &lv, err)) goto out;
    v = bpe_lv_finish(&lv, err);
out:
    free(al.t);
    bpe_lv_free(&lv);
    json_decref(root);
    return v;
}

bpe *bpe_load_hf_pair_mem(const char *vocab_json, size_t vocab_len, const char *vocab_name, const char *merges_txt,
                          size_t merges_len, const char *merges_name, bpe_error *err) {
    if (!vocab_json || !merges_txt) {
        bpe_fail(err, BPE_ERR_ARG, 0, "bpe_load_hf_pair_mem: NULL buffer");
        return NULL;
    }
    if (!vocab_name) vocab_name = "vocab.json";
    if (!merges_name) merges_name = "merges.txt";
    json_t *root = parse(vocab_json, vocab_len, vocab_name, err);
    if (!root) return NULL;
    lv_vocab lv = {0};
    bpe *v = NULL;
    added_tok eot_tok = {0, "<|endoftext|>", 13, 0};
    added_list none = {NULL, 0};
    if (json_is_object(json_object_get(root, "model"))) {
        bpe_fail(err, BPE_ERR_FORMAT, 0, "%s is a tokenizer.json, which holds its merges; a merges file goes only "
                 "with a vocab.json", vocab_name);
        goto out;
    }
    /* <|endoftext|> is the special token when the vocabulary has it. */
    const json_t *eot = json_object_get(root, "<|endoftext|>");
    if (json_is_integer(eot) && json_integer_value(eot) >= 0 && json_integer_value(eot) < BPE_MAX_TOKENS) {
        eot_tok.id = (uint32_t)json_integer_value(eot);
        none = (added_list){&eot_tok, 1};
    }
    if (read_vocab(root, vocab_name, "vocabulary", &none, &lv, err)) goto out;
    lv.name = merges_name;
    uint8_t *buf = gpt2in_malloc(2 * LV_MAX_TEXT);
    if (!buf) {
        bpe_fail(err, BPE_ERR_NOMEM, 0, "%s: out of memory", merges_name);
        goto out;
    }
    const char *p = merges_txt, *end = merges_txt + merges_len;
    uint32_t line = 0;
    int rc = BPE_OK;
    while (p < end && !rc) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        line++;
        const char *le = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
        size_t n = (size_t)(le - p), sp;
        if (line == 1 && n >= 8 && !memcmp(p, "#version", 8)) {
        } else if (n == 0) {
            /* a blank line (the last one, usually) */
        } else if (split_merge(p, n, &sp)) {
            rc = bpe_fail(err, BPE_ERR_FORMAT, line, "%s: merge line %u: not two tokens separated by one space",
                          merges_name, line);
        } else {
            rc = merge_one(&lv, p, sp, p + sp + 1, n - sp - 1, "line", line, buf, err);
        }
        p = eol + (eol < end);
    }
    free(buf);
    if (!rc) {
        lv.name = vocab_name;
        v = bpe_lv_finish(&lv, err);
    }
out:
    bpe_lv_free(&lv);
    json_decref(root);
    return v;
}
