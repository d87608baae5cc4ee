/* cmd_similar.c - `gpt2in similar`, `neighbors` and `analogy`: what the rows
 * of a token table say about each other, by cosine similarity
 * (embed_cosine / embed_nearest in embed/similarity.c). */
#include <stdlib.h>
#include <string.h>

#include "cli_words.h"

#define SIM_MAX_EXCLUDE 256

static const char *similar_usage =
    "usage: gpt2in similar --weights FILE [--as-typed] [--tensor NAME] [--vocab V] [--] WORD WORD\n"
    "       gpt2in neighbors --weights FILE [-k N] [--as-typed] [--tensor NAME] [--vocab V] [--] WORD\n"
    "       gpt2in analogy --weights FILE [-k N] [--as-typed] [--tensor NAME] [--vocab V] [--] A B C\n"
    "\n"
    "similar:   cosine similarity of two words' vectors (1 = same direction, 0 = unrelated).\n"
    "neighbors: the k tokens (default 10) whose vectors are nearest to WORD's by cosine.\n"
    "analogy:   the k tokens nearest to A - B + C (\"king man woman\" asks: king is to man\n"
    "           as what is to woman?), A, B and C themselves excluded.\n"
    "\n"
    "A word is looked up as the token(s) of \" word\" (with GPT-2's leading space, as in\n"
    "the middle of a sentence), or as typed with --as-typed. A word of several tokens\n"
    "stands for the mean of their rows (a note on stderr says so).\n"
    "FILE is a weights file (.safetensors, llm.c checkpoint, GGUF or .npy) whose token\n"
    "table is found by its usual name (wte.weight, token_embd.weight...) or --tensor.\n"
    "Words are tokenized with GPT-2's built-in vocabulary, or with --vocab V (a\n"
    "tokenizer.json, .tiktoken, GGUF or llm.c gpt2_tokenizer.bin file).\n";

/* Shared front: options, then the table. Returns CLI_OK, CLI_ERR, or -1 for
 * --help (already printed). */
static int parse(int argc, char **argv, words_opts *o, int want_words, const char *name) {
    memset(o, 0, sizeof *o);
    o->k = 10;
    o->words = calloc((size_t)argc, sizeof *o->words);
    if (!o->words)
        return cli_error("out of memory");
    int operands = 0;
    for (int i = 1; i < argc; i++) {
        int kind = words_arg(argc, argv, &i, &operands, similar_usage, NULL, o);
        if (kind < 0 || kind == CLI_ARG_HELP)
            return kind < 0 ? CLI_ERR : -1;
        if (kind == CLI_ARG_OPERAND)
            o->words[o->n_words++] = argv[i];
        else if (kind == CLI_ARG_OPTION)
            return cli_unknown_option(name, argv[i], kind);
    }
    if (o->n_words != want_words)
        return cli_error("%s wants %d word%s, got %d (see 'gpt2in %s --help')", name, want_words,
                         want_words == 1 ? "" : "s", o->n_words, name);
    return CLI_OK;
}

static void print_word(const char *w) {
    words_quote(stdout, w, strlen(w));
}

/* Prints the hits as a ranked list: rank, cosine, token, id. */
static void print_hits(const words_model *m, const embed_hit *hits, size_t n) {
    for (size_t i = 0; i < n; i++) {
        printf("%3zu  %8.4f  ", i + 1, hits[i].score);
        words_print_token(stdout, m->vocab, hits[i].id);
        printf("  (id %u)\n", hits[i].id);
    }
}

/* The ids of a word, added to the exclusion list. */
static int add_excluded(const words_model *m, const char *word, int as_typed, uint32_t *ex, size_t *n_ex) {
    uint32_t ids[64];
    size_t n;
    if (words_ids(m, word, as_typed, ids, 64, &n))
        return CLI_ERR;
    for (size_t i = 0; i < n && *n_ex < SIM_MAX_EXCLUDE; i++)
        ex[(*n_ex)++] = ids[i];
    return CLI_OK;
}

static int run(int argc, char **argv, int mode) {
    static const char *names[] = {"similar", "neighbors", "analogy"};
    static const int want[] = {2, 1, 3};
    words_opts o;
    words_model m = {0};
    int rc = parse(argc, argv, &o, want[mode], names[mode]);
    if (rc) {
        free(o.words);
        return rc < 0 ? CLI_OK : rc;
    }
    /* >> or 1<> onto an input would write into the weights */
    const char *inputs[] = {o.weights, o.vocab};
    if ((rc = cli_output_check(names[mode], "stdout", "-", inputs, 2, 1)) || (rc = words_open(&m, &o))) {
        free(o.words);
        return rc;
    }
    size_t C = m.wte.cols;
    float *v = calloc(3 * C, sizeof *v);
    embed_hit *hits = calloc(o.k, sizeof *hits);
    uint32_t ex[SIM_MAX_EXCLUDE];
    size_t n_ex = 0, n_hits = 0;
    embed_error err;
    if (!v || !hits) {
        rc = cli_error("out of memory");
        goto out;
    }
    for (int w = 0; w < o.n_words; w++)
        if ((rc = words_vector(&m, o.words[w], o.as_typed, v + (size_t)w * C)) ||
            (rc = add_excluded(&m, o.words[w], o.as_typed, ex, &n_ex)))
            goto out;
    if (mode == 0) {
        for (int w = 0; w < 2; w++) {
            float nz = 0;
            for (size_t c = 0; c < C; c++) nz += v[(size_t)w * C + c] * v[(size_t)w * C + c];
            if (!(nz > 0)) { /* as neighbors refuses such a query */
                rc = cli_error("%s: the vector of %s is %s: no cosine", cli_n(o.weights), cli_q(o.words[w]),
                               nz == 0 ? "all zeros" : "not finite");
                goto out;
            }
        }
        printf("cosine(");
        print_word(o.words[0]);
        printf(", ");
        print_word(o.words[1]);
        printf(") = %.6f\n", embed_cosine(v, v + C, C));
        goto out;
    }
    if (mode == 2) /* A - B + C */
        for (size_t c = 0; c < C; c++)
            v[c] = v[c] - v[C + c] + v[2 * C + c];
    if (embed_nearest(&m.wte, NULL, v, ex, n_ex, o.k, hits, &n_hits, &err)) {
        rc = cli_error("%s: %s", cli_n(o.weights), err.msg);
        goto out;
    }
    if (mode == 1) {
        printf("nearest to ");
        print_word(o.words[0]);
        printf(" by cosine:\n");
    } else {
        print_word(o.words[0]);
        printf(" - ");
        print_word(o.words[1]);
        printf(" + ");
        print_word(o.words[2]);
        printf(" is nearest to:\n");
    }
    print_hits(&m, hits, n_hits);
out:
    if (fflush(stdout) && !rc)
        rc = cli_write_error(NULL);
    free(v);
    free(hits);
    free(o.words);
    words_close(&m);
    return rc;
}

int cmd_similar(int argc, char **argv) { return run(argc, argv, 0); }
int cmd_neighbors(int argc, char **argv) { return run(argc, argv, 1); }
int cmd_analogy(int argc, char **argv) { return run(argc, argv, 2); }
