/* diffaug.c: DiffAugment's colour, translation and cutout (Zhao et al. 2020, the authors'
 * DiffAugment-pytorch rand_brightness, rand_saturation, rand_contrast, rand_translation(0.125),
 * rand_cutout(0.5)), forward and backward on the CPU.
 *
 * Per sample the map is affine in the input: colour is x -> a x + b with channel and image means,
 * translation and cutout select or zero pixels. The backward applies the transposed map: cutout's
 * mask, the inverse shift (zero where the shifted pixel came from outside), then the contrast and
 * saturation adjoints (g -> c g + (1 - c) mean(g), the mean over what the forward averaged). */
#include "diffaug.h"
#include "../core/error.h"
#include "../core/profile.h"

#include <stdlib.h>
#include <string.h>

int diffaug_parse_policy(const char *s, int *policy) {
    *policy = 0;
    if (!s || !*s || !strcmp(s, "none")) return 0;
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 5 && !strncmp(p, "color", 5)) *policy |= DIFFAUG_COLOR;
        else if (n == 11 && !strncmp(p, "translation", 11)) *policy |= DIFFAUG_TRANSLATION;
        else if (n == 6 && !strncmp(p, "cutout", 6)) *policy |= DIFFAUG_CUTOUT;
        else return err_set("DiffAugment policy '%s': '%.*s' is not color, translation or cutout", s, (int)n, p);
        p += n + (e != NULL);
        if (e && !*p) return err_set("DiffAugment policy '%s' ends with a comma", s);
    }
    return 0;
}

static float uniform01(Rng *rng) {
    float u;
    rng_uniform(rng, &u, 1);
    return u;
}

/* torch.randint(lo, hi): uniform in [lo, hi) */
static int randint(Rng *rng, int lo, int hi) { return lo + (int)rng_below(rng, (uint32_t)(hi - lo)); }

void diffaug_draw(DiffAugSample *p, int B, int H, int W, int policy, Rng *rng) {
    for (int b = 0; b < B; b++) {
        DiffAugSample *s = &p[b];
        memset(s, 0, sizeof *s);
        s->saturation = s->contrast = 1.0f;
        if (policy & DIFFAUG_COLOR) {
            s->brightness = uniform01(rng) - 0.5f;
            s->saturation = uniform01(rng) * 2.0f;
            s->contrast = uniform01(rng) + 0.5f;
        }
        if (policy & DIFFAUG_TRANSLATION) {
            int sy = (int)(H * 0.125f + 0.5f), sx = (int)(W * 0.125f + 0.5f);
            s->dy = randint(rng, -sy, sy + 1);
            s->dx = randint(rng, -sx, sx + 1);
        }
        if (policy & DIFFAUG_CUTOUT) {
            int ch = (int)(H * 0.5f + 0.5f), cw = (int)(W * 0.5f + 0.5f);
            int oy = randint(rng, 0, H + (1 - ch % 2)), ox = randint(rng, 0, W + (1 - cw % 2));
            int y0 = oy - ch / 2, x0 = ox - cw / 2;
            s->cy0 = y0 < 0 ? 0 : y0;
            s->cy1 = y0 + ch > H ? H : y0 + ch;
            s->cx0 = x0 < 0 ? 0 : x0;
            s->cx1 = x0 + cw > W ? W : x0 + cw;
        }
    }
}

static int in_cutout(const DiffAugSample *s, int i, int j) { return i >= s->cy0 && i < s->cy1 && j >= s->cx0 && j < s->cx1; }

/* out (C, H, W) = aug(inp (C, H, W)) for one sample; col (C, H, W) scratch */
static void forward_one(float *out, const float *inp, float *col, const DiffAugSample *s, int C, int H, int W) {
    int64_t P = (int64_t)H * W;
    /* brightness and saturation (per pixel, over channels) */
    for (int64_t q = 0; q < P; q++) {
        float m = 0;
        for (int c = 0; c < C; c++) m += inp[c * P + q] + s->brightness;
        m /= (float)C;
        for (int c = 0; c < C; c++) col[c * P + q] = (inp[c * P + q] + s->brightness - m) * s->saturation + m;
    }
    /* contrast (over the image) */
    double sum = 0;
    for (int64_t q = 0; q < C * P; q++) sum += col[q];
    float mean = (float)(sum / (double)(C * P));
    for (int64_t q = 0; q < C * P; q++) col[q] = (col[q] - mean) * s->contrast + mean;
    /* translation, then cutout */
    for (int c = 0; c < C; c++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                int si = i + s->dy, sj = j + s->dx;
                float v = si >= 0 && si < H && sj >= 0 && sj < W ? col[c * P + (int64_t)si * W + sj] : 0.0f;
                out[c * P + (int64_t)i * W + j] = in_cutout(s, i, j) ? 0.0f : v;
            }
}

/* dinp (C, H, W) += aug^T(dout (C, H, W)) for one sample; g (C, H, W) scratch */
static void backward_one(float *dinp, const float *dout, float *g, const DiffAugSample *s, int C, int H, int W) {
    int64_t P = (int64_t)H * W;
    memset(g, 0, (size_t)(C * P) * sizeof(float));
    for (int c = 0; c < C; c++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                int si = i + s->dy, sj = j + s->dx;
                if (in_cutout(s, i, j) || si < 0 || si >= H || sj < 0 || sj >= W) continue;
                g[c * P + (int64_t)si * W + sj] += dout[c * P + (int64_t)i * W + j];
            }
    double sum = 0;
    for (int64_t q = 0; q < C * P; q++) sum += g[q];
    float gm = (float)(sum / (double)(C * P));
    for (int64_t q = 0; q < C * P; q++) g[q] = s->contrast * g[q] + (1.0f - s->contrast) * gm;
    for (int64_t q = 0; q < P; q++) {
        float m = 0;
        for (int c = 0; c < C; c++) m += g[c * P + q];
        m /= (float)C;
        for (int c = 0; c < C; c++) dinp[c * P + q] += s->saturation * g[c * P + q] + (1.0f - s->saturation) * m;
    }
}

void diffaug_forward(float *out, const float *inp, const DiffAugSample *p, int B, int C, int H, int W) {
    int64_t n = (int64_t)C * H * W;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *col = malloc((size_t)n * sizeof(float));
        CHECK(col, "diffaug: out of memory");
        forward_one(out + b * n, inp + b * n, col, &p[b], C, H, W);
        free(col);
    }
}

void diffaug_backward(float *dinp, const float *dout, const DiffAugSample *p, int B, int C, int H, int W) {
    if (!dinp) return;
    int64_t n = (int64_t)C * H * W;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *g = malloc((size_t)n * sizeof(float));
        CHECK(g, "diffaug: out of memory");
        backward_one(dinp + b * n, dout + b * n, g, &p[b], C, H, W);
        free(g);
    }
}

/* ---------------------------------------------------------------- tape op */
static void diffaug_bwd(Node *nd) {
    Tensor *x = nd->in[0], *y = nd->out[0];
    KERNEL(nd->tape->device, diffaug_backward, tensor_grad_or_null(x), y->grad, (const DiffAugSample *)nd->ctx, x->shape[0], x->shape[1], x->shape[2], x->shape[3]);
}

Tensor *op_diffaug(Tape *tp, Tensor *x, const DiffAugSample *p) {
    PROFILE_OP_BEGIN();
    char s[64];
    CHECK(x->ndim == 4 && p, "diffaug: x %s must be (B, C, H, W), with parameters", tensor_shape_str(x, s, sizeof s));
    int B = x->shape[0];
    Tensor *y = tape_new(tp, 4, x->shape);
    KERNEL(tp->device, diffaug_forward, y->data, x->data, p, B, x->shape[1], x->shape[2], x->shape[3]);
    Tensor *in[] = {x}, *out[] = {y};
    Node *nd = TAPE_RECORD(tp, "diffaug", diffaug_bwd, in, out);
    if (nd) {
        DiffAugSample *c = tape_alloc(tp, (size_t)B * sizeof *c);
        memcpy(c, p, (size_t)B * sizeof *c);
        nd->ctx = c;
    }
    return y;
}
