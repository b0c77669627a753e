/* test_resample.c: nearest x2 upsampling and bilinear resizing (align_corners False and True)
 * against PyTorch fixtures, finite differences, a double-precision reference at the Inception
 * sizes, and thread-count determinism. */
#include "test.h"
#include "../src/ops/resample.h"

#include <stdlib.h>
#include <string.h>

typedef struct ResizeArgs {
    int out_h, out_w;
    int align_corners;           /* used by fwd_bilinear_ac only */
} ResizeArgs;

static Tensor *fwd_nearest(Tape *tp, Tensor **in, void *ctx) { return op_upsample_nearest2x(tp, in[0]); }
static Tensor *fwd_bilinear(Tape *tp, Tensor **in, void *ctx) {
    const ResizeArgs *a = ctx;
    return op_resize_bilinear(tp, in[0], a->out_h, a->out_w);
}
static Tensor *fwd_bilinear_ac(Tape *tp, Tensor **in, void *ctx) {
    const ResizeArgs *a = ctx;
    return op_resize_bilinear_ac(tp, in[0], a->out_h, a->out_w, a->align_corners);
}

/* Forward and backward of one fixture case against PyTorch with tolerance tol (0: bit-exact). */
static void value_case(SafeTensors *fx, const char *name, GradcheckFn fn, void *ctx, double tol) {
    char k[128];
    snprintf(k, sizeof k, "%s.in0", name);
    Tensor *x = fixture_tensor(fx, k, 1);
    snprintf(k, sizeof k, "%s.out", name);
    Tensor *want = fixture_tensor(fx, k, 0);
    snprintf(k, sizeof k, "%s.gout", name);
    Tensor *gout = fixture_tensor(fx, k, 0);
    snprintf(k, sizeof k, "%s.grad0", name);
    Tensor *gwant = fixture_tensor(fx, k, 0);
    Tape tp;
    tape_init(&tp);
    Tensor *y = fn(&tp, &x, ctx);
    snprintf(k, sizeof k, "%s forward", name);
    if (EXPECT(tensor_same_shape(y, want), "%s: shape", k)) {
        expect_close(k, y->data, want->data, want->n, tol);
        const float *seed = gout->data;
        tape_backward_seeded(&tp, 1, &y, &seed);
        snprintf(k, sizeof k, "%s grad of input", name);
        expect_close(k, x->grad, gwant->data, gwant->n, tol);
    }
    tape_free(&tp);
    tensor_free(x);
    tensor_free(want);
    tensor_free(gout);
    tensor_free(gwant);
}

/* align_corners < 0: op_resize_bilinear; else op_resize_bilinear_ac with that flag */
static void bilinear_case(SafeTensors *fx, const char *name, double tol, int align_corners) {
    char k[64];
    float size[2];
    snprintf(k, sizeof k, "%s.size", name);
    if (st_read_f32(fx, k, size, 2)) FAIL("%s", err_msg());
    ResizeArgs a = {(int)size[0], (int)size[1], align_corners};
    value_case(fx, name, align_corners < 0 ? fwd_bilinear : fwd_bilinear_ac, &a, tol);
}

static void value_tests(void) {
    SafeTensors *fx = fixture_open("resample");
    if (!fx) return;
    value_case(fx, "nearest", fwd_nearest, NULL, 0);
    const char *cases[] = {"small", "square", "up64", "up256", "down304", "half_same", "big_ratio"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bilinear_case(fx, cases[i], 1e-6, -1);
        bilinear_case(fx, cases[i], 1e-6, 0);   /* op_resize_bilinear_ac(..., 0) is the same op */
    }
    bilinear_case(fx, "same299", 0, -1);   /* same size: an exact copy, gradient passed through */
    /* C == 1 runs PyTorch's channels-last kernel, which rounds differently by about an ulp */
    bilinear_case(fx, "one_channel", 1e-6, -1);
    const char *ac[] = {"ac_small", "ac_up256", "ac_up64", "ac_down304", "ac_half_same", "ac_big_ratio", "ac_to_one",
                        "ac_from_one"};
    /* align_corners=True: PyTorch's weights (float scale, double source index) to the bit */
    if (!fixture_has(fx, "ac_small.out")) test_skip("resample fixture predates the align_corners=True cases (make fixtures)");
    else
        for (size_t i = 0; i < sizeof ac / sizeof ac[0]; i++) bilinear_case(fx, ac[i], 0, 1);
    fixture_close(fx);
}

static void grad_case(const char *name, GradcheckFn fn, void *ctx, int N, int C, int H, int W, uint64_t seed) {
    Tensor *x = tensor_alloc(4, (int[]){N, C, H, W}, 1);
    fill_uniform(x->data, x->n, -1, 1, seed);
    gradcheck(name, fn, 1, &x, ctx, &(GradcheckOpts){.max_elems = -1});
    tensor_free(x);
}

static void grad_tests(void) {
    grad_case("upsample_nearest2x", fwd_nearest, NULL, 2, 2, 3, 4, 31);
    ResizeArgs up = {7, 9, 0}, down = {4, 3, 0}, same = {4, 5, 0}, mixed = {4, 8, 0}, edge = {11, 2, 0};
    grad_case("bilinear up", fwd_bilinear, &up, 1, 2, 4, 5, 32);
    grad_case("bilinear down", fwd_bilinear, &down, 1, 2, 9, 7, 33);
    grad_case("bilinear same size", fwd_bilinear, &same, 1, 2, 4, 5, 34);
    grad_case("bilinear one axis same", fwd_bilinear, &mixed, 2, 1, 4, 5, 35);
    grad_case("bilinear 2->11, 7->2", fwd_bilinear, &edge, 1, 1, 2, 7, 36);
    ResizeArgs ac_up = {7, 9, 1}, ac_down = {4, 3, 1}, ac_same = {4, 5, 1}, ac_mixed = {4, 8, 1}, ac_edge = {11, 1, 1};
    grad_case("bilinear align_corners up", fwd_bilinear_ac, &ac_up, 1, 2, 4, 5, 37);
    grad_case("bilinear align_corners down", fwd_bilinear_ac, &ac_down, 1, 2, 9, 7, 38);
    grad_case("bilinear align_corners same size", fwd_bilinear_ac, &ac_same, 1, 2, 4, 5, 39);
    grad_case("bilinear align_corners one axis same", fwd_bilinear_ac, &ac_mixed, 2, 1, 4, 5, 40);
    grad_case("bilinear align_corners 2->11, 7->1", fwd_bilinear_ac, &ac_edge, 1, 1, 2, 7, 41);
}

/* PyTorch's source index along one axis, in double: lower tap, upper tap, weight of the upper */
static void ref_tap(int d, int in, int out, int *i0, int *i1, double *l1) {
    double src = (d + 0.5) * in / out - 0.5;
    if (src < 0) src = 0;
    *i0 = (int)floor(src);
    *i1 = *i0 + 1 < in ? *i0 + 1 : in - 1;
    *l1 = src - *i0;
}

/* One plane resized in double, straight from the formula (the op computes in float). */
static void ref_bilinear(double *out, const float *in, int H, int W, int OH, int OW) {
    for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox++) {
            int y0, y1, x0, x1;
            double ly, lx;
            ref_tap(oy, H, OH, &y0, &y1, &ly);
            ref_tap(ox, W, OW, &x0, &x1, &lx);
            double top = in[y0 * W + x0] * (1 - lx) + in[y0 * W + x1] * lx;
            double bot = in[y1 * W + x0] * (1 - lx) + in[y1 * W + x1] * lx;
            out[oy * OW + ox] = top * (1 - ly) + bot * ly;
        }
}

/* The Inception resizes on full planes against the double reference (forward ~1e-5). */
static void reference_tests(void) {
    const int sizes[][4] = {{64, 64, 299, 299}, {256, 256, 299, 299}, {304, 304, 256, 256}, {299, 299, 299, 299}, {7, 7, 5, 5}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int H = sizes[s][0], W = sizes[s][1], OH = sizes[s][2], OW = sizes[s][3];
        float *in = xmalloc((size_t)H * W * sizeof(float)), *out = xmalloc((size_t)OH * OW * sizeof(float));
        double *ref = xmalloc((size_t)OH * OW * sizeof(double));
        float *reff = xmalloc((size_t)OH * OW * sizeof(float));
        fill_uniform(in, (int64_t)H * W, -1, 1, 40 + s);
        resize_bilinear_forward(out, in, 1, H, W, OH, OW);
        ref_bilinear(ref, in, H, W, OH, OW);
        for (int64_t i = 0; i < (int64_t)OH * OW; i++) reff[i] = (float)ref[i];
        char what[64];
        snprintf(what, sizeof what, "bilinear %dx%d -> %dx%d vs double reference", H, W, OH, OW);
        expect_close(what, out, reff, (int64_t)OH * OW, 1e-5);
        free(in);
        free(out);
        free(ref);
        free(reff);
    }
}

/* Forward and backward give the same bits on 1 and 2 threads (sizes above the OpenMP cutoff). */
static void determinism_tests(void) {
    int NC = 8, H = 48, W = 40, OH = 64, OW = 80;
    int64_t nin = (int64_t)NC * H * W, nout = (int64_t)NC * OH * OW;
    float *x = xmalloc(nin * sizeof(float)), *g = xmalloc(nout * sizeof(float));
    float *y[2], *d[2], *dn[2], *ya[2], *da[2];
    fill_uniform(x, nin, -1, 1, 50);
    fill_uniform(g, nout, -1, 1, 51);
    for (int t = 0; t < 2; t++) {
        threads_set(t + 1);
        y[t] = xmalloc(nout * sizeof(float));
        d[t] = xcalloc(nin, sizeof(float));
        dn[t] = xcalloc(nin, sizeof(float));
        resize_bilinear_forward(y[t], x, NC, H, W, OH, OW);
        resize_bilinear_backward(d[t], g, NC, H, W, OH, OW);
        upsample_nearest2x_backward(dn[t], g, NC, OH / 2, OW / 2);
        ya[t] = xmalloc(nout * sizeof(float));
        da[t] = xcalloc(nin, sizeof(float));
        resize_bilinear_ac_forward(ya[t], x, NC, H, W, OH, OW, 1);
        resize_bilinear_ac_backward(da[t], g, NC, H, W, OH, OW, 1);
    }
    threads_set(0);
    EXPECT(!memcmp(y[0], y[1], nout * sizeof(float)), "bilinear forward differs between 1 and 2 threads");
    EXPECT(!memcmp(d[0], d[1], nin * sizeof(float)), "bilinear backward differs between 1 and 2 threads");
    EXPECT(!memcmp(dn[0], dn[1], (nout / 4) * sizeof(float)), "nearest backward differs between 1 and 2 threads");
    EXPECT(!memcmp(ya[0], ya[1], nout * sizeof(float)), "bilinear align_corners forward differs between 1 and 2 threads");
    EXPECT(!memcmp(da[0], da[1], nin * sizeof(float)), "bilinear align_corners backward differs between 1 and 2 threads");
    for (int t = 0; t < 2; t++) {
        free(ya[t]);
        free(da[t]);
        free(y[t]);
        free(d[t]);
        free(dn[t]);
    }
    free(x);
    free(g);
}

int main(void) {
    test_begin("test_resample");
    value_tests();
    grad_tests();
    reference_tests();
    determinism_tests();
    return test_end();
}
