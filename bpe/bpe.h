/* bpe.h - GPT-2 byte-level BPE tokenizer.
 *
 * Token ids equal tiktoken's "gpt2" encoding (encode_ordinary) on every valid
 * UTF-8 input. A loaded vocabulary is immutable: every function taking a
 * `const bpe *` is safe to call from several threads at once.
 *
 * Invalid UTF-8: the encoding is byte-level, so no byte is lost. Each byte
 * that does not start a valid UTF-8 sequence (including surrogates, overlong
 * forms and truncated sequences) becomes its own piece (its single-byte
 * token), and the valid text between such bytes is encoded exactly as that
 * text alone would be. decode(encode(x)) == x for every byte string x.
 *
 * Memory: the caller owns every output buffer. Functions that write a
 * variable amount say how big the buffer must be and report the size needed.
 * Errors are returned (a negative status plus a one-line message in a
 * bpe_error), never printed.
 */
#ifndef BPE_H
#define BPE_H

#include <stddef.h>
#include <stdint.h>

/* Marks the library's exported functions (it is built -fvisibility=hidden). */
#ifndef GPT2IN_API
#ifdef __GNUC__
#define GPT2IN_API __attribute__((visibility("default")))
#else
#define GPT2IN_API
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bpe bpe;

/* One-line, human-readable description of the last failure. */
typedef struct bpe_error {
    char msg[512];
    uint64_t offset;   /* byte offset (or id index) the error names, when it names one */
} bpe_error;

enum {
    BPE_OK = 0,
    BPE_ERR_IO = -1,        /* a file could not be read */
    BPE_ERR_FORMAT = -2,    /* a vocabulary file is malformed */
    BPE_ERR_UTF8 = -3,      /* invalid UTF-8 under BPE_STRICT */
    BPE_ERR_SPECIAL = -4,   /* a special token in text under BPE_SPECIAL_ERROR */
    BPE_ERR_ID = -5,        /* a token id outside the vocabulary */
    BPE_ERR_NOMEM = -6,
    BPE_ERR_ARG = -7,       /* a bad argument (NULL, bad flag) */
    BPE_ERR_CALLBACK = -8,  /* the caller's callback asked to stop */
};

/* Encoding flags (combine with |). Exactly one BPE_SPECIAL_* applies, to
 * every special token of the vocabulary (GPT-2 has one, <|endoftext|>);
 * BPE_SPECIAL_ERROR is the default (value 0), as in tiktoken. */
enum {
    BPE_SPECIAL_ERROR = 0,   /* a special token in the text is an error naming it and its byte */
    BPE_SPECIAL_ALLOW = 1,   /* emitted as its id: the leftmost one in the text, the longest of
                              * those starting there (as Hugging Face's added tokens, and
                              * its two passes, bpe_load_hf_json); text before it ends as
                              * at end of input */
    BPE_SPECIAL_TEXT = 2,    /* encoded as ordinary text */
    BPE_SPECIAL_MASK = 3,
    BPE_STRICT = 4,          /* invalid UTF-8 is an error instead of byte pieces */
    BPE_OFFSETS = 8,         /* streams only: pass each token's byte offset to the sink */
};

/* ---- loading ------------------------------------------------------------ */

/* The GPT-2 vocabulary compiled into the library (no file is read, nothing
 * is parsed). Never fails; the returned object is static, bpe_free on it is
 * a no-op. */
GPT2IN_API const bpe *bpe_gpt2(void);

/* Loads a vocabulary from an encoder.json and a vocab.bpe in GPT-2's format
 * (ids 0..V-1, V below 2^21 - 1; every single byte a token). Ranks are the
 * ids, as in tiktoken; each merge line must join two tokens into a token.
 * On failure returns NULL and describes the problem (file, line and column)
 * in err. Builds the same tables the compiled-in vocabulary carries (most
 * of the time goes to running each token's own merges); the built-in
 * bpe_gpt2() costs nothing. */
GPT2IN_API bpe *bpe_load(const char *encoder_json_path, const char *vocab_bpe_path, bpe_error *err);

/* Same, from bytes in memory; the names are used in error messages only. */
GPT2IN_API bpe *bpe_load_mem(const char *encoder_json, size_t encoder_len, const char *encoder_name,
                  const char *vocab_bpe, size_t vocab_len, const char *vocab_name,
                  bpe_error *err);

/* Vocabularies in the files other stacks keep (bpe/load_*.c). In the merge
 * formats (Hugging Face, GGUF) a merge's rank is its position and a token's
 * id comes from the vocabulary: the encoder ranks each token by the merge
 * that makes it (single bytes first), so ids may be any permutation; a
 * token made by two merges is refused. tiktoken and llm.c files rank tokens
 * by id, as tiktoken. Every format needs all 256 single bytes. Special
 * tokens (encoded under the BPE_SPECIAL_* flags) are, in tokenizer.json,
 * every added token (refused when lstrip, rstrip or single_word is set;
 * as Hugging Face, those with "normalized": true are matched only in the
 * text between the others when some have false); in GGUF, the control and
 * user-defined tokens and the end of text; elsewhere <|endoftext|>. Errors
 * name the file and the line, index or byte offset.
 *   bpe_load_hf_json   Hugging Face tokenizer.json: model BPE, GPT-2's
 *                      byte-level pre-tokenizer, no normaliser
 *   bpe_load_hf_pair   vocab.json + merges.txt (rank = merge line)
 *   bpe_load_tiktoken  a .tiktoken rank file (base64 token, rank); the
 *                      special <|endoftext|> gets the id after the last rank
 *   bpe_load_gguf      the tokenizer.ggml.* keys of a GGUF file (model gpt2)
 *   bpe_load_llmc      llm.c's gpt2_tokenizer.bin (versions 1 and 2)
 *   bpe_load_file      any of these, told apart by their first bytes; a
 *                      vocab.json needs merges_path (else NULL) */
GPT2IN_API bpe *bpe_load_hf_json(const char *path, bpe_error *err);
GPT2IN_API bpe *bpe_load_hf_json_mem(const char *data, size_t len, const char *name, bpe_error *err);
GPT2IN_API bpe *bpe_load_hf_pair(const char *vocab_json_path, const char *merges_txt_path, bpe_error *err);
GPT2IN_API bpe *bpe_load_hf_pair_mem(const char *vocab_json, size_t vocab_len, const char *vocab_name,
                                     const char *merges_txt, size_t merges_len, const char *merges_name,
                                     bpe_error *err);
GPT2IN_API bpe *bpe_load_tiktoken(const char *path, bpe_error *err);
GPT2IN_API bpe *bpe_load_tiktoken_mem(const char *data, size_t len, const char *name, bpe_error *err);
GPT2IN_API bpe *bpe_load_gguf(const char *path, bpe_error *err);
GPT2IN_API bpe *bpe_load_gguf_mem(const char *data, size_t len, const char *name, bpe_error *err);
GPT2IN_API bpe *bpe_load_llmc(const char *path, bpe_error *err);
GPT2IN_API bpe *bpe_load_llmc_mem(const char *data, size_t len, const char *name, bpe_error *err);
GPT2IN_API bpe *bpe_load_file(const char *path, const char *merges_path, bpe_error *err);
GPT2IN_API bpe *bpe_load_file_mem(const char *data, size_t len, const char *name, const char *merges,
                                  size_t merges_len, const char *merges_name, bpe_error *err);

GPT2IN_API void bpe_free(const bpe *vocab);

/* Number of token ids (50257 for GPT-2), the id of the end of text (-1 when
 * the vocabulary has none) and the longest token in bytes. The end of text
 * is <|endoftext|>, or what the file names so (GGUF's eos_token_id, llm.c's
 * header), or the vocabulary's one special token; it is a special token.
 * A NULL vocab has 0 tokens, no end of text and 0 bytes. */
GPT2IN_API size_t bpe_vocab_size(const bpe *vocab);
GPT2IN_API int32_t bpe_eot_id(const bpe *vocab);
GPT2IN_API size_t bpe_max_token_bytes(const bpe *vocab);

/* The special tokens: their number (1 for GPT-2: <|endoftext|>), and the
 * id of the i-th, in increasing id order (-1 when i >= the number). Their
 * bytes: bpe_token_bytes. */
GPT2IN_API size_t bpe_special_count(const bpe *vocab);
GPT2IN_API int32_t bpe_special_id(const bpe *vocab, size_t i);

/* ---- encoding ----------------------------------------------------------- */

/* Encodes text[0..len) with flags. Writes at most `cap` ids to `ids` (and, if
 * `offsets` is not NULL, each token's start byte offset into offsets[]), and
 * stores the number of tokens of the whole text in *n_tokens, which may be
 * larger than cap: cap >= len is always enough, since no token is shorter
 * than one byte. ids may be NULL when cap is 0 (counting only).
 * Returns BPE_OK or a negative error; for BPE_ERR_UTF8 and BPE_ERR_SPECIAL
 * err->offset is the byte offset of the offending input and nothing useful
 * was written. */
GPT2IN_API int bpe_encode(const bpe *vocab, const void *text, size_t len, int flags,
               uint32_t *ids, size_t *offsets, size_t cap, size_t *n_tokens,
               bpe_error *err);

/* Encodes with up to `threads` threads (0 = all cores); output identical to
 * bpe_encode. The text is cut at safe cuts into parts of falling size, each
 * taken by the next free thread (so cores of unequal speed finish
 * together); a text without a cut (a single piece of megabytes) has its long
 * pieces shared out instead. Small inputs use one thread; so does counting
 * (cap < len). */
GPT2IN_API int bpe_encode_parallel(const bpe *vocab, const void *text, size_t len, int flags,
                        int threads, uint32_t *ids, size_t *offsets, size_t cap,
                        size_t *n_tokens, bpe_error *err);

/* An encoder: one caller's reusable state for encoding text after text
 * with one vocabulary. bpe_encode remembers the merges of the words that
 * are not whole tokens in a cache of about 1.5 MB that it makes, zeroed,
 * for each text of 64 KB or more, and throws away at the end. An encoder
 * keeps that cache from call to call, and uses it for texts of every
 * length, so a program that encodes many texts (a worker's blocks or
 * documents, one string after another) does not start each one cold. The
 * cache changes no id, only the time: bpe_encoder_encode gives exactly
 * what bpe_encode gives, with the same arguments, errors and flags (which
 * may differ from call to call).
 *
 * An encoder is not thread-safe: use it from one thread at a time (one
 * encoder per thread). The vocabulary must outlive it. */
typedef struct bpe_encoder bpe_encoder;

/* A new encoder for vocab, or NULL (BPE_ERR_ARG, BPE_ERR_NOMEM in err). */
GPT2IN_API bpe_encoder *bpe_encoder_new(const bpe *vocab, bpe_error *err);
/* bpe_encode's contract, with the encoder's vocabulary and cache. */
GPT2IN_API int bpe_encoder_encode(bpe_encoder *e, const void *text, size_t len, int flags, uint32_t *ids,
                                  size_t *offsets, size_t cap, size_t *n_tokens, bpe_error *err);
/* Frees the encoder (NULL: nothing). */
GPT2IN_API void bpe_encoder_free(bpe_encoder *e);

/* The largest p < len at which text may be cut into text[0..p) and
 * text[p..len) without changing a single token: encoding both halves with
 * `flags` and concatenating gives the encoding of the whole, whatever
 * follows text[len). Unless special tokens are encoded as text, a cut never
 * falls inside one, nor inside a prefix of one that ends the text. Returns 0
 * when there is no such cut (or on a bad argument). The stream and the
 * threads cut text only here. */
GPT2IN_API size_t bpe_safe_cut(const bpe *vocab, const void *text, size_t len, int flags);

/* ---- streaming ---------------------------------------------------------- */

/* Receives tokens as soon as they are final. offsets (NULL unless the
 * stream was made with BPE_OFFSETS) are absolute byte offsets in the stream.
 * Return 0 to go on, non-zero to stop (the stream call then returns
 * BPE_ERR_CALLBACK). */
typedef int (*bpe_sink)(void *ctx, const uint32_t *ids, const uint64_t *offsets, size_t n);

typedef struct bpe_stream bpe_stream;

/* A streaming encoder: feed any chunks of bytes, get exactly the tokens of
 * the whole text. It buffers only the text after the last safe cut
 * (bpe_safe_cut), so memory is bounded by the chunk size plus the longest
 * stretch of input without a safe cut. threads as in bpe_encode_parallel. */
GPT2IN_API bpe_stream *bpe_stream_new(const bpe *vocab, int flags, int threads, bpe_error *err);
GPT2IN_API int bpe_stream_write(bpe_stream *s, const void *data, size_t len, bpe_sink sink, void *ctx,
                     bpe_error *err);
/* Writing without a copy: bpe_stream_room returns room at the end of the
 * stream's own buffer, *room bytes (at least one; about want, when want is
 * within the stream's block: 1 MB, or 128 KB a thread with threads), or
 * NULL when out of memory. The caller fills some of it (read(2) straight
 * into it) and hands the first len bytes over with bpe_stream_commit,
 * which does with them what bpe_stream_write does. The room is valid
 * until the next call on the stream. */
GPT2IN_API void *bpe_stream_room(bpe_stream *s, size_t want, size_t *room, bpe_error *err);
GPT2IN_API int bpe_stream_commit(bpe_stream *s, size_t len, bpe_sink sink, void *ctx, bpe_error *err);
/* With more than one thread, the threads encode a block while the caller
 * writes the next, and its tokens reach the sink from a later call (the
 * one that cuts the block after the next: two blocks may be queued; or
 * bpe_stream_finish; an error in it is reported there too).
 * bpe_stream_wait hands over the tokens of every block cut so far,
 * waiting for them: before a read that may block, say, so that tokens and
 * errors are not held back. With one thread it has nothing to do. */
GPT2IN_API int bpe_stream_wait(bpe_stream *s, bpe_sink sink, void *ctx, bpe_error *err);
/* Flushes the rest at end of input. The stream may not be written again. */
GPT2IN_API int bpe_stream_finish(bpe_stream *s, bpe_sink sink, void *ctx, bpe_error *err);
/* Errors name absolute stream offsets in err->offset. */
GPT2IN_API void bpe_stream_free(bpe_stream *s);

/* ---- decoding ----------------------------------------------------------- */

/* The bytes of one token (not NUL-terminated), or NULL for an invalid id. */
GPT2IN_API const char *bpe_token_bytes(const bpe *vocab, uint32_t id, size_t *len);

/* Writes the bytes of ids[0..n) to out (at most cap bytes) and the total
 * length in *n_bytes; cap >= n * bpe_max_token_bytes() is always enough.
 * An id outside the vocabulary is BPE_ERR_ID, with its index in err->offset.
 * Tokens may end in the middle of a UTF-8 character: the bytes are exact. */
GPT2IN_API int bpe_decode(const bpe *vocab, const uint32_t *ids, size_t n, char *out, size_t cap,
               size_t *n_bytes, bpe_error *err);

#ifdef __cplusplus
}
#endif
#endif
