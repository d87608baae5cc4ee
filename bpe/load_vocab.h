/* load_vocab.h - what the readers of other vocabulary files share
 * (bpe/load_*.c). Not a public header.
 *
 * Every reader fills an lv_vocab: token bytes by public id, then ranks.
 * Ranks are what the encoder works in (the image is built in rank order):
 * the 256 single bytes first (in id order), then the merged tokens in merge
 * order (Hugging Face, GGUF: the line of the merge that makes each; tiktoken
 * and llm.c: the id, as tiktoken), then the special tokens in id order
 * (matched in text as they stand, never merged). When every rank
 * equals its id (GPT-2's own files) the vocabulary carries no id tables.
 */
#ifndef LOAD_VOCAB_H
#define LOAD_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "bpe_internal.h"

#define LV_NONE UINT32_MAX

typedef struct lv_vocab {
    const char *name;    /* the file, for messages */
    uint32_t n;          /* ids 0..n-1 */
    uint8_t **tok;       /* by id (NULL: no token yet) */
    uint32_t *len;
    uint32_t *rank;      /* by id, LV_NONE until given */
    uint32_t *where;     /* by merge rank - 256: the position of its merge, for messages */
    uint32_t next_rank;
    int32_t eot;         /* the end of text's id (a special token), or -1 */
    uint8_t *special;    /* by id: 1 for a special token (not in the bytes -> id map), 2 for a late one */
    uint32_t n_special;
    uint32_t *slot;      /* bytes -> id hash (open addressing, LV_NONE free) */
    uint32_t mask;
} lv_vocab;

/* Allocates room for n ids (n < BPE_MAX_TOKENS checked by the caller). */
int bpe_lv_init(lv_vocab *lv, const char *name, uint32_t n, bpe_error *err);
void bpe_lv_free(lv_vocab *lv);

/* Makes id a special token (before it gets its bytes); late: matched in
 * the second pass (bpe_build_image). */
void bpe_lv_special(lv_vocab *lv, uint32_t id, int late);

/* Gives id its bytes (copied). BPE_OK; BPE_ERR_FORMAT when the id has bytes
 * already or another id has the same bytes (*other is that id, else
 * LV_NONE); BPE_ERR_NOMEM. Special tokens are not hashed (nor compared). */
int bpe_lv_set(lv_vocab *lv, uint32_t id, const uint8_t *bytes, size_t len, uint32_t *other);

/* The id of the (non-special) token with these bytes, or LV_NONE. */
uint32_t bpe_lv_find(const lv_vocab *lv, const uint8_t *bytes, size_t len);

/* Ranks 0..255 to the single-byte tokens in id order; BPE_ERR_FORMAT naming
 * the first missing byte. Every id must have its bytes by now. */
int bpe_lv_rank_bytes(lv_vocab *lv, bpe_error *err);

/* Merge formats: the merge of tokens with bytes a and b, at position `pos`
 * (a line or index, as `what` says: "line" or "index"), makes the next rank.
 * Refuses unknown tokens, a merge whose result is no token, a part that no
 * earlier merge makes, and a token that two merges make. */
int bpe_lv_merge(lv_vocab *lv, const uint8_t *a, size_t na, const uint8_t *b, size_t nb, const char *what,
             uint32_t pos, bpe_error *err);

/* tiktoken and llm.c: the other tokens ranked by id. */
void bpe_lv_rank_by_id(lv_vocab *lv);

/* Checks that every id has a rank (the special ones get the last), builds
 * the image and, when ranks and ids differ, the id tables. Frees nothing of
 * lv. NULL with err set on failure. */
bpe *bpe_lv_finish(lv_vocab *lv, bpe_error *err);

/* GPT-2's byte <-> unicode alphabet: the byte of code point cp, or -1. */
int bpe_lv_unicode_byte(uint32_t cp);

/* Decodes a byte-level token string s[0..n) into out (at most n bytes);
 * returns its length, or -1 (and the byte offset of the bad character in
 * *bad) when a character is not in the alphabet or not UTF-8. */
long bpe_lv_byte_level(const char *s, size_t n, uint8_t *out, size_t *bad);

/* The longest token a file may write, in its own characters (byte-level
 * characters, base64): a longer one is refused by name. Loaders decode into
 * a buffer of 2 * LV_MAX_TEXT bytes (a merge's two tokens). */
#define LV_MAX_TEXT 4096

/* Quotes bytes for a message into buf (cap >= 8): what gpt2in_shown_len
 * allows as is, the rest as \xNN, cut with ... past about 40 bytes. */
const char *bpe_lv_quote(char *buf, size_t cap, const void *bytes, size_t n);

/* A whole file in memory (mapped when it can be), and its path as
 * messages show it: as it is when all printable ASCII, else quoted with
 * \xNN (control bytes and bidi overrides never reach a terminal). */
typedef struct {
    const char *data;
    size_t len;
    void *map;      /* munmap on free when set */
    char *heap;     /* else free */
    char name[1024];
} lv_file;
int bpe_lv_read(const char *path, lv_file *f, bpe_error *err);
void bpe_lv_unread(lv_file *f);

#endif
