/* generate.c: `attngan generate`, `attngan examples` and `attngan sample`: birds from text with a
 * model directory (src/gen/gen.h). */
#include "app.h"
#include "../io/figure.h"
#include "../data/cub.h"
#include "../data/text_notice.h"
#include "../io/locate.h"
#include "../gen/gen.h"
#include "../io/files.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <limits.h>
#include <unistd.h>

#define DEFAULT_MODEL "models/bird64"
/* where the default model and captions are looked for (src/io/locate.h) */
#define SEARCH_TEXT "--model, $ATTNGAN_MODEL, then models/bird64 next to the binary, in PREFIX/share/attngan\n" \
                    "                     (make install), in the binary's repository, in the working directory"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The n images of one stage as one PNG (a grid of up to 8 columns, or the single image). */
static int save_images(const GenResult *r, int stage, const char *path) {
    int S = r->size[stage];
    const float **imgs = xmalloc((size_t)r->n * sizeof(float *));
    for (int i = 0; i < r->n; i++) imgs[i] = r->imgs[stage] + (size_t)i * 3 * S * S;
    Image img = {0};
    int rc = r->n == 1 ? gen_result_image(r, stage, 0, &img) : figure_grid(imgs, r->n, S, r->n < 8 ? r->n : 8, 2, &img);
    if (!rc) rc = image_save_png(path, &img);
    image_free(&img);
    free(imgs);
    return rc;
}

/* Attention figures of every image, stacked. */
static int save_attention(const GenResult *r, const char *path) {
    Image *rows = xcalloc((size_t)r->n, sizeof(Image));
    int rc = 0, w = 0, h = 0;
    for (int i = 0; i < r->n && !rc; i++) {
        rc = gen_result_attention(r, i, &rows[i]);
        if (!rc) { if (rows[i].w > w) w = rows[i].w; h += rows[i].h; }
    }
    if (!rc) {
        Image all = {w, h, xcalloc((size_t)w * h * 3, 1)};
        int y = 0;
        for (int i = 0; i < r->n; i++) {
            for (int row = 0; row < rows[i].h; row++)
                memcpy(all.data + (size_t)(y + row) * w * 3, rows[i].data + (size_t)row * rows[i].w * 3, (size_t)rows[i].w * 3);
            y += rows[i].h;
        }
        rc = image_save_png(path, &all);
        image_free(&all);
    }
    for (int i = 0; i < r->n; i++) image_free(&rows[i]);
    free(rows);
    return rc;
}

/* Moves the loaded model to the process's device (--device; loading runs on the CPU) and says so
 * when it is not the CPU. */
static void model_to_device(GenModel *m, const char *cmd) {
    int dev = device_current();
    if (dev == DEVICE_CPU) return;
    gen_model_to_device(m, dev);
    printf("%s: the model runs on the device %s\n", cmd, device_name(dev));
}

/* "line 3: " for --lines and examples, "" for one text */
static void print_text_report(const GenResult *r, const char *text, FILE *f) {
    char *changed = text_changed_words(text);
    if (changed) fprintf(f, "letters outside ASCII dropped (AttnGAN's tokenizer keeps a word's ASCII letters): %s\n", changed);
    free(changed);
    if (r->unknown) fprintf(f, "unknown words (dropped): %s\n", r->unknown);
    if (r->n_segments > 1) {
        fprintf(f, "%d segments (relevance = known-word fraction + cos(captions) - cos(non-visual text); * = used):\n", r->n_segments);
        for (int s = 0; s < r->n_segments; s++)
            fprintf(f, "  %c %6.3f  %s\n", r->segments[s].used ? '*' : ' ', (double)r->segments[s].relevance, r->segments[s].text);
    }
}

/* "out.png" + k -> "out_003.png" */
static void numbered(char *buf, size_t len, const char *path, int k) {
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash)) dot = path + strlen(path);
    snprintf(buf, len, "%.*s_%03d%s", (int)(dot - path), path, k, dot);
}

static const char *GENERATE_USAGE =
    "usage: attngan generate [CAPTION] [-o FILE] [--model DIR] [--stage N] [--attention FILE]\n"
    "                        [--seed N] [--n N] [--file FILE] [--lines] [--max-segments K]\n"
    "                        [--long-text select|first|subset] [--threads N] [--device D]\n"
    "\n"
    "Draws birds for a caption with a trained model (default " DEFAULT_MODEL ", the bundled one).\n"
    "  CAPTION            the text (quote it); without it the text is read from --file or stdin\n"
    "  -o, --output FILE  PNG to write (default bird.png); with --n > 1 a grid of the n birds\n"
    "  --model DIR        a model directory (attngan export) or a training run's directory; without\n"
    "                     it: " SEARCH_TEXT "\n"
    "  --stage N          which stage's image: 1 = 64 px, 2 = 128 px, 3 = 256 px (default: the last)\n"
    "  --attention FILE   also write the attention figure (each word's map under the word; models\n"
    "                     with 2 or 3 stages: AttnGAN's stage 1 has no word attention)\n"
    "  --seed N           the noise seed, 0..2^53-1 (default 0): the same seed gives the same birds\n"
    "  --n N              birds per caption (1..64, default 1)\n"
    "  --file FILE        read the text from FILE ('-' = stdin)\n"
    "  --lines            each line of the text is its own caption: FILE_NNN.png for line NNN (blank\n"
    "                     lines are counted and skipped); errors name the line, the others are drawn\n"
    "  --max-segments K   long text: the most sentences used (default 3)\n"
    "  --long-text MODE   select (default: relevance-scored sentences, below), first (its first 18\n"
    "                     known words as one caption) or subset (AttnGAN's random 18-word subset)\n"
    "  --threads N        threads for the math, 1..1024 (default: the cores free at start)\n"
    "  --device D         cpu (default), cuda (a `make CUDA=1` build with a GPU) or hostdev (the\n"
    "                     device path on the CPU, for tests); or ATTNGAN_DEVICE. The model is\n"
    "                     loaded on the CPU and moved there\n"
    "\n"
    "Text of any length: words not in the vocabulary are dropped and listed. A text of at most\n"
    "TEXT.WORDS_NUM (18) known words is one caption, encoded as AttnGAN does. A longer text is cut\n"
    "into sentences (and sentences into windows of 18 words); each is encoded by the bi-LSTM and\n"
    "scored for visual relevance: the fraction of its words in the vocabulary plus the cosine of\n"
    "its sentence code to the mean code of training captions minus that to the mean code of\n"
    "Wikipedia sentences judged not visual. The best one and up to K-1 more within 0.15 of it are\n"
    "used: G attends to all their words and its sentence code is ZSL G applied to the mean of\n"
    "their codes. The report lists the sentences with their scores.\n"
    "The text must be UTF-8. AttnGAN's tokenizer keeps only a word's ASCII letters (\"weißen\" is read as\n"
    "\"weien\"): such words are listed. Exit status: 0, 1 when an image cannot be written or some\n"
    "--lines failed, 2 for bad arguments, text or model.\n";

/* Loads the model that --model names (NULL: the search of src/io/locate.h); 2 after a message. */
static int load_model(GenModel *m, const char *flag, char *path, size_t len, const char *cmd) {
    if (locate_resource(LOCATE_MODEL, flag, path, len) || gen_model_load(m, path)) {
        fprintf(stderr, "attngan %s: %s\n", cmd, err_msg());
        return 2;
    }
    return 0;
}

/* 0 if text is UTF-8; else a message naming the byte (and the line, when lineno > 0). */
static int check_utf8(const char *text, const char *cmd, int lineno) {
    long bad = text_utf8_invalid_at(text);
    if (bad < 0) return 0;
    if (lineno > 0) fprintf(stderr, "attngan %s: line %d: not valid UTF-8 (byte %ld of the line)\n", cmd, lineno, bad + 1);
    else fprintf(stderr, "attngan %s: the text is not valid UTF-8 (byte %ld)\n", cmd, bad + 1);
    return -1;
}

int cmd_generate(int argc, char **argv) {
    const char *model_flag = NULL, *out = "bird.png", *att = NULL, *file = NULL, *caption = NULL;
    int stage = 0, n = 1, lines = 0, threads = 0, maxseg = GEN_MAX_SEGMENTS;
    uint64_t seed = 0;
    GenLongText long_text = GEN_LONG_SELECT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(GENERATE_USAGE, stdout); return 0; }
        else if (!strcmp(a, "--lines")) lines = 1;
        else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && more) out = argv[++i];
        else if (!strcmp(a, "--model") && more) model_flag = argv[++i];
        else if (!strcmp(a, "--attention") && more) att = argv[++i];
        else if (!strcmp(a, "--file") && more) file = argv[++i];
        else if (!strcmp(a, "--long-text") && more) {
            const char *v = argv[++i];
            if (!strcmp(v, "select")) long_text = GEN_LONG_SELECT;
            else if (!strcmp(v, "first")) long_text = GEN_LONG_FIRST;
            else if (!strcmp(v, "subset")) long_text = GEN_LONG_SUBSET;
            else { fprintf(stderr, "attngan generate: --long-text must be select, first or subset, not '%s'\n", v); return 2; }
        }
        else if (!strcmp(a, "--stage") && more) { if (parse_int(argv[++i], &stage, "--stage")) return 2; }
        else if (!strcmp(a, "--seed") && more) { if (parse_seed(argv[++i], &seed, "--seed")) return 2; }
        else if (!strcmp(a, "--n") && more) { if (parse_int(argv[++i], &n, "--n")) return 2; }
        else if (!strcmp(a, "--threads") && more) { if (parse_threads(argv[++i], &threads, "--threads")) return 2; }
        else if (!strcmp(a, "--max-segments") && more) { if (parse_int(argv[++i], &maxseg, "--max-segments")) return 2; }
        else if (a[0] == '-' && a[1]) { fprintf(stderr, "attngan generate: unknown option or missing value: %s\n%s", a, GENERATE_USAGE); return 2; }
        else if (!caption) caption = a;
        else { fprintf(stderr, "attngan generate: more than one caption argument ('%s'): quote the caption\n", a); return 2; }
    }
    if (caption && file) { fprintf(stderr, "attngan generate: give a caption or --file, not both\n"); return 2; }
    if (n < 1 || n > GEN_MAX_N) { fprintf(stderr, "attngan generate: --n %d: must be 1..%d\n", n, GEN_MAX_N); return 2; }
    if (maxseg < 1) { fprintf(stderr, "attngan generate: --max-segments must be at least 1\n"); return 2; }
    if (threads) threads_set(threads);
    char *text = NULL;
    if (caption) text = xstrdup(caption);
    else {
        if (!file && isatty(0)) { fprintf(stderr, "attngan generate: no caption (give one, or --file, or pipe text in)\n%s", GENERATE_USAGE); return 2; }
        if (!(text = read_file_all(file ? file : "-", GEN_MAX_TEXT * 4))) { fprintf(stderr, "attngan generate: %s\n", err_msg()); return 2; }
    }
    if (!lines && check_utf8(text, "generate", 0)) { free(text); return 2; }
    GenModel m;
    char model[PATH_MAX];
    double t0 = now_s();
    if (load_model(&m, model_flag, model, sizeof model, "generate")) { free(text); return 2; }
    int S = gen_model_stages(&m);
    if (stage < 0 || stage > S) { fprintf(stderr, "attngan generate: --stage %d: the model has stages 1..%d\n", stage, S); gen_model_free(&m); free(text); return 2; }
    if (att && S < 2) {
        fprintf(stderr, "attngan generate: --attention: %s is a one-stage (64 px) model; AttnGAN's first stage has no word attention\n", model);
        gen_model_free(&m);
        free(text);
        return 2;
    }
    printf("model %s: %d stage%s (%d px)%s%s, loaded in %.2f s\n", model, S, S > 1 ? "s" : "", 64 << (S - 1),
           m.trained_on[0] ? ", trained on " : "", m.trained_on, now_s() - t0);
    model_to_device(&m, "generate");
    GenOptions o;
    gen_options_default(&o);
    o.n = n;
    o.seed = seed;
    o.max_segments = maxseg;
    o.long_text = long_text;
    int rc = 0, k = 0, failed = 0, lineno = 0;
    /* one text, or (--lines) every line, numbered from 1 with the blank ones counted */
    for (char *line = text, *next; line; line = next) {
        next = NULL;
        if (lines) {
            char *nl = strchr(line, '\n');
            if (nl) { *nl = 0; next = nl + 1; if (!*next) next = NULL; }
            lineno++;
            size_t l = strlen(line);
            if (l && line[l - 1] == '\r') line[--l] = 0;
            int blank = 1;
            for (const char *p = line; *p && blank; p++) blank = (*p == ' ' || *p == '\t');
            if (blank) continue;
        }
        k++;
        if (lines && check_utf8(line, "generate", lineno)) { failed++; continue; }
        char path[2048], apath[2048];
        if (lines) { numbered(path, sizeof path, out, lineno); if (att) numbered(apath, sizeof apath, att, lineno); }
        else { snprintf(path, sizeof path, "%s", out); if (att) snprintf(apath, sizeof apath, "%s", att); }
        GenResult r;
        double t1 = now_s();
        if (gen_run(&m, line, &o, &r)) {
            if (lines) { fprintf(stderr, "attngan generate: line %d: %s\n", lineno, err_msg()); failed++; continue; }
            fprintf(stderr, "attngan generate: %s\n", err_msg());
            rc = 2;
            break;
        }
        double dt = now_s() - t1;
        int st = stage ? stage - 1 : r.n_stages - 1;
        if (save_images(&r, st, path) || (att && save_attention(&r, apath))) {
            fprintf(stderr, "attngan generate: %s\n", err_msg());
            gen_result_free(&r);
            rc = 1;
            break;
        }
        print_text_report(&r, line, stdout);
        printf("%s: %d bird%s of %d px in %.0f ms%s%s\n", path, r.n, r.n > 1 ? "s" : "", r.size[st], dt * 1e3,
               att ? ", attention: " : "", att ? apath : "");
        gen_result_free(&r);
    }
    if (!rc && lines && k == 0 && !failed) { fprintf(stderr, "attngan generate: no captions in the text (%d blank lines)\n", lineno); rc = 2; }
    if (!rc && failed) {
        fprintf(stderr, "attngan generate: %d of %d lines with text failed\n", failed, k);
        rc = k == failed ? 2 : 1;
    }
    gen_model_free(&m);
    free(text);
    return rc;
}

/* ------------------------------------------------------------------ examples */
static const char *EXAMPLES_USAGE =
    "usage: attngan examples [--model DIR] [--captions FILE] [--out DIR] [--seed N] [--n N] [--threads N]\n"
    "                        [--device D]\n"
    "\n"
    "Draws every caption of an example file (one caption a line, AttnGAN's example_captions.txt\n"
    "format; blank lines are skipped) with the model (default " DEFAULT_MODEL "):\n"
    "  DIR/NNN.png         the birds of caption NNN (--n of them, default 4), the last stage\n"
    "  DIR/NNN_stages.png  every stage of the first bird, side by side (models with 2-3 stages)\n"
    "  DIR/NNN_att.png     its attention figure (models with 2-3 stages)\n"
    "  DIR/examples.png    the first bird of every caption, one row each: its number, the bird and\n"
    "                      the caption; DIR/examples.txt the captions\n"
    "  --model DIR         without it: " SEARCH_TEXT "\n"
    "  --captions FILE     without it: examples/captions.txt in the same places as the model\n"
    "  --seed N            0..2^53-1 (default 0)\n"
    "  --out DIR           default out/\n"
    "  --device D          cpu (default), cuda (a `make CUDA=1` build with a GPU) or hostdev (the\n"
    "                      device path on the CPU, for tests); or ATTNGAN_DEVICE\n";

int cmd_examples(int argc, char **argv) {
    const char *model_flag = NULL, *caps_flag = NULL, *outdir = "out";
    int n = 4, threads = 0;
    uint64_t seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(EXAMPLES_USAGE, stdout); return 0; }
        else if (!strcmp(a, "--model") && more) model_flag = argv[++i];
        else if (!strcmp(a, "--captions") && more) caps_flag = argv[++i];
        else if (!strcmp(a, "--out") && more) outdir = argv[++i];
        else if (!strcmp(a, "--seed") && more) { if (parse_seed(argv[++i], &seed, "--seed")) return 2; }
        else if (!strcmp(a, "--n") && more) { if (parse_int(argv[++i], &n, "--n")) return 2; }
        else if (!strcmp(a, "--threads") && more) { if (parse_threads(argv[++i], &threads, "--threads")) return 2; }
        else { fprintf(stderr, "attngan examples: unknown argument: %s\n%s", a, EXAMPLES_USAGE); return 2; }
    }
    if (n < 1 || n > GEN_MAX_N) { fprintf(stderr, "attngan examples: --n %d: must be 1..%d\n", n, GEN_MAX_N); return 2; }
    if (threads > 0) threads_set(threads);
    char caps[PATH_MAX], model[PATH_MAX];
    if (locate_resource(LOCATE_CAPTIONS, caps_flag, caps, sizeof caps)) { fprintf(stderr, "attngan examples: %s\n", err_msg()); return 2; }
    char *text = read_file_all(caps, GEN_MAX_TEXT * 4);
    if (!text) { fprintf(stderr, "attngan examples: %s\n", err_msg()); return 2; }
    GenModel m;
    if (load_model(&m, model_flag, model, sizeof model, "examples")) { free(text); return 2; }
    model_to_device(&m, "examples");
    if (mkdir_p(outdir)) { fprintf(stderr, "attngan examples: %s\n", err_msg()); gen_model_free(&m); free(text); return 1; }
    GenOptions o;
    gen_options_default(&o);
    o.n = n;
    o.seed = seed;
    int S = gen_model_stages(&m), size = 64 << (S - 1), k = 0, rc = 0, lineno = 0;
    printf("model %s: %d stage%s (%d px)%s%s\n", model, S, S > 1 ? "s" : "", size, m.trained_on[0] ? ", trained on " : "", m.trained_on);
    if (S == 1) printf("(a one-stage model: no attention figures; AttnGAN's first stage does not attend to words)\n");
    float **firsts = NULL;
    char **lines_used = NULL;
    size_t txt_len = 1;
    char *txt = xcalloc(1, 1);
    double t0 = now_s();
    for (char *line = text, *next; line; line = next) {
        char *nl = strchr(line, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl) *nl = 0;
        if (next && !*next) next = NULL;
        lineno++;
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\r' || line[l - 1] == ' ')) line[--l] = 0;
        if (!l) continue;
        if (check_utf8(line, "examples", lineno)) { rc = 2; break; }
        GenResult r;
        if (gen_run(&m, line, &o, &r)) { fprintf(stderr, "attngan examples: %s line %d: %s\n", caps, lineno, err_msg()); rc = 2; break; }
        k++;
        char path[2300];
        snprintf(path, sizeof path, "%s/%03d.png", outdir, k);
        rc = save_images(&r, r.n_stages - 1, path);
        if (!rc && r.n_stages > 1) {
            /* the first bird at every stage, each scaled up to the last size (nearest) */
            Image row = {size * r.n_stages + 2 * (r.n_stages + 1), size + 4, NULL};
            row.data = xcalloc((size_t)row.w * row.h * 3, 1);
            for (int s = 0; s < r.n_stages; s++) {
                Image im;
                gen_result_image(&r, s, 0, &im);
                int f = size / im.w;
                for (int y = 0; y < size; y++)
                    for (int x = 0; x < size; x++)
                        memcpy(row.data + ((size_t)(y + 2) * row.w + 2 + s * (size + 2) + x) * 3, im.data + ((size_t)(y / f) * im.w + x / f) * 3, 3);
                image_free(&im);
            }
            snprintf(path, sizeof path, "%s/%03d_stages.png", outdir, k);
            rc = image_save_png(path, &row);
            image_free(&row);
            if (!rc) {
                GenResult one = r;
                one.n = 1;
                snprintf(path, sizeof path, "%s/%03d_att.png", outdir, k);
                rc = save_attention(&one, path);
            }
        }
        if (rc) { fprintf(stderr, "attngan examples: %s\n", err_msg()); gen_result_free(&r); break; }
        int ss = r.size[r.n_stages - 1];
        firsts = xrealloc(firsts, (size_t)k * sizeof(float *));
        firsts[k - 1] = xmalloc((size_t)3 * ss * ss * sizeof(float));
        memcpy(firsts[k - 1], r.imgs[r.n_stages - 1], (size_t)3 * ss * ss * sizeof(float));
        lines_used = xrealloc(lines_used, (size_t)k * sizeof(char *));
        lines_used[k - 1] = line;
        txt_len += strlen(line) + 16;
        txt = xrealloc(txt, txt_len);
        sprintf(txt + strlen(txt), "%03d: %s\n", k, line);
        printf("%s/%03d.png  %s\n", outdir, k, line);
        print_text_report(&r, line, stdout);
        gen_result_free(&r);
    }
    if (!rc && k == 0) { fprintf(stderr, "attngan examples: %s has no captions\n", caps); rc = 2; }
    if (!rc) {
        Image grid = {0};
        char path[2300];
        rc = figure_captioned((const float *const *)firsts, (const char *const *)lines_used, k, size, 560, &grid);
        snprintf(path, sizeof path, "%s/examples.png", outdir);
        if (!rc) rc = image_save_png(path, &grid);
        image_free(&grid);
        snprintf(path, sizeof path, "%s/examples.txt", outdir);
        if (!rc) rc = write_file_atomic(path, txt, strlen(txt));
        if (rc) fprintf(stderr, "attngan examples: %s\n", err_msg());
        else printf("%d captions drawn in %.1f s: %s/examples.png (one row per caption), captions in examples.txt\n", k, now_s() - t0, outdir);
    }
    for (int i = 0; i < k; i++) free(firsts ? firsts[i] : NULL);
    free(firsts);
    free(lines_used);
    free(txt);
    gen_model_free(&m);
    free(text);
    return rc;
}

/* ------------------------------------------------------------------ sample */
static const char *SAMPLE_USAGE =
    "usage: attngan sample [--data DIR] [--split test|train] [--model DIR] [--out DIR] [--seed N]\n"
    "                      [--limit N] [--threads N] [--device D]\n"
    "\n"
    "One image per caption of a split, in AttnGAN's folder structure (its trainer's sampling):\n"
    "  OUT/<split>/single/<class>/<image>_s<k>.png   caption k (0..9) of that image, the last stage\n"
    "  --data DIR   AttnGAN's data/birds directory; without it $ATTNGAN_DATA/birds, else the model's\n"
    "               DATA_DIR (the data it was trained on), else ../shared/data/birds\n"
    "  --model DIR  without it: --model, $ATTNGAN_MODEL, then models/bird64 (as attngan generate)\n"
    "  --out DIR    default out/samples\n"
    "  --limit N    only the first N captions (default: all)\n"
    "  --device D   cpu (default), cuda (a `make CUDA=1` build with a GPU) or hostdev (the device\n"
    "               path on the CPU, for tests); or ATTNGAN_DEVICE\n"
    "Captions longer than TEXT.WORDS_NUM words are cut to their first WORDS_NUM words (AttnGAN samples\n"
    "a random subset). Image (i, k) uses seed + 10 * i + k, so a run can be split and repeated.\n";

int cmd_sample(int argc, char **argv) {
    const char *model_flag = NULL, *data_flag = NULL, *split = "test", *outdir = "out/samples";
    int limit = 0, threads = 0;
    uint64_t seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(SAMPLE_USAGE, stdout); return 0; }
        else if (!strcmp(a, "--model") && more) model_flag = argv[++i];
        else if (!strcmp(a, "--data") && more) data_flag = argv[++i];
        else if (!strcmp(a, "--split") && more) split = argv[++i];
        else if (!strcmp(a, "--out") && more) outdir = argv[++i];
        else if (!strcmp(a, "--seed") && more) { if (parse_seed(argv[++i], &seed, "--seed")) return 2; }
        else if (!strcmp(a, "--limit") && more) { if (parse_int(argv[++i], &limit, "--limit")) return 2; }
        else if (!strcmp(a, "--threads") && more) { if (parse_threads(argv[++i], &threads, "--threads")) return 2; }
        else { fprintf(stderr, "attngan sample: unknown argument: %s\n%s", a, SAMPLE_USAGE); return 2; }
    }
    if (strcmp(split, "test") && strcmp(split, "train")) { fprintf(stderr, "attngan sample: --split must be test or train, not '%s'\n", split); return 2; }
    if (threads > 0) threads_set(threads);
    GenModel m;
    char model[PATH_MAX], data[PATH_MAX], from[PATH_MAX + 32], source[PATH_MAX + 64];
    if (load_model(&m, model_flag, model, sizeof model, "sample")) return 2;
    snprintf(from, sizeof from, "the model %s", model);
    if (locate_data(data_flag, m.tc.data_dir, from, data, sizeof data, source, sizeof source)) {
        fprintf(stderr, "attngan sample: %s\n", err_msg());
        gen_model_free(&m);
        return 2;
    }
    model_to_device(&m, "sample");
    Cub cub;
    if (cub_open(&cub, data)) {
        fprintf(stderr, "attngan sample: %s (data %s from %s: %s)\n", err_msg(), data, source, locate_data_hint());
        gen_model_free(&m);
        return 2;
    }
    const CubSplit *sp = strcmp(split, "test") ? &cub.train : &cub.test;
    int rc = 0;
    long done = 0, total = (long)sp->n * CUB_CAPTIONS_PER_IMAGE;
    if (limit > 0 && limit < total) total = limit;
    GenOptions o;
    gen_options_default(&o);
    double t0 = now_s();
    for (int i = 0; i < sp->n && done < total && !rc; i++) {
        const CubImage *im = &sp->images[i];
        char dir[2300], path[2400];
        snprintf(dir, sizeof dir, "%s/%s/single/%s", outdir, split, im->key);
        char *slash = strrchr(dir, '/');
        *slash = 0;
        if (mkdir_p(dir)) { rc = 1; break; }
        *slash = '/';
        for (int k = 0; k < CUB_CAPTIONS_PER_IMAGE && done < total; k++) {
            if (im->cap_len[k] <= 0) continue;
            int nw = im->cap_len[k] < m.mc.words_num ? im->cap_len[k] : m.mc.words_num;
            /* the caption's first words through the vocabularies (the data's ids -> words -> model ids) */
            char *cap = vocab_decode(&cub.vocab, im->caps[k], nw);
            o.seed = seed + 10u * (uint64_t)i + (uint64_t)k;
            GenResult r;
            if (gen_run(&m, cap, &o, &r)) {
                fprintf(stderr, "attngan sample: %s caption %d: %s\n", im->key, k, err_msg());
                free(cap);
                continue;
            }
            snprintf(path, sizeof path, "%s_s%d.png", dir, k);
            if (save_images(&r, r.n_stages - 1, path)) rc = 1;
            gen_result_free(&r);
            free(cap);
            done++;
            if (done % 500 == 0 || done == total)
                fprintf(stderr, "\rsample: %ld/%ld captions (%.1f/s)", done, total, (double)done / (now_s() - t0));
        }
    }
    fprintf(stderr, "\n");
    if (rc) fprintf(stderr, "attngan sample: %s\n", err_msg());
    else printf("%ld images in %s/%s/single/ in %.1f s\n", done, outdir, split, now_s() - t0);
    cub_close(&cub);
    gen_model_free(&m);
    return rc;
}
