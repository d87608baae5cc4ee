/* test_proc_tail.c - the end of a stream with threads. Once the last block
 * is queued (bpe_stream_finish), the parts not yet taken are cut again,
 * falling in size over what is left, so that the threads' last parts end
 * close together: the last part handed over is a small one, not a share
 * of a block's even split; and the stream's other threads end once no
 * part is left to take, before bpe_stream_free. Tokens, offsets and errors
 * stay those of the whole text, with <|endoftext|> around the tail's cuts
 * (allowed, or an error at its offset). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bpe.h"
#include "check.h"
#include "collect.h"

#define KB (1u << 10)
#define MB (1u << 20)
#define MAX_CALLS 4096

/* A sink that keeps each call's first offset: the start of the part it
 * hands over (a part's first token starts at its first byte). */
typedef struct {
    collect c;
    int calls;
    uint64_t start[MAX_CALLS];
} rec;

static int rec_sink(void *ctx, const uint32_t *ids, const uint64_t *offs, size_t n) {
    rec *r = ctx;
    if (r->calls < MAX_CALLS && offs) r->start[r->calls++] = offs[0];
    return collect_sink(&r->c, ids, offs, n);
}

/* Threads of this process (/proc/self/task), or -1. */
static int tasks(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Waits (up to 20 s, in 1 ms naps) for the threads to be at most want. */
static int tasks_down_to(int want) {
    for (int k = 0; k < 20000; k++) {
        int t = tasks();
        if (t <= want) return t;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return tasks();
}

int main(void) {
    const bpe *v = bpe_gpt2();
    /* the last block is most of a block at 2 and 3 threads (256 KB a
     * thread): its even parts are over 128 KB */
    size_t n = 4 * MB + 400 * KB;
    char *text = demo_text(n);
    if (!text) return 77;
    uint32_t *want = malloc((n + 1) * sizeof *want), *ids = malloc((n + 1) * sizeof *ids);
    size_t *woffs = malloc((n + 1) * sizeof *woffs);
    uint64_t *offs = malloc((n + 1) * sizeof *offs);
    rec *r = malloc(sizeof *r);
    bpe_error err;
    size_t nw = 0;
    CHECK(want && ids && woffs && offs && r, "out of memory");
    CHECK(!bpe_encode(v, text, n, BPE_SPECIAL_TEXT, want, woffs, n, &nw, &err), "%s", err.msg);

    for (int threads = 2; threads <= 3; threads++) {
        int before = tasks();
        *r = (rec){{ids, offs, 0, n + 1}, 0, {0}};
        bpe_stream *st = bpe_stream_new(v, BPE_SPECIAL_TEXT | BPE_OFFSETS, threads, &err);
        CHECK(st, "bpe_stream_new: %s", err.msg);
        int rc = 0;
        for (size_t i = 0; !rc && i < n; i += 64 * KB)
            rc = bpe_stream_write(st, text + i, n - i < 64 * KB ? n - i : 64 * KB, rec_sink, r, &err);
        int from = r->calls;
        if (!rc) rc = bpe_stream_finish(st, rec_sink, r, &err);
        CHECK(!rc, "%d threads: %s", threads, err.msg);
        int ok = r->c.n == nw && !memcmp(ids, want, nw * sizeof *ids);
        for (size_t i = 0; ok && i < nw; i++) ok = offs[i] == woffs[i];
        CHECK(ok, "%d threads: %zu tokens, want %zu (or the ids or offsets differ)", threads, r->c.n, nw);
        /* the parts handed over by bpe_stream_finish, and the last one's size */
        CHECK(r->calls < MAX_CALLS && r->calls - from >= 2, "%d threads: %d parts handed over at the end", threads,
              r->calls - from);
        uint64_t last = n - r->start[r->calls - 1];
        CHECK(last <= 128 * KB, "%d threads: the last part is %llu bytes (want at most 128 KB: the tail is cut in "
              "falling parts)", threads, (unsigned long long)last);
        /* the other threads end once nothing is left to take */
        if (before > 0) {
            int t = tasks_down_to(before);
            CHECK(t <= before, "%d threads: %d threads after bpe_stream_finish, %d before the stream", threads, t,
                  before);
        }
        bpe_stream_free(st);
    }

    /* <|endoftext|> every 4001 bytes over the last 1.5 MB, where the tail is
     * cut again: allowed, the ids of the whole text; an error at the first */
    size_t first = n - 3 * MB / 2;
    for (size_t i = first; i + 13 <= n; i += 4001) memcpy(text + i, "<|endoftext|>", 13);
    CHECK(!bpe_encode(v, text, n, BPE_SPECIAL_ALLOW, want, NULL, n, &nw, &err), "%s", err.msg);
    for (int threads = 2; threads <= 3; threads++) {
        for (int allow = 0; allow <= 1; allow++) {
            *r = (rec){{ids, NULL, 0, n + 1}, 0, {0}};
            bpe_stream *st = bpe_stream_new(v, allow ? BPE_SPECIAL_ALLOW : BPE_SPECIAL_ERROR, threads, &err);
            CHECK(st, "bpe_stream_new: %s", err.msg);
            int rc = 0;
            for (size_t i = 0; !rc && i < n; i += 100 * KB + 7)
                rc = bpe_stream_write(st, text + i, n - i < 100 * KB + 7 ? n - i : 100 * KB + 7, rec_sink, r, &err);
            if (!rc) rc = bpe_stream_finish(st, rec_sink, r, &err);
            if (allow)
                CHECK(!rc && r->c.n == nw && !memcmp(ids, want, nw * sizeof *ids),
                      "%d threads, allowed: rc %d, %zu tokens, want %zu", threads, rc, r->c.n, nw);
            else
                CHECK(rc == BPE_ERR_SPECIAL && err.offset == first, "%d threads, an error: rc %d at %llu, want %zu",
                      threads, rc, (unsigned long long)err.offset, first);
            bpe_stream_free(st);
        }
    }
    free(r);
    free(offs);
    free(woffs);
    free(ids);
    free(want);
    free(text);
    printf("the end of a stream: falling parts, threads that end: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
