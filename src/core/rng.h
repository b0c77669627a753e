/* rng.h: deterministic counter-based random numbers (Philox-4x32-10).
 *
 * The k-th number drawn from a stream depends only on (seed, k), so results are bit-identical
 * for any thread count and any split of a fill into chunks. Every fill advances the stream's
 * offset by the number of values drawn (normals consume one counter each).
 */
#ifndef ATTNGAN_RNG_H
#define ATTNGAN_RNG_H

#include <stdint.h>

typedef struct Rng {
    uint64_t seed;
    uint64_t offset;   /* counters consumed so far */
} Rng;

void rng_init(Rng *r, uint64_t seed);
/* Uniform in [0, 1) with 24 random bits. */
void rng_uniform(Rng *r, float *out, int64_t n);
/* Uniform in [lo, hi). */
void rng_uniform_range(Rng *r, float *out, int64_t n, float lo, float hi);
/* Standard normal times std plus mean (Box-Muller on one counter's 4 words, in double). */
void rng_normal(Rng *r, float *out, int64_t n, float mean, float std);
/* One uint32 (for shuffles and choices). */
uint32_t rng_u32(Rng *r);
/* Uniform integer in [0, n). */
uint32_t rng_below(Rng *r, uint32_t n);

#endif
