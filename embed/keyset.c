/* keyset.c - finding a repeated key among a file's metadata keys in linear
 * time (an open-addressing hash set of key indices, FNV-1a); a scan of the
 * earlier keys for each one made a file of 100,000 keys take a minute. */
#include <stdlib.h>
#include <string.h>

#include "st_internal.h"

static uint64_t key_hash(const char *s) {
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Put index k into the table of 2^bits slots (0 = free, else index + 1). */
static size_t *slot_for(size_t *slot, size_t mask, const char *const *kv, const char *key) {
    for (size_t i = key_hash(key) & mask;; i = (i + 1) & mask)
        if (!slot[i] || !strcmp(kv[2 * (slot[i] - 1)], key)) return &slot[i];
}

int embed_keyset_add(embed_keyset *s, const char *const *kv, size_t k, size_t *earlier) {
    if (2 * (k + 1) > s->mask) {  /* at most half full */
        size_t mask = s->mask ? 2 * s->mask + 1 : 15;
        while (2 * (k + 1) > mask) mask = 2 * mask + 1;
        size_t *slot = gpt2in_calloc(mask + 1, sizeof *slot);
        if (!slot) return EMBED_ERR_NOMEM;
        for (size_t i = 0; s->slot && i <= s->mask; i++)
            if (s->slot[i]) *slot_for(slot, mask, kv, kv[2 * (s->slot[i] - 1)]) = s->slot[i];
        free(s->slot);
        s->slot = slot;
        s->mask = mask;
    }
    size_t *at = slot_for(s->slot, s->mask, kv, kv[2 * k]);
    if (*at) {
        *earlier = *at - 1;
        return 1;
    }
    *at = k + 1;
    return 0;
}

void embed_keyset_free(embed_keyset *s) {
    free(s->slot);
    s->slot = NULL;
    s->mask = 0;
}
