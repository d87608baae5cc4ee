/* cli.h - what the gpt2in subcommands share: error reporting, option
 * parsing helpers and token-id file formats. The library does the work;
 * this layer only reads arguments and files and writes results. */
#ifndef CLI_H
#define CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bpe.h"
#include "embed.h"

/* Exit codes: 0 ok, 1 "no" (verify: outside tolerance), 2 usage or input error. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_ERR = 2 };

/* Each subcommand: argv[0] is the subcommand name. Returns the exit code. */
typedef int (*cli_command_fn)(int argc, char **argv);

int cmd_encode(int argc, char **argv);
int cmd_decode(int argc, char **argv);
int cmd_count(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_step(int argc, char **argv);
int cmd_similar(int argc, char **argv);
int cmd_neighbors(int argc, char **argv);
int cmd_analogy(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_train_skipgram(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_shard(int argc, char **argv);

/* What a program's main returns after a command: output still buffered is
 * written here, and a failed write of it (a full disk, a closed pipe) is an
 * error, reported once, even after --help. A command that wrote to a
 * regular file opened without truncation (1<> FILE) cuts the file's old
 * tail after what it wrote. */
int cli_finish(int rc);

/* First thing in main: each of stdin, stdout and stderr that the caller
 * closed is opened on /dev/null the other way round (stdin for writing,
 * stdout and stderr for reading), so that no file the command opens takes
 * its number (a weights file on fd 1 would be written over as "stdout"), and
 * reading or writing it fails. cli_stdout_closed says whether stdout was.
 * Also notes where stdout stands, for cli_finish. */
void cli_start(void);
int cli_stdout_closed(void);

/* "gpt2in: " + message + newline on stderr; returns CLI_ERR. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "gpt2in: <where>: write error: <strerror(errno)>" (where NULL = <stdout>;
 * escaped as cli_name does);
 * the one wording of every failed write. Returns CLI_ERR. */
int cli_write_error(const char *where);

/* The character at s[0..n): its length in *len (1 for a byte that does not
 * begin valid UTF-8), its code point in *cp (-1 for such a byte), and
 * whether a message may show it as it is. Not shown: controls, format
 * characters (bidi overrides), line and paragraph separators, private and
 * unassigned code points, invalid bytes. */
int cli_char_shown(const void *s, size_t n, size_t *len, int32_t *cp);

/* bytes as a double-quoted string safe to print on a terminal: printable
 * ASCII and printable UTF-8 as they are; quotes, backslashes, \n \t \r
 * escaped; any other byte (control, escape sequences, invalid UTF-8) as
 * \xNN. Cut with "..." to fit cap (>= 8). Every input byte that goes into
 * a message goes through this. Returns buf. */
const char *cli_quote_buf(char *buf, size_t cap, const void *bytes, size_t n);

/* s quoted and escaped as cli_quote_buf does, into one of a few static
 * buffers used in turn (six; not for threads): for echoing argv strings
 * (option names, values) in a message, several to a message. */
const char *cli_q(const char *s);
/* A file name so, as cli_name shows it (as it is when printable). */
const char *cli_n(const char *path);

/* A file name as messages show it: itself when every byte is printable,
 * else quoted and escaped into buf (cli_quote_buf). */
const char *cli_name(const char *path, char *buf, size_t cap);

/* path is mapped (embed_open): a SIGBUS (the file shrank under the mapping)
 * is then reported as one line naming it, exit status 2. */
void cli_mapped(const char *path);
/* The same for the file (or files) shown so, as messages show names: it
 * alone is named (shard maps its inputs one after another). */
void cli_mapped_as(const char *names);

/* embed_open(path) with path registered by cli_mapped first (the header is
 * read through the mapping already). Prints the error and returns NULL. */
embed_file *cli_open_mapped(const char *path);

/* All of stdin, malloc'd (an array given as "-": it is needed whole), or as
 * much as enough (cli_stdin_enough, or a command's own) asks for. Prints the
 * error and returns NULL on failure; an empty stdin is a 1-byte buffer with
 * *len 0. */
unsigned char *cli_read_stdin(size_t *len, size_t (*enough)(const unsigned char *data, size_t len));
/* How many bytes of a stream whose first len bytes are data decide what it
 * is (SIZE_MAX: all of it): an .npy array's header and data and one byte
 * more (trailing bytes are an error), token ids (cli_ids_kind: their
 * readers stream the rest) and a kind no reader takes their first bytes;
 * an endless stream of any of these ends. */
size_t cli_stdin_enough(const unsigned char *data, size_t len);
/* Token ids as text, JSON or an llm.c shard: the kinds read as a stream. */
int cli_ids_kind(embed_kind k);

/* Reads a .npy array from path, or from stdin when path is "-"; prints the
 * error (naming the kind of a file that is not .npy) and returns CLI_ERR. */
int cli_read_npy(const char *path, embed_npy *out);

/* What path holds, from its first bytes (embed_detect); EMBED_KIND_COUNT
 * when it cannot be read. */
embed_kind cli_file_kind(const char *path);
/* path ("-" or NULL: not checked) must hold `want`: else prints "PATH is
 * <what it is>, not <want>" and returns CLI_ERR. */
int cli_expect_kind(const char *path, embed_kind want);

/* Parses a whole non-negative decimal number; returns 0 on success. */
int cli_parse_u64(const char *s, uint64_t *out);
/* A decimal float ("1e-3", "-0.5"); no hex, inf, nan or spaces. */
int cli_parse_double(const char *s, double *out);

/* An option's value: "--opt=VALUE" or "--opt VALUE". Returns NULL if argv[*i]
 * is not `name`; on a missing value prints an error and sets *bad. */
const char *cli_opt(int argc, char **argv, int *i, const char *name, int *bad);

/* The start of every command's argument loop: what argv word a is. "--"
 * (CLI_ARG_SKIP) sets *operands, and from then on every word is an operand,
 * even "-x" or "--help"; so are "-" and words not starting with '-'.
 * "-h"/"--help" prints help on stdout (CLI_ARG_HELP: return CLI_OK; main
 * reports a failed write). Anything else is CLI_ARG_OPTION, for the command
 * to parse, and cli_unknown_option if it does not know it. With no_operands
 * (the name of a command that takes none) an operand is an error: printed,
 * returns -1. */
enum { CLI_ARG_OPTION, CLI_ARG_OPERAND, CLI_ARG_SKIP, CLI_ARG_HELP };
int cli_arg(const char *a, int *operands, const char *help, const char *no_operands);

/* "gpt2in: CMD: unknown option "A" (see 'gpt2in CMD --help')", A escaped;
 * "unexpected argument" when kind (cli_arg's) is CLI_ARG_OPERAND, for a
 * command that takes none. Returns CLI_ERR. */
int cli_unknown_option(const char *cmd, const char *a, int kind);

/* Opens a named input ("-" or NULL = stdin) / output ("-" or NULL = stdout). */
FILE *cli_open_in(const char *path);

/* The tokenizer a command uses: --encoder/--merges files, --vocab FILE (any
 * format bpe_load_file tells apart; a vocab.json with --merges), or the
 * built-in. */
const bpe *cli_vocab(const char *encoder_path, const char *merges_path, const char *vocab_path);

/* ---- token-id formats --------------------------------------------------- */

typedef enum {
    IDS_TEXT,   /* decimal ids separated by whitespace; a blank line between rows */
    IDS_U16,    /* raw little-endian uint16 */
    IDS_U32,    /* raw little-endian uint32 */
    IDS_NPY,    /* .npy: any integer dtype, [T] or [B, T]; written 1-D <i4 */
    IDS_JSON,   /* [1, 2, 3] or [[1, 2], [3, 4]] */
    IDS_LLMC,   /* llm.c token shard: 256 int32 header (20240520, 1, count), uint16 tokens */
    IDS_AUTO,   /* read only: told from the first bytes (embed_detect) */
} ids_format;

/* Name -> format ("text", "u16", "u32", "npy", "json", "llmc", "auto"); -1 if unknown. */
int ids_format_from_name(const char *name);

/* --input-format NAME, or IDS_AUTO (the content tells, not the file name).
 * Prints the error and returns -1 for an unknown name. */
int cli_ids_format(const char *name, const char *path);

/* The shape ids came in: ndim 1, [T] (B is 1), or 2, a batch [B, T] (a 2-D
 * .npy, a JSON list of lists, text rows separated by blank lines). Rows of
 * unequal length are an error. */
typedef struct {
    int ndim;
    uint64_t B, T;
} ids_shape;

/* Reads all ids of `in` (named `name` in messages) into a malloc'd array,
 * row after row. An id >= vocab_size (when vocab_size > 0), a negative or
 * non-numeric id is an error naming its position; prints it and returns
 * CLI_ERR. ids_read_all gives the count only (B * T). */
int ids_read_batch(FILE *in, const char *name, ids_format fmt, size_t vocab_size, uint32_t **ids,
                   ids_shape *shape);
int ids_read_all(FILE *in, const char *name, ids_format fmt, size_t vocab_size,
                 uint32_t **ids, size_t *n);
/* ids_read_batch of path (NULL or "-": stdin) with --input-format fmt_name. */
int cli_read_batch(const char *path, const char *fmt_name, size_t vocab, uint32_t **ids,
                   ids_shape *shape);

/* Streaming reader: fills up to cap ids per call; *n = 0 at end. */
typedef struct ids_reader ids_reader;
ids_reader *ids_reader_open(FILE *in, const char *name, ids_format fmt, size_t vocab_size);
/* Returns 0, or CLI_ERR after printing the error. */
int ids_reader_next(ids_reader *r, uint32_t *buf, size_t cap, size_t *n);
/* The same, but the ids of one call are all of one row: the first is
 * row *row, column *col (so its position is pos0 + *col). */
int ids_reader_next_row(ids_reader *r, uint32_t *buf, size_t cap, size_t *n, uint64_t *row,
                        uint64_t *col);
/* Rows of different lengths are then no error (decode: rows are only
 * concatenated); the shape's T is then the last row's. */
void ids_reader_allow_ragged(ids_reader *r);
/* Once *n = 0: the shape of what was read. */
void ids_reader_shape(const ids_reader *r, ids_shape *shape);
void ids_reader_close(ids_reader *r);

/* Streaming writer. npy and llmc need the count in their header: when `out`
 * is seekable it is patched at the end, otherwise ids are buffered. */
typedef struct ids_writer ids_writer;
ids_writer *ids_writer_open(FILE *out, ids_format fmt);
int ids_writer_put(ids_writer *w, const uint32_t *ids, size_t n);
/* Writes what is left and flushes; returns 0 or CLI_ERR (after printing). */
int ids_writer_close(ids_writer *w);
/* After an error: writes no closing header, count or bracket, so that an
 * npy, llm.c or JSON output stays unreadable as a whole one; frees w. */
void ids_writer_abort(ids_writer *w);

/* ---- output files (cli_output.c) ------------------------------------------ */

/* Checks output `out` (the value of option `opt` of command `cmd`) before any
 * input is read: not empty, not a directory, socket or block device, its
 * directory writable, and not the same file (device and inode, through any
 * link; "-" is stdin) as any of the n_inputs paths in inputs (NULL entries
 * skipped). "-" means stdout if allow_stdout, else is refused. Prints one
 * line and returns CLI_ERR, or CLI_OK. Then write with embed_writer_open /
 * embed_save, which follow the rule CLI_OUTPUT_HELP states. */
int cli_output_check(const char *cmd, const char *opt, const char *out,
                     const char *const *inputs, size_t n_inputs, int allow_stdout);

/* embed_writer_open / _commit / _abort and embed_save, but the temporary
 * file is removed when SIGINT, SIGTERM or SIGHUP (or a SIGBUS, cli_mapped)
 * stops the command before the rename: the handler unlinks it and the
 * signal then ends the process as it would have. A signal the caller
 * ignores stays ignored. */
embed_writer *cli_writer_open(const char *path, embed_error *err);
int cli_writer_commit(embed_writer *w, embed_error *err);
void cli_writer_abort(embed_writer *w);
int cli_save(const char *path, const embed_file *base, const embed_out_tensor *repl,
             size_t n_repl, const char *const *meta, size_t n_meta, embed_error *err);

/* The rule every output file follows, for the commands' --help. */
#define CLI_OUTPUT_HELP \
    "Output files are written to a temporary file .NAME.tmp.XXXXXX next to them and\n" \
    "renamed over the old file only once complete: a failed or killed run leaves an\n" \
    "existing file as it was. Ctrl-C, SIGTERM and SIGHUP remove the temporary file\n" \
    "(SIGKILL or a crash may leave it behind). A symbolic link is followed: its\n" \
    "target is replaced and the link stays. The new file keeps the old one's mode\n" \
    "(and owner, where allowed), but as a new file it no longer shares hard links\n" \
    "with the old one's other names. A character device or FIFO (/dev/null, a pipe)\n" \
    "is written straight through, not atomically. A directory, socket or block\n" \
    "device is refused, and so is an output that is one of the command's input\n" \
    "files.\n"

#endif
