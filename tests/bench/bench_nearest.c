/* bench_nearest - times embed_nearest (top-10 by cosine over a whole table)
 * on the wte of a safetensors file; built and run by bench_similarity.sh.
 * usage: bench_nearest FILE REPEATS */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "embed.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3)
        return 2;
    embed_error err;
    embed_file *f = embed_open(argv[1], &err);
    embed_table wte;
    if (!f || embed_wte(f, NULL, &wte, &err)) {
        fprintf(stderr, "bench_nearest: %s\n", err.msg);
        return 1;
    }
    int reps = atoi(argv[2]);
    float *q = malloc(wte.cols * sizeof *q);
    embed_row(&wte, 3797, q);                 /* " cat" */
    embed_hit hits[10];
    size_t n;
    uint32_t ex = 3797;
    double best = 1e9;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        embed_nearest(&wte, NULL, q, &ex, 1, 10, hits, &n, &err);
        double t = now() - t0;
        best = t < best ? t : best;
    }
    printf("%.3f %u\n", best * 1e3, hits[0].id);
    free(q);
    embed_close(f);
    return 0;
}
