/* app.h: the subcommands of the attngan program and small argument helpers. */
#ifndef ATTNGAN_APP_H
#define ATTNGAN_APP_H

#include "../core/core.h"

int cmd_parity(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_serve(int argc, char **argv);   /* src/app/serve.c */
int cmd_generate(int argc, char **argv);
int cmd_examples(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);   /* src/app/import.c */
int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);   /* src/app/bench.c */

/* Strict number parsing for flags: -1 with a message naming the flag on bad input. */
int parse_int(const char *s, int *out, const char *flag);
int parse_double(const char *s, double *out, const char *flag);
/* A noise seed: 0..ATTNGAN_MAX_SEED (2^53 - 1, the server's bound: exact in JSON). */
#define ATTNGAN_MAX_SEED 9007199254740991LL
int parse_seed(const char *s, uint64_t *out, const char *flag);
/* A thread count: 1..1024, as `serve --threads` takes it (no flag: the command's default). */
int parse_threads(const char *s, int *out, const char *flag);

#endif
