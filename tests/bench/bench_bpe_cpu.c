/* bench_bpe_cpu.c - bench_bpe_cpu FILE REPS: the least thread CPU time, in
 * seconds, of REPS runs of bpe_encode (one thread, BPE_SPECIAL_TEXT) on
 * FILE in memory. Thread CPU time leaves out the time a virtual machine's
 * host takes the core away, which the wall clock of bench_bpe_lib.c counts
 * (on a quiet core the two agree; a slower host core slows both);
 * tests/bench/bench_bpe_cpu.sh runs it for several libraries in turn. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bpe.h"

static double thread_cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: bench_bpe_cpu FILE REPS\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f || fseek(f, 0, SEEK_END)) {
        perror(argv[1]);
        return 2;
    }
    long n = ftell(f);
    char *text = n >= 0 ? malloc((size_t)n + 1) : NULL;
    uint32_t *ids = n >= 0 ? malloc(((size_t)n + 1) * sizeof *ids) : NULL;
    if (!text || !ids || fseek(f, 0, SEEK_SET) || fread(text, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "bench_bpe_cpu: cannot read %s\n", argv[1]);
        return 2;
    }
    fclose(f);
    double best = 1e30;
    for (int r = 0; r < atoi(argv[2]); r++) {
        size_t nt;
        bpe_error err;
        double t0 = thread_cpu();
        if (bpe_encode(bpe_gpt2(), text, (size_t)n, BPE_SPECIAL_TEXT, ids, NULL, (size_t)n + 1, &nt, &err)) {
            fprintf(stderr, "bench_bpe_cpu: %s\n", err.msg);
            return 2;
        }
        double t = thread_cpu() - t0;
        if (t < best) best = t;
    }
    printf("%.6f\n", best);
    free(text);
    free(ids);
    return 0;
}
