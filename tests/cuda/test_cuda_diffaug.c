/* test_cuda_diffaug.c: the CUDA twins of src/ops/diffaug.c against the CPU kernels on the same
 * seeded random images and draws (make test-cuda; built only with CUDA=1): every policy
 * (colour, translation, cutout, all three, none), G's image sizes and odd ones, and hand-made
 * draws at the edges (the largest shifts, a cutout clipped by the border, an empty cutout). The
 * draws are host memory (diffaug_draw), passed to the twins as they are. The backward adds into a
 * random gradient.
 * Bound: TOL_EW (1e-5): the CPU's per-pixel arithmetic in the same order with no FMA contraction;
 * only the image means' double sums run in another order, which leaves the float means equal but
 * for a rare last bit. */
#include "cuda_test.h"
#include "../../src/ops/diffaug.h"
#include "../../src/ops/cuda/cuda_ops.h"

static void run(const char *what, const DiffAugSample *p, int B, int C, int H, int W, uint64_t seed) {
    int64_t n = (int64_t)B * C * H * W;
    float *x = rnd(n, -1, 1, seed), *dy = rnd(n, -1, 1, seed + 1), *dx = rnd(n, -1, 1, seed + 2);
    float *y = xmalloc((size_t)n * sizeof(float));
    float *dX = up(x, n), *dDy = up(dy, n), *dDx = up(dx, n), *dY = cu_alloc((size_t)n * sizeof(float));
    diffaug_forward(y, x, p, B, C, H, W);
    diffaug_backward(dx, dy, p, B, C, H, W);
    diffaug_forward_cuda(dY, dX, p, B, C, H, W);
    diffaug_backward_cuda(dDx, dDy, p, B, C, H, W);
    char w[128];
    snprintf(w, sizeof w, "diffaug %s (%d,%d,%d,%d) forward", what, B, C, H, W), check(w, dY, y, n, TOL_EW);
    snprintf(w, sizeof w, "diffaug %s (%d,%d,%d,%d) backward (added)", what, B, C, H, W), check(w, dDx, dx, n, TOL_EW);
    diffaug_backward_cuda(NULL, dDy, p, B, C, H, W); /* a NULL gradient is skipped */
    cu_free(dX), cu_free(dDy);
    free(x), free(dy), free(dx), free(y);
}

static void drawn_case(const char *what, int policy, int B, int C, int H, int W, uint64_t seed) {
    DiffAugSample *p = xmalloc((size_t)B * sizeof *p);
    Rng r;
    rng_init(&r, seed);
    diffaug_draw(p, B, H, W, policy, &r);
    run(what, p, B, C, H, W, seed + 10);
    free(p);
}

/* extreme draws: the largest shifts both ways, a cutout over a corner and one outside, none */
static void edge_case(void) {
    int B = 4, C = 3, H = 33, W = 47;
    int sy = (int)(H * 0.125f + 0.5f), sx = (int)(W * 0.125f + 0.5f);
    DiffAugSample p[4] = {
        {0.3f, 1.7f, 0.6f, sx, sy, 0, 12, 0, 9},
        {-0.5f, 0.0f, 1.5f, -sx, -sy, 40, 47, 30, 33},
        {0.0f, 1.0f, 1.0f, 0, 0, 5, 5, 0, 0},
        {0.1f, 2.0f, 0.5f, -sx, sy, 10, 30, 8, 25},
    };
    run("edges", p, B, C, H, W, 900);
}

int main(void) {
    if (!cuda_test_begin("test_cuda_diffaug")) return test_end();
    int all = DIFFAUG_COLOR | DIFFAUG_TRANSLATION | DIFFAUG_CUTOUT;
    drawn_case("color,translation,cutout", all, 6, 3, 64, 64, 100);
    drawn_case("color,translation,cutout", all, 4, 3, 256, 256, 200);
    drawn_case("color,translation,cutout", all, 5, 3, 37, 29, 300);
    drawn_case("color", DIFFAUG_COLOR, 3, 3, 31, 33, 400);
    drawn_case("translation", DIFFAUG_TRANSLATION, 3, 3, 31, 33, 500);
    drawn_case("cutout", DIFFAUG_CUTOUT, 3, 3, 31, 33, 600);
    drawn_case("none", 0, 2, 4, 17, 19, 700);
    edge_case();
    CuStats st = cu_stats();
    printf("  device memory: peak live %.1f MiB, %zu cudaMalloc calls\n", st.peak_live / 1048576.0, st.n_malloc);
    EXPECT(st.live == 0, "every device block was freed (%zu bytes live)", st.live);
    return test_end();
}
