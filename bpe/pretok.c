/* pretok.c - the pre-tokenizer: GPT-2's regex as a hand-written scanner
 * over character classes (pretok.h), each piece encoded as it is found
 * (encode_piece, encode.h). */
#include "encode.h"
#include "pretok.h"

/* Encodes s[i..end) as a whole text: `end` is the end of input for the
 * regex, and every invalid byte ends a stretch of text as well (it becomes
 * its own piece). Offsets are s-relative. */
void bpe_encode_text(out_t *o, const uint8_t *s, size_t i, size_t end) {
    const struct bpe *v = o->v;
    while (i < end) {
        size_t start = i, len, len2;
        uint8_t c = s[i];
        int cls = char_at(v, s, i, end, &len);
        if (cls == CLS_INVALID) {
            emit(o, v->byte_tok[c], i);
            i++;
            continue;
        }
        if (c == '\'' && i + 1 < end) {  /* 's 't 're 've 'm 'll 'd */
            uint8_t d = s[i + 1], e = i + 2 < end ? s[i + 2] : 0;
            size_t n = (d == 's' || d == 't' || d == 'm' || d == 'd') ? 2
                       : ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l')) ? 3
                       : 0;
            if (n) {
                encode_piece(o, s + i, n, i);
                i += n;
                continue;
            }
        }
        if (cls == CLS_SPACE) {
            /* " ?X+": one U+0020 joins the letter/number/other run after it. */
            if (c == ' ' && i + 1 < end) {
                int next = char_at(v, s, i + 1, end, &len2);
                if (next != CLS_SPACE && next != CLS_INVALID) {
                    i = class_run_end(v, s, i + 1 + len2, end, next);
                    encode_piece(o, s + start, i - start, start);
                    continue;
                }
            }
            /* "\s+(?!\S)|\s+": a run followed by a non-space gives its last
             * character to the next piece, unless the run is one character. */
            size_t last = i, j = i + len;
            int after = CLS_INVALID;
            while (j < end) {
                after = char_at(v, s, j, end, &len2);
                if (after != CLS_SPACE) break;
                last = j;
                j += len2;
            }
            if (j < end && after != CLS_INVALID && last > i) j = last;
            encode_piece(o, s + start, j - start, start);
            i = j;
            continue;
        }
        i = class_run_end(v, s, i + len, end, cls);
        encode_piece(o, s + start, i - start, start);
    }
}
