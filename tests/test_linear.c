/* test_linear.c: linear forward/backward against PyTorch fixtures, and finite differences.
 * The template for op tests: (1) value test per fixture case: forward output, then backward
 * seeded with the fixture's `gout`, every input gradient; (2) gradcheck over every
 * differentiable input. */
#include "test.h"
#include "../src/ops/linear.h"

static Tensor *fwd_linear(Tape *tp, Tensor **in, void *ctx) { return op_linear(tp, in[0], in[1], in[2]); }

static void value_case(SafeTensors *fx, const char *name, int has_bias) {
    char k[128];
    Tensor *in[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 2 + has_bias; i++) {
        snprintf(k, sizeof k, "%s.in%d", name, i);
        in[i] = fixture_tensor(fx, k, 1);
    }
    snprintf(k, sizeof k, "%s.out", name);
    Tensor *want = fixture_tensor(fx, k, 0);
    snprintf(k, sizeof k, "%s.gout", name);
    Tensor *gout = fixture_tensor(fx, k, 0);
    Tape tp;
    tape_init(&tp);
    Tensor *y = fwd_linear(&tp, in, NULL);
    snprintf(k, sizeof k, "linear %s forward", name);
    EXPECT(tensor_same_shape(y, want), "%s: shape", k);
    expect_close(k, y->data, want->data, want->n, 1e-5);
    const float *seed = gout->data;
    tape_backward_seeded(&tp, 1, &y, &seed);
    for (int i = 0; i < 2 + has_bias; i++) {
        snprintf(k, sizeof k, "%s.grad%d", name, i);
        Tensor *g = fixture_tensor(fx, k, 0);
        snprintf(k, sizeof k, "linear %s grad of input %d", name, i);
        expect_close(k, in[i]->grad, g->data, g->n, 1e-5);
        tensor_free(g);
    }
    tape_free(&tp);
    for (int i = 0; i < 3; i++) tensor_free(in[i]);
    tensor_free(want);
    tensor_free(gout);
}

int main(void) {
    test_begin("test_linear");
    SafeTensors *fx = fixture_open("linear");
    if (fx) {
        value_case(fx, "bias", 1);
        value_case(fx, "nobias", 0);
        fixture_close(fx);
    }
    /* gradcheck: 3-d input with bias, and without bias */
    Tensor *x = tensor_alloc(3, (int[]){2, 3, 6}, 1), *w = tensor_alloc(2, (int[]){5, 6}, 1), *b = tensor_alloc(1, (int[]){5}, 1);
    fill_uniform(x->data, x->n, -1, 1, 1);
    fill_uniform(w->data, w->n, -1, 1, 2);
    fill_uniform(b->data, b->n, -1, 1, 3);
    Tensor *in[3] = {x, w, b};
    gradcheck("linear", fwd_linear, 3, in, NULL, NULL);
    in[2] = NULL;
    gradcheck("linear nobias", fwd_linear, 3, in, NULL, NULL);
    /* frozen weight: input gradient still flows, weight gradient untouched */
    w->requires_grad = false;
    for (int64_t i = 0; i < w->n; i++) w->grad[i] = 0.0f;
    in[2] = b;
    gradcheck("linear frozen weight", fwd_linear, 3, in, NULL, NULL);
    int64_t touched = 0;
    for (int64_t i = 0; i < w->n; i++) touched += w->grad[i] != 0.0f;
    EXPECT(touched == 0, "frozen weight: %lld gradient elements written", (long long)touched);
    tensor_free(x);
    tensor_free(w);
    tensor_free(b);
    return test_end();
}
