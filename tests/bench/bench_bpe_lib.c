/* bench_bpe_lib.c - the tokenizer library alone on text in memory, beside
 * the machine's memcpy bandwidth, for tests/bench/bench_bpe.sh.
 *
 *   bench_bpe_lib RUNS FILE...
 *
 * For each FILE (read whole first, not timed) prints one line:
 *   FILE BYTES TOKENS ONE_THREAD_S ALL_CORES_S
 * the best of RUNS runs of bpe_encode (one thread) and of
 * bpe_encode_parallel (all cores), after one warm-up run of each. Then
 *   memcpy GB_PER_S
 * the best of RUNS copies of the largest file, and
 *   gauge MLOADS_PER_S
 * dependent loads at random places of 2 MB (the size of the token table), a
 * million a second: the speed of this machine at the moment, which on a
 * shared VM moves between runs and moves the MB/s with it.
 *
 *   bench_bpe_lib blocks BLOCK_BYTES COUNT FILE encode|encoder
 *
 * Encodes COUNT blocks of BLOCK_BYTES bytes from the start of FILE one after the
 * other, as a worker thread does, with bpe_encode each time (a fresh piece
 * cache each call) or through one bpe_encoder (its cache kept); prints
 *   blocks MODE BYTES TOKENS SECONDS
 * (callgrind: --toggle-collect=encode_blocks counts just the encoding). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bpe.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = NULL;
    size_t cap = 0, len = 0, got;
    do {
        if (cap - len < 1 << 20) {
            char *nb = realloc(b, cap = cap * 2 + (1 << 20));
            if (!nb) {
                free(b);
                fclose(f);
                return NULL;
            }
            b = nb;
        }
        got = fread(b + len, 1, cap - len, f);
        len += got;
    } while (got);
    fclose(f);
    *n = len;
    return b;
}

/* (not inlined: callgrind's toggle point) */
__attribute__((noinline, noclone)) static int encode_blocks(bpe_encoder *e, const char *text, size_t block, int count,
                                                   uint32_t *ids, size_t *tokens, bpe_error *err) {
    for (int k = 0; k < count; k++) {
        size_t nt;
        int rc = e ? bpe_encoder_encode(e, text + (size_t)k * block, block, BPE_SPECIAL_TEXT, ids, NULL, block, &nt,
                                        err)
                   : bpe_encode(bpe_gpt2(), text + (size_t)k * block, block, BPE_SPECIAL_TEXT, ids, NULL, block, &nt,
                                err);
        if (rc) return rc;
        *tokens += nt;
    }
    return 0;
}

static int blocks(int argc, char **argv) {
    if (argc != 6 || (strcmp(argv[5], "encode") && strcmp(argv[5], "encoder"))) {
        fprintf(stderr, "usage: bench_bpe_lib blocks BLOCK_BYTES COUNT FILE encode|encoder\n");
        return 2;
    }
    size_t block = (size_t)atol(argv[2]), n;
    int count = atoi(argv[3]);
    char *text = slurp(argv[4], &n);
    uint32_t *ids = malloc((block + 1) * sizeof *ids);
    if (!text || !ids || block == 0 || count < 1 || n / block < (size_t)count) {
        fprintf(stderr, "bench_bpe_lib: %s: cannot read %d blocks of %zu bytes\n", argv[4], count, block);
        return 2;
    }
    bpe_error err;
    bpe_encoder *e = strcmp(argv[5], "encoder") ? NULL : bpe_encoder_new(bpe_gpt2(), &err);
    size_t tokens = 0;
    double t = now();
    if ((!e && !strcmp(argv[5], "encoder")) || encode_blocks(e, text, block, count, ids, &tokens, &err)) {
        fprintf(stderr, "bench_bpe_lib: %s\n", err.msg);
        return 2;
    }
    t = now() - t;
    printf("blocks %s %zu %zu %.6f\n", argv[5], block * (size_t)count, tokens, t);
    bpe_encoder_free(e);
    free(ids);
    free(text);
    return 0;
}

/* Sattolo's shuffle makes one cycle through all the slots, so each load
 * depends on the one before and no prefetcher can guess the next. */
static double gauge(int runs) {
    size_t n = (2u << 20) / sizeof(uint32_t);
    uint32_t *next = malloc(n * sizeof *next);
    if (!next) return 0;
    for (size_t i = 0; i < n; i++) next[i] = (uint32_t)i;
    uint64_t x = 88172645463325252u;
    for (size_t i = n - 1; i > 0; i--) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t j = x % i;
        uint32_t t = next[i];
        next[i] = next[j], next[j] = t;
    }
    const long steps = 4000000;
    double best = 1e30;
    volatile uint32_t sink;
    for (int r = 0; r <= runs; r++) {
        uint32_t at = 0;
        double t = now();
        for (long k = 0; k < steps; k++) at = next[at];
        t = now() - t;
        sink = at;
        if (r > 0 && t < best) best = t;
    }
    (void)sink;
    free(next);
    return (double)steps / 1e6 / best;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "blocks")) return blocks(argc, argv);
    if (argc < 3) {
        fprintf(stderr, "usage: bench_bpe_lib RUNS FILE...\n");
        return 2;
    }
    int runs = atoi(argv[1]);
    const bpe *v = bpe_gpt2();
    size_t biggest = 0;
    char *big = NULL;
    for (int a = 2; a < argc; a++) {
        size_t n;
        char *text = slurp(argv[a], &n);
        uint32_t *ids = text ? malloc((n + 1) * sizeof *ids) : NULL;
        if (!ids) {
            fprintf(stderr, "bench_bpe_lib: %s: cannot read it into memory\n", argv[a]);
            return 2;
        }
        double best[2] = {1e30, 1e30};
        size_t nt = 0;
        bpe_error err;
        for (int r = 0; r <= runs; r++) {
            for (int all = 0; all < 2; all++) {
                double t = now();
                int rc = all ? bpe_encode_parallel(v, text, n, BPE_SPECIAL_TEXT, 0, ids, NULL, n, &nt, &err)
                             : bpe_encode(v, text, n, BPE_SPECIAL_TEXT, ids, NULL, n, &nt, &err);
                t = now() - t;
                if (rc) {
                    fprintf(stderr, "bench_bpe_lib: %s: %s\n", argv[a], err.msg);
                    return 2;
                }
                if (r > 0 && t < best[all]) best[all] = t;
            }
        }
        printf("%s %zu %zu %.6f %.6f\n", argv[a], n, nt, best[0], best[1]);
        free(ids);
        if (n > biggest) {
            free(big);
            big = text;
            biggest = n;
        } else {
            free(text);
        }
    }
    char *copy = malloc(biggest + 1);
    double best = 1e30;
    for (int r = 0; copy && r <= runs; r++) {
        double t = now();
        memcpy(copy, big, biggest);
        t = now() - t;
        if (r > 0 && t < best) best = t;
    }
    printf("memcpy %.2f\n", copy && best > 0 ? (double)biggest / 1e9 / best : 0.0);
    printf("gauge %.1f\n", gauge(runs));
    free(copy);
    free(big);
    return 0;
}
