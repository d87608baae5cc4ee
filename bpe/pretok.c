/* pretok.c - the pre-tokenizer: GPT-2's regex as a hand-written scanner
 * over character classes (pretok.h), each piece encoded as it is found
 * (encode_piece, encode.h; a piece that is not a token goes to
 * bpe_merge_piece, piece_cache.c). */
#include "encode.h"
#include "pretok.h"

/* The length of the contraction ('s 't 're 've 'm 'll 'd) at p, which
 * starts with an apostrophe and has 3 bytes, or 0. */
static inline size_t contraction(const uint8_t *p) {
    uint8_t d = p[1], e = p[2];
    return (d == 's' || d == 't' || d == 'm' || d == 'd')                        ? 2
           : ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l')) ? 3
                                                                                   : 0;
}

/* The piece (or the invalid byte) that starts at i, by the rules for any
 * character; returns where the next one starts. */
static size_t any_piece(out_t *o, const uint8_t *s, size_t i, size_t end) {
    const struct bpe *v = o->v;
    size_t start = i, len, len2;
    uint8_t c = s[i];
    int cls = char_at(v, s, i, end, &len);
    if (cls == CLS_INVALID) {
        emit(o, v->byte_tok[c], i);
        return i + 1;
    }
    if (c == '\'' && i + 1 < end) {
        size_t n = i + 2 < end ? contraction(s + i) : contraction((const uint8_t[3]){'\'', s[i + 1], 0});
        if (n) {
            encode_piece(o, s + i, n, i, end - i);
            return i + n;
        }
    }
    if (cls == CLS_SPACE) {
        /* " ?X+": one U+0020 joins the letter/number/other run after it. */
        if (c == ' ' && i + 1 < end) {
            int next = char_at(v, s, i + 1, end, &len2);
            if (next != CLS_SPACE && next != CLS_INVALID) {
                i = class_run_end(v, s, i + 1 + len2, end, next);
                encode_piece(o, s + start, i - start, start, end - start);
                return i;
            }
        }
        /* "\s+(?!\S)|\s+": a run followed by a non-space gives its last
         * character to the next piece, unless the run is one character. */
        size_t last = i, j = i + len;
        int after = CLS_INVALID;
        while (j < end) {
            after = char_at(v, s, j, end, &len2);
            if (after != CLS_SPACE) break;
            last = j;
            j += len2;
        }
        if (j < end && after != CLS_INVALID && last > i) j = last;
        encode_piece(o, s + start, j - start, start, end - start);
        return j;
    }
    i = class_run_end(v, s, i + len, end, cls);
    encode_piece(o, s + start, i - start, start, end - start);
    return i;
}

/* The token slot that holds the piece whose slot words are want_a (its
 * length and first 3 bytes) and want_b (its bytes 3..10), from hash h on:
 * its id, or BPE_EMPTY. A free slot (length 0) matches no piece, so the
 * match is tested first. */
static inline __attribute__((always_inline)) uint32_t probe_slots(const bpe_slot *slots, size_t mask, uint64_t h,
                                                                  uint32_t want_a, uint64_t want_b) {
    for (;; h++) {
        const bpe_slot *s = &slots[h & mask];
        uint64_t a, b;
        __builtin_memcpy(&a, s, 8);
        __builtin_memcpy(&b, (const uint8_t *)s + 8, 8);
        if ((uint32_t)(a >> 32) == want_a && b == want_b) {
            if ((uint32_t)a == BPE_EMPTY) __builtin_unreachable();
            return (uint32_t)a;
        }
        if ((uint32_t)a == BPE_EMPTY) return BPE_EMPTY;
    }
}

/* bpe_bloom_has, its bit's word and place taken from h rotated by 40 (one
 * rotate where BMI2 has it). */
static inline __attribute__((always_inline)) int bloom_has(const uint64_t *bloom, uint64_t h) {
    uint64_t r = h >> 40 | h << 24;  /* bits 0..19: BPE_BLOOM_BIT(h) */
    return (int)(bloom[r >> 6 & (BPE_BLOOM_WORDS - 1)] >> (r & 63) & 1);
}

/* bpe_find_short_piece for a piece of 2..BPE_SLOT_BYTES bytes with 16
 * bytes of text from p on: the same words, hash and slot compare, but each
 * word is one load and a mask instead of the loads that stay inside the
 * piece. */
static inline __attribute__((always_inline)) uint32_t find_wide(const uint64_t *bloom, const bpe_slot *slots,
                                                                size_t mask, const uint8_t *p, size_t n,
                                                                uint64_t *hash) {
    uint64_t lo = bpe_load64(p), h = BPE_HASH_SEED(n);
    if (n < 8) {
        lo &= (1ull << (8 * n)) - 1;
        h = bpe_hash_end(bpe_hash_tail(h, lo));
        *hash = h;
        if (!bloom_has(bloom, h)) return BPE_EMPTY;
        return probe_slots(slots, mask, h, (uint32_t)(n | lo << 8), lo >> 24);
    }
    uint64_t hi = bpe_load64(p + 8) & ((1ull << (8 * (n - 8))) - 1);
    h = bpe_hash_word(h, lo);
    if (n > 8) h = bpe_hash_tail(h, hi);
    h = bpe_hash_end(h);
    *hash = h;
    if (!bloom_has(bloom, h)) return BPE_EMPTY;
    return probe_slots(slots, mask, h, (uint32_t)(n | lo << 8), lo >> 24 | hi << 40);
}

/* The classes of 64 bytes of text as bit masks, bit k for byte k. */
typedef struct {
    uint64_t letter, digit, space, blank, high, apos;  /* space: ASCII \s; blank: U+0020 alone */
} byte_masks;

/* The window scanner is one body (windows, below) compiled for each of
 * these instruction sets; bpe_encode_text takes the widest the CPU has. */
#if defined(__x86_64__) && defined(__GNUC__)
#define SCAN_X86 1
#include <immintrin.h>
#define SCAN_AVX2 __attribute__((target("avx2,bmi,bmi2,lzcnt,popcnt")))
#else
#define SCAN_X86 0
#endif

static inline void classify64(const uint8_t *p, byte_masks *m) {
#ifdef __SSE2__
    /* signed compares: bytes of 0x80 and up are negative, below every range */
    const __m128i before_a = _mm_set1_epi8('a' - 1), after_z = _mm_set1_epi8('z' + 1), lower = _mm_set1_epi8(0x20),
                  before_0 = _mm_set1_epi8('0' - 1), after_9 = _mm_set1_epi8('9' + 1), blank = _mm_set1_epi8(' '),
                  before_tab = _mm_set1_epi8('\t' - 1), after_cr = _mm_set1_epi8('\r' + 1),
                  apos = _mm_set1_epi8('\'');
    *m = (byte_masks){0, 0, 0, 0, 0, 0};
    for (int k = 0; k < 64; k += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(p + k)), lx = _mm_or_si128(x, lower);
        __m128i b = _mm_cmpeq_epi8(x, blank);
        m->letter |= (uint64_t)(unsigned)_mm_movemask_epi8(
                         _mm_and_si128(_mm_cmpgt_epi8(lx, before_a), _mm_cmplt_epi8(lx, after_z))) << k;
        m->digit |= (uint64_t)(unsigned)_mm_movemask_epi8(
                        _mm_and_si128(_mm_cmpgt_epi8(x, before_0), _mm_cmplt_epi8(x, after_9))) << k;
        m->space |= (uint64_t)(unsigned)_mm_movemask_epi8(
                        _mm_or_si128(b, _mm_and_si128(_mm_cmpgt_epi8(x, before_tab), _mm_cmplt_epi8(x, after_cr))))
                    << k;
        m->blank |= (uint64_t)(unsigned)_mm_movemask_epi8(b) << k;
        m->high |= (uint64_t)(unsigned)_mm_movemask_epi8(x) << k;
        m->apos |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, apos)) << k;
    }
#else
    *m = (byte_masks){0, 0, 0, 0, 0, 0};
    for (int k = 0; k < 64; k++) {
        uint64_t bit = 1ull << k;
        switch (ascii_run[p[k]]) {
        case CLS_LETTER: m->letter |= bit; break;
        case CLS_NUMBER: m->digit |= bit; break;
        case CLS_SPACE: m->space |= bit; break;
        case RUN_HIGH: m->high |= bit; break;
        }
        if (p[k] == ' ') m->blank |= bit;
        if (p[k] == '\'') m->apos |= bit;
    }
#endif
}

#if SCAN_X86
/* classify64, 32 bytes at a time. */
static inline SCAN_AVX2 void classify64_avx2(const uint8_t *p, byte_masks *m) {
    const __m256i before_a = _mm256_set1_epi8('a' - 1), after_z = _mm256_set1_epi8('z' + 1),
                  lower = _mm256_set1_epi8(0x20), before_0 = _mm256_set1_epi8('0' - 1),
                  after_9 = _mm256_set1_epi8('9' + 1), blank = _mm256_set1_epi8(' '),
                  before_tab = _mm256_set1_epi8('\t' - 1), after_cr = _mm256_set1_epi8('\r' + 1),
                  apos = _mm256_set1_epi8('\'');
    *m = (byte_masks){0, 0, 0, 0, 0, 0};
    for (int k = 0; k < 64; k += 32) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(p + k)), lx = _mm256_or_si256(x, lower);
        __m256i b = _mm256_cmpeq_epi8(x, blank);
        m->letter |= (uint64_t)(uint32_t)_mm256_movemask_epi8(
                         _mm256_and_si256(_mm256_cmpgt_epi8(lx, before_a), _mm256_cmpgt_epi8(after_z, lx))) << k;
        m->digit |= (uint64_t)(uint32_t)_mm256_movemask_epi8(
                        _mm256_and_si256(_mm256_cmpgt_epi8(x, before_0), _mm256_cmpgt_epi8(after_9, x))) << k;
        m->space |= (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_or_si256(
                        b, _mm256_and_si256(_mm256_cmpgt_epi8(x, before_tab), _mm256_cmpgt_epi8(after_cr, x))))
                    << k;
        m->blank |= (uint64_t)(uint32_t)_mm256_movemask_epi8(b) << k;
        m->high |= (uint64_t)(uint32_t)_mm256_movemask_epi8(x) << k;
        m->apos |= (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(x, apos)) << k;
    }
}

/* The characters of 2 and 3 bytes among the 64 at p that are letters by
 * their lead byte, or for kana by their first two, taken out of m->high
 * into m->letter before classify_high sees the rest: Latin-1 (lead C3 but
 * for C3 97 and C3 B7, the multiplication and division signs), Latin
 * Extended-A/B and IPA (C4..CA), most Cyrillic (D0 D1 D3), part of Arabic
 * (DA), CJK ideographs (E4..E9, but not E4 B7: U+4DC0..4DFF are symbols),
 * Hangul syllables (EB EC), and hiragana and katakana (E3 81..83, but not
 * U+3040, U+3097..30A0 and U+30FB). Every code point these bytes take is
 * \p{L} (tests/test_bpe_scan_lead.c checks them against the vocabulary's
 * classes); leads C3 and E4 followed by 97 or B7 are left to classify_high.
 * A lead byte followed by the right number of continuation bytes is valid
 * UTF-8 with no more checks for these leads (no overlong form or surrogate
 * starts with them). The lead byte's class is a nibble lookup (two pshufb,
 * as in simdjson's classifiers): low-nibble flags AND high-nibble flags. */
#define HIGH_VECTOR_MIN 8
#define R4(x) x, x, x, x
#define R32(x) R4(x), R4(x), R4(x), R4(x), R4(x), R4(x), R4(x), R4(x)
#define NIBBLES(...) __VA_ARGS__, __VA_ARGS__
/* The constants, read from memory (an operand, or one load each) rather
 * than made again in registers on every call: high_letters_avx2 reads them
 * through a pointer the compiler cannot see through (an empty asm), or it
 * would fold the loads back into broadcasts. */
enum { HL_LO, HL_HI, HL_NIB, HL_SEVEN, HL_B7, HL_97, HL_C0, HL_E3, HL_80, HL_81, HL_82, HL_83, HL_BB, HL_96, HL_A1,
       HL_9C, HL_A0, HL_N };
static const uint8_t hl_const[HL_N][32] __attribute__((aligned(32))) = {
    /* flags: 0x01 a letter lead Cx, 0x02 Dx, 0x04 Ex (3 bytes); 0x80 with
     * exceptions (C3 E4, but C4 E3 get it too: the lead's flags say which) */
    {NIBBLES(2, 2, 0, 0x83, 0x85, 5, 5, 5, 5, 5, 3, 4, 4, 0, 0, 0)},
    {NIBBLES(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 2, 0x84, 0)},
    {R32(0x0F)}, {R32(7)}, {R32(0xB7)}, {R32(0x97)}, {R32(0xC0)}, {R32(0xE3)},
    {R32(0x80)}, {R32(0x81)}, {R32(0x82)}, {R32(0x83)}, {R32(0xBB)}, {R32(0x96)}, {R32(0xA1)},
    {R32(0x9C)}, {R32(0xA0)},
};
#undef R4
#undef R32
#undef NIBBLES
#define HL(k) _mm256_load_si256((const __m256i *)K[HL_##k])
static __attribute__((noinline)) SCAN_AVX2 void high_letters_avx2(const uint8_t *p, byte_masks *m) {
    const uint8_t(*K)[32] = hl_const;
    __asm__("" : "+r"(K));
    const __m256i lo_tab = HL(LO), hi_tab = HL(HI), nib = HL(NIB), seven = HL(SEVEN), zero = _mm256_setzero_si256(),
                  b7 = HL(B7), x97 = HL(97), c0 = HL(C0), e3 = HL(E3);
    uint64_t lead = 0, exc = 0, three = 0, bad_next = 0, cont = 0, kana = 0;
    for (int k = 0; k < 64; k += 32) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(p + k));
        __m256i t = _mm256_and_si256(_mm256_shuffle_epi8(lo_tab, _mm256_and_si256(x, nib)),
                                     _mm256_shuffle_epi8(hi_tab, _mm256_and_si256(_mm256_srli_epi16(x, 4), nib)));
        lead |= (uint64_t)(uint32_t)~_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_and_si256(t, seven), zero)) << k;
        exc |= (uint64_t)(uint32_t)_mm256_movemask_epi8(t) << k;
        three |= (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_slli_epi16(t, 5)) << k;
        bad_next |= (uint64_t)(uint32_t)_mm256_movemask_epi8(
                        _mm256_or_si256(_mm256_cmpeq_epi8(x, b7), _mm256_cmpeq_epi8(x, x97))) << k;
        cont |= (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpgt_epi8(c0, x)) << k; /* 0x80..0xBF */
        kana |= (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(x, e3)) << k;
    }
    cont >>= 1;  /* bit k: byte k + 1 continues a character */
    lead &= ~(exc & bad_next >> 1) & cont;
    uint64_t two = lead & ~three, three_ok = lead & three & cont >> 1;
    if (kana) {
        /* E3 81 81..BF, E3 82 80..96 A1..BF (and 9D..9F), E3 83 80..BF but BB */
        const __m256i x80 = HL(80), x81 = HL(81), x82 = HL(82), x83 = HL(83), xbb = HL(BB), below_97 = HL(96),
                      above_a0 = HL(A1), after_9c = HL(9C), before_a0 = HL(A0);
        uint64_t s81 = 0, s82 = 0, s83 = 0, t80 = 0, tbb = 0, t97 = 0;
        for (int k = 0; k < 64; k += 32) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(p + k));
            s81 |= (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(x, x81)) << k;
            s82 |= (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(x, x82)) << k;
            s83 |= (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(x, x83)) << k;
            t80 |= (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(x, x80)) << k;
            tbb |= (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(x, xbb)) << k;
            /* 0x97..0x9C and 0xA0: signed, between 0x96 and 0xA1 but not 0x9D..0x9F */
            __m256i in = _mm256_and_si256(_mm256_cmpgt_epi8(x, below_97), _mm256_cmpgt_epi8(above_a0, x));
            __m256i hole = _mm256_and_si256(_mm256_cmpgt_epi8(x, after_9c), _mm256_cmpgt_epi8(before_a0, x));
            t97 |= (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_andnot_si256(hole, in)) << k;
        }
        uint64_t ok = (s81 >> 1 & ~(t80 >> 2)) | (s82 >> 1 & ~(t97 >> 2)) | (s83 >> 1 & ~(tbb >> 2));
        kana &= ok & cont >> 1;
        three_ok |= kana;
    }
    uint64_t bits = two | two << 1 | three_ok | three_ok << 1 | three_ok << 2;
    m->letter |= bits;
    m->high &= ~bits;
}
#undef HL

#endif

/* The characters of 0x80 and up among the 64 bytes at p (67 may be read):
 * their class on all their bytes (the other class: none). Stops at the
 * first that is not valid UTF-8 or is white space, which piece_starts
 * cannot place (a space of two bytes or more would give back only its last
 * byte), and leaves m->high set from there on. utf8_decode's checks, on
 * the character's 4 bytes as one word: its continuation bytes by a mask,
 * an overlong form, a surrogate or a code point past U+10FFFF by its
 * value. */
static inline __attribute__((always_inline)) void classify_high(const struct bpe *v, const uint8_t *p,
                                                                byte_masks *m) {
    uint64_t high = m->high, letter = 0, digit = 0;
    size_t k;
    while (high) {
        k = (size_t)__builtin_ctzll(high);
        uint32_t w, c, cp, len;
        __builtin_memcpy(&w, p + k, 4);
        if (!BPE_LITTLE_ENDIAN) w = __builtin_bswap32(w);
        c = w & 0xFF;
        if (c < 0xE0) {
            if (c < 0xC2 || (w & 0xC000) != 0x8000) goto stop;
            cp = (c & 0x1F) << 6 | (w >> 8 & 0x3F);
            len = 2;
        } else if (c < 0xF0) {
            if ((w & 0xC0C000) != 0x808000) goto stop;
            cp = (c & 0x0F) << 12 | (w >> 2 & 0xFC0) | (w >> 16 & 0x3F);
            if (cp < 0x800 || (cp >= 0xD800 && cp < 0xE000)) goto stop;
            len = 3;
        } else {
            if (c > 0xF4 || (w & 0xC0C0C000) != 0x80808000) goto stop;
            cp = (c & 0x07) << 18 | (w << 4 & 0x3F000) | (w >> 10 & 0xFC0) | (w >> 24 & 0x3F);
            if (cp < 0x10000 || cp > 0x10FFFF) goto stop;
            len = 4;
        }
        int cls = v->cls2[(size_t)v->cls1[cp >> 8] * 256 + (cp & 255)];
        if (cls == CLS_SPACE) goto stop;
        uint64_t bits = ((1ull << len) - 1) << k;
        letter |= cls == CLS_LETTER ? bits : 0;
        digit |= cls == CLS_NUMBER ? bits : 0;
        high &= ~bits;
    }
    m->letter |= letter;
    m->digit |= digit;
    m->high = 0;
    return;
stop:
    m->letter |= letter;
    m->digit |= digit;
    m->high = ~0ull << k;
}

/* Where GPT-2's pieces start in 64 bytes of text that starts a
 * piece, classified (bit k: a piece starts at byte k; bit 0 is left out).
 * A piece is a run of letters, of digits or of other characters, which
 * takes the one U+0020 before it, or a run of white space; before a
 * non-space, the last character of a run of two or more spaces goes on its
 * own or, when it is U+0020, with what follows. Right for bits 1..62 below
 * the first byte still in m->high (from there on bits are wrong, and so may
 * be the bit just before it); apostrophes (contractions) are the caller's. */
static inline uint64_t piece_starts(const byte_masks *m) {
    uint64_t ws = m->space, solid = ~(ws | m->high), other = solid & ~(m->letter | m->digit);
    uint64_t solid_next = solid >> 1;  /* bit k: byte k + 1 is a non-space */
    uint64_t runs = (m->letter & ~(m->letter << 1)) | (m->digit & ~(m->digit << 1)) | (other & ~(other << 1));
    return (runs & ~(m->blank << 1)) | (m->blank & solid_next) | (ws & ~(ws << 1)) | (ws & ws << 1 & solid_next);
}

/* cut (bit k: a piece ends after byte k) with the contractions ('s 't 're
 * 've 'm 'll 'd) of the window at p cut off the front of the pieces that
 * start with an apostrophe (bit k of starts): such a piece is the
 * contraction, and the next starts after it. The letters' run that the
 * apostrophe's piece ended at is the contraction's and the next piece's.
 * (cut has no bit past 61: a contraction that would end past the window
 * is the next window's first piece.) */
static inline uint64_t cut_contractions(const uint8_t *p, uint64_t starts, uint64_t cut) {
    while (starts) {
        size_t k = (size_t)__builtin_ctzll(starts), c = contraction(p + k);
        starts &= starts - 1;
        if (c && k + c <= 64) cut = (cut & ~(((1ull << c) - 1) << k)) | 1ull << (k + c - 1);
    }
    return cut;
}

/* any_piece for a window all placed (m->high clear) in which no piece
 * ends: a run of letters, digits or other characters, with or without a
 * U+0020 before it, covers bytes 0..62, so the run's end is looked for from
 * the last character that starts there on, not from the window's start. A
 * window of white space goes to any_piece. */
static __attribute__((noinline)) size_t long_run(out_t *o, const uint8_t *s, size_t i, size_t end,
                                                 const byte_masks *m) {
    const uint8_t *p = s + i;
    size_t b = p[0] == ' ', k = 62;
    uint64_t bit = 1ull << b;
    int cls = m->letter & bit ? CLS_LETTER : m->digit & bit ? CLS_NUMBER : m->space & bit ? CLS_SPACE : CLS_OTHER;
    if (cls == CLS_SPACE) return any_piece(o, s, i, end);
    while (k > b && (p[k] & 0xC0) == 0x80) k--;  /* a character's first byte */
    size_t j = class_run_end(o->v, s, i + k, end, cls);
    encode_piece(o, p, j - i, i, end - i);
    return j;
}

/* The lookup tables, in locals of the scanners: the compiler cannot tell
 * that writing ids leaves v's fields alone. */
typedef struct {
    uint32_t *ids;
    const uint32_t *byte_tok;
    const uint64_t *bloom;
    const bpe_slot *slots;
    size_t mask;
} piece_tabs;

/* The tokens blank_piece writes; space is BPE_EMPTY when it does not apply. */
typedef struct {
    uint32_t space, newline, newlines;
} blank_tabs;

/* The tokens blank_piece writes, when the vocabulary lets it: no token
 * has "  " or "\n " in it (GPT-2's has neither), so that a piece of one
 * or two newlines and then spaces merges no more than its "\n\n". */
static void blank_tokens(const struct bpe *v, blank_tabs *t) {
    t->space = t->newline = t->newlines = BPE_EMPTY;
    if (bpe_inner_pair(v, ' ', ' ') || bpe_inner_pair(v, '\n', ' ')) return;
    t->space = v->byte_tok[' '];
    t->newline = v->byte_tok['\n'];
    t->newlines = bpe_find_token(v, (const uint8_t *)"\n\n", 2);
}

/* The indentation of text and code: a piece that is not a token and is
 * one or two newlines and then spaces, or only spaces (blank: bit j set
 * when q[j] is a space; n <= 62), to w without the piece cache; returns
 * where the next id goes, or NULL when it is none of these. Writes up to
 * 7 ids past the piece's (16 are free: the window's room). Not inlined:
 * the window's loop keeps its registers. */
static __attribute__((noinline)) uint32_t *blank_piece(const blank_tabs *t, const uint8_t *q, size_t n,
                                                       uint64_t blank, uint32_t *w) {
    size_t k = q[0] == '\n' ? 1 + (q[1] == '\n') : 0;
    uint64_t want = (1ull << n) - 1;
    if (((blank | ((1ull << k) - 1)) & want) != want || t->space == BPE_EMPTY) return NULL;
    if (k == 2 && t->newlines != BPE_EMPTY) {
        *w++ = t->newlines;
    } else {
        for (size_t j = 0; j < k; j++) *w++ = t->newline;
    }
#ifdef __SSE2__
    __m128i sp = _mm_set1_epi32((int)t->space);
    for (size_t j = k; j < n; j += 8) {
        _mm_storeu_si128((__m128i *)(w + j - k), sp);
        _mm_storeu_si128((__m128i *)(w + j - k + 4), sp);
    }
#else
    for (size_t j = k; j < n; j++) w[j - k] = t->space;
#endif
    return w + (n - k);
}

/* Piece s[start..start+len) (of a text that ends at end) to out: its
 * single-byte token, the whole token it is, or bpe_merge_piece /
 * encode_piece (which append at o->n). wide (the window's pieces): 16
 * bytes are readable from start and the vocabulary has its bloom. Returns
 * where the next id goes. */
static inline __attribute__((always_inline)) uint32_t *put_piece(out_t *o, piece_tabs t, uint32_t *out,
                                                                 const uint8_t *s, size_t start, size_t len,
                                                                 size_t end, int wide) {
    if (len == 1) {
        *out = t.byte_tok[s[start]];
        return out + 1;
    }
    if (BPE_LITTLE_ENDIAN && len <= BPE_SLOT_BYTES && (wide || t.bloom)) {
        uint64_t h;
        uint32_t id = wide || end - start >= 16 ? find_wide(t.bloom, t.slots, t.mask, s + start, len, &h)
                                                : bpe_find_short_piece(o->v, s + start, len, 1, &h);
        if (id != BPE_EMPTY) {
            *out = id;
            return out + 1;
        }
        o->n = (size_t)(out - t.ids);
        bpe_merge_piece(o, s + start, len, start, h, end - start);
    } else {
        o->n = (size_t)(out - t.ids);
        encode_piece(o, s + start, len, start, end - start);
    }
    return t.ids + o->n;
}

/* Encodes the pieces of s[i..end) 64 bytes at a time while 80 are left:
 * a window of 64 bytes that starts at a piece is classified at once
 * (classify64, classify_high, piece_starts), and the pieces that end
 * inside it are looked up from those bits, contractions cut off first
 * (cut_contractions). A piece that the window cannot end (longer than it,
 * or before a byte it cannot place) goes to any_piece. Returns where the
 * rest starts. (The same cuts as the byte loop in bpe_encode_text, found
 * without a branch a byte.) One body for each instruction set (isa, a
 * constant where it is inlined). */
static inline __attribute__((always_inline)) size_t windows(out_t *o, piece_tabs t, const uint8_t *s, size_t i,
                                                            size_t end, int isa) {
    uint32_t *out = t.ids + o->n;
    blank_tabs bt;
    blank_tokens(o->v, &bt);
    while (end - i >= 80) {
        const uint8_t *p = s + i;
        byte_masks m;
#if SCAN_X86
        if (isa == BPE_SCAN_AVX2)
            classify64_avx2(p, &m);
        else
#endif
            classify64(p, &m);
        if (m.high) {
#if SCAN_X86
            /* the vector path pays where a window has a few characters of 0x80 and up */
            if (isa == BPE_SCAN_AVX2 && __builtin_popcountll(m.high) >= HIGH_VECTOR_MIN) high_letters_avx2(p, &m);
#endif
            if (m.high) classify_high(o->v, p, &m);
        }
        /* bits 1 .. the last that is right (62, or before the first unplaced byte) */
        uint64_t sure = (m.high ? (m.high & -m.high) - 1 : ~0ull) >> 1 & 0x3FFFFFFFFFFFFFFFull;
        uint64_t cut = piece_starts(&m) >> 1 & sure;
        if (!cut) {  /* no piece ends in the window */
            o->n = (size_t)(out - t.ids);
            i = m.high ? any_piece(o, s, i, end) : long_run(o, s, i, end, &m);
            out = t.ids + o->n;
            continue;
        }
        uint64_t apos = m.apos & (cut << 1 | 1);
        if (apos) cut = cut_contractions(p, apos, cut);
        /* cut's bits from here on: bit k, the piece that starts at q
         * ends after byte k (shifted as pieces are taken) */
        const uint8_t *q = p;
        do {
            size_t k = (size_t)__builtin_ctzll(cut), len = k + 1;
            cut = cut >> k >> 1;
            uint32_t id, *blank;
            uint64_t h;
            if (len == 1) {
                *out++ = t.byte_tok[*q];
            } else if (len <= BPE_SLOT_BYTES && (id = find_wide(t.bloom, t.slots, t.mask, q, len, &h)) != BPE_EMPTY) {
                *out++ = id;
            } else if (q[1] <= ' ' && (blank = blank_piece(&bt, q, len, m.blank >> (q - p), out))) {
                out = blank;
            } else {
                size_t start = (size_t)(q - s);
                o->n = (size_t)(out - t.ids);
                if (len <= BPE_SLOT_BYTES)
                    bpe_merge_piece(o, q, len, start, h, end - start);
                else
                    encode_piece(o, q, len, start, end - start);
                out = t.ids + o->n;
            }
            q += len;
        } while (cut);
        i = (size_t)(q - s);
    }
    o->n = (size_t)(out - t.ids);
    return i;
}

static size_t windows_base(out_t *o, piece_tabs t, const uint8_t *s, size_t i, size_t end) {
    return windows(o, t, s, i, end, BPE_SCAN_BASE);
}
#if SCAN_X86
static SCAN_AVX2 size_t windows_avx2(out_t *o, piece_tabs t, const uint8_t *s, size_t i, size_t end) {
    return windows(o, t, s, i, end, BPE_SCAN_AVX2);
}
#endif

int bpe_scan_supported(int isa) {
    if (isa == BPE_SCAN_BASE) return 1;
#if SCAN_X86
    __builtin_cpu_init();
    if (isa == BPE_SCAN_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
               __builtin_cpu_supports("popcnt");
#endif
    return 0;
}

/* Encodes s[i..end) as a whole text: `end` is the end of input for the
 * regex, and every invalid byte ends a stretch of text as well (it becomes
 * its own piece). Offsets are s-relative.
 *
 * With room for a token a byte and no offsets to work out, ids are written
 * without a bounds check, and the window scanner (windows, built for isa)
 * takes all but the last 80 bytes. The byte loop below takes those: an
 * ASCII piece (a letter, number or other run, with or without one space
 * before it, or a run of ASCII white space) is cut from the byte table
 * ascii_run and looked up as a whole token; a piece that starts with an
 * apostrophe or touches a byte of 0x80 and up is left to any_piece, from
 * its start. */
void bpe_encode_text_isa(out_t *o, const uint8_t *s, size_t i, size_t end, int isa) {
    const struct bpe *v = o->v;
    if (o->offs || !has_room(o, end - i)) {
        while (i < end) i = any_piece(o, s, i, end);
        return;
    }
    piece_tabs t = {o->ids, v->byte_tok, v->tok_bloom, v->tok_slots, v->tok_mask};
    if (BPE_LITTLE_ENDIAN && t.bloom && end - i >= 80) {
        if (isa == BPE_SCAN_AUTO) isa = bpe_scan_supported(BPE_SCAN_AVX2) ? BPE_SCAN_AVX2 : BPE_SCAN_BASE;
#if SCAN_X86
        if (isa == BPE_SCAN_AVX2)
            i = windows_avx2(o, t, s, i, end);
        else
#endif
            i = windows_base(o, t, s, i, end);
    }
    uint32_t *out = t.ids + o->n;
    while (i < end) {
        size_t start = i, j = i + 1;
        int k = ascii_run[s[i]];
        if (k == CLS_SPACE) {
            int next = j < end ? ascii_run[s[j]] : CLS_SPACE;
            if (s[i] == ' ' && next < CLS_SPACE) {
                k = next;  /* " ?X+" */
                j++;
            } else if (next != RUN_HIGH) {
                /* "\s+(?!\S)|\s+": the last of two or more gives itself to
                 * what follows */
                while (j < end && ascii_run[s[j]] == CLS_SPACE) j++;
                if (j < end && ascii_run[s[j]] == RUN_HIGH) goto any;
                if (j < end && j - start > 1) j--;
                goto piece;
            } else {
                goto any;
            }
        } else if (k == RUN_HIGH || s[i] == '\'') {
            goto any;
        }
        if (k == CLS_LETTER) j = ascii_letters_end(s, j, end);
        while (j < end && ascii_run[s[j]] == k) j++;
        if (j < end && ascii_run[s[j]] == RUN_HIGH) goto any;
    piece:;
        out = put_piece(o, t, out, s, start, j - start, end, 0);
        i = j;
        continue;
    any:
        o->n = (size_t)(out - t.ids);
        i = any_piece(o, s, start, end);
        out = t.ids + o->n;
    }
    o->n = (size_t)(out - t.ids);
}

void bpe_encode_text(out_t *o, const uint8_t *s, size_t i, size_t end) { bpe_encode_text_isa(o, s, i, end, BPE_SCAN_AUTO); }
