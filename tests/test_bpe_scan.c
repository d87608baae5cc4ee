/* test_bpe_scan.c - the scanner's ASCII path (bpe/pretok.c) against its
 * path for any character: bpe_encode with offsets asked for, or with a
 * buffer too small for a token a byte, takes the general path for every
 * piece; without them, ASCII pieces take the fast one. On random texts
 * where ASCII runs meet letters, digits, spaces and punctuation of more
 * than one byte, invalid bytes and the end of the text (the fast path's
 * places to hand over), the ids must be the same three ways. The general
 * path is the one the differential test checks against tiktoken.
 *
 * Then the piece cache, which only texts of 64 KB and more have: a long
 * text of lines that repeat pieces of every length up to 256 bytes (rules
 * of dashes, table borders, runs of spaces, words), against the same text
 * encoded a line at a time (each line short, so no cache); and the same
 * for an indented text, whose runs of spaces merge not at all. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"

#include "rnd.h"

/* Bits of text, each a character or a run the scanner cares about. */
static const char *const bits[] = {
    "a", "Z", "the", "word", "Hello", "abcdefghijklmnop", "0", "42", "2026", "1234567890123",
    " ", " ", "  ", "   ", "\n", "\n\n", "\t", "\r\n", "\v", "\f",
    ".", ",", "!", "?", "--", "==", "+---+", "()", "{}", "_", "#", "'", "\"", "`", "\\",
    "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'x",
    "\xC3\xA9",             /* e acute: a letter */
    "\xE4\xB8\xAD",         /* a CJK letter */
    "\xC2\xA0",             /* no-break space: \s */
    "\xE2\x80\x83",         /* em space: \s */
    "\xE3\x80\x80",         /* ideographic space: \s */
    "\xC2\xB2",             /* superscript two: \p{N} */
    "\xD9\xA3",             /* Arabic-Indic three: \p{N} */
    "\xE2\x80\x94",         /* em dash: other */
    "\xC2\xBB",             /* guillemet: other */
    "\xF0\x9F\x98\x80",     /* an emoji: other */
    "\xCC\x81",             /* a combining mark: other */
    "\xFF", "\xC3", "\x80", /* invalid */
    "\x00", "\x1F", "\x7F",
};
#define N_BITS (sizeof bits / sizeof bits[0])

static int failures;

static void check(const char *text, size_t len, uint32_t *a, uint32_t *b, uint32_t *c, size_t *offs) {
    const bpe *v = bpe_gpt2();
    size_t na, nb, nc;
    bpe_error err;
    int ra = bpe_encode(v, text, len, BPE_SPECIAL_TEXT, a, NULL, len + 1, &na, &err);
    int rb = bpe_encode(v, text, len, BPE_SPECIAL_TEXT, b, offs, len + 1, &nb, &err);
    /* room for all but one of the tokens: the general path, counting */
    size_t cap = na ? na - 1 : 0;
    int rc = bpe_encode(v, text, len, BPE_SPECIAL_TEXT, c, NULL, cap, &nc, &err);
    if (ra || rb || rc || na != nb || na != nc || memcmp(a, b, na * sizeof *a) || memcmp(a, c, cap * sizeof *a)) {
        if (failures++ < 5) {
            fprintf(stderr, "ids differ (%zu / %zu / %zu tokens) for %zu bytes:", na, nb, nc, len);
            for (size_t i = 0; i < len && i < 80; i++) fprintf(stderr, " %02X", (unsigned char)text[i]);
            fprintf(stderr, "%s\n", len > 80 ? " ..." : "");
        }
    }
}

int main(void) {
    enum { MAX = 4096 };
    static char text[MAX + 64];
    static uint32_t a[MAX + 64], b[MAX + 64], c[MAX + 64];
    static size_t offs[MAX + 64];
    size_t texts = 0;
    for (int round = 0; round < 20000; round++) {
        size_t len = 0, want = 1 + rnd() % (round % 10 ? 40 : MAX);
        while (len < want) {
            const char *s = bits[rnd() % N_BITS];
            size_t n = strlen(s) ? strlen(s) : 1;  /* "\x00" is one NUL byte */
            if (len + n > MAX) break;
            memcpy(text + len, s, n);
            len += n;
        }
        /* every length of the text's start: the fast path's last 16 bytes */
        if (len <= 40) {
            for (size_t k = 1; k <= len; k++, texts++) check(text, k, a, b, c, offs);
        } else {
            check(text, len, a, b, c, offs);
            texts++;
        }
    }
    /* Lines "x... .\n": each starts a piece with its letter and the
     * newline before it is a piece of its own, so the text's ids are the
     * lines' ids one after another. */
    static const char *const line_bits[] = {"-", "=", "+---", "+", " ", "  ", "word", " the", ".", "'s", "\xC3\xA9", "0"};
    enum { BIG = 1 << 18 };
    char *big = malloc(BIG + 1024);
    uint32_t *whole = malloc((BIG + 1024) * sizeof *whole), *parts = malloc((BIG + 1024) * sizeof *parts);
    size_t blen = 0, nparts = 0, nwhole = 0, lines = 0;
    bpe_error err;
    if (!big || !whole || !parts) return 2;
    /* a few hundred distinct lines, each used many times */
    uint64_t seed0 = rng;
    while (blen < BIG) {
        size_t from = blen;
        rng = seed0 + rnd() % 300 * 0x9E3779B97F4A7C15ull + 1;
        big[blen++] = 'x';
        size_t want = 1 + rnd() % 6;
        for (size_t b = 0; b < want; b++) {
            const char *s = line_bits[rnd() % (sizeof line_bits / sizeof line_bits[0])];
            size_t reps = rnd() % 4 ? 1 : 1 + rnd() % 300;
            for (size_t r = 0; r < reps && blen < BIG + 600; r++) {
                memcpy(big + blen, s, strlen(s));
                blen += strlen(s);
            }
        }
        big[blen++] = '.';
        big[blen++] = '\n';
        size_t got;
        if (bpe_encode(bpe_gpt2(), big + from, blen - from, BPE_SPECIAL_TEXT, parts + nparts, NULL, blen - from, &got,
                       &err))
            return 2;
        nparts += got;
        lines++;
        rng = seed0 + lines;
    }
    if (bpe_encode(bpe_gpt2(), big, blen, BPE_SPECIAL_TEXT, whole, NULL, blen, &nwhole, &err)) return 2;
    if (nwhole != nparts || memcmp(whole, parts, nwhole * sizeof *whole)) {
        size_t k = 0;
        while (k < nwhole && k < nparts && whole[k] == parts[k]) k++;
        fprintf(stderr, "a %zu-byte text of %zu lines: %zu ids whole, %zu a line at a time; first difference at id %zu\n",
                blen, lines, nwhole, nparts, k);
        failures++;
    }
    /* Indentation: "x\n", k spaces, "y." for k = 1..40 over and over, so
     * that pieces of a newline and spaces, which GPT-2 leaves a token a
     * byte, recur at every length up to past the cache's; the units' ids
     * one after another (each unit ends with "." and the next starts with
     * "x", two pieces). */
    size_t units = 0, ilen = 0;
    nparts = 0;
    while (ilen < BIG) {
        size_t from = ilen, k = 1 + units++ % 40, got;
        big[ilen++] = 'x';
        big[ilen++] = '\n';
        memset(big + ilen, ' ', k);
        ilen += k;
        big[ilen++] = 'y';
        big[ilen++] = '.';
        if (bpe_encode(bpe_gpt2(), big + from, ilen - from, BPE_SPECIAL_TEXT, parts + nparts, NULL, ilen - from, &got,
                       &err))
            return 2;
        nparts += got;
    }
    if (bpe_encode(bpe_gpt2(), big, ilen, BPE_SPECIAL_TEXT, whole, NULL, ilen, &nwhole, &err)) return 2;
    if (nwhole != nparts || memcmp(whole, parts, nwhole * sizeof *whole)) {
        size_t k = 0;
        while (k < nwhole && k < nparts && whole[k] == parts[k]) k++;
        fprintf(stderr, "a %zu-byte indented text: %zu ids whole, %zu a unit at a time; first difference at id %zu\n",
                ilen, nwhole, nparts, k);
        failures++;
    }
    free(big);
    free(whole);
    free(parts);
    if (failures) {
        fprintf(stderr, "test_bpe_scan: %d of %zu texts differ\n", failures, texts);
        return 1;
    }
    printf("test_bpe_scan: %zu texts, the same ids on both paths; a %zu-byte text of %zu lines, the same ids whole\n",
           texts, blen, lines);
    return 0;
}
