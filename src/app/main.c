/* main.c: the attngan command line. Subcommands arrive with the issues that build them. */
#include "../core/core.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: attngan <command> [options]\n"
            "\n"
            "ZSL-AttnGAN in C: text-to-image birds from noisy text.\n"
            "\n"
            "commands:\n"
            "  version     print the version and the thread count in use\n"
            "  help        this text\n"
            "\n"
            "The engine (tensors, autograd, CPU ops) is in place; the networks, training,\n"
            "generation and serving commands are being built (see README.md).\n");
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
    fprintf(stderr, "attngan: unknown command '%s' (try 'attngan help')\n", argv[1]);
    return 2;
}
