/* cmd_shard_sha256.c - SHA-256 (FIPS 180-4) for gpt2in shard's manifest:
 * the CPU's SHA extensions (x86 SHA-NI) when it has them; else libcrypto's
 * code for the CPU (AVX2, ARMv8...), loaded then; else portable C.
 *
 * libcrypto is not linked: loading it and initialising its providers cost
 * more than the tokenizing of a small input, and its EVP contexts are
 * allocated a hash (two a small file). A hash here is a struct on the
 * stack. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shard.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define SHA_X86 1
#endif

static const uint32_t K[64] __attribute__((aligned(16))) = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) ((x) >> (n) | (x) << (32 - (n)))

/* n 64-byte blocks into h, one at a time. */
static void sha_blocks_c(uint32_t h[8], const unsigned char *p, size_t n) {
    for (; n--; p += 64) {
        uint32_t w[64];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
        for (int i = 16; i < 64; i++) {
            uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
        for (int i = 0; i < 64; i++) {
            uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
            uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            k = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
    }
}

#ifdef SHA_X86
/* Intel's SHA extensions: the state as ABEF / CDGH, four rounds a pair of
 * sha256rnds2, the message schedule by sha256msg1/msg2. */
#define SHA_NI_ROUNDS(i, m)                                                              \
    do {                                                                                 \
        __m128i km = _mm_add_epi32(m, _mm_load_si128((const __m128i *)&K[4 * (i)]));     \
        s1 = _mm_sha256rnds2_epu32(s1, s0, km);                                          \
        s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(km, 0x0e));                 \
    } while (0)
/* the next four message words from the last sixteen (a oldest) */
#define SHA_NI_NEXT(a, b, c, d) \
    _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(a, b), _mm_alignr_epi8(d, c, 4)), d)

__attribute__((target("sha,sse4.1,ssse3"))) static void sha_blocks_ni(uint32_t h[8], const unsigned char *p,
                                                                       size_t n) {
    const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[0]), 0xb1);   /* CDAB */
    __m128i s1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[4]), 0x1b);  /* EFGH */
    __m128i s0 = _mm_alignr_epi8(t, s1, 8);                                          /* ABEF */
    s1 = _mm_blend_epi16(s1, t, 0xf0);                                               /* CDGH */
    for (; n--; p += 64) {
        __m128i save0 = s0, save1 = s1;
        __m128i m0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 0)), swap);
        __m128i m1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16)), swap);
        __m128i m2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 32)), swap);
        __m128i m3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 48)), swap);
        SHA_NI_ROUNDS(0, m0);
        SHA_NI_ROUNDS(1, m1);
        SHA_NI_ROUNDS(2, m2);
        SHA_NI_ROUNDS(3, m3);
        for (int i = 4; i < 16; i += 4) {
            m0 = SHA_NI_NEXT(m0, m1, m2, m3);
            SHA_NI_ROUNDS(i, m0);
            m1 = SHA_NI_NEXT(m1, m2, m3, m0);
            SHA_NI_ROUNDS(i + 1, m1);
            m2 = SHA_NI_NEXT(m2, m3, m0, m1);
            SHA_NI_ROUNDS(i + 2, m2);
            m3 = SHA_NI_NEXT(m3, m0, m1, m2);
            SHA_NI_ROUNDS(i + 3, m3);
        }
        s0 = _mm_add_epi32(s0, save0);
        s1 = _mm_add_epi32(s1, save1);
    }
    t = _mm_shuffle_epi32(s0, 0x1b);                     /* FEBA */
    s1 = _mm_shuffle_epi32(s1, 0xb1);                    /* DCHG */
    s0 = _mm_blend_epi16(t, s1, 0xf0);                   /* DCBA */
    s1 = _mm_alignr_epi8(s1, t, 8);                      /* HGFE */
    _mm_storeu_si128((__m128i *)&h[0], s0);
    _mm_storeu_si128((__m128i *)&h[4], s1);
}

static int cpu_has_sha_ni(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSSE3) || !(c & bit_SSE4_1)) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 29) & 1;
}
#endif

static void (*sha_blocks)(uint32_t h[8], const unsigned char *p, size_t n) = sha_blocks_c;
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

/* libcrypto's SHA256_Init/Update/Final (in every version since 0.9.8; a
 * SHA256_CTX is 112 bytes), when the CPU has no SHA extensions. */
static struct {
    int (*init)(void *);
    int (*update)(void *, const void *, size_t);
    int (*final)(unsigned char *, void *);
} lib;

static int lib_load(void) {
    static const char *const names[] = {"libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) continue;
        *(void **)&lib.init = dlsym(h, "SHA256_Init");
        *(void **)&lib.update = dlsym(h, "SHA256_Update");
        *(void **)&lib.final = dlsym(h, "SHA256_Final");
        if (lib.init && lib.update && lib.final) return 1;   /* (kept loaded) */
        memset(&lib, 0, sizeof lib);
        dlclose(h);
    }
    return 0;
}

static void sha_pick(void) {
#ifdef SHA_X86
    if (cpu_has_sha_ni()) {
        sha_blocks = sha_blocks_ni;
        return;
    }
#endif
    lib_load();   /* none: the portable code */
}

int shard_sha_init(shard_sha *s) {
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    pthread_once(&sha_once, sha_pick);
    s->lib = lib.init != NULL;
    if (s->lib) return lib.init(s->ctx) == 1 ? 0 : -1;
    memcpy(s->h, h0, sizeof h0);
    s->n = 0;
    return 0;
}

void shard_sha_update(shard_sha *s, const void *data, size_t n) {
    if (s->lib) {
        if (n) lib.update(s->ctx, data, n);
        return;
    }
    const unsigned char *p = data;
    size_t have = (size_t)(s->n & 63);
    s->n += n;
    if (have) {
        size_t k = 64 - have < n ? 64 - have : n;
        memcpy(s->buf + have, p, k);
        p += k;
        n -= k;
        if (have + k < 64) return;
        sha_blocks(s->h, s->buf, 1);
    }
    if (n >= 64) {
        sha_blocks(s->h, p, n / 64);
        p += n & ~(size_t)63;
        n &= 63;
    }
    if (n) memcpy(s->buf, p, n);
}

void shard_sha_hex(shard_sha *s, char hex[65]) {
    unsigned char d[32];
    if (s->lib) {
        lib.final(d, s->ctx);
    } else {
        uint64_t bits = s->n * 8;
        unsigned char pad[72] = {0x80};
        size_t k = 64 - (size_t)(s->n & 63);   /* 0x80, zeros, then 8 bytes of length */
        if (k < 9) k += 64;
        for (int i = 0; i < 8; i++) pad[k - 1 - i] = (unsigned char)(bits >> (8 * i));
        shard_sha_update(s, pad, k);
        for (int i = 0; i < 32; i++) d[i] = (unsigned char)(s->h[i / 4] >> (24 - 8 * (i % 4)));
    }
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        unsigned char b = d[i];
        hex[2 * i] = digits[b >> 4];
        hex[2 * i + 1] = digits[b & 15];
    }
    hex[64] = 0;
}

void shard_sha_free(shard_sha *s) { (void)s; }

int shard_file_sha(const char *path, char hex[65], uint64_t *size) {
    enum { CHUNK = 1 << 20 };
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    unsigned char *buf = malloc(CHUNK);
    shard_sha s;
    if (!buf || shard_sha_init(&s)) {
        free(buf);
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    *size = 0;
    ssize_t n;
    while ((n = read(fd, buf, CHUNK)) > 0 || (n < 0 && errno == EINTR)) {
        if (n < 0) continue;
        shard_sha_update(&s, buf, (size_t)n);
        *size += (uint64_t)n;
    }
    int saved = errno;
    close(fd);
    free(buf);
    shard_sha_hex(&s, hex);
    errno = saved;
    return n < 0 ? -1 : 0;
}
