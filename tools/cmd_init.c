/* cmd_init.c - `gpt2in init`: a new GPT-2-shaped weights file with randomly
 * initialised embeddings, written streaming and crash-safely, in any of
 * the three model formats.
 *
 *   default: the embeddings only, F32 ~ Normal(0, 0.02) (GPT-2's own
 *            initialisation): safetensors wte.weight (V,C) and wpe.weight
 *            (maxT,C) with __metadata__ {"format":"pt"}, header padded with
 *            spaces to a multiple of 8; GGUF token_embd.weight and
 *            position_embd.weight.
 *   --full:  every tensor of the model in its format's real layout:
 *            - safetensors: Hugging Face's names and shapes; for gpt2 all
 *              160 tensors of its model.safetensors in its data order with
 *              its compact unpadded header (14283 bytes with the default
 *              sizes, so the data starts at byte 14291, unaligned, and the
 *              file is 548,105,171 bytes, exactly like the real one); the
 *              larger models in layer order;
 *            - llmc (always full): llm.c's 1024-byte header (magic 20240326,
 *              version 3) and its 16 parameters, wte padded to Vp (V rounded
 *              up to a multiple of 128) with zero rows;
 *            - gguf: llama.cpp's GPT-2 names (token_embd, output (tied: a
 *              copy of token_embd), position_embd, blk.N.attn_norm ...,
 *              output_norm) and key-values (general.architecture "gpt2",
 *              gpt2.block_count, ...), alignment 32.
 *            Only wte/wpe are random; LayerNorm weights are 1, biases and
 *            the other weights 0, the attn.bias buffers lower-triangular.
 *
 * wte is element i of embed_init_normal's stream for --seed S, wpe the
 * stream for S+1, so the same seed gives the same table in every format. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char init_usage[] =
    "usage: gpt2in init --out FILE [--seed S] [--format safetensors|llmc|gguf] [--full]\n"
    "                   [--model gpt2|gpt2-medium|gpt2-large|gpt2-xl]\n"
    "                   [--vocab V] [--ctx N] [--channels C] [--layers L] [--heads H]\n\n"
    "Writes a new weights file: the token table [V, C] and the position table\n"
    "[N, C], F32, Normal(0, 0.02), the same values for the same --seed (default 0)\n"
    "in every format. Defaults: V 50257, N 1024, C 768 (GPT-2 small).\n"
    "--format: safetensors (default; wte.weight, wpe.weight), gguf\n"
    "(token_embd.weight, position_embd.weight) or llmc (an llm.c checkpoint,\n"
    "always with every parameter).\n"
    "--full writes every tensor of the model in its format's real layout; for\n"
    "gpt2 as safetensors, Hugging Face's model.safetensors tensor for tensor\n"
    "(about 548 MB; the data starts at byte 14291 as in the real file). Only the\n"
    "embeddings are random, LayerNorm weights are 1, the rest 0, attn.bias the\n"
    "causal mask.\n"
    "--model picks a real layout: gpt2 (12 layers, C 768, 12 heads), gpt2-medium\n"
    "(24, 1024, 16), gpt2-large (36, 1280, 20), gpt2-xl (48, 1600, 25).\n"
    "--full --channels C picks the model of that width; another width needs\n"
    "--layers (and --heads, default C/64 or 1) for a custom model.\n"
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
    char name[48];
    int ndim;
    uint64_t shape[4];   /* row-major */
    uint64_t bytes;
    uint64_t nrand;      /* FILL_WTE/WPE: elements from the stream, zeros after (llm.c's padding) */
    fill_kind fill;
} init_tensor;

typedef struct {
    uint64_t V, T, C, L, H, Vp;
} dims;

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static void set(init_tensor *t, const char *name, fill_kind fill, int ndim, uint64_t a,
                uint64_t b, uint64_t c) {
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->fill = fill;
    t->ndim = ndim;
    t->shape[0] = a, t->shape[1] = b, t->shape[2] = c;
    t->bytes = 4;
    for (int d = 0; d < ndim; d++) t->bytes *= t->shape[d];
    t->nrand = t->bytes / 4;
}

/* Shape and contents of a Hugging Face GPT-2 tensor from its name. */
static void describe_hf(init_tensor *t, const char *name, const dims *m) {
    uint64_t C = m->C, T = m->T;
    if (!strcmp(name, "wte.weight")) set(t, name, FILL_WTE, 2, m->V, C, 0);
    else if (!strcmp(name, "wpe.weight")) set(t, name, FILL_WPE, 2, T, C, 0);
    else if (ends_with(name, "attn.c_attn.weight")) set(t, name, FILL_ZERO, 2, C, 3 * C, 0);
    else if (ends_with(name, "attn.c_attn.bias")) set(t, name, FILL_ZERO, 1, 3 * C, 0, 0);
    else if (ends_with(name, "attn.c_proj.weight")) set(t, name, FILL_ZERO, 2, C, C, 0);
    else if (ends_with(name, "mlp.c_fc.weight")) set(t, name, FILL_ZERO, 2, C, 4 * C, 0);
    else if (ends_with(name, "mlp.c_fc.bias")) set(t, name, FILL_ZERO, 1, 4 * C, 0, 0);
    else if (ends_with(name, "mlp.c_proj.weight")) set(t, name, FILL_ZERO, 2, 4 * C, C, 0);
    else if (ends_with(name, "attn.bias")) {
        set(t, name, FILL_MASK, 4, 1, 1, T);
        t->shape[3] = T;
        t->bytes = 4 * T * T;
    } else if (ends_with(name, ".weight")) set(t, name, FILL_ONE, 1, C, 0, 0); /* ln_1, ln_2, ln_f */
    else set(t, name, FILL_ZERO, 1, C, 0, 0);
}

/* The tensors of a format's file, in data order; returns how many. */
static size_t layout(int fmt, int full, const dims *m, init_tensor *ts) {
    size_t n = 0;
    uint64_t C = m->C, L = m->L;
    char nm[48];
    if (fmt == 1) { /* llm.c: the 16 parameters, layers stacked */
        set(&ts[n++], "wte", FILL_WTE, 2, m->Vp, C, 0);
        ts[0].nrand = m->V * C;
        set(&ts[n++], "wpe", FILL_WPE, 2, m->T, C, 0);
        set(&ts[n++], "ln1w", FILL_ONE, 2, L, C, 0);
        set(&ts[n++], "ln1b", FILL_ZERO, 2, L, C, 0);
        set(&ts[n++], "qkvw", FILL_ZERO, 3, L, 3 * C, C);
        set(&ts[n++], "qkvb", FILL_ZERO, 2, L, 3 * C, 0);
        set(&ts[n++], "attprojw", FILL_ZERO, 3, L, C, C);
        set(&ts[n++], "attprojb", FILL_ZERO, 2, L, C, 0);
        set(&ts[n++], "ln2w", FILL_ONE, 2, L, C, 0);
        set(&ts[n++], "ln2b", FILL_ZERO, 2, L, C, 0);
        set(&ts[n++], "fcw", FILL_ZERO, 3, L, 4 * C, C);
        set(&ts[n++], "fcb", FILL_ZERO, 2, L, 4 * C, 0);
        set(&ts[n++], "fcprojw", FILL_ZERO, 3, L, C, 4 * C);
        set(&ts[n++], "fcprojb", FILL_ZERO, 2, L, C, 0);
        set(&ts[n++], "lnfw", FILL_ONE, 1, C, 0, 0);
        set(&ts[n++], "lnfb", FILL_ZERO, 1, C, 0, 0);
        return n;
    }
    if (fmt == 2) { /* GGUF, llama.cpp's GPT-2 names, row-major shapes */
        set(&ts[n++], "token_embd.weight", FILL_WTE, 2, m->V, C, 0);
        if (!full) {
            set(&ts[n++], "position_embd.weight", FILL_WPE, 2, m->T, C, 0);
            return n;
        }
        set(&ts[n++], "output.weight", FILL_WTE, 2, m->V, C, 0); /* tied to token_embd */
        set(&ts[n++], "position_embd.weight", FILL_WPE, 2, m->T, C, 0);
        for (uint64_t l = 0; l < L; l++) {
            static const struct { const char *s; fill_kind f; int nd; uint64_t a, b; } blk[] = {
                {"attn_norm.weight", FILL_ONE, 1, 1, 0}, {"attn_norm.bias", FILL_ZERO, 1, 1, 0},
                {"attn_qkv.weight", FILL_ZERO, 2, 3, 1}, {"attn_qkv.bias", FILL_ZERO, 1, 3, 0},
                {"attn_output.weight", FILL_ZERO, 2, 1, 1}, {"attn_output.bias", FILL_ZERO, 1, 1, 0},
                {"ffn_norm.weight", FILL_ONE, 1, 1, 0}, {"ffn_norm.bias", FILL_ZERO, 1, 1, 0},
                {"ffn_up.weight", FILL_ZERO, 2, 4, 1}, {"ffn_up.bias", FILL_ZERO, 1, 4, 0},
                {"ffn_down.weight", FILL_ZERO, 2, 1, 4}, {"ffn_down.bias", FILL_ZERO, 1, 1, 0},
            };
            for (size_t k = 0; k < sizeof blk / sizeof blk[0]; k++) {
                snprintf(nm, sizeof nm, "blk.%llu.%s", (unsigned long long)l, blk[k].s);
                set(&ts[n++], nm, blk[k].f, blk[k].nd, blk[k].a * C, blk[k].b * C, 0);
            }
        }
        set(&ts[n++], "output_norm.weight", FILL_ONE, 1, C, 0, 0);
        set(&ts[n++], "output_norm.bias", FILL_ZERO, 1, C, 0, 0);
        return n;
    }
    if (!full) {
        describe_hf(&ts[n++], "wte.weight", m);
        describe_hf(&ts[n++], "wpe.weight", m);
        return n;
    }
    if (L == 12) { /* gpt2's own data order */
        for (size_t i = 0; i < 160; i++) describe_hf(&ts[n++], gpt2_order[i], m);
        return n;
    }
    static const char *const per_layer[13] = {
        "ln_1.weight", "ln_1.bias", "attn.bias", "attn.c_attn.weight", "attn.c_attn.bias",
        "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
        "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias",
    };
    describe_hf(&ts[n++], "wte.weight", m);
    describe_hf(&ts[n++], "wpe.weight", m);
    for (uint64_t l = 0; l < L; l++)
        for (int k = 0; k < 13; k++) {
            snprintf(nm, sizeof nm, "h.%llu.%s", (unsigned long long)l, per_layer[k]);
            describe_hf(&ts[n++], nm, m);
        }
    describe_hf(&ts[n++], "ln_f.weight", m);
    describe_hf(&ts[n++], "ln_f.bias", m);
    return n;
}

/* ---- headers ----------------------------------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t n, cap;
    int oom;
} buf;

static void put(buf *b, const void *s, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 4096;
        while (nc < b->n + n) nc *= 2;
        unsigned char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np, b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void put_le(buf *b, uint64_t v, int bytes) {
    unsigned char x[8];
    for (int k = 0; k < bytes; k++) x[k] = (unsigned char)(v >> (8 * k));
    put(b, x, (size_t)bytes);
}

static void put_text(buf *b, const char *s) { put(b, s, strlen(s)); }

/* safetensors: u64 length and compact JSON, __metadata__ first. */
static void header_st(buf *b, const init_tensor *ts, size_t n, int pad8) {
    buf j = {0};
    char t[96];
    uint64_t off = 0;
    put_text(&j, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < n; i++) {
        snprintf(t, sizeof t, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[", ts[i].name);
        put_text(&j, t);
        for (int d = 0; d < ts[i].ndim; d++) {
            snprintf(t, sizeof t, "%s%llu", d ? "," : "", (unsigned long long)ts[i].shape[d]);
            put_text(&j, t);
        }
        snprintf(t, sizeof t, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + ts[i].bytes));
        put_text(&j, t);
        off += ts[i].bytes;
    }
    put_text(&j, "}");
    while (pad8 && j.n % 8) put_text(&j, " ");
    put_le(b, j.n, 8);
    put(b, j.p, j.n);
    b->oom |= j.oom;
    free(j.p);
}

/* llm.c: int32 header[256]. */
static void header_llmc(buf *b, const dims *m) {
    uint64_t h[8] = {20240326, 3, m->T, m->V, m->L, m->H, m->C, m->Vp};
    for (int k = 0; k < 256; k++) put_le(b, k < 8 ? h[k] : 0, 4);
}

static void gguf_str(buf *b, const char *s) {
    put_le(b, strlen(s), 8);
    put_text(b, s);
}

static void gguf_kv_u32(buf *b, const char *k, uint64_t v) {
    gguf_str(b, k);
    put_le(b, 4, 4);
    put_le(b, v, 4);
}

#define GGUF_ALIGN 32

/* GGUF v3: key-values, tensor infos (dims fastest first), padding. */
static void header_gguf(buf *b, const init_tensor *ts, size_t n, const dims *m, const char *model) {
    put_text(b, "GGUF");
    put_le(b, 3, 4);
    put_le(b, n, 8);
    put_le(b, 9, 8);
    gguf_str(b, "general.architecture");
    put_le(b, 8, 4);
    gguf_str(b, "gpt2");
    gguf_str(b, "general.name");
    put_le(b, 8, 4);
    gguf_str(b, model);
    gguf_kv_u32(b, "general.file_type", 0); /* all F32 */
    gguf_kv_u32(b, "gpt2.context_length", m->T);
    gguf_kv_u32(b, "gpt2.embedding_length", m->C);
    gguf_kv_u32(b, "gpt2.feed_forward_length", 4 * m->C);
    gguf_kv_u32(b, "gpt2.block_count", m->L);
    gguf_kv_u32(b, "gpt2.attention.head_count", m->H);
    gguf_str(b, "gpt2.attention.layer_norm_epsilon");
    put_le(b, 6, 4);
    float eps = 1e-5f;
    uint32_t u;
    memcpy(&u, &eps, 4);
    put_le(b, u, 4);
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        gguf_str(b, ts[i].name);
        put_le(b, (uint64_t)ts[i].ndim, 4);
        for (int d = ts[i].ndim - 1; d >= 0; d--) put_le(b, ts[i].shape[d], 8);
        put_le(b, 0, 4); /* F32 */
        put_le(b, off, 8);
        off += (ts[i].bytes + GGUF_ALIGN - 1) / GGUF_ALIGN * GGUF_ALIGN;
    }
    while (b->n % GGUF_ALIGN) put_le(b, 0, 1);
}

/* ---- data ---------------------------------------------------------------------- */

#define CHUNK 65536 /* floats per write */

static int write_tensor(embed_writer *w, const init_tensor *t, uint64_t seed, float *fb,
                        uint64_t pad_to, embed_error *err) {
    uint64_t n = t->bytes / 4, cols = t->shape[t->ndim - 1];
    for (uint64_t first = 0; first < n;) {
        size_t k = n - first < CHUNK ? (size_t)(n - first) : CHUNK;
        switch (t->fill) {
        case FILL_ZERO: memset(fb, 0, k * sizeof *fb); break;
        case FILL_ONE:
            for (size_t j = 0; j < k; j++) fb[j] = 1.0f;
            break;
        case FILL_WTE:
        case FILL_WPE: {
            /* the stream's elements, then zeros (llm.c's padding rows) */
            size_t r = first >= t->nrand ? 0 : t->nrand - first < k ? (size_t)(t->nrand - first) : k;
            embed_init_normal_at(fb, first, r, 0.02f, t->fill == FILL_WTE ? seed : seed + 1);
            memset(fb + r, 0, (k - r) * sizeof *fb);
            break;
        }
        case FILL_MASK: /* (T,T) lower triangle, diagonal included */
            for (size_t j = 0; j < k; j++) {
                uint64_t e = first + j;
                fb[j] = e % cols <= e / cols ? 1.0f : 0.0f;
            }
            break;
        }
        /* the files are little-endian F32; so is every machine this builds for */
        int rc = embed_writer_write(w, fb, k * sizeof *fb, err);
        if (rc) return rc;
        first += k;
    }
    static const unsigned char zeros[GGUF_ALIGN];
    uint64_t pad = pad_to ? (pad_to - t->bytes % pad_to) % pad_to : 0;
    return pad ? embed_writer_write(w, zeros, (size_t)pad, err) : 0;
}

static const struct {
    const char *name;
    uint64_t L, C, H;
} models[] = {
    {"gpt2", 12, 768, 12},
    {"gpt2-medium", 24, 1024, 16},
    {"gpt2-large", 36, 1280, 20},
    {"gpt2-xl", 48, 1600, 25},
};

int cmd_init(int argc, char **argv) {
    const char *out = NULL, *v, *model = NULL, *format = "safetensors";
    uint64_t seed = 0, V = 50257, T = 1024, C = 0, L = 0, H = 0;
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
        } else if ((v = cli_opt(argc, argv, &i, "--model", &bad))) {
            model = v;
            continue;
        } else if ((v = cli_opt(argc, argv, &i, "--format", &bad))) {
            format = v;
            continue;
        } else if ((v = cli_opt(argc, argv, &i, "--seed", &bad))) {
            num = &seed;
        } else if ((v = cli_opt(argc, argv, &i, "--vocab", &bad))) {
            num = &V;
        } else if ((v = cli_opt(argc, argv, &i, "--ctx", &bad))) {
            num = &T;
        } else if ((v = cli_opt(argc, argv, &i, "--channels", &bad))) {
            num = &C;
        } else if ((v = cli_opt(argc, argv, &i, "--layers", &bad))) {
            num = &L;
        } else if ((v = cli_opt(argc, argv, &i, "--heads", &bad))) {
            num = &H;
        }
        if (bad) return CLI_ERR;
        if (!num) return cli_unknown_option("init", a, kind);
        if (cli_parse_u64(v, num) || (num != &seed && !*num))
            return cli_error("init: %s needs a whole number%s, not %s", cli_q(a),
                             num != &seed ? " above 0" : "", cli_q(v));
    }
    if (!out) return cli_error("init: --out FILE is required (see 'gpt2in init --help')");
    int fmt = !strcmp(format, "safetensors") ? 0 : !strcmp(format, "llmc") ? 1
            : !strcmp(format, "gguf") ? 2 : -1;
    if (fmt < 0)
        return cli_error("init: unknown --format %s (safetensors, llmc, gguf)", cli_q(format));
    if (fmt == 1) full = 1; /* an llm.c checkpoint always holds every parameter */
    /* the model: named, or found from --channels, or custom with --layers */
    int mi = -1;
    if (model) {
        for (int k = 0; k < 4; k++)
            if (!strcmp(model, models[k].name)) mi = k;
        if (mi < 0)
            return cli_error("init: unknown --model %s (gpt2, gpt2-medium, gpt2-large, gpt2-xl)",
                             cli_q(model));
        if ((C && C != models[mi].C) || (L && L != models[mi].L) || (H && H != models[mi].H))
            return cli_error("init: --model %s has %llu layers, %llu channels and %llu heads: "
                             "leave out --channels, --layers and --heads, or drop --model",
                             models[mi].name, (unsigned long long)models[mi].L,
                             (unsigned long long)models[mi].C, (unsigned long long)models[mi].H);
    } else if (full && !L) {
        for (int k = 0; k < 4; k++)
            if ((C ? C : 768) == models[k].C) mi = k;
        if (mi < 0)
            return cli_error("init: --full --channels %llu matches no GPT-2 model (768 gpt2, 1024 "
                             "gpt2-medium, 1280 gpt2-large, 1600 gpt2-xl): give --layers (and "
                             "--heads) for a custom model", (unsigned long long)C);
        if (C && H && H != models[mi].H)
            return cli_error("init: --channels %llu is %s's width, which has %llu heads; give "
                             "--layers too for a custom model", (unsigned long long)C,
                             models[mi].name, (unsigned long long)models[mi].H);
        if (C && C != 768)
            fprintf(stderr, "gpt2in: init: --full --channels %llu: writing %s (%llu layers, "
                            "%llu heads)\n", (unsigned long long)C, models[mi].name,
                    (unsigned long long)models[mi].L, (unsigned long long)models[mi].H);
    }
    if (mi >= 0) C = models[mi].C, L = models[mi].L, H = models[mi].H;
    if (!C) C = 768;
    if (!L) L = 12;
    if (!H) H = C % 64 == 0 ? C / 64 : 1;
    if (cli_output_check("init", "--out", out, NULL, 0, 0)) return CLI_ERR;
    /* sizes that keep every byte count far from overflow (and in llm.c's int32s) */
    if (V > (1u << 24) || T > (1u << 16) || C > (1u << 16) || L > 1024 || H > C)
        return cli_error("init: sizes must be 1..16777216 (vocab), 1..65536 (ctx, channels), "
                         "1..1024 (layers), 1..channels (heads)");
    if (C % H)
        return cli_error("init: %llu channels do not split into %llu heads",
                         (unsigned long long)C, (unsigned long long)H);
    dims m = {V, T, C, L, H, (V + 127) / 128 * 128};
    size_t cap = 2 + 13 * (size_t)L + 4 + 16;
    init_tensor *ts = calloc(cap, sizeof *ts);
    float *fb = malloc(CHUNK * sizeof *fb);
    buf hdr = {0};
    if (!ts || !fb) {
        free(ts);
        free(fb);
        return cli_error("init: out of memory");
    }
    size_t n = layout(fmt, full, &m, ts);
    if (fmt == 0) header_st(&hdr, ts, n, !full);
    else if (fmt == 1) header_llmc(&hdr, &m);
    else header_gguf(&hdr, ts, n, &m, mi >= 0 ? models[mi].name : "gpt2in-init");
    if (hdr.oom) {
        free(ts), free(fb), free(hdr.p);
        return cli_error("init: out of memory");
    }
    embed_error err;
    embed_writer *w = cli_writer_open(out, &err);
    int rc = w ? 0 : EMBED_ERR_IO;
    if (!rc) rc = embed_writer_write(w, hdr.p, hdr.n, &err);
    for (size_t i = 0; i < n && !rc; i++)
        rc = write_tensor(w, &ts[i], seed, fb, fmt == 2 ? GGUF_ALIGN : 0, &err);
    if (w) {
        if (rc) cli_writer_abort(w);
        else rc = cli_writer_commit(w, &err);
    }
    free(hdr.p);
    free(ts);
    free(fb);
    if (rc) return cli_error("%s", err.msg);
    return CLI_OK;
}
