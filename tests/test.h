/* test.h: the unit-test harness shared by every tests/test_*.c.
 *
 * Each test binary calls test_begin(), runs checks and ends with `return test_end();`, which
 * prints `<binary>: N passed, N failed, N skipped` and a machine-readable RESULT line.
 * tests/run_tests.sh adds the RESULT lines of all binaries up.
 */
#ifndef ATTNGAN_TEST_H
#define ATTNGAN_TEST_H

#include "../src/core/core.h"
#include "../src/io/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void test_begin(const char *name);
int test_end(void);
/* Records one check; prints FAIL lines always, PASS lines with TEST_VERBOSE=1. Returns ok. */
int test_check(int ok, const char *file, int line, const char *fmt, ...) ATTR_PRINTF(4, 5);
void test_skip(const char *fmt, ...) ATTR_PRINTF(1, 2);

#define EXPECT(cond, ...) test_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* Runs fn in a child process (stderr captured, 30 s alarm); EXPECTs that it aborts (a CHECK or
 * FAIL) with `msg` somewhere in its stderr. */
void expect_death(const char *what, void (*fn)(void), const char *msg);

/* Norm-relative error ||a-b|| / max(||b||, tiny) in double, and the max abs error. */
double rel_err(const float *a, const float *b, int64_t n, double *max_abs);
/* EXPECT(rel_err(got, want) <= tol) with a message naming `what`. */
int expect_close(const char *what, const float *got, const float *want, int64_t n, double tol);

/* ---- nChw16c (Tensor.blocked): dst (N, C/16, S, 16) <- src (N, C, S), and back; C % 16 == 0 */
void to_blocked16(float *dst, const float *src, int N, int C, int S);
void from_blocked16(float *dst, const float *src, int N, int C, int S);

/* ---- fixtures: tests/fixtures/<family>.safetensors, written by tests/fixtures/gen_<family>.py */
/* Opens the fixture file; returns NULL (and prints a skip) if it does not exist. */
SafeTensors *fixture_open(const char *family);
void fixture_close(SafeTensors *st);
int fixture_has(SafeTensors *st, const char *key);
/* A heap tensor with the fixture's shape and data (F32 or any convertible dtype). Fatal if absent. */
Tensor *fixture_tensor(SafeTensors *st, const char *key, int with_grad);
/* Integer data (I64) of key, n elements; returns a malloc'ed array. Fatal if absent. */
int64_t *fixture_i64(SafeTensors *st, const char *key, int64_t *n_out);
/* The config scalar stored as a 1-element tensor. */
float fixture_scalar(SafeTensors *st, const char *key);

/* ---- PyTorch reference dumps (tests/parity/make_dumps.sh writes them to build/dumps, or
 * $ATTNGAN_DUMPS): NULL (and a visible skip) when the dump is absent. */
SafeTensors *dump_open(const char *name);
/* Path of a file next to the dumps (e.g. "trunk.safetensors"); NULL if absent. Static buffer. */
const char *dump_file(const char *name);
/* Parses the dump's metadata config into cfg (defaults first). Fatal on error. */
struct ModelConfig;
void dump_config(SafeTensors *st, struct ModelConfig *cfg);

/* ---- finite-difference gradient checks */
/* Builds the op's forward on tp from the inputs (and ctx) and returns its output. It is called
 * many times (with tp reset in between) and must be a pure function of the inputs' data. */
typedef Tensor *(*GradcheckFn)(Tape *tp, Tensor **inputs, void *ctx);

typedef struct GradcheckOpts {
    double h;            /* central-difference step (default 1e-2) */
    double tol;          /* max norm-relative error per input (default 1e-2) */
    int max_elems;       /* elements checked per input, chosen at random (0: default 256; -1: all) */
    uint64_t seed;       /* weights of the random loss */
    /* For an fn whose ctx holds networks or heap tensors: they move to the host device for its run
     * and back (paramset_to_device, tensor_to_device). Inputs that move with them (a network's
     * weights) are used as they are there; the other inputs are copied. NULL-terminated. */
    ParamSet *move_sets[4];
    Tensor *move_tensors[4];
} GradcheckOpts;

/* For each input with requires_grad: compares the tape gradient of loss = sum(out * W), W a
 * fixed random normal tensor, with central differences of the same loss accumulated in double.
 * Also checks that a second backward over the same tape exactly doubles every input gradient, and
 * that the op on the host device (src/core/device.h) gives the CPU's output and gradient bits.
 * Inputs must be heap leaves (tensor_alloc). Returns 1 if all pass; records EXPECTs. */
int gradcheck(const char *name, GradcheckFn fn, int n_in, Tensor **inputs, void *ctx, const GradcheckOpts *opts);

/* Fills with uniform values in [lo, hi) from a fixed-seed generator. */
void fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t seed);
/* Uniform values in [lo, hi) whose magnitude is at least `gap` (keeps inputs away from kinks at 0). */
void fill_away_from_zero(float *x, int64_t n, float lo, float hi, float gap, uint64_t seed);

#endif
