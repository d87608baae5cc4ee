/* test_bpe_cuts.c - <|endoftext|> at every offset across every place where
 * the library cuts text: the stream's cuts (its blocks' edges), the
 * threads' parts (2, 3 and 7 threads), and bpe_safe_cut itself, under the
 * three special-token policies, with offsets, and with the stream written in
 * every size from 1 to 17 bytes. The stream's cuts are found by streaming
 * prose, not assumed. The reference is bpe_encode of the whole
 * text on one thread, which cuts nothing (tests/test_special_cuts.sh checks
 * that one against npm tiktoken on the same kinds of text).
 *
 * Texts: a unit dense in the token and in its prefixes and suffixes,
 * repeated past 2 MiB behind a pad of 0..P-1 bytes, so that every internal
 * boundary meets every alignment of the unit; and a text of prose with one
 * token placed at each offset across the block edge. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "check.h"
#include "collect.h"

#define MiB (1u << 20)
static const char EOT[] = "<|endoftext|>";
#define EOT_LEN (sizeof EOT - 1)


typedef struct {
    uint32_t *ids;
    size_t *offs;
    size_t n;
} encoding;

static encoding whole(const bpe *v, const char *t, size_t n, int flags) {
    encoding e = {malloc((n + 1) * sizeof *e.ids), malloc((n + 1) * sizeof *e.offs), 0};
    bpe_error err;
    CHECK(e.ids && e.offs, "out of memory");
    CHECK(!bpe_encode(v, t, n, flags, e.ids, e.offs, n, &e.n, &err), "whole text: %s", err.msg);
    return e;
}

static void encoding_free(encoding *e) {
    free(e->ids);
    free(e->offs);
}

static const char *policy_name(int flags) {
    int p = flags & BPE_SPECIAL_MASK;
    return p == BPE_SPECIAL_ALLOW ? "allow" : p == BPE_SPECIAL_TEXT ? "text" : "error";
}

/* Where a stream's sink calls begin (their first tokens' offsets, past 0):
 * the places the stream cut the text, as far as a caller can see. */
typedef struct {
    collect c;
    size_t cuts[64], n_cuts;
} cut_log;

static int cut_log_sink(void *ctx, const uint32_t *ids, const uint64_t *offs, size_t n) {
    cut_log *l = ctx;
    if (n && offs && offs[0] > 0 && l->n_cuts < sizeof l->cuts / sizeof *l->cuts) l->cuts[l->n_cuts++] = offs[0];
    return collect_sink(&l->c, ids, offs, n);
}

/* Streams t (its first `head` bytes in one write, then writes of `chunk`
 * bytes); checks ids and offsets against want, or, for want == NULL, the
 * error at byte err_at. The cuts the stream made go to *log when given. */
static void check_stream_log(const bpe *v, const char *t, size_t n, int flags, int threads, size_t head,
                             size_t chunk, const encoding *want, size_t err_at, const char *what, cut_log *log) {
    bpe_error err;
    cut_log l = {{malloc((n + 1) * sizeof *l.c.ids), malloc((n + 1) * sizeof *l.c.offs), 0, n + 1}, {0}, 0};
    bpe_stream *st = bpe_stream_new(v, flags | BPE_OFFSETS, threads, &err);
    CHECK(st && l.c.ids && l.c.offs, "stream_new: %s", err.msg);
    int rc = head ? bpe_stream_write(st, t, head, cut_log_sink, &l, &err) : 0;
    for (size_t i = head; i < n && !rc; i += chunk)
        rc = bpe_stream_write(st, t + i, n - i < chunk ? n - i : chunk, cut_log_sink, &l, &err);
    if (!rc) rc = bpe_stream_finish(st, cut_log_sink, &l, &err);
    if (!want) {
        CHECK(rc == BPE_ERR_SPECIAL && err.offset == err_at, "%s, stream %s, %d threads, writes of %zu: rc %d at %llu, want the error at %zu",
              what, policy_name(flags), threads, chunk, rc, (unsigned long long)err.offset, err_at);
    } else {
        int same = rc == 0 && l.c.n == want->n && !memcmp(l.c.ids, want->ids, l.c.n * sizeof *l.c.ids);
        for (size_t i = 0; same && i < l.c.n; i++) same = l.c.offs[i] == want->offs[i];
        CHECK(same, "%s, stream %s, %d threads, writes of %zu: %s (%zu tokens, want %zu)", what,
              policy_name(flags), threads, chunk, rc ? err.msg : "ids or offsets differ", l.c.n, want->n);
    }
    if (log) {
        memcpy(log->cuts, l.cuts, sizeof l.cuts);
        log->n_cuts = l.n_cuts;
    }
    bpe_stream_free(st);
    free(l.c.ids);
    free(l.c.offs);
}

static void check_stream(const bpe *v, const char *t, size_t n, int flags, int threads, size_t chunk,
                         const encoding *want, size_t err_at, const char *what) {
    check_stream_log(v, t, n, flags, threads, 0, chunk, want, err_at, what, NULL);
}

static void check_parallel(const bpe *v, const char *t, size_t n, int flags, int threads, const encoding *want,
                           const char *what) {
    bpe_error err;
    encoding e = {malloc((n + 1) * sizeof *e.ids), malloc((n + 1) * sizeof *e.offs), 0};
    int rc = bpe_encode_parallel(v, t, n, flags, threads, e.ids, e.offs, n, &e.n, &err);
    int same = rc == 0 && e.n == want->n && !memcmp(e.ids, want->ids, e.n * sizeof *e.ids) &&
               !memcmp(e.offs, want->offs, e.n * sizeof *e.offs);
    CHECK(same, "%s, %d threads, %s: %s (%zu tokens, want %zu)", what, threads, policy_name(flags),
          rc ? err.msg : "ids or offsets differ", e.n, want->n);
    encoding_free(&e);
}

/* For every end k of t[0..n), the cut bpe_safe_cut gives splits t[0..n)
 * into two halves whose encodings join to the whole's. */
static void check_safe_cuts(const bpe *v, const char *t, size_t n, int flags, const char *what) {
    encoding want = whole(v, t, n, flags);
    uint32_t *ids = malloc((n + 1) * sizeof *ids);
    size_t bad = 0;
    bpe_error err;
    for (size_t k = 0; k <= n; k++) {
        size_t p = bpe_safe_cut(v, t, k, flags);
        CHECK(p < k || p == 0, "%s: cut %zu at or past the end %zu", what, p, k);
        size_t a = 0, b = 0;
        int rc = bpe_encode(v, t, p, flags, ids, NULL, n, &a, &err);
        rc = rc ? rc : bpe_encode(v, t + p, n - p, flags, ids + a, NULL, n - a, &b, &err);
        bad += rc || a + b != want.n || memcmp(ids, want.ids, want.n * sizeof *ids);
    }
    CHECK(bad == 0, "%s, %s: %zu of %zu ends give a cut that changes the tokens", what, policy_name(flags), bad,
          n + 1);
    encoding_free(&want);
    free(ids);
}

/* The unit repeated past `size` bytes behind `pad` bytes of 'x'. */
static char *repeat(const char *unit, size_t pad, size_t size, size_t *n) {
    size_t u = strlen(unit), m = pad + (size / u + 1) * u;
    char *t = malloc(m + 1);
    CHECK(t != NULL, "out of memory");
    memset(t, 'x', pad);
    for (size_t i = pad; i < m; i += u) memcpy(t + i, unit, u);
    *n = m;
    return t;
}

int main(void) {
    const bpe *v = bpe_gpt2();
    int sanitized = getenv("SANITIZED") && !strcmp(getenv("SANITIZED"), "1");

    /* 1. Dense units: boundaries of the stream (1 and 2 MiB) and of 2, 3
     * and 7 threads' parts meet every alignment of the unit. */
    static const char *const units[] = {
        "hello world hello world ab<|endoftext|>",
        " x<|endoftext|><|endoftext <|end|>endoftext|> 12<|<|endoftext|>|>\n<|endoftext|>",
    };
    for (size_t u = 0; u < sizeof units / sizeof *units; u++) {
        size_t period = strlen(units[u]);
        size_t short_n;
        char *short_t = repeat(units[u], 0, 300, &short_n);
        check_safe_cuts(v, short_t, short_n, BPE_SPECIAL_ALLOW, "bpe_safe_cut");
        check_safe_cuts(v, short_t, short_n, BPE_SPECIAL_TEXT, "bpe_safe_cut");
        free(short_t);
        for (size_t pad = 0; pad < period; pad += sanitized ? 11 : 2) {
            size_t n;
            char *t = repeat(units[u], pad, 2 * MiB + 4096, &n);
            char what[64];
            snprintf(what, sizeof what, "unit %zu, pad %zu", u, pad);
            encoding allow = whole(v, t, n, BPE_SPECIAL_ALLOW), text = whole(v, t, n, BPE_SPECIAL_TEXT);
            size_t first = (size_t)((char *)memmem(t, n, EOT, EOT_LEN) - t);
            /* the stream, one thread (written 1..17 bytes at a time) and
             * two (parts inside the block) */
            check_stream(v, t, n, BPE_SPECIAL_ALLOW, 1, 1 + pad % 17, &allow, 0, what);
            check_stream(v, t, n, BPE_SPECIAL_ALLOW, 2, 4093, &allow, 0, what);
            check_stream(v, t, n, BPE_SPECIAL_TEXT, 2, 65536, &text, 0, what);
            check_stream(v, t, n, BPE_SPECIAL_ERROR, 1, 65536, NULL, first, what);
            for (int threads = 2; threads <= 7; threads += threads == 3 ? 4 : 1) {
                if (sanitized && threads != 3) continue;
                check_parallel(v, t, n, BPE_SPECIAL_ALLOW, threads, &allow, what);
                check_parallel(v, t, n, BPE_SPECIAL_TEXT, threads, &text, what);
            }
            encoding_free(&allow);
            encoding_free(&text);
            free(t);
        }
    }

    /* 2. Prose with one <|endoftext|> starting at each offset around the
     * first places where the stream cuts prose (found by streaming the prose
     * alone: its block edge, and with two threads its parts), followed by
     * more prose, so the stream cuts there again; under each policy, the
     * writes near the cut of every size from 1 to 17 bytes. */
    /* the window: one thread's stream decides its cut about 64 bytes before
     * where it falls (mutations of the straddle check fail at 71-62 bytes
     * before it), two threads' parts right at it (9 before to 2 after) */
    enum { BEFORE = 96, AFTER = 16, NEAR = 160, TAIL = 64 << 10 };
    for (int threads = 1; threads <= 2; threads++) {
        size_t nf;
        char *filler = repeat("hello world ", 0, 3 * MiB, &nf);
        encoding plain = whole(v, filler, nf, BPE_SPECIAL_ALLOW);
        cut_log found;
        check_stream_log(v, filler, nf, BPE_SPECIAL_ALLOW, threads, 0, 4096, &plain, 0, "prose alone", &found);
        encoding_free(&plain);
        CHECK(found.n_cuts >= 2, "%d threads: the stream cut 3 MiB of prose in %zu places", threads, found.n_cuts);
        if (getenv("VERBOSE"))
            for (size_t k = 0; k < found.n_cuts; k++) printf("%d threads: cut at %zu\n", threads, found.cuts[k]);
        /* the first cut, and the first at the end of the first 1 MiB block;
         * with two threads the parts depend on how much text follows, so
         * more follows then */
        size_t edge = 0, tail = threads == 1 ? TAIL : (size_t)5 << 18;
        while (edge + 1 < found.n_cuts && found.cuts[edge] < MiB - 4096) edge++;
        size_t picks[2] = {0, edge};
        for (size_t p = 0; p < 2 && (p == 0 || edge > 0); p++) {
            size_t k = picks[p], cut = found.cuts[k];
            if (cut < BEFORE + 4096 || cut + AFTER + tail > nf) continue;
            size_t runs = 0, near_runs = 0;
            for (size_t at = cut - BEFORE; at <= cut + AFTER; at += sanitized ? 5 : 1) {
                size_t n = at + EOT_LEN + tail;
                char *t = malloc(n);
                CHECK(t != NULL, "out of memory");
                memcpy(t, filler, at);
                memcpy(t + at, EOT, EOT_LEN);
                memcpy(t + at + EOT_LEN, filler + at, tail);
                char what[96];
                snprintf(what, sizeof what, "%d threads, <|endoftext|> at %zu (cut at %zu)", threads, at, cut);
                encoding allow = whole(v, t, n, BPE_SPECIAL_ALLOW), text = whole(v, t, n, BPE_SPECIAL_TEXT);
                int has_eot = 0;
                for (size_t i = 0; i < allow.n; i++) has_eot |= allow.ids[i] == (uint32_t)bpe_eot_id(v);
                CHECK(has_eot, "%s: no 50256", what);
                /* one thread: the bytes before the cut's neighbourhood in one
                 * write, the rest in small ones; two: where the parts end
                 * depends on the writes, so they are those that found it */
                size_t head = threads == 1 ? at - 4096 : 0, chunk = threads == 1 ? 1 + (at + k) % 17 : 4096;
                cut_log seen;
                check_stream_log(v, t, n, BPE_SPECIAL_ALLOW, threads, head, chunk, &allow, 0, what, &seen);
                int near = 0;
                for (size_t i = 0; i < seen.n_cuts; i++)
                    near |= seen.cuts[i] + NEAR >= cut && seen.cuts[i] <= cut + NEAR;
                runs++;
                near_runs += near;
                check_stream_log(v, t, n, BPE_SPECIAL_ERROR, threads, head, threads == 1 ? 1 + at % 5 : 4096, NULL, at,
                                 what, NULL);
                check_stream_log(v, t, n, BPE_SPECIAL_TEXT, threads, head, 4096, &text, 0, what, NULL);
                encoding_free(&allow);
                encoding_free(&text);
                free(t);
            }
            /* the sweep is where the stream cuts: with two threads which
             * sink call brings a part's ids depends on the threads' timing,
             * so most runs, not each, must show the cut */
            CHECK(2 * near_runs >= runs, "%d threads: only %zu of %zu streams cut near %zu", threads, near_runs, runs,
                  cut);
            if (getenv("VERBOSE")) printf("%d threads: %zu of %zu streams cut near %zu\n", threads, near_runs, runs, cut);
        }
        free(filler);
    }

    /* 3. bpe_safe_cut never cuts inside the token or inside a prefix of it
     * that ends the text (more bytes may complete it), except in TEXT mode. */
    {
        static const char t[] = "abc <|endoftext|> def";
        for (size_t k = 0; k <= sizeof t - 1; k++) {
            size_t p = bpe_safe_cut(v, t, k, BPE_SPECIAL_ALLOW);
            CHECK(!(p > 4 && p < 17), "cut at %zu inside the token (end %zu)", p, k);
        }
        static const char pre[] = "abc ab<|endoftext";
        size_t p = bpe_safe_cut(v, pre, sizeof pre - 1, BPE_SPECIAL_ALLOW);
        CHECK(p <= 6, "cut at %zu inside a prefix of the token that ends the text", p);
        CHECK(bpe_safe_cut(v, pre, sizeof pre - 1, BPE_SPECIAL_TEXT) == 8, "TEXT mode cuts before 'endoftext': %zu",
              bpe_safe_cut(v, pre, sizeof pre - 1, BPE_SPECIAL_TEXT));
    }
    printf("test_bpe_cuts: %d failures\n", failures);
    return failures ? 1 : 0;
}
