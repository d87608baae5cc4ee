/* bench_embed.c - timings of gpt2in's embedding math (run by bench_embed.sh).
 *
 *   bench_embed fwd T...     forward (wte only, and wte + wpe) into a
 *                            preallocated (T,768) buffer, a 50257x768 F32 table
 *                            at an odd address; plus memcpy bandwidth
 *   bench_embed bwd T        sparse backward + SGD step on the touched rows,
 *                            separately and fused (embed_backward_sgd)
 *   bench_embed open FILE N  open a safetensors file, look up N ids, exit
 *   bench_embed touch N      malloc and write an N-row output, nothing else
 *   bench_embed noop         baseline for the process measurements
 * Prints "key value" lines. Timings are the best of several runs. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "embed.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng = 88172645463325252ull;
static uint32_t next(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

enum { V = 50257, C = 768, MAXT = 1024 };

static int reps_for(size_t T) { return T >= 65536 ? 10 : 30; }

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    embed_error err;
    if (!strcmp(argv[1], "noop"))
        return 0;
    if (!strcmp(argv[1], "touch") && argc == 3) { /* a fresh N-row output, written once */
        size_t n = (size_t)atol(argv[2]);
        float *out = malloc(n * C * sizeof *out);
        if (!out) return 2;
        memset(out, 1, n * C * sizeof *out);
        volatile float sink = out[n * C - 1];
        (void)sink;
        free(out);
        return 0;
    }
    if (!strcmp(argv[1], "open") && argc == 4) {
        size_t n = (size_t)atol(argv[3]);
        double t0 = now();
        embed_file *f = embed_open(argv[2], &err);
        embed_table wte;
        if (!f || embed_wte(f, NULL, &wte, &err)) {
            fprintf(stderr, "bench_embed: %s\n", err.msg);
            return 2;
        }
        uint32_t *ids = malloc(n * sizeof *ids);
        float *out = malloc(n * C * sizeof *out);
        for (size_t i = 0; i < n; i++)
            ids[i] = next() % V;
        if (embed_forward(out, &wte, NULL, 0, ids, n, &err))
            return 2;
        double t1 = now();
        volatile float sink = out[n * C - 1];
        (void)sink;
        printf("open_lookup_ms %.3f\n", (t1 - t0) * 1e3);
        free(ids), free(out);
        embed_close(f);
        return 0;
    }
    /* The table at an odd address, as in a mapped GPT-2 file. */
    unsigned char *raw = malloc((size_t)V * C * 4 + 3 + (size_t)MAXT * C * 4);
    float *tmp = malloc(C * sizeof *tmp);
    for (size_t r = 0; r < V + MAXT; r++) {
        for (size_t c = 0; c < C; c++)
            tmp[c] = (float)(int)(next() % 2001 - 1000) * 2e-5f;
        memcpy(raw + 3 + r * C * 4, tmp, C * 4);
    }
    embed_table wte = {EMBED_F32, V, C, raw + 3, NULL};
    embed_table wpe = {EMBED_F32, MAXT, C, raw + 3 + (size_t)V * C * 4, NULL};

    if (!strcmp(argv[1], "fwd")) {
        for (int a = 2; a < argc; a++) {
            size_t T = (size_t)atol(argv[a]);
            uint32_t *ids = malloc(T * sizeof *ids);
            for (size_t t = 0; t < T; t++)
                ids[t] = next() % V;
            size_t bytes = T * C * 4;
            float *out = malloc(bytes), *src = malloc(bytes);
            memset(out, 0, bytes);
            memset(src, 1, bytes);
            /* Each operation in a loop of its own, as bench_embed.py times
             * torch's: whatever stays in cache from one run to the next
             * helps both sides alike. */
            double best = 1e9, best_pos = 1e9, best_cpy = 1e9;
            for (int r = 0; r < reps_for(T); r++) {
                double t0 = now();
                if (embed_forward(out, &wte, NULL, 0, ids, T, &err))
                    return 2;
                double t1 = now();
                if (t1 - t0 < best) best = t1 - t0;
            }
            for (int r = 0; r < reps_for(T); r++) {
                double t0 = now();
                /* positions cycle through wpe as consecutive 1024-token rows */
                for (size_t s = 0; s < T; s += MAXT) {
                    size_t n = T - s < MAXT ? T - s : MAXT;
                    if (embed_forward(out + s * C, &wte, &wpe, 0, ids + s, n, &err))
                        return 2;
                }
                double t1 = now();
                if (t1 - t0 < best_pos) best_pos = t1 - t0;
            }
            for (int r = 0; r < reps_for(T); r++) {
                double t0 = now();
                memcpy(out, src, bytes);
                double t1 = now();
                if (t1 - t0 < best_cpy) best_cpy = t1 - t0;
            }
            printf("fwd_%zu_ms %.4f\nfwd_%zu_gbs %.2f\n", T, best * 1e3, T, bytes / best / 1e9);
            printf("fwdpos_%zu_ms %.4f\nfwdpos_%zu_gbs %.2f\n", T, best_pos * 1e3, T,
                   bytes / best_pos / 1e9);
            printf("memcpy_%zu_ms %.4f\nmemcpy_%zu_gbs %.2f\n", T, best_cpy * 1e3, T,
                   bytes / best_cpy / 1e9);
            free(ids), free(out), free(src);
        }
        return 0;
    }
    if (!strcmp(argv[1], "bwd") && argc == 3) {
        size_t T = (size_t)atol(argv[2]);
        uint32_t *ids = malloc(T * 4), *rows = malloc(T * 4), *scr = malloc(T * 4);
        float *dout = malloc(T * C * 4), *grad = malloc(T * C * 4);
        for (size_t t = 0; t < T; t++)
            ids[t] = next() % V;
        for (size_t i = 0; i < T * C; i++)
            dout[i] = (float)(int)(next() % 2001 - 1000) * 1e-3f;
        float *w = malloc((size_t)V * C * 4);
        for (size_t r = 0; r < V; r++)
            embed_row(&wte, r, w + r * C);
        embed_param p = {w, V, C};
        double best = 1e9, best_b = 1e9;
        for (int r = 0; r < 30; r++) {
            size_t n;
            double t0 = now();
            if (embed_backward_sparse(dout, ids, T, C, V, rows, grad, &n, scr, &err))
                return 2;
            double t1 = now();
            if (embed_sgd(&p, rows, grad, n, 1e-4f, &err))
                return 2;
            double t2 = now();
            if (t2 - t0 < best) best = t2 - t0;
            if (t1 - t0 < best_b) best_b = t1 - t0;
        }
        uint32_t *scr2 = malloc(2 * T * 4);
        double best_f = 1e9;
        for (int r = 0; r < 30; r++) {
            double t0 = now();
            if (embed_backward_sgd(&p, dout, ids, T, 1e-4f, scr2, &err))
                return 2;
            double t1 = now();
            if (t1 - t0 < best_f) best_f = t1 - t0;
        }
        printf("bwd_sgd_%zu_ms %.4f\nbwd_%zu_ms %.4f\nfused_bwd_sgd_%zu_ms %.4f\n", T,
               best * 1e3, T, best_b * 1e3, T, best_f * 1e3);
        return 0;
    }
    return 2;
}
