/* test_proc_stream.c - a stream with threads encodes a block while the
 * caller writes the next: its tokens reach the sink from a later call, and
 * bpe_stream_wait hands over every block cut so far (the tokens, or the
 * error in them, at its offset). With one thread tokens go out at once.
 * After an error the stream refuses more text; freeing a stream with
 * blocks still queued is safe (ASan build). The tokens always equal
 * bpe_encode's of the whole text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "check.h"
#include "collect.h"

#define MB (1u << 20)

int main(void) {
    const bpe *v = bpe_gpt2();
    size_t n = 4 * MB; /* of prose */
    char *text = demo_text(n);
    if (!text) return 77;
    uint32_t *whole = malloc((n + 1) * sizeof *whole);
    size_t nw = 0;
    bpe_error err;
    CHECK(!bpe_encode(v, text, n, BPE_SPECIAL_TEXT, whole, NULL, n, &nw, &err), "%s", err.msg);
    /* tokens of the first `bytes` bytes, as a whole text: a lower bound of
     * what a stream has handed over once it has cut that far */
    size_t nh;
    CHECK(!bpe_encode(v, text, 2 * MB, BPE_SPECIAL_TEXT, NULL, NULL, 0, &nh, &err), "%s", err.msg);

    for (int threads = 1; threads <= 3; threads++) {
        collect col = {malloc((n + 1) * sizeof *col.ids), NULL, 0, n + 1};
        bpe_stream *st = bpe_stream_new(v, BPE_SPECIAL_TEXT, threads, &err);
        CHECK(st, "%s", err.msg);
        /* 3.5 MB written: with threads, blocks of 128 KB a thread; the
         * last cut is more than 2 MB in */
        int rc = bpe_stream_write(st, text, 3 * MB + MB / 2, collect_sink, &col, &err);
        CHECK(rc == 0, "threads %d: %s", threads, err.msg);
        size_t before = col.n;
        rc = bpe_stream_wait(st, collect_sink, &col, &err);
        CHECK(rc == 0, "threads %d: wait: %s", threads, err.msg);
        if (threads == 1) CHECK(col.n == before, "one thread: the tokens went out at once (%zu, then %zu)", before, col.n);
        else CHECK(col.n > before, "threads %d: wait handed nothing over (%zu tokens)", threads, col.n);
        CHECK(col.n >= nh - 1 && col.n <= nw && !memcmp(col.ids, whole, col.n * sizeof *whole),
              "threads %d: after wait, %zu tokens (want at least %zu, a prefix of the %zu)", threads, col.n, nh - 1, nw);
        CHECK(bpe_stream_wait(st, collect_sink, &col, &err) == 0, "threads %d: a second wait", threads);
        rc = bpe_stream_write(st, text + 3 * MB + MB / 2, n - (3 * MB + MB / 2), collect_sink, &col, &err);
        CHECK(rc == 0, "threads %d: %s", threads, err.msg);
        rc = bpe_stream_finish(st, collect_sink, &col, &err);
        CHECK(rc == 0 && col.n == nw && !memcmp(col.ids, whole, nw * sizeof *whole),
              "threads %d: rc %d, %zu tokens, want %zu", threads, rc, col.n, nw);
        CHECK(bpe_stream_wait(st, collect_sink, &col, &err) == BPE_ERR_ARG, "threads %d: wait after finish", threads);
        bpe_stream_free(st);
        free(col.ids);
    }

    /* A special token as an error in the first block: reported by the call
     * that waits for it (a later write, or bpe_stream_wait), at its offset,
     * before any token after it; the stream then takes no more text. */
    memcpy(text + 200000, "<|endoftext|>", 13);
    for (int how = 0; how < 2; how++) {
        collect col = {malloc((n + 1) * sizeof *col.ids), NULL, 0, n + 1};
        bpe_stream *st = bpe_stream_new(v, BPE_SPECIAL_ERROR, 2, &err);
        int rc = 0;
        /* 600 KB: the first block (256 KB at two threads) is queued, and
         * bpe_stream_wait finds the error; or all of it: a later write does */
        size_t len = how == 0 ? 600000 : n;
        for (size_t at = 0; at < len && !rc; at += 100000)
            rc = bpe_stream_write(st, text + at, len - at < 100000 ? len - at : 100000, collect_sink, &col, &err);
        if (how == 0) {
            CHECK(rc == 0, "error %d: the write found the error (%d): the block was not queued", how, rc);
            rc = bpe_stream_wait(st, collect_sink, &col, &err);
        }
        if (how == 1 && !rc) rc = bpe_stream_finish(st, collect_sink, &col, &err);
        CHECK(rc == BPE_ERR_SPECIAL && err.offset == 200000, "error %d: rc %d at %llu", how, rc,
              (unsigned long long)err.offset);
        CHECK(col.n == 0, "error %d: %zu tokens handed over from the block with the error", how, col.n);
        CHECK(bpe_stream_write(st, "a", 1, collect_sink, &col, &err) == BPE_ERR_ARG, "error %d: write after it", how);
        CHECK(bpe_stream_finish(st, collect_sink, &col, &err) == BPE_ERR_ARG, "error %d: finish after it", how);
        bpe_stream_free(st);  /* the block after it may still be queued */
        free(col.ids);
    }

    /* A sink that stops: BPE_ERR_CALLBACK from the call that handed the
     * tokens over; the stream is freed with a block queued. */
    {
        collect col = {malloc(1000 * sizeof *col.ids), NULL, 0, 1000};
        bpe_stream *st = bpe_stream_new(v, BPE_SPECIAL_TEXT, 2, &err);
        int rc = 0;
        for (size_t at = 0; at < n && !rc; at += MB) rc = bpe_stream_write(st, text + at, MB, collect_sink, &col, &err);
        CHECK(rc == BPE_ERR_CALLBACK, "a sink that stops: rc %d", rc);
        bpe_stream_free(st);
        free(col.ids);
    }

    free(whole);
    free(text);
    printf("stream threads: %zu bytes, %zu tokens, wait, errors and stops from queued blocks: %s\n", n, nw,
           failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
