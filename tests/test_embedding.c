/* test_embedding.c: embedding lookup against PyTorch fixtures (repeated ids accumulate in the
 * weight gradient), the parallel backward against a serial reference, finite differences, and
 * the fatal error on an out-of-range id. */
#include "test.h"
#include "../src/ops/embedding.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct Ctx {
    const int64_t *ids;
    int B, T;
} Ctx;

static Tensor *fwd(Tape *tp, Tensor **in, void *vctx) {
    const Ctx *c = vctx;
    return op_embedding(tp, c->ids, c->B, c->T, in[0]);
}

/* <name>.in0 ids (B, T), .in1 weight (V, D): forward vs .out, backward seeded with .gout vs .grad1 */
static void value_case(SafeTensors *fx, const char *name) {
    char k[128];
    snprintf(k, sizeof k, "%s.in0", name);
    const StTensor *st = st_find(fx, k);
    CHECK(st && st->ndim == 2, "fixture embedding: %s must be 2-d ids", k);
    Ctx c = {fixture_i64(fx, k, NULL), (int)st->shape[0], (int)st->shape[1]};
    snprintf(k, sizeof k, "%s.in1", name);
    Tensor *w = fixture_tensor(fx, k, 1);
    snprintf(k, sizeof k, "%s.out", name);
    Tensor *want = fixture_tensor(fx, k, 0);
    snprintf(k, sizeof k, "%s.gout", name);
    Tensor *gout = fixture_tensor(fx, k, 0);
    snprintf(k, sizeof k, "%s.grad1", name);
    Tensor *gwant = fixture_tensor(fx, k, 0);
    Tape tp;
    tape_init(&tp);
    Tensor *y = fwd(&tp, &w, &c);
    snprintf(k, sizeof k, "embedding %s forward", name);
    EXPECT(tensor_same_shape(y, want), "%s: shape", k);
    expect_close(k, y->data, want->data, want->n, 0);
    const float *seed = gout->data;
    tape_backward_seeded(&tp, 1, &y, &seed);
    snprintf(k, sizeof k, "embedding %s weight grad", name);
    expect_close(k, w->grad, gwant->data, gwant->n, 1e-6);
    tape_free(&tp);
    free((void *)c.ids);
    tensor_free(w);
    tensor_free(want);
    tensor_free(gout);
    tensor_free(gwant);
}

/* A backward big enough for the parallel path must equal the serial scatter bit for bit. */
static void parallel_backward(void) {
    enum { V = 37, D = 200, N = 700 };
    int64_t *ids = xmalloc(N * sizeof(int64_t));
    Rng r;
    rng_init(&r, 5);
    for (int n = 0; n < N; n++) ids[n] = rng_below(&r, V);
    float *dout = xmalloc((size_t)N * D * sizeof(float));
    fill_uniform(dout, (int64_t)N * D, -1, 1, 6);
    float *got = xcalloc((size_t)V * D, sizeof(float)), *ref = xcalloc((size_t)V * D, sizeof(float));
    fill_uniform(got, (int64_t)V * D, -1, 1, 7); /* backward adds to what is there */
    memcpy(ref, got, (size_t)V * D * sizeof(float));
    embedding_backward(got, dout, ids, N, D);
    for (int n = 0; n < N; n++)
        for (int d = 0; d < D; d++) ref[ids[n] * D + d] += dout[(int64_t)n * D + d];
    EXPECT(memcmp(got, ref, (size_t)V * D * sizeof(float)) == 0, "embedding backward (parallel) equals the serial scatter exactly");
    free(ids);
    free(dout);
    free(got);
    free(ref);
}

static void gradchecks(void) {
    Tensor *w = tensor_alloc(2, (int[]){6, 5}, 1);
    fill_uniform(w->data, w->n, -1, 1, 3);
    int64_t ids[2 * 7] = {0, 3, 3, 5, 1, 3, 0, 2, 2, 2, 4, 5, 0, 1}; /* repeats, id 3 three times in row 0 */
    Ctx c = {ids, 2, 7};
    gradcheck("embedding", fwd, 1, &w, &c, NULL);
    /* frozen weight: nothing recorded, output does not require grad */
    w->requires_grad = false;
    Tape tp;
    tape_init(&tp);
    Tensor *y = op_embedding(&tp, ids, 2, 7, w);
    EXPECT(!y->requires_grad && tp.n_nodes == 0, "embedding of a frozen weight records nothing");
    tape_free(&tp);
    tensor_free(w);
}

/* Runs op_embedding with one bad id in a child; it must abort with a message naming the id and V. */
static void out_of_range(int64_t bad) {
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        Tensor *w = tensor_alloc(2, (int[]){13, 4}, 1);
        int64_t ids[3] = {1, bad, 2};
        Tape tp;
        tape_init(&tp);
        op_embedding(&tp, ids, 1, 3, w);
        _exit(0);
    }
    close(fds[1]);
    char msg[1024] = {0};
    size_t len = 0;
    ssize_t k;
    while (len < sizeof msg - 1 && (k = read(fds[0], msg + len, sizeof msg - 1 - len)) > 0) len += (size_t)k;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    char want_id[64];
    snprintf(want_id, sizeof want_id, "id %lld", (long long)bad);
    EXPECT(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "embedding id %lld: aborts (status %d)", (long long)bad, status);
    EXPECT(strstr(msg, want_id) && strstr(msg, "V = 13"), "embedding id %lld: message names the id and V: %s", (long long)bad, msg);
}

int main(void) {
    test_begin("test_embedding");
    SafeTensors *fx = fixture_open("embedding");
    if (fx) {
        value_case(fx, "small");
        value_case(fx, "wide");
        fixture_close(fx);
    }
    parallel_backward();
    gradchecks();
    out_of_range(13);
    out_of_range(-1);
    return test_end();
}
