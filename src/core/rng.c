/* rng.c: Philox-4x32-10 (Salmon et al., SC'11) streams; see rng.h. */
#include "rng.h"

#include <math.h>

typedef struct { uint32_t v[4]; } u32x4;

static inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

static u32x4 philox(uint64_t ctr, uint64_t key) {
    uint32_t c0 = (uint32_t)ctr, c1 = (uint32_t)(ctr >> 32), c2 = 0x243F6A88u, c3 = 0x85A308D3u;
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = mulhilo(0xD2511F53u, c0, &hi0);
        uint32_t lo1 = mulhilo(0xCD9E8D57u, c2, &hi1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    u32x4 o = {{c0, c1, c2, c3}};
    return o;
}

void rng_init(Rng *r, uint64_t seed) {
    r->seed = seed;
    r->offset = 0;
}

static inline float u24(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

void rng_uniform(Rng *r, float *out, int64_t n) {
    uint64_t base = r->offset, key = r->seed;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) out[i] = u24(philox(base + (uint64_t)i, key).v[0]);
    r->offset += (uint64_t)n;
}

void rng_uniform_range(Rng *r, float *out, int64_t n, float lo, float hi) {
    rng_uniform(r, out, n);
    for (int64_t i = 0; i < n; i++) out[i] = lo + (hi - lo) * out[i];
}

void rng_normal(Rng *r, float *out, int64_t n, float mean, float std) {
    uint64_t base = r->offset, key = r->seed;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        u32x4 w = philox(base + (uint64_t)i, key);
        /* 53-bit uniforms in (0, 1] and [0, 1) */
        double u1 = ((double)(((uint64_t)w.v[0] << 21) ^ w.v[1]) + 1.0) / 9007199254740992.0;
        double u2 = (double)(((uint64_t)w.v[2] << 21) ^ w.v[3]) / 9007199254740992.0;
        u1 = u1 > 1.0 ? 1.0 : u1;
        u2 = u2 >= 1.0 ? 0.0 : u2;
        double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        out[i] = (float)(mean + std * z);
    }
    r->offset += (uint64_t)n;
}

uint32_t rng_u32(Rng *r) { return philox(r->offset++, r->seed).v[1]; }

uint32_t rng_below(Rng *r, uint32_t n) {
    /* rejection sampling: unbiased */
    uint32_t lim = n ? (uint32_t)(-n) % n : 0;
    for (;;) {
        uint32_t x = rng_u32(r);
        if (x >= lim) return n ? x % n : 0;
    }
}
