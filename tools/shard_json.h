/* shard_json.h - JSON Lines' fast path for gpt2in shard, callable from C:
 * simdjson (C++, cmd_shard_json.cpp) in a library of its own,
 * gpt2in-shard-json.so beside gpt2in-shard, which loads it
 * (cmd_shard_jsonlib.c) only when an input is JSON Lines: simdjson and the
 * C++ runtime cost more at start-up than a small text input's tokenizing. */
#ifndef SHARD_JSON_H
#define SHARD_JSON_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes past a line's end that the parser may read: its buffers have that
 * many more. (The library's own need is checked when it is loaded.) */
#define SHARD_JSON_PADDING 64

enum { SHARD_JSON_OK, SHARD_JSON_BAD, SHARD_JSON_NOMEM };
typedef struct shard_json shard_json;

/* The library's one exported symbol: its functions. */
#define SHARD_JSON_ABI 1
typedef struct {
    int abi;               /* SHARD_JSON_ABI */
    size_t padding;
    shard_json *(*make)(void);
    void (*drop)(shard_json *j);
    int (*field)(shard_json *j, const char *line, size_t n, const char *field, const char **s, size_t *len);
} shard_json_lib;
const shard_json_lib *shard_json_lib_get(void);

/* gpt2in-shard's side (cmd_shard_jsonlib.c). A parser, or NULL when the
 * library cannot be loaded (or memory is short): jansson then takes every
 * line, the same result more slowly. Thread-safe; loads at the first call. */
shard_json *shard_json_new(void);
void shard_json_free(shard_json *j);
/* The string field `field` of line[0..n), which must be readable up to
 * n + SHARD_JSON_PADDING bytes. SHARD_JSON_BAD: not a good line (jansson
 * then says why). The string stays valid until the next call. */
int shard_json_field(shard_json *j, const char *line, size_t n, const char *field, const char **s, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
