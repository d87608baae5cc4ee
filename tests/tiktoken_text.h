/* tiktoken_text.h - vocabularies the C suites build as tiktoken rank files
 * in memory ("BASE64 RANK" lines; bpe_load_tiktoken_mem reads them), so a
 * test can have any tokens at any ranks without a file. */
#ifndef TESTS_TIKTOKEN_TEXT_H
#define TESTS_TIKTOKEN_TEXT_H

#include <stdint.h>
#include <stdio.h>

/* base64 of n bytes into out (room for 4 * ((n + 2) / 3) + 1); returns out. */
static inline char *b64(const uint8_t *p, size_t n, char *out) {
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t x = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        *o++ = A[x >> 18];
        *o++ = A[x >> 12 & 63];
        *o++ = i + 1 < n ? A[x >> 6 & 63] : '=';
        *o++ = i + 2 < n ? A[x & 63] : '=';
    }
    *o = 0;
    return out;
}

/* Writes the line "BASE64(p[0..n)) rank\n" at t (n <= 12); returns its length. */
static inline int tik_line(char *t, const void *p, size_t n, uint32_t rank) {
    char tok[20];
    return sprintf(t, "%s %u\n", b64(p, n, tok), rank);
}

/* The 256 byte tokens at ranks 0-255, at t; returns the length written. */
static inline size_t tik_bytes(char *t) {
    size_t len = 0;
    for (int i = 0; i < 256; i++) len += (size_t)tik_line(t + len, &(uint8_t){(uint8_t)i}, 1, (uint32_t)i);
    return len;
}

#endif
