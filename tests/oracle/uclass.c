/* uclass.c - prints, for every code point U+0000..U+10FFFF, one letter saying
 * how gpt2in classes it (utf8proc, plus bpe/unicode_update.h for code points
 * assigned after utf8proc's Unicode version) for
 * GPT-2's pre-tokenizer: L letter, N number, M combining mark, S White_Space,
 * O other assigned, U unassigned (Cn), X surrogate. Followed by a newline
 * and utf8proc's Unicode version. A test helper, built by the test scripts. */
#include <stdio.h>
#include <utf8proc.h>

#include "bpe_internal.h"   /* CLS_* */
#include "unicode_update.h" /* what gpt2in adds to utf8proc: letters and numbers assigned since */

static int is_white_space(int c) { /* the 25 White_Space code points */
    return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
           c == 0x205f || c == 0x3000;
}

int main(void) {
    static char line[0x110000 + 1];
    for (int c = 0; c < 0x110000; c++) {
        char k = 'O';
        switch (utf8proc_category(c)) {
        case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: k = 'L'; break;
        case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO: k = 'N'; break;
        case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: k = 'M'; break;
        case UTF8PROC_CATEGORY_CS: k = 'X'; break;
        case UTF8PROC_CATEGORY_CN:
            k = 'U';
            for (size_t i = 0; i < sizeof unicode_update / sizeof *unicode_update; i++)
                if (c >= (int)unicode_update[i].lo && c <= (int)unicode_update[i].hi)
                    k = unicode_update[i].cls == CLS_LETTER ? 'L' : 'N';
            break;
        default: break;
        }
        if (is_white_space(c)) k = 'S';
        line[c] = k;
    }
    line[0x110000] = 0;
    printf("%s\n%s + unicode_update.h\n", line, utf8proc_unicode_version());
    return 0;
}
