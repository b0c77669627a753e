/* core.h: everything in src/core (tensors, arena, tape, parameters, RNG, threads, errors,
 * environment switches). */
#ifndef ATTNGAN_CORE_H
#define ATTNGAN_CORE_H

#include "arena.h"
#include "env.h"
#include "error.h"
#include "params.h"
#include "rng.h"
#include "tape.h"
#include "tensor.h"
#include "threads.h"

#endif
