/* cli_embed.c - helpers shared by `gpt2in embed`, `verify` and `step`. */
#include <stdlib.h>
#include <string.h>

#include "cli_embed.h"

static const char *pick_name(const embed_file *f, const char *name, const char *a,
                             const char *b) {
    if (name)
        return name;
    return embed_find(f, a) ? a : embed_find(f, b) ? b : a;
}

int cli_model_open(const char *path, const char *wte_name, const char *wpe_name, int positions,
                   cli_model *m) {
    memset(m, 0, sizeof *m);
    embed_error err;
    m->f = embed_open(path, &err);
    if (!m->f)
        return cli_error("%s", err.msg);
    m->wte_name = pick_name(m->f, wte_name, "wte.weight", "transformer.wte.weight");
    if (embed_wte(m->f, m->wte_name, &m->wte, &err)) {
        cli_error("%s: %s", path, err.msg);
        cli_model_close(m);
        return CLI_ERR;
    }
    if (positions) {
        m->wpe_name = pick_name(m->f, wpe_name, "wpe.weight", "transformer.wpe.weight");
        if (embed_wpe(m->f, m->wpe_name, &m->wpe, &err)) {
            cli_error("%s: %s", path, err.msg);
            cli_model_close(m);
            return CLI_ERR;
        }
        if (m->wpe.cols != m->wte.cols) {
            cli_error("%s: '%s' has %zu columns but '%s' has %zu", path, m->wte_name,
                      m->wte.cols, m->wpe_name, m->wpe.cols);
            cli_model_close(m);
            return CLI_ERR;
        }
        m->has_wpe = 1;
    }
    return CLI_OK;
}

void cli_model_close(cli_model *m) {
    embed_close(m->f);
    m->f = NULL;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

int cli_ids_format(const char *name, const char *path) {
    if (name) {
        int f = ids_format_from_name(name);
        if (f < 0)
            cli_error("unknown --input-format '%s' (text, u16, u32, npy, json, llmc)", name);
        return f;
    }
    if (path && ends_with(path, ".npy"))
        return IDS_NPY;
    if (path && ends_with(path, ".json"))
        return IDS_JSON;
    return IDS_TEXT;
}

int cli_read_ids(const char *path, const char *fmt_name, size_t vocab, uint32_t **ids,
                 size_t *n) {
    int fmt = cli_ids_format(fmt_name, path);
    if (fmt < 0)
        return CLI_ERR;
    FILE *in = cli_open_in(path);
    if (!in)
        return cli_error("cannot open %s", path);
    int rc = ids_read_all(in, path && strcmp(path, "-") ? path : "<stdin>", (ids_format)fmt,
                          vocab, ids, n);
    if (in != stdin)
        fclose(in);
    return rc;
}
