/* fuzz_table_llmc - libFuzzer target for the llmc weights reader (embed_open
 * of kind EMBED_KIND_LLMC_MODEL): the properties are in table_check.h. */
#define TABLE_KIND EMBED_KIND_LLMC_MODEL
#include "table_check.h"
