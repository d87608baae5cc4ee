/* alloc.c - the allocation fault hook of test builds (see alloc.h). */
#include "alloc.h"

#ifdef GPT2IN_FAULTS
#include <errno.h>
#include <stdatomic.h>

static atomic_long fault_count;  /* allocations since the last gpt2in_fault_set */
static atomic_long fault_at;     /* 0: off */
static atomic_int fault_sticky;

int gpt2in_fault_alloc(void) {
    long k = atomic_fetch_add(&fault_count, 1) + 1, at = atomic_load(&fault_at);
    return at > 0 && (k == at || (k > at && atomic_load(&fault_sticky)));
}

long gpt2in_fault_set(long at, int sticky) {
    atomic_store(&fault_at, 0);
    long n = atomic_exchange(&fault_count, 0);
    atomic_store(&fault_sticky, sticky);
    atomic_store(&fault_at, at);
    return n;
}

/* A failure sets errno as the C library's does. */
static void *failed(void) {
    errno = ENOMEM;
    return NULL;
}

void *gpt2in_malloc(size_t n) { return gpt2in_fault_alloc() ? failed() : malloc(n); }
void *gpt2in_calloc(size_t n, size_t size) { return gpt2in_fault_alloc() ? failed() : calloc(n, size); }
void *gpt2in_realloc(void *p, size_t n) { return gpt2in_fault_alloc() ? failed() : realloc(p, n); }

char *gpt2in_strdup(const char *s) { return gpt2in_strndup(s, strlen(s)); }

char *gpt2in_strndup(const char *s, size_t n) {
    size_t len = strnlen(s, n);
    char *d = gpt2in_malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = 0;
    }
    return d;
}
#else
typedef int gpt2in_alloc_unused;  /* ISO C: a translation unit is not empty */
#endif
