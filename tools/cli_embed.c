/* cli_embed.c - helpers shared by `gpt2in embed`, `verify` and `step`. */
#include <stdlib.h>
#include <string.h>

#include "cli_embed.h"

/* The given name, else the usual one for the file's kind ("wte.weight",
 * llm.c's "wte", GGUF's "token_embd.weight", a .npy's "array"). */
static const char *pick_name(const embed_file *f, const char *name, int positions) {
    return name ? name : embed_table_name(f, positions);
}

int cli_model_opt(int argc, char **argv, int *i, cli_model_opts *o) {
    int bad = 0;
    const char *v;
    if (!strcmp(argv[*i], "--positions")) {
        o->positions = 1;
    } else if ((v = cli_opt(argc, argv, i, "--weights", &bad))) {
        o->weights = v;
    } else if ((v = cli_opt(argc, argv, i, "--tensor", &bad))) {
        o->tensor = v;
    } else if ((v = cli_opt(argc, argv, i, "--wpe-tensor", &bad))) {
        o->wpe_tensor = v;
    } else if ((v = cli_opt(argc, argv, i, "--input-format", &bad))) {
        o->input_format = v;
    } else if ((v = cli_opt(argc, argv, i, "--pos-offset", &bad))) {
        if (cli_parse_u64(v, &o->pos0) || o->pos0 > SIZE_MAX / 2)
            return cli_error("--pos-offset: %s is not a position (a non-negative number)", cli_q(v));
    } else {
        return bad ? CLI_ERR : 0;
    }
    return 1;
}

int cli_model_arg(int argc, char **argv, int *i, int *operands, const char *help,
                  const char *no_operands, cli_model_opts *o) {
    int kind = cli_arg(argv[*i], operands, help, no_operands);
    if (kind != CLI_ARG_OPTION)
        return kind;
    int taken = cli_model_opt(argc, argv, i, o);
    return taken == CLI_ERR ? -1 : taken ? CLI_ARG_SKIP : CLI_ARG_OPTION;
}

int cli_model_open(const cli_model_opts *o, const char *command, cli_model *m) {
    memset(m, 0, sizeof *m);
    if (!o->weights)
        return cli_error("%s: --weights FILE is required (see 'gpt2in %s --help')", command, command);
    const char *path = o->weights, *wte_name = o->tensor, *wpe_name = o->wpe_tensor;
    int positions = o->positions;
    embed_error err;
    if (!(m->f = cli_open_mapped(path)))
        return CLI_ERR;
    m->wte_name = pick_name(m->f, wte_name, 0);
    if (embed_wte(m->f, wte_name, &m->wte, &err)) {
        cli_error("%s: %s", cli_n(path), err.msg);
        cli_model_close(m);
        return CLI_ERR;
    }
    if (positions) {
        m->wpe_name = pick_name(m->f, wpe_name, 1);
        if (embed_wpe(m->f, wpe_name, &m->wpe, &err)) {
            cli_error("%s: %s", cli_n(path), err.msg);
            cli_model_close(m);
            return CLI_ERR;
        }
        if (m->wpe.cols != m->wte.cols) {
            cli_error("%s: %s has %zu columns but %s has %zu", cli_n(path), cli_q(m->wte_name),
                      m->wte.cols, cli_q(m->wpe_name), m->wpe.cols);
            cli_model_close(m);
            return CLI_ERR;
        }
        m->has_wpe = 1;
    }
    /* step writes the tables back: a quantised one would need re-quantising */
    if (!strcmp(command, "step") &&
        (m->wte.dtype == EMBED_Q8_0 || (m->has_wpe && m->wpe.dtype == EMBED_Q8_0))) {
        int w = m->wte.dtype == EMBED_Q8_0;
        cli_error("step: %s: %s is Q8_0 (quantised): step writes the stepped table back and "
                  "gpt2in does not re-quantise; convert the file's embeddings to F16 or F32 "
                  "first (embed, verify and neighbors read it as it is)",
                  cli_n(path), cli_q(w ? m->wte_name : m->wpe_name));
        cli_model_close(m);
        return CLI_ERR;
    }
    return CLI_OK;
}

void cli_model_close(cli_model *m) {
    embed_close(m->f);
    m->f = NULL;
}

int cli_read_ids(const char *path, const char *fmt_name, size_t vocab, uint32_t **ids,
                 size_t *n) {
    int fmt = cli_ids_format(fmt_name, path);
    if (fmt < 0)
        return CLI_ERR;
    FILE *in = cli_open_in(path);
    if (!in)
        return CLI_ERR;
    int rc = ids_read_all(in, path && strcmp(path, "-") ? path : "<stdin>", (ids_format)fmt,
                          vocab, ids, n);
    if (in != stdin)
        fclose(in);
    return rc;
}
