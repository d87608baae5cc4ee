/* gpt2in - GPT-2's input stage from the command line: a thin layer over
 * libgpt2in (bpe/bpe.h, embed/embed.h). One program, many subcommands;
 * `shard` is a program of its own, gpt2in-shard, run from here. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* gpt2in shard needs libraries no other command does (sha256, zlib, zstd,
 * simdjson and the C++ runtime); linked here, loading them took most of
 * every command's start-up. So it is gpt2in-shard, a program beside this
 * one (the build folder) or in ../libexec/gpt2in/ (an installed prefix,
 * wherever it was copied or moved), run in this process's place: the same
 * process id, exit status and signals, so callers see no difference. */
static int run_shard(int argc, char **argv) {
    (void)argc;
    char self[4096], path[4096 + 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self);
    if (n <= 0 || (size_t)n >= sizeof self)
        return cli_error("shard: cannot find this program's own path (/proc/self/exe): %s",
                         n < 0 ? strerror(errno) : "too long");
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash) *slash = 0;
    const char *where[] = {"%s/gpt2in-shard", "%s/../libexec/gpt2in/gpt2in-shard"};
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        snprintf(path, sizeof path, where[i], self);
        if (access(path, X_OK)) continue;
        argv[0] = path;
        execv(path, argv);
        return cli_error("shard: cannot run %s: %s", cli_n(path), strerror(errno));
    }
    return cli_error("shard: gpt2in-shard is neither in %s nor in ../libexec/gpt2in from there "
                     "(make builds it beside gpt2in; make install puts it in PREFIX/libexec/gpt2in)",
                     cli_n(self));
}

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
    {"init", cmd_init, "write a new GPT-2-shaped weights file (random embeddings)"},
    {"similar", cmd_similar, "cosine similarity of two words' embedding vectors"},
    {"neighbors", cmd_neighbors, "the tokens nearest to a word by cosine"},
    {"analogy", cmd_analogy, "the tokens nearest to A - B + C (king - man + woman)"},
    {"plot", cmd_plot, "2-D PCA map of words' vectors as an SVG"},
    {"train-skipgram", cmd_train_skipgram, "tune wte with word2vec skip-gram on a text"},
    {"shard", run_shard, "document collections -> llm.c token shards (+ manifest)"},
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

int main(int argc, char **argv) {
    cli_start();
    if (argc < 2) {
        usage(stderr);
        return CLI_ERR;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return cli_finish(CLI_OK);
    }
    if (!strcmp(argv[1], "--version")) {
        puts("gpt2in 0.1.0");
        return cli_finish(CLI_OK);
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return cli_finish(commands[i].fn(argc - 1, argv + 1));
    char q[128];
    cli_error("unknown command %s (see 'gpt2in --help')", cli_quote_buf(q, sizeof q, argv[1], strlen(argv[1])));
    return CLI_ERR;
}
