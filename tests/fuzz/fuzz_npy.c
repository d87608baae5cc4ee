/* fuzz_npy - libFuzzer target for the .npy reader.
 *
 * The input is a whole .npy image for embed_npy_read_mem. When accepted:
 * count is the product of the shape, the data (count elements of the
 * dtype) is readable, and writing the same dtype and shape with
 * embed_npy_header followed by the data must read back to the same array
 * (the reader's output and the writer's header agree). When rejected, the
 * message is one line. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    embed_error err;
    err.msg[0] = 0;
    embed_npy a;
    memset(&a, 0, sizeof a);
    int rc = embed_npy_read_mem(data, size, "fuzz.npy", &a, &err);
    if (rc != EMBED_OK) {
        CHECK(rc < 0 && err.msg[0] && !strchr(err.msg, '\n'));
        return 0;
    }
    CHECK(a.ndim >= 0 && a.ndim <= EMBED_MAX_DIMS && a.dtype < EMBED_DTYPE_COUNT);
    uint64_t count = 1;
    for (int d = 0; d < a.ndim; d++) {
        CHECK(a.shape[d] == 0 || count <= UINT64_MAX / a.shape[d]);
        count *= a.shape[d];
    }
    CHECK(count == a.count);
    size_t bytes = (size_t)(count * embed_dtype_bits(a.dtype) / 8);
    CHECK(bytes <= size); /* the data came from the image */
    CHECK(count == 0 || a.data);
    volatile unsigned sum = 0;
    for (size_t i = 0; i < bytes; i++) sum += ((const unsigned char *)a.data)[i];

    /* write the same array back: header + data must read to the same array */
    char hdr[256];
    size_t hl = embed_npy_header(a.dtype, a.ndim, a.shape, hdr);
    CHECK(hl > 10 && hl <= 256 && hl % 64 == 0);
    unsigned char *img = malloc(hl + bytes + 1);
    CHECK(img);
    memcpy(img, hdr, hl);
    if (bytes) memcpy(img + hl, a.data, bytes);
    embed_npy b;
    memset(&b, 0, sizeof b);
    CHECK(embed_npy_read_mem(img, hl + bytes, "again.npy", &b, &err) == EMBED_OK);
    CHECK(b.dtype == a.dtype && b.ndim == a.ndim && b.count == a.count);
    CHECK(a.ndim == 0 || !memcmp(a.shape, b.shape, (size_t)a.ndim * sizeof a.shape[0]));
    CHECK(bytes == 0 || !memcmp(a.data, b.data, bytes));
    /* the same image cut short by one byte is an error */
    if (bytes) {
        embed_npy c;
        memset(&c, 0, sizeof c);
        CHECK(embed_npy_read_mem(img, hl + bytes - 1, "short.npy", &c, &err) != EMBED_OK);
    }
    embed_npy_free(&b);
    free(img);
    (void)sum;
    embed_npy_free(&a);
    return 0;
}
