/* eval_cmd.c: `attngan eval` option parsing; the program is src/eval/evaluate.c. */
#include "app.h"
#include "../eval/evaluate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *EVAL_USAGE =
    "usage: attngan eval [--model DIR] [--data DIR] [--n N] [--out DIR] [--noise-k LIST]\n"
    "                    [--noise wiki|captions] [--baseline DIR] [--inception PATH] [--fid-inception F]\n"
    "                    [--wikipedia DIR]\n"
    "                    [--seed N] [--folds N] [--candidates N] [--threads N] [--quiet]\n"
    "\n"
    "Evaluates a model (default models/bird64) on the test split: R-precision (DM-GAN's protocol,\n"
    "without its off-by-one defects), FID against the real test-class photos, zero-shot top-1 per\n"
    "class (GAZSL's protocol), and R-precision and FID against k irrelevant sentences added to each\n"
    "caption. Writes OUT/report.md and OUT/report.json (every number with its settings and counts).\n"
    "  --model DIR      the model directory (attngan export), with image_encoder.safetensors\n"
    "  --data DIR       AttnGAN's data/birds (default: the model config's DATA_DIR)\n"
    "  --n N            evaluation captions: caption (i mod 10) of test image i (default all 2933;\n"
    "                   fewer: a seeded subset)\n"
    "  --out DIR        report directory (default out/eval)\n"
    "  --noise-k LIST   noise levels, comma-separated (default 0,1,3,10)\n"
    "  --noise KIND     wiki (default): the class's Wikipedia sentences judged not visual;\n"
    "                   captions: captions of other classes\n"
    "  --baseline DIR   another model drawn and scored the same way (e.g. a plain AttnGAN)\n"
    "  --inception PATH the Inception trunk's weights (default: the model config's)\n"
    "  --fid-inception F  FID on torchvision's inception_v3 (inception_v3_google weights as safetensors,\n"
    "                   e.g. from tools/pth2safetensors.py) instead of the DAMSM trunk's pool features\n"
    "  --wikipedia DIR  the Wikipedia articles (default DATA/../wikipedia)\n"
    "  --seed N         default 1234;  --folds N  default 10;  --candidates N  default 100\n"
    "  --threads N      threads for the math (default: all cores)\n";

int cmd_eval(int argc, char **argv) {
    EvalArgs a;
    eval_args_default(&a);
    a.model = "models/bird64";
    int threads = 0, seed = (int)a.seed;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) { fputs(EVAL_USAGE, stdout); return 0; }
        else if (!strcmp(s, "--quiet")) a.quiet = 1;
        else if (!strcmp(s, "--model") && more) a.model = argv[++i];
        else if (!strcmp(s, "--baseline") && more) a.baseline = argv[++i];
        else if (!strcmp(s, "--data") && more) a.data = argv[++i];
        else if (!strcmp(s, "--wikipedia") && more) a.wiki = argv[++i];
        else if (!strcmp(s, "--inception") && more) a.inception = argv[++i];
        else if (!strcmp(s, "--fid-inception") && more) a.fid_inception = argv[++i];
        else if (!strcmp(s, "--out") && more) a.out = argv[++i];
        else if (!strcmp(s, "--n") && more) { if (parse_int(argv[++i], &a.n, "--n")) return 2; }
        else if (!strcmp(s, "--seed") && more) { if (parse_int(argv[++i], &seed, "--seed")) return 2; }
        else if (!strcmp(s, "--folds") && more) { if (parse_int(argv[++i], &a.folds, "--folds")) return 2; }
        else if (!strcmp(s, "--candidates") && more) { if (parse_int(argv[++i], &a.candidates, "--candidates")) return 2; }
        else if (!strcmp(s, "--threads") && more) { if (parse_int(argv[++i], &threads, "--threads")) return 2; }
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
    if (a.folds < 1 || a.candidates < 2) { fprintf(stderr, "attngan eval: --folds must be >= 1 and --candidates >= 2\n"); return 2; }
    if (threads < 0) { fprintf(stderr, "attngan eval: --threads must be positive\n"); return 2; }
    if (threads) threads_set(threads);
    a.seed = (uint64_t)(int64_t)seed;
    return eval_main(&a);
}
