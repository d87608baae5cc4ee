/* cli_common.c - helpers every gpt2in subcommand uses. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

#include "cli.h"

static int stdout_closed;
static off_t stdout_start = -1;

void cli_start(void) {
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
        /* the lowest free number is fd, the ones below it being open */
        int got = open("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY);
        if (got != fd) _exit(CLI_ERR);  /* (nowhere to say why) */
        if (fd == 1) stdout_closed = 1;
    }
    stdout_start = lseek(STDOUT_FILENO, 0, SEEK_CUR);
    /* a file size limit (ulimit -f) is then a write error (EFBIG): one
     * line, the temporary file removed, not a kill */
    signal(SIGXFSZ, SIG_IGN);
}

int cli_stdout_closed(void) { return stdout_closed; }

/* After what this command wrote to stdout, when that is a regular file
 * longer than that (opened with 1<>, not truncated): cut the old tail. */
static int cut_stdout_tail(void) {
    struct stat st;
    off_t end = lseek(STDOUT_FILENO, 0, SEEK_CUR);
    int fl = fcntl(STDOUT_FILENO, F_GETFL);
    if (stdout_start < 0 || end <= stdout_start || fl < 0 || (fl & O_APPEND) ||
        fstat(STDOUT_FILENO, &st) || !S_ISREG(st.st_mode) || st.st_size <= end)
        return CLI_OK;
    if (ftruncate(STDOUT_FILENO, end))
        return cli_error("<stdout>: cannot cut the file's old tail after the output: %s", strerror(errno));
    return CLI_OK;
}

int cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (isatty(2)) fputs("\r\033[K", stderr);   /* over a progress line, not after it */
    fputs("gpt2in: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_ERR;
}

int cli_finish(int rc) {
    if ((fflush(stdout) || ferror(stdout)) && rc != CLI_ERR) rc = cli_write_error(NULL);
    if (rc == CLI_OK) rc = cut_stdout_tail();
    return rc;
}

int cli_parse_u64(const char *s, uint64_t *out) {
    if (!s || *s < '0' || *s > '9') return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

int cli_write_error(const char *where) {
    const char *why = strerror(errno);
    char q[300];
    return cli_error("%s: write error: %s", where ? cli_name(where, q, sizeof q) : "<stdout>", why);
}

int cli_parse_double(const char *s, double *out) {
    if (!s || !*s) return -1;
    /* decimal only: strtod would also take hex ("0x10"), inf, nan and
     * leading spaces */
    for (const char *p = s; *p; p++)
        if (!strchr("0123456789+-.eE", *p)) return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

const char *cli_opt(int argc, char **argv, int *i, const char *name, int *bad) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n)) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n]) return NULL;
    if (*i + 1 >= argc) {
        cli_error("option %s needs a value", name);
        *bad = 1;
        return NULL;
    }
    return argv[++*i];
}

static char q_bufs[6][300];
static unsigned q_next;

const char *cli_q(const char *s) {
    char *b = q_bufs[q_next++ % 6];
    return cli_quote_buf(b, sizeof q_bufs[0], s, strlen(s));
}

const char *cli_n(const char *path) { return cli_name(path, q_bufs[q_next++ % 6], sizeof q_bufs[0]); }

int cli_arg(const char *a, int *operands, const char *help, const char *no_operands) {
    if (*operands || a[0] != '-' || !a[1])
        return no_operands ? cli_unknown_option(no_operands, a, CLI_ARG_OPERAND), -1
                           : CLI_ARG_OPERAND;
    if (!strcmp(a, "--")) {
        *operands = 1;
        return CLI_ARG_SKIP;
    }
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
        fputs(help, stdout);
        return CLI_ARG_HELP;
    }
    return CLI_ARG_OPTION;
}

int cli_unknown_option(const char *cmd, const char *a, int kind) {
    return cli_error("%s: %s %s (see 'gpt2in %s --help')", cmd,
                     kind == CLI_ARG_OPERAND ? "unexpected argument" : "unknown option", cli_q(a), cmd);
}

const char *cli_name(const char *path, char *buf, size_t cap) {
    cli_quote_buf(buf, cap, path, strlen(path));
    return strlen(buf) == strlen(path) + 2 && !strchr(path, '"') && !strchr(path, '\\') ? path : buf;
}

FILE *cli_open_in(const char *path) {
    if (!path || !strcmp(path, "-")) return stdin;
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f && fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        f = NULL;
        errno = EISDIR;
    }
    char q[300];
    if (!f) cli_error("%s: %s", cli_name(path, q, sizeof q), strerror(errno));
    return f;
}

const bpe *cli_vocab(const char *encoder_path, const char *merges_path, const char *vocab_path) {
    if (vocab_path && encoder_path) {
        cli_error("--vocab and --encoder both name a vocabulary: give one");
        return NULL;
    }
    if (vocab_path) {
        bpe_error err;
        const bpe *v = bpe_load_file(vocab_path, merges_path, &err);
        if (!v) cli_error("%s", err.msg);
        return v;
    }
    if (!encoder_path && !merges_path) return bpe_gpt2();
    if (!encoder_path || !merges_path) {
        cli_error("--encoder and --merges go together");
        return NULL;
    }
    bpe_error err;
    const bpe *v = bpe_load(encoder_path, merges_path, &err);
    if (!v) cli_error("%s", err.msg);
    return v;
}

int cli_char_shown(const void *s, size_t n, size_t *len, int32_t *cp) {
    utf8proc_int32_t c = -1;
    utf8proc_ssize_t k = n ? utf8proc_iterate(s, (utf8proc_ssize_t)n, &c) : -1;
    *len = k > 0 ? (size_t)k : 1;
    *cp = k > 0 ? c : -1;
    if (k <= 0) return 0;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP: case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_CS:
        return 0;
    default:
        return 1;
    }
}

const char *cli_quote_buf(char *buf, size_t cap, const void *bytes, size_t n) {
    const unsigned char *s = bytes;
    size_t o = 0;
    if (cap < 8) {
        if (cap) buf[0] = 0;
        return buf;
    }
    buf[o++] = '"';
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        char esc[8];
        size_t k = 1;
        int32_t cp;
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c, esc[2] = 0;
        } else if (c == '\n' || c == '\t' || c == '\r') {
            esc[0] = '\\', esc[1] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r', esc[2] = 0;
        } else if (cli_char_shown(s + i, n - i, &k, &cp)) {
            esc[0] = 0;
        } else {
            snprintf(esc, sizeof esc, "\\x%02x", c);  /* byte by byte */
            k = 1;
        }
        size_t m = esc[0] ? strlen(esc) : k;
        if (o + m + 5 > cap) {  /* room for this, "...", the quote and NUL */
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(buf + o, esc[0] ? (const unsigned char *)esc : s + i, m);
        o += m;
        i += k;
    }
    buf[o++] = '"';
    buf[o] = 0;
    return buf;
}

/* ---- a mapped file that shrinks ------------------------------------------ */

/* Touching a page of a mapping past the end of its file raises SIGBUS; the
 * handler can only write a message prepared beforehand and leave. */
static char bus_msg[1024];
static size_t bus_len;

static void unlink_temps(void);

static void on_sigbus(int sig) {
    (void)sig;
    /* two threads may touch the shrunk file at once: one message, one exit */
    static int reported;
    if (__atomic_exchange_n(&reported, 1, __ATOMIC_SEQ_CST))
        for (;;) pause();   /* the first one's _exit ends this thread too */
    unlink_temps();
    ssize_t w = write(2, bus_msg, bus_len);
    (void)w;
    _exit(CLI_ERR);
}

void cli_mapped(const char *path) {
    /* the message names every mapped file: "A or B" */
    static char names[600];
    char q[300];
    size_t used = strlen(names);
    const char *shown = cli_name(path, q, sizeof q);
    if (used + strlen(shown) + 5 < sizeof names)
        snprintf(names + used, sizeof names - used, "%s%s", used ? " or " : "", shown);
    cli_mapped_as(names);
}

void cli_mapped_as(const char *names) {
    int n = snprintf(bus_msg, sizeof bus_msg,
                     "gpt2in: %s: the file shrank while it was in use (truncated or rewritten in "
                     "place by another program); stopped\n", names);
    bus_len = n < 0 ? 0 : (size_t)n < sizeof bus_msg ? (size_t)n : sizeof bus_msg - 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigbus;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}

embed_kind cli_file_kind(const char *path) {
    unsigned char buf[1024];
    FILE *f = fopen(path, "rb");
    if (!f)
        return EMBED_KIND_COUNT;
    size_t n = fread(buf, 1, sizeof buf, f);
    int failed = ferror(f);  /* a directory, say: its reader names the problem */
    fclose(f);
    return failed ? EMBED_KIND_COUNT : embed_detect(buf, n);
}

int cli_expect_kind(const char *path, embed_kind want) {
    if (!path || !strcmp(path, "-"))
        return CLI_OK;
    embed_kind k = cli_file_kind(path);
    if (k == EMBED_KIND_COUNT || k == want)
        return CLI_OK;  /* (a file that cannot be read: its reader says why) */
    return cli_error("%s is %s, not %s", cli_n(path), embed_kind_desc(k), embed_kind_desc(want));
}

int cli_ids_kind(embed_kind k) {
    return k == EMBED_KIND_TEXT || k == EMBED_KIND_JSON || k == EMBED_KIND_LLMC_SHARD;
}

size_t cli_stdin_enough(const unsigned char *data, size_t len) {
    if (len < EMBED_DETECT_BYTES) return SIZE_MAX;
    embed_kind k = embed_detect(data, len);
    if (k == EMBED_KIND_NPY) {
        embed_npy a;
        embed_error err;
        size_t start;
        /* the header (at most 10000 bytes) gives the array's size; one byte
         * more tells trailing bytes. Until it is all in: more. */
        if (embed_npy_inspect_header(data, len, "<stdin>", &a, &start, &err))
            return len < 16384 ? SIZE_MAX : len;
        uint64_t bits = embed_dtype_bits(a.dtype);
        if (!bits || a.count > (UINT64_MAX - 8) / bits) return len;
        uint64_t end = start + (a.count * bits + 7) / 8 + 1;
        return end < SIZE_MAX ? (size_t)end : SIZE_MAX;
    }
    /* ids are streamed by their readers (the rest stays in stdin) */
    if (cli_ids_kind(k)) return len;
    /* kinds no reader of a whole stdin takes: their first bytes say so */
    if (k == EMBED_KIND_UNKNOWN || k == EMBED_KIND_ZIP || k == EMBED_KIND_PICKLE || k == EMBED_KIND_GZIP ||
        k == EMBED_KIND_ZSTD || k == EMBED_KIND_GIT_LFS)
        return len;
    return SIZE_MAX;
}

unsigned char *cli_read_stdin(size_t *len, size_t (*enough)(const unsigned char *data, size_t len)) {
    unsigned char *data = NULL;
    size_t cap = 0;
    *len = 0;
    for (;;) {
        if (*len >= enough(data, *len)) return data;
        if (cap - *len < 65536) {
            cap = cap ? cap * 2 : 1 << 20;
            unsigned char *b = realloc(data, cap);
            if (!b) {
                free(data);
                cli_error("<stdin>: out of memory after %zu bytes", *len);
                return NULL;
            }
            data = b;
        }
        size_t got = fread(data + *len, 1, cap - *len, stdin);
        *len += got;
        if (!got) {
            if (ferror(stdin)) {
                cli_error("<stdin>: read error at byte %zu: %s", *len, strerror(errno));
                free(data);
                return NULL;
            }
            return data;
        }
    }
}

int cli_read_npy(const char *path, embed_npy *out) {
    embed_error err;
    if (strcmp(path, "-")) {
        if (cli_expect_kind(path, EMBED_KIND_NPY))
            return CLI_ERR;
        return embed_npy_read(path, out, &err) ? cli_error("%s", err.msg) : CLI_OK;
    }
    size_t len;
    unsigned char *data = cli_read_stdin(&len, cli_stdin_enough);
    if (!data)
        return CLI_ERR;
    embed_kind k = embed_detect(data, len);
    int rc = k != EMBED_KIND_NPY ? cli_error("<stdin> is %s, not %s", embed_kind_desc(k),
                                             embed_kind_desc(EMBED_KIND_NPY))
             : embed_npy_read_mem(data, len, "<stdin>", out, &err) ? cli_error("%s", err.msg)
             : CLI_OK;
    free(data);
    return rc;
}

embed_file *cli_open_mapped(const char *path) {
    cli_mapped(path);
    embed_error err;
    embed_file *f = embed_open(path, &err);
    if (!f)
        cli_error("%s", err.msg);
    return f;
}

/* ---- temporary files removed when a signal stops the command -------------- */

/* The writers' temporary files, copied here so that a handler can unlink
 * them: the only thing it does before the signal takes its default course.
 * A slot is live only while its path is complete. */
#define CLI_TEMPS 4
static char temp_path[CLI_TEMPS][PATH_MAX];
static const embed_writer *temp_owner[CLI_TEMPS];
static volatile sig_atomic_t temp_live[CLI_TEMPS];
static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};

static void unlink_temps(void) {
    for (int k = 0; k < CLI_TEMPS; k++)
        if (temp_live[k]) unlink(temp_path[k]);
}

static void on_stop(int sig) {
    unlink_temps();
    signal(sig, SIG_DFL);
    raise(sig);  /* delivered when the handler returns: the exit status tells the signal */
}

static void stop_signals_mask(int how, sigset_t *old) {
    sigset_t set;
    sigemptyset(&set);
    for (size_t k = 0; k < sizeof stop_signals / sizeof *stop_signals; k++)
        sigaddset(&set, stop_signals[k]);
    pthread_sigmask(how, &set, old);
}

static void temps_forget(const embed_writer *w) {
    for (int k = 0; k < CLI_TEMPS; k++)
        if (temp_owner[k] == w) {
            temp_live[k] = 0;
            temp_owner[k] = NULL;
        }
}

embed_writer *cli_writer_open(const char *path, embed_error *err) {
    static int installed;
    if (!installed) {
        installed = 1;
        for (size_t k = 0; k < sizeof stop_signals / sizeof *stop_signals; k++) {
            struct sigaction sa, old;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_stop;
            sigemptyset(&sa.sa_mask);
            for (size_t j = 0; j < sizeof stop_signals / sizeof *stop_signals; j++)
                sigaddset(&sa.sa_mask, stop_signals[j]);
            /* a signal the caller ignores (nohup, a background job) stays ignored */
            if (sigaction(stop_signals[k], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
                sigaction(stop_signals[k], &sa, NULL);
        }
    }
    /* blocked from before the temporary exists until its name is noted */
    sigset_t old;
    stop_signals_mask(SIG_BLOCK, &old);
    embed_writer *w = embed_writer_open(path, err);
    const char *tmp = embed_writer_temp_path(w);
    for (int k = 0; tmp && k < CLI_TEMPS; k++)
        if (!temp_owner[k] && strlen(tmp) < sizeof temp_path[k]) {
            memcpy(temp_path[k], tmp, strlen(tmp) + 1);
            temp_owner[k] = w;
            temp_live[k] = 1;
            break;
        }
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return w;
}

int cli_writer_commit(embed_writer *w, embed_error *err) {
    /* a signal after the rename unlinks a name that no longer exists */
    int rc = embed_writer_commit(w, err);
    temps_forget(w);
    return rc;
}

void cli_writer_abort(embed_writer *w) {
    embed_writer_abort(w);
    temps_forget(w);
}

int cli_save(const char *path, const embed_file *base, const embed_out_tensor *repl,
             size_t n_repl, const char *const *meta, size_t n_meta, embed_error *err) {
    embed_writer *w = cli_writer_open(path, err);
    if (!w) return errno == ENOMEM ? EMBED_ERR_NOMEM : EMBED_ERR_IO;
    int rc = embed_save_to(w, base, repl, n_repl, meta, n_meta, err);
    if (rc) {
        cli_writer_abort(w);
        return rc;
    }
    return cli_writer_commit(w, err);
}
