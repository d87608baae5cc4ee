/* test_stream_room.c - writing a stream without a copy (bpe_stream_room +
 * bpe_stream_commit, as gpt2in encode reads into it): the tokens and
 * offsets equal bpe_encode's of the whole text for reads of many sizes, one
 * and two threads, mixed with bpe_stream_write, with special tokens as
 * tokens and as errors (the error's offset in the stream); the room is at
 * least one byte and about what was asked for; bad calls are refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "check.h"
#include "collect.h"

#define RND_SEED 0x9E3779B97F4A7C15ull
#include "rnd.h"


/* Feeds text to a stream in reads of up to `want` bytes (random sizes when
 * want is 0), every third one through bpe_stream_write when mixed. */
static int feed(bpe_stream *st, const char *text, size_t n, size_t want, int mixed, collect *col,
                bpe_error *err) {
    size_t i = 0;
    for (int k = 0; i < n; k++) {
        size_t w = want ? want : 1 + rnd() % (3u << 20);
        if (w > n - i) w = n - i;
        if (mixed && k % 3 == 2) {
            int rc = bpe_stream_write(st, text + i, w, collect_sink, col, err);
            if (rc) return rc;
            i += w;
            continue;
        }
        size_t room = 0;
        char *p = bpe_stream_room(st, w, &room, err);
        if (!p) return -100;  /* (out of memory: err says so) */
        CHECK(room >= 1, "room of %zu bytes", room);
        size_t take = room < w ? room : w;
        /* about what was asked: below a block, room for it or for a block */
        CHECK(take == w || room >= (64u << 10), "asked %zu, room %zu", w, room);
        memcpy(p, text + i, take);
        int rc = bpe_stream_commit(st, take, collect_sink, col, err);
        if (rc) return rc;
        i += take;
    }
    return bpe_stream_finish(st, collect_sink, col, err);
}

int main(void) {
    const bpe *v = bpe_gpt2();
    size_t demo_n;
    unsigned char *demo = slurp("tools/demo_corpus.txt", &demo_n);
    if (!demo) {
        fprintf(stderr, "skipped: run from the source folder (tools/demo_corpus.txt)\n");
        return 77;
    }
    /* About 3 MB: the corpus in pieces, with special tokens, long runs of
     * digits and letters, and invalid UTF-8 between them. */
    size_t n = 0, cap = 4u << 20;
    char *text = malloc(cap);
    while (n < (3u << 20)) {
        size_t at = rnd() % demo_n, len = 1 + rnd() % 20000;
        if (len > demo_n - at) len = demo_n - at;
        memcpy(text + n, demo + at, len);
        n += len;
        switch (rnd() % 5) {
        case 0: memcpy(text + n, "<|endoftext|>", 13); n += 13; break;
        case 1: for (size_t k = 0, m = rnd() % 70000; k < m; k++) text[n++] = (char)('0' + rnd() % 10); break;
        case 2: for (size_t k = 0, m = rnd() % 5000; k < m; k++) text[n++] = 'a'; break;
        case 3: text[n++] = (char)0xFF; text[n++] = (char)0xC3; break;
        default: break;
        }
    }
    uint32_t *whole = malloc((n + 1) * sizeof *whole);
    size_t *woffs = malloc((n + 1) * sizeof *woffs), nw = 0;
    bpe_error err;
    CHECK(!bpe_encode(v, text, n, BPE_SPECIAL_ALLOW, whole, woffs, n, &nw, &err), "%s", err.msg);

    /* (want, threads, mixed); want 0: random sizes up to 3 MB */
    static const size_t runs[][3] = {{1, 1, 0}, {61, 1, 0}, {4096, 1, 1}, {65536, 1, 0}, {65536, 2, 1},
                                     {1u << 20, 1, 0}, {1u << 20, 2, 0}, {3u << 20, 2, 1}, {0, 1, 1}, {0, 2, 0}};
    for (size_t r = 0; r < sizeof runs / sizeof *runs; r++) {
        size_t want = runs[r][0];
        int threads = (int)runs[r][1], mixed = (int)runs[r][2];
        collect col = {malloc((n + 1) * sizeof *col.ids), malloc((n + 1) * sizeof *col.offs), 0, n + 1};
        bpe_stream *st = bpe_stream_new(v, BPE_SPECIAL_ALLOW | BPE_OFFSETS, threads, &err);
        int rc = feed(st, text, n, want, mixed, &col, &err);
        CHECK(rc == 0, "want %zu threads %d mixed %d: %s", want, threads, mixed, err.msg);
        int same = col.n == nw && !memcmp(col.ids, whole, nw * sizeof *whole);
        for (size_t i = 0; same && i < nw; i++) same = col.offs[i] == woffs[i];
        CHECK(same, "want %zu threads %d mixed %d: %zu tokens, want %zu (or offsets differ)", want, threads,
              mixed, col.n, nw);
        bpe_stream_free(st);
        free(col.ids);
        free(col.offs);
    }

    /* A special token as an error: reported at its offset in the stream. */
    const char *first = strstr(text, "<|endoftext|>");
    if (first) {
        collect col = {malloc((n + 1) * sizeof *col.ids), NULL, 0, n + 1};
        bpe_stream *st = bpe_stream_new(v, BPE_SPECIAL_ERROR, 1, &err);
        int rc = feed(st, text, n, 65536, 0, &col, &err);
        CHECK(rc == BPE_ERR_SPECIAL && err.offset == (uint64_t)(first - text), "special as error: rc %d at %llu, "
              "want %zu", rc, (unsigned long long)err.offset, (size_t)(first - text));
        bpe_stream_free(st);
        free(col.ids);
    }

    /* Bad calls. */
    bpe_stream *st = bpe_stream_new(v, 0, 1, &err);
    size_t room = 0;
    char *p = bpe_stream_room(st, 10, &room, &err);
    CHECK(p && room >= 10, "a fresh stream's room: %zu", room);
    CHECK(bpe_stream_commit(st, room + 1, NULL, NULL, &err) == BPE_ERR_ARG, "committing past the room");
    CHECK(bpe_stream_room(st, 10, NULL, &err) == NULL, "room without *room");
    CHECK(bpe_stream_room(NULL, 10, &room, &err) == NULL, "room of no stream");
    CHECK(bpe_stream_commit(NULL, 0, NULL, NULL, &err) == BPE_ERR_ARG, "commit to no stream");
    memcpy(p, "hello", 5);
    collect col = {malloc(16 * sizeof *col.ids), NULL, 0, 16};
    CHECK(bpe_stream_commit(st, 5, collect_sink, &col, &err) == 0, "%s", err.msg);
    CHECK(bpe_stream_commit(st, 0, collect_sink, &col, &err) == 0, "committing nothing");
    CHECK(bpe_stream_finish(st, collect_sink, &col, &err) == 0, "%s", err.msg);
    CHECK(col.n == 1 && col.ids[0] == 31373, "hello: %zu tokens", col.n);
    CHECK(bpe_stream_room(st, 10, &room, &err) == NULL, "room after finish");
    CHECK(bpe_stream_commit(st, 0, NULL, NULL, &err) == BPE_ERR_ARG, "commit after finish");
    bpe_stream_free(st);
    free(col.ids);

    free(whole);
    free(woffs);
    free(text);
    free(demo);
    printf("stream room: %zu bytes, %zu tokens, reads of many sizes, 1 and 2 threads: %s\n", n, nw,
           failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
