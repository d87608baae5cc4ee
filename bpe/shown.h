/* shown.h - which bytes the library's messages show as they are (bpe and
 * embed modules). A message may quote bytes of a file or a text; a
 * terminal must not act on them, nor a bidi override reorder the line. */
#ifndef GPT2IN_SHOWN_H
#define GPT2IN_SHOWN_H

#include <stddef.h>

/* The bytes of s[0..n)'s first character a message may show as they are:
 * printable ASCII but '"' and '\\', or valid UTF-8 that is not a control,
 * format, separator, private-use, surrogate or unassigned character; else
 * 0 (s[0] is shown as \xNN). n >= 1. */
size_t gpt2in_shown_len(const unsigned char *s, size_t n);

#endif
