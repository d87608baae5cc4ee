/* example_transformer.c - libgpt2in as the front end of a hand-written
 * language model in C, trained for a few steps on one text.
 *
 *   text --bpe_encode--> ids (T)
 *        --embed_forward--> x (T,C) = wte[ids] + wpe[0..T)
 *        --tied head--> logits (T,V) = x wte^T
 *        --> cross-entropy of each next token
 *   backward: dlogits -> dx (T,C) and the head's dense dwte (V,C);
 *             embed_backward_dense adds the lookup's gradient into dwte,
 *             embed_backward_positions gives dwpe;
 *   step:     embed_adam_step (or embed_sgd) on wte and wpe.
 *
 * There is no transformer block between the embedding and the head (a real
 * model puts 12 of them there); what is left is the smallest model in which
 * the embedding table is both the input and the output layer, as in GPT-2.
 * To run in a blink, the vocabulary is cut down to the tokens of the text
 * (V = distinct ids, a slice of GPT-2's 50257 rows; the softmax runs over
 * them only). The table comes from --weights (e.g. made by `gpt2in init`)
 * or starts as GPT-2's initialisation, Normal(0, 0.02).
 *
 * --check compares the analytic gradient with finite differences of the
 * loss (computed in double) on a few entries of wte and wpe.
 *
 * Build: make (build/example_transformer). Run: build/example_transformer */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "embed.h"

static const char *default_text =
    "The cat sat on the mat. The dog sat on the rug. The cat saw the dog, and the dog saw "
    "the cat. The cat and the dog sat on the mat and the rug.";

typedef struct model {
    size_t V, C, T;
    float *wte;          /* (V,C) the reduced token table: row v is GPT-2 token vocab_ids[v] */
    float *wpe;          /* (T,C) positions 0..T-1 */
    uint32_t *ids;       /* (T) the text as reduced ids */
} model;

static embed_table table_of(float *w, size_t rows, size_t cols) {
    embed_table t = {EMBED_F32, rows, cols, (const unsigned char *)w, NULL};
    return t;
}

/* Forward and backward in one pass. Returns the mean next-token loss;
 * x (T,C), logits (T,V) are work buffers; when dwte (V,C) / dwpe (T,C) are
 * not NULL they receive the gradients (overwritten). */
static double forward_backward(const model *m, float *x, float *logits, float *dx, float *dwte,
                               float *dwpe) {
    size_t V = m->V, C = m->C, T = m->T;
    embed_table wte = table_of(m->wte, V, C), wpe = table_of(m->wpe, T, C);
    embed_error err;
    /* x (T,C) = wte[ids] + wpe[0..T) */
    if (embed_forward(x, &wte, &wpe, 0, m->ids, T, &err)) {
        fprintf(stderr, "example_transformer: %s\n", err.msg);
        exit(1);
    }
    /* logits (T,V) = x (T,C) . wte^T (V,C): the tied output head */
    for (size_t t = 0; t < T; t++)
        for (size_t v = 0; v < V; v++) {
            float s = 0;
            for (size_t c = 0; c < C; c++)
                s += x[t * C + c] * m->wte[v * C + c];
            logits[t * V + v] = s;
        }
    /* loss = mean over t < T-1 of -log softmax(logits[t])[ids[t+1]];
     * logits becomes dloss/dlogits = (softmax - onehot) / (T-1) in place */
    double loss = 0;
    size_t N = T - 1;
    for (size_t t = 0; t < T; t++) {
        float *l = logits + t * V;
        if (t == N) {                     /* the last token has no next token */
            memset(l, 0, V * sizeof *l);
            continue;
        }
        float mx = l[0];
        for (size_t v = 1; v < V; v++)
            mx = l[v] > mx ? l[v] : mx;
        double z = 0;
        for (size_t v = 0; v < V; v++)
            z += exp((double)l[v] - mx);
        uint32_t y = m->ids[t + 1];
        loss += log(z) + mx - l[y];
        for (size_t v = 0; v < V; v++)
            l[v] = (float)(exp((double)l[v] - mx) / z / (double)N);
        l[y] -= 1.0f / (float)N;
    }
    loss /= (double)N;
    if (!dwte)
        return loss;
    /* head backward: dx (T,C) = dlogits (T,V) . wte (V,C);
     *                dwte (V,C) = dlogits^T (V,T) . x (T,C)  (dense) */
    for (size_t t = 0; t < T; t++)
        for (size_t c = 0; c < C; c++) {
            float s = 0;
            for (size_t v = 0; v < V; v++)
                s += logits[t * V + v] * m->wte[v * C + c];
            dx[t * C + c] = s;
        }
    for (size_t v = 0; v < V; v++)
        for (size_t c = 0; c < C; c++) {
            float s = 0;
            for (size_t t = 0; t < T; t++)
                s += logits[t * V + v] * x[t * C + c];
            dwte[v * C + c] = s;
        }
    /* embedding backward: the lookup's gradient added to the head's */
    memset(dwpe, 0, T * C * sizeof *dwpe);
    if (embed_backward_dense(dwte, V, dx, m->ids, T, C, &err) ||
        embed_backward_positions(dwpe, T, 0, dx, T, C, &err)) {
        fprintf(stderr, "example_transformer: %s\n", err.msg);
        exit(1);
    }
    return loss;
}

/* The same loss computed entirely in double, for the finite differences. */
static double loss_f64(const model *m) {
    size_t V = m->V, C = m->C, T = m->T;
    double *x = malloc(C * sizeof *x), *l = malloc(V * sizeof *l), loss = 0;
    for (size_t t = 0; t + 1 < T; t++) {
        for (size_t c = 0; c < C; c++)
            x[c] = (double)m->wte[m->ids[t] * C + c] + m->wpe[t * C + c];
        double mx = -INFINITY, z = 0;
        for (size_t v = 0; v < V; v++) {
            double s = 0;
            for (size_t c = 0; c < C; c++)
                s += x[c] * m->wte[v * C + c];
            l[v] = s;
            mx = s > mx ? s : mx;
        }
        for (size_t v = 0; v < V; v++)
            z += exp(l[v] - mx);
        loss += log(z) + mx - l[m->ids[t + 1]];
    }
    free(x);
    free(l);
    return loss / (double)(T - 1);
}

/* Central difference of loss_f64 at w[i]. */
static double numeric_grad(model *m, float *w, size_t i, float eps) {
    float keep = w[i];
    w[i] = keep + eps;
    double up = loss_f64(m);
    w[i] = keep - eps;
    double down = loss_f64(m);
    double h = (double)(keep + eps) - (double)(keep - eps);   /* the step actually taken */
    w[i] = keep;
    return (up - down) / h;
}

/* Checks the largest-magnitude gradient entries of g (n) and a few spread
 * over it; returns the number of mismatches. */
static int check_entries(model *m, const char *name, float *w, const float *g, size_t n,
                         double *worst) {
    size_t pick[8], np = 0;
    for (int k = 0; k < 4; k++) {                 /* the 4 largest |g| */
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < n; i++) {
            int taken = 0;
            for (size_t j = 0; j < np; j++)
                taken |= pick[j] == i;
            if (!taken && (best == SIZE_MAX || fabsf(g[i]) > fabsf(g[best])))
                best = i;
        }
        pick[np++] = best;
    }
    for (int k = 1; k <= 4; k++)                  /* and 4 spread out */
        pick[np++] = (n * (size_t)k) / 5 + 1 < n ? (n * (size_t)k) / 5 + 1 : n - 1;
    int bad = 0;
    for (size_t j = 0; j < np; j++) {
        double num = numeric_grad(m, w, pick[j], 1e-3f);
        double err = fabs(num - g[pick[j]]) / fmax(1e-3, fmax(fabs(num), fabs(g[pick[j]])));
        *worst = fmax(*worst, err);
        int ok = err < 1e-3;
        bad += !ok;
        printf("  d loss / d %s[%zu][%zu]: analytic %+.6e  numeric %+.6e  %s\n", name,
               pick[j] / m->C, pick[j] % m->C, g[pick[j]], num, ok ? "ok" : "MISMATCH");
    }
    return bad;
}

int main(int argc, char **argv) {
    const char *weights = NULL, *text = default_text;
    int steps = 10, check = 0, sgd = 0;
    double lr = -1;
    size_t C_new = 64;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--weights") && i + 1 < argc)
            weights = argv[++i];
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--lr") && i + 1 < argc)
            lr = atof(argv[++i]);
        else if (!strcmp(argv[i], "--channels") && i + 1 < argc)
            C_new = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--sgd"))
            sgd = 1;
        else if (!strcmp(argv[i], "--check"))
            check = 1;
        else if (argv[i][0] != '-')
            text = argv[i];
        else {
            fprintf(stderr,
                    "usage: example_transformer [--weights FILE.safetensors] [--steps N] [--lr LR]\n"
                    "         [--sgd] [--channels C] [--check] [TEXT]\n");
            return 2;
        }
    }
    if (steps < 1 || C_new < 1 || C_new > 4096) {
        fprintf(stderr, "example_transformer: bad --steps or --channels\n");
        return 2;
    }

    /* text -> GPT-2 token ids */
    const bpe *vocab = bpe_gpt2();
    size_t len = strlen(text), T = 0;
    uint32_t *gids = malloc((len + 1) * sizeof *gids);
    bpe_error berr;
    if (bpe_encode(vocab, text, len, BPE_SPECIAL_TEXT, gids, NULL, len + 1, &T, &berr)) {
        fprintf(stderr, "example_transformer: %s\n", berr.msg);
        return 1;
    }
    if (T < 2) {
        fprintf(stderr, "example_transformer: the text needs at least 2 tokens\n");
        return 2;
    }

    /* The reduced vocabulary: the distinct ids of the text, in first-seen order. */
    model m = {0};
    uint32_t *vocab_ids = malloc(T * sizeof *vocab_ids);
    m.ids = malloc(T * sizeof *m.ids);
    for (size_t t = 0; t < T; t++) {
        size_t v = 0;
        while (v < m.V && vocab_ids[v] != gids[t])
            v++;
        if (v == m.V)
            vocab_ids[m.V++] = gids[t];
        m.ids[t] = (uint32_t)v;
    }
    m.T = T;

    /* The rows: from a weights file, or GPT-2's initialisation. */
    embed_file *f = NULL;
    embed_error err;
    if (weights) {
        embed_table wte, wpe;
        if (!(f = embed_open(weights, &err)) || embed_wte(f, NULL, &wte, &err) ||
            embed_wpe(f, NULL, &wpe, &err)) {
            fprintf(stderr, "example_transformer: %s\n", err.msg);
            return 1;
        }
        if (wte.cols != wpe.cols || wpe.rows < T) {
            fprintf(stderr, "example_transformer: %s: wpe (%zu x %zu) does not fit %zu tokens "
                            "of wte's width %zu\n", weights, wpe.rows, wpe.cols, T, wte.cols);
            return 1;
        }
        m.C = wte.cols;
        m.wte = malloc(m.V * m.C * sizeof *m.wte);
        m.wpe = malloc(T * m.C * sizeof *m.wpe);
        for (size_t v = 0; v < m.V; v++) {
            if (vocab_ids[v] >= wte.rows) {
                fprintf(stderr, "example_transformer: token %u outside wte\n", vocab_ids[v]);
                return 1;
            }
            embed_row(&wte, vocab_ids[v], m.wte + v * m.C);
        }
        for (size_t t = 0; t < T; t++)
            embed_row(&wpe, t, m.wpe + t * m.C);
    } else {
        m.C = C_new;
        m.wte = malloc(m.V * m.C * sizeof *m.wte);
        m.wpe = malloc(T * m.C * sizeof *m.wpe);
        embed_init_normal(m.wte, m.V * m.C, 0.02f, 1);
        embed_init_normal(m.wpe, T * m.C, 0.02f, 2);
    }
    size_t V = m.V, C = m.C;
    printf("text: %zu tokens, %zu distinct (the reduced vocabulary); C = %zu; %s\n", T, V, C,
           weights ? weights : "rows ~ Normal(0, 0.02)");

    float *x = malloc(T * C * sizeof *x), *logits = malloc(T * V * sizeof *logits);
    float *dx = malloc(T * C * sizeof *dx), *dwte = malloc(V * C * sizeof *dwte);
    float *dwpe = malloc(T * C * sizeof *dwpe);
    float *mw = calloc(V * C, sizeof *mw), *vw = calloc(V * C, sizeof *vw);
    float *mp = calloc(T * C, sizeof *mp), *vp = calloc(T * C, sizeof *vp);
    uint32_t *all_v = malloc(V * sizeof *all_v), *all_t = malloc(T * sizeof *all_t);
    for (size_t v = 0; v < V; v++)
        all_v[v] = (uint32_t)v;
    for (size_t t = 0; t < T; t++)
        all_t[t] = (uint32_t)t;
    embed_param pw = {m.wte, V, C}, pp = {m.wpe, T, C};
    embed_adam aw, ap;
    if (lr < 0)
        lr = sgd ? 5.0 : 0.01;   /* rows of size 0.02 get tiny gradients: plain SGD needs a big step */
    embed_adam_init(&aw, lr, mw, vw);
    embed_adam_init(&ap, lr, mp, vp);

    int bad = 0;
    double first = 0, last = 0;
    for (int s = 0; s < steps; s++) {
        double loss = forward_backward(&m, x, logits, dx, dwte, dwpe);
        if (s == 0) {
            first = loss;
            printf("step  0  loss %.4f  (uniform guess: ln %zu = %.4f)\n", loss, V, log((double)V));
            if (check) {
                double worst = 0;
                printf("gradient check (finite differences of the loss in double):\n");
                bad += check_entries(&m, "wte", m.wte, dwte, V * C, &worst);
                bad += check_entries(&m, "wpe", m.wpe, dwpe, T * C, &worst);
                printf("gradient check: %s (worst relative error %.2e)\n",
                       bad ? "FAILED" : "ok", worst);
            }
        } else {
            printf("step %2d  loss %.4f\n", s, loss);
        }
        last = loss;
        /* every row of the reduced table is touched (the head is dense) */
        int rc = sgd ? embed_sgd(&pw, all_v, dwte, V, (float)lr, &err) ||
                           embed_sgd(&pp, all_t, dwpe, T, (float)lr, &err)
                     : embed_adam_step(&pw, &aw, all_v, dwte, V, &err) ||
                           embed_adam_step(&pp, &ap, all_t, dwpe, T, &err);
        if (rc) {
            fprintf(stderr, "example_transformer: %s\n", err.msg);
            return 1;
        }
    }
    double final = forward_backward(&m, x, logits, NULL, NULL, NULL);
    printf("step %2d  loss %.4f\n", steps, final);
    printf("loss %.4f -> %.4f after %d %s steps\n", first, final, steps, sgd ? "SGD" : "Adam");
    (void)last;

    free(gids), free(vocab_ids), free(m.ids), free(m.wte), free(m.wpe), free(x), free(logits);
    free(dx), free(dwte), free(dwpe), free(mw), free(vw), free(mp), free(vp), free(all_v);
    free(all_t);
    if (f)
        embed_close(f);
    return bad ? 1 : 0;
}
