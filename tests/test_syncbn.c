/* test_syncbn.c: synchronised batch norm (EXTRA.SYNC_BN, batchnorm_set_sync) and its kernels.
 *
 * In any process: batchnorm_sums gives batchnorm_backward's sums, and batchnorm_backward_sums with
 * one batch's own sums is batchnorm_backward's train mode, bit for bit.
 * Under mpirun (tests/test_dist.sh runs it on 2 ranks): each rank holds its rows of one batch of
 * 2 rows per rank; with sync on, its op_batchnorm forward and backward give the rows of the whole
 * batch's (normalised output, input gradient) and the whole batch's running statistics, and the
 * ranks' gamma and beta gradients add up to the whole batch's. Without a launcher that part says
 * it is skipped. */
#include "test.h"
#include "../src/core/dist.h"
#include "../src/ops/arith.h"
#include "../src/ops/batchnorm.h"

#include <string.h>

enum { C = 3, H = 2, WD = 3, S = H * WD };

/* op_batchnorm on rows [r0, r0 + n) of x_all (NA, C, H, WD) with loss sum(y * g_all rows): y, dx,
 * dgamma, dbeta and the running statistics out */
static void run(const float *x_all, const float *g_all, int r0, int n, float *y, float *dx, float *dgamma, float *dbeta,
                float *rm, float *rv) {
    Tape tp;
    tape_init(&tp);
    Tensor *x = tape_leaf(&tp, 4, (int[]){n, C, H, WD});
    memcpy(x->data, x_all + (size_t)r0 * C * S, (size_t)n * C * S * sizeof(float));
    Tensor *g = TNEW(&tp, n, C, H, WD);
    memcpy(g->data, g_all + (size_t)r0 * C * S, (size_t)n * C * S * sizeof(float));
    Tensor *gamma = tape_leaf(&tp, 1, (int[]){C}), *beta = tape_leaf(&tp, 1, (int[]){C});
    Tensor *run_m = TNEW(&tp, C), *run_v = TNEW(&tp, C);
    for (int c = 0; c < C; c++) {
        gamma->data[c] = 0.5f + 0.25f * (float)c;
        beta->data[c] = 0.1f * (float)c - 0.05f;
        run_m->data[c] = 0.0f;
        run_v->data[c] = 1.0f;
    }
    int64_t nbt = 0;
    Tensor *out = op_batchnorm(&tp, x, gamma, beta, run_m, run_v, &nbt, 1, 0.1f, 1e-5f);
    tape_backward(&tp, op_sum_all(&tp, op_mul(&tp, out, g)));
    memcpy(y, out->data, (size_t)n * C * S * sizeof(float));
    memcpy(dx, x->grad, (size_t)n * C * S * sizeof(float));
    memcpy(dgamma, gamma->grad, C * sizeof(float));
    memcpy(dbeta, beta->grad, C * sizeof(float));
    memcpy(rm, run_m->data, C * sizeof(float));
    memcpy(rv, run_v->data, C * sizeof(float));
    tape_free(&tp);
}

int main(void) {
    test_begin("test_syncbn");
    if (dist_init()) {
        printf("dist_init: %s\n", err_msg());
        return 1;
    }
    int W = dist_size(), rank = dist_rank();
    /* the kernels */
    enum { N = 4 };
    static float x[N * C * S], dy[N * C * S], mean[C], var[C], rstd[C], gamma[C] = {0.7f, -1.2f, 2.0f};
    Rng rng;
    rng_init(&rng, 11);
    rng_normal(&rng, x, N * C * S, 0.3f, 2.0f);
    rng_normal(&rng, dy, N * C * S, 0.0f, 1.0f);
    batchnorm_stats(mean, var, x, N, C, S);
    for (int c = 0; c < C; c++) rstd[c] = 1.0f / sqrtf(var[c] + 1e-5f);
    float dx1[N * C * S] = {0}, dx2[N * C * S] = {0}, dg1[C] = {0}, dg2[C] = {0}, db1[C] = {0}, db2[C] = {0};
    double sums[2 * C];
    batchnorm_backward(dx1, dg1, db1, dy, mean, rstd, x, gamma, N, C, S, 1);
    batchnorm_sums(sums, dy, x, mean, N, C, S);
    batchnorm_backward_sums(dx2, dg2, db2, sums, sums, (int64_t)N * S, dy, mean, rstd, x, gamma, N, C, S);
    EXPECT(!memcmp(dx1, dx2, sizeof dx1) && !memcmp(dg1, dg2, sizeof dg1) && !memcmp(db1, db2, sizeof db1),
           "batchnorm_backward_sums with a batch's own sums is batchnorm_backward (train), bit for bit");
    int sums_ok = 1;
    for (int c = 0; c < C; c++) sums_ok &= db1[c] == (float)sums[2 * c] && dg1[c] == (float)(sums[2 * c + 1] * rstd[c]);
    EXPECT(sums_ok, "batchnorm_sums gives the backward's sum(dy) and dot(x - mean, dy)");

    /* the ranks: 2 rows each of one batch of 2 W rows */
    if (W == 1) {
        test_skip("one process: the ranks' part runs under mpirun (tests/test_dist.sh)");
        return dist_finalize(test_end());
    }
    int NA = 2 * W, n = NA * C * S;
    float *xa = xmalloc((size_t)n * sizeof(float)), *ga = xmalloc((size_t)n * sizeof(float));
    rng_init(&rng, 12); /* the same on every rank */
    rng_normal(&rng, xa, n, -0.4f, 1.5f);
    rng_normal(&rng, ga, n, 0.0f, 1.0f);
    float *yf = xmalloc((size_t)n * sizeof(float)), *dxf = xmalloc((size_t)n * sizeof(float));
    float dgf[C], dbf[C], rmf[C], rvf[C];
    batchnorm_set_sync(0);
    run(xa, ga, 0, NA, yf, dxf, dgf, dbf, rmf, rvf); /* the whole batch, in one process */
    int m = 2 * C * S;
    float *y = xmalloc((size_t)m * sizeof(float)), *dx = xmalloc((size_t)m * sizeof(float));
    float dg[C], db[C], rm[C], rv[C];
    batchnorm_set_sync(1);
    run(xa, ga, 2 * rank, 2, y, dx, dg, db, rm, rv);
    batchnorm_set_sync(0);
    size_t off = (size_t)2 * rank * C * S;
    EXPECT(rel_err(y, yf + off, m, NULL) < 1e-6, "rank %d: its rows of the output are the whole batch's (%.2e)", rank,
           rel_err(y, yf + off, m, NULL));
    EXPECT(rel_err(dx, dxf + off, m, NULL) < 1e-5, "rank %d: its rows of the input gradient are the whole batch's (%.2e)", rank,
           rel_err(dx, dxf + off, m, NULL));
    EXPECT(rel_err(rm, rmf, C, NULL) < 1e-6 && rel_err(rv, rvf, C, NULL) < 1e-6,
           "rank %d: the running statistics are the whole batch's", rank);
    double p[2 * C];
    for (int c = 0; c < C; c++) p[c] = dg[c], p[C + c] = db[c];
    dist_sum_double(p, 2 * C);
    float pg[C], pb[C];
    for (int c = 0; c < C; c++) pg[c] = (float)p[c], pb[c] = (float)p[C + c];
    EXPECT(rel_err(pg, dgf, C, NULL) < 1e-5 && rel_err(pb, dbf, C, NULL) < 1e-5,
           "the ranks' gamma and beta gradients add up to the whole batch's");
    /* and without sync each rank normalises with its own rows: the output differs */
    run(xa, ga, 2 * rank, 2, y, dx, dg, db, rm, rv);
    EXPECT(rel_err(y, yf + off, m, NULL) > 1e-3, "rank %d: without SYNC_BN its own statistics (the check can fail)", rank);
    free(xa); free(ga); free(yf); free(dxf); free(y); free(dx);
    int rc = test_end();
    int any = rc;
    dist_max_int(&any, 1);
    return dist_finalize(any);
}
