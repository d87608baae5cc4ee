/* init.c - deterministic Normal(0, std) initialisation for new tables.
 *
 * Counter-based so that any piece of a table can be produced on its own
 * (init writes a 548 MB file in 1 MB pieces): element i belongs to pair
 * k = i/2, whose two uniforms are splitmix64 outputs 2k and 2k+1 for `seed`
 * (output j = mix(seed + (j+1) * golden), exactly splitmix64's sequence). */
#include <math.h>

#include "embed.h"

static uint64_t splitmix64_out(uint64_t seed, uint64_t j) {
    uint64_t z = seed + (j + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void normal_pair(uint64_t seed, uint64_t k, double *z0, double *z1) {
    /* 53-bit uniforms; u1 in (0, 1] so log() is finite */
    double u1 = ((splitmix64_out(seed, 2 * k) >> 11) + 1) * 0x1p-53;
    double u2 = (splitmix64_out(seed, 2 * k + 1) >> 11) * 0x1p-53;
    double r = sqrt(-2.0 * log(u1));
    double a = 6.283185307179586476925286766559 * u2;
    *z0 = r * cos(a);
    *z1 = r * sin(a);
}

void embed_init_normal_at(float *w, uint64_t first, size_t n, float std, uint64_t seed) {
    size_t j = 0;
    double z0, z1;
    if (n && (first & 1)) { /* starts on the second half of a pair */
        normal_pair(seed, first / 2, &z0, &z1);
        w[j++] = (float)(std * z1);
    }
    for (; j + 1 < n; j += 2) {
        normal_pair(seed, (first + j) / 2, &z0, &z1);
        w[j] = (float)(std * z0);
        w[j + 1] = (float)(std * z1);
    }
    if (j < n) {
        normal_pair(seed, (first + j) / 2, &z0, &z1);
        w[j] = (float)(std * z0);
    }
}

void embed_init_normal(float *w, size_t n, float std, uint64_t seed) {
    embed_init_normal_at(w, 0, n, std, seed);
}
