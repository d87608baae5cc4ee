/* collect.h - a stream sink (bpe_sink) for the C suites: gathers the ids,
 * and the offsets when both the stream and the collector have them, into
 * room for `cap`; more than that stops the stream. */
#ifndef TESTS_COLLECT_H
#define TESTS_COLLECT_H

#include <stdint.h>
#include <string.h>

typedef struct { uint32_t *ids; uint64_t *offs; size_t n, cap; } collect;

static int collect_sink(void *ctx, const uint32_t *ids, const uint64_t *offs, size_t n) {
    collect *c = ctx;
    if (c->n + n > c->cap) return 1;
    memcpy(c->ids + c->n, ids, n * sizeof *ids);
    if (offs && c->offs) memcpy(c->offs + c->n, offs, n * sizeof *offs);
    c->n += n;
    return 0;
}

#endif
