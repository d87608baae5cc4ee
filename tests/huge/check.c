/* check - reads little-endian u32 token ids on stdin and prints
 * "COUNT HASH MAXID" (HASH: 64-bit FNV-1a over the bytes), for
 * tests/test_huge.sh.
 *
 *   check [SAVE_FILE N [COUNT0 HASH0]]
 *
 * With SAVE_FILE (not "-") it also writes the first N ids there. COUNT0 and
 * HASH0 continue from an earlier run's output, so that checking a stream in
 * parts gives the same figures as checking it whole. A trailing partial id
 * is an error. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    int saving = argc > 2 && strcmp(argv[1], "-") != 0;
    FILE *save = saving ? fopen(argv[1], "wb") : NULL;
    uint64_t want = saving ? strtoull(argv[2], NULL, 10) : 0, n = 0, h = 0xcbf29ce484222325ULL;
    if (argc > 4) {
        n = strtoull(argv[3], NULL, 10);
        h = strtoull(argv[4], NULL, 16);
    }
    uint32_t maxid = 0;
    static unsigned char buf[1 << 16];
    size_t got, rest = 0;
    if (saving && !save) {
        perror(argv[1]);
        return 2;
    }
    while ((got = fread(buf + rest, 1, sizeof buf - rest, stdin)) > 0) {
        got += rest;
        size_t whole = got / 4 * 4;
        for (size_t i = 0; i < whole; i++) h = (h ^ buf[i]) * 0x100000001b3ULL;
        for (size_t i = 0; i < whole; i += 4) {
            uint32_t id = (uint32_t)buf[i] | (uint32_t)buf[i + 1] << 8 |
                          (uint32_t)buf[i + 2] << 16 | (uint32_t)buf[i + 3] << 24;
            if (id > maxid) maxid = id;
        }
        if (save && n < want) {
            uint64_t k = whole / 4 < want - n ? whole / 4 : want - n;
            fwrite(buf, 4, (size_t)k, save);
        }
        n += whole / 4;
        rest = got - whole;
        for (size_t i = 0; i < rest; i++) buf[i] = buf[whole + i];
    }
    if (save && fclose(save) != 0) return 2;
    if (rest) {
        fprintf(stderr, "check: %zu stray bytes at the end\n", rest);
        return 1;
    }
    printf("%" PRIu64 " %016" PRIx64 " %" PRIu32 "\n", n, h, maxid);
    return 0;
}
