/* shown.c - see shown.h. */
#include "shown.h"

#include <utf8proc.h>

size_t gpt2in_shown_len(const unsigned char *s, size_t n) {
    if (s[0] < 0x80) return s[0] >= 0x20 && s[0] < 0x7f && s[0] != '"' && s[0] != '\\';
    utf8proc_int32_t cp;
    utf8proc_ssize_t len = utf8proc_iterate(s, (utf8proc_ssize_t)n, &cp);
    if (len <= 0) return 0;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP: case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_CS:
        return 0;
    default:
        return (size_t)len;
    }
}
