/* cli_common.c - helpers every gpt2in subcommand uses. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

int cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("gpt2in: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_ERR;
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

int cli_parse_double(const char *s, double *out) {
    if (!s || !*s) return -1;
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

FILE *cli_open_in(const char *path) {
    if (!path || !strcmp(path, "-")) return stdin;
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f && fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        f = NULL;
        errno = EISDIR;
    }
    if (!f) cli_error("%s: %s", path, strerror(errno));
    return f;
}

const bpe *cli_vocab(const char *encoder_path, const char *merges_path) {
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
