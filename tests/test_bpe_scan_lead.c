/* test_bpe_scan_lead.c - the window scanner's vector path for characters
 * of 2 and 3 bytes that their lead byte (kana: their first two) makes
 * letters (high_letters_avx2 in bpe/pretok.c), against the per-character
 * scanner.
 *
 * First the facts the path rests on: every code point behind those lead
 * bytes is \p{L} in the vocabulary's classes. Then texts dense in
 * characters of 0x80 and up (the path runs on windows with a dozen such
 * bytes or more): every code point of U+0080..U+FFFF in turn, and random
 * mixes of those letters with their near misses (the E4 B7 symbols, C3's
 * multiplication and division signs, the kana blocks' marks and
 * punctuation, other leads), white space of two and three bytes
 * (U+0085, U+00A0, U+2028, U+3000), combining marks, digits of other
 * scripts, characters of four bytes, invalid bytes (a lead cut short, a
 * stray continuation, a surrogate, an overlong form) and ASCII, so that
 * characters straddle a window's end. Each text is encoded with GPT-2
 * and with a vocabulary of every pair of bytes (ranks shuffled): byte-level
 * GPT-2 rarely merges across a character, so a piece cut in the wrong
 * place may give the same ids, but with every pair a token it rarely
 * does. Last, runs of one class longer than a window (the window scanner
 * finds their end from the window's last character on), each length
 * around the window's end, with each way a run ends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"

#define RND_SEED 0x9E3779B97F4A7C15ull
#include "rnd.h"

static const char *const isa_name[] = {"auto", "baseline", "AVX2"};
static int failures;
static size_t texts;

static void check(const struct bpe *v, const char *vname, const uint8_t *s, size_t len) {
    static uint32_t ref[1 << 16], ids[1 << 16];
    static size_t offs[1 << 16];
    out_t r = {v, ref, offs, len + 1, 0, 0, NULL, 1};
    bpe_encode_text(&r, s, 0, len);
    texts++;
    for (int isa = BPE_SCAN_BASE; isa <= BPE_SCAN_AVX2; isa++) {
        if (!bpe_scan_supported(isa)) continue;
        out_t o = {v, ids, NULL, len + 1, 0, 0, NULL, 1};
        bpe_encode_text_isa(&o, s, 0, len, isa);
        if (o.n == r.n && !memcmp(ids, ref, r.n * sizeof *ids)) continue;
        if (failures++ < 5) {
            size_t k = 0;
            while (k < r.n && k < o.n && ids[k] == ref[k]) k++;
            size_t at = k < r.n ? offs[k] : len, from = at > 24 ? at - 24 : 0;
            fprintf(stderr, "%s, %s scanner: %zu ids, per character %zu; first difference at id %zu, byte %zu:",
                    vname, isa_name[isa], o.n, r.n, k, at);
            for (size_t i = from; i < len && i < from + 48; i++) fprintf(stderr, " %02X", s[i]);
            fprintf(stderr, "\n");
        }
    }
}

static size_t put_utf8(uint8_t *p, uint32_t cp) {
    if (cp < 0x80) return p[0] = (uint8_t)cp, 1;
    if (cp < 0x800) return p[0] = (uint8_t)(0xC0 | cp >> 6), p[1] = (uint8_t)(0x80 | (cp & 63)), 2;
    if (cp < 0x10000)
        return p[0] = (uint8_t)(0xE0 | cp >> 12), p[1] = (uint8_t)(0x80 | (cp >> 6 & 63)),
               p[2] = (uint8_t)(0x80 | (cp & 63)), 3;
    p[0] = (uint8_t)(0xF0 | cp >> 18), p[1] = (uint8_t)(0x80 | (cp >> 12 & 63));
    p[2] = (uint8_t)(0x80 | (cp >> 6 & 63)), p[3] = (uint8_t)(0x80 | (cp & 63));
    return 4;
}

/* The code points pretok.c's vector path takes as letters by their lead
 * byte (C3 but for C3 97 and C3 B7; C4..CA; D0 D1 D3; DA; E4 but for E4
 * B7; E5..E9; EB EC) or, for kana, by their first two (E3 81..83 but for
 * U+3040, U+3097..309C, U+30A0 and U+30FB). */
static const struct { uint32_t lo, hi; } letter_leads[] = {
    {0x00C0, 0x00D6}, {0x00D8, 0x00F6}, {0x00F8, 0x02BF},
    {0x0400, 0x047F}, {0x04C0, 0x04FF}, {0x0680, 0x06BF},
    {0x3041, 0x3096}, {0x309D, 0x309F}, {0x30A1, 0x30FA}, {0x30FC, 0x30FF},
    {0x4000, 0x4DBF}, {0x4E00, 0x9FFF}, {0xB000, 0xCFFF},
};

static uint32_t cls_of(const struct bpe *v, uint32_t cp) { return v->cls2[(size_t)v->cls1[cp >> 8] * 256 + (cp & 255)]; }

/* A letter the vector path takes. */
static uint32_t fast_letter(void) {
    for (;;) {
        size_t k = rnd() % (sizeof letter_leads / sizeof *letter_leads);
        return letter_leads[k].lo + rnd() % (letter_leads[k].hi - letter_leads[k].lo + 1);
    }
}

/* Everything else a window may hold, as bytes. */
static const char *const others[] = {
    "\xE4\xB7\x80", "\xE4\xB7\xBF", "\xE4\xB6\xBF", "\xE4\xB8\x80", /* Yijing symbols; around them */
    "\xC3\x97", "\xC3\xB7", "\xC3\xA9", "\xC3\x80", "\xC2\xAA", "\xC2\xB5", /* x, division; letters */
    "\xD2\x82", "\xD2\x83", "\xD4\xB0", "\xCF\xB6", "\xCE\xB1", "\xD9\x85", /* not letters; letters */
    "\xC2\x85", "\xC2\xA0", "\xE2\x80\xA8", "\xE2\x80\xA9", "\xE3\x80\x80", "\xE2\x80\x83", /* \s */
    "\xCC\x81", "\xD2\x89", "\xE0\xA4\xBF", /* combining marks */
    "\xD9\xA3", "\xDB\xB0", "\xE0\xA5\xA6", "\xEF\xBC\x90", "\xC2\xB2", "\xE2\x85\xA0", /* \p{N} */
    "\xE3\x81\x82", "\xE3\x82\xA2", "\xE3\x80\x81", "\xEF\xBC\x8C", "\xEA\xB0\x80", "\xE3\x80\x85", /* kana, CJK */
    "\xE3\x81\x80", "\xE3\x82\x97", "\xE3\x82\x9C", "\xE3\x82\x9D", "\xE3\x82\xA0", "\xE3\x83\xBB", /* kana's edges */
    "\xE3\x83\xBC", "\xE3\x84\x85", "\xE3\x81", "\xE3\x81\x41", "\xC4\x97", "\xC4\xB7", "\xE4\x97\x80",
    "\xF0\x9F\x98\x80", "\xF0\xA0\x80\x80", "\xF0\x9D\x90\x80", /* four bytes */
    "\x80", "\xBF", "\xD0", "\xE5", "\xE5\x80", "\xE4\xB7", "\xD0\xD0", "\xF8", "\xFF", /* invalid */
    "\xED\xA0\x80", "\xE0\x80\x80", "\xC0\x80", "\xC1\xBF", "\xF4\x90\x80\x80",
    "a", "Z", "7", " ", " ", "  ", "\n", "\t", ".", ",", "-", "'", "'s", "'ll", "'t",
};
#define N_OTHERS (sizeof others / sizeof *others)

int main(void) {
    const struct bpe *gpt2 = (const struct bpe *)bpe_gpt2();
    /* the facts */
    for (size_t k = 0; k < sizeof letter_leads / sizeof *letter_leads; k++)
        for (uint32_t cp = letter_leads[k].lo; cp <= letter_leads[k].hi; cp++)
            if (cls_of(gpt2, cp) != CLS_LETTER) {
                fprintf(stderr, "test_bpe_scan_lead: U+%04X is not \\p{L}, but its lead byte is a letter's\n", cp);
                failures++;
            }
    /* a vocabulary of every byte and every pair of bytes */
    static uint16_t order[65536];
    for (uint32_t k = 0; k < 65536; k++) order[k] = (uint16_t)k;
    for (uint32_t k = 65535; k > 0; k--) {
        uint32_t j = rnd() % (k + 1);
        uint16_t t = order[k];
        order[k] = order[j], order[j] = t;
    }
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *file = malloc((256 + 65536) * 16), *f = file;
    if (!file) return 1;
    for (uint32_t k = 0; k < 256 + 65536; k++) {
        uint32_t b = k < 256 ? k : order[k - 256];
        if (k < 256)
            f += sprintf(f, "%c%c==", b64[b >> 2], b64[(b & 3) << 4]);
        else
            f += sprintf(f, "%c%c%c=", b64[b >> 10], b64[b >> 4 & 63], b64[(b & 15) << 2]);
        f += sprintf(f, " %u\n", k);
    }
    bpe_error err;
    const struct bpe *pairs = (const struct bpe *)bpe_load_tiktoken_mem(file, (size_t)(f - file), "pairs", &err);
    free(file);
    if (!pairs) {
        fprintf(stderr, "test_bpe_scan_lead: the pairs vocabulary: %s\n", err.msg);
        return 1;
    }
    static uint8_t text[1 << 16];
    /* every code point of two and three bytes, runs of 1..7 between ASCII
     * and white space */
    static const char *const seps[] = {" ", ".", "a", "1", "  ", "\n", "\xC2\xA0", "\xE3\x80\x80", "'s"};
    uint32_t cp = 0x80;
    for (int round = 0; cp < 0x10000; round++) {
        size_t len = 0;
        while (len < 4000 && cp < 0x10000) {
            for (uint32_t n = 1 + rnd() % 7; n-- && cp < 0x10000; cp++)
                if (cp < 0xD800 || cp >= 0xE000) len += put_utf8(text + len, cp);
            const char *sep = seps[rnd() % (sizeof seps / sizeof *seps)];
            memcpy(text + len, sep, strlen(sep));
            len += strlen(sep);
        }
        check(gpt2, "GPT-2", text, len);
        check(pairs, "pairs", text, len);
    }
    /* random mixes, mostly letters of the vector path */
    for (int round = 0; round < 6000; round++) {
        size_t len = 0, want = 80 + rnd() % 600;
        unsigned dense = 60 + rnd() % 40; /* percent of letters of the path */
        while (len < want) {
            if (rnd() % 100 < dense) {
                len += put_utf8(text + len, fast_letter());
            } else {
                const char *b = others[rnd() % N_OTHERS];
                memcpy(text + len, b, strlen(b));
                len += strlen(b);
            }
        }
        check(gpt2, "GPT-2", text, len);
        check(pairs, "pairs", text, len);
    }
    /* runs longer than a window (long_run in bpe/pretok.c): letters,
     * digits and other characters of one to four bytes, with or without a
     * space before them, of every length around the window's 63 bytes
     * (a character straddling byte 62 or 63), ended by each way a run ends
     * (another class, white space of one to three bytes, an invalid byte, a
     * combining mark, the end of the text) */
    static const char *const unit[] = {"a", "7", ".", "\xD0\xB4", "\xC3\xA9", "\xE4\xB8\xAD", "\xE3\x81\x82",
                                       "\xD9\xA3", "\xEF\xBC\x90", "\xE2\x80\x94", "\xC2\xBB",
                                       "\xF0\x9D\x90\x80", "\xF0\x9F\x98\x80", "\xCC\x81", "\xE4\xB7\x80"};
    static const char *const stop[] = {"", " ", "  x", "\n", "b", "5", ",", "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\xA8",
                                       "\xC2\x85", "\x80", "\xE4\xB8", "\xCC\x81", "'s", "\xD0\xB4"};
    for (size_t u = 0; u < sizeof unit / sizeof *unit; u++)
        for (size_t st = 0; st < sizeof stop / sizeof *stop; st++)
            for (int space = 0; space < 2; space++)
                for (size_t want = 56; want < 140; want++) {
                    size_t len = 0, ul = strlen(unit[u]);
                    if (space) text[len++] = ' ';
                    while (len + ul <= want) {
                        memcpy(text + len, unit[u], ul);
                        len += ul;
                    }
                    /* a second unit of the same class in the run, at a varying place */
                    if (ul == 1 && len > 4) text[len - 1 - want % 3] = (uint8_t)(unit[u][0] == 'a' ? 'q' : unit[u][0] == '7' ? '2' : '-');
                    memcpy(text + len, stop[st], strlen(stop[st]));
                    len += strlen(stop[st]);
                    if (want % 2) { /* and more text after it, for the windows after */
                        memcpy(text + len, " and 12 more.", 13);
                        len += 13;
                    }
                    check(gpt2, "GPT-2", text, len);
                    if (want % 4 == 0) check(pairs, "pairs", text, len);
                }
    bpe_free((const bpe *)pairs);
    if (failures) {
        fprintf(stderr, "test_bpe_scan_lead: %d failures in %zu texts\n", failures, texts);
        return 1;
    }
    printf("test_bpe_scan_lead: %zu texts, the same ids from the window scanner built for", texts);
    for (int isa = BPE_SCAN_BASE; isa <= BPE_SCAN_AVX2; isa++)
        if (bpe_scan_supported(isa)) printf(" %s", isa_name[isa]);
    printf(" as from the per-character scanner, with GPT-2 and a vocabulary of byte pairs\n");
    return 0;
}
