/* fuzz_check.h - the fuzz targets' property check: a broken property names
 * its file and line on stderr and aborts, which libFuzzer reports as a
 * crash. A target may define FUZZ_CHECK_FIRST (a statement) to run before
 * the message: fuzz_ids gives stderr back. */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H
#include <stdio.h>
#include <stdlib.h>

#ifndef FUZZ_CHECK_FIRST
#define FUZZ_CHECK_FIRST
#endif

#define CHECK(c)                                                                        \
    do {                                                                                \
        if (!(c)) {                                                                     \
            FUZZ_CHECK_FIRST;                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);       \
            abort();                                                                    \
        }                                                                               \
    } while (0)

#endif
