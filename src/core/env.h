/* env.h: process-wide switches read once from the environment (ATTNGAN_CONV_ALGO=direct, ...).
 *
 * env_switch(cache, "VAR", values, n, dflt) answers the index in values[0..n) of VAR's value, or
 * dflt when VAR is unset or empty; any other value aborts with "VAR=value: expected a, b or c".
 * The answer is kept in *cache (an atomic that starts at -1), so a setter may overwrite it
 * (conv2d_set_algo, ...); two threads racing on the first read read the same environment. */
#ifndef ATTNGAN_ENV_H
#define ATTNGAN_ENV_H

#include <stdatomic.h>

#define ENV_SWITCH_INIT (-1)

int env_switch(_Atomic int *cache, const char *var, const char *const *values, int n, int dflt);

#endif
