/* cmd_plot.c - `gpt2in plot`: a map of words' embedding vectors. The
 * vectors (C numbers each) are projected on their two main directions of
 * variation (embed_pca2) and drawn as a labelled scatter plot in SVG. Words
 * given together as "cat,kitten" share a colour. The file is written to a
 * temporary name and renamed (embed_writer), so it is never left half done. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "cli_words.h"

static const char *usage =
    "usage: gpt2in plot --weights FILE --out FILE.svg [--title TEXT] [--raw] [--as-typed]\n"
    "                   [--tensor NAME] [--vocab V] [--] WORD[,WORD...] ...\n"
    "\n"
    "Draws the words' vectors (their rows of wte; the mean for a word of several tokens)\n"
    "as points in the plane of their first two principal components, as an SVG image.\n"
    "Words joined by commas form a group drawn in one colour: cat,kitten dog,puppy car,truck.\n"
    "The vectors are scaled to length 1 first, so that nearness on the map follows cosine\n"
    "similarity; --raw keeps their lengths. Needs at least 3 words. --vocab V tokenizes\n"
    "them with another vocabulary (tokenizer.json, .tiktoken, GGUF...), not GPT-2's.\n"
    "\n" CLI_OUTPUT_HELP;

/* ---- a growing string ---------------------------------------------------- */

typedef struct sbuf {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if (b->s && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 4096) + (size_t)k;
        char *ns = realloc(b->s, nc);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
}

/* Text for XML: & < > " escaped, invalid UTF-8 and control bytes as '?'. */
static void sb_xml(sbuf *b, const char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '&')
            sb_printf(b, "&amp;");
        else if (c == '<')
            sb_printf(b, "&lt;");
        else if (c == '>')
            sb_printf(b, "&gt;");
        else if (c == '"')
            sb_printf(b, "&quot;");
        else if (c >= 0x20 && c < 0x7f)
            sb_printf(b, "%c", c);
        else if (c >= 0x80) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                                  (utf8proc_ssize_t)(n - i), &cp);
            if (k > 0 && utf8proc_category(cp) != UTF8PROC_CATEGORY_CC) {
                sb_printf(b, "%.*s", (int)k, s + i);
                i += (size_t)k;
                continue;
            }
            sb_printf(b, "?");
        } else
            sb_printf(b, "?");
        i++;
    }
}

/* Characters a label shows, to estimate its width (UTF-8 lead bytes). */
static size_t glyphs(const char *s) {
    size_t g = 0;
    for (; *s; s++)
        g += ((unsigned char)*s & 0xc0) != 0x80;
    return g;
}

/* ---- axes ---------------------------------------------------------------- */

/* A "nice" tick step (1, 2 or 5 times a power of ten) giving about 5-8 ticks. */
static double nice_step(double range) {
    double raw = range / 6;
    double p = pow(10, floor(log10(raw)));
    double m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void fmt_tick(char *buf, size_t cap, double v, double step) {
    if (fabs(v) < step * 1e-6)
        v = 0;
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    snprintf(buf, cap, "%.*f", dec, v);
}

typedef struct box {
    double x0, y0, x1, y1;
} box;

static int overlaps(box a, box b) {
    return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}

int cmd_plot(int argc, char **argv) {
    words_opts o = {0};
    const char *out = NULL, *title = NULL;
    int raw = 0;
    char **args = calloc((size_t)argc + 1, sizeof *args);
    int n_args = 0;
    if (!args)
        return cli_error("out of memory");
    int operands = 0;
    for (int i = 1; i < argc; i++) {
        int bad = 0;
        const char *v;
        int kind = words_arg(argc, argv, &i, &operands, usage, NULL, &o);
        if (kind < 0 || kind == CLI_ARG_HELP)
            return free(args), kind < 0 ? CLI_ERR : CLI_OK;
        if (kind == CLI_ARG_SKIP)
            continue;
        if (kind == CLI_ARG_OPERAND) {
            args[n_args++] = argv[i];
            continue;
        }
        if ((v = cli_opt(argc, argv, &i, "--out", &bad))) {
            out = v;
            continue;
        }
        if (!bad && (v = cli_opt(argc, argv, &i, "--title", &bad))) {
            title = v;
            continue;
        }
        if (bad)
            return free(args), CLI_ERR;
        if (!strcmp(argv[i], "--raw")) {
            raw = 1;
            continue;
        }
        return free(args), cli_unknown_option("plot", argv[i], kind);
    }
    if (!out)
        return free(args), cli_error("plot: --out FILE.svg is required");
    const char *inputs[] = {o.weights};
    if (cli_output_check("plot", "--out", out, inputs, 1, 0))
        return free(args), CLI_ERR;

    /* Split "cat,kitten" groups into words; group index per word. */
    size_t cap_words = 0;
    for (int a = 0; a < n_args; a++)
        cap_words += 1 + (size_t)(strchr(args[a], ',') ? (size_t)strlen(args[a]) : 0);
    char **word = calloc(cap_words + 1, sizeof *word);
    int *group = calloc(cap_words + 1, sizeof *group);
    char **dup = calloc((size_t)n_args + 1, sizeof *dup);
    size_t n = 0;
    int rc = CLI_ERR;
    words_model m = {0};
    float *vec = NULL, *xy = NULL, *scratch = NULL;
    sbuf sb = {0};
    box *placed = NULL;
    if (!word || !group || !dup) {
        cli_error("out of memory");
        goto done;
    }
    for (int a = 0; a < n_args; a++) {
        if (!(dup[a] = strdup(args[a]))) {
            cli_error("out of memory");
            goto done;
        }
        for (char *save = NULL, *w = strtok_r(dup[a], ",", &save); w; w = strtok_r(NULL, ",", &save)) {
            word[n] = w;
            group[n++] = a;
        }
    }
    if (n < 3) {
        cli_error("plot: give at least 3 words (got %zu)", n);
        goto done;
    }
    if (words_open(&m, &o))
        goto done;
    size_t C = m.wte.cols;
    vec = malloc(n * C * sizeof *vec);
    xy = malloc(n * 2 * sizeof *xy);
    scratch = malloc(EMBED_PCA2_SCRATCH(n, C) * sizeof *scratch);
    placed = malloc(2 * n * sizeof *placed);
    if (!vec || !xy || !scratch || !placed) {
        cli_error("out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        float *v = vec + i * C;
        if (words_vector(&m, word[i], o.as_typed, v))
            goto done;
        if (!raw) {
            double s = 0;
            for (size_t c = 0; c < C; c++)
                s += (double)v[c] * v[c];
            s = sqrt(s);
            for (size_t c = 0; c < C && s > 0; c++)
                v[c] = (float)(v[c] / s);
        }
    }
    float var[2];
    embed_error err;
    if (embed_pca2(vec, n, C, xy, NULL, var, scratch, &err)) {
        cli_error("%s", err.msg);
        goto done;
    }
    /* Share of the total variance (the trace of the covariance) per axis. */
    double total = 0;
    for (size_t c = 0; c < C; c++) {
        double mu = 0, s2 = 0;
        for (size_t i = 0; i < n; i++)
            mu += vec[i * C + c];
        mu /= (double)n;
        for (size_t i = 0; i < n; i++)
            s2 += (vec[i * C + c] - mu) * (vec[i * C + c] - mu);
        total += s2 / (double)(n - 1);
    }

    /* ---- layout ---- */
    const double W = 960, H = 720, L = 90, R = 40, TOP = 100, BOT = 90;
    const double pw = W - L - R, ph = H - TOP - BOT;
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        xmin = fmin(xmin, xy[2 * i]), xmax = fmax(xmax, xy[2 * i]);
        ymin = fmin(ymin, xy[2 * i + 1]), ymax = fmax(ymax, xy[2 * i + 1]);
    }
    /* Room around the points for their labels; never a zero range. */
    double xr = fmax(xmax - xmin, 1e-6), yr = fmax(ymax - ymin, 1e-6);
    xmin -= 0.08 * xr, xmax += 0.18 * xr, ymin -= 0.1 * yr, ymax += 0.1 * yr;
    double xs = nice_step(xmax - xmin), ys = nice_step(ymax - ymin);
    xmin = floor(xmin / xs) * xs, xmax = ceil(xmax / xs) * xs;
    ymin = floor(ymin / ys) * ys, ymax = ceil(ymax / ys) * ys;
#define PX(v) (L + ((v) - xmin) / (xmax - xmin) * pw)
#define PY(v) (TOP + ph - ((v) - ymin) / (ymax - ymin) * ph)

    static const char *palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                    "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
    const char *font = "DejaVu Sans, Helvetica, Arial, sans-serif";
    sb_printf(&sb,
              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
              "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
              "viewBox=\"0 0 %.0f %.0f\" font-family=\"%s\">\n"
              "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n",
              W, H, W, H, font);
    sb_printf(&sb, "<text x=\"%.0f\" y=\"44\" font-size=\"24\" font-weight=\"bold\" fill=\"#222\">", L);
    if (title)
        sb_xml(&sb, title);
    else
        sb_printf(&sb, "Where the words sit: their embedding vectors in 2-D");
    sb_printf(&sb, "</text>\n<text x=\"%.0f\" y=\"72\" font-size=\"15\" fill=\"#555\">", L);
    const char *base = strrchr(o.weights, '/');
    sb_xml(&sb, base ? base + 1 : o.weights);
    sb_printf(&sb, " \xc2\xb7 %zu words \xc2\xb7 %zu-dim rows%s \xc2\xb7 PCA: the two axes keep "
                   "%.0f%% of the spread</text>\n",
              n, C, raw ? "" : " scaled to length 1",
              total > 0 ? 100.0 * (var[0] + var[1]) / total : 0.0);

    /* frame, grid and ticks */
    sb_printf(&sb, "<g stroke=\"#e6e6e6\" stroke-width=\"1\">\n");
    for (double t = xmin; t <= xmax + xs * 1e-6; t += xs)
        sb_printf(&sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PX(t), TOP,
                  PX(t), TOP + ph);
    for (double t = ymin; t <= ymax + ys * 1e-6; t += ys)
        sb_printf(&sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", L, PY(t),
                  L + pw, PY(t));
    sb_printf(&sb, "</g>\n<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
                   "stroke=\"#444\" stroke-width=\"1.2\"/>\n",
              L, TOP, pw, ph);
    sb_printf(&sb, "<g font-size=\"13\" fill=\"#444\">\n");
    for (double t = xmin; t <= xmax + xs * 1e-6; t += xs) {
        char lab[32];
        fmt_tick(lab, sizeof lab, t, xs);
        sb_printf(&sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>"
                       "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                  PX(t), TOP + ph, PX(t), TOP + ph + 6, PX(t), TOP + ph + 22, lab);
    }
    for (double t = ymin; t <= ymax + ys * 1e-6; t += ys) {
        char lab[32];
        fmt_tick(lab, sizeof lab, t, ys);
        sb_printf(&sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>"
                       "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                  L - 6, PY(t), L, PY(t), L - 10, PY(t) + 4.5, lab);
    }
    sb_printf(&sb, "</g>\n");
    sb_printf(&sb, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"15\" fill=\"#333\" text-anchor=\"middle\">"
                   "first principal component (%.0f%% of the spread)</text>\n",
              L + pw / 2, H - BOT + 52, total > 0 ? 100.0 * var[0] / total : 0.0);
    sb_printf(&sb, "<text transform=\"translate(%.1f %.1f) rotate(-90)\" font-size=\"15\" "
                   "fill=\"#333\" text-anchor=\"middle\">second principal component (%.0f%%)</text>\n",
              L - 58, TOP + ph / 2, total > 0 ? 100.0 * var[1] / total : 0.0);

    /* points, then labels placed greedily where they hit no point and no
     * label placed before (right, left, above, below, then diagonals) */
    const double fs = 16, rad = 6;
    size_t n_placed = 0;
    for (size_t i = 0; i < n; i++) {
        double px = PX(xy[2 * i]), py = PY(xy[2 * i + 1]);
        placed[n_placed++] = (box){px - rad, py - rad, px + rad, py + rad};
        sb_printf(&sb, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.0f\" fill=\"%s\" stroke=\"#fff\" "
                       "stroke-width=\"1.5\"/>\n",
                  px, py, rad, palette[group[i] % 10]);
    }
    for (size_t i = 0; i < n; i++) {
        double px = PX(xy[2 * i]), py = PY(xy[2 * i + 1]);
        double tw = 0.62 * fs * (double)glyphs(word[i]), th = fs;
        /* candidate text anchors (left end of the baseline) */
        double cand[8][2] = {
            {px + rad + 4, py + th * 0.35},          {px - rad - 4 - tw, py + th * 0.35},
            {px - tw / 2, py - rad - 5},             {px - tw / 2, py + rad + th},
            {px + rad + 2, py - rad - 2},            {px - rad - 2 - tw, py - rad - 2},
            {px + rad + 2, py + rad + th - 2},       {px - rad - 2 - tw, py + rad + th - 2},
        };
        int best = 0;
        for (int c = 0; c < 8; c++) {
            box bx = {cand[c][0], cand[c][1] - th * 0.8, cand[c][0] + tw, cand[c][1] + th * 0.2};
            int ok = bx.x0 >= L && bx.x1 <= L + pw && bx.y0 >= TOP && bx.y1 <= TOP + ph;
            for (size_t k = 0; k < n_placed && ok; k++)
                ok = !overlaps(bx, placed[k]);
            if (ok) {
                best = c;
                break;
            }
        }
        box bx = {cand[best][0], cand[best][1] - th * 0.8, cand[best][0] + tw, cand[best][1] + th * 0.2};
        placed[n_placed++] = bx;
        sb_printf(&sb, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.0f\" fill=\"%s\" stroke=\"#fff\" "
                       "stroke-width=\"3\" paint-order=\"stroke\" stroke-linejoin=\"round\">",
                  cand[best][0], cand[best][1], fs, palette[group[i] % 10]);
        sb_xml(&sb, word[i]);
        sb_printf(&sb, "</text>\n");
    }
    sb_printf(&sb, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"13\" fill=\"#777\">Points close together "
                   "are words whose vectors point the same way. Made by gpt2in plot.</text>\n",
              L, H - 14);
    sb_printf(&sb, "</svg>\n");
#undef PX
#undef PY
    if (sb.oom) {
        cli_error("out of memory");
        goto done;
    }
    embed_writer *wr = cli_writer_open(out, &err);
    if (!wr) {
        cli_error("%s", err.msg);
        goto done;
    }
    if (embed_writer_write(wr, sb.s, sb.n, &err)) {
        cli_writer_abort(wr);            /* removes the temporary file */
        cli_error("%s", err.msg);
        goto done;
    }
    if (cli_writer_commit(wr, &err)) {
        cli_error("%s", err.msg);
        goto done;
    }
    fprintf(stderr, "plot: wrote %s (%zu words)\n", out, n);
    rc = CLI_OK;
done:
    for (int a = 0; a < n_args && dup; a++)
        free(dup[a]);
    free(dup);
    free(word);
    free(group);
    free(args);
    free(vec);
    free(xy);
    free(scratch);
    free(placed);
    free(sb.s);
    words_close(&m);
    return rc;
}
