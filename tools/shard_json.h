/* shard_json.h - JSON Lines' fast path for gpt2in shard (cmd_shard_json.cpp,
 * simdjson), callable from C. */
#ifndef SHARD_JSON_H
#define SHARD_JSON_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The string field `field` of line[0..n), which must be readable up to
 * n + shard_json_padding() bytes. SHARD_JSON_BAD: not a good line (jansson
 * then says why). The string stays valid until the next call. */
enum { SHARD_JSON_OK, SHARD_JSON_BAD, SHARD_JSON_NOMEM };
typedef struct shard_json shard_json;
shard_json *shard_json_new(void);
void shard_json_free(shard_json *j);
size_t shard_json_padding(void);
int shard_json_field(shard_json *j, const char *line, size_t n, const char *field, const char **s, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
