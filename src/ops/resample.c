/* resample.c: nearest x2 upsampling and bilinear resizing, forward and backward on the CPU.
 *
 * Bilinear follows PyTorch 1.13's CPU kernel (upsample_bilinear2d, align_corners=False) to the
 * bit on x86-64: per axis, scale = (float)in / out, src = max(0, scale * (dst + 0.5) - 0.5)
 * evaluated in double, i0 = (int)src, i1 = min(i0 + 1, in - 1), lambda1 = (float)(src - i0),
 * lambda0 = 1 - lambda1; an axis of equal size maps each index to itself with weights (1, 0).
 * Forward: t_r = fma(in[r][i0], l0, in[r][i1] * l1) per row, out = fma(t_0, ly0, t_1 * ly1).
 * Backward: grad[i] = fma(ly * lx, g, grad[i]) for the four taps in order 00, 01, 10, 11.
 * align_corners=True (the Keras / TF.js Inception's resize): scale = (float)(in - 1) / (out - 1),
 * src = scale * dst in double, i0 = (int)src, lambda1 = (float)(src - i0); rows and the backward
 * as above.
 * Every kernel loops over the N*C planes with OpenMP; a plane's gradient is written by one
 * thread only, so scatters are deterministic without atomics.
 */
#include "resample.h"
#include "../core/profile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* planes * pixels below this run on one thread */
#define RESAMPLE_PAR_MIN 32768

/* ---------------------------------------------------------------- nearest x2 */
/* out (NC, 2H, 2W), inp (NC, H, W) */
void upsample_nearest2x_forward(float *out, const float *inp, int64_t NC, int H, int W) {
    int OW = 2 * W;
    int64_t in_plane = (int64_t)H * W, out_plane = 4 * in_plane;
#pragma omp parallel for schedule(static) if (NC * out_plane > RESAMPLE_PAR_MIN)
    for (int64_t c = 0; c < NC; c++) {
        const float *src = inp + c * in_plane;   // (H, W)
        float *dst = out + c * out_plane;        // (2H, 2W)
        for (int oy = 0; oy < 2 * H; oy++) {
            const float *row = src + (int64_t)(oy >> 1) * W;   // (W)
            float *orow = dst + (int64_t)oy * OW;              // (2W)
            for (int ox = 0; ox < OW; ox++) orow[ox] = row[ox >> 1];
        }
    }
}

/* dinp (NC, H, W) += dout (NC, 2H, 2W) summed over each 2x2 block, in row-major output order */
void upsample_nearest2x_backward(float *dinp, const float *dout, int64_t NC, int H, int W) {
    if (!dinp) return;
    int OW = 2 * W;
    int64_t in_plane = (int64_t)H * W, out_plane = 4 * in_plane;
#pragma omp parallel for schedule(static) if (NC * out_plane > RESAMPLE_PAR_MIN)
    for (int64_t c = 0; c < NC; c++) {
        const float *g = dout + c * out_plane;   // (2H, 2W)
        float *d = dinp + c * in_plane;          // (H, W)
        for (int oy = 0; oy < 2 * H; oy++) {
            float *drow = d + (int64_t)(oy >> 1) * W;          // (W)
            const float *grow = g + (int64_t)oy * OW;          // (2W)
            for (int ox = 0; ox < OW; ox++) drow[ox >> 1] += grow[ox];
        }
    }
}

/* ---------------------------------------------------------------- bilinear */
/* One output index's two source taps along an axis. */
typedef struct LerpTap {
    int i0, i1;
    float l0, l1;
} LerpTap;

/* taps (out) for resizing an axis of size `in` to `out` (align_corners=False). */
static void lerp_taps(LerpTap *taps, int in, int out) {
    float scale = (float)in / (float)out;
    for (int d = 0; d < out; d++) {
        LerpTap *t = &taps[d];
        if (in == out) {
            *t = (LerpTap){d, d, 1.0f, 0.0f};
            continue;
        }
        double src = (double)scale * (d + 0.5) - 0.5;
        if (src < 0.0) src = 0.0;
        int i0 = (int)src;
        if (i0 > in - 1) i0 = in - 1;
        double frac = src - i0;
        if (frac > 1.0) frac = 1.0;
        t->i0 = i0;
        t->i1 = i0 < in - 1 ? i0 + 1 : i0;
        t->l1 = (float)frac;
        t->l0 = 1.0f - t->l1;
    }
}

/* taps for align_corners=True: scale = (float)(in - 1) / (out - 1) (0 for out == 1), src =
 * scale * dst and its fraction in double, as PyTorch 1.13's CPU kernel computes them. */
static void lerp_taps_ac(LerpTap *taps, int in, int out) {
    float scale = out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
    for (int d = 0; d < out; d++) {
        LerpTap *t = &taps[d];
        if (in == out) {
            *t = (LerpTap){d, d, 1.0f, 0.0f};
            continue;
        }
        double src = (double)scale * d;
        int i0 = (int)src;
        if (i0 > in - 1) i0 = in - 1;
        double frac = src - i0;
        t->i0 = i0;
        t->i1 = i0 < in - 1 ? i0 + 1 : i0;
        t->l1 = (float)(frac < 0.0 ? 0.0 : frac > 1.0 ? 1.0 : frac);
        t->l0 = 1.0f - t->l1;
    }
}

/* Both axes' taps in one malloc'ed block: ty (OH) then tx (OW). */
static LerpTap *lerp_tables(int H, int W, int OH, int OW, int align_corners) {
    LerpTap *t = xmalloc((size_t)(OH + OW) * sizeof *t);
    if (align_corners) {
        lerp_taps_ac(t, H, OH);
        lerp_taps_ac(t + OH, W, OW);
    } else {
        lerp_taps(t, H, OH);
        lerp_taps(t + OH, W, OW);
    }
    return t;
}

/* out (OW) = one output row from input rows r0, r1 (W) */
static void bilinear_row(float *out, const float *r0, const float *r1, const LerpTap *ty, const LerpTap *tx, int OW) {
    for (int ox = 0; ox < OW; ox++) {
        const LerpTap *t = &tx[ox];
        float top = fmaf(r0[t->i0], t->l0, r0[t->i1] * t->l1);
        float bot = fmaf(r1[t->i0], t->l0, r1[t->i1] * t->l1);
        out[ox] = fmaf(top, ty->l0, bot * ty->l1);
    }
}

/* out (NC, OH, OW), inp (NC, H, W) */
void resize_bilinear_ac_forward(float *out, const float *inp, int64_t NC, int H, int W, int OH, int OW,
                                int align_corners) {
    CHECK(H > 0 && W > 0 && OH > 0 && OW > 0, "resize_bilinear: sizes (%d, %d) -> (%d, %d)", H, W, OH, OW);
    int64_t in_plane = (int64_t)H * W, out_plane = (int64_t)OH * OW;
    if (H == OH && W == OW) {
        memcpy(out, inp, (size_t)(NC * in_plane) * sizeof(float));
        return;
    }
    LerpTap *ty = lerp_tables(H, W, OH, OW, align_corners), *tx = ty + OH;
#pragma omp parallel for schedule(static) if (NC * out_plane > RESAMPLE_PAR_MIN)
    for (int64_t c = 0; c < NC; c++) {
        const float *src = inp + c * in_plane;   // (H, W)
        float *dst = out + c * out_plane;        // (OH, OW)
        for (int oy = 0; oy < OH; oy++)
            bilinear_row(dst + (int64_t)oy * OW, src + (int64_t)ty[oy].i0 * W, src + (int64_t)ty[oy].i1 * W, &ty[oy], tx, OW);
    }
    free(ty);
}

/* dinp rows d0, d1 (W) += the scatter of one gradient row g (OW) */
static void bilinear_row_backward(float *d0, float *d1, const float *g, const LerpTap *ty, const LerpTap *tx, int OW) {
    for (int ox = 0; ox < OW; ox++) {
        const LerpTap *t = &tx[ox];
        float v = g[ox];
        d0[t->i0] = fmaf(ty->l0 * t->l0, v, d0[t->i0]);
        d0[t->i1] = fmaf(ty->l0 * t->l1, v, d0[t->i1]);
        d1[t->i0] = fmaf(ty->l1 * t->l0, v, d1[t->i0]);
        d1[t->i1] = fmaf(ty->l1 * t->l1, v, d1[t->i1]);
    }
}

/* dinp (NC, H, W) += scatter of dout (NC, OH, OW) */
void resize_bilinear_ac_backward(float *dinp, const float *dout, int64_t NC, int H, int W, int OH, int OW,
                                 int align_corners) {
    if (!dinp) return;
    CHECK(H > 0 && W > 0 && OH > 0 && OW > 0, "resize_bilinear: sizes (%d, %d) -> (%d, %d)", H, W, OH, OW);
    int64_t in_plane = (int64_t)H * W, out_plane = (int64_t)OH * OW;
    if (H == OH && W == OW) {
#pragma omp parallel for schedule(static) if (NC * in_plane > RESAMPLE_PAR_MIN)
        for (int64_t i = 0; i < NC * in_plane; i++) dinp[i] += dout[i];
        return;
    }
    LerpTap *ty = lerp_tables(H, W, OH, OW, align_corners), *tx = ty + OH;
#pragma omp parallel for schedule(static) if (NC * out_plane > RESAMPLE_PAR_MIN)
    for (int64_t c = 0; c < NC; c++) {
        const float *g = dout + c * out_plane;   // (OH, OW)
        float *d = dinp + c * in_plane;          // (H, W)
        for (int oy = 0; oy < OH; oy++)
            bilinear_row_backward(d + (int64_t)ty[oy].i0 * W, d + (int64_t)ty[oy].i1 * W, g + (int64_t)oy * OW, &ty[oy], tx, OW);
    }
    free(ty);
}

void resize_bilinear_forward(float *out, const float *inp, int64_t NC, int H, int W, int OH, int OW) {
    resize_bilinear_ac_forward(out, inp, NC, H, W, OH, OW, 0);
}

void resize_bilinear_backward(float *dinp, const float *dout, int64_t NC, int H, int W, int OH, int OW) {
    resize_bilinear_ac_backward(dinp, dout, NC, H, W, OH, OW, 0);
}

/* ---------------------------------------------------------------- tape-level ops */
static void check_image(const char *op, const Tensor *x) {
    char buf[64];
    CHECK(x != NULL, "%s: NULL input", op);
    CHECK(x->ndim == 4 && x->n > 0, "%s: expects a non-empty (N, C, H, W) input, got %s", op,
          tensor_shape_str(x, buf, sizeof buf));
}

static void upsample_nearest2x_bwd(Node *nd) {
    Tensor *x = nd->in[0], *y = nd->out[0];
    KERNEL(nd->tape->device, upsample_nearest2x_backward, tensor_grad_or_null(x), y->grad, (int64_t)x->shape[0] * x->shape[1], x->shape[2], x->shape[3]);
}

Tensor *op_upsample_nearest2x(Tape *tp, Tensor *x) {
    PROFILE_OP_BEGIN();
    check_image("upsample_nearest2x", x);
    int H = x->shape[2], W = x->shape[3];
    Tensor *y = TNEW(tp, x->shape[0], x->shape[1], 2 * H, 2 * W);
    KERNEL(tp->device, upsample_nearest2x_forward, y->data, x->data, (int64_t)x->shape[0] * x->shape[1], H, W);
    Tensor *in[] = {x}, *out[] = {y};
    tape_node_data_unused(TAPE_RECORD(tp, "upsample_nearest2x", upsample_nearest2x_bwd, in, out));
    return y;
}

/* nd->ctx: the int align_corners flag (arena memory) */
static void resize_bilinear_bwd(Node *nd) {
    Tensor *x = nd->in[0], *y = nd->out[0];
    int align_corners = nd->ctx ? *(const int *)nd->ctx : 0;
    KERNEL(nd->tape->device, resize_bilinear_ac_backward, tensor_grad_or_null(x), y->grad, (int64_t)x->shape[0] * x->shape[1], x->shape[2],
                                x->shape[3], y->shape[2], y->shape[3], align_corners);
}

static Tensor *resize_op(Tape *tp, Tensor *x, int out_h, int out_w, int align_corners) {
    PROFILE_OP_BEGIN();
    check_image("resize_bilinear", x);
    CHECK(out_h > 0 && out_w > 0, "resize_bilinear: output size (%d, %d) must be positive", out_h, out_w);
    Tensor *y = TNEW(tp, x->shape[0], x->shape[1], out_h, out_w);
    KERNEL(tp->device, resize_bilinear_ac_forward, y->data, x->data, (int64_t)x->shape[0] * x->shape[1], x->shape[2], x->shape[3], out_h,
                               out_w, align_corners);
    Tensor *in[] = {x}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, "resize_bilinear", resize_bilinear_bwd, in, out);
    tape_node_data_unused(nd);
    if (nd && align_corners) {
        int *flag = tape_alloc(tp, sizeof *flag);
        *flag = 1;
        nd->ctx = flag;
    }
    return y;
}

Tensor *op_resize_bilinear(Tape *tp, Tensor *x, int out_h, int out_w) { return resize_op(tp, x, out_h, out_w, 0); }

Tensor *op_resize_bilinear_ac(Tape *tp, Tensor *x, int out_h, int out_w, int align_corners) {
    return resize_op(tp, x, out_h, out_w, align_corners != 0);
}
