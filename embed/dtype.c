/* dtype.c - safetensors dtype names and sizes, and the F16/BF16 <-> F32
 * conversions used for half-precision tables.
 *
 * Conversions work on bit patterns only (no FPU rounding modes, no F16C), so
 * they give the same bits on every machine: exact on the way up,
 * round-to-nearest-even on the way down, Inf/NaN/subnormals handled, and a
 * NaN written down as PyTorch 1.13's Tensor.half() / .bfloat16() write it. */
#include <string.h>

#include "embed.h"
#include "st_internal.h"

static const struct {
    const char *name;
    unsigned char bits;
} dtype_info[EMBED_DTYPE_COUNT] = {
    [EMBED_BOOL] = {"BOOL", 8},
    [EMBED_U8] = {"U8", 8},
    [EMBED_I8] = {"I8", 8},
    [EMBED_I16] = {"I16", 16},
    [EMBED_U16] = {"U16", 16},
    [EMBED_F16] = {"F16", 16},
    [EMBED_BF16] = {"BF16", 16},
    [EMBED_I32] = {"I32", 32},
    [EMBED_U32] = {"U32", 32},
    [EMBED_F32] = {"F32", 32},
    [EMBED_I64] = {"I64", 64},
    [EMBED_U64] = {"U64", 64},
    [EMBED_F64] = {"F64", 64},
    [EMBED_F8_E5M2] = {"F8_E5M2", 8},
    [EMBED_F8_E4M3] = {"F8_E4M3", 8},
    [EMBED_F8_E8M0] = {"F8_E8M0", 8},
    [EMBED_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8},
    [EMBED_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8},
    [EMBED_F4] = {"F4", 4},
    [EMBED_F6_E2M3] = {"F6_E2M3", 6},
    [EMBED_F6_E3M2] = {"F6_E3M2", 6},
    [EMBED_C64] = {"C64", 64},
};

const char *embed_dtype_name(embed_dtype dt) {
    if (dt == EMBED_Q8_0) return "Q8_0";
    if ((unsigned)dt >= EMBED_GGML && embed_ggml_name((unsigned)dt - EMBED_GGML))
        return embed_ggml_name((unsigned)dt - EMBED_GGML);
    if ((unsigned)dt >= EMBED_DTYPE_COUNT) return "?";
    return dtype_info[dt].name;
}

int embed_dtype_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < EMBED_DTYPE_COUNT; i++)
        if (!strcmp(name, dtype_info[i].name)) return i;
    return -1;
}

size_t embed_dtype_bits(embed_dtype dt) {
    if ((unsigned)dt >= EMBED_DTYPE_COUNT) return 0;
    return dtype_info[dt].bits;
}

static float bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Half: 1 sign, 5 exponent (bias 15), 10 mantissa bits. */
float embed_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) /* Inf, or NaN keeping its payload (quiet bit stays where it was) */
        return bits_to_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0) return bits_to_f32(sign);
        /* subnormal: man * 2^-24, renormalise (exact in F32) */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400u));
        return bits_to_f32(sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ffu) << 13);
    }
    return bits_to_f32(sign | (exp + 127 - 15) << 23 | man << 13);
}

uint16_t embed_f32_to_f16(float f) {
    uint32_t u = f32_to_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t exp = (u >> 23) & 0xff;
    uint32_t man = u & 0x7fffffu;
    if (exp == 0xff) /* Inf, or NaN as torch's .half(): the sign, payload dropped */
        return sign | (man ? 0x7e00u : 0x7c00u);
    int e = (int)exp - 127 + 15; /* the half exponent field if normal */
    if (e >= 0x1f) return sign | 0x7c00u; /* overflow -> Inf */
    if (e <= 0) {
        /* subnormal half (or zero): value = m * 2^-24, m = full mantissa >> shift */
        if (e < -10) return sign; /* below half the smallest subnormal (rounds to 0) */
        uint32_t full = man | 0x800000u;
        unsigned shift = (unsigned)(14 - e); /* 14..24 */
        uint32_t m = full >> shift;
        uint32_t rem = full & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (m & 1))) m++; /* may carry into the smallest normal: right */
        return sign | (uint16_t)m;
    }
    uint32_t m = man >> 13;
    uint32_t rem = man & 0x1fffu;
    uint32_t h = (uint32_t)e << 10 | m;
    if (rem > 0x1000u || (rem == 0x1000u && (m & 1))) h++; /* carry may reach Inf: right */
    return sign | (uint16_t)h;
}

float embed_bf16_to_f32(uint16_t b) { return bits_to_f32((uint32_t)b << 16); }

uint16_t embed_f32_to_bf16(float f) {
    uint32_t u = f32_to_bits(f);
    /* NaN: 0xffff, as torch's .bfloat16() writes every NaN on a CPU with AVX2
     * (its vectorised kernel; only its scalar path, without AVX2, writes 0x7fc0) */
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0xffff;
    /* round to nearest even on the low 16 bits; carry into the exponent is right */
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}
