/* cli_words.c - words to vectors and tokens to readable strings, for the
 * similarity commands. The maths is the library's (embed/similarity.c). */
#include <stdlib.h>
#include <string.h>

#include "cli_words.h"

#define WORDS_MAX_TOKENS 64

int words_common_opt(int argc, char **argv, int *i, words_opts *o) {
    int bad = 0;
    const char *v;
    if ((v = cli_opt(argc, argv, i, "--weights", &bad))) {
        o->weights = v;
        return 1;
    }
    if (bad)
        return -1;
    if ((v = cli_opt(argc, argv, i, "--tensor", &bad))) {
        o->tensor = v;
        return 1;
    }
    if (bad)
        return -1;
    if ((v = cli_opt(argc, argv, i, "--vocab", &bad))) {
        o->vocab = v;
        return 1;
    }
    if (bad)
        return -1;
    if (!strcmp(argv[*i], "--as-typed")) {
        o->as_typed = 1;
        return 1;
    }
    if ((v = cli_opt(argc, argv, i, "-k", &bad))) {
        if (cli_parse_u64(v, &o->k) || o->k == 0 || o->k > 100000) {
            cli_error("-k wants a number from 1 to 100000, not %s", cli_q(v));
            return -1;
        }
        return 1;
    }
    return bad ? -1 : 0;
}

int words_arg(int argc, char **argv, int *i, int *operands, const char *help,
              const char *no_operands, words_opts *o) {
    int kind = cli_arg(argv[*i], operands, help, no_operands);
    if (kind != CLI_ARG_OPTION)
        return kind;
    int taken = words_common_opt(argc, argv, i, o);
    return taken < 0 ? -1 : taken ? CLI_ARG_SKIP : CLI_ARG_OPTION;
}

int words_open(words_model *m, const words_opts *o) {
    memset(m, 0, sizeof *m);
    if (!o->weights)
        return cli_error("--weights FILE is required (a weights file with a token table: "
                         ".safetensors, llm.c checkpoint, GGUF or .npy; 'gpt2in init' makes one)");
    embed_error err;
    if (!(m->file = cli_open_mapped(o->weights)))
        return CLI_ERR;
    if (embed_wte(m->file, o->tensor, &m->wte, &err)) {
        cli_error("%s: %s", cli_n(o->weights), err.msg);
        embed_close(m->file);
        m->file = NULL;
        return CLI_ERR;
    }
    m->tensor_name = o->tensor;
    if (!m->tensor_name)
        m->tensor_name = embed_table_name(m->file, 0); /* the usual name for its kind */
    m->vocab = o->vocab ? cli_vocab(NULL, NULL, o->vocab) : bpe_gpt2();
    if (!m->vocab) {
        words_close(m);
        return CLI_ERR;
    }
    return CLI_OK;
}

void words_close(words_model *m) {
    if (m->file)
        embed_close(m->file);
    m->file = NULL;
    bpe_free(m->vocab);
    m->vocab = NULL;
}

int words_ids(const words_model *m, const char *word, int as_typed, uint32_t *ids, size_t cap,
              size_t *n) {
    size_t len = strlen(word);
    char *text = malloc(len + 2);
    if (!text)
        return cli_error("out of memory");
    /* GPT-2 sees a word inside a sentence with its leading space: " cat" is
     * one token, "cat" another. */
    size_t off = as_typed ? 0 : 1;
    text[0] = ' ';
    memcpy(text + off, word, len);
    bpe_error err;
    int rc = bpe_encode(m->vocab, text, len + off, BPE_SPECIAL_TEXT, ids, NULL, cap, n, &err);
    free(text);
    if (rc)
        return cli_error("%s: %s", cli_q(word), err.msg);
    if (*n == 0)
        return cli_error("the empty word has no tokens");
    if (*n > cap)
        return cli_error("%s is %zu tokens; at most %zu are averaged", cli_q(word), *n, cap);
    for (size_t i = 0; i < *n; i++)
        if (ids[i] >= m->wte.rows)
            return cli_error("%s: token %u is outside the table (%zu rows)", cli_q(word), ids[i],
                             m->wte.rows);
    return CLI_OK;
}

void words_mean_rows(const embed_table *wte, const uint32_t *ids, size_t n, float *vec) {
    size_t C = wte->cols;
    float *row = malloc(C * sizeof *row);
    memset(vec, 0, C * sizeof *vec);
    for (size_t i = 0; i < n && row; i++) {
        embed_row(wte, ids[i], row);
        for (size_t c = 0; c < C; c++)
            vec[c] += row[c];
    }
    for (size_t c = 0; c < C && n > 1; c++)
        vec[c] /= (float)n;
    free(row);
}

int words_vector(const words_model *m, const char *word, int as_typed, float *vec) {
    uint32_t ids[WORDS_MAX_TOKENS];
    size_t n;
    if (words_ids(m, word, as_typed, ids, WORDS_MAX_TOKENS, &n))
        return CLI_ERR;
    if (n > 1) {
        fprintf(stderr, "note: ");
        words_quote(stderr, word, strlen(word));
        fprintf(stderr, " is %zu tokens [", n);
        for (size_t i = 0; i < n; i++) {
            if (i)
                fputs(", ", stderr);
            words_print_token(stderr, m->vocab, ids[i]);
        }
        fprintf(stderr, "]; using their mean\n");
    }
    words_mean_rows(&m->wte, ids, n, vec);
    return CLI_OK;
}

void words_quote_buf(char *buf, size_t cap, const void *bytes, size_t n) {
    cli_quote_buf(buf, cap, bytes, n);
}

void words_quote(FILE *f, const void *bytes, size_t n) {
    size_t cap = n * 4 + 8;   /* \xNN per byte, two quotes, NUL and the margin */
    char small[256], *buf = cap <= sizeof small ? small : malloc(cap);
    if (!buf)
        return;
    words_quote_buf(buf, cap, bytes, n);
    fputs(buf, f);
    if (buf != small)
        free(buf);
}

void words_print_token(FILE *f, const bpe *vocab, uint32_t id) {
    size_t len;
    const char *b = bpe_token_bytes(vocab, id, &len);
    if (!b)
        fprintf(f, "<id %u>", id);
    else
        words_quote(f, b, len);
}
