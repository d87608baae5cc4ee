/* cmd_encode.c - `gpt2in encode` and `gpt2in count`: text in (a file or
 * stdin, any size, streamed), token ids out. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define COMMON_OPTIONS                                                                      \
    "  --special MODE    special tokens in the text (<|endoftext|>, a --vocab file's\n"    \
    "                    added or control tokens): error (default), allow (emit their\n"    \
    "                    ids: 50256), text (encode them as ordinary text)\n"                \
    "  --strict          invalid UTF-8 is an error (default: each invalid byte is its\n"     \
    "                    own piece, so decode gives back the exact bytes)\n"                 \
    "  --threads N       threads for large inputs (default: all cores); output is identical\n" \
    "  --encoder FILE --merges FILE\n"                                                       \
    "                    another vocabulary in GPT-2's format (default: built in)\n"         \
    "  --vocab FILE      a vocabulary in another format: tokenizer.json, vocab.json (with\n" \
    "                    --merges), .tiktoken, GGUF, llm.c's gpt2_tokenizer.bin\n"          \
    "  -h, --help        this help\n"                                                        \
    "  --                what follows is the file, even if it starts with '-'\n"

static const char encode_help[] =
    "usage: gpt2in encode [OPTIONS] [--] [FILE]\n"
    "\n"
    "Encodes text (FILE, or stdin when FILE is absent or -) into GPT-2 token ids,\n"
    "exactly as tiktoken's gpt2 encoding. Input of any size is streamed with\n"
    "bounded memory. 'gpt2in count' prints only the number of tokens.\n"
    "\n"
    "  --format F        text (decimal ids, default), u16, u32 (raw little-endian),\n"
    "                    npy (int32), json, llmc (llm.c token shard); npy and llmc\n"
    "                    rewrite their header at the end (not to a file opened with\n"
    "                    >>); to a pipe they hold the ids in memory, 4 bytes a token\n"
    "  --offsets         one token per line: ID START END (byte span; text or json)\n"
    COMMON_OPTIONS;

static const char count_help[] =
    "usage: gpt2in count [OPTIONS] [--] [FILE]\n"
    "\n"
    "Prints the number of GPT-2 tokens of a text (FILE, or stdin when FILE is\n"
    "absent or -), exactly as tiktoken's gpt2 encoding counts them. Input of any\n"
    "size is streamed with bounded memory.\n"
    "\n"
    COMMON_OPTIONS;
typedef struct {
    ids_writer *w;
    const bpe *v;
    int offsets;        /* 0, or IDS_TEXT / IDS_JSON + 1 */
    uint64_t count;
    FILE *out;
    int failed;
} encode_ctx;

static int sink(void *arg, const uint32_t *ids, const uint64_t *offs, size_t n) {
    encode_ctx *c = arg;
    if (c->offsets) {
        if (ferror(c->out)) {  /* reported once, by the caller */
            c->failed = 1;
            return 1;
        }
        for (size_t i = 0; i < n; i++) {
            size_t len;
            bpe_token_bytes(c->v, ids[i], &len);
            if (c->offsets == IDS_JSON + 1)
                fprintf(c->out, "%s[%u, %llu, %llu]", c->count + i ? ",\n " : "[", ids[i],
                        (unsigned long long)offs[i], (unsigned long long)(offs[i] + len));
            else
                fprintf(c->out, "%u\t%llu\t%llu\n", ids[i], (unsigned long long)offs[i],
                        (unsigned long long)(offs[i] + len));
        }
    } else if (c->w && ids_writer_put(c->w, ids, n)) {
        c->failed = 1;
        return 1;
    }
    c->count += n;
    return 0;
}

/* The stream's error: already reported when the output failed; the library
 * says what is wrong, the advice on flags is the command line's. */
static int encode_failed(encode_ctx *c, const char *name, int e, const bpe_error *err) {
    if (c->failed && c->w) return CLI_ERR;
    if (c->failed) return cli_write_error(NULL);
    if (e == BPE_ERR_SPECIAL)
        return cli_error("%s: %s (--special allow emits it as its token, --special text encodes it "
                         "as text)", name, err->msg);
    return cli_error("%s: %s", name, err->msg);
}

/* read(2) until want bytes or the end of the input (as fread would, without
 * its buffer), or with once, what one read gives; *err is errno when a
 * read failed. */
static size_t read_full(int fd, char *p, size_t want, int once, int *err) {
    size_t n = 0;
    *err = 0;
    while (n < want) {
        ssize_t got = read(fd, p + n, want - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) *err = errno;
        if (got <= 0) break;
        n += (size_t)got;
        if (once) break;
    }
    return n;
}

typedef struct {
    bpe_stream *st;
    encode_ctx *c;
    const char *name;
    int progress;
    uint64_t read_total, next_report;
} reading;

/* got more bytes were read into the stream's room: hands them to it. */
static int take(reading *r, size_t got) {
    bpe_error err;
    int e = bpe_stream_commit(r->st, got, sink, r->c, &err);
    r->read_total += got;
    if (e) return encode_failed(r->c, r->name, e, &err);
    if (r->progress && r->read_total >= r->next_report) {
        fprintf(stderr, "\rgpt2in: %llu MB read, %llu tokens", (unsigned long long)(r->read_total >> 20),
                (unsigned long long)r->c->count);
        r->next_report += 64u << 20;
    }
    return CLI_OK;
}

static int read_error(reading *r, int e) {
    return cli_error("%s: read error at byte %llu: %s", r->name, (unsigned long long)r->read_total, strerror(e));
}

static int run(int argc, char **argv, int counting) {
    const char *format = "text", *special = "error", *enc = NULL, *merges = NULL, *path = NULL, *vocab = NULL;
    int strict = 0, offsets = 0, bad = 0, operands = 0;
    uint64_t threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val;
        int kind = cli_arg(a, &operands, counting ? count_help : encode_help, NULL);
        if (kind == CLI_ARG_HELP) return CLI_OK;
        if (kind == CLI_ARG_SKIP) continue;
        if (kind == CLI_ARG_OPERAND) {
            if (path) return cli_error("%s: one input file at most (%s and %s)", argv[0], cli_q(path), cli_q(a));
            path = a;
        } else if (!strcmp(a, "--strict")) {
            strict = 1;
        } else if (counting && (!strcmp(a, "--offsets") || !strncmp(a, "--format", 8))) {
            return cli_error("count: %s is an option of encode (count prints only the number)", a);
        } else if (!strcmp(a, "--offsets")) {
            offsets = 1;
        } else if ((val = cli_opt(argc, argv, &i, "--format", &bad))) {
            format = val;
        } else if ((val = cli_opt(argc, argv, &i, "--special", &bad))) {
            special = val;
        } else if ((val = cli_opt(argc, argv, &i, "--encoder", &bad))) {
            enc = val;
        } else if ((val = cli_opt(argc, argv, &i, "--merges", &bad))) {
            merges = val;
        } else if ((val = cli_opt(argc, argv, &i, "--vocab", &bad))) {
            vocab = val;
        } else if ((val = cli_opt(argc, argv, &i, "--threads", &bad))) {
            if (cli_parse_u64(val, &threads) || threads > 64)
                return cli_error("--threads: '%s' is not a number of threads (0..64)", val);
        } else if (bad) {
            return CLI_ERR;
        } else {
            return cli_unknown_option(argv[0], a, CLI_ARG_OPTION);
        }
    }
    if (bad) return CLI_ERR;
    int fmt = ids_format_from_name(format);
    if (fmt < 0 || fmt == IDS_AUTO)
        return cli_error("--format: unknown format %s (text, u16, u32, npy, json, llmc)", cli_q(format));
    int flags = strict ? BPE_STRICT : 0;
    if (!strcmp(special, "error")) flags |= BPE_SPECIAL_ERROR;
    else if (!strcmp(special, "allow")) flags |= BPE_SPECIAL_ALLOW;
    else if (!strcmp(special, "text")) flags |= BPE_SPECIAL_TEXT;
    else return cli_error("--special: '%s' is not one of error, allow, text", special);
    if (offsets && fmt != IDS_TEXT && fmt != IDS_JSON)
        return cli_error("--offsets works with --format text or json");
    if (offsets) flags |= BPE_OFFSETS;
    /* >> or 1<> onto the input would read back what is written */
    const char *inputs[] = {path ? path : "-", enc, merges, vocab};
    if (cli_output_check(counting ? "count" : "encode", "stdout", "-", inputs, 4, 1)) return CLI_ERR;

    const bpe *v = cli_vocab(enc, merges, vocab);
    if (!v) return CLI_ERR;
    FILE *in = cli_open_in(path);
    if (!in) {
        bpe_free(v);
        return CLI_ERR;
    }
    const char *name = path && strcmp(path, "-") ? path : "<stdin>";
    bpe_error err;
    bpe_stream *st = bpe_stream_new(v, flags, (int)threads, &err);
    encode_ctx c = {NULL, v, offsets ? fmt + 1 : 0, 0, stdout, 0};
    int rc = CLI_OK;
    if (!st) rc = cli_error("%s", err.msg);
    if (!rc && !counting && !offsets && !(c.w = ids_writer_open(stdout, (ids_format)fmt))) rc = CLI_ERR;

    /* Read straight into the stream's buffer (no copy): in reads of 64 KB,
     * so that a short input touches few fresh pages, or of 1 MB from a
     * large file, whose buffer is then on huge pages from the start. With
     * more than one thread the stream's threads encode one block while
     * this one reads the next. */
    struct stat sb;
    int fd = fileno(in), regular = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
    size_t want = regular && sb.st_size >= (1 << 20) ? 1 << 20 : 64 << 10;
    reading r = {st, &c, name, isatty(2), 0, 64u << 20};
    while (!rc) {
        /* From a pipe or a terminal, before a read that would wait, the
         * tokens of the blocks being encoded go out (and an error in them
         * is reported): the writer may take its time, or never end. */
        struct pollfd pf = {fd, POLLIN, 0};
        int e;
        if (!regular && poll(&pf, 1, 0) == 0 && (e = bpe_stream_wait(st, sink, &c, &err))) {
            rc = encode_failed(&c, name, e, &err);
            break;
        }
        /* the first room a read's size, then what the buffer has left */
        size_t room;
        char *p = bpe_stream_room(st, r.read_total ? 1 : want, &room, &err);
        if (!p) {
            rc = encode_failed(&c, name, BPE_ERR_NOMEM, &err);
            break;
        }
        size_t got = read_full(fd, p, room < want ? room : want, !regular, &e);
        if (got) rc = take(&r, got);
        if (!rc && e) rc = read_error(&r, e);
        if (got == 0) break;
    }
    if (!rc) {
        int e = bpe_stream_finish(st, sink, &c, &err);
        if (e) rc = encode_failed(&c, name, e, &err);
    }
    if (r.progress && r.read_total >= (64u << 20)) fputs("\r\033[K", stderr);
    if (!rc && c.offsets == IDS_JSON + 1) fputs(c.count ? "]\n" : "[]\n", stdout);
    if (c.w && rc) ids_writer_abort(c.w);
    else if (c.w) rc = ids_writer_close(c.w);
    if (!rc && counting) printf("%llu\n", (unsigned long long)c.count);
    if (!rc && (fflush(stdout) || ferror(stdout))) rc = cli_write_error(NULL);
    bpe_stream_free(st);
    if (in != stdin) fclose(in);
    bpe_free(v);
    return rc;
}

int cmd_encode(int argc, char **argv) { return run(argc, argv, 0); }
int cmd_count(int argc, char **argv) { return run(argc, argv, 1); }
