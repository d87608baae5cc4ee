/* test_dtype.c - dtype names/sizes and the F16/BF16 <-> F32 conversions
 * against NumPy (F16) and PyTorch (BF16): all 65536 halfs both ways up, and
 * 1.3 million F32 inputs each way down (a grid over all exponents plus, for
 * every half, the exact rounding midpoints and their neighbours), compared
 * through checksums written by tests/gen_formats_refs.py, plus readable spot
 * checks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "check.h"

#define DIR "tests/fixtures/formats/"

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

typedef struct {
    uint64_t h;
} fnv;
static void fnv_init(fnv *s) { s->h = 0xcbf29ce484222325ull; }
static void fnv_bytes(fnv *s, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) s->h = (s->h ^ b[i]) * 0x100000001b3ull;
}
static void fnv_u16(fnv *s, uint16_t v) {
    unsigned char b[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    fnv_bytes(s, b, 2);
}
static void fnv_u32(fnv *s, uint32_t v) {
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    fnv_bytes(s, b, 4);
}

/* NaN payloads are not compared for F32 -> F16 (see gen_formats_refs.py). */
static uint16_t canon16(uint16_t h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) return (uint16_t)((h & 0x8000) | 0x7e00);
    return h;
}

/* PyTorch writes a NaN as 0xffff or 0x7fc0 depending on the code path. */
static uint16_t canonbf(uint16_t b) {
    if ((b & 0x7f80) == 0x7f80 && (b & 0x7f)) return 0x7fc0;
    return b;
}

static uint64_t expected(const char *key) {
    FILE *f = fopen(DIR "conversions.txt", "r");
    if (!f) {
        fprintf(stderr, "cannot open " DIR "conversions.txt\n");
        exit(1);
    }
    char k[64];
    unsigned long long v = 0;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%63s %llx", k, &v) == 2 && !strcmp(k, key)) {
            fclose(f);
            return v;
        }
    fclose(f);
    fprintf(stderr, "no %s in conversions.txt\n", key);
    exit(1);
}

static uint32_t grid(uint32_t i) { return i * 4096u + (i & 4095u); }

int main(void) {
    /* names and sizes */
    for (int d = 0; d < EMBED_DTYPE_COUNT; d++) {
        CHECK(embed_dtype_from_name(embed_dtype_name((embed_dtype)d)) == d, "dtype %d name", d);
        CHECK(embed_dtype_bits((embed_dtype)d) > 0, "dtype %d bits", d);
    }
    CHECK(embed_dtype_bits(EMBED_F32) == 32 && embed_dtype_bits(EMBED_F4) == 4 &&
              embed_dtype_bits(EMBED_F6_E2M3) == 6 && embed_dtype_bits(EMBED_C64) == 64 &&
              embed_dtype_bits(EMBED_BOOL) == 8, "bits");
    CHECK(embed_dtype_from_name("f32") == -1 && embed_dtype_from_name("") == -1 &&
              embed_dtype_from_name(NULL) == -1 && embed_dtype_from_name("F32 ") == -1,
          "unknown names");
    CHECK(!strcmp(embed_dtype_name(EMBED_BF16), "BF16"), "BF16 name");

    /* upward: every half */
    fnv a, b;
    fnv_init(&a);
    fnv_init(&b);
    for (uint32_t h = 0; h < 65536; h++) {
        fnv_u32(&a, fbits(embed_f16_to_f32((uint16_t)h)));
        fnv_u32(&b, fbits(embed_bf16_to_f32((uint16_t)h)));
    }
    CHECK(a.h == expected("f16_to_f32"), "f16 -> f32 over all 65536 halfs differs from NumPy");
    CHECK(b.h == expected("bf16_to_f32"), "bf16 -> f32 over all 65536 differs from PyTorch");

    /* downward */
    fnv_init(&a);
    fnv_init(&b);
    for (uint32_t i = 0; i < (1u << 20); i++) {
        fnv_u16(&a, canon16(embed_f32_to_f16(bitsf(grid(i)))));
        fnv_u16(&b, canonbf(embed_f32_to_bf16(bitsf(grid(i)))));
    }
    static const uint32_t d16[4] = {0, 0xfff, 0x1000, 0x1001}, dbf[4] = {0, 0x7fff, 0x8000, 0x8001};
    for (uint32_t h = 0; h < 65536; h++) {
        uint32_t base = fbits(embed_f16_to_f32((uint16_t)h)); /* checked above */
        for (int k = 0; k < 4; k++) {
            fnv_u16(&a, canon16(embed_f32_to_f16(bitsf(base + d16[k]))));
            fnv_u16(&b, canonbf(embed_f32_to_bf16(bitsf((h << 16) + dbf[k]))));
        }
    }
    CHECK(a.h == expected("f32_to_f16"), "f32 -> f16 (1.3M inputs) differs from NumPy");
    CHECK(b.h == expected("f32_to_bf16"), "f32 -> bf16 (1.3M inputs) differs from PyTorch");

    /* spot checks, readable when something is off */
    FILE *f = fopen(DIR "conversions_spot.txt", "r");
    CHECK(f != NULL, "no spot file");
    char line[256], kind[32];
    unsigned in, out;
    int n = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (line[0] == '#' || sscanf(line, "%31s %x %x", kind, &in, &out) != 3) continue;
        n++;
        if (!strcmp(kind, "f32_to_f16")) {
            unsigned got = canon16(embed_f32_to_f16(bitsf(in)));
            CHECK(got == out, "f32_to_f16(%08x) = %04x, NumPy %04x", in, got, out);
        } else if (!strcmp(kind, "f32_to_bf16")) {
            unsigned got = canonbf(embed_f32_to_bf16(bitsf(in)));
            CHECK(got == out, "f32_to_bf16(%08x) = %04x, PyTorch %04x", in, got, out);
        } else if (!strcmp(kind, "f16_to_f32")) {
            unsigned got = fbits(embed_f16_to_f32((uint16_t)in));
            CHECK(got == out, "f16_to_f32(%04x) = %08x, NumPy %08x", in, got, out);
        } else if (!strcmp(kind, "bf16_to_f32")) {
            unsigned got = fbits(embed_bf16_to_f32((uint16_t)in));
            CHECK(got == out, "bf16_to_f32(%04x) = %08x, PyTorch %08x", in, got, out);
        }
    }
    if (f) fclose(f);
    CHECK(n > 60, "only %d spot checks read", n);

    /* round trip: every non-NaN half survives f16 -> f32 -> f16 */
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;
        uint16_t r = embed_f32_to_f16(embed_f16_to_f32((uint16_t)h));
        CHECK(r == h, "f16 round trip %04x -> %04x", h, r);
        uint16_t rb = embed_f32_to_bf16(embed_bf16_to_f32((uint16_t)h));
        if (!(((h & 0x7f80) == 0x7f80) && (h & 0x7f))) CHECK(rb == h, "bf16 round trip %04x", h);
    }
    /* a NaN never becomes Inf */
    CHECK((embed_f32_to_f16(bitsf(0x7f800001u)) & 0x3ff) != 0, "f32 sNaN -> f16 Inf");
    CHECK((embed_f32_to_bf16(bitsf(0x7f800001u)) & 0x7f) != 0, "f32 sNaN -> bf16 Inf");
    /* A NaN exactly as PyTorch 1.13 writes it down (torch.from_numpy(x).half()
     * and .bfloat16() on this CPU with AVX2; tests/test_step_semantics.sh asks
     * torch itself): F16 keeps the sign only (sign | 0x7e00); BF16 is 0xffff
     * whatever the sign and payload (torch's vectorised kernel; its scalar
     * path, without AVX2, writes 0x7fc0). */
    static const uint32_t nans[] = {0x7f800001u, 0x7fc00000u, 0xffffffffu, 0x7fffffffu,
                                    0xff800001u, 0x7f810000u, 0x7f80ffffu, 0x7fa00000u,
                                    0xffc00000u, 0x7fbfffffu, 0xff80c000u, 0x7f800100u};
    for (size_t i = 0; i < sizeof nans / sizeof *nans; i++) {
        uint16_t h = embed_f32_to_f16(bitsf(nans[i])), bf = embed_f32_to_bf16(bitsf(nans[i]));
        uint16_t want = (uint16_t)(((nans[i] >> 16) & 0x8000u) | 0x7e00u);
        CHECK(h == want, "f32_to_f16(%08x) = %04x, torch .half() %04x", nans[i], h, want);
        CHECK(bf == 0xffff, "f32_to_bf16(%08x) = %04x, torch .bfloat16() ffff", nans[i], bf);
    }

    /* deterministic normal init: same bytes in pieces, mean ~0, std ~0.02 */
    enum { N = 100001 };
    float *w = malloc(N * sizeof *w), *p = malloc(N * sizeof *p);
    embed_init_normal(w, N, 0.02f, 42);
    embed_init_normal_at(p, 0, 333, 0.02f, 42);
    embed_init_normal_at(p + 333, 333, 1, 0.02f, 42);
    embed_init_normal_at(p + 334, 334, N - 334, 0.02f, 42);
    CHECK(!memcmp(w, p, N * sizeof *w), "init_normal in pieces differs");
    double s = 0, s2 = 0;
    for (int i = 0; i < N; i++) s += w[i], s2 += (double)w[i] * w[i];
    double mean = s / N, sd = sqrt(s2 / N - mean * mean);
    CHECK(fabs(mean) < 5e-4 && fabs(sd - 0.02) < 5e-4, "init_normal mean %g std %g", mean, sd);
    embed_init_normal(p, 64, 0.02f, 43);
    CHECK(memcmp(w, p, 64 * sizeof *w), "seeds 42 and 43 give the same values");
    /* the documented algorithm, written independently in gen_formats_refs.py */
    f = fopen(DIR "init_normal.txt", "r");
    CHECK(f != NULL, "no init_normal.txt");
    n = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long long seed, idx;
        unsigned bits;
        if (sscanf(line, "%llu %llu %x", &seed, &idx, &bits) != 3) continue;
        float v;
        embed_init_normal_at(&v, idx, 1, 0.02f, seed);
        CHECK(fbits(v) == bits, "init_normal seed %llu element %llu: %08x, Python %08x", seed,
              idx, fbits(v), bits);
        n++;
    }
    if (f) fclose(f);
    CHECK(n >= 16, "only %d init_normal references", n);
    free(w);
    free(p);
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("dtype: all checks passed\n");
    return 0;
}
