/* cli_words.h - what similar, neighbors, analogy, plot and train-skipgram
 * share: options, opening a weights file, turning a word into a vector (its
 * token rows, averaged when it is several tokens) and printing tokens. */
#ifndef CLI_WORDS_H
#define CLI_WORDS_H

#include <stdio.h>

#include "cli.h"

typedef struct words_opts {
    const char *weights;   /* --weights FILE (required) */
    const char *tensor;    /* --tensor NAME (default wte.weight / transformer.wte.weight) */
    const char *vocab;     /* --vocab FILE (default: the built-in GPT-2 vocabulary) */
    int as_typed;          /* --as-typed: no leading space */
    uint64_t k;            /* -k N */
    char **words;          /* positional arguments */
    int n_words;
} words_opts;

/* Consumes argv[*i] if it is a shared option (--weights, --tensor,
 * --vocab, --as-typed, -k). Returns 1 if consumed, 0 if not, -1 on a bad value
 * (after printing the error). */
int words_common_opt(int argc, char **argv, int *i, words_opts *o);
/* cli_arg (cli.h), then words_common_opt: CLI_ARG_SKIP also for an option
 * taken here, -1 after printing an error. */
int words_arg(int argc, char **argv, int *i, int *operands, const char *help,
              const char *no_operands, words_opts *o);

typedef struct words_model {
    embed_file *file;
    embed_table wte;        /* (V,C) */
    const bpe *vocab;
    const char *tensor_name;
} words_model;

/* Opens the weights' token table; prints the error and returns CLI_ERR. */
int words_open(words_model *m, const words_opts *o);
void words_close(words_model *m);

/* The ids of a word (" word", or the word as typed): at most cap of them
 * into ids, the count into *n. Prints the error and returns CLI_ERR when the
 * word has no tokens or too many. */
int words_ids(const words_model *m, const char *word, int as_typed, uint32_t *ids, size_t cap,
              size_t *n);

/* vec (C) = the row of the word's token, or the mean of its tokens' rows
 * (saying so on stderr). Returns 0 or CLI_ERR (after printing). */
int words_vector(const words_model *m, const char *word, int as_typed, float *vec);
/* vec (C) = the mean of the rows ids[0..n) (silently). */
void words_mean_rows(const embed_table *wte, const uint32_t *ids, size_t n, float *vec);

/* Writes bytes as a double-quoted, escaped string (cli_quote_buf). */
void words_quote(FILE *f, const void *bytes, size_t n);
/* Same into buf (cap bytes, NUL-terminated, cut with "..." if it does not fit). */
void words_quote_buf(char *buf, size_t cap, const void *bytes, size_t n);
/* A token id, quoted. */
void words_print_token(FILE *f, const bpe *vocab, uint32_t id);

#endif
