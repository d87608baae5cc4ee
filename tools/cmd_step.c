/* gpt2in step - one training step of the embedding tables from a given
 * output gradient: sparse backward, then SGD or PyTorch's SparseAdam on the
 * touched rows only, written to a new weights file in which every other
 * tensor (and every untouched row) is kept bit for bit.
 *
 * Only the touched rows are stepped, in compact (n,C) copies; the full
 * tables are copied once as raw bytes to be written back. F16/BF16 tables
 * are stepped in F32 and rounded back (to nearest even) on the touched rows. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_embed.h"

static const char usage_text[] =
    "usage: gpt2in step --weights FILE --ids IDS --dout DOUT.npy --optimizer sgd|adam --lr LR\n"
    "                   --out NEW.safetensors [--state STATE.safetensors] [--positions]\n"
    "                   [--pos-offset N] [--tensor NAME] [--wpe-tensor NAME]\n"
    "                   [--input-format auto|text|u16|u32|npy|json|llmc]\n"
    "\n"
    "One step on the embedding rows the ids touch, given DOUT = dLoss/dx, float32\n"
    "[T, C] (.npy; - reads it from stdin, when the ids come from a file). A row's\n"
    "gradient g is its DOUT rows summed in token order onto a zero, bit for bit\n"
    "PyTorch 1.13's dense backward, F.embedding(ids, W).backward(DOUT).\n"
    "A batch of ids [B, T] (see 'gpt2in embed --help') takes DOUT [B, T, C]: the\n"
    "gradients of all B*T tokens are summed (row after row), and with --positions\n"
    "position row pos-offset + t gets DOUT[b, t] of every row b, summed in row\n"
    "order: wte[ids] + wpe[pos-offset + arange(T)] broadcast over the batch.\n"
    "  sgd:  w = w + (-lr)*g in one rounding (a fused multiply-add): bit for bit\n"
    "        torch.optim.SGD([W], lr).step() after that dense backward (nn.Embedding's\n"
    "        default). With sparse=True PyTorch adds a repeated id's rows to w one at\n"
    "        a time instead, which can round differently: w 1, ids 0 0, DOUT [[1],\n"
    "        [3e-8]], lr 1 gives 0 here and with the dense gradient, -3e-8 with the\n"
    "        sparse one. Where no id repeats the two agree (but for a -0.0 weight\n"
    "        stepped by a -0.0: -0.0 here and dense, +0.0 sparse).\n"
    "  adam: torch.optim.SparseAdam([W], lr) (betas 0.9, 0.999, eps 1e-8), bit for\n"
    "        bit, given g as a sparse tensor of the touched rows (ids ascending). With\n"
    "        F.embedding(ids, W, sparse=True) PyTorch's coalesce() sums a row in the\n"
    "        order of an unstable sort: the same bits when T <= 16 or no id occurs\n"
    "        more than twice in the step, otherwise it can round differently.\n"
    "        The moments and step count are kept in STATE (required; read if it\n"
    "        exists, else zeros). STATE's metadata \"step\" and NEW's \"gpt2in.adam_step\"\n"
    "        count the steps; a step refuses a pair that disagrees (a step that wrote\n"
    "        STATE but not NEW, or weights of another step). Both are written before\n"
    "        either is renamed (STATE first): a step that fails changes neither.\n"
    "F16/BF16 tables are stepped in float32 and rounded back: bit for bit W.float(),\n"
    "the step above, then .half() / .bfloat16() in PyTorch on a CPU with AVX2 (a NaN\n"
    "becomes sign|0x7e00 in F16, 0xffff in BF16).\n"
    "Steps that write the same files run one after another: each holds a lock\n"
    "(flock) on the directories of NEW and STATE from before it reads FILE until\n"
    "its files are renamed into place.\n"
    "--positions also steps the position table (rows pos-offset .. pos-offset+T-1).\n"
    "NEW keeps every other tensor bit for bit; it may be FILE itself (the one input\n"
    "an output may name; STATE is read and rewritten).\n"
    "\n" CLI_OUTPUT_HELP;

typedef struct {
    const embed_table *tab;
    const char *name;         /* tensor name in the weights file */
    const char *state_prefix; /* "wte" / "wpe" for the Adam state */
    size_t n;                 /* rows touched */
    uint32_t *rows;           /* (n) global row ids, ascending */
    float *grad;              /* (n,C) */
    float *w, *m, *v;         /* (n,C) compact copies */
    unsigned char *bytes;     /* the whole table, raw, to write back */
} part;

static void part_free(part *p) {
    free(p->rows), free(p->grad), free(p->w), free(p->m), free(p->v), free(p->bytes);
}

/* Compact copy of the touched rows and a raw copy of the whole table. */
static int part_load(part *p) {
    size_t C = p->tab->cols, esz = p->tab->dtype == EMBED_F32 ? 4 : 2;
    size_t bytes = p->tab->rows * C * esz;
    p->w = malloc((p->n * C + 1) * sizeof *p->w);
    p->bytes = malloc(bytes + 1);
    if (!p->w || !p->bytes)
        return cli_error("out of memory");
    memcpy(p->bytes, p->tab->data, bytes);
    for (size_t i = 0; i < p->n; i++)
        embed_row(p->tab, p->rows[i], p->w + i * C);
    return CLI_OK;
}

/* The stepped rows back into the raw table, in its dtype. */
static void part_store(part *p) {
    size_t C = p->tab->cols;
    for (size_t i = 0; i < p->n; i++) {
        const float *src = p->w + i * C;
        if (p->tab->dtype == EMBED_F32) {
            memcpy(p->bytes + (size_t)p->rows[i] * C * 4, src, C * 4);
            continue;
        }
        unsigned char *dst = p->bytes + (size_t)p->rows[i] * C * 2;
        for (size_t c = 0; c < C; c++) {
            uint16_t h = p->tab->dtype == EMBED_F16 ? embed_f32_to_f16(src[c])
                                                    : embed_f32_to_bf16(src[c]);
            memcpy(dst + 2 * c, &h, 2);
        }
    }
}

/* The Adam moments of one table from the state file (zeros if none). */
static int state_tensor(const embed_file *st, const char *path, const char *prefix,
                        const char *which, const embed_table *tab, float **full) {
    char name[64];
    snprintf(name, sizeof name, "%s.%s", prefix, which);
    size_t V = tab->rows, C = tab->cols;
    *full = calloc(V * C + 1, sizeof **full);
    if (!*full)
        return cli_error("out of memory");
    if (!st)
        return CLI_OK;
    const embed_tensor *t = embed_find(st, name);
    if (!t)
        return cli_error("%s: no tensor %s (the state of another table or run?)", cli_n(path), cli_q(name));
    if (t->dtype != EMBED_F32 || t->ndim != 2 || t->shape[0] != V || t->shape[1] != C)
        return cli_error("%s: %s must be F32 [%zu, %zu] to match the weights", cli_n(path), cli_q(name), V,
                         C);
    memcpy(*full, t->data, V * C * sizeof **full);
    return CLI_OK;
}

/* Two steps on the same files would both read the old weights and the last
 * rename would win, losing the other step. So a step takes an exclusive
 * flock on the directories it writes into (NEW's and STATE's; the files
 * themselves are replaced by rename, so a lock on them would not last)
 * before it reads anything, and keeps it until exit: steps that write the
 * same files run one after another. Two directories are locked in the order
 * of their (device, inode), so two steps never wait for each other. */
static int lock_dir_of(const char *path, int *fd, struct stat *dst, char **dir_out) {
    char *real = realpath(path, NULL); /* a symbolic link: its target's directory */
    const char *p = real ? real : path;
    const char *slash = strrchr(p, '/');
    size_t len = slash ? (slash == p ? 1 : (size_t)(slash - p)) : 1;
    char *dir = malloc(len + 1);
    if (!dir) {
        free(real);
        return cli_error("out of memory");
    }
    memcpy(dir, slash ? p : ".", len);
    dir[len] = 0;
    free(real);
    *fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*fd < 0 || fstat(*fd, dst)) {
        int rc = cli_error("step: cannot open the directory %s to lock it: %s", cli_n(dir),
                           strerror(errno));
        free(dir);
        return rc;
    }
    *dir_out = dir;
    return CLI_OK;
}

/* A failed lock names the option whose directory it is (with --out and
 * --state in one directory, --out). */
static int step_lock(const char *out_path, const char *state_path, int fd[2]) {
    const char *opt[2] = {"--out", "--state"}, *path[2] = {out_path, state_path};
    char *dir[2] = {NULL, NULL};
    struct stat s[2];
    int n = state_path ? 2 : 1, rc = CLI_OK;
    for (int k = 0; k < n && rc == CLI_OK; k++)
        rc = lock_dir_of(path[k], &fd[k], &s[k], &dir[k]);
    int first = 0;
    if (rc == CLI_OK && n == 2) {
        if (s[0].st_dev == s[1].st_dev && s[0].st_ino == s[1].st_ino) {
            close(fd[1]);
            fd[1] = -1;
        } else if (s[0].st_dev > s[1].st_dev || (s[0].st_dev == s[1].st_dev && s[0].st_ino > s[1].st_ino)) {
            first = 1;
        }
    }
    for (int j = 0; j < 2 && rc == CLI_OK; j++) {
        int k = j ^ first;
        while (fd[k] >= 0 && flock(fd[k], LOCK_EX)) {
            if (errno == EINTR)
                continue;
            if (errno != ENOLCK && errno != EOPNOTSUPP && errno != EINVAL) {
                rc = cli_error("step: %s %s: cannot lock its directory %s: %s", opt[k], cli_q(path[k]),
                               cli_q(dir[k]), strerror(errno));
                break;
            }
            /* a filesystem without locks: step as before, but say so */
            fprintf(stderr, "gpt2in: warning: step: %s %s: cannot lock its directory %s (%s): "
                            "steps run at the same time on these files may lose updates\n",
                    opt[k], cli_q(path[k]), cli_q(dir[k]), strerror(errno));
            break;
        }
    }
    free(dir[0]);
    free(dir[1]);
    return rc;
}

static void step_unlock(int fd[2]) {
    for (int k = 0; k < 2; k++)
        if (fd[k] >= 0)
            close(fd[k]);
}

/* The step count a file's metadata holds under key (0 when absent). */
static int meta_step(const embed_file *f, const char *path, const char *key, int64_t *step) {
    *step = 0;
    for (size_t i = 0; i < embed_metadata_count(f); i++) {
        const char *k, *val;
        uint64_t s;
        embed_metadata_at(f, i, &k, &val);
        if (strcmp(k, key))
            continue;
        if (cli_parse_u64(val, &s) || s > INT64_MAX - 1)
            return cli_error("%s: metadata %s %s is not a step count", cli_n(path), key, cli_q(val));
        *step = (int64_t)s;
    }
    return CLI_OK;
}

/* The weights could not be written after the state was: put the state back
 * as it was (or remove it if there was none), so the step can simply be run
 * again. Returns 0 when done. */
static int state_put_back(const char *path, const embed_file *old, char *why, size_t n) {
    embed_error err;
    if (old) {
        if (cli_save(path, old, NULL, 0, NULL, 0, &err) == 0)
            return 0;
        snprintf(why, n, "%s", err.msg);
        return -1;
    }
    if (unlink(path) == 0 || errno == ENOENT)
        return 0;
    snprintf(why, n, "%s: %s", cli_n(path), strerror(errno));
    return -1;
}

#define ADAM_STEP_KEY "gpt2in.adam_step"

int cmd_step(int argc, char **argv) {
    cli_model_opts mo = {0};
    const char *ids_path = NULL, *dout_path = NULL, *opt_name = NULL;
    const char *state_path = NULL, *out_path = NULL, *v, *lr_text = NULL;
    int bad = 0, operands = 0;
    double lr = 0;
    for (int i = 1; i < argc; i++) {
        int kind = cli_model_arg(argc, argv, &i, &operands, usage_text, "step", &mo);
        if (kind < 0 || kind == CLI_ARG_HELP)
            return kind < 0 ? CLI_ERR : CLI_OK;
        if (kind == CLI_ARG_SKIP)
            continue;
        if ((v = cli_opt(argc, argv, &i, "--ids", &bad))) {
            ids_path = v;
        } else if ((v = cli_opt(argc, argv, &i, "--dout", &bad))) {
            dout_path = v;
        } else if ((v = cli_opt(argc, argv, &i, "--optimizer", &bad))) {
            opt_name = v;
        } else if ((v = cli_opt(argc, argv, &i, "--lr", &bad))) {
            lr_text = v;
            if (cli_parse_double(v, &lr) || !isfinite(lr) || lr < 0)
                return cli_error("--lr: %s is not a non-negative number", cli_q(v));
        } else if ((v = cli_opt(argc, argv, &i, "--state", &bad))) {
            state_path = v;
        } else if ((v = cli_opt(argc, argv, &i, "--out", &bad)) ||
                   (v = cli_opt(argc, argv, &i, "-o", &bad))) {
            out_path = v;
        } else if (!bad) {
            return cli_unknown_option("step", argv[i], kind);
        }
        if (bad)
            return CLI_ERR;
    }
    if (!mo.weights || !ids_path || !dout_path || !opt_name || !lr_text || !out_path)
        return cli_error("step: --weights, --ids, --dout, --optimizer, --lr and --out are "
                         "required (see 'gpt2in step --help')");
    if (!strcmp(ids_path, "-") && !strcmp(dout_path, "-"))
        return cli_error("step: --ids and --dout cannot both be standard input (-)");
    int adam = !strcmp(opt_name, "adam") || !strcmp(opt_name, "sparseadam");
    if (!adam && strcmp(opt_name, "sgd"))
        return cli_error("step: unknown --optimizer %s (sgd, adam)", cli_q(opt_name));
    if (adam && !state_path)
        return cli_error("step: --optimizer adam needs --state FILE (created if missing)");
    if (!adam && state_path)
        return cli_error("step: --state is only for --optimizer adam (sgd keeps no state)");
    const char *out_in[] = {ids_path, dout_path, adam ? state_path : NULL};
    const char *state_in[] = {mo.weights, ids_path, dout_path, out_path};
    if (cli_output_check("step", "--out", out_path, out_in, 3, 0) ||
        (adam && cli_output_check("step", "--state", state_path, state_in, 4, 0)))
        return CLI_ERR;

    int lock_fd[2] = {-1, -1};
    /* the state is read, then replaced by a new file: a FIFO or a device
     * there would block the read or be replaced */
    struct stat sst;
    if (adam && stat(state_path, &sst) == 0 && !S_ISREG(sst.st_mode))
        return cli_error("step: --state %s is not a regular file (the Adam state is read, then replaced)",
                         cli_q(state_path));
    if (step_lock(out_path, adam ? state_path : NULL, lock_fd)) {
        step_unlock(lock_fd);
        return CLI_ERR;
    }
    cli_model m;
    if (cli_model_open(&mo, "step", &m)) {
        step_unlock(lock_fd);
        return CLI_ERR;
    }
    int rc = CLI_ERR;
    embed_error err;
    embed_npy dout = {0};
    embed_file *st = NULL;
    uint32_t *ids = NULL, *scratch = NULL;
    float *mfull[2] = {0}, *vfull[2] = {0};
    part parts[2];
    memset(parts, 0, sizeof parts);
    size_t np = mo.positions ? 2 : 1, T = 0, C = m.wte.cols;
    parts[0].tab = &m.wte, parts[0].name = m.wte_name, parts[0].state_prefix = "wte";
    parts[1].tab = &m.wpe, parts[1].name = m.wpe_name, parts[1].state_prefix = "wpe";

    ids_shape sh;
    if (cli_read_batch(ids_path, mo.input_format, m.wte.rows, &ids, &sh))
        goto done;
    /* T: ids in all (the batch flattened), R: a row's (positions 0..R-1) */
    T = (size_t)(sh.B * sh.T);
    size_t R = (size_t)sh.T, B = (size_t)sh.B;
    if (cli_read_npy(dout_path, &dout))
        goto done;
    /* [T, C] or [1, T, C] for ids [T]; [B, T, C] for a batch (or [T, C] when B is 1) */
    int dout_ok = dout.dtype == EMBED_F32 &&
                  ((dout.ndim == 2 && B == 1 && dout.shape[0] == R && dout.shape[1] == C) ||
                   (dout.ndim == 3 && dout.shape[0] == B && dout.shape[1] == R && dout.shape[2] == C));
    if (!dout_ok) {
        if (sh.ndim == 2)
            cli_error("%s: must be float32 [%zu, %zu, %zu] (the ids' batch [B, T], the table's width)",
                      cli_n(dout_path), B, R, C);
        else
            cli_error("%s: must be float32 [%zu, %zu] (one row per id, the table's width)",
                      cli_n(dout_path), T, C);
        goto done;
    }
    if (mo.positions && (mo.pos0 >= m.wpe.rows || R > m.wpe.rows - mo.pos0) && R) {
        size_t t = mo.pos0 >= m.wpe.rows ? 0 : m.wpe.rows - mo.pos0;
        cli_error("%s: position %zu (token index %zu) is out of range: %s has %zu positions",
                  cli_n(ids_path), (size_t)mo.pos0 + t, t, cli_q(m.wpe_name), m.wpe.rows);
        goto done;
    }

    /* wte: sparse backward into distinct rows */
    part *pw = &parts[0];
    pw->rows = malloc((T + 1) * sizeof *pw->rows);
    pw->grad = malloc((T * C + 1) * sizeof *pw->grad);
    scratch = malloc((T + 1) * sizeof *scratch);
    if (!pw->rows || !pw->grad || !scratch) {
        cli_error("out of memory");
        goto done;
    }
    if (embed_backward_sparse(dout.data, ids, T, C, m.wte.rows, pw->rows, pw->grad, &pw->n,
                              scratch, &err)) {
        cli_error("%s: %s", cli_n(ids_path), err.msg);
        goto done;
    }
    /* wpe: row pos0 + t gets dout[b, t] of every row b, summed in row order
     * onto a zero (a -0.0 becomes +0.0), as the dense backward of a
     * position table broadcast over the batch */
    if (mo.positions) {
        part *pp = &parts[1];
        pp->n = R;
        pp->rows = malloc((R + 1) * sizeof *pp->rows);
        pp->grad = malloc((R * C + 1) * sizeof *pp->grad);
        if (!pp->rows || !pp->grad) {
            cli_error("out of memory");
            goto done;
        }
        for (size_t t = 0; t < R; t++)
            pp->rows[t] = (uint32_t)(mo.pos0 + t);
        const float *d = dout.data;
        for (size_t i = 0; i < R * C; i++)
            pp->grad[i] = 0.0f;
        for (size_t b = 0; b < B; b++)
            for (size_t i = 0; i < R * C; i++)
                pp->grad[i] += d[b * R * C + i];
    }
    for (size_t k = 0; k < np; k++)
        if (part_load(&parts[k]))
            goto done;

    int64_t step = 0;
    if (adam) {
        FILE *probe = fopen(state_path, "rb");
        if (probe) {
            fclose(probe);
            if (!(st = cli_open_mapped(state_path)))
                goto done;
            int64_t wstep;
            if (meta_step(st, state_path, "step", &step) ||
                meta_step(m.f, mo.weights, ADAM_STEP_KEY, &wstep))
                goto done;
            if (wstep != step) {
                cli_error("step: %s is at Adam step %lld but %s at step %lld (%s in its "
                          "metadata): they are not the state and weights of the same step "
                          "(e.g. a step that wrote the state and was killed before the "
                          "weights). Step the weights that go with this state, or delete %s "
                          "to restart Adam's moments from zero",
                          cli_n(state_path), (long long)step, cli_n(mo.weights), (long long)wstep,
                          ADAM_STEP_KEY, cli_n(state_path));
                goto done;
            }
            /* torch counts steps per table: a step of wte alone would leave
             * wpe's count behind the one step count the state keeps */
            if (!mo.positions && (embed_find(st, "wpe.exp_avg") || embed_find(st, "wpe.exp_avg_sq"))) {
                cli_error("step: %s holds Adam moments of the position table (wpe.*): its steps "
                          "were taken with --positions, and every later step must be too (the "
                          "state has one step count for both tables)", cli_n(state_path));
                goto done;
            }
        } else if (errno != ENOENT) {
            cli_error("cannot open %s: %s", cli_n(state_path), strerror(errno));
            goto done;
        }
        for (size_t k = 0; k < np; k++) {
            if (state_tensor(st, state_path, parts[k].state_prefix, "exp_avg", parts[k].tab,
                             &mfull[k]) ||
                state_tensor(st, state_path, parts[k].state_prefix, "exp_avg_sq", parts[k].tab,
                             &vfull[k]))
                goto done;
        }
    }

    /* The step itself, on compact copies: row i of the copy is row rows[i]. */
    for (size_t k = 0; k < np; k++) {
        part *p = &parts[k];
        uint32_t *local = malloc((p->n + 1) * sizeof *local);
        if (!local) {
            cli_error("out of memory");
            goto done;
        }
        for (size_t i = 0; i < p->n; i++)
            local[i] = (uint32_t)i;
        embed_param prm = {p->w, p->n, C};
        int e;
        if (!adam) {
            e = embed_sgd(&prm, local, p->grad, p->n, (float)lr, &err);
        } else {
            p->m = malloc((p->n * C + 1) * sizeof *p->m);
            p->v = malloc((p->n * C + 1) * sizeof *p->v);
            if (!p->m || !p->v) {
                free(local);
                cli_error("out of memory");
                goto done;
            }
            for (size_t i = 0; i < p->n; i++) {
                memcpy(p->m + i * C, mfull[k] + (size_t)p->rows[i] * C, C * sizeof *p->m);
                memcpy(p->v + i * C, vfull[k] + (size_t)p->rows[i] * C, C * sizeof *p->v);
            }
            embed_adam a;
            embed_adam_init(&a, lr, p->m, p->v);
            a.step = step;
            e = embed_adam_step(&prm, &a, local, p->grad, p->n, &err);
            for (size_t i = 0; i < p->n; i++) {
                memcpy(mfull[k] + (size_t)p->rows[i] * C, p->m + i * C, C * sizeof *p->m);
                memcpy(vfull[k] + (size_t)p->rows[i] * C, p->v + i * C, C * sizeof *p->v);
            }
        }
        free(local);
        if (e) {
            cli_error("%s", err.msg);
            goto done;
        }
        part_store(p);
    }

    /* New weights: the stepped tables replace theirs, all else kept. */
    embed_out_tensor repl[2];
    for (size_t k = 0; k < np; k++) {
        repl[k].name = parts[k].name;
        repl[k].dtype = parts[k].tab->dtype;
        repl[k].ndim = 2;
        repl[k].shape[0] = parts[k].tab->rows;
        repl[k].shape[1] = C;
        repl[k].data = parts[k].bytes;
    }
    char step_text[32];
    snprintf(step_text, sizeof step_text, "%lld", (long long)step + 1);
    /* Adam: the state first, then the weights, both with the new step count */
    if (adam) {
        embed_out_tensor srepl[4];
        char names[4][64];
        for (size_t k = 0; k < np; k++)
            for (int q = 0; q < 2; q++) {
                embed_out_tensor *o = &srepl[2 * k + q];
                snprintf(names[2 * k + q], sizeof names[0], "%s.%s", parts[k].state_prefix,
                         q ? "exp_avg_sq" : "exp_avg");
                o->name = names[2 * k + q];
                o->dtype = EMBED_F32;
                o->ndim = 2;
                o->shape[0] = parts[k].tab->rows;
                o->shape[1] = C;
                o->data = q ? vfull[k] : mfull[k];
            }
        const char *meta[] = {"step", step_text};
        /* Both files are written to their temporaries first; only when both
         * are complete is either renamed, so a full disk changes nothing.
         * base = the old state, so its other tensors (e.g. the other table's
         * moments) are kept */
        const char *wmeta[] = {ADAM_STEP_KEY, step_text};
        embed_writer *ws = NULL, *ww = NULL;
        int bad = !(ws = cli_writer_open(state_path, &err)) || embed_save_to(ws, st, srepl, 2 * np, meta, 1, &err) ||
                  !(ww = cli_writer_open(out_path, &err)) || embed_save_to(ww, m.f, repl, np, wmeta, 1, &err);
        for (int k = 0; !bad && k < 2; k++)   /* (a full disk can show only as the last bytes go) */
            if ((bad = fflush(embed_writer_stream(k ? ww : ws)) != 0))
                snprintf(err.msg, sizeof err.msg, "%s: write error: %s", cli_n(k ? out_path : state_path),
                         strerror(errno));
        if (bad) {
            if (ws) cli_writer_abort(ws);
            if (ww) cli_writer_abort(ww);
            cli_error("%s (nothing was changed)", err.msg);
            goto done;
        }
        /* the state first: killed between the renames, the next step
         * refuses the pair (STATE's step ahead of NEW's) */
        if (cli_writer_commit(ws, &err)) {
            cli_writer_abort(ww);
            cli_error("%s (nothing was changed)", err.msg);
            goto done;
        }
        if (!cli_writer_commit(ww, &err)) {
            rc = CLI_OK;
            goto done;
        }
    }
    const char *wmeta[] = {ADAM_STEP_KEY, step_text};
    if (adam || cli_save(out_path, m.f, repl, np, adam ? wmeta : NULL, adam ? 1 : 0, &err)) {
        char why[sizeof err.msg + 64];
        if (!adam)
            cli_error("%s", err.msg);
        else if (!state_put_back(state_path, st, why, sizeof why))
            cli_error("%s (%s was put back as it was: nothing was changed)", err.msg,
                      cli_n(state_path));
        else
            cli_error("%s; %s, already stepped, could not be put back (%s): delete it to "
                      "restart Adam's moments from zero",
                      err.msg, cli_n(state_path), why);
        goto done;
    }
    rc = CLI_OK;
done:
    for (size_t k = 0; k < 2; k++) {
        part_free(&parts[k]);
        free(mfull[k]);
        free(vfull[k]);
    }
    free(ids);
    free(scratch);
    embed_npy_free(&dout);
    embed_close(st);
    cli_model_close(&m);
    step_unlock(lock_fd);
    return rc;
}
