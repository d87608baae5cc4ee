/* similarity.c - what the rows of an embedding table mean to each other:
 * cosine similarity, nearest rows over a whole table, and a 2-D PCA for
 * plotting. Nothing here allocates; the caller owns every buffer. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "embed.h"
#include "st_internal.h"


float embed_cosine(const float *a, const float *b, size_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    if (aa == 0 || bb == 0)
        return 0.0f;
    return (float)(ab / (sqrt(aa) * sqrt(bb)));
}

/* ---- row scanning ------------------------------------------------------- */

/* F16/BF16 rows are converted CHUNK values at a time into a stack buffer,
 * so no allocation is needed for any C. */
#define CHUNK 256

/* q . x and x . x over n floats; x is read through memcpy, so it may sit
 * at any address (a mapped safetensors file puts wte at an odd one).
 * Eight independent partial sums, so that the adds do not wait on each
 * other (a single running sum is a serial dependency). With GCC/Clang they
 * are two 4-wide vectors per sum (memcpy loads compile to one movups);
 * plain C elsewhere (or with -DEMBED_PORTABLE). */
#if defined(__GNUC__) && !defined(EMBED_PORTABLE)
typedef float sim_f4 __attribute__((vector_size(16)));
static sim_f4 load4(const void *p) {
    sim_f4 v;
    memcpy(&v, p, sizeof v);
    return v;
}
#endif

static void dot_sq8(const float *restrict q, const unsigned char *restrict x, size_t n,
                    float acc_d[8], float acc_s[8]) {
    size_t i = 0;
#if defined(__GNUC__) && !defined(EMBED_PORTABLE)
    sim_f4 d0 = load4(acc_d), d1 = load4(acc_d + 4), s0 = load4(acc_s), s1 = load4(acc_s + 4);
    if (q) {
        for (; i + 8 <= n; i += 8) {
            sim_f4 x0 = load4(x + 4 * i), x1 = load4(x + 4 * i + 16);
            d0 += load4(q + i) * x0;
            d1 += load4(q + i + 4) * x1;
            s0 += x0 * x0;
            s1 += x1 * x1;
        }
    } else {
        for (; i + 8 <= n; i += 8) {
            sim_f4 x0 = load4(x + 4 * i), x1 = load4(x + 4 * i + 16);
            s0 += x0 * x0;
            s1 += x1 * x1;
        }
    }
    memcpy(acc_d, &d0, sizeof d0);
    memcpy(acc_d + 4, &d1, sizeof d1);
    memcpy(acc_s, &s0, sizeof s0);
    memcpy(acc_s + 4, &s1, sizeof s1);
#else
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            float v;
            memcpy(&v, x + 4 * (i + j), 4);
            if (q)
                acc_d[j] += q[i + j] * v;
            acc_s[j] += v * v;
        }
#endif
    for (; i < n; i++) {
        float v;
        memcpy(&v, x + 4 * i, 4);
        if (q)
            acc_d[0] += q[i] * v;
        acc_s[0] += v * v;
    }
}

static float sum8(const float a[8]) {
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* q . row r (q may be NULL) and |row r|^2 for any supported dtype. */
static void row_dot(const embed_table *tab, size_t r, const float *q, float *dot, float *sq) {
    float acc_d[8] = {0}, acc_s[8] = {0};
    size_t C = tab->cols;
    if (tab->dtype == EMBED_F32) {
        dot_sq8(q, tab->data + r * C * 4, C, acc_d, acc_s);
    } else if (tab->dtype == EMBED_Q8_0) {
        /* block by block (32 values: a multiple of the 8 lanes, so the sums
         * are those of the dequantised row read as F32) */
        const unsigned char *p = tab->data + r * (C / 32 * 34);
        float buf[32];
        for (size_t c = 0; c < C; c += 32, p += 34) {
            embed_table blk = {EMBED_Q8_0, 1, 32, p, NULL};
            embed_row(&blk, 0, buf);
            dot_sq8(q ? q + c : NULL, (const unsigned char *)buf, 32, acc_d, acc_s);
        }
    } else {
        const unsigned char *p = tab->data + r * C * 2;
        float buf[CHUNK];
        for (size_t c = 0; c < C; c += CHUNK) {
            size_t m = C - c < CHUNK ? C - c : CHUNK;
            for (size_t i = 0; i < m; i++) {
                uint16_t h;
                memcpy(&h, p + (c + i) * 2, 2);
                buf[i] = tab->dtype == EMBED_F16 ? embed_f16_to_f32(h) : embed_bf16_to_f32(h);
            }
            dot_sq8(q ? q + c : NULL, (const unsigned char *)buf, m, acc_d, acc_s);
        }
    }
    *dot = sum8(acc_d);
    *sq = sum8(acc_s);
}

static int check_table(const embed_table *tab, embed_error *err) {
    if (!tab || (!tab->data && tab->rows && tab->cols))
        return embed_fail(err, EMBED_ERR_ARG, "similarity: no table");
    if (tab->dtype != EMBED_F32 && tab->dtype != EMBED_F16 && tab->dtype != EMBED_BF16 &&
        tab->dtype != EMBED_Q8_0)
        return embed_fail(err, EMBED_ERR_DTYPE,
                        "similarity: table dtype %s (only F32, F16, BF16 and Q8_0 tables are searched)",
                        embed_dtype_name(tab->dtype));
    return EMBED_OK;
}

void embed_row_norms(const embed_table *tab, float *norms) {
    if (!tab || !norms || check_table(tab, NULL) != EMBED_OK)
        return;
    for (size_t r = 0; r < tab->rows; r++) {
        float dot, sq;
        row_dot(tab, r, NULL, &dot, &sq);
        norms[r] = sqrtf(sq);
    }
}

/* a ranks before b: higher score, then lower id. */
static int hit_before(float score, uint32_t id, const embed_hit *b) {
    return score > b->score || (score == b->score && id < b->id);
}

int embed_nearest(const embed_table *tab, const float *norms, const float *query,
                  const uint32_t *exclude, size_t n_exclude, size_t k, embed_hit *hits,
                  size_t *n_hits, embed_error *err) {
    if (n_hits)
        *n_hits = 0;
    int rc = check_table(tab, err);
    if (rc)
        return rc;
    if (!query || (k && !hits) || !n_hits || (n_exclude && !exclude))
        return embed_fail(err, EMBED_ERR_ARG, "embed_nearest: NULL argument");
    if (tab->rows > UINT32_MAX)
        return embed_fail(err, EMBED_ERR_SHAPE, "embed_nearest: %zu rows do not fit 32-bit ids",
                        tab->rows);
    double qq = 0;
    for (size_t c = 0; c < tab->cols; c++)
        qq += (double)query[c] * query[c];
    if (!(qq > 0) || !isfinite(qq))
        return embed_fail(err, EMBED_ERR_ARG,
                        "embed_nearest: the query vector is all zeros (or not finite)");
    float qn = (float)sqrt(qq);
    size_t n = 0;
    for (size_t r = 0; r < tab->rows && k; r++) {
        int skip = 0;
        for (size_t e = 0; e < n_exclude; e++)
            skip |= exclude[e] == r;
        if (skip)
            continue;
        float dot, sq;
        row_dot(tab, r, query, &dot, &sq);
        float rn = norms ? norms[r] : sqrtf(sq);
        if (!(rn > 0))
            continue;                     /* an all-zero (or NaN) row has no direction */
        float s = dot / (rn * qn);
        if (s != s)
            continue;
        if (n == k && !hit_before(s, (uint32_t)r, &hits[k - 1]))
            continue;
        size_t pos = n < k ? n : k - 1;   /* insertion sort from the back; k is small */
        while (pos > 0 && hit_before(s, (uint32_t)r, &hits[pos - 1])) {
            hits[pos] = hits[pos - 1];
            pos--;
        }
        hits[pos].id = (uint32_t)r;
        hits[pos].score = s;
        if (n < k)
            n++;
    }
    *n_hits = n;
    return EMBED_OK;
}

/* ---- 2-D PCA ------------------------------------------------------------ */

/* w (C) = Cov v = sum_i x_i (x_i . v) / (n-1), x_i = vecs[i] - mean; y (n) holds
 * the projections x_i . v. The covariance (C,C) is never formed: two passes
 * over the n vectors cost 2nC instead of C^2 memory. */
static void cov_times(const float *vecs, size_t n, size_t C, const float *mean, const float *v,
                      float *y, float *w) {
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        const float *x = vecs + i * C;
        for (size_t c = 0; c < C; c++)
            s += ((double)x[c] - mean[c]) * v[c];
        y[i] = (float)s;
    }
    double denom = n > 1 ? (double)(n - 1) : 1.0;
    for (size_t c = 0; c < C; c++) {
        double s = 0;
        for (size_t i = 0; i < n; i++)
            s += ((double)vecs[i * C + c] - mean[c]) * y[i];
        w[c] = (float)(s / denom);
    }
}

/* Removes from v its component along the unit vector u. */
static void orthogonalise(float *v, const float *u, size_t C) {
    double d = 0;
    for (size_t c = 0; c < C; c++)
        d += (double)v[c] * u[c];
    for (size_t c = 0; c < C; c++)
        v[c] = (float)(v[c] - d * u[c]);
}

static double normalise(float *v, size_t C) {
    double s = 0;
    for (size_t c = 0; c < C; c++)
        s += (double)v[c] * v[c];
    s = sqrt(s);
    if (s > 0)
        for (size_t c = 0; c < C; c++)
            v[c] = (float)(v[c] / s);
    return s;
}

int embed_pca2(const float *vecs, size_t n, size_t C, float *out, float *axes, float *var,
               float *scratch, embed_error *err) {
    if (!vecs || !out || !scratch || n == 0 || C == 0)
        return embed_fail(err, EMBED_ERR_ARG, "embed_pca2: needs n >= 1 vectors of C >= 1 values");
    float *mean = scratch, *ax = scratch + C, *w = scratch + 3 * C, *y = scratch + 4 * C;
    for (size_t c = 0; c < C; c++) {
        double s = 0;
        for (size_t i = 0; i < n; i++)
            s += vecs[i * C + c];
        mean[c] = (float)(s / (double)n);
    }
    double lambda[2] = {0, 0};
    for (int a = 0; a < 2; a++) {
        float *v = ax + a * C;
        /* A fixed, irregular start (a small LCG), so that it is unlikely to be
         * orthogonal to the axis sought and the result is the same every run. */
        uint32_t st = 0x9e3779b9u + (uint32_t)a * 0x85ebca6bu;
        for (size_t c = 0; c < C; c++) {
            st = st * 1664525u + 1013904223u;
            v[c] = (float)((st >> 8) / 16777216.0 - 0.5);
        }
        if (a == 1)
            orthogonalise(v, ax, C);
        if (normalise(v, C) == 0)
            continue;
        for (int it = 0; it < 5000; it++) {
            cov_times(vecs, n, C, mean, v, y, w);
            if (a == 1)
                orthogonalise(w, ax, C);   /* deflation: stay out of axis 0 */
            double lam = normalise(w, C);
            if (lam <= 1e-30) {           /* no variance left in this direction */
                lambda[a] = 0;
                break;
            }
            double diff = 0;
            for (size_t c = 0; c < C; c++)
                diff += fabs((double)w[c] - v[c]);
            memcpy(v, w, C * sizeof *v);
            lambda[a] = lam;
            if (diff < 1e-7 * (double)C && it > 3)
                break;
        }
        /* Sign convention: the largest-magnitude entry is positive. */
        size_t big = 0;
        for (size_t c = 1; c < C; c++)
            if (fabsf(v[c]) > fabsf(v[big]))
                big = c;
        if (v[big] < 0)
            for (size_t c = 0; c < C; c++)
                v[c] = -v[c];
    }
    for (size_t i = 0; i < n; i++)
        for (int a = 0; a < 2; a++) {
            double s = 0;
            for (size_t c = 0; c < C; c++)
                s += ((double)vecs[i * C + c] - mean[c]) * ax[a * C + c];
            out[i * 2 + a] = lambda[a] > 0 ? (float)s : 0.0f;
        }
    if (axes)
        memcpy(axes, ax, 2 * C * sizeof *axes);
    if (var) {
        var[0] = (float)lambda[0];
        var[1] = (float)lambda[1];
    }
    return EMBED_OK;
}
