/* shard.h - what the two halves of `gpt2in shard` share: cmd_shard.c (the
 * command line, the one-machine run, assembling shards) and cmd_shard_unit.c
 * (reading corpora and tokenizing them into a unit). */
#ifndef SHARD_H
#define SHARD_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "cli.h"
#include "shard_json.h"

#define SHARD_TOOL "gpt2in 0.1.0"
#define SHARD_EOT 50256

enum { SHARD_FMT_AUTO, SHARD_FMT_TEXT, SHARD_FMT_JSONL };

/* The one-machine run's shards, cut from the tokens as they reach the
 * units (cmd_shard_unit.c). */
typedef struct shard_tee shard_tee;
shard_tee *shard_tee_new(const char *dir, const char *name, uint64_t S, uint64_t V);
/* After the last token: the tokens received and the shards they make (the
 * last one complete; called again, the same figures). */
int shard_tee_finish(shard_tee *t, uint64_t *tokens, uint64_t *nshards);
/* Shard s under its final name (fsynced, renamed), its sha256 and tokens. */
int shard_tee_commit(shard_tee *t, uint64_t s, char sha[65], uint64_t *tokens);
/* Shard s's sha256 and tokens, before its commit (its fsync may still run). */
int shard_tee_sha(shard_tee *t, uint64_t s, char sha[65], uint64_t *tokens);
/* Removes the shards not committed. */
void shard_tee_free(shard_tee *t);
/* Tokens received so far. */
uint64_t shard_tee_pos(const shard_tee *t);

typedef struct {
    int format;            /* SHARD_FMT_* */
    const char *field;     /* JSON Lines field */
    int split_lines;
    int skip_errors;       /* --on-error skip */
    int threads;           /* >= 1 */
    int quiet;
    int progress;          /* stderr is a terminal and not --quiet */
    int in_run;            /* a unit of the one-machine run: no "up to date" line,
                            * not fsynced */
    shard_tee *tee;        /* the run's shards, fed by fresh units, or NULL */
    int to_end;            /* in_run: the inputs given are all the run's remaining
                            * ones, and its units are not kept: a unit that takes
                            * them all, the run's last, is not written at all (its
                            * tokens are in the shards; a kill redoes it) */
} shard_opts;

/* A file written beside its final name (".NAME.tmp.XXXXXX", as
 * embed_writer's) and renamed when complete: the one-machine run's units,
 * its shards and the manifests. path: the final name (for messages).
 * Errors are printed, and the temporary is removed. */
typedef struct {
    int fd;
    char *tmp;
    int synced;            /* fsynced by shard_rfile_sync */
} shard_rfile;
int shard_rfile_open(shard_rfile *f, const char *path);
int shard_rfile_write(shard_rfile *f, const char *path, const void *p, size_t n);
/* fsync now (the commit then does not), so that it runs beside other work */
int shard_rfile_sync(shard_rfile *f, const char *path);
/* Renames the file to path; durable: fsynced first, and the directory
 * after (2: not the directory, which the caller fsyncs later); otherwise
 * the page cache holds it (a unit of the run: a unit that a crash left
 * damaged is checked and redone by the rerun). */
int shard_rfile_commit(shard_rfile *f, const char *path, int durable);
void shard_rfile_abort(shard_rfile *f);

/* sha256, hex output (cmd_shard_sha256.c). */
typedef struct {
    int lib;               /* libcrypto's code: ctx is its SHA256_CTX */
    union {
        struct {
            uint32_t h[8];
            uint64_t n;    /* bytes hashed */
            unsigned char buf[64];
        };
        _Alignas(16) unsigned char ctx[128];
    };
} shard_sha;
int shard_sha_init(shard_sha *s);
void shard_sha_update(shard_sha *s, const void *p, size_t n);
void shard_sha_hex(shard_sha *s, char hex[65]);   /* finishes */
void shard_sha_free(shard_sha *s);
/* The sha256 of the file at path and its size; -1 with errno on a read
 * error. */
int shard_file_sha(const char *path, char hex[65], uint64_t *size);

/* Tokens [from, to) of the run's stream, read back from the shards being
 * written (the page cache), to fd (path: for messages), and into sha
 * unless NULL. */
int shard_tee_copy(shard_tee *t, uint64_t from, uint64_t to, int fd, const char *path, shard_sha *sha);

/* Starts writing back to disk what w has received since *synced, once
 * that is SHARD_WRITEBACK bytes or more, so that the fsync of its commit
 * has little left to wait for. */
#define SHARD_WRITEBACK ((uint64_t)2 << 20)
void shard_writeback(embed_writer *w, uint64_t *synced, uint64_t written);

/* json_load_file(path, 0, je), faster on big files. */
json_t *shard_json_load(const char *path, json_error_t *je);

/* The "vocabulary" and "options" objects of sidecars and manifests. */
json_t *shard_vocab_json(void);
json_t *shard_options_json(const shard_opts *o);

/* One input as a sidecar and the manifest record it. path is borrowed
 * (the command line's, or a parsed sidecar's). */
typedef struct {
    const char *path;
    uint64_t size, documents, skipped, tokens;
    int64_t mtime_ns;
    char sha256[65], tokens_sha256[65];
} shard_input;

/* A unit's figures and inputs, as its sidecar holds them. */
typedef struct {
    shard_input *in;       /* malloc'ed */
    size_t nin;
    uint64_t documents, skipped, tokens;
    char tokens_sha256[65];
} shard_unit_info;

/* Text being built (oom: an allocation failed, the text is incomplete). */
typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} shard_buf;

/* The inputs as a JSON array, the bytes json_dumps writes for the same
 * objects: compact with mtime_ns (a sidecar), or without mtime_ns at
 * JSON_INDENT(2) as the value of a top-level key (the manifest). Per-input
 * jansson objects cost more than the tokenizing of a small file. */
void shard_inputs_text(shard_buf *b, const shard_input *in, size_t n, int manifest);
/* json_dumps(j, flags) with j's empty "inputs" array replaced by text
 * (from shard_inputs_text with the same layout); NULL when out of memory. */
char *shard_dumps(json_t *j, size_t flags, const shard_buf *text);

/* Tokenizes inputs[0..n) into UNIT and UNIT.json (shard-contract.md 2.);
 * does nothing when the unit is up to date. *fresh: 1 if it wrote the
 * unit; then, if info is not NULL, *info gets what its sidecar says (the
 * caller frees info->in). unit_bytes > 0: the unit takes inputs only until
 * they hold unit_bytes on disk (the one-machine run's grouping, decided by
 * the fstat each input gets anyway); *used: the inputs it took. Prints
 * errors; returns CLI_*. */
int shard_unit(const char *unit, const char *const *inputs, int n, uint64_t unit_bytes, const shard_opts *o,
               int *fresh, shard_unit_info *info, int *used);

/* The progress line: the total input bytes of the run (0 = unknown), and
 * clearing the line at the end. */
void shard_progress_total(uint64_t total);
void shard_progress_end(void);

/* Seconds on a monotonic clock. */
double shard_now(void);

#endif
