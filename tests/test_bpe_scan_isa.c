/* test_bpe_scan_isa.c - the window scanner of bpe/pretok.c, built for each
 * instruction set (the x86-64 baseline, AVX2 with BMI1/2) that
 * this CPU has, against the per-character scanner (the path a call that
 * asks for offsets takes, which the differential test checks against
 * tiktoken). bpe_encode_text_isa runs one build of the scanner on purpose,
 * so the builds that this machine would not pick are tested too.
 *
 * Texts of 80 bytes and more (the windows' minimum): random mixes of
 * letters, digits, spaces, punctuation, contractions, characters of two to
 * four bytes (letters, digits, spaces, other) and invalid bytes; random
 * bytes of every value; a contraction put at each place around the
 * end of the first window, after runs of letters, digits, spaces and
 * punctuation; and runs of newlines and spaces across it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"

#include "rnd.h"

static const char *const bits[] = {
    "a", "Z", "the", "word", "Hello", "abcdefghijklmnop", "0", "42", "2026", "1234567890123",
    " ", " ", " ", "  ", "   ", "\n", "\n\n", "\t", "\r\n", "\v", "\f",
    ".", ",", "!", "?", "--", "==", "+---+", "()", "{}", "_", "#", "'", "''", "\"", "`", "\\",
    "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'x", "'r", "'l", "'v",
    " the", " of", " and", " information", " implementation", " relationship",
    "\xC3\xA9",             /* e acute: a letter */
    "\xD0\xB4\xD0\xB0",     /* Cyrillic letters */
    "\xE4\xB8\xAD",         /* a CJK letter */
    "\xC2\xA0",             /* no-break space: \s */
    "\xE2\x80\x83",         /* em space: \s */
    "\xE3\x80\x80",         /* ideographic space: \s */
    "\xC2\x85",             /* next line: \s */
    "\xC2\xB2",             /* superscript two: \p{N} */
    "\xD9\xA3",             /* Arabic-Indic three: \p{N} */
    "\xE2\x80\x94",         /* em dash: other */
    "\xC2\xBB",             /* guillemet: other */
    "\xF0\x9F\x98\x80",     /* an emoji: other */
    "\xF0\x9D\x90\x80",     /* mathematical bold A: a letter of 4 bytes */
    "\xCC\x81",             /* a combining mark: other */
    "\xFF", "\xC3", "\x80", "\xE4\xB8", "\xF0\x9F\x98", /* invalid */
    "\xED\xA0\x80", "\xE0\x9F\xBF", "\xC1\xBF", "\xF0\x8F\xBF\xBF", /* a surrogate, overlong forms */
    "\xED\xBF\xBF", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xF8\x90\x80\x80", /* past U+10FFFF */
    "\xE4\x38\xAD", "\xC3\x41", "\xF0\x50\x80\x80", "\xF0\x9F\x41\x80", "\xF0\x9F\x98\x41", /* not continued */
    "\xE4\xB8\x41", "\xE4\x41\x80",
    "\xED\x9F\xBF", "\xE0\xA0\x80", "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF", /* valid at the edges */
    "\xEF\xBF\xBD", "\xD1\x8F", "\xDF\xBF", "\xC2\x80",
    "\x00", "\x1F", "\x7F",
};
#define N_BITS (sizeof bits / sizeof bits[0])

static const char *const isa_name[] = {"auto", "baseline", "AVX2"};
static int failures;
static size_t texts;

/* The ids of the per-character scanner (offsets asked for) into ref. */
static size_t reference(const uint8_t *s, size_t len, uint32_t *ref, size_t *offs) {
    out_t o = {(const struct bpe *)bpe_gpt2(), ref, offs, len + 1, 0, 0, NULL, 1};
    bpe_encode_text(&o, s, 0, len);
    return o.n;
}

static void check(const uint8_t *s, size_t len, uint32_t *ref, uint32_t *ids, size_t *offs) {
    size_t nr = reference(s, len, ref, offs);
    int bad = 0;
    texts++;
    for (int isa = BPE_SCAN_BASE; isa <= BPE_SCAN_AVX2; isa++) {
        if (!bpe_scan_supported(isa)) continue;
        out_t o = {(const struct bpe *)bpe_gpt2(), ids, NULL, len + 1, 0, 0, NULL, 1};
        bpe_encode_text_isa(&o, s, 0, len, isa);
        if (o.n != nr || memcmp(ids, ref, nr * sizeof *ids)) {
            if (!bad++ && failures < 5) {
                size_t k = 0;
                while (k < nr && k < o.n && ids[k] == ref[k]) k++;
                fprintf(stderr, "%s scanner: %zu ids, per character %zu, first difference at id %zu, for %zu bytes:",
                        isa_name[isa], o.n, nr, k, len);
                for (size_t i = 0; i < len && i < 100; i++) fprintf(stderr, " %02X", s[i]);
                fprintf(stderr, "%s\n", len > 100 ? " ..." : "");
            }
        }
    }
    failures += bad > 0;
}

int main(void) {
    enum { MAX = 2048 };
    static uint8_t text[MAX + 64];
    static uint32_t ref[MAX + 64], ids[MAX + 64];
    static size_t offs[MAX + 64];
    /* random mixes of the bits */
    for (int round = 0; round < 30000; round++) {
        size_t len = 0, want = 80 + rnd() % (round % 10 ? 300 : MAX - 80);
        /* some texts lean on a few bits, for long runs of one kind */
        size_t pool = round % 3 ? N_BITS : 1 + rnd() % 6, base = rnd() % N_BITS;
        while (len < want) {
            const char *b = bits[(base + rnd() % pool) % N_BITS];
            size_t n = strlen(b) ? strlen(b) : 1; /* "\x00" is one NUL byte */
            if (len + n > MAX) break;
            memcpy(text + len, b, n);
            len += n;
        }
        if (len < 80) continue;
        check(text, len, ref, ids, offs);
    }
    /* random bytes: every byte value in every place of a window */
    for (int round = 0; round < 3000; round++) {
        size_t len = 80 + rnd() % 400;
        for (size_t i = 0; i < len; i++) {
            uint32_t r = rnd();
            /* mostly ASCII, so that runs and pieces form among the rest */
            text[i] = (uint8_t)(r % 4 ? r >> 8 & 0x7F : r >> 8);
        }
        check(text, len, ref, ids, offs);
    }
    /* a contraction at each place around the first window's end, after a
     * run that ends where it starts */
    static const char *const runs[] = {"x", "7", " ", ".", " y", "\n"};
    static const char *const tails[] = {"'ll", "'re", "'s", "'d", "'ve", "'x", "'lL"};
    for (size_t r = 0; r < sizeof runs / sizeof *runs; r++)
        for (size_t t = 0; t < sizeof tails / sizeof *tails; t++)
            for (size_t k = 40; k < 72; k++) {
                size_t len = 0, rl = strlen(runs[r]);
                while (len + rl <= k) {
                    memcpy(text + len, runs[r], rl);
                    len += rl;
                }
                memcpy(text + len, tails[t], strlen(tails[t]));
                len += strlen(tails[t]);
                for (; len < 160; len++) text[len] = (uint8_t)"ab cd, 12 'll"[len % 13];
                check(text, len, ref, ids, offs);
            }
    /* pieces of newlines and spaces (the indentation the window writes
     * without the piece cache): 0-3 newlines and 0-70 spaces after a run
     * that ends at each place across the first window's end, followed by a
     * word, a letter or a space of two bytes, a tab, a carriage return, or
     * the end of the text */
    static const char *const lead[] = {"x", ".", "7", "\t"};
    static const char *const after[] = {"word", "\xC3\xA9t\xC3\xA9", "\xE2\x80\x83x", "\tx", "\r\n", "'s", ""};
    for (size_t l = 0; l < sizeof lead / sizeof *lead; l++)
        for (size_t a = 0; a < sizeof after / sizeof *after; a++)
            for (size_t nl = 0; nl < 4; nl++)
                for (size_t k = 0; k < 72; k += 1 + (nl + a) % 3)
                    for (size_t sp = 0; sp < 70; sp += 1 + (k + sp) % 2) {
                        size_t len = 0;
                        for (; len < k; len++) text[len] = (uint8_t)lead[l][0];
                        for (size_t j = 0; j < nl; j++) text[len++] = '\n';
                        for (size_t j = 0; j < sp; j++) text[len++] = ' ';
                        memcpy(text + len, after[a], strlen(after[a]));
                        len += strlen(after[a]);
                        if (*after[a] || len < 80)
                            for (size_t end = len + 90; len < end; len++) text[len] = (uint8_t)"\n  ab\n\n   cd,  "[len % 15];
                        check(text, len, ref, ids, offs);
                    }
    /* every token of 12-16 letters (with or without a space before them),
     * alone and with a letter after its 11th changed: the same length and
     * slot bytes, another piece */
    const struct bpe *v = (const struct bpe *)bpe_gpt2();
    for (uint32_t t = 0; t < v->n_tokens; t++) {
        const uint8_t *b = v->tok_bytes + v->tok_off[t];
        size_t n = token_len(v, t), letters = 1;
        if (n < 12 || n > 16) continue;
        for (size_t i = b[0] == ' '; i < n; i++) letters &= (b[i] | 0x20) >= 'a' && (b[i] | 0x20) <= 'z';
        if (!letters) continue;
        for (size_t at = 10; at < n; at++) {
            size_t len = 0;
            memcpy(text, "x.", 2);
            len = 2;
            memcpy(text + len, b, n);
            text[len + at] = (uint8_t)(text[len + at] == 'q' ? 'z' : 'q');
            len += n;
            memcpy(text + len, b, n); /* the token itself after it */
            len += n;
            for (; len < 100; len++) text[len] = (uint8_t)". x, 12"[len % 7];
            check(text, len, ref, ids, offs);
        }
    }
    if (failures) {
        fprintf(stderr, "test_bpe_scan_isa: %d of %zu texts differ\n", failures, texts);
        return 1;
    }
    printf("test_bpe_scan_isa: %zu texts, the same ids from the window scanner built for", texts);
    for (int isa = BPE_SCAN_BASE; isa <= BPE_SCAN_AVX2; isa++)
        if (bpe_scan_supported(isa)) printf(" %s", isa_name[isa]);
    printf(" as from the per-character scanner\n");
    return 0;
}
