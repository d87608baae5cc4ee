/* fuzz_table_npy - libFuzzer target for the npy weights reader (embed_open
 * of kind EMBED_KIND_NPY): the properties are in table_check.h. */
#define TABLE_KIND EMBED_KIND_NPY
#include "table_check.h"
