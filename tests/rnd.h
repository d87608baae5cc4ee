/* rnd.h - the C suites' random inputs: Marsaglia's xorshift64, the same
 * sequence on every run. A suite that wants a sequence of its own defines
 * RND_SEED before including this. */
#ifndef TESTS_RND_H
#define TESTS_RND_H

#include <stdint.h>

#ifndef RND_SEED
#define RND_SEED 0x2545F4914F6CDD1Dull
#endif

static uint64_t rng = RND_SEED;

static inline uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

#endif
