/* cmd_inspect.c - `gpt2in inspect FILE [--json]`: what a .safetensors or .npy
 * file holds (header, metadata, every tensor with dtype, shape and byte
 * range in file order), after the library has validated all of it. The
 * format is told by the magic bytes, not the file name. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const char inspect_usage[] =
    "usage: gpt2in inspect [--json] [--] FILE\n\n"
    "Validates a .safetensors or .npy file (told apart by its magic bytes) and\n"
    "describes it: header length, where the data starts, metadata, and every\n"
    "tensor's name, dtype, shape and data_offsets in file order (.npy: version,\n"
    "dtype, shape). --json prints the same as one JSON object.\n"
    "Exit status 0, or 2 with one line on stderr naming what is wrong.\n";

/* A JSON string literal; names may hold anything valid UTF-8 except NUL. */
static void put_json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

/* A name on one text line: control characters shown as \xNN. */
static void put_text_name(const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
}

static void put_shape(int ndim, const uint64_t *shape, const char *sep) {
    putchar('[');
    for (int d = 0; d < ndim; d++)
        printf("%s%llu", d ? sep : "", (unsigned long long)shape[d]);
    putchar(']');
}

static int inspect_safetensors(const char *path, int json) {
    embed_file *f = cli_open_mapped(path);
    if (!f) return CLI_ERR;
    size_t n = embed_header_len(f), nt = embed_tensor_count(f), nm = embed_metadata_count(f);
    size_t size = embed_file_size(f);
    if (json) {
        printf("{\"format\":\"safetensors\",\"file_size\":%zu,\"header_len\":%zu,"
               "\"data_start\":%zu,\"metadata\":{", size, n, n + 8);
        for (size_t i = 0; i < nm; i++) {
            const char *k, *v;
            embed_metadata_at(f, i, &k, &v);
            if (i) putchar(',');
            put_json_str(k);
            putchar(':');
            put_json_str(v);
        }
        printf("},\"tensors\":[");
        for (size_t i = 0; i < nt; i++) {
            const embed_tensor *t = embed_tensor_at(f, i);
            printf("%s{\"name\":", i ? "," : "");
            put_json_str(t->name);
            printf(",\"dtype\":\"%s\",\"shape\":", embed_dtype_name(t->dtype));
            put_shape(t->ndim, t->shape, ",");
            printf(",\"data_offsets\":[%llu,%llu]}", (unsigned long long)t->begin,
                   (unsigned long long)t->end);
        }
        printf("]}\n");
    } else {
        printf("%s: safetensors, %zu bytes\n", path, size);
        printf("header length: %zu bytes; data starts at byte %zu (%zu mod 8)\n", n, n + 8,
               (n + 8) % 8);
        printf("metadata: %zu entr%s\n", nm, nm == 1 ? "y" : "ies");
        for (size_t i = 0; i < nm; i++) {
            const char *k, *v;
            embed_metadata_at(f, i, &k, &v);
            printf("  ");
            put_text_name(k);
            printf(" = ");
            put_text_name(v);
            putchar('\n');
        }
        printf("tensors: %zu (in file order: name, dtype, shape, data_offsets)\n", nt);
        for (size_t i = 0; i < nt; i++) {
            const embed_tensor *t = embed_tensor_at(f, i);
            printf("  ");
            put_text_name(t->name);
            printf("  %s ", embed_dtype_name(t->dtype));
            put_shape(t->ndim, t->shape, ", ");
            printf(" [%llu, %llu]\n", (unsigned long long)t->begin, (unsigned long long)t->end);
        }
    }
    embed_close(f);
    return fflush(stdout) == 0 ? CLI_OK : cli_write_error(NULL);
}

static int inspect_npy(const char *path, const void *buf, size_t len, int json) {
    embed_error err;
    embed_npy a;
    unsigned version;
    size_t start;
    if (embed_npy_inspect(buf, len, path, &a, &version, &start, &err))
        return cli_error("%s", err.msg);
    if (json) {
        printf("{\"format\":\"npy\",\"file_size\":%zu,\"version\":\"%u.0\",\"data_start\":%zu,"
               "\"dtype\":\"%s\",\"shape\":", len, version, start, embed_dtype_name(a.dtype));
        put_shape(a.ndim, a.shape, ",");
        printf(",\"count\":%llu}\n", (unsigned long long)a.count);
    } else {
        printf("%s: npy version %u.0, %zu bytes\n", path, version, len);
        printf("dtype: %s\nshape: ", embed_dtype_name(a.dtype));
        put_shape(a.ndim, a.shape, ", ");
        printf(" (%llu elements)\ndata starts at byte %zu\n", (unsigned long long)a.count, start);
    }
    return fflush(stdout) == 0 ? CLI_OK : cli_write_error(NULL);
}

int cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    int json = 0, operands = 0;
    for (int i = 1; i < argc; i++) {
        int kind = cli_arg(argv[i], &operands, inspect_usage, NULL);
        if (kind == CLI_ARG_HELP) {
            return CLI_OK;
        } else if (kind == CLI_ARG_OPERAND) {
            if (path)
                return cli_error("inspect: one FILE only (see 'gpt2in inspect --help')");
            path = argv[i];
        } else if (kind == CLI_ARG_OPTION && !strcmp(argv[i], "--json")) {
            json = 1;
        } else if (kind == CLI_ARG_OPTION) {
            return cli_unknown_option("inspect", argv[i], kind);
        }
    }
    if (!path) return cli_error("inspect: no FILE given (see 'gpt2in inspect --help')");

    /* peek at the magic; .npy is checked from a mapping, safetensors by embed_open */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char q[300];
    if (fd < 0) return cli_error("%s: cannot open: %s", cli_name(path, q, sizeof q), strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return cli_error("%s: not a regular file", cli_name(path, q, sizeof q));
    }
    unsigned char magic[6] = {0};
    ssize_t got = pread(fd, magic, sizeof magic, 0);
    if (got == (ssize_t)sizeof magic && !memcmp(magic, "\x93NUMPY", 6)) {
        size_t len = (size_t)st.st_size;
        cli_mapped(path);
        void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (m == MAP_FAILED) return cli_error("%s: cannot map: %s", cli_name(path, q, sizeof q), strerror(errno));
        int rc = inspect_npy(path, m, len, json);
        munmap(m, len);
        return rc;
    }
    close(fd);
    return inspect_safetensors(path, json);
}
