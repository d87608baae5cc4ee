/* gpt2in shard's SHA-256 (tools/cmd_shard_sha256.c): FIPS 180-4's test
 * vectors through each of its three ways (portable C; the CPU's SHA
 * extensions when it has them; libcrypto's code, loaded, when it can be),
 * then all three on random data of every length around the block and
 * padding boundaries, fed whole and in random pieces, must agree. The
 * manifest's hashes (files, tokens, shards, vocabulary) are these. */
#include <string.h>

#include "check.h"
#include "rnd.h"
#include "tools/cmd_shard_sha256.c"

/* blocks: the block function of our own code, or NULL for libcrypto's */
static void hash_with(void (*blocks)(uint32_t *, const unsigned char *, size_t), const void *p, size_t n,
                      size_t piece, char hex[65]) {
    shard_sha s;
    shard_sha_init(&s);
    if (blocks && s.lib) {   /* our own code on a machine where libcrypto's is used */
        lib.init = NULL;
        shard_sha_init(&s);
        lib_load();
    }
    CHECK(s.lib == !blocks, "not the code under test");
    sha_blocks = blocks ? blocks : sha_blocks_c;
    const unsigned char *c = p;
    for (size_t at = 0; at < n;) {
        size_t k = piece ? (piece < n - at ? piece : n - at) : n - at;
        shard_sha_update(&s, c + at, k);
        at += k;
    }
    shard_sha_hex(&s, hex);
}

int main(void) {
    static const struct {
        const char *msg;
        size_t repeat;
        const char *hex;
    } vec[] = {
        {"", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         1, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
        {"a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    };
    void (*impl[2])(uint32_t *, const unsigned char *, size_t) = {sha_blocks_c, NULL};
    const char *names[3] = {"portable", "SHA-NI", "libcrypto"};
    pthread_once(&sha_once, sha_pick);
    int ni = 0;
#ifdef SHA_X86
    ni = cpu_has_sha_ni();
    if (ni) impl[1] = sha_blocks_ni;
    CHECK(sha_blocks == (ni ? sha_blocks_ni : sha_blocks_c), "the CPU's SHA extensions are not the ones used");
#endif
    CHECK(ni || lib.init || !lib_load(), "libcrypto loads, but is not used on a CPU without SHA extensions");
    int have_lib = lib.init || lib_load();
    sha_blocks = sha_blocks_c;
    printf("sha256: portable, %s, %s\n", ni ? "SHA-NI (this CPU's)" : "no SHA-NI here",
           have_lib ? "libcrypto" : "no libcrypto to load");

    char hex[65];
    for (size_t v = 0; v < sizeof vec / sizeof vec[0]; v++) {
        size_t len = strlen(vec[v].msg), n = len * vec[v].repeat;
        char *m = malloc(n + 1);
        if (!m) return 1;
        for (size_t r = 0; r < vec[v].repeat; r++) memcpy(m + r * len, vec[v].msg, len);
        for (int i = 0; i < 3; i++) {
            if (i == 1 ? !impl[1] : i == 2 && !have_lib) continue;
            for (size_t piece = 0; piece < 70; piece = piece ? piece * 3 : 1) {
                hash_with(i < 2 ? impl[i] : NULL, m, n, piece, hex);
                CHECK(!strcmp(hex, vec[v].hex), "vector %zu, %s, pieces of %zu: %s", v, names[i], piece, hex);
            }
        }
        free(m);
    }

    /* every length up to 300 (the padding's one and two blocks), then random ones */
    unsigned char *buf = malloc(1 << 17);
    if (!buf) return 1;
    for (size_t i = 0; i < 1 << 17; i++) buf[i] = (unsigned char)rnd();
    for (int t = 0; t < 700; t++) {
        size_t n = t < 300 ? (size_t)t : rnd() % (1 << 17), piece = 1 + rnd() % 200;
        const unsigned char *p = buf + rnd() % 16;   /* unaligned too */
        if (p + n > buf + (1 << 17)) n = (size_t)(buf + (1 << 17) - p);
        char whole[65], cut[65];
        hash_with(sha_blocks_c, p, n, 0, whole);
        hash_with(sha_blocks_c, p, n, piece, cut);
        CHECK(!strcmp(whole, cut), "portable, %zu bytes: whole %s, pieces of %zu %s", n, whole, piece, cut);
        if (impl[1]) {
            hash_with(impl[1], p, n, piece, cut);
            CHECK(!strcmp(whole, cut), "%zu bytes: portable %s, SHA-NI (pieces of %zu) %s", n, whole, piece, cut);
        }
        if (have_lib) {
            hash_with(NULL, p, n, piece, cut);
            CHECK(!strcmp(whole, cut), "%zu bytes: portable %s, libcrypto (pieces of %zu) %s", n, whole, piece, cut);
        }
    }
    free(buf);
    printf("test_shard_sha256: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
