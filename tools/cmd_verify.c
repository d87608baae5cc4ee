/* gpt2in verify - runs the forward lookup and compares it with a reference
 * array from another implementation (NumPy, PyTorch, ...), with
 * numpy.allclose's rule |got - ref| <= atol + rtol * |ref|. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli_embed.h"

static const char usage_text[] =
    "usage: gpt2in verify --weights FILE --ids IDS --ref REF [--positions] [--pos-offset N]\n"
    "                     [--atol A] [--rtol R] [--equal-nan] [--tensor NAME]\n"
    "                     [--wpe-tensor NAME]\n"
    "                     [--input-format text|u16|u32|npy|json|llmc]\n"
    "\n"
    "Computes the embedding of IDS (as 'gpt2in embed' does) and compares it with REF,\n"
    "an .npy array (float32, float16 or float64, shape [T, C] or [1, T, C]) or\n"
    "FILE.safetensors:TENSOR. A value passes when |got - ref| <= atol + rtol*|ref|\n"
    "(numpy.allclose; defaults atol 1e-6, rtol 1e-5; --atol 0 --rtol 0 asks for\n"
    "bit-exact). A NaN is outside any tolerance, unless --equal-nan: then a NaN\n"
    "matches a NaN at the same place, whatever its sign and payload (numpy.allclose's\n"
    "equal_nan=True). Prints max abs/rel error, the mismatch count and the first\n"
    "mismatch; \"identical\" means the same float32 bits, NaNs included.\n"
    "Exit 0 within tolerance, 1 outside, 2 on an error (e.g. shapes differ).\n";

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* The reference as doubles; *rows x *cols. */
static int load_ref(const char *spec, double **out, size_t *rows, size_t *cols) {
    embed_error err;
    const char *colon = strrchr(spec, ':');
    if (colon) {
        size_t plen = (size_t)(colon - spec);
        char *path = malloc(plen + 1);
        if (!path)
            return cli_error("out of memory");
        memcpy(path, spec, plen);
        path[plen] = 0;
        if (ends_with(path, ".safetensors")) {
            embed_file *f = cli_open_mapped(path);
            if (!f) {
                free(path);
                return CLI_ERR;
            }
            const embed_tensor *t = embed_find(f, colon + 1);
            embed_table tab;
            int rc = CLI_OK;
            if (!t)
                rc = cli_error("%s: no tensor named %s", cli_n(path), cli_q(colon + 1));
            else if (embed_table_from_tensor(t, &tab, &err))
                rc = cli_error("%s: %s", cli_n(path), err.msg);
            float *row = NULL;
            if (rc == CLI_OK) {
                *rows = tab.rows, *cols = tab.cols;
                *out = malloc((tab.rows * tab.cols + 1) * sizeof **out);
                row = malloc((tab.cols + 1) * sizeof *row);
                if (!*out || !row)
                    rc = cli_error("out of memory");
                for (size_t r = 0; rc == CLI_OK && r < tab.rows; r++) {
                    embed_row(&tab, r, row);
                    for (size_t c = 0; c < tab.cols; c++)
                        (*out)[r * tab.cols + c] = row[c];
                }
            }
            free(row);
            embed_close(f);
            free(path);
            return rc;
        }
        free(path);
    }
    embed_npy a;
    if (embed_npy_read(spec, &a, &err))
        return cli_error("%s", err.msg);
    int rc = CLI_OK;
    if (a.ndim == 2)
        *rows = a.shape[0], *cols = a.shape[1];
    else if (a.ndim == 3 && a.shape[0] == 1)
        *rows = a.shape[1], *cols = a.shape[2];
    else
        rc = cli_error("%s: reference must have shape [T, C] or [1, T, C] (it has %d dims)", cli_n(spec),
                       a.ndim);
    if (rc == CLI_OK && a.dtype != EMBED_F32 && a.dtype != EMBED_F16 && a.dtype != EMBED_F64)
        rc = cli_error("%s: reference dtype %s is not float32, float16 or float64", cli_n(spec),
                       embed_dtype_name(a.dtype));
    if (rc == CLI_OK) {
        *out = malloc((a.count + 1) * sizeof **out);
        if (!*out)
            rc = cli_error("out of memory");
        for (uint64_t i = 0; rc == CLI_OK && i < a.count; i++) {
            if (a.dtype == EMBED_F32)
                (*out)[i] = ((const float *)a.data)[i];
            else if (a.dtype == EMBED_F64)
                (*out)[i] = ((const double *)a.data)[i];
            else
                (*out)[i] = embed_f16_to_f32(((const uint16_t *)a.data)[i]);
        }
    }
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
            if (cli_parse_double(v, &atol) || !(atol >= 0))
                return cli_error("--atol: %s is not a non-negative number", cli_q(v));
        } else if ((v = cli_opt(argc, argv, &i, "--rtol", &bad))) {
            if (cli_parse_double(v, &rtol) || !(rtol >= 0))
                return cli_error("--rtol: %s is not a non-negative number", cli_q(v));
        } else if (!bad) {
            return cli_unknown_option("verify", argv[i], kind);
        }
        if (bad)
            return CLI_ERR;
    }
    if (!mo.weights || !ids_path || !ref_path)
        return cli_error("verify: --weights, --ids and --ref are required (see 'gpt2in verify "
                         "--help')");

    cli_model m;
    if (cli_model_open(&mo, "verify", &m))
        return CLI_ERR;
    size_t C = m.wte.cols, T = 0, rrows = 0, rcols = 0;
    uint32_t *ids = NULL;
    double *ref = NULL;
    float *x = NULL;
    int rc = CLI_ERR;
    if (cli_read_ids(ids_path, mo.input_format, m.wte.rows, &ids, &T))
        goto done;
    if (load_ref(ref_path, &ref, &rrows, &rcols))
        goto done;
    if (rrows != T || rcols != C) {
        cli_error("shape mismatch: the ids give [%zu, %zu] but %s is [%zu, %zu]", T, C, cli_n(ref_path),
                  rrows, rcols);
        goto done;
    }
    x = malloc((T * C + 1) * sizeof *x);
    if (!x) {
        cli_error("out of memory");
        goto done;
    }
    embed_error err;
    if (embed_forward(x, &m.wte, m.has_wpe ? &m.wpe : NULL, mo.pos0, ids, T, &err)) {
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
    printf("compared %zu x %zu = %zu values (atol %g, rtol %g)\n", T, C, T * C, atol, rtol);
    printf("max abs err %.9g\nmax rel err %.9g\nmismatches %zu\n", max_abs, max_rel, bad_n);
    if (bad_n) {
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
