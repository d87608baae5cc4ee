/* fuzz_pieces - libFuzzer target for the long-piece encoder of bpe/bpe.c
 * (included, for its internals) on the built-in GPT-2 vocabulary, against
 * the definition: bpe_merge_long, the heap that follows tiktoken's merge loop
 * step by step.
 *
 * Input: byte 0 selects how the rest becomes one piece:
 *   bits 0-1: 0 the bytes as they are; 1 digits (each byte mod 10);
 *             2 lowercase letters (mod 26); 3 an alphabet of the next
 *             1-8 bytes (byte 1 mod 8 + 1 of them), each byte picking one;
 *   bit 2:    a space before it (" 123...", as the pre-tokenizer gives);
 *   bits 3-4: segments for bpe_merge_last, 1-4 (each found alone, then
 *             joined).
 * Checked: bpe_merge_last (with and without offsets, and counting only) and
 * bpe_split_piece give the heap's tokens and offsets. A broken property calls
 * abort(), which libFuzzer reports as a crash. */
#include "../../bpe/bpe.c"

#include "fuzz_check.h"

enum { MAX_PIECE = 16384 };

static int same_out(const out_t *a, const out_t *b) {
    return a->n == b->n && !memcmp(a->ids, b->ids, a->n * sizeof *a->ids);
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
    bpe_merge_long(&heap, p, n, 0);
    CHECK(heap.n >= 1 && heap.n <= n);

    int segments = 1 + (int)(mode >> 3 & 3);
    out_t o = {v, got, NULL, MAX_PIECE + 1, 0, 0, NULL, 1};
    CHECK(bpe_merge_last(&o, p, n, 0, segments));
    CHECK(same_out(&o, &heap));
    /* with offsets, worked out from the tokens */
    o = (out_t){v, got, offs, MAX_PIECE + 1, 0, 0, NULL, 1};
    CHECK(bpe_merge_last(&o, p, n, 0, segments));
    CHECK(same_out(&o, &heap));
    for (size_t i = 0, at = 0; i < o.n; at += token_len(v, want[i++])) CHECK(offs[i] == at);
    /* counting only */
    o = (out_t){v, NULL, NULL, 0, 0, 0, NULL, 1};
    CHECK(bpe_merge_last(&o, p, n, 0, segments) && o.n == heap.n);
    o = (out_t){v, got, NULL, MAX_PIECE + 1, 0, 0, NULL, 2};
    if (bpe_split_piece(&o, p, n, 0)) CHECK(same_out(&o, &heap));
    return 0;
}
