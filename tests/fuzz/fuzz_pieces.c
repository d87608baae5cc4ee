/* fuzz_pieces - libFuzzer target for the long-piece encoders of bpe/bpe.c
 * (included, for its internals) on the built-in GPT-2 vocabulary, against
 * the definition: merge_long, the heap that follows tiktoken's merge loop
 * step by step.
 *
 * Input: byte 0 selects how the rest becomes one piece:
 *   bits 0-1: 0 the bytes as they are; 1 digits (each byte mod 10);
 *             2 lowercase letters (mod 26); 3 an alphabet of the next
 *             1-8 bytes (byte 1 mod 8 + 1 of them), each byte picking one;
 *   bit 2:    a space before it (" 123...", as the pre-tokenizer gives);
 *   bits 3-7: how much room merge_run finds in the buffer past the n + 1
 *             entries it works in (0: none, 31: all there is), which its
 *             second walk back uses.
 * Checked: merge_backtrack, merge_chunked (1-3 segments), split_piece and
 * merge_run, wherever each takes the piece, give the heap's tokens and
 * offsets; merge_run takes nothing but a run of one of its alphabets. A
 * broken property calls abort(), which libFuzzer reports as a crash. */
#include "../../bpe/bpe.c"

#include "fuzz_check.h"

enum { MAX_PIECE = 16384 };

static int same_out(const out_t *a, const out_t *b) {
    return a->n == b->n && !memcmp(a->ids, b->ids, a->n * sizeof *a->ids);
}

/* Whether p[0..n) is a run of one of merge_run's alphabets after at most
 * one other byte. */
static int is_run(const uint8_t *p, size_t n) {
    for (int w = 0; w < BPE_RUNS; w++) {
        int in = 1;
        for (size_t i = 1; i < n; i++) in &= bpe_run_has(bpe_run_alphabets[w].lo, bpe_run_alphabets[w].size, p[i]);
        if (in && (n < 2 || bpe_run_has(bpe_run_alphabets[w].lo, bpe_run_alphabets[w].size, p[1]))) return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    const struct bpe *v = bpe_gpt2();
    static uint8_t p[MAX_PIECE + 1];
    static uint32_t want[MAX_PIECE + 1], got[MAX_PIECE + 1];
    static size_t offs[MAX_PIECE + 1];
    unsigned mode = data[0];
    const uint8_t *rest = data + 1, *alphabet = NULL;
    size_t k = 0, left = size - 1;
    if ((mode & 3) == 3) {
        k = rest[0] % 8 + 1;
        if (left < 1 + k) return 0;
        alphabet = rest + 1;
        rest += 1 + k;
        left -= 1 + k;
    }
    size_t n = 0;
    if (mode & 4) p[n++] = ' ';
    for (size_t i = 0; i < left && n < MAX_PIECE; i++) {
        uint8_t b = rest[i];
        p[n++] = (mode & 3) == 0 ? b : (mode & 3) == 1 ? (uint8_t)('0' + b % 10)
                                   : (mode & 3) == 2 ? (uint8_t)('a' + b % 26) : alphabet[b % k];
    }
    if (n < 2) return 0;

    out_t heap = {v, want, NULL, MAX_PIECE + 1, 0, 0, NULL, 1};
    merge_long(&heap, p, n, 0);
    CHECK(heap.n >= 1 && heap.n <= n);

    out_t o = {v, got, NULL, MAX_PIECE + 1, 0, 0, NULL, 1};
    if (merge_backtrack(&o, p, n, 0)) CHECK(same_out(&o, &heap));
    for (int segments = 1; segments <= 3; segments++) {
        o = (out_t){v, got, NULL, MAX_PIECE + 1, 0, 0, NULL, 1};
        if (merge_chunked(&o, p, n, 0, segments)) CHECK(same_out(&o, &heap));
    }
    o = (out_t){v, got, NULL, MAX_PIECE + 1, 0, 0, NULL, 2};
    if (split_piece(&o, p, n, 0)) CHECK(same_out(&o, &heap));
    /* with offsets, which merge_run works out from the tokens it emits */
    o = (out_t){v, got, offs, MAX_PIECE + 1, 0, 0, NULL, 1};
    if (merge_run(&o, p, n, 0)) {
        CHECK(is_run(p, n));
        CHECK(same_out(&o, &heap));
        for (size_t i = 0, at = 0; i < o.n; at += token_len(v, want[i++])) CHECK(offs[i] == at);
    }
    /* straight into the buffer */
    o = (out_t){v, got, NULL, n + 1 + (mode >> 3) * (MAX_PIECE - n) / 31, 0, 0, NULL, 1};
    if (merge_run(&o, p, n, 0)) CHECK(same_out(&o, &heap));
    return 0;
}
