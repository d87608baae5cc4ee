/* fuzz_table_gguf - libFuzzer target for the gguf weights reader (embed_open
 * of kind EMBED_KIND_GGUF): the properties are in table_check.h. */
#define TABLE_KIND EMBED_KIND_GGUF
#include "table_check.h"
