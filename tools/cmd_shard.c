/* cmd_shard.c - `gpt2in shard`: document collections -> llm.c token shards.
 *
 * Two stages (the contract a distributed driver relies on): --unit tokenizes
 * inputs into a unit (cmd_shard_unit.c), --assemble cuts the concatenation
 * of units into shards and writes the manifest. The one-machine run is one
 * unit per input, then assemble: so every way of running it gives the same
 * bytes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shard.h"

static const char help[] =
    "usage: gpt2in shard --out DIR [OPTIONS] [--] INPUT...\n"
    "       gpt2in shard --unit UNIT [INPUT OPTIONS] [--] INPUT...\n"
    "       gpt2in shard --assemble --out DIR [SHARD OPTIONS] [--units-from LIST] [--] UNIT...\n"
    "\n"
    "Tokenizes document collections into llm.c token shards: DIR/NAME_val_000000.bin,\n"
    "then DIR/NAME_train_000001.bin ... (256 int32 header: 20240520, 1, token count;\n"
    "then uint16 tokens), each document preceded by <|endoftext|> (50256) and encoded\n"
    "as tiktoken's encode_ordinary does (<|endoftext|> inside a document is text),\n"
    "as llm.c's fineweb.py does. DIR/NAME_manifest.json lists the inputs (size,\n"
    "sha256, documents, tokens), the shards (tokens, sha256), the vocabulary and the\n"
    "tool. The shards are the same bytes whatever --threads. A killed run, rerun with\n"
    "the same arguments, keeps what is complete and gives the same result; a shard\n"
    "appears under its name only once complete.\n"
    "\n"
    "The two stages, for running on many machines: --unit writes UNIT (raw uint16\n"
    "tokens) and UNIT.json (its description; the unit is complete once it exists,\n"
    "and is not redone while its inputs are unchanged); --assemble cuts the units,\n"
    "in the order given, into shards. --out DIR alone does both, with units of\n"
    "consecutive whole files of --unit-bytes in DIR/NAME_units/ (removed at the end).\n"
    "\n"
    "input options:\n"
    "  --format F        auto (default): JSON Lines if the name (less .gz, .zst) ends\n"
    "                    in .jsonl, .ndjson or .json (any case), else text; or text, jsonl\n"
    "  --field F         the JSON Lines string field of the document (default text)\n"
    "  --split-lines     text: each line is a document (default: each file); empty\n"
    "                    lines (and blank JSON lines) are no documents\n"
    "  --on-error MODE   a malformed JSON line, a missing or non-string field, invalid\n"
    "                    UTF-8: fail (default, exit 2) or skip the document (counted)\n"
    "  --threads N       threads (default: all cores)\n"
    "Inputs may be gzip or zstd compressed (recognized by their first bytes).\n"
    "\n"
    "shard options:\n"
    "  --name NAME       file name prefix (default corpus)\n"
    "  --shard-tokens N  tokens a shard (default 100000000)\n"
    "  --val-tokens N    tokens of the first, validation shard (default: --shard-tokens)\n"
    "  --unit-bytes N    one-machine run: a unit is closed once its inputs hold N\n"
    "                    bytes on disk (default 128M; K, M, G: powers of 1024); the\n"
    "                    shards are the same whatever N, a killed run redoes one unit\n"
    "  --keep-units      keep DIR/NAME_units/ (one-machine run)\n"
    "  --units-from LIST --assemble: the units also from file LIST, one a line\n"
    "\n"
    "  --quiet           no progress line (shown only on a terminal), no skip messages\n"
    "  -h, --help        this help\n";

/* ---- assembling ----------------------------------------------------------- */

typedef struct {
    const char *path;
    int fd;
    int verified, trusted;
    uint64_t tokens, start;   /* start: its first token's index in the stream */
    char sha[65];
} unit_in;


/* Opens a unit and checks it against its sidecar: its size, and (unless
 * this process has just written it or checked it) its sha256. */
static int verify_unit(unit_in *u) {
    if (u->verified && u->fd >= 0) return 0;
    u->fd = open(u->path, O_RDONLY);
    if (u->fd < 0) return cli_error("%s: cannot open: %s", cli_n(u->path), strerror(errno));
    struct stat st;
    if (u->trusted && !fstat(u->fd, &st) && (uint64_t)st.st_size == 2 * u->tokens) {
        u->verified = 1;
        return 0;
    }
    char hex[65];
    uint64_t total;
    if (shard_file_sha(u->path, hex, &total)) return cli_error("%s: read error: %s", cli_n(u->path), strerror(errno));
    if (total != 2 * u->tokens || strcmp(hex, u->sha))
        return cli_error("%s: its tokens do not match %s.json (%s; redo the unit)", cli_n(u->path), u->path,
                         total != 2 * u->tokens ? "size" : "sha256");
    u->verified = 1;
    return 0;
}

/* A unit the one-machine run did not write now (up to date) holds the
 * tokens its sidecar names: the run does not fsync its units, so one that
 * a crash damaged is redone, not refused. */
static int unit_intact(const char *unit) {
    char *side = malloc(strlen(unit) + 6);
    if (!side) return 0;
    strcat(strcpy(side, unit), ".json");
    json_t *j = shard_json_load(side, NULL);
    free(side);
    json_t *t = json_object_get(j, "tokens"), *sha = json_object_get(j, "tokens_sha256");
    char hex[65];
    uint64_t size;
    int ok = json_is_integer(t) && json_is_string(sha) && !shard_file_sha(unit, hex, &size) &&
             size == 2 * (uint64_t)json_integer_value(t) && !strcmp(hex, json_string_value(sha));
    json_decref(j);
    return ok;
}

/* j, its "inputs" being inputs (shard_inputs_text's), written beside path
 * and fsynced: *f, for shard_rfile_commit. */
static int write_json(shard_rfile *f, const char *path, json_t *j, size_t flags, const shard_buf *inputs) {
    char *txt = shard_dumps(j, flags, inputs);
    if (!txt) return cli_error("out of memory");
    int rc = shard_rfile_open(f, path);
    if (!rc && !(rc = shard_rfile_write(f, path, txt, strlen(txt))) && !(rc = shard_rfile_write(f, path, "\n", 1)))
        rc = shard_rfile_sync(f, path);
    if (rc) shard_rfile_abort(f);
    free(txt);
    return rc;
}

static char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* NAME_val_N.bin or NAME_train_N.bin, N six digits or more (as "%06llu"
 * writes it): 1 (val) or 2 (train), N in *k; otherwise 0. */
static int shard_file_name(const char *d, const char *name, uint64_t *k) {
    size_t nl = strlen(name);
    if (strncmp(d, name, nl) || d[nl] != '_') return 0;
    const char *r = d + nl + 1;
    int split = !strncmp(r, "val_", 4) ? 1 : !strncmp(r, "train_", 6) ? 2 : 0;
    if (!split) return 0;
    r += split == 1 ? 4 : 6;
    size_t nd = strspn(r, "0123456789");
    if (nd < 6 || nd > 19 || strcmp(r + nd, ".bin")) return 0;
    *k = strtoull(r, NULL, 10);
    return split;
}

/* ".X.tmp.XXXXXX", XXXXXX six letters or digits: the name mkstemp gives a
 * temporary of X (shard_rfile_open, embed_writer). X into x (cap bytes);
 * returns 0 when d is not such a name. */
static int temp_of(const char *d, char *x, size_t cap) {
    size_t n = strlen(d);
    if (n < 13 || d[0] != '.' || strncmp(d + n - 11, ".tmp.", 5) ||
        strspn(d + n - 6, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != 6 || n - 12 >= cap)
        return 0;
    memcpy(x, d + 1, n - 12);
    x[n - 12] = 0;
    return 1;
}

/* A file this run writes in DIR (a shard, the manifest), or a temporary of
 * one, as its own temporaries are named. */
static int run_file(const char *d, const char *name, const char *manifest, int temp) {
    char x[512];
    uint64_t k;
    if (temp && !temp_of(d, x, sizeof x)) return 0;
    const char *f = temp ? x : d;
    return !strcmp(f, manifest) || shard_file_name(f, name, &k);
}

/* A unit file of the one-machine run in NAME_units/ (N.tok, N.tok.json, N
 * six digits or more), or a temporary of one. */
static int unit_file(const char *d, int temp) {
    char x[512];
    if (temp && !temp_of(d, x, sizeof x)) return 0;
    const char *f = temp ? x : d;
    size_t nd = strspn(f, "0123456789");
    return nd >= 6 && (!strcmp(f + nd, ".tok") || !strcmp(f + nd, ".tok.json"));
}

/* Removes the regular files of directory dir whose names pick(name, arg) takes. */
static void remove_files(const char *dir, int (*pick)(const char *, const void *), const void *arg) {
    DIR *dh = opendir(dir);
    if (!dh) return;
    struct dirent *e;
    while ((e = readdir(dh))) {
        struct stat st;
        if (pick(e->d_name, arg) && !fstatat(dirfd(dh), e->d_name, &st, AT_SYMLINK_NOFOLLOW) && S_ISREG(st.st_mode))
            unlinkat(dirfd(dh), e->d_name, 0);
    }
    closedir(dh);
}

static int is_run_temp(const char *d, const void *name) {
    char manifest[300];
    snprintf(manifest, sizeof manifest, "%s_manifest.json", (const char *)name);
    return d[0] == '.' && run_file(d, name, manifest, 1);
}

/* Once the shards are complete: the temporaries a killed run left
 * (.NAME_*.tmp.XXXXXX of a shard or the manifest, as this run names its
 * own), and nothing else. (An earlier run's shards this one does not
 * keep went before its first manifest: shard_assemble.) */
static void tidy_dir(const char *dir, const char *name) { remove_files(dir, is_run_temp, name); }

static void fsync_dir(const char *dir) {
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) fsync(dfd), close(dfd);
}

/* Shard k's tokens [a, b) of the stream, after its header, into f (path:
 * its final name). */
static int copy_tokens(unit_in *u, int nu, uint64_t a, uint64_t b, shard_rfile *f, const char *path, shard_sha *s) {
    static char buf[1 << 20];
    uint64_t written = 1024, synced = 1024;   /* after the header */
    for (int i = 0; i < nu && a < b; i++) {
        uint64_t ua = u[i].start, ub = u[i].start + u[i].tokens;
        if (ub <= a || ua >= b) continue;
        if (verify_unit(&u[i])) return CLI_ERR;
        uint64_t from = (a > ua ? a : ua) - ua, to = (b < ub ? b : ub) - ua;
        for (uint64_t t = from; t < to;) {
            size_t want = (size_t)((to - t) * 2 < sizeof buf ? (to - t) * 2 : sizeof buf);
            ssize_t n = pread(u[i].fd, buf, want, (off_t)(t * 2));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0 || n % 2) return cli_error("%s: read error: %s", cli_n(u[i].path), n < 0 ? strerror(errno) : "short file");
            if (shard_rfile_write(f, path, buf, (size_t)n)) return CLI_ERR;
            shard_sha_update(s, buf, (size_t)n);
            if ((written += (uint64_t)n) - synced >= SHARD_WRITEBACK) {   /* (its fsync then waits less) */
                sync_file_range(f->fd, (off_t)synced, (off_t)(written - synced), SYNC_FILE_RANGE_WRITE);
                synced = written;
            }
            t += (uint64_t)n / 2;
        }
        if (ub <= b) {   /* shards are cut in order: one unit open at a time, whatever their number */
            close(u[i].fd);
            u[i].fd = -1;
        }
        a = ub;
    }
    return 0;
}

/* tee: the one-machine run's shards, already written from its fresh
 * units (or NULL): renamed, not copied. */
/* A sidecar's input entries as records (their paths stay in j). */
static int parse_inputs(json_t *in, shard_input **all, size_t *nall, size_t *cap) {
    size_t k;
    json_t *e;
    json_array_foreach(in, k, e) {
        if (*nall == *cap) {
            size_t c = *cap ? 2 * *cap : 256;
            shard_input *q = realloc(*all, c * sizeof *q);
            if (!q) return -2;
            *all = q;
            *cap = c;
        }
        shard_input *r = &(*all)[*nall];
        json_t *path = json_object_get(e, "path"), *sha = json_object_get(e, "sha256"),
               *tsha = json_object_get(e, "tokens_sha256");
        static const char *const ints[] = {"size", "documents", "skipped", "tokens"};
        uint64_t *dst[] = {&r->size, &r->documents, &r->skipped, &r->tokens};
        if (!json_is_string(path) || strlen(json_string_value(path)) != json_string_length(path) ||
            !json_is_string(sha) || json_string_length(sha) > 64 || !json_is_string(tsha) ||
            json_string_length(tsha) > 64)
            return -1;
        for (int f = 0; f < 4; f++) {
            json_t *v = json_object_get(e, ints[f]);
            if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
            *dst[f] = (uint64_t)json_integer_value(v);
        }
        r->path = json_string_value(path);
        r->mtime_ns = 0;
        strcpy(r->sha256, json_string_value(sha));
        strcpy(r->tokens_sha256, json_string_value(tsha));
        (*nall)++;
    }
    return 0;
}

/* An earlier manifest's "inputs" are these (as shard_inputs_text writes them). */
static int same_inputs(json_t *a, const shard_input *in, size_t n) {
    if (!json_is_array(a) || json_array_size(a) != n) return 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(a, i), *p = json_object_get(e, "path");
        if (json_object_size(e) != 7 || !json_is_string(p) || strcmp(json_string_value(p), in[i].path) ||
            json_string_length(p) != strlen(in[i].path))
            return 0;
        static const char *const ints[] = {"size", "documents", "skipped", "tokens"};
        const uint64_t v[] = {in[i].size, in[i].documents, in[i].skipped, in[i].tokens};
        for (int f = 0; f < 4; f++) {
            json_t *x = json_object_get(e, ints[f]);
            if (!json_is_integer(x) || json_integer_value(x) < 0 || (uint64_t)json_integer_value(x) != v[f]) return 0;
        }
        const char *s1 = json_string_value(json_object_get(e, "sha256")),
                   *s2 = json_string_value(json_object_get(e, "tokens_sha256"));
        if (!s1 || !s2 || strcmp(s1, in[i].sha256) || strcmp(s2, in[i].tokens_sha256)) return 0;
    }
    return 1;
}

/* info[i].in: unit i's sidecar as the one-machine run has just written it
 * (not read back); NULL: read. */
static int shard_assemble(const char *dir, const char *name, uint64_t S, uint64_t V, char **units,
                          const int *fresh, const shard_unit_info *info, int nu, const shard_opts *o,
                          shard_tee *tee) {
    unit_in *u = calloc((size_t)nu, sizeof *u);
    json_t **sides = calloc((size_t)nu + 1, sizeof *sides);   /* the sidecars read (their paths) */
    json_t *inputs = json_array(), *vocab = NULL, *opts = NULL, *man = NULL, *old = NULL, *shards = NULL;
    shard_input *all = NULL;
    size_t nall = 0, allcap = 0;
    shard_buf itext = {0};
    char *man_path = NULL, *fname = NULL;
    uint64_t docs = 0, skipped = 0, tokens = 0;
    int rc = 0;
    if (!u || !sides || !inputs) {
        rc = cli_error("out of memory");
        goto done;
    }
    for (int i = 0; i < nu; i++) u[i].fd = -1;
    for (int i = 0; i < nu && !rc; i++) {
        if (info && info[i].in) {   /* its vocabulary and options are this run's */
            if (!vocab && (!(vocab = shard_vocab_json()) || !(opts = shard_options_json(o)))) {
                rc = cli_error("out of memory");
                break;
            }
            if (nall + info[i].nin > allcap) {
                size_t c = allcap ? 2 * allcap : 256;
                while (c < nall + info[i].nin) c *= 2;
                shard_input *q = realloc(all, c * sizeof *q);
                if (!q) {
                    rc = cli_error("out of memory");
                    break;
                }
                all = q;
                allcap = c;
            }
            memcpy(all + nall, info[i].in, info[i].nin * sizeof *all);
            nall += info[i].nin;
            u[i].path = units[i];
            u[i].trusted = 1;
            u[i].tokens = info[i].tokens;
            u[i].start = tokens;
            memcpy(u[i].sha, info[i].tokens_sha256, sizeof u[i].sha);
            tokens += info[i].tokens;
            docs += info[i].documents;
            skipped += info[i].skipped;
            continue;
        }
        char *side = malloc(strlen(units[i]) + 6);
        if (!side) {
            rc = cli_error("out of memory");
            break;
        }
        strcat(strcpy(side, units[i]), ".json");
        json_error_t je;
        json_t *j = shard_json_load(side, &je);
        json_t *t = j ? json_object_get(j, "tokens") : NULL, *sha = j ? json_object_get(j, "tokens_sha256") : NULL,
               *in = j ? json_object_get(j, "inputs") : NULL;
        if (!j) {
            rc = access(side, F_OK) ? cli_error("%s: not a complete unit (no %s)", cli_n(units[i]), side)
                                    : cli_error("%s: %s", side, je.text);
        } else if (!json_is_string(json_object_get(j, "format")) ||
                   strcmp(json_string_value(json_object_get(j, "format")), "gpt2in-unit") ||
                   !json_is_integer(t) || json_integer_value(t) < 0 || !json_is_string(sha) ||
                   strlen(json_string_value(sha)) != 64 || !json_is_array(in)) {
            rc = cli_error("%s: not a gpt2in unit description", side);
        } else if (!vocab) {
            vocab = json_incref(json_object_get(j, "vocabulary"));
            opts = json_incref(json_object_get(j, "options"));
        } else if (!json_equal(vocab, json_object_get(j, "vocabulary")) ||
                   !json_equal(opts, json_object_get(j, "options"))) {
            rc = cli_error("%s: made with other options or another vocabulary than %s", cli_n(units[i]),
                           units[0]);
        }
        if (!rc) {
            u[i].path = units[i];
            u[i].trusted = fresh && fresh[i];
            u[i].tokens = (uint64_t)json_integer_value(t);
            u[i].start = tokens;
            strcpy(u[i].sha, json_string_value(sha));
            tokens += u[i].tokens;
            docs += (uint64_t)json_integer_value(json_object_get(j, "documents"));
            skipped += (uint64_t)json_integer_value(json_object_get(j, "skipped"));
            int bad = parse_inputs(in, &all, &nall, &allcap);
            if (bad == -2) rc = cli_error("out of memory");
            else if (bad) rc = cli_error("%s: not a gpt2in unit description", side);
        }
        sides[i] = j;
        free(side);
    }
    if (rc) goto done;
    if (!vocab) {   /* no units: never here (one at least), but safe */
        vocab = shard_vocab_json();
        opts = shard_options_json(o);
    }

    /* The plan: [0, V), then S tokens a shard. */
    uint64_t nshards = 0;
    if (tokens) nshards = tokens <= V ? 1 : 1 + (tokens - V + S - 1) / S;
    man_path = malloc(strlen(dir) + strlen(name) + 64);
    fname = malloc(strlen(name) + 64);
    unsigned char *keep = calloc(nshards + 1, 1);
    json_t **entries = calloc(nshards + 1, sizeof *entries);
    if (!man_path || !fname || !keep || !entries) {
        free(keep);
        free(entries);
        rc = cli_error("out of memory");
        goto done;
    }
    sprintf(man_path, "%s/%s_manifest.json", dir, name);
    uint64_t tee_tokens, tee_shards;
    if (tee && (shard_tee_finish(tee, &tee_tokens, &tee_shards) || tee_tokens != tokens || tee_shards != nshards))
        tee = NULL;   /* (never: the units are those tokens) copied from the units */

    shard_inputs_text(&itext, all, nall, 1);
    if (itext.oom) {
        free(keep);
        free(entries);
        rc = cli_error("out of memory");
        goto done;
    }
    man = json_pack("{s:s, s:i, s:s, s:O, s:O, s:s, s:I, s:I, s:O, s:I, s:I, s:I}", "format", "gpt2in-shards",
                    "version", 1, "tool", SHARD_TOOL, "vocabulary", vocab, "options", opts, "name", name,
                    "shard_tokens", (json_int_t)S, "val_tokens", (json_int_t)V, "inputs", inputs, "documents",
                    (json_int_t)docs, "skipped", (json_int_t)skipped, "tokens", (json_int_t)tokens);
    shards = json_array();
    if (!man || !shards) {
        free(keep);
        free(entries);
        rc = cli_error("out of memory");
        goto done;
    }

    /* Resuming: what an earlier run of the same job recorded, checked. */
    old = shard_json_load(man_path, NULL);
    if (old) {
        static const char *const same[] = {"format", "version", "vocabulary", "options", "name", "shard_tokens",
                                           "val_tokens"};
        int ok = same_inputs(json_object_get(old, "inputs"), all, nall);
        for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
            ok = ok && json_equal(json_object_get(old, same[i]), json_object_get(man, same[i]));
        size_t k;
        json_t *e;
        json_array_foreach(ok ? json_object_get(old, "shards") : NULL, k, e) {
            const char *file = json_string_value(json_object_get(e, "file"));
            const char *sha = json_string_value(json_object_get(e, "sha256"));
            json_t *t = json_object_get(e, "tokens");
            for (uint64_t s = 0; file && sha && json_is_integer(t) && s < nshards; s++) {
                uint64_t a = s ? V + (s - 1) * S : 0, b = s ? a + S : V;
                if (b > tokens) b = tokens;
                sprintf(fname, "%s_%s_%06llu.bin", name, s ? "train" : "val", (unsigned long long)s);
                if (strcmp(fname, file) || (uint64_t)json_integer_value(t) != b - a || keep[s]) continue;
                char *p = path_join(dir, fname), hex[65];
                uint64_t size;
                if (p && !shard_file_sha(p, hex, &size) && size == 1024 + 2 * (b - a) && !strcmp(hex, sha)) {
                    keep[s] = 1;
                    entries[s] = json_deep_copy(e);
                }
                free(p);
            }
        }
        /* The earlier run's shards this one does not keep go now, before
         * this run's first manifest: every file under a shard's name in DIR
         * is then one that the manifest there records (check_out_dir
         * refuses any other), whenever the run is killed. */
        const char *fmt = json_string_value(json_object_get(old, "format"));
        json_array_foreach(fmt && !strcmp(fmt, "gpt2in-shards") ? json_object_get(old, "shards") : NULL, k, e) {
            const char *file = json_string_value(json_object_get(e, "file"));
            uint64_t n;
            int split = file ? shard_file_name(file, name, &n) : 0;
            if (!split || (n < nshards && keep[n] && (split == 1) == (n == 0))) continue;
            char *p = path_join(dir, file);
            if (p) unlink(p);
            free(p);
        }
    }

    /* Each shard is named in a manifest before it is renamed into place:
     * a kill leaves no shard that no manifest records. */
    shard_rfile last = {-1, NULL, 0};   /* the last shard, copied from the units */
    char *last_path = NULL;
    for (uint64_t s = 0; s < nshards && !rc; s++) {
        uint64_t a = s ? V + (s - 1) * S : 0, b = s ? a + S : V;
        if (b > tokens) b = tokens;
        if (keep[s]) continue;
        sprintf(fname, "%s_%s_%06llu.bin", name, s ? "train" : "val", (unsigned long long)s);
        char *p = path_join(dir, fname), hex[65];
        uint64_t n = b - a;
        shard_rfile sf = {-1, NULL, 0};
        if (!p) {
            rc = cli_error("out of memory");
        } else if (tee) {
            rc = shard_tee_sha(tee, s, hex, &n);
        } else {
            if (o->progress)
                fprintf(stderr, "\r\033[Kgpt2in: shard: writing %s (%llu of %llu)", fname, (unsigned long long)s + 1,
                        (unsigned long long)nshards);
            shard_sha sh;
            if (shard_sha_init(&sh)) {
                rc = cli_error("out of memory");
            } else {
                unsigned char h[1024] = {0};
                const uint32_t hv[3] = {20240520, 1, (uint32_t)(b - a)};
                for (int i = 0; i < 3; i++)
                    for (int k = 0; k < 4; k++) h[4 * i + k] = (unsigned char)(hv[i] >> (8 * k));
                shard_sha_update(&sh, h, sizeof h);
                if (!(rc = shard_rfile_open(&sf, p)) && !(rc = shard_rfile_write(&sf, p, h, sizeof h)) &&
                    !(rc = copy_tokens(u, nu, a, b, &sf, p, &sh)))
                    rc = shard_rfile_sync(&sf, p);
                if (rc) shard_rfile_abort(&sf);
                shard_sha_hex(&sh, hex);
            }
        }
        if (!rc && !(entries[s] = json_pack("{s:s, s:s, s:I, s:s}", "file", fname, "split", s ? "train" : "val",
                                            "tokens", (json_int_t)n, "sha256", hex)))
            rc = cli_error("out of memory");
        if (!rc && s + 1 == nshards) {   /* renamed with the final manifest */
            last = sf;
            last_path = p;
            break;
        }
        /* The manifest so far: what a killed run leaves for the next one;
         * then the shard under its name (made durable by the next
         * manifest's fsync of the directory). */
        if (!rc) {
            json_array_clear(shards);
            for (uint64_t k = 0; k < nshards; k++)
                if (entries[k]) json_array_append(shards, entries[k]);
            json_object_set(man, "shards", shards);
            json_object_set_new(man, "complete", json_false());
            shard_rfile mf;
            if (!(rc = write_json(&mf, man_path, man, JSON_INDENT(2), &itext))) rc = shard_rfile_commit(&mf, man_path, 1);
        }
        if (!rc) rc = tee ? shard_tee_commit(tee, s, hex, &n) : shard_rfile_commit(&sf, p, 2);
        else shard_rfile_abort(&sf);
        free(p);
    }
    if (!rc) {
        json_array_clear(shards);
        for (uint64_t k = 0; k < nshards; k++) json_array_append(shards, entries[k]);
        json_object_set(man, "shards", shards);
        json_object_set_new(man, "complete", json_true());
        shard_rfile mf;
        rc = write_json(&mf, man_path, man, JSON_INDENT(2), &itext);
        /* The manifest, then the last shard; then one fsync of the directory
         * makes both renames durable (and the shards' before them). A crash
         * between them loses at most the shard's rename: the rerun writes
         * that shard again. */
        char hex[65];
        uint64_t n;
        int lastnew = nshards && !keep[nshards - 1];
        if (!rc) rc = shard_rfile_commit(&mf, man_path, lastnew ? 2 : 1);
        if (!rc && lastnew) {
            rc = tee ? shard_tee_commit(tee, nshards - 1, hex, &n) : shard_rfile_commit(&last, last_path, 2);
            fsync_dir(dir);
        }
    }
    shard_rfile_abort(&last);
    free(last_path);
    if (o->progress) fputs("\r\033[K", stderr);
    if (!rc) tidy_dir(dir, name);
    for (uint64_t k = 0; k < nshards; k++) json_decref(entries[k]);
    free(entries);
    free(keep);
done:
    for (int i = 0; u && i < nu; i++)
        if (u[i].fd >= 0) close(u[i].fd);
    free(u);
    for (int i = 0; sides && i < nu; i++) json_decref(sides[i]);
    free(sides);
    free(all);
    free(itext.p);
    free(man_path);
    free(fname);
    json_decref(inputs);
    json_decref(vocab);
    json_decref(opts);
    json_decref(man);
    json_decref(old);
    json_decref(shards);
    return rc;
}

/* ---- the command ------------------------------------------------------------ */

static int make_dir(const char *d) {
    if (!mkdir(d, 0777) || errno == EEXIST) {
        struct stat st;
        if (!stat(d, &st) && S_ISDIR(st.st_mode)) return 0;
        return cli_error("%s: not a directory", cli_n(d));
    }
    return cli_error("%s: cannot create the directory: %s", cli_n(d), strerror(errno));
}

static int is_unit_file(const char *d, const void *arg) {
    (void)arg;
    return unit_file(d, d[0] == '.');
}

/* Removes the one-machine run's unit directory: its own files only (units,
 * sidecars, their temporaries); the directory stays if anything else is in
 * it. */
static void remove_units(const char *d) {
    remove_files(d, is_unit_file, NULL);
    rmdir(d);
}

/* --units-from FILE: one unit a line (empty lines ignored), after the
 * operands: a job of many units needs no long command line. */
static int read_units(const char *path, char ***ops, int *nops, char **list) {
    FILE *f = fopen(path, "rb");
    if (!f) return cli_error("%s: cannot open: %s", cli_n(path), strerror(errno));
    size_t cap = 1 << 16, len = 0, got;
    char *t = malloc(cap + 1);
    while (t && (got = fread(t + len, 1, cap - len, f)) > 0) {
        if ((len += got) < cap) continue;
        char *u = realloc(t, 2 * cap + 1);
        if (!u) free(t);
        t = u;
        cap *= 2;
    }
    int err = !t || ferror(f);
    fclose(f);
    if (err) {
        free(t);
        return cli_error("%s: cannot read the list of units", cli_n(path));
    }
    size_t lines = (size_t)*nops + 1;
    for (size_t i = 0; i < len; i++) lines += t[i] == '\n';
    char **o = realloc(*ops, lines * sizeof *o);
    if (!o) {
        free(t);
        return cli_error("out of memory");
    }
    *ops = o;
    for (char *p = t, *end = t + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        *nl = 0;
        if (*p) o[(*nops)++] = p;
        p = nl + 1;
    }
    *list = t;
    return 0;
}

/* The manifest and the units' sidecars record input names as JSON strings,
 * which are UTF-8: another name is refused before anything is written. */
/* A size: digits, then K, M, G or T (powers of 1024), then an optional
 * "i" and "B" (as the Dask driver's --unit-bytes: 64M, 1GiB). */
static int parse_size(const char *s, uint64_t *out) {
    uint64_t n = 0;
    const char *p = s;
    if (*p < '0' || *p > '9') return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (UINT64_MAX - 9) / 10) return -1;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    static const char units[] = "kmgt";
    const char *u = *p ? strchr(units, *p | 0x20) : NULL;
    if (u) {
        for (int k = 0; k <= u - units; k++) {
            if (n > UINT64_MAX / 1024) return -1;
            n *= 1024;
        }
        p++;
    }
    if (*p == 'i' && u) p++;
    if (*p == 'b' || *p == 'B') p++;
    if (*p || !n) return -1;
    *out = n;
    return 0;
}

static int check_names(char *const *names, int n) {
    for (int i = 0; i < n; i++) {
        json_t *s = json_string(names[i]);
        if (!s)
            return cli_error("%s: the file name is not UTF-8, and the manifest records names as JSON strings: "
                             "rename the file", cli_n(names[i]));
        json_decref(s);
    }
    return 0;
}

/* A file's identity, and which input it is. */
typedef struct {
    dev_t dev;
    ino_t ino;
    int input;
} file_id;

static int file_id_cmp(const void *a, const void *b) {
    const file_id *x = a, *y = b;
    if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
    return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* The input that is the file `entry` of directory dir, or -1. */
static int input_at(const char *dir, const char *entry, const file_id *ids, size_t n) {
    char *p = path_join(dir, entry);
    struct stat st;
    const file_id *hit = NULL;
    if (p && !stat(p, &st)) {
        file_id key = {st.st_dev, st.st_ino, 0};
        hit = bsearch(&key, ids, n, sizeof *ids, file_id_cmp);
    }
    free(p);
    return hit ? hit->input : -1;
}

/* The one line for an input that is the file `entry` of dir, which this run
 * writes or removes (what): named as given, and as the run names it where
 * the two differ (a symlink, a hard link, another spelling). */
static int refuse_input(const char *given, const char *dir, const char *entry, const char *what,
                        const char *advice) {
    char *as = path_join(dir, entry);
    int rc = as && strcmp(as, given)
                 ? cli_error("input %s is %s, %s; move it out of %s%s", cli_n(given), cli_n(as), what, cli_n(dir), advice)
                 : cli_error("input %s is %s; move it out of %s%s", cli_n(given), what, cli_n(dir), advice);
    free(as);
    return rc;
}

static int names_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* What DIR may hold before the run writes anything: the run replaces or
 * removes only what it can show a run of this tool wrote. So a manifest
 * there must be one (it is replaced), every file named as a shard must be
 * one that it records (an earlier run's: kept, replaced or removed), and
 * NAME_units must be a directory; any other such file is refused by name,
 * not touched. And an input that is one of the files the run writes or
 * removes (NAME_*.bin, the manifest, the temporaries of either as the run
 * names its own, and for a whole run the units in NAME_units/ and theirs),
 * under any name (a symlink, a hard link), is refused, as every other
 * writer refuses its own input. Each input and each such file is stat'ed
 * once. */
static int check_out_dir(const char *dir, const char *name, char *const *ops, int n, int with_units) {
    DIR *dh = opendir(dir);
    if (!dh) return 0;   /* a new directory holds nothing of the run's */
    file_id *ids = malloc(((size_t)n + 1) * sizeof *ids);
    char manifest[300], units[300];
    snprintf(manifest, sizeof manifest, "%s_manifest.json", name);
    snprintf(units, sizeof units, "%s_units", name);
    char *man_path = path_join(dir, manifest);
    const char **rec = NULL;   /* the shards the manifest records, sorted */
    size_t nrec = 0;
    json_t *man = NULL;
    int rc = 0, k;
    if (!ids || !man_path) {
        rc = cli_error("out of memory");
        goto done;
    }
    struct stat st;
    int foreign_man = 0;   /* (said once no input is found to be a file of the run: that says more) */
    char *foreign = NULL;  /* a file named as a shard that the manifest does not record */
    if (!lstat(man_path, &st)) {
        man = S_ISREG(st.st_mode) ? shard_json_load(man_path, NULL) : NULL;
        const char *fmt = json_string_value(json_object_get(man, "format"));
        json_t *sh = json_object_get(man, "shards");
        foreign_man = !fmt || strcmp(fmt, "gpt2in-shards") || !json_is_array(sh);
        if (foreign_man) {
            json_decref(man);
            man = NULL;
        } else if (!(rec = malloc((json_array_size(sh) + 1) * sizeof *rec))) {
            rc = cli_error("out of memory");
            goto done;
        }
        size_t i;
        json_t *e;
        json_array_foreach(man ? sh : NULL, i, e) {
            const char *f = json_string_value(json_object_get(e, "file"));
            if (f) rec[nrec++] = f;
        }
        if (nrec) qsort(rec, nrec, sizeof *rec, names_cmp);
    }
    size_t ni = 0;
    for (int i = 0; i < n; i++) {
        struct stat in;
        if (!stat(ops[i], &in) && S_ISREG(in.st_mode)) ids[ni++] = (file_id){in.st_dev, in.st_ino, i};
    }
    qsort(ids, ni, sizeof *ids, file_id_cmp);
    size_t nl = strlen(name);
    struct dirent *e;
    while (!rc && (e = readdir(dh))) {
        const char *d = e->d_name;
        size_t dl = strlen(d);
        uint64_t num;
        if (!foreign && shard_file_name(d, name, &num) && !(nrec && bsearch(&d, rec, nrec, sizeof *rec, names_cmp)) &&
            !(foreign = path_join(dir, d))) {
            rc = cli_error("out of memory");
        } else if (!strcmp(d, manifest) ||
                   (!strncmp(d, name, nl) && d[nl] == '_' && dl > nl + 5 && !strcmp(d + dl - 4, ".bin"))) {
            if ((k = input_at(dir, d, ids, ni)) >= 0)
                rc = refuse_input(ops[k], dir, d, "a file this run writes", " or choose another --name");
        } else if (d[0] == '.' && run_file(d, name, manifest, 1)) {
            if ((k = input_at(dir, d, ids, ni)) >= 0)
                rc = refuse_input(ops[k], dir, d, "a temporary file a killed run left, which this run removes", "");
        } else if (with_units && !strcmp(d, units)) {
            char *ud = path_join(dir, d);
            if (ud && (stat(ud, &st) || !S_ISDIR(st.st_mode))) {
                rc = cli_error("%s: not a directory, and this run keeps its work units there; move it out of %s "
                               "or choose another --name", cli_n(ud), cli_n(dir));
                free(ud);
                break;
            }
            DIR *uh = ud ? opendir(ud) : NULL;
            struct dirent *u;
            while (uh && !rc && (u = readdir(uh)))
                if (unit_file(u->d_name, u->d_name[0] == '.') && (k = input_at(ud, u->d_name, ids, ni)) >= 0)
                    rc = cli_error("%s is %s/%s, a %s this run writes or removes; move it out of %s", cli_n(ops[k]),
                                   ud, u->d_name, u->d_name[0] == '.' ? "temporary file" : "work unit", ud);
            if (uh) closedir(uh);
            free(ud);
        }
    }
    if (!rc && foreign_man)
        rc = cli_error("%s: not a manifest of gpt2in shard, and this run writes its manifest there; move it out "
                       "of %s or choose another --name", cli_n(man_path), cli_n(dir));
    else if (!rc && foreign)
        rc = cli_error("%s: named as this run's shards, but no manifest in %s records it (no run of gpt2in shard "
                       "left it); move it out of %s or choose another --name", cli_n(foreign), cli_n(dir), cli_n(dir));
    free(foreign);
done:
    free(rec);
    json_decref(man);
    free(man_path);
    free(ids);
    closedir(dh);
    return rc;
}

int cmd_shard(int argc, char **argv) {
    shard_opts o = {SHARD_FMT_AUTO, "text", 0, 0, 0, 0, 0, 0, NULL, 0};
    const char *out = NULL, *unit = NULL, *name = "corpus", *units_from = NULL;
    int assemble = 0, keep_units = 0, bad = 0, operands = 0, input_opt = 0, shard_opt = 0;
    uint64_t S = 100000000, V = 0, threads = 0, unit_bytes = (uint64_t)128 << 20;
    char **ops = calloc((size_t)argc, sizeof *ops);
    char *list = NULL;   /* --units-from's text, which ops[] then point into */
    int nops = 0;
    if (!ops) return cli_error("out of memory");
    int rc = CLI_OK;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i], *val;
        int kind = cli_arg(a, &operands, help, NULL);
        if (kind == CLI_ARG_HELP) {
            free(ops);
            return CLI_OK;
        }
        if (kind == CLI_ARG_SKIP) continue;
        if (kind == CLI_ARG_OPERAND) {
            ops[nops++] = argv[i];
        } else if (!strcmp(a, "--assemble")) {
            assemble = 1;
        } else if (!strcmp(a, "--split-lines")) {
            o.split_lines = 1;
            input_opt = 1;
        } else if (!strcmp(a, "--quiet")) {
            o.quiet = 1;
        } else if (!strcmp(a, "--keep-units")) {
            keep_units = 1;
            shard_opt = 1;
        } else if ((val = cli_opt(argc, argv, &i, "--out", &bad))) {
            out = val;
        } else if ((val = cli_opt(argc, argv, &i, "--unit-bytes", &bad))) {
            shard_opt = 1;
            if (parse_size(val, &unit_bytes))
                rc = cli_error("--unit-bytes: %s is not a size (a number of bytes, or with K, M, G, T)", cli_q(val));
        } else if ((val = cli_opt(argc, argv, &i, "--units-from", &bad))) {
            units_from = val;
        } else if ((val = cli_opt(argc, argv, &i, "--unit", &bad))) {
            unit = val;
        } else if ((val = cli_opt(argc, argv, &i, "--name", &bad))) {
            name = val;
            shard_opt = 1;
            int okname = *val != 0;
            for (const char *p = val; *p; p++)
                okname = okname && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                                    *p == '-' || *p == '_' || *p == '.');
            if (!okname || *val == '.') rc = cli_error("--name: %s is not a name (letters, digits, - _ .)", cli_q(val));
        } else if ((val = cli_opt(argc, argv, &i, "--format", &bad))) {
            input_opt = 1;
            if (!strcmp(val, "auto")) o.format = SHARD_FMT_AUTO;
            else if (!strcmp(val, "text")) o.format = SHARD_FMT_TEXT;
            else if (!strcmp(val, "jsonl")) o.format = SHARD_FMT_JSONL;
            else rc = cli_error("--format: %s is not one of auto, text, jsonl", cli_q(val));
        } else if ((val = cli_opt(argc, argv, &i, "--field", &bad))) {
            o.field = val;
            input_opt = 1;
        } else if ((val = cli_opt(argc, argv, &i, "--on-error", &bad))) {
            input_opt = 1;
            if (!strcmp(val, "skip")) o.skip_errors = 1;
            else if (!strcmp(val, "fail")) o.skip_errors = 0;
            else rc = cli_error("--on-error: %s is not one of skip, fail", cli_q(val));
        } else if ((val = cli_opt(argc, argv, &i, "--threads", &bad))) {
            if (cli_parse_u64(val, &threads) || threads > 64)
                rc = cli_error("--threads: %s is not a number of threads (0..64)", cli_q(val));
        } else if ((val = cli_opt(argc, argv, &i, "--shard-tokens", &bad))) {
            shard_opt = 1;
            if (cli_parse_u64(val, &S) || S < 1 || S > INT32_MAX)
                rc = cli_error("--shard-tokens: %s is not a number of tokens (1..2147483647)", cli_q(val));
        } else if ((val = cli_opt(argc, argv, &i, "--val-tokens", &bad))) {
            shard_opt = 1;
            if (cli_parse_u64(val, &V) || V < 1 || V > INT32_MAX)
                rc = cli_error("--val-tokens: %s is not a number of tokens (1..2147483647)", cli_q(val));
        } else if (bad) {
            rc = CLI_ERR;
        } else {
            rc = cli_unknown_option(argv[0], a, CLI_ARG_OPTION);
        }
    }
    if (!rc && bad) rc = CLI_ERR;
    if (!V) V = S;
    if (!threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (uint64_t)(n > 64 ? 64 : n) : 1;
    }
    o.threads = (int)threads;
    o.progress = !o.quiet && isatty(2);
    if (rc) {
    } else if (unit && (assemble || out)) {
        rc = cli_error("shard: --unit takes no --out or --assemble (see 'gpt2in shard --help')");
    } else if (unit && shard_opt) {
        rc = cli_error("shard: --name, --shard-tokens, --val-tokens, --unit-bytes and --keep-units are for --out");
    } else if (assemble && input_opt) {
        rc = cli_error("shard: --assemble takes the units' options from them: no --format, --field, "
                       "--split-lines or --on-error");
    } else if (units_from && !assemble) {
        rc = cli_error("shard: --units-from is an option of --assemble");
    } else if (units_from && (rc = read_units(units_from, &ops, &nops, &list))) {
    } else if (!unit && !out) {
        rc = cli_error("shard: --out DIR is needed (see 'gpt2in shard --help')");
    } else if (!nops) {
        rc = cli_error("shard: no %s", assemble ? "unit" : "input file");
    } else if (!assemble && (rc = check_names(ops, nops))) {
    } else if (out && (rc = check_out_dir(out, name, ops, nops, !assemble))) {
    } else if (unit) {
        shard_progress_total(0);
        int fresh;
        int used;
        rc = shard_unit(unit, (const char *const *)ops, nops, 0, &o, &fresh, NULL, &used);
        shard_progress_end();
    } else if (assemble) {
        rc = make_dir(out);
        if (!rc) rc = shard_assemble(out, name, S, V, ops, NULL, NULL, nops, &o, NULL);
    } else {
        char sub[300];
        snprintf(sub, sizeof sub, "%s_units", name);
        char *ud = path_join(out, sub);
        char **units = calloc((size_t)nops, sizeof *units);
        int *fresh = calloc((size_t)nops, sizeof *fresh), *first = calloc((size_t)nops + 1, sizeof *first);
        shard_unit_info *info = calloc((size_t)nops, sizeof *info);
        if (!ud || !units || !fresh || !first || !info) rc = cli_error("out of memory");
        if (!rc) rc = make_dir(out);   /* (ud: with its first unit file) */
        /* Consecutive inputs share a unit until it holds unit_bytes (as the
         * Dask driver groups them): a unit's fixed costs (its sidecar, the
         * fsyncs) are paid once, not once a file. Unit NNNNNN.tok starts at
         * input NNNNNN. The units are made as they come (shard_unit closes
         * one by the fstat each input gets anyway), unless the progress
         * line wants the total first: a stat an input is a syscall more
         * than a small input costs to read. */
        uint64_t total = 0, acc = 0;
        int nu = 0, planned = o.progress;
        for (int i = 0; !rc && planned && i < nops; i++) {
            struct stat st;
            int known = !stat(ops[i], &st) && S_ISREG(st.st_mode);
            if (total != UINT64_MAX && known) total += (uint64_t)st.st_size;
            else total = UINT64_MAX;
            acc += known ? (uint64_t)st.st_size : 0;
            if (acc >= unit_bytes || i == nops - 1) {
                first[++nu] = i + 1;
                acc = 0;
            }
        }
        shard_progress_total(total == UINT64_MAX ? 0 : total);
        o.in_run = 1;
        shard_tee *tee = rc ? NULL : shard_tee_new(out, name, S, V);
        o.tee = tee;
        for (int k = 0; !rc && first[k] < nops; k++) {
            char nm[32];
            snprintf(nm, sizeof nm, "%06d.tok", first[k]);
            if (!(units[k] = path_join(ud, nm))) {
                rc = cli_error("out of memory");
                break;
            }
            if (!planned) nu = k + 1;
            const char *const *in = (const char *const *)&ops[first[k]];
            int n = planned ? first[k + 1] - first[k] : nops - first[k], used = 0;
            uint64_t group = planned ? 0 : unit_bytes;
            o.to_end = !keep_units && (!planned || first[k + 1] == nops);
            rc = shard_unit(units[k], in, n, group, &o, &fresh[k], &info[k], &used);
            if (!planned) first[k + 1] = first[k] + used;
            if (rc || fresh[k]) continue;
            /* Up to date: the shards are cut from the units after all. */
            shard_tee_free(tee);
            o.tee = tee = NULL;
            if (unit_intact(units[k])) {
                fresh[k] = 1;   /* checked: --assemble need not again */
                continue;
            }
            char *side = malloc(strlen(units[k]) + 6);
            if (!side) rc = cli_error("out of memory");
            else unlink(strcat(strcpy(side, units[k]), ".json"));
            free(side);
            /* (the same inputs: those of the unit found up to date) */
            if (!rc) rc = shard_unit(units[k], in, first[k + 1] - first[k], 0, &o, &fresh[k], &info[k], &used);
        }
        shard_progress_end();
        if (!rc) rc = shard_assemble(out, name, S, V, units, fresh, info, nu, &o, tee);
        shard_tee_free(tee);
        if (!rc && !keep_units) remove_units(ud);
        if (rc && ud) rmdir(ud);   /* only if empty: finished units stay for the rerun */
        for (int i = 0; units && i < nops; i++) free(units[i]);
        free(units);
        for (int i = 0; info && i < nops; i++) free(info[i].in);
        free(info);
        free(fresh);
        free(first);
        free(ud);
    }
    free(ops);
    free(list);
    return rc;
}
