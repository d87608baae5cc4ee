/* test_embed.c - the embedding math against NumPy/PyTorch fixtures
 * (tests/fixtures/embed/, written by tests/gen_embed_refs.py).
 *
 * Bit-exact: forward (wte[ids] + wpe[pos], F32/F16/BF16 tables), sparse and
 * dense backward (torch's dense backward sums in token order, as we do), the
 * position gradient, SGD (torch's dense-gradient SGD), and SparseAdam given
 * torch's coalesced gradient. Within a tolerance: the sparse gradient against
 * torch's coalesce() (which sums repeats in its own order), SGD against
 * torch's token-by-token sparse SGD, and SparseAdam run end to end from
 * dout. Tables are opened from an image placed at an odd address, so every
 * row read is unaligned (UBSan checks it in the sanitized build). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embed.h"
#include "check.h"

#define DIR "tests/fixtures/embed/"

static void die(const char *what, const char *msg) {
    fprintf(stderr, "test_embed: %s: %s\n", what, msg);
    exit(1);
}

static embed_npy load(const char *cs, const char *name) {
    char path[256];
    snprintf(path, sizeof path, DIR "%s/%s.npy", cs, name);
    embed_npy a;
    embed_error err;
    if (embed_npy_read(path, &a, &err))
        die(path, err.msg);
    return a;
}

/* The value of `key` in meta.txt, or NULL. */
static const char *meta(const char *cs, const char *key) {
    static char val[128];
    char path[256], k[64];
    snprintf(path, sizeof path, DIR "%s/meta.txt", cs);
    FILE *f = fopen(path, "r");
    if (!f)
        die(path, "cannot open");
    const char *r = NULL;
    while (fscanf(f, "%63s %127s", k, val) == 2)
        if (!strcmp(k, key)) {
            r = val;
            break;
        }
    fclose(f);
    return r;
}

/* model.safetensors copied to an odd address and opened from memory. */
typedef struct {
    unsigned char *buf;
    embed_file *f;
} model;

static model open_model(const char *cs) {
    char path[256];
    snprintf(path, sizeof path, DIR "%s/model.safetensors", cs);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        die(path, "cannot open");
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    model m;
    m.buf = malloc((size_t)len + 1);
    if (!m.buf || fread(m.buf + 1, 1, (size_t)len, fp) != (size_t)len)
        die(path, "cannot read");
    fclose(fp);
    embed_error err;
    m.f = embed_open_mem(m.buf + 1, (size_t)len, path, &err);
    if (!m.f)
        die(path, err.msg);
    return m;
}

static void close_model(model *m) {
    embed_close(m->f);
    free(m->buf);
}

/* Bit-for-bit equality (so -0.0 vs 0.0 and NaN payloads count too). */
static int same(const char *what, const float *got, const float *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], 4)) {
            fprintf(stderr, "  %s: element %zu is %.9g, expected %.9g (%zu elements)\n", what, i,
                    got[i], want[i], n);
            return 0;
        }
    return 1;
}

/* numpy.allclose: |a-b| <= atol + rtol*|b|. */
static int close_to(const char *what, const float *got, const float *want, size_t n,
                    double atol, double rtol) {
    double worst = 0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (d > worst)
            worst = d;
        if (!(d <= atol + rtol * fabs((double)want[i]))) {
            if (ok)
                fprintf(stderr, "  %s: element %zu is %.9g, expected %.9g\n", what, i, got[i],
                        want[i]);
            ok = 0;
        }
    }
    if (getenv("TEST_EMBED_VERBOSE"))
        fprintf(stderr, "  %s: max abs diff %.3g over %zu\n", what, worst, n);
    return ok;
}

static float *table_copy(const embed_table *t) {
    float *w = malloc(t->rows * t->cols * sizeof *w + 1);
    for (size_t r = 0; r < t->rows; r++)
        embed_row(t, r, w + r * t->cols);
    return w;
}

/* ---- F32 cases: forward, backward, SGD, errors --------------------------- */

static void table_case(const char *cs) {
    model m = open_model(cs);
    embed_error err;
    embed_table wte, wpe, wte2;
    CHECK(embed_wte(m.f, NULL, &wte, &err) == 0, "%s: %s", cs, err.msg);
    CHECK(embed_wpe(m.f, NULL, &wpe, &err) == 0, "%s: %s", cs, err.msg);
    CHECK(embed_wte(m.f, meta(cs, "wte"), &wte2, &err) == 0 && wte2.data == wte.data, "%s", cs);
    CHECK(wte.dtype == EMBED_F32, "%s", cs);
    size_t V = wte.rows, C = wte.cols, maxT = wpe.rows;
    size_t pos0 = (size_t)atol(meta(cs, "pos0"));
    float lr = (float)atof(meta(cs, "lr"));

    embed_npy ids = load(cs, "ids"), out = load(cs, "out"), out_pos = load(cs, "out_pos");
    CHECK(ids.dtype == EMBED_U32, "%s: ids dtype", cs);
    size_t T = ids.count;
    const uint32_t *id = ids.data;
    float *x = malloc(T * C * sizeof *x + 1);

    CHECK(embed_forward(x, &wte, NULL, 0, id, T, &err) == 0, "%s: %s", cs, err.msg);
    CHECK(same("forward", x, out.data, T * C), "%s", cs);
    CHECK(embed_forward(x, &wte, &wpe, pos0, id, T, &err) == 0, "%s: %s", cs, err.msg);
    CHECK(same("forward+wpe", x, out_pos.data, T * C), "%s", cs);

    /* embed_row against the forward of one id */
    if (T) {
        float *r = malloc(C * sizeof *r);
        embed_row(&wte, id[T - 1], r);
        CHECK(same("embed_row", r, (float *)out.data + (T - 1) * C, C), "%s", cs);
        free(r);
    }

    /* sparse backward */
    embed_npy dout = load(cs, "dout"), grows = load(cs, "grad_rows");
    embed_npy dense_rows = load(cs, "dense_rows"), coal = load(cs, "coal_vals");
    uint32_t *rows = malloc(T * sizeof *rows + 1), *scratch = malloc(T * sizeof *scratch + 1);
    float *grad = malloc(T * C * sizeof *grad + 1);
    size_t n = 99;
    CHECK(embed_backward_sparse(dout.data, id, T, C, V, rows, grad, &n, scratch, &err) == 0,
          "%s: %s", cs, err.msg);
    CHECK(n == grows.count, "%s: %zu rows, expected %llu", cs, n,
          (unsigned long long)grows.count);
    CHECK(n == grows.count && !memcmp(rows, grows.data, n * 4), "%s: row ids differ", cs);
    if (n == grows.count) {
        CHECK(same("sparse grad vs dense torch", grad, dense_rows.data, n * C), "%s", cs);
        CHECK(close_to("sparse grad vs torch coalesce", grad, coal.data, n * C, 1e-6, 1e-5),
              "%s", cs);
    }

    /* dense backward: touched rows equal, the rest stays zero */
    float *dw = calloc(V * C + 1, sizeof *dw);
    CHECK(embed_backward_dense(dw, V, dout.data, id, T, C, &err) == 0, "%s: %s", cs, err.msg);
    float *pick = malloc(n * C * sizeof *pick + 1);
    for (size_t i = 0; i < n && n == grows.count; i++) {
        memcpy(pick + i * C, dw + (size_t)rows[i] * C, C * sizeof *pick);
        memset(dw + (size_t)rows[i] * C, 0, C * sizeof *dw);
    }
    CHECK(same("dense grad", pick, dense_rows.data, n * C), "%s", cs);
    size_t nz = 0;
    for (size_t i = 0; i < V * C; i++)
        nz += dw[i] != 0;
    CHECK(nz == 0, "%s: dense backward wrote %zu untouched values", cs, nz);

    /* position gradient */
    embed_npy dwpe = load(cs, "dwpe");
    float *dp = calloc(maxT * C + 1, sizeof *dp);
    CHECK(embed_backward_positions(dp, maxT, pos0, dout.data, T, C, &err) == 0, "%s: %s", cs,
          err.msg);
    CHECK(same("dwpe", dp, dwpe.data, maxT * C), "%s", cs);

    /* SGD on the summed rows: bit-exact with torch's dense SGD */
    embed_npy sgd = load(cs, "sgd_rows"), sgd_sparse = load(cs, "sgd_sparse_rows");
    float *w = table_copy(&wte), *w0 = table_copy(&wte);
    embed_param p = {w, V, C};
    CHECK(embed_sgd(&p, rows, grad, n, lr, &err) == 0, "%s: %s", cs, err.msg);
    for (size_t i = 0; i < n; i++)
        memcpy(pick + i * C, w + (size_t)rows[i] * C, C * sizeof *pick);
    CHECK(same("sgd", pick, sgd.data, n * C), "%s", cs);
    CHECK(close_to("sgd vs sparse torch sgd", pick, sgd_sparse.data, n * C, 1e-6, 1e-5), "%s",
          cs);
    for (size_t i = 0; i < n; i++)
        memcpy(w + (size_t)rows[i] * C, w0 + (size_t)rows[i] * C, C * sizeof *w);
    CHECK(same("sgd untouched rows", w, w0, V * C), "%s", cs);
    /* fused backward + SGD: the same bits, untouched rows untouched */
    uint32_t *scr2 = malloc((2 * T + 1) * sizeof *scr2);
    CHECK(embed_backward_sgd(&p, dout.data, id, T, lr, scr2, &err) == 0, "%s: %s", cs, err.msg);
    for (size_t i = 0; i < n; i++) {
        memcpy(pick + i * C, w + (size_t)rows[i] * C, C * sizeof *pick);
        memcpy(w + (size_t)rows[i] * C, w0 + (size_t)rows[i] * C, C * sizeof *w);
    }
    CHECK(same("fused backward+sgd", pick, sgd.data, n * C), "%s", cs);
    CHECK(same("fused sgd untouched rows", w, w0, V * C), "%s", cs);
    free(scr2);

    /* errors: nothing written, message names index and value */
    if (T) {
        uint32_t *bad = malloc(T * sizeof *bad);
        memcpy(bad, id, T * sizeof *bad);
        bad[T - 1] = (uint32_t)V;
        for (size_t i = 0; i < T * C; i++)
            x[i] = 7.0f;
        CHECK(embed_forward(x, &wte, NULL, 0, bad, T, &err) == EMBED_ERR_ID, "%s", cs);
        char want[64];
        snprintf(want, sizeof want, "token id %zu at index %zu", V, T - 1);
        CHECK(strstr(err.msg, want) != NULL, "%s: message '%s'", cs, err.msg);
        size_t touched = 0;
        for (size_t i = 0; i < T * C; i++)
            touched += x[i] != 7.0f;
        CHECK(touched == 0, "%s: failed forward wrote %zu values", cs, touched);
        CHECK(embed_backward_sparse(dout.data, bad, T, C, V, rows, grad, &n, scratch, &err) ==
                  EMBED_ERR_ID && n == 0, "%s", cs);
        CHECK(embed_backward_dense(dw, V, dout.data, bad, T, C, &err) == EMBED_ERR_ID, "%s", cs);
        CHECK(embed_forward(x, &wte, &wpe, maxT - T + 1, id, T, &err) == EMBED_ERR_ID, "%s", cs);
        snprintf(want, sizeof want, "position %zu (token index %zu)", maxT, T - 1);
        CHECK(strstr(err.msg, want) != NULL, "%s: message '%s'", cs, err.msg);
        CHECK(embed_backward_positions(dp, maxT, maxT - T + 1, dout.data, T, C, &err) ==
                  EMBED_ERR_ID, "%s", cs);
        uint32_t r = (uint32_t)V;
        CHECK(embed_sgd(&p, &r, grad, 1, lr, &err) == EMBED_ERR_ID, "%s", cs);
        uint32_t *scr2 = malloc(2 * T * sizeof *scr2);
        memcpy(w, w0, V * C * sizeof *w);
        CHECK(embed_backward_sgd(&p, dout.data, bad, T, lr, scr2, &err) == EMBED_ERR_ID, "%s", cs);
        CHECK(same("failed fused sgd wrote nothing", w, w0, V * C), "%s", cs);
        free(scr2);
        free(bad);
    }

    free(x), free(rows), free(scratch), free(grad), free(dw), free(pick), free(dp), free(w),
        free(w0);
    embed_npy *all[] = {&ids, &out, &out_pos, &dout, &grows, &dense_rows, &coal, &dwpe, &sgd,
                        &sgd_sparse};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        embed_npy_free(all[i]);
    close_model(&m);
}

/* ---- F16 / BF16 tables --------------------------------------------------- */

static void half_case(void) {
    const char *cs = "half";
    model m = open_model(cs);
    embed_error err;
    embed_table h, b;
    CHECK(embed_wte(m.f, NULL, &h, &err) == 0 && h.dtype == EMBED_F16, "%s", err.msg);
    CHECK(embed_wte(m.f, "wte_bf16.weight", &b, &err) == 0 && b.dtype == EMBED_BF16, "%s",
          err.msg);
    embed_table wpe, wpe_h, wpe_b;
    CHECK(embed_wpe(m.f, NULL, &wpe, &err) == 0, "%s", err.msg);
    CHECK(embed_wpe(m.f, "wpe_f16.weight", &wpe_h, &err) == 0 && wpe_h.dtype == EMBED_F16, "%s",
          err.msg);
    CHECK(embed_wpe(m.f, "wpe_bf16.weight", &wpe_b, &err) == 0 && wpe_b.dtype == EMBED_BF16, "%s",
          err.msg);
    size_t pos0 = (size_t)atol(meta(cs, "pos0")), C = h.cols;
    embed_npy ids = load(cs, "ids");
    size_t T = ids.count;
    float *x = malloc(T * C * sizeof *x);
    struct { const char *ref; const embed_table *wte, *wpe; } runs[] = {
        {"out", &h, NULL},
        {"out_pos", &h, &wpe},
        {"out_bf16", &b, NULL},
        {"out_bf16_pos", &b, &wpe},
        {"out_pos_f16", &h, &wpe_h},
        {"out_bf16_pos_bf16", &b, &wpe_b},
    };
    for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
        embed_npy ref = load(cs, runs[k].ref);
        CHECK(embed_forward(x, runs[k].wte, runs[k].wpe, pos0, ids.data, T, &err) == 0, "%s",
              err.msg);
        CHECK(same(runs[k].ref, x, ref.data, T * C), "half %s", runs[k].ref);
        embed_npy_free(&ref);
    }
    free(x);
    embed_npy_free(&ids);
    close_model(&m);
}

/* ---- SparseAdam ---------------------------------------------------------- */

static void adam_case(void) {
    const char *cs = "adam";
    model m = open_model(cs);
    embed_error err;
    embed_table wte;
    CHECK(embed_wte(m.f, NULL, &wte, &err) == 0, "%s", err.msg);
    size_t V = wte.rows, C = wte.cols;
    double lr = atof(meta(cs, "lr"));
    int steps = atoi(meta(cs, "steps"));
    /* Run 0 steps with torch's own coalesced gradients (bit-exact target);
     * run 1 computes them from ids/dout (torch sums repeats in another
     * order, so within a tolerance). */
    for (int run = 0; run < 2; run++) {
        float *w = table_copy(&wte), *mm = calloc(V * C, 4), *vv = calloc(V * C, 4);
        embed_param p = {w, V, C};
        embed_adam a;
        embed_adam_init(&a, lr, mm, vv);
        CHECK(a.beta1 == 0.9 && a.beta2 == 0.999 && a.eps == 1e-8 && a.step == 0, "defaults");
        for (int k = 1; k <= steps; k++) {
            char nm[32];
            snprintf(nm, sizeof nm, "crows%d", k);
            embed_npy cr = load(cs, nm);
            snprintf(nm, sizeof nm, "cvals%d", k);
            embed_npy cv = load(cs, nm);
            snprintf(nm, sizeof nm, "ids%d", k);
            embed_npy ids = load(cs, nm);
            snprintf(nm, sizeof nm, "dout%d", k);
            embed_npy dout = load(cs, nm);
            size_t T = ids.count, n = cr.count;
            uint32_t *rows = malloc(T * 4), *scr = malloc(T * 4);
            float *g = malloc(T * C * 4);
            if (run == 0) {
                memcpy(rows, cr.data, n * 4);
                memcpy(g, cv.data, n * C * 4);
            } else {
                CHECK(embed_backward_sparse(dout.data, ids.data, T, C, V, rows, g, &n, scr,
                                            &err) == 0, "%s", err.msg);
                CHECK(n == cr.count && !memcmp(rows, cr.data, n * 4), "adam step %d rows", k);
            }
            CHECK(embed_adam_step(&p, &a, rows, g, n, &err) == 0, "%s", err.msg);
            CHECK(a.step == k, "step count");
            if (k == 1 || k == steps) {
                const char *names[3] = {"w", "m", "v"};
                float *got[3] = {w, mm, vv};
                for (int q = 0; q < 3; q++) {
                    snprintf(nm, sizeof nm, "%s%d", names[q], k);
                    embed_npy ref = load(cs, nm);
                    if (run == 0)
                        CHECK(same(nm, got[q], ref.data, V * C), "adam (torch gradients) %s",
                              nm);
                    else
                        CHECK(close_to(nm, got[q], ref.data, V * C, 1e-6, 1e-5),
                              "adam (own gradients) %s", nm);
                    embed_npy_free(&ref);
                }
            }
            free(rows), free(scr), free(g);
            embed_npy_free(&cr), embed_npy_free(&cv), embed_npy_free(&ids),
                embed_npy_free(&dout);
        }
        free(w), free(mm), free(vv);
    }
    close_model(&m);
}

/* ---- table lookup errors and a large sort -------------------------------- */

static void lookup_errors(void) {
    embed_error err;
    err.msg[0] = 0;
    CHECK(embed_open(NULL, &err) == NULL && strstr(err.msg, "NULL path"), "embed_open(NULL): '%s'", err.msg);
    embed_table t;
    unsigned char data[64] = {0};
    embed_tensor bad = {"wte.weight", EMBED_I32, 2, {4, 4}, 0, 64, data};
    CHECK(embed_table_from_tensor(&bad, &t, &err) == EMBED_ERR_DTYPE, "I32 accepted");
    CHECK(strstr(err.msg, "\"wte.weight\" is I32 [4, 4]") != NULL, "message '%s'", err.msg);
    embed_tensor flat = {"wte.weight", EMBED_F32, 1, {16}, 0, 64, data};
    CHECK(embed_table_from_tensor(&flat, &t, &err) == EMBED_ERR_SHAPE, "1-D accepted");
    CHECK(strstr(err.msg, "F32 [16]") != NULL, "message '%s'", err.msg);
    embed_tensor ok = {"x", EMBED_BF16, 2, {8, 4}, 0, 64, data};
    CHECK(embed_table_from_tensor(&ok, &t, &err) == 0 && t.rows == 8 && t.cols == 4, "%s",
          err.msg);
    model m = open_model("adam");
    CHECK(embed_wpe(m.f, NULL, &t, &err) == EMBED_ERR_NOTFOUND, "wpe found in adam model");
    CHECK(strstr(err.msg, "wpe.weight") != NULL, "message '%s'", err.msg);
    CHECK(embed_wte(m.f, "nope", &t, &err) == EMBED_ERR_NOTFOUND, "'nope' found");
    close_model(&m);

    embed_table wte = {EMBED_F32, 4, 3, data, NULL}, wpe = {EMBED_F32, 4, 2, data, NULL};
    uint32_t id = 0;
    float x[3];
    CHECK(embed_forward(x, &wte, &wpe, 0, &id, 1, &err) == EMBED_ERR_SHAPE, "width mismatch");
    /* T = 0 with NULL buffers is fine */
    size_t n = 5;
    CHECK(embed_forward(NULL, &wte, &wpe, 99, NULL, 0, &err) == EMBED_ERR_SHAPE, "T=0 shape");
    CHECK(embed_forward(NULL, &wte, NULL, 99, NULL, 0, &err) == 0, "T=0: %s", err.msg);
    CHECK(embed_backward_sparse(NULL, NULL, 0, 3, 4, NULL, NULL, &n, NULL, &err) == 0 && n == 0,
          "T=0 backward");
}

/* Many tokens over few ids, in an order that exercises every merge pass:
 * the sparse rows must equal a dense token-order scatter. */
/* Ids above 2^11 take the radix sort's second pass: rows still ascending,
 * each summed in token order (= the dense scatter, bit for bit). */
static void wide_ids_sort(int sanitized) {
    size_t T = sanitized ? 3000 : 20000, C = 3, V = 50257;
    uint32_t *ids = malloc(T * 4), *rows = malloc(T * 4), *scr = malloc(T * 4);
    float *dout = malloc(T * C * 4), *g = malloc(T * C * 4), *dw = calloc(V * C, 4);
    uint32_t s = 777;
    for (size_t t = 0; t < T; t++) {
        s = s * 1103515245u + 12345u;
        ids[t] = t % 7 == 0 ? 50256 - (uint32_t)(t % 5) : (s >> 4) % V;  /* some repeats */
        for (size_t c = 0; c < C; c++)
            dout[t * C + c] = (float)((s >> (c + 5)) % 997) * 0.01f - 5.0f;
    }
    embed_error err;
    size_t n;
    CHECK(embed_backward_sparse(dout, ids, T, C, V, rows, g, &n, scr, &err) == 0, "%s", err.msg);
    CHECK(embed_backward_dense(dw, V, dout, ids, T, C, &err) == 0, "%s", err.msg);
    for (size_t i = 0; i < n; i++) {
        CHECK(i == 0 || rows[i] > rows[i - 1], "rows not ascending at %zu", i);
        CHECK(same("wide sort row", g + i * C, dw + (size_t)rows[i] * C, C), "row %zu (id %u)", i, rows[i]);
    }
    free(ids), free(rows), free(scr), free(dout), free(g), free(dw);
}

static void big_sort(int sanitized) {
    size_t T = sanitized ? 3000 : 20000, C = 5, V = 97;
    uint32_t *ids = malloc(T * 4), *rows = malloc(T * 4), *scr = malloc(T * 4);
    float *dout = malloc(T * C * 4), *g = malloc(T * C * 4), *dw = calloc(V * C, 4);
    uint32_t s = 12345;
    for (size_t t = 0; t < T; t++) {
        s = s * 1103515245u + 12345u;
        ids[t] = (s >> 8) % V;
        for (size_t c = 0; c < C; c++)
            dout[t * C + c] = (float)((s >> (c + 3)) % 1000) * 0.001f - 0.5f;
    }
    embed_error err;
    size_t n;
    CHECK(embed_backward_sparse(dout, ids, T, C, V, rows, g, &n, scr, &err) == 0, "%s", err.msg);
    CHECK(embed_backward_dense(dw, V, dout, ids, T, C, &err) == 0, "%s", err.msg);
    CHECK(n == V, "%zu rows", n);
    for (size_t i = 0; i < n; i++) {
        CHECK(rows[i] == i, "row %zu is %u", i, rows[i]);
        CHECK(same("big sort row", g + i * C, dw + (size_t)rows[i] * C, C), "row %zu", i);
    }
    /* fused backward + SGD equals backward then SGD, bit for bit */
    float *w1 = malloc(V * C * 4), *w2 = malloc(V * C * 4);
    uint32_t *scr2 = malloc(2 * T * 4);
    for (size_t i = 0; i < V * C; i++)
        w1[i] = w2[i] = (float)i * 1e-3f;
    embed_param p1 = {w1, V, C}, p2 = {w2, V, C};
    CHECK(embed_sgd(&p1, rows, g, n, 0.3f, &err) == 0, "%s", err.msg);
    CHECK(embed_backward_sgd(&p2, dout, ids, T, 0.3f, scr2, &err) == 0, "%s", err.msg);
    CHECK(same("fused vs separate", w2, w1, V * C), "big sort");
    free(w1), free(w2), free(scr2);
    free(ids), free(rows), free(scr), free(dout), free(g), free(dw);
}

/* The forward pass on two threads (which take blocks from both ends) with
 * streaming stores where an output row is 16-byte aligned and plain ones
 * where not: the same bits as one row at a time, with and without
 * positions, for an output at an aligned and a misaligned address, and
 * rows of 512 (all aligned) and 514 floats (every other row aligned). */
static void threaded_forward(void) {
    size_t T = 3000, V = 1500;  /* 6 MB of output; ids repeat and not */
    for (size_t C = 512; C <= 514; C += 2) {
        float *table = malloc(V * C * 4), *pos = malloc(T * C * 4), *buf = malloc(T * C * 4 + 16),
              *row = malloc(C * 4);
        uint32_t *ids = malloc(T * 4), s = 4242;
        for (size_t i = 0; i < V * C; i++) {
            s = s * 1103515245u + 12345u;
            table[i] = (float)(s >> 9) * 1e-7f - 0.8f;
        }
        for (size_t i = 0; i < T * C; i++)
            pos[i] = (float)(i % 1013) * 1e-3f - 0.5f;
        for (size_t t = 0; t < T; t++) {
            s = s * 1103515245u + 12345u;
            ids[t] = (s >> 8) % V;
        }
        embed_table tab = {EMBED_F32, V, C, (const unsigned char *)table, NULL};
        embed_table wpe = {EMBED_F32, T, C, (const unsigned char *)pos, NULL};
        for (int misaligned = 0; misaligned <= 1; misaligned++)
            for (int with_pos = 0; with_pos <= 1; with_pos++) {
                float *out = buf + misaligned;
                embed_error err;
                CHECK(embed_forward(out, &tab, with_pos ? &wpe : NULL, 0, ids, T, &err) == 0, "%s",
                      err.msg);
                size_t bad = T;
                for (size_t t = 0; t < T && bad == T; t++) {
                    embed_row(&tab, ids[t], row);
                    for (size_t c = 0; with_pos && c < C; c++)
                        row[c] += pos[t * C + c];
                    if (memcmp(row, out + t * C, C * 4)) bad = t;
                }
                CHECK(bad == T, "threaded forward (C %zu, misaligned %d, positions %d) differs at row %zu",
                      C, misaligned, with_pos, bad);
            }
        free(table), free(pos), free(buf), free(row), free(ids);
    }
}

/* A batch big enough for two threads in the fused backward + SGD, which
 * share the work in claimed blocks: the same bits as the separate steps. */
static void threaded_backward(void) {
    size_t T = 3000, C = 512, V = 1500;  /* ids repeat and not */
    uint32_t *ids = malloc(T * 4), *rows = malloc(T * 4), *scr = malloc(T * 4), *scr2 = malloc(2 * T * 4);
    float *dout = malloc(T * C * 4), *g = malloc(T * C * 4), *w1 = malloc(V * C * 4), *w2 = malloc(V * C * 4);
    uint32_t s = 777;
    for (size_t i = 0; i < V * C; i++) {
        s = s * 1103515245u + 12345u;
        w1[i] = w2[i] = (float)(s >> 9) * 1e-7f - 0.8f;
    }
    for (size_t t = 0; t < T; t++) {
        s = s * 1103515245u + 12345u;
        ids[t] = (s >> 8) % V;
        for (size_t c = 0; c < C; c++)
            dout[t * C + c] = (float)((s >> (c % 20 + 3)) % 1000) * 0.001f - 0.5f;
    }
    embed_error err;
    size_t n;
    embed_param p1 = {w1, V, C}, p2 = {w2, V, C};
    CHECK(embed_backward_sparse(dout, ids, T, C, V, rows, g, &n, scr, &err) == 0, "%s", err.msg);
    CHECK(embed_sgd(&p1, rows, g, n, 0.25f, &err) == 0, "%s", err.msg);
    CHECK(embed_backward_sgd(&p2, dout, ids, T, 0.25f, scr2, &err) == 0, "%s", err.msg);
    CHECK(same("threaded fused vs separate", w2, w1, V * C), "threaded");
    free(ids), free(rows), free(scr), free(scr2), free(dout), free(g), free(w1), free(w2);
}

/* Rows wider than the fused step's stack buffer (C > 1024). */
static void wide_rows(void) {
    size_t T = 6, C = 1500, V = 4;
    uint32_t ids[6] = {3, 1, 3, 0, 3, 1}, rows[6], scr[12];
    float *dout = malloc(T * C * 4), *g = malloc(T * C * 4), *w1 = calloc(V * C, 4),
          *w2 = calloc(V * C, 4);
    for (size_t i = 0; i < T * C; i++)
        dout[i] = (float)(i % 97) * 0.01f - 0.3f;
    embed_error err;
    size_t n;
    embed_param p1 = {w1, V, C}, p2 = {w2, V, C};
    CHECK(embed_backward_sparse(dout, ids, T, C, V, rows, g, &n, scr, &err) == 0 && n == 3, "wide");
    CHECK(embed_sgd(&p1, rows, g, n, 0.7f, &err) == 0, "%s", err.msg);
    CHECK(embed_backward_sgd(&p2, dout, ids, T, 0.7f, scr, &err) == 0, "%s", err.msg);
    CHECK(same("wide fused vs separate", w2, w1, V * C), "wide");
    free(dout), free(g), free(w1), free(w2);
}

/* Read system calls so far (Linux's /proc/self/io), or -1. */
static long read_syscalls(void) {
    FILE *f = fopen("/proc/self/io", "r");
    long n = -1;
    char key[32];
    long v;
    while (f && fscanf(f, "%31s %ld", key, &v) == 2)
        if (!strcmp(key, "syscr:")) n = v;
    if (f) fclose(f);
    return n;
}

/* The first rows of a table in a file are read with pread instead of
 * through the mapping, later ones through it: same values, for F32, F16
 * and BF16, with positions. */
static void pread_case(void) {
    const size_t V = 1000, C = 9, P = 40, T = 7;
    static const embed_dtype dts[] = {EMBED_F32, EMBED_F16, EMBED_BF16};
    char path[] = "/tmp/gpt2in-test-pread-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    close(fd);
    uint16_t *h = malloc(V * C * 2);
    float *w = malloc(V * C * 4), *p = malloc(P * C * 4), *a = malloc(T * C * 4), *b = malloc(T * C * 4);
    for (size_t i = 0; i < V * C; i++) w[i] = (float)((int)(i * 2654435761u % 2001) - 1000) / 37.0f;
    for (size_t i = 0; i < P * C; i++) p[i] = (float)i / 64.0f;
    uint32_t ids[7] = {0, 999, 5, 5, 500, 1, 998};
    for (size_t d = 0; d < 3; d++) {
        const void *data = w;
        if (dts[d] != EMBED_F32) {
            for (size_t i = 0; i < V * C; i++)
                h[i] = dts[d] == EMBED_F16 ? embed_f32_to_f16(w[i]) : embed_f32_to_bf16(w[i]);
            data = h;
        }
        embed_out_tensor ts[2] = {{"wpe.weight", EMBED_F32, 2, {P, C}, p},
                                  {"wte.weight", dts[d], 2, {V, C}, data}};
        embed_error err;
        CHECK(embed_save(path, NULL, ts, 2, NULL, 0, &err) == 0, "save: %s", err.msg);
        embed_file *f = embed_open(path, &err);
        CHECK(f != NULL, "open: %s", err.msg);
        if (!f) continue;
        embed_table wte, wpe;
        CHECK(!embed_wte(f, NULL, &wte, &err) && !embed_wpe(f, NULL, &wpe, &err), "%s", err.msg);
        CHECK(wte.file == f, "embed_wte records the file");
        CHECK(embed_forward(a, &wte, &wpe, 3, ids, T, &err) == 0, "pread forward: %s", err.msg);
        long r0 = read_syscalls(), own = read_syscalls() - r0; /* reading /proc counts too */
        r0 = read_syscalls();
        CHECK(embed_forward(a, &wte, &wpe, 3, ids, T, &err) == 0, "pread forward: %s", err.msg);
        long r1 = read_syscalls();
        CHECK(r0 < 0 || r1 - r0 - own >= (long)T, "the first rows are read with pread (%ld reads)",
              r1 - r0 - own);
        embed_table mapped = wte;
        mapped.file = NULL;
        CHECK(embed_forward(b, &mapped, &wpe, 3, ids, T, &err) == 0, "mapped forward: %s", err.msg);
        CHECK(!memcmp(a, b, T * C * 4), "pread and mapped rows differ (%s)", embed_dtype_name(dts[d]));
        /* V/16 rows over the file's life, then the mapping: same values */
        for (size_t k = 0; k < V / 16 / T + 1; k++)
            CHECK(embed_forward(a, &wte, &wpe, 3, ids, T, &err) == 0, "%s", err.msg);
        r0 = read_syscalls();
        CHECK(embed_forward(a, &wte, &wpe, 3, ids, T, &err) == 0, "%s", err.msg);
        r1 = read_syscalls();
        CHECK(r0 < 0 || r1 - r0 - own < (long)T, "past V/16 rows, the mapping (%ld reads)", r1 - r0 - own);
        CHECK(!memcmp(a, b, T * C * 4), "rows through the mapping differ (%s)", embed_dtype_name(dts[d]));
        embed_close(f);
    }
    unlink(path);
    free(h);
    free(w);
    free(p);
    free(a);
    free(b);
}

/* Enough rows read with pread for two threads (1 MB of output), then the
 * same after the file lost its second half: the rows there are an I/O
 * error naming the row, not a crash, whichever thread meets it first. */
static void pread_threaded(void) {
    const size_t V = 8400, C = 512, T = 520;  /* T < V/16: pread */
    char path[] = "/tmp/gpt2in-test-pread2-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    close(fd);
    float *w = malloc(V * C * 4), *a = malloc(T * C * 4), *b = malloc(T * C * 4);
    uint32_t *ids = malloc(T * 4);
    for (size_t i = 0; i < V * C; i++) w[i] = (float)(i % 7919) * 0.125f - 300.0f;
    for (size_t t = 0; t < T; t++) ids[t] = (uint32_t)((t * 2654435761u) % V);
    embed_out_tensor ts[1] = {{"wte.weight", EMBED_F32, 2, {V, C}, w}};
    embed_error err;
    CHECK(embed_save(path, NULL, ts, 1, NULL, 0, &err) == 0, "save: %s", err.msg);
    embed_file *f = embed_open(path, &err);
    CHECK(f != NULL, "open: %s", err.msg);
    if (f) {
        embed_table wte;
        CHECK(!embed_wte(f, NULL, &wte, &err), "%s", err.msg);
        long r0 = read_syscalls();
        CHECK(embed_forward(a, &wte, NULL, 0, ids, T, &err) == 0, "threaded pread: %s", err.msg);
        long r1 = read_syscalls();
        CHECK(r0 < 0 || r1 - r0 >= (long)T, "rows read with pread (%ld reads)", r1 - r0);
        embed_table mapped = wte;
        mapped.file = NULL;
        CHECK(embed_forward(b, &mapped, NULL, 0, ids, T, &err) == 0, "%s", err.msg);
        CHECK(!memcmp(a, b, T * C * 4), "threaded pread rows differ from the mapped ones");
        embed_close(f);
    }
    f = embed_open(path, &err);
    CHECK(f != NULL, "open: %s", err.msg);
    if (f) {
        embed_table wte;
        CHECK(!embed_wte(f, NULL, &wte, &err), "%s", err.msg);
        CHECK(truncate(path, (off_t)(V * C * 2)) == 0, "truncate");
        int rc = embed_forward(a, &wte, NULL, 0, ids, T, &err);
        CHECK(rc == EMBED_ERR_IO && strstr(err.msg, "truncated"),
              "a row past the end of a truncated file: %d %s", rc, err.msg);
        embed_close(f);
    }
    unlink(path);
    free(w), free(a), free(b), free(ids);
}

/* A weight of -0.0 stepped by a dout of -0.0: PyTorch's dense backward sums
 * onto zeros (0 + -0 = +0), so SGD gives -0 + -lr * +0 = -0.0, while stepping
 * with the raw -0.0 would give +0.0 (what SGD with sparse=True gives). From
 * torch 1.13: W = [[-0., -0., 2.]], dout [[-0., 0., -0.]], id 0, lr 0.5 ->
 * dense grad [[0., 0., 0.]], W [[-0., -0., 2.]]. Separate and fused paths,
 * a row used once and a row used twice. */
static void signed_zero(void) {
    float dout[3 * 3] = {-0.0f, 0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f};
    uint32_t ids[3] = {0, 1, 1}, rows[3], scr[6], scr2[6];
    float g[9], w1[6] = {-0.0f, -0.0f, 2.0f, -0.0f, -0.0f, -0.0f}, w2[6];
    memcpy(w2, w1, sizeof w1);
    embed_error err;
    size_t n;
    CHECK(embed_backward_sparse(dout, ids, 3, 3, 2, rows, g, &n, scr, &err) == 0, "%s", err.msg);
    CHECK(n == 2, "rows %zu", n);
    for (size_t i = 0; i < 6; i++)
        CHECK(g[i] == 0.0f && !signbit(g[i]), "signed zero: grad[%zu] is -0.0", i);
    embed_param p1 = {w1, 2, 3}, p2 = {w2, 2, 3};
    CHECK(embed_sgd(&p1, rows, g, n, 0.5f, &err) == 0, "%s", err.msg);
    CHECK(embed_backward_sgd(&p2, dout, ids, 3, 0.5f, scr2, &err) == 0, "%s", err.msg);
    for (size_t i = 0; i < 6; i++) {
        int want_neg = i != 2;
        CHECK(!!signbit(w1[i]) == want_neg, "signed zero: sgd w[%zu] = %g", i, w1[i]);
        CHECK(!!signbit(w2[i]) == want_neg, "signed zero: fused sgd w[%zu] = %g", i, w2[i]);
    }
    CHECK(w1[2] == 2.0f && w2[2] == 2.0f, "signed zero: w[2]");
}

int main(void) {
    const char *san = getenv("SANITIZED");
    pread_case();
    pread_threaded();
    const char *cases[] = {"f32", "hf13", "t1", "t0"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        table_case(cases[i]);
    half_case();
    adam_case();
    lookup_errors();
    big_sort(san && *san == '1');
    threaded_forward();
    threaded_backward();
    wide_ids_sort(san && *san == '1');
    wide_rows();
    signed_zero();
    if (failures) {
        fprintf(stderr, "test_embed: %d checks failed\n", failures);
        return 1;
    }
    printf("test_embed: all checks passed\n");
    return 0;
}
