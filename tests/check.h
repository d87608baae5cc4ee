/* check.h - what the C test suites share: a CHECK that counts failures and
 * goes on, and reading a whole file. Each suite ends with
 *     return failures ? 1 : 0;   (after printing a summary) */
#ifndef TESTS_CHECK_H
#define TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

/* On failure: "file:line: FAIL condition: message", then go on. */
#define CHECK(c, ...)                                                   \
    do {                                                                \
        if (!(c)) {                                                     \
            failures++;                                                 \
            fprintf(stderr, "%s:%d: FAIL %s: ", __FILE__, __LINE__, #c); \
            fprintf(stderr, __VA_ARGS__);                               \
            fputc('\n', stderr);                                        \
        }                                                               \
    } while (0)

/* The whole file in a malloc'd buffer (one spare byte), or NULL. */
static inline unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = n >= 0 ? (size_t)n : 0;
    return b;
}

/* n bytes of prose, the demo corpus over and over (NUL bytes made spaces),
 * malloc'd with 64 bytes of room after; or NULL, having said the suite is
 * skipped, when run outside the source folder. */
static inline char *demo_text(size_t n) {
    size_t demo_n;
    unsigned char *demo = slurp("tools/demo_corpus.txt", &demo_n);
    if (!demo || !demo_n) {
        free(demo);
        fprintf(stderr, "skipped: run from the source folder (tools/demo_corpus.txt)\n");
        return NULL;
    }
    char *text = malloc(n + 64);
    for (size_t i = 0; text && i < n; i += demo_n) memcpy(text + i, demo, n - i < demo_n ? n - i : demo_n);
    for (size_t i = 0; text && i < n; i++)
        if (!text[i]) text[i] = ' ';
    free(demo);
    return text;
}

#endif
