/* gpt2.c - the GPT-2 vocabulary compiled into the library: a vocabulary
 * object pointing into the image that bpe_gen built (gpt2_image.S), so
 * nothing is read or parsed at start-up. */
#include "bpe_internal.h"
#include "gpt2_layout.h"

extern const unsigned char bpe_gpt2_image[];

static const struct bpe gpt2 = {
    .n_tokens = GPT2_N_TOKENS,
    .eot = GPT2_EOT,
    .max_token_len = GPT2_MAX_TOKEN_LEN,
    .tok_mask = GPT2_TOK_MASK,
    .pair_mask = GPT2_PAIR_MASK,
    .tok_off = (const uint32_t *)(bpe_gpt2_image + GPT2_OFF_TOK_OFF),
    .tok_bytes = bpe_gpt2_image + GPT2_OFF_TOK_BYTES,
    .tok_slots = (const bpe_slot *)(bpe_gpt2_image + GPT2_OFF_TOK_SLOTS),
    .pairs = (const bpe_pair *)(bpe_gpt2_image + GPT2_OFF_PAIRS),
    .byte_tok = (const uint32_t *)(bpe_gpt2_image + GPT2_OFF_BYTE_TOK),
    .cls1 = (const uint16_t *)(bpe_gpt2_image + GPT2_OFF_CLS1),
    .cls2 = bpe_gpt2_image + GPT2_OFF_CLS2,
    .maxlen2 = (const uint16_t *)(bpe_gpt2_image + GPT2_OFF_MAXLEN2),
    .split = (const uint32_t *)(bpe_gpt2_image + GPT2_OFF_SPLIT),
    .maxlen3 = bpe_gpt2_image + GPT2_OFF_MAXLEN3,
    .tok_bloom = (const uint64_t *)(bpe_gpt2_image + GPT2_OFF_TOK_BLOOM),
    .byte_pairs = (const uint32_t *)(bpe_gpt2_image + GPT2_OFF_BYTE_PAIRS),
    .short_mask = GPT2_SHORT_MASK,
    .short_free = GPT2_SHORT_FREE,
    .short_keys = (const uint32_t *)(bpe_gpt2_image + GPT2_OFF_SHORT_KEYS),
    .short_ids = (const uint32_t *)(bpe_gpt2_image + GPT2_OFF_SHORT_IDS),
    .inner_pairs = (const uint64_t *)(bpe_gpt2_image + GPT2_OFF_INNER_PAIRS),
    .runs = GPT2_RUNS,
    .owned = NULL,
};

const bpe *bpe_gpt2(void) { return &gpt2; }
