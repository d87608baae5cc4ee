/* test_vocab_formats.c - the readers of other vocabulary files (bpe_load_*):
 * a small vocabulary written in every format, with its ids in GPT-2's order
 * and permuted, must encode to the same tokens (mapped through the
 * permutation); GPT-2's own ids carry no id tables; and a malformed
 * catalogue per reader (truncated, wrong magic or version, counts that
 * overflow or do not match, bad base64, merges naming unknown tokens,
 * duplicate tokens, a token made by two merges) must be refused with one
 * line naming the file and the position. GPT-2-sized files and the
 * independent references are in tests/test_vocab_oracle.sh. */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "bpe_internal.h"
#include "check.h"

/* ---- a small vocabulary -------------------------------------------------- */

/* GPT-2's byte -> character table, as text. */
static void byte_char(int b, char *out) {
    static int cp[256], done;
    if (!done) {
        int n = 0;
        for (int x = 0; x < 256; x++) {
            int printable = (x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE;
            cp[x] = printable ? x : 0x100 + n++;
        }
        done = 1;
    }
    int c = cp[b];
    if (c < 0x80) {
        out[0] = (char)c;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | c >> 6);
        out[1] = (char)(0x80 | (c & 0x3F));
        out[2] = 0;
    }
}

/* Tokens in rank order: 256 bytes (byte b at rank b), then merges, then the
 * special token. */
static const char *const merges[][2] = {{"a", "b"}, {"c", "d"}, {"ab", "cd"}, {"\xC4\xA0", "ab"}, {"1", "2"}};
#define N_MERGES 5
#define N_TOK (256 + N_MERGES + 1)
static const char *const merged_raw[N_MERGES] = {"ab", "cd", "abcd", " ab", "12"};

/* The id of rank r: GPT-2 order (perm 0) or a permutation. */
static uint32_t id_of(int perm, uint32_t r) {
    if (!perm) return r;
    return (r * 101 + 7) % N_TOK; /* 101 is prime to N_TOK = 262 */
}

typedef struct {
    char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void putf(buf *b, const char *fmt, ...) {
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    put(b, tmp, (size_t)n);
}

static void put_u32(buf *b, uint32_t x) {
    uint8_t le[4] = {(uint8_t)x, (uint8_t)(x >> 8), (uint8_t)(x >> 16), (uint8_t)(x >> 24)};
    put(b, le, 4);
}

static void put_u64(buf *b, uint64_t x) {
    put_u32(b, (uint32_t)x);
    put_u32(b, (uint32_t)(x >> 32));
}

/* The byte-level string of rank r (merged tokens from merges[]). */
static void token_text(uint32_t r, char *out) {
    if (r < 256) {
        byte_char((int)r, out);
    } else if (r < 256 + N_MERGES) {
        strcpy(out, merges[r - 256][0]);
        strcat(out, merges[r - 256][1]);
    } else {
        strcpy(out, "<|endoftext|>");
    }
}

static void token_raw(uint32_t r, uint8_t *out, size_t *n) {
    if (r < 256) {
        out[0] = (uint8_t)r;
        *n = 1;
    } else {
        const char *s = r < 256 + N_MERGES ? merged_raw[r - 256] : "<|endoftext|>";
        *n = strlen(s);
        memcpy(out, s, *n);
    }
}

/* JSON string body of a byte-level token (only '"' and '\\' need escapes; none here). */
static void vocab_json_n(buf *b, int perm, uint32_t n) {
    put(b, "{", 1);
    for (uint32_t r = 0; r < n; r++) {
        char t[64];
        token_text(r, t);
        if (t[0] == '"' || t[0] == '\\') putf(b, "%s\"\\%s\": %u", r ? ", " : "", t, id_of(perm, r));
        else putf(b, "%s\"%s\": %u", r ? ", " : "", t, id_of(perm, r));
    }
    put(b, "}", 1);
}

static void vocab_json(buf *b, int perm) { vocab_json_n(b, perm, N_TOK); }

static const char *const pre_ok = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}";

/* tokenizer.json, with `extra` spliced in at the top level (overriding). */
static void tokenizer_json(buf *b, int perm, const char *normalizer, const char *pre, const char *added,
                           const char *model_type, const char *extra_merge) {
    putf(b, "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"normalizer\": %s, "
            "\"pre_tokenizer\": %s, \"post_processor\": null, \"decoder\": {\"type\": \"ByteLevel\"}, ",
         normalizer, pre);
    if (added) putf(b, "\"added_tokens\": %s, ", added);
    else putf(b, "\"added_tokens\": [{\"id\": %u, \"content\": \"<|endoftext|>\", \"special\": true}], ",
              id_of(perm, N_TOK - 1));
    putf(b, "\"model\": {\"type\": \"%s\", \"dropout\": null, \"vocab\": ", model_type);
    vocab_json(b, perm);
    putf(b, ", \"merges\": [");
    for (int m = 0; m < N_MERGES; m++) putf(b, "%s\"%s %s\"", m ? ", " : "", merges[m][0], merges[m][1]);
    if (extra_merge) putf(b, ", %s", extra_merge);
    put(b, "]}}", 3);
}

static void merges_txt(buf *b, const char *extra) {
    put(b, "#version: 0.2\n", 14);
    for (int m = 0; m < N_MERGES; m++) putf(b, "%s %s\n", merges[m][0], merges[m][1]);
    if (extra) putf(b, "%s\n", extra);
}

static void b64(buf *b, const uint8_t *d, size_t n) {
    static const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) | (i + 2 < n ? d[i + 2] : 0);
        char o[4] = {a[w >> 18], a[w >> 12 & 63], i + 1 < n ? a[w >> 6 & 63] : '=', i + 2 < n ? a[w & 63] : '='};
        put(b, o, 4);
    }
}

/* tiktoken: ranks are ids, so a "permutation" moves only the single bytes
 * (perm 1: byte b gets id 5 + b, the merged tokens ids 0..4, in order). */
static uint32_t tik_id(int perm, uint32_t r) {
    if (!perm || r == N_TOK - 1) return r;
    return r < 256 ? 5 + r : r - 256;
}

static void tiktoken_file(buf *b, int perm) {
    for (uint32_t r = 0; r < N_TOK - 1; r++) {
        uint8_t raw[64];
        size_t n;
        token_raw(r, raw, &n);
        b64(b, raw, n);
        putf(b, " %u\n", tik_id(perm, r));
    }
}

static void gguf_str(buf *b, const char *s, size_t n) {
    put_u64(b, n);
    put(b, s, n);
}

/* GGUF with the tokenizer keys; version, model name and counts adjustable. */
typedef struct {
    uint32_t version;
    const char *model, *pre;
    int n_types;         /* entries of token_type (N_TOK normally; -1: no such key) */
    int second_control;  /* mark a second token as control */
    int64_t eos;         /* -1: none */
    const char *extra_merge;
} gguf_opts;

static void gguf_file(buf *b, int perm, const gguf_opts *o) {
    int n_kv = 4 + (o->n_types >= 0) + (o->pre != NULL) + (o->eos >= 0);
    put(b, "GGUF", 4);
    put_u32(b, o->version);
    put_u64(b, 0);
    put_u64(b, (uint64_t)n_kv);
    gguf_str(b, "general.architecture", 20);
    put_u32(b, 8);
    gguf_str(b, "gpt2", 4);
    gguf_str(b, "tokenizer.ggml.model", 20);
    put_u32(b, 8);
    gguf_str(b, o->model, strlen(o->model));
    if (o->pre) {
        gguf_str(b, "tokenizer.ggml.pre", 18);
        put_u32(b, 8);
        gguf_str(b, o->pre, strlen(o->pre));
    }
    const char *by_id[N_TOK];
    static char texts[N_TOK][64];
    for (uint32_t r = 0; r < N_TOK; r++) {
        token_text(r, texts[r]);
        by_id[id_of(perm, r)] = texts[r];
    }
    gguf_str(b, "tokenizer.ggml.tokens", 21);
    put_u32(b, 9);
    put_u32(b, 8);
    put_u64(b, N_TOK);
    for (uint32_t i = 0; i < N_TOK; i++) gguf_str(b, by_id[i], strlen(by_id[i]));
    if (o->n_types >= 0) {
        gguf_str(b, "tokenizer.ggml.token_type", 25);
        put_u32(b, 9);
        put_u32(b, 5);
        put_u64(b, (uint64_t)o->n_types);
    }
    for (int i = 0; i < o->n_types; i++)
        put_u32(b, (uint32_t)i == id_of(perm, N_TOK - 1) || (o->second_control && i == 300 % N_TOK) ? 3 : 1);
    gguf_str(b, "tokenizer.ggml.merges", 21);
    put_u32(b, 9);
    put_u32(b, 8);
    put_u64(b, N_MERGES + (o->extra_merge != NULL));
    for (int m = 0; m < N_MERGES; m++) {
        char s[64];
        snprintf(s, sizeof s, "%s %s", merges[m][0], merges[m][1]);
        gguf_str(b, s, strlen(s));
    }
    if (o->extra_merge) gguf_str(b, o->extra_merge, strlen(o->extra_merge));
    if (o->eos >= 0) {
        gguf_str(b, "tokenizer.ggml.eos_token_id", 27);
        put_u32(b, 4);
        put_u32(b, (uint32_t)o->eos);
    }
}

static gguf_opts gguf_default(int perm) {
    return (gguf_opts){3, "gpt2", "gpt-2", N_TOK, 0, id_of(perm, N_TOK - 1), NULL};
}

static void llmc_file(buf *b, int perm, uint32_t version, uint32_t n, uint32_t eot) {
    put_u32(b, 20240328);
    put_u32(b, version);
    put_u32(b, n);
    put_u32(b, eot);
    for (int i = 4; i < 256; i++) put_u32(b, 0);
    uint8_t raw[N_TOK][64];
    size_t lens[N_TOK];
    for (uint32_t r = 0; r < N_TOK; r++) {
        uint32_t id = id_of(perm, r);
        token_raw(r, raw[id], &lens[id]);
    }
    for (uint32_t i = 0; i < N_TOK; i++) {
        uint8_t l = (uint8_t)lens[i];
        put(b, &l, 1);
        put(b, raw[i], lens[i]);
    }
}

/* ---- checks --------------------------------------------------------------- */

/* The text and the ranks its tokens have in the small vocabulary. */
static const char text[] = "abcd ab12 x<|endoftext|>cd";
static const uint32_t want_ranks[] = {256 + 2, 256 + 3, 256 + 4, ' ', 'x', N_TOK - 1, 256 + 1};

static void check_encodes(bpe *v, const char *what, uint32_t (*map)(int, uint32_t), int perm) {
    CHECK(v != NULL, "%s: not loaded", what);
    if (!v) return;
    uint32_t ids[64];
    size_t n = 0;
    bpe_error err;
    int rc = bpe_encode(v, text, strlen(text), BPE_SPECIAL_ALLOW, ids, NULL, 64, &n, &err);
    CHECK(rc == BPE_OK, "%s: encode: %s", what, err.msg);
    size_t nw = sizeof want_ranks / sizeof *want_ranks;
    CHECK(n == nw, "%s: %zu tokens, want %zu", what, n, nw);
    for (size_t i = 0; i < n && i < nw; i++)
        CHECK(ids[i] == map(perm, want_ranks[i]), "%s: token %zu is %u, want %u", what, i, ids[i],
              map(perm, want_ranks[i]));
    char out[256];
    size_t nb = 0;
    CHECK(bpe_decode(v, ids, n, out, sizeof out, &nb, &err) == BPE_OK && nb == strlen(text) &&
              !memcmp(out, text, nb), "%s: decode does not give the text back", what);
    CHECK(bpe_eot_id(v) == (int32_t)map(perm, N_TOK - 1), "%s: eot %d", what, bpe_eot_id(v));
    CHECK(bpe_vocab_size(v) == N_TOK, "%s: %zu tokens", what, bpe_vocab_size(v));
    /* ranks and ids: tables only when they differ */
    int identity = 1;
    for (uint32_t r = 0; r < N_TOK; r++) identity &= map(perm, r) == r;
    CHECK(identity == (v->id_of_rank == NULL), "%s: id tables %s", what, v->id_of_rank ? "present" : "absent");
}

/* A refusal: NULL, one line, naming `name` and containing `want`. */
static void check_refused(bpe *v, const bpe_error *err, const char *name, const char *want, const char *what) {
    CHECK(v == NULL, "%s: loaded, want an error with '%s'", what, want);
    if (v) {
        bpe_free(v);
        return;
    }
    CHECK(strstr(err->msg, name) == err->msg, "%s: message does not start with the file name: %s", what, err->msg);
    CHECK(strstr(err->msg, want) != NULL, "%s: message '%s' lacks '%s'", what, err->msg, want);
    CHECK(!strchr(err->msg, '\n'), "%s: message of several lines", what);
}

#define TJ "t.json"

static void test_hf(void) {
    for (int perm = 0; perm < 2; perm++) {
        buf b = {0};
        bpe_error err;
        tokenizer_json(&b, perm, "null", pre_ok, NULL, "BPE", NULL);
        bpe *v = bpe_load_hf_json_mem(b.p, b.n, TJ, &err);
        if (!v) fprintf(stderr, "%s\n", err.msg);
        check_encodes(v, perm ? "tokenizer.json permuted" : "tokenizer.json", id_of, perm);
        bpe_free(v);
        v = bpe_load_file_mem(b.p, b.n, TJ, NULL, 0, NULL, &err);
        check_encodes(v, "tokenizer.json through bpe_load_file_mem", id_of, perm);
        bpe_free(v);
        free(b.p);

        buf vj = {0}, mt = {0};
        vocab_json(&vj, perm);
        merges_txt(&mt, NULL);
        v = bpe_load_hf_pair_mem(vj.p, vj.n, "v.json", mt.p, mt.n, "m.txt", &err);
        if (!v) fprintf(stderr, "%s\n", err.msg);
        check_encodes(v, perm ? "vocab.json + merges.txt permuted" : "vocab.json + merges.txt", id_of, perm);
        bpe_free(v);
        v = bpe_load_file_mem(vj.p, vj.n, "v.json", mt.p, mt.n, "m.txt", &err);
        check_encodes(v, "vocab.json + merges.txt through bpe_load_file_mem", id_of, perm);
        bpe_free(v);
        free(vj.p);
        free(mt.p);
    }

    /* the malformed catalogue */
    struct {
        const char *normalizer, *pre, *added, *type, *extra_merge, *want;
    } bad[] = {
        {"{\"type\": \"NFC\"}", pre_ok, NULL, "BPE", NULL, "normalizer is type \"NFC\""},
        {"null", "{\"type\": \"Metaspace\"}", NULL, "BPE", NULL, "pre_tokenizer is type \"Metaspace\""},
        {"null", "{\"type\": \"ByteLevel\", \"add_prefix_space\": true}", NULL, "BPE", NULL, "pre_tokenizer"},
        {"null", "{\"type\": \"ByteLevel\", \"use_regex\": false}", NULL, "BPE", NULL, "pre_tokenizer"},
        {"null", pre_ok, NULL, "WordPiece", NULL, "model.type is \"WordPiece\""},
        /* added tokens: every one is a special token, numbered as Hugging Face numbers them */
        {"null", pre_ok, "[{\"id\": 168, \"content\": \"<|endoftext|>\"}, {\"id\": 263, \"content\": \"</s>\"}]",
         "BPE", NULL, "added_tokens[1] \"</s>\" has id 263; a token not in model.vocab gets the next new id, 262"},
        {"null", pre_ok, "[{\"id\": 168, \"content\": \"<|endoftext|>\"}, {\"id\": 262, \"content\": \"<|endoftext|>\"}]",
         "BPE", NULL, "added_tokens[1] \"<|endoftext|>\" is added_tokens[0] again"},
        {"null", pre_ok, "[{\"id\": 168, \"content\": \"<|endoftext|>\"}, {\"id\": 168, \"content\": \"<s>\"}]",
         "BPE", NULL, "added_tokens[1] \"<s>\" has id 168, as added_tokens[0] \"<|endoftext|>\" has"},
        {"null", pre_ok, "[{\"id\": 168, \"content\": \"<|endoftext|>\"}, {\"id\": 262, \"content\": \"\"}]",
         "BPE", NULL, "added_tokens[1]: needs an id (0..2097150) and a non-empty content"},
        {"null", pre_ok, "[{\"id\": 168, \"content\": \"<|endoftext|>\"}, {\"id\": 262, \"content\": \"<m>\", \"lstrip\": true}]",
         "BPE", NULL, "added_tokens[1] \"<m>\" has lstrip: gpt2in does not strip around special tokens"},
        {"null", pre_ok, "[{\"id\": 168, \"content\": \"<|endoftext|>\", \"rstrip\": true}]", "BPE", NULL,
         "added_tokens[0] \"<|endoftext|>\" has rstrip: gpt2in does not strip around special tokens"},
        {"null", pre_ok, "[{\"id\": 168, \"content\": \"<|endoftext|>\", \"single_word\": true}]", "BPE", NULL,
         "has single_word: gpt2in matches special tokens inside words too"},
        /* an id that the vocabulary gives another token */
        {"null", pre_ok, "[{\"id\": 9999, \"content\": \"<|endoftext|>\"}]", "BPE", NULL,
         "added_tokens[0] \"<|endoftext|>\" has id 9999, but model.vocab gives it id 168"},
        {"null", pre_ok, "[{\"id\": 168, \"content\": \"<|endoftext|>\"}, {\"id\": 262, \"content\": \"<s>\"}, "
         "{\"id\": 263, \"content\": \"<s>x\"}, {\"id\": 264, \"content\": \"abcd\"}]", "BPE", NULL,
         "added_tokens[3] \"abcd\" has id 264, but model.vocab gives it id"},
        {"null", pre_ok, NULL, "BPE", "\"a zz\"", "merge index 5: unknown token \"zz\""},
        {"null", pre_ok, NULL, "BPE", "\"ab c\"", "merge index 5: makes \"abc\", which is not in the vocabulary"},
        {"null", pre_ok, NULL, "BPE", "\"a bcd\"", "unknown token \"bcd\""},
        {"null", pre_ok, NULL, "BPE", "\"abc d\"", "unknown token \"abc\""},
        {"null", pre_ok, NULL, "BPE", "\"a b c\"", "merge index 5: not two tokens"},
        {"null", pre_ok, NULL, "BPE", "[\"a\"]", "merge index 5: not"},
        /* two merges making one token: Hugging Face ranks merges, this library tokens */
        {"null", pre_ok, NULL, "BPE", "[\"ab\", \"cd\"]", "merge index 5: makes \"abcd\", which merge index 2 makes already"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        buf b = {0};
        bpe_error err;
        tokenizer_json(&b, 1, bad[i].normalizer, bad[i].pre, bad[i].added, bad[i].type, bad[i].extra_merge);
        bpe *v = bpe_load_hf_json_mem(b.p, b.n, TJ, &err);
        check_refused(v, &err, TJ, bad[i].want, bad[i].want);
        free(b.p);
    }
    /* every truncation of a valid file: JSON errors name line and column */
    buf b = {0};
    tokenizer_json(&b, 1, "null", pre_ok, NULL, "BPE", NULL);
    for (size_t cut = 0; cut < b.n; cut += 1 + cut / 3) {
        bpe_error err;
        bpe *v = bpe_load_hf_json_mem(b.p, cut, TJ, &err);
        check_refused(v, &err, TJ ":1:", "", "truncated tokenizer.json");
    }
    /* a duplicate key (token) and a duplicate id */
    char *dup = malloc(b.n + 64);
    char *at = strstr(b.p, "\"vocab\": {");
    size_t head = (size_t)(at - b.p) + 10;
    memcpy(dup, b.p, head);
    size_t k = head + (size_t)sprintf(dup + head, "\"ab\": 1, ");
    memcpy(dup + k, b.p + head, b.n - head);
    bpe_error err;
    bpe *v = bpe_load_hf_json_mem(dup, k + b.n - head, TJ, &err);
    check_refused(v, &err, TJ ":1:", "duplicate object key", "a token twice");
    k = head + (size_t)sprintf(dup + head, "\"zz\": %u, ", id_of(1, 256));
    memcpy(dup + k, b.p + head, b.n - head);
    v = bpe_load_hf_json_mem(dup, k + b.n - head, TJ, &err);
    check_refused(v, &err, TJ, "duplicate id", "an id twice");
    free(dup);
    free(b.p);
    /* jansson's message quotes the text near the error: still one line */
    v = bpe_load_hf_json_mem("{\"a\": \"\\u0\n\"}", 13, TJ, &err);
    check_refused(v, &err, TJ ":", "invalid escape", "a newline near a JSON error");

    /* vocab.json + merges.txt: the merge errors name merges.txt and the line */
    buf vj = {0}, mt = {0};
    vocab_json(&vj, 1);
    merges_txt(&mt, "qq a");
    v = bpe_load_hf_pair_mem(vj.p, vj.n, "v.json", mt.p, mt.n, "m.txt", &err);
    check_refused(v, &err, "m.txt", "merge line 7: unknown token \"qq\"", "merges.txt unknown token");
    free(mt.p);
    mt = (buf){0};
    merges_txt(&mt, "ab cd");
    v = bpe_load_hf_pair_mem(vj.p, vj.n, "v.json", mt.p, mt.n, "m.txt", &err);
    check_refused(v, &err, "m.txt", "merge line 7: makes \"abcd\", which merge line 4 makes already",
                  "merges.txt token made twice");
    free(mt.p);
    /* a merge before the merge of its part */
    mt = (buf){0};
    put(&mt, "ab cd\na b\nc d\n", 14);
    v = bpe_load_hf_pair_mem(vj.p, vj.n, "v.json", mt.p, mt.n, "m.txt", &err);
    check_refused(v, &err, "m.txt", "merge line 1: uses \"ab\", which no earlier merge makes", "merge order");
    free(mt.p);
    /* a token no merge makes */
    mt = (buf){0};
    put(&mt, "a b\nc d\n", 8);
    v = bpe_load_hf_pair_mem(vj.p, vj.n, "v.json", mt.p, mt.n, "m.txt", &err);
    check_refused(v, &err, "v.json", "is not a byte, no merge makes it", "unreachable token");
    free(mt.p);
    free(vj.p);
    /* a hole in the ids, a byte missing */
    vj = (buf){0};
    put(&vj, "{\"a\": 0, \"b\": 2}", 16);
    v = bpe_load_hf_pair_mem(vj.p, vj.n, "v.json", "", 0, "m.txt", &err);
    check_refused(v, &err, "v.json", "id is out of range", "ids with a hole");
    free(vj.p);
    vj = (buf){0};
    put(&vj, "{\"a\": 0, \"b\": 1}", 16);
    v = bpe_load_hf_pair_mem(vj.p, vj.n, "v.json", "", 0, "m.txt", &err);
    check_refused(v, &err, "v.json", "no token for byte 0x00", "bytes missing");
    free(vj.p);
}

/* Several added tokens, all special: "<s>" and "<sep>" share a prefix,
 * "<s>x" extends "<s>", "bcd" overlaps the ordinary "abcd"; their ids
 * follow the vocabulary's (as Hugging Face numbers them), whose own ids
 * are permuted. The --special policies apply to each; ALLOW takes the
 * leftmost, longest first; no safe cut falls inside one or inside a prefix
 * of one at the end; streams and threads give one-shot's tokens. */
#define N_ORD (N_TOK - 1)
static uint32_t ord_id(int perm, uint32_t r) { return perm ? (r * 101 + 7) % N_ORD : r; }
static const char *const multi[] = {"<|endoftext|>", "<s>", "<sep>", "<s>x", "bcd"};
#define N_MULTI 5

/* The small vocabulary with added tokens tok[0..n), late[k]: "normalized": true. */
static bpe *load_added(int perm, const char *const *tok, const int *late, int n, bpe_error *err) {
    buf b = {0};
    putf(&b, "{\"normalizer\": null, \"pre_tokenizer\": %s, \"added_tokens\": [", pre_ok);
    for (int k = 0; k < n; k++)
        putf(&b, "%s{\"id\": %u, \"content\": \"%s\", \"special\": %s, \"normalized\": %s}", k ? ", " : "",
             N_ORD + k, tok[k], k == 4 ? "false" : "true", late && late[k] ? "true" : "false");
    putf(&b, "], \"model\": {\"type\": \"BPE\", \"vocab\": {");
    for (uint32_t r = 0; r < N_ORD; r++) {
        char t[64];
        token_text(r, t);
        if (t[0] == '"' || t[0] == '\\') putf(&b, "%s\"\\%s\": %u", r ? ", " : "", t, ord_id(perm, r));
        else putf(&b, "%s\"%s\": %u", r ? ", " : "", t, ord_id(perm, r));
    }
    putf(&b, "}, \"merges\": [\"a b\", \"c d\", \"ab cd\", \"\xC4\xA0 ab\", \"1 2\"]}}");
    bpe *v = bpe_load_hf_json_mem(b.p, b.n, TJ, err);
    free(b.p);
    return v;
}

static bpe *load_multi(int perm, bpe_error *err) { return load_added(perm, multi, NULL, N_MULTI, err); }

static int encode_all(const bpe *v, const char *s, size_t n, int flags, uint32_t *ids, size_t cap, size_t *nt) {
    bpe_error err;
    return bpe_encode(v, s, n, flags, ids, NULL, cap, nt, &err);
}

typedef struct {
    uint32_t *ids;
    size_t n, cap;
} sink_buf;

static int sink_put(void *ctx, const uint32_t *ids, const uint64_t *offs, size_t n) {
    (void)offs;
    sink_buf *sb = ctx;
    for (size_t i = 0; i < n; i++)
        if (sb->n < sb->cap) sb->ids[sb->n++] = ids[i];
    return 0;
}

static void test_hf_specials(void) {
    for (int perm = 0; perm < 2; perm++) {
        bpe_error err;
        bpe *v = load_multi(perm, &err);
        CHECK(v != NULL, "several added tokens: %s", v ? "" : err.msg);
        if (!v) continue;
        CHECK(bpe_special_count(v) == N_MULTI, "%zu special tokens", bpe_special_count(v));
        for (size_t k = 0; k < N_MULTI; k++) {
            size_t l = 0;
            const char *t = bpe_token_bytes(v, (uint32_t)bpe_special_id(v, k), &l);
            CHECK(bpe_special_id(v, k) == (int32_t)(N_ORD + k) && t && l == strlen(multi[k]) && !memcmp(t, multi[k], l),
                  "special %zu: id %d", k, bpe_special_id(v, k));
        }
        CHECK(bpe_special_id(v, N_MULTI) == -1 && bpe_eot_id(v) == N_ORD, "eot %d", bpe_eot_id(v));
        static const char s[] = "ab<s>x<sep>abcd<se<|endoftext|>";
        uint32_t ids[64], want[] = {ord_id(perm, 256), N_ORD + 3, N_ORD + 2, ord_id(perm, 'a'), N_ORD + 4,
                                    ord_id(perm, '<'), ord_id(perm, 's'), ord_id(perm, 'e'), N_ORD};
        size_t n = 0;
        CHECK(encode_all(v, s, sizeof s - 1, BPE_SPECIAL_ALLOW, ids, 64, &n) == BPE_OK && n == 9 &&
                  !memcmp(ids, want, sizeof want),
              "allowed: %zu tokens (%u %u %u %u ...)", n, ids[0], ids[1], ids[2], ids[3]);
        CHECK(bpe_encode(v, s, sizeof s - 1, BPE_SPECIAL_ERROR, ids, NULL, 64, &n, &err) == BPE_ERR_SPECIAL &&
                  err.offset == 2 && strstr(err.msg, "the special token <s>x is in the text at byte 2"),
              "as an error: %s", err.msg);
        CHECK(bpe_encode(v, s + 6, 9, BPE_SPECIAL_ERROR, ids, NULL, 64, &n, &err) == BPE_ERR_SPECIAL &&
                  err.offset == 0 && strstr(err.msg, "token <sep> is"), "<sep> as an error: %s", err.msg);
        CHECK(bpe_encode(v, "abcd", 4, BPE_SPECIAL_ERROR, ids, NULL, 64, &n, &err) == BPE_ERR_SPECIAL &&
                  err.offset == 1 && strstr(err.msg, "token bcd is"), "bcd as an error: %s", err.msg);
        CHECK(encode_all(v, s, sizeof s - 1, BPE_SPECIAL_TEXT, ids, 64, &n) == BPE_OK && n > 9 &&
                  ids[0] == ord_id(perm, 256) && ids[1] == ord_id(perm, '<') && ids[2] == ord_id(perm, 's'),
              "as text: %zu tokens", n);
        for (size_t i = 0; i < n; i++) CHECK(ids[i] < N_ORD, "as text: special id %u", ids[i]);

        /* every safe cut of every prefix of a text dense in them and their prefixes */
        static const char d[] = "a <s>x<sep> <s> <se <s bcd abcd. <sep>x<s>x <|endoftext|> <|end x<s>";
        size_t dn = sizeof d - 1, nall = 0, nh = 0, nt = 0;
        uint32_t all[256], head[256], tail[256];
        encode_all(v, d, dn, BPE_SPECIAL_ALLOW, all, 256, &nall);
        for (size_t len = 1; len <= dn; len++) {
            size_t p = bpe_safe_cut(v, d, len, BPE_SPECIAL_ALLOW);
            if (!p) continue;
            encode_all(v, d, p, BPE_SPECIAL_ALLOW, head, 256, &nh);
            encode_all(v, d + p, dn - p, BPE_SPECIAL_ALLOW, tail, 256, &nt);
            CHECK(nh + nt == nall && !memcmp(head, all, nh * 4) && !memcmp(tail, all + nh, nt * 4),
                  "safe cut %zu of the first %zu bytes changes tokens", p, len);
            for (int k = 0; k < N_MULTI; k++)
                for (size_t q = 0; q < p; q++) {
                    size_t l = strlen(multi[k]), m = len - q < l ? len - q : l;
                    CHECK(!(q + l > p && !memcmp(d + q, multi[k], m)), "cut %zu of %zu bytes inside %s at %zu", p,
                          len, multi[k], q);
                }
        }

        /* a special token at every place across the stream's block edge
         * (1 MiB a thread), and the text in parts for 1, 2, 3 and 7 threads
         * (with the permuted ids only: the cuts do not depend on ids) */
        if (!perm) {
            bpe_free(v);
            continue;
        }
        size_t big = (1u << 20) + 64, cap = big + 16;
        char *t = malloc(big);
        uint32_t *one = malloc(cap * 4), *got = malloc(cap * 4);
        static const char *const at_edge[] = {"<sep>", "<s>x", "<|endoftext|>", "<se", "<|end"};
        for (int k = 0; k < 5; k++) {
            size_t l = strlen(at_edge[k]);
            for (size_t at = (1u << 20) - l - 1; at <= (1u << 20) + 1; at++) {
                for (size_t i = 0; i < big; i++) t[i] = "ab cd x<"[i % 8];
                memcpy(t + at, at_edge[k], l);
                size_t n1 = 0;
                encode_all(v, t, big, BPE_SPECIAL_ALLOW, one, cap, &n1);
                bpe_stream *st = bpe_stream_new(v, BPE_SPECIAL_ALLOW, 1, &err);
                sink_buf sb = {got, 0, cap};
                int rc = bpe_stream_write(st, t, big, sink_put, &sb, &err);
                if (!rc) rc = bpe_stream_finish(st, sink_put, &sb, &err);
                bpe_stream_free(st);
                CHECK(rc == BPE_OK && sb.n == n1 && !memcmp(got, one, n1 * 4), "%s at %zu across the stream's edge",
                      at_edge[k], at);
                st = bpe_stream_new(v, BPE_SPECIAL_ERROR, 1, &err);
                sb.n = 0;
                rc = bpe_stream_write(st, t, big, sink_put, &sb, &err);
                if (!rc) rc = bpe_stream_finish(st, sink_put, &sb, &err);
                bpe_stream_free(st);
                CHECK(k >= 3 ? rc == BPE_OK : rc == BPE_ERR_SPECIAL && err.offset == at, "%s at %zu: the stream's error",
                      at_edge[k], at);
            }
        }
        free(t);
        free(one);
        free(got);
        size_t nb = 2u << 20;
        t = malloc(nb);
        one = malloc(nb * 4);
        got = malloc(nb * 4);
        for (size_t i = 0; i < nb; i++) t[i] = d[i % dn];
        size_t n1 = 0, n2 = 0;
        encode_all(v, t, nb, BPE_SPECIAL_ALLOW, one, nb, &n1);
        static const int threads[] = {2, 3, 7};
        for (int k = 0; k < 3; k++) {
            int rc = bpe_encode_parallel(v, t, nb, BPE_SPECIAL_ALLOW, threads[k], got, NULL, nb, &n2, &err);
            CHECK(rc == BPE_OK && n2 == n1 && !memcmp(got, one, n1 * 4), "%d threads", threads[k]);
        }
        free(t);
        free(one);
        free(got);
        bpe_free(v);
    }
}

/* Added tokens that disagree on "normalized": Hugging Face matches those
 * with false first, then the others in the text between (as its npm
 * binding gives: "<x>y" loses to "x>", which starts inside it). */
static void test_hf_two_passes(void) {
    static const char *const tok[] = {"<|endoftext|>", "<x", "x>", "<x>y"};
    static const int late[] = {1, 1, 0, 1};
    bpe_error err;
    bpe *v = load_added(1, tok, late, 4, &err);
    CHECK(v != NULL, "two passes: %s", v ? "" : err.msg);
    if (!v) return;
    static const char s[] = "<x> <x>y <x <xx> x>";
    const uint32_t L = ord_id(1, '<'), S = ord_id(1, ' '), X = N_ORD + 1, XC = N_ORD + 2;
    uint32_t ids[64], want[] = {L, XC, S, L, XC, ord_id(1, 'y'), S, X, S, X, XC, S, XC};
    size_t n = 0;
    CHECK(encode_all(v, s, sizeof s - 1, BPE_SPECIAL_ALLOW, ids, 64, &n) == BPE_OK && n == 13 &&
              !memcmp(ids, want, sizeof want),
          "two passes: %zu tokens (%u %u %u ...)", n, ids[0], ids[1], ids[2]);
    CHECK(bpe_encode(v, "a<x>y", 5, BPE_SPECIAL_ERROR, ids, NULL, 64, &n, &err) == BPE_ERR_SPECIAL &&
              err.offset == 2 && strstr(err.msg, "token x> is"), "two passes, as an error: %s", err.msg);
    /* every safe cut of every prefix */
    static const char d[] = "a<x>y <x>yy <x x> <<x>y <x <x>";
    size_t dn = sizeof d - 1, nall = 0, nh = 0, nt = 0;
    uint32_t all[256], head[256], tail[256];
    encode_all(v, d, dn, BPE_SPECIAL_ALLOW, all, 256, &nall);
    for (size_t len = 1; len <= dn; len++) {
        size_t p = bpe_safe_cut(v, d, len, BPE_SPECIAL_ALLOW);
        if (!p) continue;
        for (size_t more = len; more <= dn; more++) {  /* whatever follows the first len bytes */
            uint32_t w[256];
            size_t nw = 0;
            encode_all(v, d, more, BPE_SPECIAL_ALLOW, w, 256, &nw);
            encode_all(v, d, p, BPE_SPECIAL_ALLOW, head, 256, &nh);
            encode_all(v, d + p, more - p, BPE_SPECIAL_ALLOW, tail, 256, &nt);
            CHECK(nh + nt == nw && !memcmp(head, w, nh * 4) && !memcmp(tail, w + nh, nt * 4),
                  "two passes: safe cut %zu of the first %zu bytes changes the tokens of the first %zu", p, len, more);
        }
    }
    bpe_free(v);
}

#define TK "t.tiktoken"

static void test_tiktoken(void) {
    for (int perm = 0; perm < 2; perm++) {
        buf b = {0};
        bpe_error err;
        tiktoken_file(&b, perm);
        bpe *v = bpe_load_tiktoken_mem(b.p, b.n, TK, &err);
        if (!v) fprintf(stderr, "%s\n", err.msg);
        check_encodes(v, perm ? "tiktoken, bytes moved" : "tiktoken", tik_id, perm);
        bpe_free(v);
        v = bpe_load_file_mem(b.p, b.n, TK, NULL, 0, NULL, &err);
        check_encodes(v, "tiktoken through bpe_load_file_mem", tik_id, perm);
        bpe_free(v);
        free(b.p);
    }
    struct {
        const char *line, *want;
    } bad[] = {
        {"YWJj", "262: not \"base64 rank\""},
        {"YWJj 261x", "262:9: the rank is not a number"},
        {"YWJj 0261", "262:7: the rank is not a number"},
        {"YWJj 99999999999999999999", "the rank is not a number"},
        {"YWJj 5000", "262: rank 5000 is out of range: 262 tokens need ranks 0..261"},
        {"YW*j 261", "262:3: bad base64"},
        {"YWJ 261", "262:4: bad base64"},
        {"YW=j 261", "262:4: bad base64"},
        {"YWF= 261", "262:3: bad base64"},  /* stray bits: "aa" would be YWE= */
        {"YWI= 261", "262: duplicate token \"ab\" (first on line 257)"},
        {"YWJj 0", "262: rank 0 is given twice (first on line 1)"},
        {"PHxlbmRvZnRleHR8Pg== 261", "<|endoftext|> is an ordinary token here"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        buf b = {0};
        bpe_error err;
        tiktoken_file(&b, 0);
        putf(&b, "%s\n", bad[i].line);
        bpe *v = bpe_load_tiktoken_mem(b.p, b.n, TK, &err);
        check_refused(v, &err, TK, bad[i].want, bad[i].line);
        free(b.p);
    }
    /* a byte missing: drop the line of byte 'q' and the rank gap with it */
    buf b = {0};
    tiktoken_file(&b, 0);
    char *q = strstr(b.p, "cQ== 113\n");
    memcpy(q, "YWJj 113\n", 9);  /* "abc" in place of "q" */
    bpe_error err;
    bpe *v = bpe_load_tiktoken_mem(b.p, b.n, TK, &err);
    check_refused(v, &err, TK, "no token for byte 0x71", "byte missing");
    v = bpe_load_tiktoken_mem("", 0, TK, &err);
    check_refused(v, &err, TK, "no tokens", "empty");
    free(b.p);
}

#define TG "t.gguf"

static void test_gguf(void) {
    for (int perm = 0; perm < 2; perm++) {
        buf b = {0};
        bpe_error err;
        gguf_opts o = gguf_default(perm);
        gguf_file(&b, perm, &o);
        bpe *v = bpe_load_gguf_mem(b.p, b.n, TG, &err);
        if (!v) fprintf(stderr, "%s\n", err.msg);
        check_encodes(v, perm ? "GGUF permuted" : "GGUF", id_of, perm);
        bpe_free(v);
        v = bpe_load_file_mem(b.p, b.n, TG, NULL, 0, NULL, &err);
        check_encodes(v, "GGUF through bpe_load_file_mem", id_of, perm);
        bpe_free(v);
        /* every truncation: refused, naming a byte */
        for (size_t cut = 0; cut < b.n; cut += 1 + cut / 50) {
            v = bpe_load_gguf_mem(b.p, cut, TG, &err);
            check_refused(v, &err, TG, "at byte", "truncated GGUF");
        }
        free(b.p);
    }
    struct {
        gguf_opts o;
        const char *want;
    } bad[] = {
        {{1, "gpt2", NULL, N_TOK, 0, 261, NULL}, "at byte 4: GGUF version 1 is not supported"},
        {{4, "gpt2", NULL, N_TOK, 0, 261, NULL}, "GGUF version 4 is not supported"},
        {{3, "llama", NULL, N_TOK, 0, 261, NULL}, "tokenizer.ggml.model is \"llama\", not \"gpt2\""},
        {{3, "gpt2", "llama-bpe", N_TOK, 0, 261, NULL}, "tokenizer.ggml.pre is \"llama-bpe\""},
        {{3, "gpt2", "default", N_TOK, 0, 261, NULL}, "llama.cpp's default also splits digits in threes"},
        {{3, "gpt2", NULL, N_TOK - 1, 0, 261, NULL}, "tokenizer.ggml.token_type has 261 entries for 262 tokens"},
        {{3, "gpt2", NULL, N_TOK, 0, 262, NULL}, "tokenizer.ggml.eos_token_id 262 is not a token id"},
        {{3, "gpt2", NULL, N_TOK, 1, 261, NULL}, "the special token (id 38) is byte 0x26, which must be an ordinary"},
        {{3, "gpt2", NULL, N_TOK, 0, 261, "a qq"}, "merge index 5: unknown token \"qq\""},
        {{3, "gpt2", NULL, N_TOK, 0, 261, "ab cd"}, "merge index 5: makes \"abcd\", which merge index 2 makes already"},
        {{3, "gpt2", NULL, N_TOK, 0, 261, "abcd"}, "tokenizer.ggml.merges[5] \"abcd\" is not two byte-level tokens"},
        {{3, "gpt2", NULL, -1, 0, 'x', NULL}, "the special token (id 120) is byte 0x78, which must be an ordinary token"},
        {{3, "gpt2", NULL, -1, 0, 258, NULL}, "merge index 2: makes \"abcd\", the special token (id 258)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        buf b = {0};
        bpe_error err;
        gguf_file(&b, 0, &bad[i].o);
        bpe *v = bpe_load_gguf_mem(b.p, b.n, TG, &err);
        check_refused(v, &err, TG, bad[i].want, bad[i].want);
        free(b.p);
    }
    /* counts that overflow: the key count, the token array's count */
    buf b = {0};
    gguf_opts o = gguf_default(0);
    gguf_file(&b, 0, &o);
    bpe_error err;
    char *m = malloc(b.n);
    memcpy(m, b.p, b.n);
    memset(m + 16, 0xFF, 8);
    bpe *v = bpe_load_gguf_mem(m, b.n, TG, &err);
    check_refused(v, &err, TG, "at byte 16: 18446744073709551615 keys cannot fit", "key count");
    memcpy(m, b.p, b.n);
    char *tok = memmem(m, b.n, "tokenizer.ggml.tokens", 21);
    memset(tok + 21 + 4 + 4, 0xFF, 8);  /* key, value type, element type, then the count */
    v = bpe_load_gguf_mem(m, b.n, TG, &err);
    check_refused(v, &err, TG, "an array of 18446744073709551615 string does not fit", "array count");
    memcpy(m, b.p, b.n);
    m[0] = 'X';
    v = bpe_load_gguf_mem(m, b.n, TG, &err);
    check_refused(v, &err, TG, "at byte 0: not a GGUF file", "magic");
    /* a duplicate token: byte "b" spelled where "a" is */
    memcpy(m, b.p, b.n);
    char *a_tok = memmem(tok, b.n - (size_t)(tok - m), "\x01\0\0\0\0\0\0\0a", 9);
    a_tok[8] = 'b';
    v = bpe_load_gguf_mem(m, b.n, TG, &err);
    check_refused(v, &err, TG, "tokenizer.ggml.tokens[98] \"b\" is token 97 already", "duplicate token");
    /* a key twice, even with the same value: general.architecture renamed
     * to tokenizer.ggml.model (both 20 bytes; the value is "gpt2") */
    memcpy(m, b.p, b.n);
    memcpy(memmem(m, b.n, "general.architecture", 20), "tokenizer.ggml.model", 20);
    v = bpe_load_gguf_mem(m, b.n, TG, &err);
    check_refused(v, &err, TG, "at byte 68: key \"tokenizer.ggml.model\" appears twice (key-values 0 and 1)",
                  "duplicate key");
    free(m);
    free(b.p);
}

#define TL "t.bin"

static void test_llmc(void) {
    for (int perm = 0; perm < 2; perm++) {
        buf b = {0};
        bpe_error err;
        llmc_file(&b, perm, 2, N_TOK, id_of(perm, N_TOK - 1));
        bpe *v = bpe_load_llmc_mem(b.p, b.n, TL, &err);
        if (!v) fprintf(stderr, "%s\n", err.msg);
        CHECK(v != NULL, "llm.c: %s", err.msg);
        if (v) {
            /* decoding goes through the ids, whatever their order */
            for (uint32_t r = 0; r < N_TOK; r++) {
                uint8_t raw[64];
                size_t n, got = 0;
                token_raw(r, raw, &n);
                const char *t = bpe_token_bytes(v, id_of(perm, r), &got);
                CHECK(t && got == n && !memcmp(t, raw, n), "llm.c: token %u", id_of(perm, r));
            }
            CHECK(bpe_eot_id(v) == (int32_t)id_of(perm, N_TOK - 1), "llm.c: eot %d", bpe_eot_id(v));
            CHECK((v->id_of_rank == NULL) == !perm, "llm.c: id tables");
            bpe_free(v);
        }
        for (size_t cut = 0; cut < b.n; cut += 1 + cut / 20) {
            v = bpe_load_llmc_mem(b.p, cut, TL, &err);
            check_refused(v, &err, TL, cut < 1024 ? "truncated" : "at byte", "truncated llm.c");
        }
        free(b.p);
    }
    struct {
        uint32_t version, n, eot;
        const char *want;
    } bad[] = {
        {3, N_TOK, 261, "at byte 4: version 3 is not supported"},
        {1, N_TOK, 261, "at byte 8: a version 1 file is GPT-2's 50257 tokens, not 262"},
        {2, N_TOK, 262, "at byte 12: end-of-text id 262 is not a token id"},
        {2, 0xFFFFFFFFu, 261, "at byte 8: vocabulary size 4294967295"},
        {2, 1000000, 261, "at byte 8: 1000000 tokens cannot fit"},
        {2, N_TOK - 1, 260, "bytes after the last of 261 tokens"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        buf b = {0};
        bpe_error err;
        llmc_file(&b, 0, bad[i].version, bad[i].n, bad[i].eot);
        bpe *v = bpe_load_llmc_mem(b.p, b.n, TL, &err);
        check_refused(v, &err, TL, bad[i].want, bad[i].want);
        free(b.p);
    }
    buf b = {0};
    llmc_file(&b, 0, 2, N_TOK, 261);
    bpe_error err;
    b.p[0] ^= 1;
    bpe *v = bpe_load_llmc_mem(b.p, b.n, TL, &err);
    check_refused(v, &err, TL, "at byte 0: magic", "llm.c magic");
    b.p[0] ^= 1;
    /* token 98 ("b") made a second "a"; token 0 made of length 0 */
    b.p[1024 + 2 * 98 + 1] = 'a';
    v = bpe_load_llmc_mem(b.p, b.n, TL, &err);
    check_refused(v, &err, TL, "at byte 1220: token 98 \"a\" is token 97 already", "duplicate token");
    b.p[1024 + 2 * 98 + 1] = 'b';
    b.p[1024] = 0;
    v = bpe_load_llmc_mem(b.p, b.n, TL, &err);
    check_refused(v, &err, TL, "at byte 1024: token 0 has length 0", "empty token");
    free(b.p);
}

/* GPT-2 itself as a tiktoken file (from the built-in vocabulary): no id
 * tables, and the built-in encoder's ids. */
static void test_gpt2_tiktoken(void) {
    const bpe *g = bpe_gpt2();
    buf b = {0};
    for (uint32_t id = 0; id < bpe_vocab_size(g); id++) {
        if ((int32_t)id == bpe_eot_id(g)) continue;
        size_t n;
        const char *t = bpe_token_bytes(g, id, &n);
        b64(&b, (const uint8_t *)t, n);
        putf(&b, " %u\n", id);
    }
    bpe_error err;
    bpe *v = bpe_load_tiktoken_mem(b.p, b.n, "gpt2.tiktoken", &err);
    CHECK(v != NULL, "gpt2.tiktoken: %s", v ? "" : err.msg);
    if (v) {
        CHECK(v->id_of_rank == NULL && v->rank_of_id == NULL, "GPT-2's own ids got id tables");
        static const char s[] = "Hello world, it's 1234567 <|endoftext|> naïve \xe4\xb8\xad\xe6\x96\x87";
        uint32_t a[128], c[128];
        size_t na = 0, nc = 0;
        bpe_encode(g, s, sizeof s - 1, BPE_SPECIAL_ALLOW, a, NULL, 128, &na, &err);
        bpe_encode(v, s, sizeof s - 1, BPE_SPECIAL_ALLOW, c, NULL, 128, &nc, &err);
        CHECK(na == nc && !memcmp(a, c, na * 4), "gpt2.tiktoken encodes unlike the built-in vocabulary");
        CHECK(bpe_eot_id(v) == 50256, "gpt2.tiktoken: eot %d", bpe_eot_id(v));
        bpe_free(v);
    }
    free(b.p);
}

#ifdef GPT2IN_FAULTS
#include "alloc.h"

/* Out of memory, SQLite-style (as tests/test_alloc_fail.c): the Nth
 * allocation of a load fails, alone or with every one after it, for N = 1,
 * 2, ... until the load makes fewer. Each load must then fail with
 * BPE_ERR_NOMEM and "out of memory", or succeed and encode right; the
 * sanitizer build's LeakSanitizer checks that nothing leaks. (jansson's own
 * allocations are not counted.) */
static void test_out_of_memory(void) {
    buf files[6] = {{0}};
    tokenizer_json(&files[0], 1, "null", pre_ok, NULL, "BPE", NULL);
    vocab_json(&files[1], 1);
    merges_txt(&files[2], NULL);
    tiktoken_file(&files[3], 1);
    gguf_opts o = gguf_default(1);
    gguf_file(&files[4], 1, &o);
    llmc_file(&files[5], 1, 2, N_TOK, id_of(1, N_TOK - 1));
    static const char *const names[] = {"tokenizer.json", "vocab.json + merges.txt", "tiktoken", "GGUF", "llm.c"};
    for (int f = 0; f < 5; f++) {
        long nomem = 0, runs = 0;
        for (int sticky = 0; sticky <= 1; sticky++) {
            for (long n = 1; n < 100000; n++) {
                bpe_error err;
                err.msg[0] = 0;
                gpt2in_fault_set(n, sticky);
                bpe *v = f == 0   ? bpe_load_hf_json_mem(files[0].p, files[0].n, TJ, &err)
                         : f == 1 ? bpe_load_hf_pair_mem(files[1].p, files[1].n, "v.json", files[2].p, files[2].n,
                                                         "m.txt", &err)
                         : f == 2 ? bpe_load_tiktoken_mem(files[3].p, files[3].n, TK, &err)
                         : f == 3 ? bpe_load_gguf_mem(files[4].p, files[4].n, TG, &err)
                                  : bpe_load_llmc_mem(files[5].p, files[5].n, TL, &err);
                long made = gpt2in_fault_set(0, 0);
                runs++;
                if (v) {
                    if (f == 2) check_encodes(v, names[f], tik_id, 1);
                    else if (f != 4) check_encodes(v, names[f], id_of, 1);
                    bpe_free(v);
                } else {
                    CHECK(strstr(err.msg, "out of memory") != NULL, "%s: allocation %ld%s failed: %s", names[f], n,
                          sticky ? " (and all after)" : "", err.msg);
                    nomem++;
                }
                if (made < n) {
                    CHECK(v != NULL, "%s: failed with no allocation failing: %s", names[f], err.msg);
                    break;
                }
            }
        }
        CHECK(nomem > 0, "%s: no run ran out of memory", names[f]);
        printf("%-24s %6ld loads, %6ld out of memory\n", names[f], runs, nomem);
    }
    for (int f = 0; f < 6; f++) free(files[f].p);
}
#endif

int main(void) {
#ifdef GPT2IN_FAULTS
    test_out_of_memory();
#endif
    test_hf();
    test_hf_specials();
    test_hf_two_passes();
    test_tiktoken();
    test_gguf();
    test_llmc();
    test_gpt2_tiktoken();
    bpe_error err;
    CHECK(bpe_load_file("/nonexistent/vocab", NULL, &err) == NULL && strstr(err.msg, "/nonexistent/vocab"),
          "a missing file: %s", err.msg);
    /* files of other kinds are named */
    static const struct { const char *data; size_t n; const char *want; } other[] = {
        {"\x93NUMPY\x01\x00", 8, "x is a NumPy array, not a vocabulary"},
        {"\xc6\xd7\x34\x01", 4, "x is an llm.c checkpoint"},
        {"\x10\x00\x00\x00\x00\x00\x00\x00{\"x\": {}}     ", 24, "x is a safetensors file"},
        {" [1, 2]", 7, "x is a JSON array"},
        {"hello world\n", 12, "x: not a vocabulary file gpt2in reads"},
        {"", 0, "x: not a vocabulary file gpt2in reads"},
    };
    for (size_t i = 0; i < sizeof other / sizeof *other; i++) {
        bpe *v = bpe_load_file_mem(other[i].data, other[i].n, "x", NULL, 0, NULL, &err);
        check_refused(v, &err, "x", other[i].want, other[i].want);
    }
    if (failures) {
        fprintf(stderr, "test_vocab_formats: %d failures\n", failures);
        return 1;
    }
    printf("test_vocab_formats: every reader, permuted ids, malformed catalogue: ok\n");
    return 0;
}
