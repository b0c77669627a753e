/* main.c: the attngan command line. Subcommands arrive with the issues that build them. */
#include "app.h"
#include "../core/dist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int parse_seed(const char *s, uint64_t *out, const char *flag) {
    char *end;
    errno = 0;
    long long v = *s == '-' ? -1 : strtoll(s, &end, 10);
    if (v < 0 || errno || end == s || *end || v > ATTNGAN_MAX_SEED) {
        fprintf(stderr, "attngan: %s: '%s' must be an integer 0..%lld (as the server's \"seed\")\n", flag, s, (long long)ATTNGAN_MAX_SEED);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

int parse_threads(const char *s, int *out, const char *flag) {
    int v;
    if (parse_int(s, &v, flag)) return -1;
    if (v < 1 || v > 1024) {
        fprintf(stderr, "attngan: %s: must be 1..1024, not %d (leave it out for the default)\n", flag, v);
        return -1;
    }
    *out = v;
    return 0;
}

/* The commands that run on a device so far (the others run on the CPU). */
static const char *const device_commands[] = {"pretrain", "train", "bench", "parity", "generate", "examples", "sample", "serve", "eval"};
#define DEVICE_COMMANDS_TEXT "pretrain, train, bench, parity, generate, examples, sample, serve and eval"

static void usage(FILE *f) {
    fprintf(f,
            "usage: attngan <command> [options] [--device cpu|cuda|hostdev]\n"
            "\n"
            "ZSL-AttnGAN in C: text-to-image birds from noisy text.\n"
            "\n"
            "commands:\n"
            "  data        data info: what a CUB data/birds directory holds; data pack: a small copy of it\n"
            "              that the loaders read alike (attngan data --help)\n"
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
            "  import      official PyTorch checkpoints (AttnGAN's or the seed's) -> a model directory\n"
            "  parity      replay a PyTorch reference dump and compare every tensor (attngan parity --help)\n"
            "  bench       time sample / gan_step / damsm_step at the reference's sizes (attngan bench --help)\n"
            "  version     print the version and the thread count in use\n"
            "  help        this text\n"
            "\n"
            "Every command takes --help. Generation uses the bundled model models/bird64 unless\n"
            "--model names another; without a flag the model, the evaluator and the data are looked\n"
            "for in one order ($ATTNGAN_MODEL, ..., next to the binary, PREFIX/share/attngan after\n"
            "`make install`: README, Set-up).\n"
            "\n"
            "--device cpu|cuda|hostdev (or ATTNGAN_DEVICE), on %s: where tensors live and kernels\n"
            "run. cpu is the default; cuda needs a `make CUDA=1` build and a GPU; hostdev runs the\n"
            "device path's code on the CPU, for tests (docs/CUDA.md).\n", DEVICE_COMMANDS_TEXT);
}

/* Takes `--device X` / `--device=X` out of argv (anywhere after the command) and chooses the
 * process's device: the flag, else ATTNGAN_DEVICE, for a command that can use one. -1 after a
 * message when the value is bad or the command runs on the CPU only. */
static int take_device(int *argc, char **argv) {
    const char *flag = NULL;
    int w = 2;
    for (int i = 2; i < *argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < *argc) {
            flag = argv[++i];
        } else if (!strncmp(argv[i], "--device=", 9)) {
            flag = argv[i] + 9;
        } else if (!strcmp(argv[i], "--device")) {
            fprintf(stderr, "attngan %s: --device needs a value (cpu, cuda or hostdev)\n", argv[1]);
            return -1;
        } else {
            argv[w++] = argv[i];
            continue;
        }
    }
    *argc = w;
    int capable = 0;
    for (size_t k = 0; k < sizeof device_commands / sizeof device_commands[0]; k++) capable |= !strcmp(argv[1], device_commands[k]);
    if (!capable) {
        if (flag && strcmp(flag, "cpu")) {
            fprintf(stderr, "attngan %s: --device %s: this command runs on the CPU only so far (on a device: %s; docs/CUDA.md)\n",
                    argv[1], flag, DEVICE_COMMANDS_TEXT);
            return -1;
        }
        const char *env = getenv("ATTNGAN_DEVICE");
        if (!flag && env && *env && strcmp(env, "cpu"))
            fprintf(stderr, "attngan %s: ATTNGAN_DEVICE=%s ignored: this command runs on the CPU only so far\n", argv[1], env);
        return 0;
    }
    if (device_init(flag, NULL)) {
        fprintf(stderr, "attngan %s: %s\n", argv[1], err_msg());
        return -1;
    }
    return 0;
}

/* OpenMP's wait policy for this run (src/core/threads.h): libgomp reads OMP_WAIT_POLICY once,
 * when it is loaded, so a run that should wait passively starts itself again with it set.
 * serve and eval always; the other commands when fewer than half the cores are free now. Not
 * when the user set a policy (or GOMP_SPINCOUNT), under an MPI launcher, or for version and help. */
static void choose_wait_policy(int argc, char **argv) {
    if (argc < 2 || getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") || getenv("ATTNGAN_RESTARTED")) return;
    if (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_RANK") || getenv("PMIX_RANK")) return;
    const char *c = argv[1];
    if (!strcmp(c, "version") || !strcmp(c, "--version") || !strcmp(c, "help") || !strcmp(c, "--help") || !strcmp(c, "-h")) return;
    int always = !strcmp(c, "serve") || !strcmp(c, "eval");
    if (!always && !threads_heavily_loaded()) return;
    setenv("OMP_WAIT_POLICY", "passive", 1);
    setenv("ATTNGAN_RESTARTED", always ? "passive (serve, eval)" : "passive (a busy machine)", 1);
    fflush(NULL);
    execv("/proc/self/exe", argv);
    /* could not start again: keep going with the spinning policy, and say nothing (the default
     * thread count then stays at the free cores) */
    unsetenv("OMP_WAIT_POLICY");
}

int main(int argc, char **argv) {
    choose_wait_policy(argc, argv);
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return argc < 2 ? 1 : 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        const char *why;
        int cuda = device_available(DEVICE_CUDA, &why);
        printf("attngan 0.1.0 (threads %d; devices: cpu, hostdev, cuda %s; MPI %s)\n", threads_get(), cuda ? "ready" : why,
               dist_has_mpi() ? "built in (mpirun -np N attngan train|pretrain)" : "not built (make MPI=1 with libopenmpi-dev)");
        return 0;
    }
    if (take_device(&argc, argv)) return 2;
    /* the default thread count: the cores free now (src/core/threads.h); --threads overrides it */
    threads_set(0);
    if (!strcmp(argv[1], "parity")) return cmd_parity(argc - 1, argv + 1);
    if (!strcmp(argv[1], "data")) return cmd_data(argc - 1, argv + 1);
    if (!strcmp(argv[1], "pretrain")) return cmd_pretrain(argc - 1, argv + 1);
    if (!strcmp(argv[1], "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(argv[1], "generate")) return cmd_generate(argc - 1, argv + 1);
    if (!strcmp(argv[1], "examples")) return cmd_examples(argc - 1, argv + 1);
    if (!strcmp(argv[1], "sample")) return cmd_sample(argc - 1, argv + 1);
    if (!strcmp(argv[1], "export")) return cmd_export(argc - 1, argv + 1);
    if (!strcmp(argv[1], "import")) return cmd_import(argc - 1, argv + 1);
    if (!strcmp(argv[1], "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(argv[1], "serve")) return cmd_serve(argc - 1, argv + 1);
    if (!strcmp(argv[1], "bench")) return cmd_bench(argc - 1, argv + 1);
    fprintf(stderr, "attngan: unknown command '%s' (try 'attngan help')\n", argv[1]);
    return 2;
}
