/* cmd_shard_jsonlib.c - gpt2in-shard's side of the JSON Lines fast path:
 * loads gpt2in-shard-json.so (simdjson, cmd_shard_json.cpp) from beside
 * this program the first time a parser is wanted, so that a run over text
 * inputs never loads simdjson and the C++ runtime. Without the library
 * every line goes to jansson (cmd_shard_unit.c): the same documents, more
 * slowly, and one warning says so. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shard_json.h"

#define LIB_NAME "gpt2in-shard-json.so"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const shard_json_lib *lib;

static void load(void) {
    char self[PATH_MAX], why[512] = "";
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - sizeof LIB_NAME - 1);
    char *slash = n > 0 ? memrchr(self, '/', (size_t)n) : NULL;
    if (!slash) {
        snprintf(why, sizeof why, "cannot find this program's own path (/proc/self/exe): %s",
                 n < 0 ? strerror(errno) : "too long");
    } else {
        memcpy(slash + 1, LIB_NAME, sizeof LIB_NAME);
        void *h = dlopen(self, RTLD_NOW | RTLD_LOCAL);
        const shard_json_lib *(*get)(void) = NULL;
        if (h) *(void **)&get = dlsym(h, "shard_json_lib_get");
        const shard_json_lib *l = get ? get() : NULL;
        if (!h) snprintf(why, sizeof why, "%.400s", dlerror());
        else if (!l || l->abi != SHARD_JSON_ABI || l->padding > SHARD_JSON_PADDING)
            snprintf(why, sizeof why, "%.400s: not this gpt2in-shard's library", self);
        else
            lib = l;   /* (never unloaded) */
    }
    if (!lib)
        fprintf(stderr, "gpt2in: shard: warning: JSON Lines are parsed by jansson alone, more slowly (%s)\n", why);
}

shard_json *shard_json_new(void) {
    pthread_once(&once, load);
    return lib ? lib->make() : NULL;
}

void shard_json_free(shard_json *j) {
    if (j) lib->drop(j);
}

int shard_json_field(shard_json *j, const char *line, size_t n, const char *field, const char **s, size_t *len) {
    return lib->field(j, line, n, field, s, len);
}
