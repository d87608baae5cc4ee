/* test_proc_ring.c - a stream with threads holds three blocks: two may be
 * queued while the caller writes the third, so a block's tokens go out
 * only once no buffer is free (the write that cuts the third block hands
 * over the first, not the second), or from bpe_stream_wait and
 * bpe_stream_finish. The tokens (and offsets) always equal bpe_encode's of
 * the whole text; an error in any block in flight is reported at its
 * offset after exactly the tokens before it; a sink that stops, and
 * freeing a stream with three blocks queued, are safe (ASan build). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "check.h"
#include "collect.h"

#define KB (1u << 10)
#define MB (1u << 20)

static const bpe *v;

/* The tokens of text[0..len) as a whole text. */
static size_t count(const char *text, size_t len, int flags) {
    size_t n = 0;
    bpe_error err;
    CHECK(!bpe_encode(v, text, len, flags, NULL, NULL, 0, &n, &err), "%s", err.msg);
    return n;
}

int main(void) {
    v = bpe_gpt2();
    size_t n = 4 * MB;
    char *text = demo_text(n);
    if (!text) return 77;
    uint32_t *whole = malloc((n + 1) * sizeof *whole);
    size_t *woffs = malloc((n + 1) * sizeof *woffs);
    size_t nw = 0;
    bpe_error err;
    CHECK(!bpe_encode(v, text, n, BPE_SPECIAL_TEXT, whole, woffs, n, &nw, &err), "%s", err.msg);

    for (int threads = 2; threads <= 3; threads++) {
        /* a block: 128 KB a thread less the buffer's header; the stream
         * cuts it at its last safe cut */
        size_t block = 128 * KB * (size_t)threads - 64;
        size_t c1 = bpe_safe_cut(v, text, block, BPE_SPECIAL_TEXT);
        for (int offsets = 0; offsets < 2; offsets++) {
            int flags = BPE_SPECIAL_TEXT | (offsets ? BPE_OFFSETS : 0);
            collect col = {malloc((n + 1) * sizeof *col.ids), offsets ? malloc((n + 1) * sizeof *col.offs) : NULL, 0,
                           n + 1};
            bpe_stream *st = bpe_stream_new(v, flags, threads, &err);
            CHECK(st, "%s", err.msg);
            /* two blocks cut: both stay queued (before, the second's cut
             * waited for the first and handed it over) */
            int rc = bpe_stream_write(st, text, 2 * block, collect_sink, &col, &err);
            CHECK(rc == 0 && col.n == 0, "threads %d: two blocks cut: rc %d, %zu tokens handed over, want 0",
                  threads, rc, col.n);
            /* the third: no buffer is free, the first goes out (alone) */
            rc = bpe_stream_write(st, text + 2 * block, block, collect_sink, &col, &err);
            size_t n1 = count(text, c1, BPE_SPECIAL_TEXT);
            CHECK(rc == 0 && col.n == n1, "threads %d: three blocks cut: rc %d, %zu tokens handed over, want %zu",
                  threads, rc, col.n, n1);
            rc = bpe_stream_wait(st, collect_sink, &col, &err);
            CHECK(rc == 0 && col.n > n1 && col.n < nw, "threads %d: wait: rc %d, %zu tokens", threads, rc, col.n);
            /* the rest in writes of every size */
            size_t at = 3 * block, step = 1;
            while (!rc && at < n) {
                size_t m = n - at < step ? n - at : step;
                rc = bpe_stream_write(st, text + at, m, collect_sink, &col, &err);
                at += m;
                step = step * 7 + 3;
                if (step > 2 * MB) step = 5;
            }
            if (!rc) rc = bpe_stream_finish(st, collect_sink, &col, &err);
            CHECK(rc == 0 && col.n == nw && !memcmp(col.ids, whole, nw * sizeof *whole),
                  "threads %d, offsets %d: rc %d, %zu tokens, want %zu", threads, offsets, rc, col.n, nw);
            int same = 1;
            for (size_t i = 0; offsets && i < nw && i < col.n; i++) same &= col.offs[i] == woffs[i];
            CHECK(same, "threads %d: offsets differ from bpe_encode's", threads);
            bpe_stream_free(st);
            free(col.ids);
            free(col.offs);
        }

        /* A special token as an error in the first, second, third or
         * fourth block: reported at its offset, after exactly the tokens
         * of the blocks before its own at most (a prefix of the whole's). */
        for (int k = 0; k < 4; k++) {
            size_t where = (size_t)k * block + block / 3;
            char *bad = malloc(n);
            memcpy(bad, text, n);
            memcpy(bad + where, "<|endoftext|>", 13);
            size_t before = count(bad, where, BPE_SPECIAL_TEXT);
            collect col = {malloc((n + 1) * sizeof *col.ids), NULL, 0, n + 1};
            bpe_stream *st = bpe_stream_new(v, BPE_SPECIAL_ERROR, threads, &err);
            int rc = 0;
            for (size_t at = 0; at < n && !rc; at += 100 * KB)
                rc = bpe_stream_write(st, bad + at, n - at < 100 * KB ? n - at : 100 * KB, collect_sink, &col, &err);
            if (!rc) rc = bpe_stream_finish(st, collect_sink, &col, &err);
            CHECK(rc == BPE_ERR_SPECIAL && err.offset == where, "threads %d, error in block %d: rc %d at %llu",
                  threads, k, rc, (unsigned long long)err.offset);
            CHECK(col.n <= before && !memcmp(col.ids, whole, col.n * sizeof *whole),
                  "threads %d, error in block %d: %zu tokens handed over (%zu before it)", threads, k, col.n, before);
            CHECK(bpe_stream_write(st, "a", 1, collect_sink, &col, &err) == BPE_ERR_ARG,
                  "threads %d, error in block %d: a write after it", threads, k);
            bpe_stream_free(st);  /* blocks after it may still be queued */
            free(col.ids);
            free(bad);
        }

        /* A sink that stops after 1, 2 or 3 blocks' tokens: BPE_ERR_CALLBACK,
         * what it took a prefix of the whole's; freed with blocks queued. */
        for (int k = 1; k <= 3; k++) {
            size_t cap = count(text, (size_t)k * block, BPE_SPECIAL_TEXT);
            collect col = {malloc((cap + 1) * sizeof *col.ids), NULL, 0, cap};
            bpe_stream *st = bpe_stream_new(v, BPE_SPECIAL_TEXT, threads, &err);
            int rc = 0;
            for (size_t at = 0; at < n && !rc; at += MB / 3)
                rc = bpe_stream_write(st, text + at, n - at < MB / 3 ? n - at : MB / 3, collect_sink, &col, &err);
            if (!rc) rc = bpe_stream_finish(st, collect_sink, &col, &err);
            CHECK(rc == BPE_ERR_CALLBACK && !memcmp(col.ids, whole, col.n * sizeof *whole),
                  "threads %d, a sink that stops after %zu tokens: rc %d", threads, cap, rc);
            bpe_stream_free(st);
            free(col.ids);
        }

        /* freed with two blocks queued, never finished */
        {
            collect col = {malloc((n + 1) * sizeof *col.ids), NULL, 0, n + 1};
            bpe_stream *st = bpe_stream_new(v, BPE_SPECIAL_TEXT, threads, &err);
            CHECK(bpe_stream_write(st, text, 3 * block, collect_sink, &col, &err) == 0, "threads %d", threads);
            bpe_stream_free(st);
            free(col.ids);
        }
    }

    free(whole);
    free(woffs);
    free(text);
    printf("stream ring: %zu bytes, %zu tokens, three blocks in flight at 2 and 3 threads: %s\n", n, nw,
           failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
