/* core.h: everything in src/core (tensors, arena, tape, parameters, RNG, threads, errors) that
 * C++ (the CUDA sources) may include too; env.h, mempool.h and profile.h are included where used. */
#ifndef ATTNGAN_CORE_H
#define ATTNGAN_CORE_H

#include "arena.h"
#include "error.h"
#include "params.h"
#include "rng.h"
#include "tape.h"
#include "tensor.h"
#include "threads.h"

#endif
