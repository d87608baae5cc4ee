/* bench_shard_json.c FILE.jsonl - what parsing JSON Lines with jansson costs
 * gpt2in shard: json_loadb of every line (in memory) and its "text"
 * field's length, no tokenizing. Prints nothing;
 * tests/bench/bench_shard.sh times the process (reading included). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    FILE *f = fopen(argv[1], "rb");
    if (!f) return 2;
    size_t cap = 1 << 20, n = 0, got;
    char *b = malloc(cap);
    while (b && (got = fread(b + n, 1, cap - n, f)) > 0)
        if ((n += got) == cap) b = realloc(b, cap *= 2);
    fclose(f);
    if (!b) return 2;
    size_t total = 0;
    for (char *p = b, *e = b + n; p < e;) {
        char *nl = memchr(p, '\n', (size_t)(e - p));
        if (!nl) nl = e;
        json_error_t je;
        json_t *j = json_loadb(p, (size_t)(nl - p), JSON_ALLOW_NUL, &je);
        if (!j) return 1;
        total += json_string_length(json_object_get(j, "text"));
        json_decref(j);
        p = nl + 1;
    }
    free(b);
    return total ? 0 : 1;
}
