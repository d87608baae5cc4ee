/* st_internal.h - helpers shared inside the embed module (the file formats,
 * the math, similarity); not part of the public API. */
#ifndef EMBED_ST_INTERNAL_H
#define EMBED_ST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "embed.h"

/* printf into err->msg, newlines flattened (messages are one line). */
void embed_st_error(embed_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same, returning code: return embed_fail(err, EMBED_ERR_..., ...). */
int embed_fail(embed_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* s quoted and made printable for a message, cut after 80 bytes; cap >= 8. */
const char *embed_st_quote(const char *s, char *buf, size_t cap);
/* Offset of the first byte that is not valid UTF-8, or n. */
size_t embed_st_utf8_check(const unsigned char *s, size_t n);
/* Element count and byte size of dt[shape]: 0, -1 if either overflows 64
 * bits, -2 if the bits are not a whole number of bytes. */
int embed_st_shape_bytes(embed_dtype dt, int ndim, const uint64_t *shape, uint64_t *count,
                         uint64_t *bytes);
/* "F32 [2, 2]" */
const char *embed_st_shape_str(embed_dtype dt, int ndim, const uint64_t *shape, char *buf,
                               size_t cap);

/* The open file behind f and the file offset of p (inside f's image), for
 * reading `rows` more rows with pread; -1 for an image in memory, or once
 * the rows read so far over the file's life would pass budget (from then on
 * the mapping is cheaper). */
int embed_st_pread_fd(const embed_file *f, const unsigned char *p, size_t rows, size_t budget,
                      uint64_t *offset);

#endif
