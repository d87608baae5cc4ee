/* test_similarity - embed_cosine, embed_nearest, embed_row_norms and
 * embed_pca2 against NumPy's answers (tests/fixtures/similarity_refs.h, made
 * by tests/gen_similarity_refs.py), on F32 (aligned and unaligned), F16 and
 * BF16 tables, plus argument errors. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "check.h"
#include "fixtures/similarity_refs.h"

static void check_topk(const char *what, const embed_table *tab, const float *norms,
                       const uint32_t *ids, const double *scores, double tol) {
    const uint32_t *ex[REF_NQ] = {ref_exclude0, ref_exclude1, ref_exclude2};
    for (int q = 0; q < REF_NQ; q++) {
        embed_hit hits[REF_K + 1];
        size_t n = 99;
        embed_error err = {{0}};
        int rc = embed_nearest(tab, norms, ref_queries + q * REF_C, ex[q], ref_n_exclude[q], REF_K,
                               hits, &n, &err);
        CHECK(rc == 0, "%s q%d: rc %d %s", what, q, rc, err.msg);
        CHECK(n == REF_K, "%s q%d: %zu hits", what, q, n);
        for (size_t i = 0; i < n && i < REF_K; i++) {
            CHECK(hits[i].id == ids[q * REF_K + i], "%s q%d hit %zu: id %u, NumPy %u", what, q, i,
                  hits[i].id, ids[q * REF_K + i]);
            CHECK(fabs(hits[i].score - scores[q * REF_K + i]) < tol,
                  "%s q%d hit %zu: score %.8f, NumPy %.8f", what, q, i, hits[i].score,
                  scores[q * REF_K + i]);
        }
    }
}

int main(void) {
    embed_error err = {{0}};

    /* cosine */
    for (int p = 0; p < REF_NPAIRS; p++) {
        const float *a = ref_table + ref_pairs[2 * p] * REF_C, *b = ref_table + ref_pairs[2 * p + 1] * REF_C;
        float c = embed_cosine(a, b, REF_C);
        CHECK(fabs(c - ref_cos[p]) < 1e-6, "cosine pair %d: %.8f vs %.8f", p, c, ref_cos[p]);
    }

    /* top-k, F32 aligned, with and without precomputed norms */
    embed_table tab = {EMBED_F32, REF_V, REF_C, (const unsigned char *)ref_table, NULL};
    check_topk("f32", &tab, NULL, ref_top_ids_f32, ref_top_scores_f32, 2e-6);
    float norms[REF_V];
    embed_row_norms(&tab, norms);
    for (int r = 0; r < REF_V; r++) {
        double s = 0;
        for (int c = 0; c < REF_C; c++)
            s += (double)ref_table[r * REF_C + c] * ref_table[r * REF_C + c];
        CHECK(fabs(norms[r] - sqrt(s)) < 1e-5 * (1 + sqrt(s)), "norm %d", r);
    }
    check_topk("f32+norms", &tab, norms, ref_top_ids_f32, ref_top_scores_f32, 2e-6);

    /* F32 at an odd address (as in a mapped safetensors file) */
    unsigned char *odd = malloc(sizeof ref_table + 3);
    memcpy(odd + 3, ref_table, sizeof ref_table);
    embed_table tab_odd = {EMBED_F32, REF_V, REF_C, odd + 3, NULL};
    check_topk("f32 unaligned", &tab_odd, NULL, ref_top_ids_f32, ref_top_scores_f32, 2e-6);
    free(odd);

    /* F16 and BF16 tables: NumPy ranked their rounded values */
    embed_table t16 = {EMBED_F16, REF_V, REF_C, (const unsigned char *)ref_table_f16, NULL};
    check_topk("f16", &t16, NULL, ref_top_ids_f16, ref_top_scores_f16, 2e-6);
    embed_table tb16 = {EMBED_BF16, REF_V, REF_C, (const unsigned char *)ref_table_bf16, NULL};
    check_topk("bf16", &tb16, NULL, ref_top_ids_bf16, ref_top_scores_bf16, 2e-6);

    /* k larger than the table: every non-excluded, non-zero row once */
    {
        embed_hit hits[REF_V + 5];
        size_t n = 0;
        uint32_t ex[1] = {0};
        int rc = embed_nearest(&tab, NULL, ref_queries, ex, 1, REF_V + 5, hits, &n, &err);
        CHECK(rc == 0 && n == REF_V - 2, "k > V: rc %d n %zu (want %d: row 0 excluded, row 7 zero)",
              rc, n, REF_V - 2);
        for (size_t i = 1; i < n; i++)
            CHECK(hits[i - 1].score >= hits[i].score, "k > V: not sorted at %zu", i);
        for (size_t i = 0; i < n; i++)
            CHECK(hits[i].id != 0 && hits[i].id != 7, "k > V: id %u listed", hits[i].id);
    }

    /* errors */
    {
        embed_hit hits[2];
        size_t n = 5;
        float zero[REF_C] = {0};
        CHECK(embed_nearest(&tab, NULL, zero, NULL, 0, 2, hits, &n, &err) == EMBED_ERR_ARG && n == 0,
              "zero query accepted");
        CHECK(strstr(err.msg, "zero") != NULL, "message: %s", err.msg);
        embed_table bad = {EMBED_I32, REF_V, REF_C, (const unsigned char *)ref_table, NULL};
        CHECK(embed_nearest(&bad, NULL, ref_queries, NULL, 0, 2, hits, &n, &err) == EMBED_ERR_DTYPE,
              "I32 table accepted");
        CHECK(strstr(err.msg, "I32") != NULL, "message: %s", err.msg);
        CHECK(embed_pca2(ref_pca_in, 0, REF_C, zero, NULL, NULL, zero, &err) == EMBED_ERR_ARG,
              "pca n=0 accepted");
    }

    /* PCA */
    {
        float out[REF_PCA_N * 2], axes[2 * REF_C], var[2];
        float *scratch = malloc(EMBED_PCA2_SCRATCH(REF_PCA_N, REF_C) * sizeof(float));
        int rc = embed_pca2(ref_pca_in, REF_PCA_N, REF_C, out, axes, var, scratch, &err);
        CHECK(rc == 0, "pca rc %d %s", rc, err.msg);
        for (int a = 0; a < 2; a++) {
            CHECK(fabs(var[a] - ref_pca_var[a]) < 1e-4 * ref_pca_var[a], "var %d: %.6f vs %.6f", a,
                  var[a], ref_pca_var[a]);
            for (int c = 0; c < REF_C; c++)
                CHECK(fabs(axes[a * REF_C + c] - ref_pca_axes[a * REF_C + c]) < 1e-4,
                      "axis %d[%d]: %.6f vs %.6f", a, c, axes[a * REF_C + c], ref_pca_axes[a * REF_C + c]);
        }
        for (int i = 0; i < REF_PCA_N * 2; i++)
            CHECK(fabs(out[i] - ref_pca_out[i]) < 1e-4 * (1 + fabs(ref_pca_out[i])),
                  "projection %d: %.6f vs %.6f", i, out[i], ref_pca_out[i]);
        /* deterministic: a second run is bit-identical */
        float out2[REF_PCA_N * 2];
        embed_pca2(ref_pca_in, REF_PCA_N, REF_C, out2, NULL, NULL, scratch, &err);
        CHECK(memcmp(out, out2, sizeof out) == 0, "pca not deterministic");
        /* one point: no variance, projections 0 */
        rc = embed_pca2(ref_pca_in, 1, REF_C, out, NULL, var, scratch, &err);
        CHECK(rc == 0 && out[0] == 0 && out[1] == 0 && var[0] == 0, "pca of one point");
        free(scratch);
    }

    if (failures) {
        fprintf(stderr, "test_similarity: %d failures\n", failures);
        return 1;
    }
    printf("test_similarity: ok\n");
    return 0;
}
