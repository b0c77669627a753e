/* eval_cmd.c: `attngan eval` option parsing; the program is src/eval/evaluate.c. */
#include "app.h"
#include "../eval/evaluate.h"
#include "../io/locate.h"

#include <limits.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *EVAL_USAGE =
    "usage: attngan eval [--model DIR] [--evaluator DIR] [--data DIR] [--n N] [--out DIR]\n"
    "                    [--noise-k LIST] [--noise wiki|captions] [--baseline DIR] [--gen-seeds N]\n"
    "                    [--photos N] [--train-photos N [--train-framing LIST]] [--inception PATH]\n"
    "                    [--fid-inception F] [--wikipedia DIR]\n"
    "                    [--seed N] [--folds N] [--candidates N] [--threads N] [--device D]\n"
    "                    [--cache DIR | --no-cache] [--quiet]\n"
    "       attngan eval --train-classifier [--evaluator DIR] [--data DIR] [--size S] [--photos N]\n"
    "                    [--seed N] [--inception PATH] [--threads N] [--device D]\n"
    "                    [--cache DIR | --no-cache] [--quiet]\n"
    "\n"
    "Evaluates a model (default models/bird64) on the unseen test classes with a fixed evaluator, so\n"
    "that two models' reports can be compared: R-precision (DM-GAN's protocol: 99 mismatched\n"
    "captions of other classes, without its off-by-one defects; and beside it the same candidates\n"
    "ranked by the evaluator's full DAMSM score, words + sentence), FID and KID against a reference\n"
    "half of the real test-class photos, class accuracy and Inception Score of a linear classifier\n"
    "on the Inception trunk's features (when the evaluator has one), zero-shot top-1 per class\n"
    "(GAZSL's protocol; with the evaluator's codes, and with each model's own), and the same against\n"
    "k irrelevant sentences added to each caption. Writes OUT/report.md and OUT/report.json (every\n"
    "number with its settings and counts); as each row ends, the rows so far go to\n"
    "OUT/report.partial.md, which the report replaces at the end.\n"
    "Cost (models/bird64 on 2 cores, docs/eval_bird64.md): each real photo and each generated image\n"
    "goes through the Inception trunk: the 983 real photos take 91 s, each generated image 0.12 s.\n"
    "The real photos' features are then kept (--cache) and read on the next runs with the same\n"
    "evaluator. Generated images: N x gen-seeds x (1 + 2 per noise level above 0, + 1 per level with\n"
    "--baseline); the defaults (all 491 captions, 3 seeds, k = 0,1,3,10) draw 10,311: about 22\n"
    "minutes; --n 200 about 10 (13 measured on a busy machine).\n"
    "  --model DIR      the model directory (attngan export) or a training run (default: $ATTNGAN_MODEL,\n"
    "                   then models/bird64 next to the binary, in PREFIX/share/attngan, in the binary's\n"
    "                   repository, in the working directory)\n"
    "  --evaluator DIR  the evaluator: a DAMSM directory as `attngan pretrain --out DIR` or `attngan\n"
    "                   export --damsm RUN --out DIR` writes it (config.json, vocab.txt,\n"
    "                   text_encoder.safetensors, image_encoder.safetensors; optional\n"
    "                   classifier.safetensors). Its text codes use no ZSL noise (z = 0). Default:\n"
    "                   $ATTNGAN_EVALUATOR, then models/eval in the places of the model\n"
    "  --data DIR       AttnGAN's data/birds (default: $ATTNGAN_DATA/birds, else the evaluator config's\n"
    "                   DATA_DIR, else ../shared/data/birds)\n"
    "  --n N            evaluation captions: one per real photo of the other half (not the FID\n"
    "                   reference half), caption (i mod 10) of test image i; 0 or no --n: all of\n"
    "                   them (491 with every photo; said at the start), at most all; fewer: a seeded\n"
    "                   subset. The time grows with N (see Cost)\n"
    "  --photos N       use N real photos (a seeded subset balanced over the classes; default all)\n"
    "  --train-photos N rows of N training photos (a seeded draw of the training split's; default\n"
    "                   none): FID and KID only, against the same reference photos. What a\n"
    "                   generator that reproduced its training photos exactly would score: the\n"
    "                   data's own distance from the test photos (other classes, other framing)\n"
    "  --train-framing LIST  their framings, one row each (default: the evaluator's\n"
    "                   EXTRA.TIGHT_CROP_PAD): none, edge, mean (how the tight crops are padded, as\n"
    "                   EXTRA.TIGHT_CROP_PAD), original (only the photos with their own background)\n"
    "  --gen-seeds N    draws of every generated row, each a fresh draw of every image (default 3)\n"
    "  --out DIR        report directory (default out/eval)\n"
    "  --noise-k LIST   noise levels, comma-separated (default 0,1,3,10)\n"
    "  --noise KIND     wiki (default): the class's Wikipedia sentences judged not visual;\n"
    "                   captions: captions of other classes\n"
    "  --baseline DIR   another model drawn and scored the same way (e.g. a plain AttnGAN)\n"
    "  --inception PATH the evaluator trunk's weights (default: $ATTNGAN_INCEPTION, else its config's\n"
    "                   EXTRA.INCEPTION_WEIGHTS when absolute, else models/<its last component> in\n"
    "                   the model's places (make install puts inception_v3_nsfwjs there), else the\n"
    "                   configured relative path from the binary's repository and the working directory)\n"
    "  --fid-inception F  FID and KID on torchvision's inception_v3 (inception_v3_google weights as\n"
    "                   safetensors, e.g. from tools/pth2safetensors.py) instead of the evaluator\n"
    "                   trunk's pool features\n"
    "  --wikipedia DIR  the Wikipedia articles (default DATA/../wikipedia)\n"
    "  --seed N         0..2^53-1, default 1234;  --folds N  default 10;  --candidates N  default 100\n"
    "  --threads N      threads for the math, 1..1024 (default: the cores free at start)\n"
    "  --device D       cpu (default), cuda (a `make CUDA=1` build with a GPU) or hostdev (the\n"
    "                   device path on the CPU, for tests); or ATTNGAN_DEVICE: the evaluator's and\n"
    "                   the models' networks run there (loaded on the CPU, then moved); the metrics\n"
    "                   and the classifier on the host\n"
    "  --cache DIR      where the real photos' features are kept between runs (default\n"
    "                   $XDG_CACHE_HOME/attngan/eval, else ~/.cache/attngan/eval): one file per\n"
    "                   evaluator weights hash, trunk hash, image size, framing, FID network, data\n"
    "                   directory, device and convolution settings, holding every photo encoded so\n"
    "                   far (written atomically every 128 photos); about 310 MB for all 983 photos\n"
    "                   (the DAMSM's 256 x 17 x 17 region features are 296 KB a photo).\n"
    "                   A run that reads it gives the numbers of the run that wrote it; photos\n"
    "                   encoded in other batches (another --photos) may differ in the last bits.\n"
    "  --no-cache       encode every real photo and keep nothing\n"
    "  --train-classifier  instead of evaluating: train the evaluator's linear classifier (softmax\n"
    "                   regression on the trunk's pool and mean Mixed_6e features of the real photos of\n"
    "                   the test classes, a seeded 70/30 split per class) and write\n"
    "                   EVALUATOR/classifier.safetensors\n"
    "  --size S         --train-classifier: the photos' size, the generator's resolution (64, 128 or\n"
    "                   256; default 64)\n";

int cmd_eval(int argc, char **argv) {
    EvalArgs a;
    eval_args_default(&a);
    const char *model_flag = NULL, *evaluator_flag = NULL, *cache_flag = NULL;
    int no_cache = 0;
    int threads = 0;
    uint64_t seed = a.seed;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) { fputs(EVAL_USAGE, stdout); return 0; }
        else if (!strcmp(s, "--quiet")) a.quiet = 1;
        else if (!strcmp(s, "--train-classifier")) a.train_classifier = 1;
        else if (!strcmp(s, "--no-cache")) no_cache = 1;
        else if (!strcmp(s, "--cache") && more) cache_flag = argv[++i];
        else if (!strcmp(s, "--evaluator") && more) evaluator_flag = argv[++i];
        else if (!strcmp(s, "--gen-seeds") && more) { if (parse_int(argv[++i], &a.gen_seeds, "--gen-seeds")) return 2; }
        else if (!strcmp(s, "--photos") && more) { if (parse_int(argv[++i], &a.photos, "--photos")) return 2; }
        else if (!strcmp(s, "--train-photos") && more) { if (parse_int(argv[++i], &a.train_photos, "--train-photos")) return 2; }
        else if (!strcmp(s, "--train-framing") && more) {
            char *list = argv[++i];
            a.n_framings = 0;
            for (char *p = list; *p;) {
                size_t l = strcspn(p, ",");
                int f = l == 4 && !strncmp(p, "none", 4) ? EVAL_FRAMING_NONE : l == 4 && !strncmp(p, "edge", 4) ? EVAL_FRAMING_EDGE
                      : l == 4 && !strncmp(p, "mean", 4) ? EVAL_FRAMING_MEAN : l == 8 && !strncmp(p, "original", 8) ? EVAL_FRAMING_ORIGINAL : -1;
                if (f < 0 || a.n_framings == EVAL_MAX_FRAMINGS) {
                    fprintf(stderr, "attngan eval: --train-framing '%s': up to %d of none, edge, mean, original, comma-separated\n", list,
                            EVAL_MAX_FRAMINGS);
                    return 2;
                }
                a.framings[a.n_framings++] = f;
                p += l + (p[l] == ',');
            }
            if (!a.n_framings) { fprintf(stderr, "attngan eval: --train-framing is empty\n"); return 2; }
        }
        else if (!strcmp(s, "--size") && more) { if (parse_int(argv[++i], &a.size, "--size")) return 2; }
        else if (!strcmp(s, "--model") && more) model_flag = argv[++i];
        else if (!strcmp(s, "--baseline") && more) a.baseline = argv[++i];
        else if (!strcmp(s, "--data") && more) a.data = argv[++i];
        else if (!strcmp(s, "--wikipedia") && more) a.wiki = argv[++i];
        else if (!strcmp(s, "--inception") && more) a.inception = argv[++i];
        else if (!strcmp(s, "--fid-inception") && more) a.fid_inception = argv[++i];
        else if (!strcmp(s, "--out") && more) a.out = argv[++i];
        else if (!strcmp(s, "--n") && more) { if (parse_int(argv[++i], &a.n, "--n")) return 2; }
        else if (!strcmp(s, "--seed") && more) { if (parse_seed(argv[++i], &seed, "--seed")) return 2; }
        else if (!strcmp(s, "--folds") && more) { if (parse_int(argv[++i], &a.folds, "--folds")) return 2; }
        else if (!strcmp(s, "--candidates") && more) { if (parse_int(argv[++i], &a.candidates, "--candidates")) return 2; }
        else if (!strcmp(s, "--threads") && more) { if (parse_threads(argv[++i], &threads, "--threads")) return 2; }
        else if (!strcmp(s, "--noise") && more) {
            const char *v = argv[++i];
            if (!strcmp(v, "wiki")) a.noise_captions = 0;
            else if (!strcmp(v, "captions")) a.noise_captions = 1;
            else { fprintf(stderr, "attngan eval: --noise must be wiki or captions, not '%s'\n", v); return 2; }
        } else if (!strcmp(s, "--noise-k") && more) {
            char *list = argv[++i], *end;
            a.n_ks = 0;
            for (char *p = list; *p;) {
                long k = strtol(p, &end, 10);
                if (end == p || k < 0 || k > 100 || a.n_ks == EVAL_MAX_K || (*end && *end != ',')) {
                    fprintf(stderr, "attngan eval: --noise-k '%s': up to %d comma-separated levels in 0..100\n", list, EVAL_MAX_K);
                    return 2;
                }
                a.ks[a.n_ks++] = (int)k;
                p = *end ? end + 1 : end;
            }
            if (!a.n_ks) { fprintf(stderr, "attngan eval: --noise-k is empty\n"); return 2; }
        } else { fprintf(stderr, "attngan eval: unknown argument: %s\n%s", s, EVAL_USAGE); return 2; }
    }
    if (a.n < 0) { fprintf(stderr, "attngan eval: --n must be positive\n"); return 2; }
    if (a.photos < 0) { fprintf(stderr, "attngan eval: --photos must be positive\n"); return 2; }
    if (a.train_photos < 0) { fprintf(stderr, "attngan eval: --train-photos must be positive\n"); return 2; }
    if (a.n_framings && !a.train_photos) { fprintf(stderr, "attngan eval: --train-framing needs --train-photos N\n"); return 2; }
    if (a.gen_seeds < 1 || a.gen_seeds > 20) { fprintf(stderr, "attngan eval: --gen-seeds must be 1 to 20, not %d\n", a.gen_seeds); return 2; }
    if (a.size != 64 && a.size != 128 && a.size != 256) { fprintf(stderr, "attngan eval: --size must be 64, 128 or 256, not %d\n", a.size); return 2; }
    if (a.folds < 1 || a.candidates < 2) { fprintf(stderr, "attngan eval: --folds must be >= 1 and --candidates >= 2\n"); return 2; }
    if (threads) threads_set(threads);
    a.seed = seed;
    if (no_cache && cache_flag) { fprintf(stderr, "attngan eval: --cache DIR and --no-cache: give one of them\n"); return 2; }
    static char cache_dir[PATH_MAX];
    if (cache_flag) a.cache_dir = cache_flag;
    else if (!no_cache) {
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        if (xdg && xdg[0] == '/') snprintf(cache_dir, sizeof cache_dir, "%s/attngan/eval", xdg);
        else if (home && home[0]) snprintf(cache_dir, sizeof cache_dir, "%s/.cache/attngan/eval", home);
        a.cache_dir = cache_dir[0] ? cache_dir : NULL;
    }
    static char model[PATH_MAX], evaluator[PATH_MAX];
    if (locate_resource(LOCATE_EVALUATOR, evaluator_flag, evaluator, sizeof evaluator)) { fprintf(stderr, "attngan eval: %s\n", err_msg()); return 2; }
    a.evaluator = evaluator;
    if (!a.train_classifier) {
        if (locate_resource(LOCATE_MODEL, model_flag, model, sizeof model)) { fprintf(stderr, "attngan eval: %s\n", err_msg()); return 2; }
        a.model = model;
    }
    return eval_main(&a);
}
