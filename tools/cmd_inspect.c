/* cmd_inspect.c - `gpt2in inspect [FILE] [--json]`: what a file or a stdin
 * stream holds, after the library has validated all of it: weights files
 * (safetensors, llm.c checkpoints, GGUF: header, metadata, every tensor
 * with dtype, shape and byte range in file order), .npy arrays, token ids
 * (text, JSON, llm.c shards: their shape and range) and llm.c tokenizer
 * files. The format is told by the first bytes (embed_detect), not the
 * file name. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>


#include "cli.h"

static const char inspect_usage[] =
    "usage: gpt2in inspect [--json] [--] [FILE]\n\n"
    "Validates FILE (or stdin, also as -) and describes it, its format told by its\n"
    "first bytes: a safetensors file, an llm.c checkpoint or a GGUF file (header,\n"
    "where the data starts, metadata, and every tensor's name, dtype, shape and\n"
    "byte range in file order), a .npy array (version, dtype, shape), token ids\n"
    "as text, JSON or an llm.c token shard (count, shape [T] or [B, T], the\n"
    "largest id), an llm.c tokenizer file (version, tokens, end-of-text id) or a\n"
    "vocabulary --vocab reads, tokenizer.json or tiktoken (tokens, the longest,\n"
    "the end-of-text id, the special tokens).\n"
    "--json prints the same as one JSON object.\n"
    "Exit status 0, or 2 with one line on stderr naming what is wrong.\n";

/* A JSON string literal; names may hold anything valid UTF-8 except NUL.
 * Characters a message would not show (cli_char_shown) are written as \u
 * escapes (still the same string). */
static void put_json_str(const char *s) {
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), k;
    int32_t cp;
    putchar('"');
    for (size_t i = 0; i < n; i += k) {
        int shown = cli_char_shown(u + i, n - i, &k, &cp);
        if (u[i] == '"' || u[i] == '\\') printf("\\%c", u[i]);
        else if (shown || cp < 0) fwrite(u + i, 1, k, stdout);
        else if (cp >= 0x10000) printf("\\u%04x\\u%04x", 0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + (cp & 0x3ff));
        else printf("\\u%04x", (unsigned)cp);
    }
    putchar('"');
}

/* A name on one text line: characters a message would not show as \xNN,
 * byte by byte. */
static void put_text_name(const char *s) {
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), k;
    int32_t cp;
    for (size_t i = 0; i < n; i += k) {
        if (cli_char_shown(u + i, n - i, &k, &cp)) fwrite(u + i, 1, k, stdout);
        else for (size_t j = 0; j < k; j++) printf("\\x%02x", u[i + j]);
    }
}

static void put_shape(int ndim, const uint64_t *shape, const char *sep) {
    putchar('[');
    for (int d = 0; d < ndim; d++)
        printf("%s%llu", d ? sep : "", (unsigned long long)shape[d]);
    putchar(']');
}

static const char *model_dtype(const embed_info *in) {
    return in->version == 5 ? "BF16" : "F32";
}

/* A weights file the library opened: safetensors, llm.c or GGUF. */
static int inspect_model(const char *path, embed_file *f, int json) {
    size_t nt = embed_tensor_count(f), nm = embed_metadata_count(f);
    size_t size = embed_file_size(f);
    embed_info in;
    embed_file_info(f, &in);
    if (json) {
        if (in.kind == EMBED_KIND_SAFETENSORS) {
            size_t n = embed_header_len(f);
            printf("{\"format\":\"safetensors\",\"file_size\":%zu,\"header_len\":%zu,"
                   "\"data_start\":%zu,", size, n, n + 8);
        } else if (in.kind == EMBED_KIND_LLMC_MODEL) {
            printf("{\"format\":\"llmc-model\",\"file_size\":%zu,\"version\":%u,\"dtype\":\"%s\","
                   "\"data_start\":%llu,\"maxT\":%d,\"V\":%d,\"L\":%d,\"heads\":%d,\"C\":%d,"
                   "\"Vp\":%d,", size, in.version, model_dtype(&in),
                   (unsigned long long)in.data_start, in.llmc[2], in.llmc[3], in.llmc[4],
                   in.llmc[5], in.llmc[6], in.llmc[7]);
        } else {
            printf("{\"format\":\"%s\",\"file_size\":%zu,\"version\":%u,\"data_start\":%llu,"
                   "\"alignment\":%llu,\"kv_count\":%llu,", embed_kind_name(in.kind), size,
                   in.version, (unsigned long long)in.data_start, (unsigned long long)in.alignment,
                   (unsigned long long)in.gguf_kv);
        }
        printf("\"metadata\":{");
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
        if (in.kind == EMBED_KIND_SAFETENSORS) {
            size_t n = embed_header_len(f);
            printf("%s: safetensors, %zu bytes\n", path, size);
            printf("header length: %zu bytes; data starts at byte %zu (%zu mod 8)\n", n, n + 8,
                   (n + 8) % 8);
        } else if (in.kind == EMBED_KIND_LLMC_MODEL) {
            printf("%s: llm.c model checkpoint, version %u (%s), %zu bytes\n", path, in.version,
                   model_dtype(&in), size);
            printf("header: maxT %d, V %d, L %d, heads %d, C %d, Vp %d; data starts at byte %llu\n",
                   in.llmc[2], in.llmc[3], in.llmc[4], in.llmc[5], in.llmc[6], in.llmc[7],
                   (unsigned long long)in.data_start);
        } else {
            printf("%s: %s, version %u, %zu bytes\n", path, embed_kind_desc(in.kind), in.version,
                   size);
            printf("key-value pairs: %llu; alignment %llu; data starts at byte %llu\n",
                   (unsigned long long)in.gguf_kv, (unsigned long long)in.alignment,
                   (unsigned long long)in.data_start);
        }
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
    return fflush(stdout) == 0 ? CLI_OK : cli_write_error(NULL);
}

/* Token ids (text, JSON, an llm.c shard): read through, as decode would. */
/* Ids are read as a stream: the bytes already in memory (a mapped file,
 * or the first block of stdin that told the kind), then the rest of stdin,
 * so an endless pipe of ids takes bounded memory. */
typedef struct {
    const unsigned char *head;
    size_t head_len, pos;
    FILE *rest;       /* NULL: the head is all */
    uint64_t total;   /* bytes served */
} ids_source;

static ssize_t source_read(void *cookie, char *buf, size_t size) {
    ids_source *s = cookie;
    size_t n;
    if (s->pos < s->head_len) {
        n = s->head_len - s->pos < size ? s->head_len - s->pos : size;
        memcpy(buf, s->head + s->pos, n);
        s->pos += n;
    } else {
        n = s->rest ? fread(buf, 1, size, s->rest) : 0;
        if (n == 0 && s->rest && ferror(s->rest))
            return -1;
    }
    s->total += n;
    return (ssize_t)n;
}

static int inspect_ids(const char *path, ids_source *src, embed_kind kind, int json) {
    FILE *in = fopencookie(src, "rb", (cookie_io_functions_t){source_read, NULL, NULL, NULL});
    if (!in)
        return cli_error("%s: %s", path, strerror(errno));
    ids_format fmt = kind == EMBED_KIND_JSON ? IDS_JSON : kind == EMBED_KIND_TEXT ? IDS_TEXT : IDS_LLMC;
    ids_reader *r = ids_reader_open(in, path, fmt, 0);
    uint32_t ids[4096], max = 0;
    uint64_t count = 0;
    size_t n;
    int rc = r ? CLI_OK : CLI_ERR;
    while (!rc && !(rc = ids_reader_next(r, ids, 4096, &n)) && n) {
        for (size_t i = 0; i < n; i++)
            max = ids[i] > max ? ids[i] : max;
        count += n;
    }
    ids_shape sh = {1, 1, 0};
    if (!rc)
        ids_reader_shape(r, &sh);
    ids_reader_close(r);
    fclose(in);
    if (rc)
        return rc;
    unsigned long long len = (unsigned long long)src->total;
    uint64_t shape[2] = {sh.B, sh.T};
    const uint64_t *sp = sh.ndim == 2 ? shape : shape + 1;
    if (json) {
        printf("{\"format\":\"%s\",\"file_size\":%llu,\"count\":%llu,\"shape\":", embed_kind_name(kind),
               len, (unsigned long long)count);
        put_shape(sh.ndim, sp, ",");
        if (count)
            printf(",\"max_id\":%u", max);
        printf("}\n");
    } else {
        printf("%s: token ids, %s, %llu bytes\n", path, embed_kind_desc(kind), len);
        printf("ids: %llu, shape ", (unsigned long long)count);
        put_shape(sh.ndim, sp, ", ");
        if (sh.ndim == 2)
            printf(" (a batch [B, T])");
        if (count)
            printf(", largest id %u%s", max, max >= 50257 ? " (outside GPT-2's 50257)" : "");
        putchar('\n');
    }
    return fflush(stdout) == 0 ? CLI_OK : cli_write_error(NULL);
}

/* llm.c's gpt2_tokenizer.bin: 256 int32 (magic 20240328, version 1 or 2,
 * vocab size, v2: end-of-text id), then per token a length byte and its
 * bytes. */
static int inspect_llmc_tokenizer(const char *path, const unsigned char *buf, size_t len, int json) {
    bpe_error err;
    bpe *v = bpe_load_llmc_mem((const char *)buf, len, path, &err);  /* as --vocab checks it */
    if (!v) return cli_error("%s", err.msg);
    bpe_free(v);
    int32_t h[256];
    memcpy(h, buf, sizeof h);
    if (json) {
        printf("{\"format\":\"llmc-tokenizer\",\"file_size\":%zu,\"version\":%d,\"vocab_size\":%d",
               len, h[1], h[2]);
        if (h[1] == 2)
            printf(",\"eot_token\":%d", h[3]);
        printf("}\n");
    } else {
        printf("%s: llm.c tokenizer, version %d, %zu bytes\n", path, h[1], len);
        printf("tokens: %d", h[2]);
        if (h[1] == 2)
            printf("; end-of-text id %d", h[3]);
        putchar('\n');
    }
    return fflush(stdout) == 0 ? CLI_OK : cli_write_error(NULL);
}

/* Whether a text file starts as a vocabulary does, not as ids: a JSON
 * object (tokenizer.json, vocab.json), a merges.txt's "#version" line, or a
 * tiktoken line (base64, a blank, a rank). */
static int looks_like_vocab(const unsigned char *b, size_t len) {
    size_t i = len >= 3 && !memcmp(b, "\xef\xbb\xbf", 3) ? 3 : 0;
    while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r')) i++;
    if (i < len && b[i] == '{') return 1;
    if (len - i >= 8 && !memcmp(b + i, "#version", 8)) return 1;
    size_t j = i;
    while (j < len && ((b[j] >= 'A' && b[j] <= 'Z') || (b[j] >= 'a' && b[j] <= 'z') ||
                       (b[j] >= '0' && b[j] <= '9') || b[j] == '+' || b[j] == '/' || b[j] == '='))
        j++;
    /* a tiktoken token holds a letter, '+', '/' or '=' (a bare number is an id) */
    int letters = 0;
    for (size_t k = i; k < j; k++) letters |= b[k] < '0' || b[k] > '9';
    return letters && j > i && j < len && b[j] == ' ' && j + 1 < len && b[j + 1] >= '0' && b[j + 1] <= '9';
}

/* A vocabulary on stdin is read whole, as `--vocab` reads a stream (up to
 * its 256 MiB, and one byte more to tell); the rest as cli_stdin_enough. */
#define VOCAB_STDIN_MAX ((size_t)256 << 20)
static size_t stdin_enough(const unsigned char *data, size_t len) {
    if (len >= EMBED_DETECT_BYTES && looks_like_vocab(data, len)) return VOCAB_STDIN_MAX + 1;
    return cli_stdin_enough(data, len);
}

/* A vocabulary file (tokenizer.json, tiktoken, a vocab.json alone, a
 * merges.txt alone): loaded as `--vocab` loads it, or its error. */
static int inspect_vocab(const char *path, const unsigned char *buf, size_t len, int json) {
    if (len >= 8 && !memcmp(buf, "#version", 8))
        return cli_error("%s: a merges.txt: it is read with its vocab.json (--vocab VOCAB.json --merges FILE)", path);
    if (len > VOCAB_STDIN_MAX)
        return cli_error("%s: more than %zu MiB from a stream: not a vocabulary", path, VOCAB_STDIN_MAX >> 20);
    bpe_error err;
    bpe *v = bpe_load_file_mem((const char *)buf, len, path, NULL, 0, NULL, &err);
    if (!v) return cli_error("%s", err.msg);
    size_t n = bpe_vocab_size(v), ns = bpe_special_count(v);
    if (json) {
        printf("{\"format\":\"vocabulary\",\"file_size\":%zu,\"vocab_size\":%zu,\"max_token_bytes\":%zu,"
               "\"eot_token\":%d,\"special_tokens\":[", len, n, bpe_max_token_bytes(v), bpe_eot_id(v));
        for (size_t k = 0; k < ns; k++) printf("%s%d", k ? "," : "", bpe_special_id(v, k));
        printf("]}\n");
    } else {
        printf("%s: a vocabulary (as --vocab reads it), %zu bytes\n", path, len);
        printf("tokens: %zu, the longest %zu bytes; end-of-text id %d\n", n, bpe_max_token_bytes(v), bpe_eot_id(v));
        printf("special tokens: %zu", ns);
        for (size_t k = 0; k < ns && k < 16; k++) {
            size_t tl;
            const char *t = bpe_token_bytes(v, (uint32_t)bpe_special_id(v, k), &tl);
            char q[200];
            printf("%s %s (id %d)", k ? "," : ":", cli_quote_buf(q, sizeof q, t, tl), bpe_special_id(v, k));
        }
        printf("%s\n", ns > 16 ? ", ..." : "");
    }
    bpe_free(v);
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
    /* >> or 1<> onto the file would write into it */
    const char *inputs[] = {path ? path : "-"};
    if (cli_output_check("inspect", "stdout", "-", inputs, 1, 1))
        return CLI_ERR;
    char q[300];
    const char *shown = path && strcmp(path, "-") ? cli_name(path, q, sizeof q) : "<stdin>";
    unsigned char *data = NULL; /* stdin, read whole */
    void *m = MAP_FAILED;
    size_t len = 0;
    int stdin_rest = 0; /* the ids after data[0..len) are still in stdin */
    if (!path || !strcmp(path, "-")) {
        /* ids are streamed from their first bytes on; other kinds are held whole */
        if (!(data = cli_read_stdin(&len, stdin_enough))) return CLI_ERR;
        stdin_rest = len >= EMBED_DETECT_BYTES && cli_ids_kind(embed_detect(data, len)) && !looks_like_vocab(data, len);
    } else {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return cli_error("%s: cannot open: %s", shown, strerror(errno));
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            return cli_error("%s: not a regular file", shown);
        }
        len = (size_t)st.st_size;
        if (len) {
            cli_mapped(path);
            m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        }
        close(fd);
        if (len && m == MAP_FAILED) return cli_error("%s: cannot map: %s", shown, strerror(errno));
    }
    if (!len) {
        free(data);
        return cli_error("%s is empty: no format to describe", shown);
    }
    const unsigned char *buf = data ? data : m != MAP_FAILED ? m : (const unsigned char *)"";
    embed_kind kind = embed_detect(buf, len);
    int rc;
    if (kind == EMBED_KIND_NPY) {
        rc = inspect_npy(shown, buf, len, json);
    } else if (cli_ids_kind(kind) && !stdin_rest && kind != EMBED_KIND_LLMC_SHARD && looks_like_vocab(buf, len)) {
        rc = inspect_vocab(shown, buf, len, json);
    } else if (cli_ids_kind(kind)) {
        ids_source src = {buf, len, 0, stdin_rest ? stdin : NULL, 0};
        rc = inspect_ids(shown, &src, kind, json);
    } else if (kind == EMBED_KIND_LLMC_TOKENIZER) {
        rc = inspect_llmc_tokenizer(shown, buf, len, json);
    } else {
        /* weights, and everything else: the library's readers name what is wrong */
        embed_error err;
        embed_file *f = embed_open_mem(buf, len, path && strcmp(path, "-") ? path : "<stdin>", &err);
        rc = f ? inspect_model(shown, f, json) : cli_error("%s", err.msg);
        embed_close(f);
    }
    if (m != MAP_FAILED) munmap(m, len);
    free(data);
    return rc;
}
