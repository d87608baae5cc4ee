/* alloc.h - the library's allocation functions (bpe and embed modules).
 *
 * In a release build they are the C library's. In a test build
 * (-DGPT2IN_FAULTS) every call first asks one counter whether it must fail,
 * so a test can make the Nth allocation fail, for N = 1, 2, 3 ... until the
 * operation succeeds (tests/test_alloc_fail.c): every error path is then run
 * under the sanitizers. Fault injection is never compiled into a release. */
#ifndef GPT2IN_ALLOC_H
#define GPT2IN_ALLOC_H

#include <stdlib.h>
#include <string.h>

#ifdef GPT2IN_FAULTS
void *gpt2in_malloc(size_t n);
void *gpt2in_calloc(size_t n, size_t size);
void *gpt2in_realloc(void *p, size_t n);
char *gpt2in_strdup(const char *s);
char *gpt2in_strndup(const char *s, size_t n);
/* 1 when the allocation about to be made must fail; counts it. */
int gpt2in_fault_alloc(void);
/* Makes the at-th allocation from now fail (and, with sticky, every one
 * after it); at = 0 disarms. Returns the number of allocations made since
 * the previous call. */
long gpt2in_fault_set(long at, int sticky);
#else
#define gpt2in_malloc(n) malloc(n)
#define gpt2in_calloc(n, size) calloc(n, size)
#define gpt2in_realloc(p, n) realloc(p, n)
#define gpt2in_strdup(s) strdup(s)
#define gpt2in_strndup(s, n) strndup(s, n)
#define gpt2in_fault_alloc() 0
#endif

#endif
