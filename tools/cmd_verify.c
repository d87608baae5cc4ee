/* gpt2in verify - runs the forward lookup and compares it with a reference
 * array from another implementation (NumPy, PyTorch, ...), with
 * numpy.allclose's rule |got - ref| <= atol + rtol * |ref|. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli_embed.h"

static const char usage_text[] =
    "usage: gpt2in verify --weights FILE --ids IDS --ref REF [--positions] [--pos-offset N]\n"
    "                     [--atol A] [--rtol R] [--equal-nan] [--tensor NAME]\n"
    "                     [--wpe-tensor NAME]\n"
    "                     [--input-format auto|text|u16|u32|npy|json|llmc]\n"
    "\n"
    "Computes the embedding of IDS (as 'gpt2in embed' does) and compares it with REF,\n"
    "an .npy array (float32, float16 or float64), a safetensors file of one tensor,\n"
    "or FILE:TENSOR (a tensor of a safetensors file; F32, F16, BF16 or F64; - or\n"
    "-:TENSOR read it from stdin, when the ids come from a file), of\n"
    "shape [T, C] or [1, T, C], or [B, T, C] for a batch of ids [B, T]. A value passes\n"
    "when |got - ref| <= atol + rtol*|ref| (numpy.allclose's rule, computed in double\n"
    "precision; defaults atol 1e-6, rtol 1e-5; --atol 0 --rtol 0 asks for bit-exact).\n"
    "A tolerance may be inf: --atol inf passes every finite difference; with --rtol\n"
    "inf a reference of 0 still needs an equal value (inf x 0 is NaN, as in NumPy).\n"
    "An infinite difference never passes. A NaN is outside any tolerance, unless\n"
    "--equal-nan: then a NaN matches a NaN at the same place, whatever its sign and\n"
    "payload (numpy.allclose's equal_nan=True). Prints max abs/rel error, the\n"
    "mismatch count and the first mismatch; \"identical\" means the same float32 bits,\n"
    "NaNs included.\n"
    "Exit 0 within tolerance, 1 outside, 2 on an error (e.g. shapes differ).\n";

/* A tolerance: a decimal number >= 0, or inf / infinity (any case), as
 * gpt2in.verify takes float("inf"): no bound on finite differences. NaN
 * would make every comparison false, so it is refused by name. Prints the
 * error and returns CLI_ERR. */
static int parse_tol(const char *opt, const char *s, double *out) {
    const char *w = *s == '+' ? s + 1 : s;
    if (!strcasecmp(w, "inf") || !strcasecmp(w, "infinity")) {
        *out = INFINITY;
        return CLI_OK;
    }
    if (!strncasecmp(w, "nan", 3) || ((*w == '-') && !strncasecmp(w + 1, "nan", 3)))
        return cli_error("%s: %s is not a number: a tolerance is a number >= 0, or inf", opt,
                         cli_q(s));
    if (cli_parse_double(s, out) || !(*out >= 0))
        return cli_error("%s: %s is not a non-negative number (or inf)", opt, cli_q(s));
    return CLI_OK;
}

/* A reference: its values as doubles, and its shape. */
typedef struct {
    double *v;
    int ndim;
    uint64_t shape[EMBED_MAX_DIMS];
} ref_array;

static int ref_from(ref_array *r, embed_dtype dt, int ndim, const uint64_t *shape,
                    const unsigned char *data, const char *what) {
    if (dt != EMBED_F32 && dt != EMBED_F16 && dt != EMBED_BF16 && dt != EMBED_F64)
        return cli_error("%s: reference dtype %s is not float32, float16, bfloat16 or float64", what,
                         embed_dtype_name(dt));
    uint64_t count = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] && count > (SIZE_MAX / 8) / shape[d])
            return cli_error("%s: reference too large", what);
        count *= shape[d];
    }
    r->ndim = ndim;
    memcpy(r->shape, shape, (size_t)ndim * sizeof *shape);
    r->v = malloc((size_t)(count + 1) * sizeof *r->v);
    if (!r->v)
        return cli_error("out of memory");
    for (uint64_t i = 0; i < count; i++) {
        if (dt == EMBED_F32) {
            float f;
            memcpy(&f, data + 4 * i, 4);
            r->v[i] = f;
        } else if (dt == EMBED_F64) {
            memcpy(&r->v[i], data + 8 * i, 8);
        } else {
            uint16_t h;
            memcpy(&h, data + 2 * i, 2);
            r->v[i] = dt == EMBED_F16 ? embed_f16_to_f32(h) : embed_bf16_to_f32(h);
        }
    }
    return CLI_OK;
}

/* A safetensors reference: tensor `name` (NULL: the file's only one) of f,
 * which it closes. */
static int ref_tensor(embed_file *f, const char *path, const char *name, ref_array *r) {
    if (!f)
        return CLI_ERR;
    int rc;
    const embed_tensor *t = name ? embed_find(f, name)
                            : embed_tensor_count(f) == 1 ? embed_tensor_at(f, 0) : NULL;
    if (!t && name)
        rc = cli_error("%s: no tensor named %s", cli_n(path), cli_q(name));
    else if (!t)
        rc = cli_error("%s holds %zu tensors: name the reference as %s:TENSOR", cli_n(path),
                       embed_tensor_count(f), cli_n(path));
    else
        rc = ref_from(r, t->dtype, t->ndim, t->shape, t->data, cli_n(path));
    embed_close(f);
    return rc;
}

static int ref_safetensors(const char *path, const char *name, ref_array *r) {
    return ref_tensor(cli_open_mapped(path), path, name, r);
}

/* "-" or "-:TENSOR": a .npy or safetensors reference on stdin, held whole. */
static int ref_stdin(const char *name, ref_array *r) {
    size_t len;
    unsigned char *data = cli_read_stdin(&len, cli_stdin_enough);
    if (!data)
        return CLI_ERR;
    embed_kind k = embed_detect(data, len);
    embed_error err;
    int rc;
    if (k == EMBED_KIND_SAFETENSORS) {
        embed_file *f = embed_open_mem(data, len, "<stdin>", &err);
        if (!f)
            cli_error("%s", err.msg);
        rc = ref_tensor(f, "<stdin>", name, r);
    } else if (k == EMBED_KIND_NPY && !name) {
        embed_npy a;
        if (embed_npy_read_mem(data, len, "<stdin>", &a, &err)) {
            rc = cli_error("%s", err.msg);
        } else {
            rc = ref_from(r, a.dtype, a.ndim, a.shape, a.data, "<stdin>");
            embed_npy_free(&a);
        }
    } else {
        rc = cli_error("<stdin> is %s, not %s", embed_kind_desc(k),
                       name ? "a safetensors file (-:TENSOR names a tensor of one)"
                            : "a NumPy array or a safetensors file");
    }
    free(data);
    return rc;
}

/* REF is FILE.npy, FILE.safetensors (one tensor) or FILE:TENSOR, told
 * apart by the file's first bytes. */
static int load_ref(const char *spec, ref_array *r) {
    if (!strcmp(spec, "-") || !strncmp(spec, "-:", 2))
        return ref_stdin(spec[1] ? spec + 2 : NULL, r);
    embed_error err;
    const char *colon = strrchr(spec, ':');
    embed_kind k = cli_file_kind(spec);
    if (k == EMBED_KIND_COUNT && colon) {
        size_t plen = (size_t)(colon - spec);
        char *path = malloc(plen + 1);
        if (!path)
            return cli_error("out of memory");
        memcpy(path, spec, plen);
        path[plen] = 0;
        embed_kind pk = cli_file_kind(path);
        int rc = pk == EMBED_KIND_SAFETENSORS ? ref_safetensors(path, colon + 1, r)
               : pk == EMBED_KIND_COUNT ? cli_error("%s: %s", cli_n(spec), strerror(errno))
               : cli_error("%s is %s, not a safetensors file (FILE:TENSOR names a tensor of one)",
                           cli_n(path), embed_kind_desc(pk));
        free(path);
        return rc;
    }
    if (k == EMBED_KIND_SAFETENSORS)
        return ref_safetensors(spec, NULL, r);
    if (k != EMBED_KIND_NPY && k != EMBED_KIND_COUNT)
        return cli_error("%s is %s, not a NumPy array or a safetensors file", cli_n(spec),
                         embed_kind_desc(k));
    embed_npy a;
    if (embed_npy_read(spec, &a, &err))
        return cli_error("%s", err.msg);
    int rc = ref_from(r, a.dtype, a.ndim, a.shape, a.data, cli_n(spec));
    embed_npy_free(&a);
    return rc;
}

int cmd_verify(int argc, char **argv) {
    cli_model_opts mo = {0};
    const char *ids_path = NULL, *ref_path = NULL, *v;
    int bad = 0, equal_nan = 0, operands = 0;
    double atol = 1e-6, rtol = 1e-5;
    for (int i = 1; i < argc; i++) {
        int kind = cli_model_arg(argc, argv, &i, &operands, usage_text, "verify", &mo);
        if (kind < 0 || kind == CLI_ARG_HELP)
            return kind < 0 ? CLI_ERR : CLI_OK;
        if (kind == CLI_ARG_SKIP)
            continue;
        if (!strcmp(argv[i], "--equal-nan")) {
            equal_nan = 1;
        } else if ((v = cli_opt(argc, argv, &i, "--ids", &bad))) {
            ids_path = v;
        } else if ((v = cli_opt(argc, argv, &i, "--ref", &bad))) {
            ref_path = v;
        } else if ((v = cli_opt(argc, argv, &i, "--atol", &bad))) {
            if (parse_tol("--atol", v, &atol))
                return CLI_ERR;
        } else if ((v = cli_opt(argc, argv, &i, "--rtol", &bad))) {
            if (parse_tol("--rtol", v, &rtol))
                return CLI_ERR;
        } else if (!bad) {
            return cli_unknown_option("verify", argv[i], kind);
        }
        if (bad)
            return CLI_ERR;
    }
    if (ids_path && ref_path && !strcmp(ids_path, "-") && (!strcmp(ref_path, "-") || !strncmp(ref_path, "-:", 2)))
        return cli_error("verify: --ids and --ref cannot both be standard input (-)");
    if (!mo.weights || !ids_path || !ref_path)
        return cli_error("verify: --weights, --ids and --ref are required (see 'gpt2in verify "
                         "--help')");

    /* >> or 1<> onto an input would write into it; --ref may be FILE:TENSOR */
    char ref_file[4096];
    const char *colon = strrchr(ref_path, ':');
    snprintf(ref_file, sizeof ref_file, "%.*s", colon ? (int)(colon - ref_path) : (int)strlen(ref_path), ref_path);
    const char *inputs[] = {mo.weights, ids_path, ref_path, ref_file};
    if (cli_output_check("verify", "stdout", "-", inputs, 4, 1))
        return CLI_ERR;
    cli_model m;
    if (cli_model_open(&mo, "verify", &m))
        return CLI_ERR;
    size_t C = m.wte.cols, T = 0;
    ref_array rf = {0};
    uint32_t *ids = NULL;
    double *ref = NULL;
    float *x = NULL;
    int rc = CLI_ERR;
    ids_shape sh;
    if (cli_read_batch(ids_path, mo.input_format, m.wte.rows, &ids, &sh))
        goto done;
    T = (size_t)(sh.B * sh.T);
    if (load_ref(ref_path, &rf))
        goto done;
    ref = rf.v;
    /* ids [T]: ref [T, C] or [1, T, C]; a batch [B, T]: [B, T, C] ([T, C] when B is 1) */
    int ok = (rf.ndim == 2 && sh.B == 1 && rf.shape[0] == sh.T && rf.shape[1] == C) ||
             (rf.ndim == 3 && rf.shape[0] == sh.B && rf.shape[1] == sh.T && rf.shape[2] == C);
    if (!ok) {
        char have[200];
        int o = 0;
        for (int d = 0; d < rf.ndim && o < (int)sizeof have - 24; d++)
            o += snprintf(have + o, sizeof have - (size_t)o, "%s%llu", d ? ", " : "",
                          (unsigned long long)rf.shape[d]);
        if (rf.ndim == 0)
            snprintf(have, sizeof have, "a scalar");
        if (sh.ndim == 2)
            cli_error("%s: shape mismatch: the ids give [%llu, %llu, %zu] but it is [%s]",
                      cli_n(ref_path), (unsigned long long)sh.B, (unsigned long long)sh.T, C, have);
        else
            cli_error("%s: shape mismatch: the ids give [%zu, %zu] but it is [%s]", cli_n(ref_path), T, C,
                      have);
        goto done;
    }
    x = malloc((T * C + 1) * sizeof *x);
    if (!x) {
        cli_error("out of memory");
        goto done;
    }
    embed_error err;
    for (uint64_t b = 0; b < sh.B; b++)  /* positions start again in every row */
        if (embed_forward(x + b * sh.T * C, &m.wte, m.has_wpe ? &m.wpe : NULL, mo.pos0,
                          ids + b * sh.T, (size_t)sh.T, &err)) {
            cli_error("%s: %s", cli_n(ids_path), err.msg);
            goto done;
        }
    double max_abs = 0, max_rel = 0;
    size_t bad_n = 0, first = 0, identical = 1;
    for (size_t i = 0; i < T * C; i++) {
        double a = x[i], b = ref[i];
        int ok;
        if (a == b || (equal_nan && isnan(a) && isnan(b))) { /* also equal infinities */
            ok = 1;
        } else {
            double d = fabs(a - b);
            ok = isfinite(d) && d <= atol + rtol * fabs(b);
            if (!(d <= max_abs)) /* NaN propagates into max_abs */
                max_abs = d;
            if (b != 0 && !(d / fabs(b) <= max_rel))
                max_rel = d / fabs(b);
        }
        float fb = (float)b;
        if (isnan(fb) || isnan(x[i]) ? memcmp(&fb, &x[i], sizeof fb)
                                     : fb != x[i] || (fb == 0 && signbit(fb) != signbit(x[i])))
            identical = 0;
        if (!ok && bad_n++ == 0)
            first = i;
    }
    if (sh.ndim == 2)
        printf("compared %llu x %llu x %zu = %zu values (atol %g, rtol %g)\n",
               (unsigned long long)sh.B, (unsigned long long)sh.T, C, T * C, atol, rtol);
    else
        printf("compared %zu x %zu = %zu values (atol %g, rtol %g)\n", T, C, T * C, atol, rtol);
    /* a NaN is printed "nan", whatever its sign bit (inf - inf is -nan on x86) */
    printf("max abs err %.9g\nmax rel err %.9g\nmismatches %zu\n", isnan(max_abs) ? NAN : max_abs,
           isnan(max_rel) ? NAN : max_rel, bad_n);
    if (bad_n) {
        if (sh.ndim == 2)
            printf("first mismatch: batch row %llu, token %llu, column %zu: gpt2in %.9g, "
                   "reference %.9g\n", (unsigned long long)(C && sh.T ? first / C / sh.T : 0),
                   (unsigned long long)(C && sh.T ? first / C % sh.T : 0), C ? first % C : 0,
                   x[first], ref[first]);
        else
            printf("first mismatch: row %zu, column %zu: gpt2in %.9g, reference %.9g\n",
                   C ? first / C : 0, C ? first % C : 0, x[first], ref[first]);
        printf("result: OUTSIDE tolerance\n");
        rc = CLI_FAIL;
    } else {
        printf("result: %s\n", identical ? "identical (bit for bit as float32)"
                                         : "within tolerance");
        rc = CLI_OK;
    }
    if (fflush(stdout))
        rc = cli_write_error(NULL);
done:
    free(ids);
    free(ref);
    free(x);
    cli_model_close(&m);
    return rc;
}
