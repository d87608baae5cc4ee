/* pretok.h - the pre-tokenizer's view of characters: GPT-2's classes
 * (letter, number, space, other) of ASCII and of UTF-8 characters, and the
 * ends of runs of one class. Shared by the scanner (bpe.c) and the safe
 * cuts (parallel.c); not a public header. */
#ifndef BPE_PRETOK_H
#define BPE_PRETOK_H

#include "bpe_internal.h"

/* ---- characters ----------------------------------------------------------- */

#define O CLS_OTHER
#define L CLS_LETTER
#define N CLS_NUMBER
#define S CLS_SPACE
static const uint8_t ascii_cls[128] __attribute__((unused)) = {
    O, O, O, O, O, O, O, O, O, S, S, S, S, S, O, O,  /* \t \n \v \f \r */
    O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O,
    S, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O,  /* space */
    N, N, N, N, N, N, N, N, N, N, O, O, O, O, O, O,
    O, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
    L, L, L, L, L, L, L, L, L, L, L, O, O, O, O, O,
    O, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
    L, L, L, L, L, L, L, L, L, L, L, O, O, O, O, O,
};
/* The same for every byte, for the scanner's ASCII runs: a byte of 0x80
 * and up (part of a UTF-8 character, or invalid) is RUN_HIGH. */
#define H RUN_HIGH
#define RUN_HIGH 4
#define H16 H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H
static const uint8_t ascii_run[256] __attribute__((unused)) = {
    O, O, O, O, O, O, O, O, O, S, S, S, S, S, O, O,
    O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O,
    S, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O,
    N, N, N, N, N, N, N, N, N, N, O, O, O, O, O, O,
    O, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
    L, L, L, L, L, L, L, L, L, L, L, O, O, O, O, O,
    O, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
    L, L, L, L, L, L, L, L, L, L, L, O, O, O, O, O,
    H16, H16, H16, H16, H16, H16, H16, H16,
};
#undef H16
#undef H
#undef O
#undef L
#undef N
#undef S

#define CLS_INVALID (-1)

/* Length of the valid UTF-8 sequence at s[i] (i < end) and its code point,
 * or 0 when s[i] does not start one (bad lead byte, bad or missing
 * continuation, overlong form, surrogate, beyond U+10FFFF). */
static inline size_t utf8_decode(const uint8_t *s, size_t i, size_t end, uint32_t *cp) {
    uint8_t c = s[i];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xC2) return 0;
    if (c < 0xE0) {
        if (i + 1 >= end || (s[i + 1] & 0xC0) != 0x80) return 0;
        *cp = (uint32_t)(c & 0x1F) << 6 | (s[i + 1] & 0x3F);
        return 2;
    }
    if (c < 0xF0) {
        if (i + 2 >= end) return 0;
        uint8_t c1 = s[i + 1], c2 = s[i + 2];
        uint8_t lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        if (c1 < lo || c1 > hi || (c2 & 0xC0) != 0x80) return 0;
        *cp = (uint32_t)(c & 0x0F) << 12 | (uint32_t)(c1 & 0x3F) << 6 | (c2 & 0x3F);
        return 3;
    }
    if (c < 0xF5) {
        if (i + 3 >= end) return 0;
        uint8_t c1 = s[i + 1], c2 = s[i + 2], c3 = s[i + 3];
        uint8_t lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        if (c1 < lo || c1 > hi || (c2 & 0xC0) != 0x80 || (c3 & 0xC0) != 0x80) return 0;
        *cp = (uint32_t)(c & 0x07) << 18 | (uint32_t)(c1 & 0x3F) << 12 | (uint32_t)(c2 & 0x3F) << 6 |
              (c3 & 0x3F);
        return 4;
    }
    return 0;
}

/* Class of the character at s[i] and its length; CLS_INVALID (length 1)
 * for a byte that starts no valid character. */
static inline int char_at(const struct bpe *v, const uint8_t *s, size_t i, size_t end, size_t *len) {
    if (s[i] < 0x80) {
        *len = 1;
        return ascii_cls[s[i]];
    }
    uint32_t cp;
    size_t n = utf8_decode(s, i, end, &cp);
    if (!n) {
        *len = 1;
        return CLS_INVALID;
    }
    *len = n;
    return v->cls2[(size_t)v->cls1[cp >> 8] * 256 + (cp & 255)];
}

/* End of the run of class `cls` characters starting at i. */
static inline size_t run_end(const struct bpe *v, const uint8_t *s, size_t i, size_t end, int cls) {
    while (i < end) {
        if (s[i] < 0x80) {
            if (ascii_cls[s[i]] != cls) break;
            i++;
        } else {
            size_t n;
            if (char_at(v, s, i, end, &n) != cls) break;
            i += n;
        }
    }
    return i;
}

/* The end of the run of ASCII letters at i, 16 bytes at a time while 16
 * are left (the run may go on with other letters: run_end finishes it). */
static inline size_t ascii_letters_end(const uint8_t *s, size_t i, size_t end) {
#ifdef __SSE2__
    /* A byte | 0x20 is in 'a'..'z' exactly for ASCII letters; bytes of 0x80
     * and up stay negative, below 'a', as signed bytes. */
    const __m128i before_a = _mm_set1_epi8('a' - 1), after_z = _mm_set1_epi8('z' + 1),
                  lower = _mm_set1_epi8(0x20);
    while (end - i >= 16) {
        __m128i x = _mm_or_si128(_mm_loadu_si128((const __m128i *)(s + i)), lower);
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_and_si128(_mm_cmpgt_epi8(x, before_a), _mm_cmplt_epi8(x, after_z)));
        if (m != 0xFFFF) return i + (size_t)__builtin_ctz(~m);
        i += 16;
    }
#else
    (void)s;
    (void)end;
#endif
    return i;
}

/* run_end, letters first through ascii_letters_end. */
static inline size_t class_run_end(const struct bpe *v, const uint8_t *s, size_t i, size_t end, int cls) {
    if (cls == CLS_LETTER) i = ascii_letters_end(s, i, end);
    return run_end(v, s, i, end, cls);
}

#endif
