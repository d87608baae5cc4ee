/* gen - a deterministic stream of varied, realistic-looking text for
 * tests/test_huge.sh: English prose with punctuation, numbers, dates and
 * contractions, bits of code and markup, accented, Cyrillic, Greek, CJK and
 * emoji words, runs of spaces and symbols, and now and then a byte that is
 * not valid UTF-8.
 *
 *   gen PARTS MB_PER_PART [PART]
 *
 * Writes part PART (0-based) or, without it, all PARTS parts one after the
 * other. Each part is about MB_PER_PART megabytes, depends only on its
 * number, starts with "\n" + a letter and ends with a letter or punctuation
 * + "\n". Between two parts the text is therefore "x\n" | "\nY": the regex
 * splits that into "\n", "\n" both when the parts are joined and when each
 * is encoded alone, so encoding the parts separately and concatenating must
 * give exactly the ids of the whole stream. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const words[] = {
    "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be",
    "by", "on", "not", "he", "I", "this", "are", "or", "his", "from", "at", "which", "but",
    "have", "an", "had", "they", "you", "were", "their", "one", "all", "we", "can", "her",
    "has", "there", "been", "if", "more", "when", "will", "would", "who", "so", "no",
    "language", "model", "token", "embedding", "vector", "training", "data", "network",
    "transformer", "attention", "layer", "weights", "gradient", "function", "memory",
    "history", "government", "university", "information", "development", "international",
    "particularly", "approximately", "nevertheless", "characteristics", "responsibility",
    "quickly", "brown", "fox", "jumps", "over", "lazy", "dog", "river", "mountain", "city",
    "Paris", "London", "Tokyo", "GPT", "OpenAI", "Wikipedia", "JavaScript", "Python", "Linux",
    "don't", "can't", "it's", "we'll", "they're", "I've", "she'd", "isn't", "won't", "you'd",
    "naïve", "café", "résumé", "Zürich", "São", "Paulo", "Ångström", "façade", "jalapeño",
    "Привет", "мир", "язык", "модель", "Ελλάδα", "λόγος", "日本語", "中文", "東京", "学习",
    "한국어", "مرحبا", "שלום", "नमस्ते", "😀", "🚀", "👍🏽", "∑", "≈", "→", "€", "£",
};
#define NWORDS (sizeof words / sizeof words[0])

static const char *const code[] = {
    "def main(argv):\n    return 0\n",
    "for (int i = 0; i < n; i++) { sum += x[i] * w[i]; }\n",
    "if x != None and len(x) > 0:\n\tprint(f\"{x[0]!r}\")\n",
    "<div class=\"row\"><a href=\"https://example.org/?q=1&b=2\">link</a></div>\n",
    "SELECT id, name FROM users WHERE age >= 21 ORDER BY name;\n",
    "    const y = await fetch(url).then(r => r.json()); // TODO\n",
    "{\"key\": [1, 2.5, -3e10, true, null], \"s\": \"a\\nb\"}\n",
    "#include <stdio.h>\nint main(void) { puts(\"hi\"); }\n",
};
#define NCODE (sizeof code / sizeof code[0])

static uint64_t rs;
static uint64_t rnd(void) { /* xorshift64* */
    rs ^= rs >> 12;
    rs ^= rs << 25;
    rs ^= rs >> 27;
    return rs * 0x2545F4914F6CDD1DULL;
}
static unsigned r(unsigned n) { return (unsigned)((rnd() >> 33) % n); }

static char buf[1 << 16];
static size_t blen;
static uint64_t written;

/* Sentences are made once per part into a pool and then drawn from it at
 * random: varied text at memcpy speed. */
#define POOL 8192
static char pool[POOL * 512];
static uint32_t pool_at[POOL + 1];
static int to_pool;
static size_t plen;

static void put(const char *s, size_t n) {
    if (to_pool) {
        if (plen + n <= sizeof pool) {
            memcpy(pool + plen, s, n);
            plen += n;
        }
        return;
    }
    if (blen + n > sizeof buf) {
        fwrite(buf, 1, blen, stdout);
        blen = 0;
    }
    if (n > sizeof buf) {
        fwrite(s, 1, n, stdout);
    } else {
        memcpy(buf + blen, s, n);
        blen += n;
    }
    written += n;
}
static void puts_(const char *s) { put(s, strlen(s)); }

static void sentence(void) {
    unsigned n = 3 + r(18);
    for (unsigned i = 0; i < n; i++) {
        if (i) puts_(r(50) ? " " : "  ");
        unsigned k = r(100);
        char tmp[64];
        if (k < 6) {
            snprintf(tmp, sizeof tmp, "%u", (unsigned)(rnd() % (k < 3 ? 100 : 10000000)));
            puts_(tmp);
        } else if (k < 7) {
            snprintf(tmp, sizeof tmp, "%04u-%02u-%02u", 1900 + r(130), 1 + r(12), 1 + r(28));
            puts_(tmp);
        } else if (k < 8) {
            snprintf(tmp, sizeof tmp, "%u.%02u%%", r(100), r(100));
            puts_(tmp);
        } else {
            const char *w = words[k < 60 ? r(50) : r(NWORDS)];
            if (i == 0 && w[0] >= 'a' && w[0] <= 'z') {
                char c = (char)(w[0] - 32);
                put(&c, 1);
                puts_(w + 1);
            } else {
                puts_(w);
            }
        }
        if (r(12) == 0) puts_(r(2) ? "," : (r(2) ? ";" : ":"));
        if (r(80) == 0) puts_(r(2) ? " (see above)" : " \"quoted\"");
    }
    unsigned e = r(20);
    puts_(e < 14 ? "." : e < 17 ? "?" : e < 19 ? "!" : "...");
}

static void pooled(void) {
    unsigned i = r(POOL);
    put(pool + pool_at[i], pool_at[i + 1] - pool_at[i]);
}

static void part(uint64_t p, uint64_t bytes) {
    rs = 0x9E3779B97F4A7C15ULL * (p + 1) ^ 0xD1B54A32D192ED03ULL;
    for (int i = 0; i < 8; i++) rnd();
    to_pool = 1;
    plen = 0;
    for (int i = 0; i < POOL; i++) {
        pool_at[i] = (uint32_t)plen;
        sentence();
    }
    pool_at[POOL] = (uint32_t)plen;
    to_pool = 0;
    uint64_t end = written + bytes;
    puts_("\nStart");
    while (written < end) {
        unsigned k = r(100);
        if (k < 80) {
            puts_(" ");
            pooled();
        } else if (k < 90) {
            puts_(r(3) ? "\n\n" : "\n");
            pooled();
        } else if (k < 95) {
            puts_("\n");
            puts_(code[r(NCODE)]);
            pooled();
        } else if (k < 97) {
            /* long runs: spaces, symbols, digits */
            static const char fill[] = " =-#0.*";
            char c = fill[r(sizeof fill - 1)];
            unsigned n = 1 + r(k == 95 ? 200 : 40);
            puts_("\n");
            for (unsigned i = 0; i < n; i++) put(&c, 1);
            puts_(" ok.");
        } else if (k < 98) {
            /* a byte that is not valid UTF-8 */
            static const char bad[][3] = {"\xff", "\xc3", "\xe2\x82", "\xed\xa0", "\x80"};
            puts_(" x");
            puts_(bad[r(5)]);
            puts_("y.");
        } else {
            puts_(" \t");
            pooled();
        }
    }
    puts_(" End.\n");
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: gen PARTS MB_PER_PART [PART]\n");
        return 2;
    }
    uint64_t parts = strtoull(argv[1], NULL, 10), mb = strtoull(argv[2], NULL, 10);
    uint64_t bytes = mb << 20;
    if (argc > 3) {
        part(strtoull(argv[3], NULL, 10), bytes);
    } else {
        for (uint64_t p = 0; p < parts; p++) part(p, bytes);
    }
    fwrite(buf, 1, blen, stdout);
    return fflush(stdout) ? 1 : 0;
}
