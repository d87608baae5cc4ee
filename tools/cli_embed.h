/* cli_embed.h - what the embedding subcommands (embed, verify, step) share:
 * opening a weights file and picking its tables, guessing an id format. */
#ifndef CLI_EMBED_H
#define CLI_EMBED_H

#include "cli.h"

typedef struct {
    embed_file *f;
    embed_table wte, wpe;
    const char *wte_name, *wpe_name;  /* the tensor names actually used */
    int has_wpe;
} cli_model;

/* The options embed, verify and step share. */
typedef struct {
    const char *weights, *tensor, *wpe_tensor, *input_format;
    int positions;
    uint64_t pos0;
} cli_model_opts;

/* Takes argv[*i] (and its value) when it is --weights, --tensor,
 * --wpe-tensor, --input-format, --positions or --pos-offset: returns 1, or
 * CLI_ERR after printing what is wrong with its value; 0 for any other. */
int cli_model_opt(int argc, char **argv, int *i, cli_model_opts *o);
/* cli_arg (cli.h), then cli_model_opt: CLI_ARG_SKIP also for an option
 * taken here, -1 after printing an error. */
int cli_model_arg(int argc, char **argv, int *i, int *operands, const char *help,
                  const char *no_operands, cli_model_opts *o);

/* Opens o->weights and finds wte (and wpe with o->positions), by the given
 * names or the GPT-2 defaults. Prints the error and returns CLI_ERR on
 * failure (also for a missing --weights or an absurd --pos-offset). */
int cli_model_open(const cli_model_opts *o, const char *command, cli_model *m);
void cli_model_close(cli_model *m);

/* Reads a whole id file (path NULL or "-" = stdin); CLI_ERR after printing. */
int cli_read_ids(const char *path, const char *fmt_name, size_t vocab, uint32_t **ids,
                 size_t *n);

#endif
