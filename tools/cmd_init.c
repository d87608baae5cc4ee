/* cmd_init.c - `gpt2in init`: a new GPT-2-shaped safetensors file with
 * randomly initialised embeddings, written streaming and crash-safely.
 *
 *   default: wte.weight (V,C) and wpe.weight (maxT,C), F32 ~ Normal(0, 0.02)
 *            (GPT-2's own initialisation), __metadata__ {"format":"pt"},
 *            header padded with spaces to a multiple of 8.
 *   --full:  all 160 tensors of Hugging Face's gpt2 model.safetensors, with
 *            its names, shapes, F32 dtype and data order, and its compact
 *            unpadded header: with the default sizes the header is 14283
 *            bytes, so the data starts at byte 14291 (unaligned) and the
 *            file is 548,105,171 bytes, exactly like the real one. Only
 *            wte/wpe are random; LayerNorm weights are 1, biases and the
 *            other weights 0, the attn.bias buffers lower-triangular ones.
 *
 * wte is element i of embed_init_normal's stream for --seed S, wpe the
 * stream for S+1, so the same seed gives the same bytes everywhere. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char init_usage[] =
    "usage: gpt2in init --out FILE [--seed S] [--full] [--vocab V] [--ctx N] [--channels C]\n\n"
    "Writes a new safetensors file: wte.weight [V, C] and wpe.weight [N, C], F32,\n"
    "Normal(0, 0.02), the same bytes for the same --seed (default 0).\n"
    "Defaults: V 50257, N 1024, C 768.\n"
    "--full writes all 160 tensors of Hugging Face's gpt2 model.safetensors in\n"
    "its layout (about 548 MB; the data starts at byte 14291 as in the real\n"
    "file); only the embeddings are random, LayerNorm weights are 1, the rest 0,\n"
    "attn.bias the causal mask.\n"
    "\n" CLI_OUTPUT_HELP;

/* The real checkpoint's tensors in data-offset order (h.3.attn.c_proj.bias at
 * offset 0, ..., h.2.attn.c_attn.weight last). The 12 attn.bias buffers fill
 * the 12 four-MiB slots the other 148 tensors leave, in layer order. */
static const char *const gpt2_order[160] = {
    "h.3.attn.c_proj.bias", "h.2.mlp.c_fc.bias", "h.3.mlp.c_proj.bias",
    "h.0.attn.c_proj.weight", "h.5.ln_1.weight", "h.1.attn.c_attn.weight", "ln_f.weight",
    "h.9.attn.c_attn.bias", "h.0.attn.c_proj.bias", "h.8.mlp.c_proj.weight",
    "h.3.attn.c_attn.bias", "h.3.mlp.c_fc.bias", "h.5.attn.c_attn.bias", "h.0.mlp.c_fc.bias",
    "h.4.attn.c_proj.weight", "h.5.mlp.c_proj.bias", "h.11.attn.c_proj.bias",
    "h.9.attn.c_attn.weight", "h.2.attn.c_attn.bias", "h.6.mlp.c_fc.weight",
    "h.7.attn.c_proj.bias", "h.9.mlp.c_fc.bias", "h.8.attn.c_proj.weight", "h.5.ln_2.bias",
    "h.5.ln_1.bias", "h.11.ln_2.weight", "h.11.mlp.c_fc.weight", "h.0.attn.bias",
    "h.9.ln_2.weight", "h.4.ln_2.bias", "h.7.mlp.c_proj.bias", "h.11.ln_1.bias",
    "h.1.ln_2.weight", "h.4.mlp.c_fc.bias", "h.8.attn.c_attn.weight", "h.1.attn.bias",
    "h.2.attn.c_proj.weight", "h.0.ln_2.weight", "h.2.attn.bias", "h.10.mlp.c_proj.weight",
    "h.3.attn.bias", "h.2.attn.c_proj.bias", "h.2.ln_1.weight", "h.11.attn.c_attn.bias",
    "ln_f.bias", "h.0.attn.c_attn.bias", "h.5.mlp.c_fc.bias", "h.7.ln_2.weight",
    "h.6.mlp.c_proj.weight", "h.1.mlp.c_proj.bias", "h.1.ln_2.bias", "h.4.attn.bias",
    "h.4.mlp.c_proj.bias", "h.10.mlp.c_fc.weight", "h.11.attn.c_attn.weight",
    "h.0.mlp.c_fc.weight", "h.10.attn.c_attn.weight", "h.8.ln_2.bias", "h.11.mlp.c_fc.bias",
    "h.7.attn.c_attn.weight", "h.7.mlp.c_fc.bias", "h.11.attn.c_proj.weight",
    "h.1.mlp.c_proj.weight", "h.6.mlp.c_proj.bias", "h.8.attn.c_proj.bias",
    "h.10.mlp.c_proj.bias", "h.4.ln_1.bias", "h.4.attn.c_attn.bias", "h.9.mlp.c_proj.weight",
    "h.1.attn.c_proj.bias", "h.11.mlp.c_proj.weight", "h.6.ln_2.weight", "h.9.ln_2.bias",
    "h.6.ln_2.bias", "h.5.attn.c_proj.bias", "h.7.ln_1.bias", "h.6.attn.c_proj.weight",
    "h.1.ln_1.weight", "h.7.ln_2.bias", "h.5.attn.bias", "h.2.ln_2.weight",
    "h.10.attn.c_attn.bias", "h.3.attn.c_proj.weight", "h.10.attn.c_proj.weight",
    "h.10.attn.c_proj.bias", "h.8.mlp.c_fc.bias", "h.9.attn.c_proj.weight",
    "h.5.attn.c_proj.weight", "h.9.ln_1.bias", "h.4.mlp.c_fc.weight", "h.4.attn.c_attn.weight",
    "h.3.ln_2.bias", "h.5.ln_2.weight", "h.6.attn.bias", "h.8.mlp.c_proj.bias",
    "h.4.ln_1.weight", "h.0.ln_2.bias", "h.6.attn.c_attn.weight", "h.10.ln_2.weight",
    "h.1.ln_1.bias", "h.7.mlp.c_proj.weight", "h.2.ln_2.bias", "h.10.ln_1.weight",
    "h.3.mlp.c_proj.weight", "h.6.mlp.c_fc.bias", "h.1.mlp.c_fc.weight", "h.7.attn.c_attn.bias",
    "h.8.ln_1.bias", "h.1.attn.c_attn.bias", "h.6.attn.c_attn.bias", "h.3.ln_1.bias",
    "h.0.ln_1.bias", "h.4.ln_2.weight", "h.5.mlp.c_proj.weight", "h.8.attn.c_attn.bias",
    "h.8.ln_1.weight", "h.7.attn.c_proj.weight", "h.3.mlp.c_fc.weight", "h.8.ln_2.weight",
    "h.0.mlp.c_proj.bias", "h.6.attn.c_proj.bias", "h.7.attn.bias", "wpe.weight",
    "h.11.ln_2.bias", "h.0.attn.c_attn.weight", "h.1.mlp.c_fc.bias", "h.9.mlp.c_fc.weight",
    "wte.weight", "h.9.ln_1.weight", "h.11.ln_1.weight", "h.7.mlp.c_fc.weight",
    "h.0.ln_1.weight", "h.6.ln_1.weight", "h.3.ln_1.weight", "h.9.mlp.c_proj.bias",
    "h.2.ln_1.bias", "h.2.mlp.c_proj.bias", "h.2.mlp.c_fc.weight", "h.6.ln_1.bias",
    "h.4.mlp.c_proj.weight", "h.5.mlp.c_fc.weight", "h.3.attn.c_attn.weight", "h.8.attn.bias",
    "h.8.mlp.c_fc.weight", "h.2.mlp.c_proj.weight", "h.9.attn.bias", "h.1.attn.c_proj.weight",
    "h.7.ln_1.weight", "h.10.ln_2.bias", "h.10.attn.bias", "h.10.mlp.c_fc.bias",
    "h.10.ln_1.bias", "h.4.attn.c_proj.bias", "h.11.mlp.c_proj.bias", "h.11.attn.bias",
    "h.3.ln_2.weight", "h.5.attn.c_attn.weight", "h.9.attn.c_proj.bias",
    "h.0.mlp.c_proj.weight", "h.2.attn.c_attn.weight",
};

typedef enum { FILL_ZERO, FILL_ONE, FILL_WTE, FILL_WPE, FILL_MASK } fill_kind;

typedef struct {
    const char *name;
    int ndim;
    uint64_t shape[4];
    uint64_t bytes;
    fill_kind fill;
} init_tensor;

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Shape and contents of a GPT-2 tensor from its name. */
static void describe(init_tensor *t, const char *name, uint64_t V, uint64_t T, uint64_t C) {
    memset(t, 0, sizeof *t);
    t->name = name;
    t->fill = FILL_ZERO;
    t->ndim = 1;
    t->shape[0] = C;
    if (!strcmp(name, "wte.weight")) {
        t->ndim = 2, t->shape[0] = V, t->shape[1] = C, t->fill = FILL_WTE;
    } else if (!strcmp(name, "wpe.weight")) {
        t->ndim = 2, t->shape[0] = T, t->shape[1] = C, t->fill = FILL_WPE;
    } else if (ends_with(name, "attn.c_attn.weight")) {
        t->ndim = 2, t->shape[0] = C, t->shape[1] = 3 * C;
    } else if (ends_with(name, "attn.c_attn.bias")) {
        t->shape[0] = 3 * C;
    } else if (ends_with(name, "attn.c_proj.weight")) {
        t->ndim = 2, t->shape[0] = C, t->shape[1] = C;
    } else if (ends_with(name, "mlp.c_fc.weight")) {
        t->ndim = 2, t->shape[0] = C, t->shape[1] = 4 * C;
    } else if (ends_with(name, "mlp.c_fc.bias")) {
        t->shape[0] = 4 * C;
    } else if (ends_with(name, "mlp.c_proj.weight")) {
        t->ndim = 2, t->shape[0] = 4 * C, t->shape[1] = C;
    } else if (ends_with(name, "attn.bias")) {
        t->ndim = 4, t->shape[0] = 1, t->shape[1] = 1, t->shape[2] = T, t->shape[3] = T;
        t->fill = FILL_MASK;
    } else if (ends_with(name, ".weight")) { /* ln_1, ln_2, ln_f */
        t->fill = FILL_ONE;
    }
    t->bytes = 4;
    for (int d = 0; d < t->ndim; d++) t->bytes *= t->shape[d];
}

/* A JSON header: compact, __metadata__ first, tensors in data order. */
static char *make_header(const init_tensor *ts, size_t n, int pad8, size_t *len) {
    size_t cap = 256 + n * 160, o = 0;
    char *h = malloc(cap + 8);
    if (!h) return NULL;
    uint64_t off = 0;
    o += (size_t)snprintf(h + o, cap - o, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < n && o < cap; i++) {
        const init_tensor *t = &ts[i];
        o += (size_t)snprintf(h + o, cap - o, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[", t->name);
        for (int d = 0; d < t->ndim && o < cap; d++)
            o += (size_t)snprintf(h + o, cap - o, "%s%llu", d ? "," : "",
                                  (unsigned long long)t->shape[d]);
        if (o < cap)
            o += (size_t)snprintf(h + o, cap - o, "],\"data_offsets\":[%llu,%llu]}",
                                  (unsigned long long)off, (unsigned long long)(off + t->bytes));
        off += t->bytes;
    }
    if (o + 2 >= cap) {
        free(h);
        return NULL;
    }
    h[o++] = '}';
    while (pad8 && o % 8) h[o++] = ' ';
    h[o] = 0;
    *len = o;
    return h;
}

#define CHUNK 65536 /* floats per write */

static int write_tensor(embed_writer *w, const init_tensor *t, uint64_t seed, float *buf,
                        embed_error *err) {
    uint64_t n = t->bytes / 4, cols = t->shape[t->ndim - 1];
    for (uint64_t first = 0; first < n;) {
        size_t k = n - first < CHUNK ? (size_t)(n - first) : CHUNK;
        switch (t->fill) {
        case FILL_ZERO: memset(buf, 0, k * sizeof *buf); break;
        case FILL_ONE:
            for (size_t j = 0; j < k; j++) buf[j] = 1.0f;
            break;
        case FILL_WTE: embed_init_normal_at(buf, first, k, 0.02f, seed); break;
        case FILL_WPE: embed_init_normal_at(buf, first, k, 0.02f, seed + 1); break;
        case FILL_MASK: /* (T,T) lower triangle, diagonal included */
            for (size_t j = 0; j < k; j++) {
                uint64_t e = first + j;
                buf[j] = e % cols <= e / cols ? 1.0f : 0.0f;
            }
            break;
        }
        /* the file is little-endian F32; so is every machine this builds for */
        int rc = embed_writer_write(w, buf, k * sizeof *buf, err);
        if (rc) return rc;
        first += k;
    }
    return 0;
}

int cmd_init(int argc, char **argv) {
    const char *out = NULL, *v;
    uint64_t seed = 0, V = 50257, T = 1024, C = 768;
    int full = 0, bad = 0, operands = 0;
    for (int i = 1; i < argc; i++) {
        uint64_t *num = NULL;
        const char *a = argv[i];
        int kind = cli_arg(a, &operands, init_usage, "init");
        if (kind < 0 || kind == CLI_ARG_HELP)
            return kind < 0 ? CLI_ERR : CLI_OK;
        if (kind == CLI_ARG_SKIP)
            continue;
        if (!strcmp(a, "--full")) {
            full = 1;
            continue;
        } else if ((v = cli_opt(argc, argv, &i, "--out", &bad))) {
            out = v;
            continue;
        } else if ((v = cli_opt(argc, argv, &i, "--seed", &bad))) {
            num = &seed;
        } else if ((v = cli_opt(argc, argv, &i, "--vocab", &bad))) {
            num = &V;
        } else if ((v = cli_opt(argc, argv, &i, "--ctx", &bad))) {
            num = &T;
        } else if ((v = cli_opt(argc, argv, &i, "--channels", &bad))) {
            num = &C;
        }
        if (bad) return CLI_ERR;
        if (!num) return cli_unknown_option("init", a, kind);
        if (cli_parse_u64(v, num))
            return cli_error("init: %s needs a whole number, not %s", cli_q(a), cli_q(v));
    }
    if (!out) return cli_error("init: --out FILE is required (see 'gpt2in init --help')");
    if (cli_output_check("init", "--out", out, NULL, 0, 0)) return CLI_ERR;
    /* sizes that keep every byte count far from overflow */
    if (!V || !T || !C || V > (1u << 24) || T > (1u << 16) || C > (1u << 16))
        return cli_error("init: sizes must be 1..16777216 (vocab), 1..65536 (ctx, channels)");

    size_t n = full ? 160 : 2;
    init_tensor ts[160];
    if (full) {
        for (size_t i = 0; i < n; i++) describe(&ts[i], gpt2_order[i], V, T, C);
    } else {
        describe(&ts[0], "wte.weight", V, T, C);
        describe(&ts[1], "wpe.weight", V, T, C);
    }
    size_t hlen;
    char *hdr = make_header(ts, n, !full, &hlen);
    float *buf = malloc(CHUNK * sizeof *buf);
    if (!hdr || !buf) {
        free(hdr);
        free(buf);
        return cli_error("init: out of memory");
    }
    embed_error err;
    unsigned char len8[8];
    for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)hlen >> (8 * k));
    embed_writer *w = embed_writer_open(out, &err);
    int rc = w ? 0 : EMBED_ERR_IO;
    if (!rc) rc = embed_writer_write(w, len8, 8, &err);
    if (!rc) rc = embed_writer_write(w, hdr, hlen, &err);
    for (size_t i = 0; i < n && !rc; i++) rc = write_tensor(w, &ts[i], seed, buf, &err);
    if (w) {
        if (rc) embed_writer_abort(w);
        else rc = embed_writer_commit(w, &err);
    }
    free(hdr);
    free(buf);
    if (rc) return cli_error("%s", err.msg);
    return CLI_OK;
}
