/* cmd_train_skipgram.c - `gpt2in train-skipgram`: word2vec's skip-gram with
 * negative sampling, run on GPT-2's own token table, to watch meaning appear
 * in it: tokens used in the same contexts ("cat", "kitten") end up with
 * similar rows; tokens used apart ("cat", "car") do not.
 *
 * The centre vectors are the rows of wte itself and go through the
 * embedding layer's own code: embed_forward gathers them, the gradient comes
 * back through embed_backward_sparse (touched rows only, duplicates summed)
 * and embed_sgd applies it. The context ("output") vectors are a separate
 * table owned here, one row per token that occurs in the corpus, starting at
 * zero as in word2vec. Single-threaded and seeded: the same inputs give the
 * same file, bit for bit. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_words.h"

static const char *usage =
    "usage: gpt2in train-skipgram --weights FILE --corpus TEXT --out NEW.safetensors\n"
    "         [--epochs E] [--window K] [--negatives N] [--lr LR] [--seed S]\n"
    "         [--subsample T] [--batch B] [--pairs a:b,c:d,...] [--as-typed] [--tensor NAME]\n"
    "         [--vocab V]\n"
    "\n"
    "Tunes the token table (wte) of FILE with word2vec skip-gram and negative sampling on\n"
    "the text TEXT: each token's row is pulled towards the context vectors of the tokens\n"
    "within K of it and pushed away from N randomly drawn ones. Writes NEW.safetensors\n"
    "with the tuned wte (same dtype) and every other tensor of FILE unchanged, and prints\n"
    "the cosine similarity of the --pairs words before and after.\n"
    "\n"
    "  --epochs E      passes over the text (default 4)\n"
    "  --window K      context tokens on each side, at most (default 4; word2vec draws 1..K)\n"
    "  --negatives N   negative samples per context token (default 5)\n"
    "  --lr LR         SGD learning rate, decaying linearly to 0 (default 0.05)\n"
    "  --seed S        random seed (default 1); same seed, same output\n"
    "  --subsample T   drop frequent tokens as word2vec does (default 0.001; 0 = off)\n"
    "  --batch B       centre tokens per embedding-layer step (default 32)\n"
    "  --pairs LIST    words to compare (default cat:kitten,dog:puppy,cat:car)\n"
    "  --max-tokens M  train on the first M tokens of TEXT only\n"
    "  --vocab V       tokenize with this vocabulary (tokenizer.json, .tiktoken, GGUF,\n"
    "                  ...) instead of GPT-2's built-in one\n"
    "  --max-bytes N   refuse a TEXT longer than N bytes (default 134217728, 128 MiB):\n"
    "                  TEXT and its tokens are held in memory, about 5 bytes per byte\n"
    "  --              what follows is not an option (train-skipgram takes no operands)\n"
    "\n" CLI_OUTPUT_HELP;

/* ---- small deterministic helpers --------------------------------------- */

static uint64_t rng_next(uint64_t *s) {   /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unif(uint64_t *s) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

#if defined(__GNUC__)
typedef float sg_f4 __attribute__((vector_size(16)));
#endif

/* a . b over C floats; independent partial sums so the loop vectorises. */
static float dot(const float *a, const float *b, size_t C) {
    size_t c = 0;
    float s = 0;
#if defined(__GNUC__)
    sg_f4 s0 = {0}, s1 = {0};
    for (; c + 8 <= C; c += 8) {
        sg_f4 a0, a1, b0, b1;
        memcpy(&a0, a + c, 16), memcpy(&a1, a + c + 4, 16);
        memcpy(&b0, b + c, 16), memcpy(&b1, b + c + 4, 16);
        s0 += a0 * b0;
        s1 += a1 * b1;
    }
    s0 += s1;
    s = (s0[0] + s0[1]) + (s0[2] + s0[3]);
#endif
    for (; c < C; c++)
        s += a[c] * b[c];
    return s;
}

static int in_range(uint64_t v, uint64_t lo, uint64_t hi) { return v >= lo && v <= hi; }

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

typedef struct pair {
    char *a, *b;
} pair;

/* "cat:kitten,dog:puppy" -> pairs (the string is modified). */
static int parse_pairs(char *s, pair *out, int cap, int *n) {
    *n = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        char *colon = strchr(tok, ':');
        if (!colon || colon == tok || !colon[1])
            return cli_error("--pairs: %s is not WORD:WORD", cli_q(tok));
        if (*n == cap)
            return cli_error("--pairs: at most %d pairs", cap);
        *colon = 0;
        out[*n].a = tok;
        out[*n].b = colon + 1;
        (*n)++;
    }
    return CLI_OK;
}

/* Cosine of each pair's vectors in table `tab` into sims. */
static int pair_sims(const words_model *m, const embed_table *tab, const pair *pairs, int n,
                     int as_typed, int noisy, float *sims) {
    size_t C = tab->cols;
    float *a = malloc(2 * C * sizeof *a);
    if (!a)
        return cli_error("out of memory");
    words_model view = *m;
    view.wte = *tab;
    for (int i = 0; i < n; i++) {
        /* notes about multi-token words only once, on the first pass */
        uint32_t ids[64];
        size_t k;
        if (noisy) {
            if (words_vector(&view, pairs[i].a, as_typed, a) ||
                words_vector(&view, pairs[i].b, as_typed, a + C)) {
                free(a);
                return CLI_ERR;
            }
        } else {
            if (words_ids(&view, pairs[i].a, as_typed, ids, 64, &k))
                return free(a), CLI_ERR;
            words_mean_rows(tab, ids, k, a);
            if (words_ids(&view, pairs[i].b, as_typed, ids, 64, &k))
                return free(a), CLI_ERR;
            words_mean_rows(tab, ids, k, a + C);
        }
        sims[i] = embed_cosine(a, a + C, C);
    }
    free(a);
    return CLI_OK;
}

/* The whole of path, at most max bytes: an endless stream (/dev/zero) is
 * an error once it passes max, with max + 1 bytes allocated at most. */
static char *read_file(const char *path, size_t max, size_t *len) {
    FILE *f = cli_open_in(path);
    if (!f)
        return NULL;
    size_t cap = max < (1 << 16) ? max + 1 : 1 << 16, n = 0;
    char *buf = malloc(cap);
    char q[300];
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) {
            if (ferror(f)) {
                cli_error("%s: read error: %s", cli_name(path, q, sizeof q), strerror(errno));
                free(buf);
                buf = NULL;
            }
            break;
        }
        if (n > max) {
            cli_error("%s: longer than %zu bytes (--max-bytes; the text is held in memory)",
                      cli_name(path, q, sizeof q), max);
            free(buf);
            buf = NULL;
            break;
        }
        cap = cap > max / 2 ? max + 1 : cap * 2;
        char *nb = realloc(buf, cap);
        if (!nb)
            free(buf);
        buf = nb;
    }
    if (f != stdin)
        fclose(f);
    if (!buf)
        return NULL;
    *len = n;
    return buf;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

int cmd_train_skipgram(int argc, char **argv) {
    words_opts o = {0};
    const char *corpus = NULL, *out = NULL, *pairs_arg = "cat:kitten,dog:puppy,cat:car";
    uint64_t epochs = 4, window = 4, negatives = 5, seed = 1, batch = 32, max_tokens = 0;
    uint64_t max_bytes = 128u << 20;
    double lr0 = 0.05, subsample = 1e-3;
    int operands = 0;
    for (int i = 1; i < argc; i++) {
        int bad = 0;
        const char *v;
        int kind = words_arg(argc, argv, &i, &operands, usage, "train-skipgram", &o);
        if (kind < 0 || kind == CLI_ARG_HELP)
            return kind < 0 ? CLI_ERR : CLI_OK;
        if (kind == CLI_ARG_SKIP)
            continue;
#define U64_OPT(NAME, VAR, MIN, MAX)                                                     \
    if ((v = cli_opt(argc, argv, &i, NAME, &bad))) {                                     \
        if (cli_parse_u64(v, &VAR) || !in_range(VAR, MIN, MAX))                        \
            return cli_error(NAME " wants a whole number from %llu to %llu, not %s",     \
                             (unsigned long long)(MIN), (unsigned long long)(MAX), cli_q(v)); \
        continue;                                                                        \
    }                                                                                    \
    if (bad)                                                                             \
        return CLI_ERR;
        U64_OPT("--epochs", epochs, 1, 10000)
        U64_OPT("--window", window, 1, 100)
        U64_OPT("--negatives", negatives, 0, 100)
        U64_OPT("--seed", seed, 0, UINT64_MAX)
        U64_OPT("--batch", batch, 1, 65536)
        U64_OPT("--max-tokens", max_tokens, 1, UINT64_MAX)
        U64_OPT("--max-bytes", max_bytes, 1, SIZE_MAX / 8)
#undef U64_OPT
        if ((v = cli_opt(argc, argv, &i, "--lr", &bad))) {
            if (cli_parse_double(v, &lr0) || !(lr0 > 0) || lr0 > 100)
                return cli_error("--lr wants a number above 0, not %s", cli_q(v));
            continue;
        }
        if (bad)
            return CLI_ERR;
        if ((v = cli_opt(argc, argv, &i, "--subsample", &bad))) {
            if (cli_parse_double(v, &subsample) || !(subsample >= 0) || subsample > 1)
                return cli_error("--subsample wants a number from 0 to 1, not %s", cli_q(v));
            continue;
        }
        if (bad)
            return CLI_ERR;
        if ((v = cli_opt(argc, argv, &i, "--corpus", &bad))) {
            corpus = v;
            continue;
        }
        if (bad)
            return CLI_ERR;
        if ((v = cli_opt(argc, argv, &i, "--out", &bad))) {
            out = v;
            continue;
        }
        if (bad)
            return CLI_ERR;
        if ((v = cli_opt(argc, argv, &i, "--pairs", &bad))) {
            pairs_arg = v;
            continue;
        }
        if (bad)
            return CLI_ERR;
        return cli_unknown_option("train-skipgram", argv[i], kind);
    }
    if (!corpus)
        return cli_error("train-skipgram: --corpus TEXT is required");
    if (!out)
        return cli_error("train-skipgram: --out NEW.safetensors is required");
    const char *inputs[] = {o.weights, corpus};
    if (cli_output_check("train-skipgram", "--out", out, inputs, 2, 0))
        return CLI_ERR;

    pair pairs[32];
    int n_pairs = 0;
    char *pairs_buf = strdup(pairs_arg);
    if (!pairs_buf || parse_pairs(pairs_buf, pairs, 32, &n_pairs)) {
        free(pairs_buf);
        return CLI_ERR;
    }

    int rc = CLI_ERR;
    words_model m = {0};
    char *text = NULL;
    uint32_t *ids = NULL, *kept = NULL, *compact = NULL, *rows = NULL, *scratch = NULL;
    uint32_t *id_of = NULL, *bctx = NULL;
    uint64_t *count = NULL;
    double *cdf = NULL;
    float *w = NULL, *ctx = NULL, *x = NULL, *dx = NULL, *grad = NULL;
    void *conv = NULL;
    float before[32], after[32];
    embed_error err;

    if (words_open(&m, &o))
        goto done;
    size_t V = m.wte.rows, C = m.wte.cols;
    /* what the save at the end would refuse, refused before the training */
    embed_kind kind = embed_file_kind(m.file);
    if (kind == EMBED_KIND_LLMC_MODEL || kind == EMBED_KIND_NPY) {
        cli_error("train-skipgram: %s is %s, which has no place for the run's settings: start from a "
                  "safetensors or GGUF copy of it (gpt2in init, or your converter)", cli_n(o.weights),
                  embed_kind_desc(kind));
        goto done;
    }
    if (m.wte.dtype == EMBED_Q8_0) {
        cli_error("train-skipgram: %s: the token table is Q8_0 (quantised) and gpt2in does not "
                  "re-quantise: convert the file's embeddings to F16 or F32 first", cli_n(o.weights));
        goto done;
    }

    /* ---- the text as tokens ---- */
    size_t len = 0, T = 0;
    if (!(text = read_file(corpus, (size_t)max_bytes, &len)))
        goto done;
    ids = malloc((len + 1) * sizeof *ids);
    if (!ids) {
        cli_error("out of memory");
        goto done;
    }
    bpe_error berr;
    if (bpe_encode(m.vocab, text, len, BPE_SPECIAL_TEXT, ids, NULL, len + 1, &T, &berr)) {
        cli_error("%s: %s", cli_n(corpus), berr.msg);
        goto done;
    }
    if (max_tokens && T > max_tokens)
        T = max_tokens;
    if (T < 2) {
        cli_error("%s: %zu token%s; skip-gram needs a text of at least two", cli_n(corpus), T,
                  T == 1 ? "" : "s");
        goto done;
    }
    for (size_t t = 0; t < T; t++)
        if (ids[t] >= V) {
            cli_error("%s: token %u (at token %zu) is outside the table of %zu rows", cli_n(corpus),
                      ids[t], t, V);
            goto done;
        }

    /* Only tokens that occur get a context vector: map id -> compact index. */
    compact = malloc(V * sizeof *compact);
    id_of = malloc(T * sizeof *id_of);
    count = calloc(T, sizeof *count);
    if (!compact || !id_of || !count) {
        cli_error("out of memory");
        goto done;
    }
    memset(compact, 0xff, V * sizeof *compact);
    size_t U = 0;
    for (size_t t = 0; t < T; t++) {
        if (compact[ids[t]] == UINT32_MAX) {
            compact[ids[t]] = (uint32_t)U;
            id_of[U++] = ids[t];
        }
        count[compact[ids[t]]]++;
    }
    /* Negatives are drawn from the unigram distribution to the power 3/4
     * (word2vec's choice: rare tokens a little more often than their share). */
    cdf = malloc(U * sizeof *cdf);
    ctx = calloc(U * C, sizeof *ctx);            /* context vectors (U,C), zero */
    w = malloc(V * C * sizeof *w);               /* wte as F32 (V,C), trained */
    kept = malloc(T * sizeof *kept);
    x = malloc(batch * C * sizeof *x);           /* centre vectors (B,C) */
    dx = malloc(batch * C * sizeof *dx);         /* their gradient (B,C) */
    grad = malloc(batch * C * sizeof *grad);     /* summed per distinct row (B,C) */
    rows = malloc(batch * sizeof *rows);
    scratch = malloc(batch * sizeof *scratch);
    bctx = malloc(batch * sizeof *bctx);
    if (!cdf || !ctx || !w || !kept || !x || !dx || !grad || !rows || !scratch || !bctx) {
        cli_error("out of memory (the table needs %zu MB as F32)", V * C * 4 >> 20);
        goto done;
    }
    double acc = 0;
    for (size_t u = 0; u < U; u++)
        cdf[u] = (acc += pow((double)count[u], 0.75));
    for (size_t u = 0; u < U; u++)
        cdf[u] /= acc;
    for (size_t r = 0; r < V; r++)
        embed_row(&m.wte, r, w + r * C);
    embed_param param = {w, V, C};
    embed_table wtab = {EMBED_F32, V, C, (const unsigned char *)w, NULL};

    if (pair_sims(&m, &wtab, pairs, n_pairs, o.as_typed, 1, before))
        goto done;

    fprintf(stderr, "train-skipgram: %zu tokens (%zu distinct), table %zu x %zu, %llu epoch%s, "
                    "window %llu, %llu negatives, lr %g\n",
            T, U, V, C, (unsigned long long)epochs, epochs == 1 ? "" : "s",
            (unsigned long long)window, (unsigned long long)negatives, lr0);

    uint64_t rng = seed;
    int tty = isatty(2);
    double t_start = now_s(), t_last = 0;
    /* lr decays linearly over the planned number of centre tokens (before
     * subsampling, as word2vec counts them). */
    double total = (double)epochs * (double)T, seen = 0;
    for (uint64_t ep = 0; ep < epochs; ep++) {
        /* Subsampling: a token of frequency f is kept with probability
         * (sqrt(f/s) + 1) s/f, so "the" and "." stop dominating. */
        size_t K = 0;
        for (size_t t = 0; t < T; t++) {
            double f = (double)count[compact[ids[t]]] / (double)T;
            double keep = subsample > 0 ? (sqrt(f / subsample) + 1) * subsample / f : 1;
            if (keep >= 1 || rng_unif(&rng) < keep)
                kept[K++] = ids[t];
        }
        double loss = 0;
        size_t n_loss = 0;
        for (size_t b0 = 0; b0 < K; b0 += batch) {
            size_t B = K - b0 < batch ? K - b0 : batch;
            float lr = (float)(lr0 * (1.0 - seen / total));
            if (lr < lr0 * 1e-4)
                lr = (float)(lr0 * 1e-4);
            /* forward: x (B,C) = wte[kept[b0..b0+B)] */
            if (embed_forward(x, &wtab, NULL, 0, kept + b0, B, &err)) {
                cli_error("%s", err.msg);
                goto done;
            }
            memset(dx, 0, B * C * sizeof *dx);
            for (size_t bt = 0; bt < B; bt++) {
                size_t t = b0 + bt;
                const float *xt = x + bt * C;
                float *dxt = dx + bt * C;
                size_t reach = 1 + (size_t)(rng_next(&rng) % window);  /* 1..K as word2vec */
                size_t lo = t >= reach ? t - reach : 0, hi = t + reach < K ? t + reach : K - 1;
                for (size_t j = lo; j <= hi; j++) {
                    if (j == t)
                        continue;
                    uint32_t target = compact[kept[j]];
                    for (uint64_t s = 0; s <= negatives; s++) {
                        uint32_t u = target;
                        float label = 1;
                        if (s > 0) {                 /* a negative: any token but the target */
                            double r = rng_unif(&rng);
                            size_t lo2 = 0, hi2 = U - 1;
                            while (lo2 < hi2) {
                                size_t mid = (lo2 + hi2) / 2;
                                if (cdf[mid] > r)
                                    hi2 = mid;
                                else
                                    lo2 = mid + 1;
                            }
                            u = (uint32_t)lo2;
                            if (u == target)
                                continue;
                            label = 0;
                        }
                        float *cu = ctx + (size_t)u * C;
                        double p = sigmoid(dot(xt, cu, C));
                        loss -= log(label ? p + 1e-12 : 1 - p + 1e-12);
                        n_loss++;
                        /* dL/dlogit = p - label: into the centre's gradient
                         * (before the context row moves), then the context
                         * row's own SGD step. */
                        float g = (float)(p - label);
                        for (size_t c = 0; c < C; c++) {
                            dxt[c] += g * cu[c];
                            cu[c] -= lr * g * xt[c];
                        }
                    }
                }
            }
            /* backward through the embedding layer: touched rows only */
            size_t n_rows = 0;
            if (embed_backward_sparse(dx, kept + b0, B, C, V, rows, grad, &n_rows, scratch, &err) ||
                embed_sgd(&param, rows, grad, n_rows, lr, &err)) {
                cli_error("%s", err.msg);
                goto done;
            }
            seen += (double)B * (double)T / (double)K;
            double tn = now_s();
            if (tty && tn - t_last > 0.2) {
                t_last = tn;
                fprintf(stderr, "\repoch %llu/%llu  %3.0f%%  loss %.4f  %.0f tokens/s   ",
                        (unsigned long long)ep + 1, (unsigned long long)epochs,
                        100.0 * seen / total, n_loss ? loss / (double)n_loss : 0.0,
                        seen / (tn - t_start + 1e-9));
            }
        }
        double tn = now_s();
        fprintf(stderr, "%sepoch %llu/%llu  loss %.4f  %.0f tokens/s  %.1f s%s\n", tty ? "\r" : "",
                (unsigned long long)ep + 1, (unsigned long long)epochs,
                n_loss ? loss / (double)n_loss : 0.0, seen / (tn - t_start + 1e-9), tn - t_start,
                tty ? "          " : "");
    }

    if (pair_sims(&m, &wtab, pairs, n_pairs, o.as_typed, 0, after))
        goto done;
    printf("cosine similarity      before    after\n");
    for (int i = 0; i < n_pairs; i++) {
        char qa[128], qb[128], line[300];
        words_quote_buf(qa, sizeof qa, pairs[i].a, strlen(pairs[i].a));
        words_quote_buf(qb, sizeof qb, pairs[i].b, strlen(pairs[i].b));
        snprintf(line, sizeof line, "%s ~ %s", qa, qb);
        printf("%-20s  %8.4f  %8.4f\n", line, before[i], after[i]);
    }

    /* Save in the table's own dtype; every other tensor is kept as is. */
    const void *data = w;
    if (m.wte.dtype != EMBED_F32) {
        uint16_t *h = malloc(V * C * sizeof *h);
        if (!h) {
            cli_error("out of memory");
            goto done;
        }
        for (size_t i = 0; i < V * C; i++)
            h[i] = m.wte.dtype == EMBED_F16 ? embed_f32_to_f16(w[i]) : embed_f32_to_bf16(w[i]);
        data = conv = h;
    }
    embed_out_tensor repl = {m.tensor_name, m.wte.dtype, 2, {V, C}, data};
    char how[256];
    snprintf(how, sizeof how,
             "corpus=%s epochs=%llu window=%llu negatives=%llu lr=%g seed=%llu subsample=%g "
             "batch=%llu tokens=%zu",
             corpus, (unsigned long long)epochs, (unsigned long long)window,
             (unsigned long long)negatives, lr0, (unsigned long long)seed, subsample,
             (unsigned long long)batch, T);
    const char *meta[] = {"gpt2in.train-skipgram", how};
    if (cli_save(out, m.file, &repl, 1, meta, 1, &err)) {
        cli_error("%s", err.msg);
        goto done;
    }
    fprintf(stderr, "train-skipgram: wrote %s\n", out);
    rc = fflush(stdout) ? cli_write_error(NULL) : CLI_OK;
done:
    free(pairs_buf);
    free(text);
    free(ids);
    free(kept);
    free(compact);
    free(id_of);
    free(count);
    free(cdf);
    free(w);
    free(ctx);
    free(x);
    free(dx);
    free(grad);
    free(rows);
    free(scratch);
    free(bctx);
    free(conv);
    words_close(&m);
    return rc;
}
