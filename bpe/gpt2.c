/* gpt2.c - the GPT-2 vocabulary compiled into the library: a vocabulary
 * object pointing into the image that bpe_gen built (gpt2_image.S), so
 * nothing is read or parsed at start-up. Its fields are the image's
 * layout (BPE_IMAGE_SCALARS, BPE_IMAGE_ARRAYS), with the values bpe_gen
 * wrote into gpt2_layout.h. */
#include "bpe_internal.h"
#include "gpt2_layout.h"

extern const unsigned char bpe_gpt2_image[];

static const struct bpe gpt2 = {
#define X(type, name) .name = GPT2_##name,
    BPE_IMAGE_SCALARS(X)
#undef X
#define X(type, name, count) .name = (const type *)(bpe_gpt2_image + GPT2_OFF_##name),
    BPE_IMAGE_ARRAYS(X)
#undef X
    .owned = NULL,
};

const bpe *bpe_gpt2(void) { return &gpt2; }
