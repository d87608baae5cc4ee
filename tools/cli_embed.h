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

/* Opens `path` and finds wte (and wpe when `positions`), by the given names
 * or the GPT-2 defaults. Prints the error and returns CLI_ERR on failure. */
int cli_model_open(const char *path, const char *wte_name, const char *wpe_name, int positions,
                   cli_model *m);
void cli_model_close(cli_model *m);

/* --input-format NAME, or guessed from the file name (.npy, .json, else
 * text). Prints the error and returns -1 for an unknown name. */
int cli_ids_format(const char *name, const char *path);

/* Reads a whole id file (path NULL or "-" = stdin); CLI_ERR after printing. */
int cli_read_ids(const char *path, const char *fmt_name, size_t vocab, uint32_t **ids,
                 size_t *n);

#endif
