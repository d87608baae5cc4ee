/* gpt2in - GPT-2's input stage from the command line: a thin layer over
 * libgpt2in (bpe/bpe.h, embed/embed.h). One program, many subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    cli_command_fn fn;
    const char *summary;
} commands[] = {
    {"encode", cmd_encode, "text -> token ids"},
    {"decode", cmd_decode, "token ids -> text"},
    {"count", cmd_count, "count the tokens of a text"},
    {"embed", cmd_embed, "token ids -> embedding rows [T, C] or [B, T, C] (wte, + wpe)"},
    {"verify", cmd_verify, "compare the embedding of ids with a reference array"},
    {"step", cmd_step, "one SGD / SparseAdam step of wte (and wpe) from dLoss/dx"},
    {"inspect", cmd_inspect, "describe and validate any file gpt2in reads, or stdin"},
    {"init", cmd_init, "write a new GPT-2-shaped safetensors file (random embeddings)"},
    {"similar", cmd_similar, "cosine similarity of two words' embedding vectors"},
    {"neighbors", cmd_neighbors, "the tokens nearest to a word by cosine"},
    {"analogy", cmd_analogy, "the tokens nearest to A - B + C (king - man + woman)"},
    {"plot", cmd_plot, "2-D PCA map of words' vectors as an SVG"},
    {"train-skipgram", cmd_train_skipgram, "tune wte with word2vec skip-gram on a text"},
    {"shard", cmd_shard, "document collections -> llm.c token shards (+ manifest)"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: gpt2in COMMAND [OPTIONS] [--] [FILE]\n\n"
               "GPT-2's input stage: byte-level BPE tokens and token embeddings.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-15s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'gpt2in COMMAND --help' describes a command. Exit status: 0 ok, "
               "1 check failed (verify), 2 error.\n");
}

/* Output still buffered is written here: a failed write of it (a full disk,
 * a closed pipe) is an error, reported once, even after --help. */
static int finish(int rc) {
    if ((fflush(stdout) || ferror(stdout)) && rc != CLI_ERR) rc = cli_write_error(NULL);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_ERR;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return finish(CLI_OK);
    }
    if (!strcmp(argv[1], "--version")) {
        puts("gpt2in 0.1.0");
        return finish(CLI_OK);
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return finish(commands[i].fn(argc - 1, argv + 1));
    char q[128];
    cli_error("unknown command %s (see 'gpt2in --help')", cli_quote_buf(q, sizeof q, argv[1], strlen(argv[1])));
    return CLI_ERR;
}
