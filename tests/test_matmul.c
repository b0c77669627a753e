/* test_matmul.c: op_bmm against PyTorch fixtures (all four transpose combinations and a 2-d
 * product), finite-difference gradchecks, a naive reference on the batch-parallel and the
 * BLAS-threaded paths, a frozen operand, bmm(x, x^T) and the CHECK message on bad shapes. */
#include "test.h"
#include "../src/ops/matmul.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct BmmArgs {
    int ta, tb;
} BmmArgs;

static Tensor *fwd_bmm(Tape *tp, Tensor **in, void *ctx) {
    const BmmArgs *a = ctx;
    return op_bmm(tp, in[0], in[1], a->ta, a->tb);
}

/* ---------------------------------------------------------------- fixtures */

static void value_case(SafeTensors *fx, const char *name, BmmArgs args) {
    char k[128], what[160];
    Tensor *in[2];
    for (int i = 0; i < 2; i++) {
        snprintf(k, sizeof k, "%s.in%d", name, i);
        in[i] = fixture_tensor(fx, k, 1);
    }
    snprintf(k, sizeof k, "%s.out", name);
    Tensor *want = fixture_tensor(fx, k, 0);
    snprintf(k, sizeof k, "%s.gout", name);
    Tensor *gout = fixture_tensor(fx, k, 0);
    Tape tp;
    tape_init(&tp);
    Tensor *y = fwd_bmm(&tp, in, &args);
    snprintf(what, sizeof what, "bmm %s forward", name);
    if (EXPECT(tensor_same_shape(y, want), "%s: shape", what)) expect_close(what, y->data, want->data, want->n, 1e-5);
    const float *seed = gout->data;
    tape_backward_seeded(&tp, 1, &y, &seed);
    for (int i = 0; i < 2; i++) {
        snprintf(k, sizeof k, "%s.grad%d", name, i);
        Tensor *g = fixture_tensor(fx, k, 0);
        snprintf(what, sizeof what, "bmm %s grad of input %d", name, i);
        expect_close(what, in[i]->grad, g->data, g->n, 1e-5);
        tensor_free(g);
    }
    tape_free(&tp);
    for (int i = 0; i < 2; i++) tensor_free(in[i]);
    tensor_free(want);
    tensor_free(gout);
}

static void fixture_cases(void) {
    SafeTensors *fx = fixture_open("matmul");
    if (!fx) return;
    value_case(fx, "bmm_t00", (BmmArgs){0, 0});
    value_case(fx, "bmm_t01", (BmmArgs){0, 1});
    value_case(fx, "bmm_t10", (BmmArgs){1, 0});
    value_case(fx, "bmm_t11", (BmmArgs){1, 1});
    value_case(fx, "mm2d", (BmmArgs){0, 1});
    fixture_close(fx);
}

/* ---------------------------------------------------------------- gradchecks */

static Tensor *rand_leaf(int ndim, const int *shape, uint64_t seed) {
    Tensor *t = tensor_alloc(ndim, shape, 1);
    fill_uniform(t->data, t->n, -1, 1, seed);
    return t;
}
#define RAND_LEAF(seed, ...) rand_leaf(NDIMS(__VA_ARGS__), (int[]){__VA_ARGS__}, (seed))

static void gradchecks(void) {
    const int B = 2, M = 3, K = 4, N = 5;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            Tensor *in[2] = {ta ? RAND_LEAF(1, B, K, M) : RAND_LEAF(1, B, M, K), tb ? RAND_LEAF(2, B, N, K) : RAND_LEAF(2, B, K, N)};
            char name[64];
            snprintf(name, sizeof name, "bmm trans_a %d trans_b %d", ta, tb);
            gradcheck(name, fwd_bmm, 2, in, &(BmmArgs){ta, tb}, NULL);
            tensor_free(in[0]);
            tensor_free(in[1]);
        }
    Tensor *in[2] = {RAND_LEAF(3, 4, 6), RAND_LEAF(4, 6, 3)};
    gradcheck("mm 2-d", fwd_bmm, 2, in, &(BmmArgs){0, 0}, NULL);
    /* frozen b: a's gradient flows, b's buffer stays zero */
    in[1]->requires_grad = false;
    memset(in[1]->grad, 0, (size_t)in[1]->n * sizeof(float));
    gradcheck("mm 2-d frozen b", fwd_bmm, 2, in, &(BmmArgs){0, 0}, NULL);
    int64_t touched = 0;
    for (int64_t i = 0; i < in[1]->n; i++) touched += in[1]->grad[i] != 0.0f;
    EXPECT(touched == 0, "bmm: frozen operand got %lld gradient elements", (long long)touched);
    tensor_free(in[0]);
    tensor_free(in[1]);
    /* x . x^T: both gradients land in the same buffer */
    Tensor *x = RAND_LEAF(5, 3, 4, 5);
    Tensor *xx[2] = {x, x};
    gradcheck("bmm x x^T", fwd_bmm, 2, xx, &(BmmArgs){0, 1}, NULL);
    tensor_free(x);
}

/* ---------------------------------------------------------------- naive reference */

/* Element (i, j) of op(t) for batch entry t (rows x cols stored, transposed if trans). */
static double at(const float *t, int trans, int cols_stored, int i, int j) {
    return trans ? t[(int64_t)j * cols_stored + i] : t[(int64_t)i * cols_stored + j];
}

/* Forward and backward vs double loops; B M N K chosen to hit the OpenMP-over-batch path or the
 * BLAS-threaded path. */
static void reference_case(const char *what, int B, int M, int N, int K, int ta, int tb) {
    Tensor *a = ta ? RAND_LEAF(11, B, K, M) : RAND_LEAF(11, B, M, K);
    Tensor *b = tb ? RAND_LEAF(12, B, N, K) : RAND_LEAF(12, B, K, N);
    Tape tp;
    tape_init(&tp);
    Tensor *y = op_bmm(&tp, a, b, ta, tb);
    float *gout = xmalloc((size_t)y->n * sizeof(float));
    fill_uniform(gout, y->n, -1, 1, 13);
    const float *seed = gout;
    tape_backward_seeded(&tp, 1, &y, &seed);
    int acols = ta ? M : K, bcols = tb ? K : N;
    double *da = xcalloc((size_t)a->n, sizeof(double)), *db = xcalloc((size_t)b->n, sizeof(double));
    double err_y = 0, err_a = 0, err_b = 0;
    for (int s = 0; s < B; s++) {
        const float *as = a->data + (int64_t)s * M * K, *bs = b->data + (int64_t)s * K * N;
        const float *gs = gout + (int64_t)s * M * N;
        double *das = da + (int64_t)s * M * K, *dbs = db + (int64_t)s * K * N;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double acc = 0, g = gs[(int64_t)i * N + j];
                for (int k = 0; k < K; k++) {
                    acc += at(as, ta, acols, i, k) * at(bs, tb, bcols, k, j);
                    das[ta ? (int64_t)k * M + i : (int64_t)i * K + k] += g * at(bs, tb, bcols, k, j);
                    dbs[tb ? (int64_t)j * K + k : (int64_t)k * N + j] += g * at(as, ta, acols, i, k);
                }
                err_y = fmax(err_y, fabs(acc - y->data[(int64_t)s * M * N + (int64_t)i * N + j]));
            }
    }
    for (int64_t i = 0; i < a->n; i++) err_a = fmax(err_a, fabs(da[i] - a->grad[i]));
    for (int64_t i = 0; i < b->n; i++) err_b = fmax(err_b, fabs(db[i] - b->grad[i]));
    EXPECT(err_y < 1e-3 && err_a < 1e-3 && err_b < 1e-3, "%s: max abs err out %.3g, da %.3g, db %.3g", what, err_y, err_a, err_b);
    free(da);
    free(db);
    free(gout);
    tape_free(&tp);
    tensor_free(a);
    tensor_free(b);
}

/* ---------------------------------------------------------------- CHECK message */

static void die_inner(void) {
    Tape tp;
    tape_init(&tp);
    op_bmm(&tp, TNEW(&tp, 2, 3, 4), TNEW(&tp, 2, 5, 6), 0, 0);
}

int main(void) {
    test_begin("test_matmul");
    /* every check once per implementation */
    for (int impl = 0; impl < 2; impl++) {
        bmm_set_impl(impl ? BMM_BLAS : BMM_DNNL);
        printf("bmm implementation: %s\n", impl ? "OpenBLAS" : "oneDNN");
        fixture_cases();
        gradchecks();
        reference_case("bmm batch-parallel path", 16, 6, 7, 5, 1, 1);
        reference_case("bmm batch-parallel path nn", 9, 8, 3, 10, 0, 0);
        reference_case("bmm BLAS-threaded path", 2, 70, 80, 60, 1, 0);
        reference_case("bmm BLAS-threaded path nt", 2, 65, 70, 66, 0, 1);
        reference_case("bmm G attention (4096 x 18 x 32, a transposed)", 2, 1024, 18, 32, 1, 0);
        reference_case("bmm DAMSM context (256 x n x 289, b transposed)", 3, 256, 11, 289, 0, 1);
        reference_case("bmm 2 x 2 transposes tt", 3, 17, 19, 23, 1, 1);
    }
    bmm_set_impl(BMM_DNNL);
    expect_death("bmm inner dims", die_inner, "bmm: inner dims differ: op(a) is 3x4 (a (2, 3, 4), trans_a 0), op(b) is 5x6");
    return test_end();
}
