/* main.c: the attngan command line. Subcommands arrive with the issues that build them. */
#include "app.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int parse_int(const char *s, int *out, const char *flag) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < -2147483647L || v > 2147483647L) {
        fprintf(stderr, "attngan: %s: '%s' is not an integer\n", flag, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int parse_double(const char *s, double *out, const char *flag) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        fprintf(stderr, "attngan: %s: '%s' is not a number\n", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: attngan <command> [options]\n"
            "\n"
            "ZSL-AttnGAN in C: text-to-image birds from noisy text.\n"
            "\n"
            "commands:\n"
            "  data        data info: what a CUB data/birds directory holds (attngan data --help)\n"
            "  pretrain    DAMSM + ZSL pretraining of the encoders (attngan pretrain --help)\n"
            "  train       AttnGAN + ZSL training on the pretrained encoders (attngan train --help)\n"
            "  generate    draw birds for a caption, any length (attngan generate --help)\n"
            "  examples    draw every caption of an example file, with attention figures\n"
            "  sample      one image per caption of a data split, in AttnGAN's folders\n"
            "  serve       HTTP server: POST /api/v1.0/bird, a web page, /healthz (attngan serve --help)\n"
            "  eval        a model scored by a fixed evaluator: R-precision, FID, KID, class accuracy,\n"
            "              Inception Score, zero-shot accuracy, noisy text: one report\n"
            "  export      a training run -> a model directory for generate and serve (--damsm: a\n"
            "              pretraining run -> an evaluator directory)\n"
            "  parity      replay a PyTorch reference dump and compare every tensor (attngan parity --help)\n"
            "  bench       time sample / gan_step / damsm_step at the reference's sizes (attngan bench --help)\n"
            "  version     print the version and the thread count in use\n"
            "  help        this text\n"
            "\n"
            "Every command takes --help. Generation uses the bundled model models/bird64 unless\n"
            "--model names another.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return argc < 2 ? 1 : 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("attngan 0.1.0 (threads %d)\n", threads_get());
        return 0;
    }
    if (!strcmp(argv[1], "parity")) return cmd_parity(argc - 1, argv + 1);
    if (!strcmp(argv[1], "data")) return cmd_data(argc - 1, argv + 1);
    if (!strcmp(argv[1], "pretrain")) return cmd_pretrain(argc - 1, argv + 1);
    if (!strcmp(argv[1], "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(argv[1], "generate")) return cmd_generate(argc - 1, argv + 1);
    if (!strcmp(argv[1], "examples")) return cmd_examples(argc - 1, argv + 1);
    if (!strcmp(argv[1], "sample")) return cmd_sample(argc - 1, argv + 1);
    if (!strcmp(argv[1], "export")) return cmd_export(argc - 1, argv + 1);
    if (!strcmp(argv[1], "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(argv[1], "serve")) return cmd_serve(argc - 1, argv + 1);
    if (!strcmp(argv[1], "bench")) return cmd_bench(argc - 1, argv + 1);
    fprintf(stderr, "attngan: unknown command '%s' (try 'attngan help')\n", argv[1]);
    return 2;
}
