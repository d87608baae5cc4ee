/* memory.c - the encoder's large buffers: mapped on their own (huge
 * pages) when big, from malloc otherwise. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "encode.h"

/* Large buffers (the stream's, the tokens of a long piece's parts) are
 * mapped on their own, 2 MB-aligned, and ask for transparent huge pages:
 * a fresh 4 KB page costs a page fault on first touch, a huge page one
 * fault for 2 MB.
 * Smaller ones come from malloc. A header before the data says which, and
 * how much room there is. */
#define BIG_HUGE ((size_t)2 << 20)
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BIG_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(BIG_SANITIZED)
#define BIG_MAP 0  /* all from malloc, where AddressSanitizer sees overruns */
#else
#define BIG_MAP 1
#endif
#define BIG_MAPPED_MIN ((size_t)256 << 10)
#define BIG_HEAD BPE_BIG_HEAD

typedef struct {
    size_t room;   /* usable bytes after the header */
    size_t mapped; /* bytes mapped at the header, or 0: malloc'd */
} big_head;

/* Mapped when bytes >= mapped_min. */
static void *bpe_big_alloc_from(size_t bytes, size_t mapped_min) {
    big_head *h = NULL;
    if (bytes > SIZE_MAX - BIG_HEAD - 2 * BIG_HUGE) return NULL;
    if (BIG_MAP && bytes >= mapped_min) {
        size_t size = (bytes + BIG_HEAD + BIG_HUGE - 1) & ~(BIG_HUGE - 1);
        uint8_t *m = mmap(NULL, size + BIG_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return NULL;
        uint8_t *a = (uint8_t *)(((uintptr_t)m + BIG_HUGE - 1) & ~(uintptr_t)(BIG_HUGE - 1));
        if (a > m) munmap(m, (size_t)(a - m));
        if (m + size + BIG_HUGE > a + size) munmap(a + size, (size_t)(m + size + BIG_HUGE - (a + size)));
#ifdef MADV_HUGEPAGE
        madvise(a, size, MADV_HUGEPAGE);  /* a hint: the kernel may ignore it */
#endif
        h = (big_head *)a;
        *h = (big_head){size - BIG_HEAD, size};
    } else {
        h = gpt2in_malloc(BIG_HEAD + bytes);
        if (!h) return NULL;
        *h = (big_head){bytes, 0};
    }
    return (uint8_t *)h + BIG_HEAD;
}

void *bpe_big_alloc(size_t bytes) { return bpe_big_alloc_from(bytes, BIG_MAPPED_MIN); }

static void *zeroed(void *p, size_t bytes) {
    if (p && !((big_head *)((uint8_t *)p - BIG_HEAD))->mapped) memset(p, 0, bytes);
    return p;
}

void *bpe_big_zalloc(size_t bytes) { return zeroed(bpe_big_alloc(bytes), bytes); }

/* A piece cache, zeroed. Its short slots are touched all over by a text
 * of a megabyte, so it is mapped like the large buffers: one fault (a
 * huge page), not 256 or more. */
cache_slot *bpe_cache_new(void) {
    size_t bytes = CACHE_SIZE;
    return zeroed(bpe_big_alloc_from(bytes, 0), bytes);
}

void bpe_big_free(void *p) {
    if (!p) return;
    big_head *h = (big_head *)((uint8_t *)p - BIG_HEAD);
    if (h->mapped) munmap(h, h->mapped);
    else free(h);
}

/* p with room for `bytes`, its first `keep` bytes kept; NULL (p untouched)
 * when out of memory. */
void *bpe_big_grow(void *p, size_t keep, size_t bytes) {
    if (p && ((big_head *)((uint8_t *)p - BIG_HEAD))->room >= bytes) return p;
    void *q = bpe_big_alloc(bytes);
    if (q && p) {
        memcpy(q, p, keep);
        bpe_big_free(p);
    }
    return q;
}
