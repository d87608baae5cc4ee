/* cmd_decode.c - `gpt2in decode`: token ids in, the exact bytes out. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char decode_help[] =
    "usage: gpt2in decode [OPTIONS] [--] [FILE]\n"
    "\n"
    "Decodes token ids (FILE, or stdin) into the exact bytes they stand for, even\n"
    "when a token ends in the middle of a UTF-8 character. Streams any length.\n"
    "\n"
    "  --input-format F  text (decimal ids separated by any whitespace), u16, u32,\n"
    "                    npy, json, llmc, auto; default auto: told from the first bytes\n"
    "                    (text, JSON, .npy, llm.c shard; raw u16/u32 must be named)\n"
    "  --encoder FILE --merges FILE\n"
    "                    another vocabulary in GPT-2's format (default: built in)\n"
    "  --vocab FILE      a vocabulary in another format: tokenizer.json, vocab.json (with\n"
    "                    --merges), .tiktoken, GGUF, llm.c's gpt2_tokenizer.bin\n"
    "  -h, --help        this help\n"
    "  --                what follows is the file, even if it starts with '-'\n"
    "\n"
    "An id outside the vocabulary, a negative or non-numeric id (or a text id of\n"
    "more than 20 bytes) is an error naming its byte offset (exit status 2). Memory\n"
    "stays bounded for any input: ids are read in blocks, .npy too. A batch [B, T]\n"
    "(a 2-D .npy, a JSON list of lists, text rows separated by a blank line) is\n"
    "decoded row after row, with nothing between rows (and here rows may differ\n"
    "in length).\n";

int cmd_decode(int argc, char **argv) {
    const char *format = NULL, *enc = NULL, *merges = NULL, *path = NULL, *vocab = NULL;
    int bad = 0, operands = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val;
        int kind = cli_arg(a, &operands, decode_help, NULL);
        if (kind == CLI_ARG_HELP) return CLI_OK;
        if (kind == CLI_ARG_SKIP) continue;
        if (kind == CLI_ARG_OPERAND) {
            if (path) return cli_error("decode: one input file at most (%s and %s)", cli_q(path), cli_q(a));
            path = a;
        } else if ((val = cli_opt(argc, argv, &i, "--input-format", &bad))) {
            format = val;
        } else if ((val = cli_opt(argc, argv, &i, "--encoder", &bad))) {
            enc = val;
        } else if ((val = cli_opt(argc, argv, &i, "--merges", &bad))) {
            merges = val;
        } else if ((val = cli_opt(argc, argv, &i, "--vocab", &bad))) {
            vocab = val;
        } else if (bad) {
            return CLI_ERR;
        } else {
            return cli_unknown_option("decode", a, CLI_ARG_OPTION);
        }
    }
    if (bad) return CLI_ERR;
    int fmt = cli_ids_format(format, path);
    if (fmt < 0) return CLI_ERR;
    /* >> or 1<> onto the input would read back what is written */
    const char *inputs[] = {path ? path : "-", enc, merges, vocab};
    if (cli_output_check("decode", "stdout", "-", inputs, 4, 1)) return CLI_ERR;
    const bpe *v = cli_vocab(enc, merges, vocab);
    if (!v) return CLI_ERR;
    FILE *in = cli_open_in(path);
    if (!in) {
        bpe_free(v);
        return CLI_ERR;
    }
    enum { BLOCK = 1 << 14 };
    ids_reader *r = ids_reader_open(in, path && strcmp(path, "-") ? path : "<stdin>", (ids_format)fmt,
                                    bpe_vocab_size(v));
    if (r) ids_reader_allow_ragged(r); /* rows are only concatenated here */
    uint32_t *ids = malloc(BLOCK * sizeof *ids);
    size_t cap = BLOCK * bpe_max_token_bytes(v);
    char *out = malloc(cap);
    int rc = r && ids && out ? CLI_OK : cli_error("out of memory");
    for (size_t n; !rc;) {
        if ((rc = ids_reader_next(r, ids, BLOCK, &n)) || n == 0) break;
        size_t bytes;
        bpe_error err;
        if (bpe_decode(v, ids, n, out, cap, &bytes, &err)) rc = cli_error("%s", err.msg);
        else if (fwrite(out, 1, bytes, stdout) != bytes) rc = cli_write_error(NULL);
    }
    if (!rc && fflush(stdout)) rc = cli_write_error(NULL);
    free(ids);
    free(out);
    ids_reader_close(r);
    if (in != stdin) fclose(in);
    bpe_free(v);
    return rc;
}
