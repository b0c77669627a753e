/* test_device.c: the device layer without a GPU (src/core/device.h, devpool.h): the caching pool
 * that CUDA and the host device share, the host device's copies and guard, KERNEL's dispatch and
 * argument checks, device selection and its errors, and tapes on the host device. Every op's
 * output and gradients on the host device are compared with the CPU's bits by gradcheck
 * (tests/test_util.c), in each op's own test. */
#include "test.h"
#include "../src/core/device.h"
#include "../src/ops/activation.h"
#include "../src/ops/arith.h"
#include "../src/ops/linear.h"
#include "../src/train/optim.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- the pool over a counting raw allocator */
static size_t raw_budget, raw_used;
static int raw_allocs, raw_frees;

static void *raw_alloc(size_t bytes) {
    if (raw_used + bytes > raw_budget) return NULL;
    raw_used += bytes;
    raw_allocs++;
    return malloc(bytes);
}
static void raw_free(void *p, size_t bytes) {
    raw_used -= bytes;
    raw_frees++;
    free(p);
}

static void pool_tests(void) {
    EXPECT(devpool_round(1) == 512 && devpool_round(512) == 512 && devpool_round(513) == 1024, "rounding below 1 MiB: 512 B steps");
    EXPECT(devpool_round(((size_t)1 << 20) + 1) == ((size_t)2 << 20) && devpool_round((size_t)5 << 20) == ((size_t)6 << 20),
           "rounding above 1 MiB: 2 MiB steps");
    raw_budget = (size_t)64 << 20;
    DevPool p = {.name = "test", .raw_alloc = raw_alloc, .raw_free = raw_free};
    void *a = devpool_alloc(&p, 1000), *b = devpool_alloc(&p, 3000);
    EXPECT(a && b && a != b && raw_allocs == 2, "two fresh blocks, two raw allocations (%d)", raw_allocs);
    EXPECT(devpool_size(&p, a) == 1024 && devpool_size(&p, b) == 3072, "live sizes are the rounded ones");
    devpool_free(&p, a);
    void *c = devpool_alloc(&p, 900); /* same rounded size: the cached block */
    EXPECT(c == a && raw_allocs == 2, "a freed block is reused for a request of its rounded size");
    void *d = devpool_alloc(&p, 2000); /* another size: a new block */
    EXPECT(d != a && d != b && raw_allocs == 3, "another size takes a new block");
    DevPoolStats st = devpool_stats(&p);
    EXPECT(st.live == 1024 + 3072 + 2048 && st.cached == 0 && st.n_raw == 3 && st.n_alloc == 4,
           "stats: live %zu, cached %zu, raw %zu, calls %zu", st.live, st.cached, st.n_raw, st.n_alloc);
    /* many blocks of many sizes: every one comes back, the hashes grow */
    enum { M = 3000 };
    void **v = xmalloc(M * sizeof *v);
    for (int i = 0; i < M; i++) v[i] = devpool_alloc(&p, (size_t)(i % 97 + 1) * 100);
    for (int i = 0; i < M; i += 2) devpool_free(&p, v[i]);
    int before = raw_allocs;
    for (int i = 0; i < M; i += 2) v[i] = devpool_alloc(&p, (size_t)(i % 97 + 1) * 100);
    EXPECT(raw_allocs == before, "the second round is all cache hits (%d raw allocations)", raw_allocs - before);
    for (int i = 0; i < M; i++) devpool_free(&p, v[i]);
    free(v);
    devpool_free(&p, b);
    devpool_free(&p, c);
    devpool_free(&p, d);
    st = devpool_stats(&p);
    EXPECT(st.live == 0 && st.peak_live > 0 && st.cached > 0, "all free: live 0, the blocks cached (%zu)", st.cached);
    devpool_release_cache(&p);
    st = devpool_stats(&p);
    EXPECT(st.cached == 0 && raw_used == 0 && raw_frees == raw_allocs, "release_cache gives every block back (%d of %d)", raw_frees,
           raw_allocs);
    /* out of memory: the cache goes back and the request is tried again */
    raw_budget = (size_t)4 << 20;
    void *e = devpool_alloc(&p, (size_t)3 << 20);
    devpool_free(&p, e);
    void *f = devpool_alloc(&p, (size_t)3 << 19); /* 2 MiB rounded: does not fit beside the cached 4 MiB */
    EXPECT(f != NULL && devpool_stats(&p).cached == 0, "an allocation that does not fit releases the cache first");
    devpool_free(&p, f);
    devpool_destroy(&p);
    EXPECT(raw_used == 0 && p.blocks == NULL, "devpool_destroy gives everything back");
}

static DevPool death_pool = {.name = "test", .raw_alloc = raw_alloc, .raw_free = raw_free};
static void double_free(void) {
    raw_budget = (size_t)1 << 20;
    void *a = devpool_alloc(&death_pool, 100);
    devpool_free(&death_pool, a);
    devpool_free(&death_pool, a);
}
static void foreign_free(void) {
    int x;
    devpool_free(&death_pool, &x);
}
static void out_of_memory(void) {
    raw_budget = 1000;
    devpool_alloc(&death_pool, 5000);
}

/* ---------------------------------------------------------------- the host device */
static float *g_dev; /* a device block for the death tests */

static void host_reads_device(void) {
    volatile float v = g_dev[3]; /* what a GPU pointer read on the host would be */
    (void)v;
}
static void host_array_to_kernel(void) {
    float host[16] = {0};
    KERNEL(DEVICE_HOSTDEV, relu_forward, g_dev, host, 16);
}

static void hostdev_tests(void) {
    size_t n = 1000;
    float *h = xmalloc(n * sizeof(float)), *back = xmalloc(n * sizeof(float));
    fill_uniform(h, (int64_t)n, -1, 1, 7);
    float *d = device_alloc(DEVICE_HOSTDEV, n * sizeof(float)), *d2 = device_alloc(DEVICE_HOSTDEV, n * sizeof(float));
    EXPECT(hostdev_owns(d) && !hostdev_owns(h) && hostdev_owns(NULL), "hostdev_owns tells device from host memory");
    device_upload(DEVICE_HOSTDEV, d, h, n * sizeof(float));
    device_copy(DEVICE_HOSTDEV, d2, d, n * sizeof(float));
    device_download(DEVICE_HOSTDEV, back, d2, n * sizeof(float));
    EXPECT(!memcmp(back, h, n * sizeof(float)), "upload, device copy, download: the same bytes");
    device_memset0(DEVICE_HOSTDEV, d2, n * sizeof(float));
    device_download(DEVICE_HOSTDEV, back, d2, n * sizeof(float));
    int zero = 1;
    for (size_t i = 0; i < n; i++) zero &= back[i] == 0.0f;
    EXPECT(zero, "memset0 on the device");
    /* KERNEL: the CPU kernel on the device's memory, the same bits as on the host */
    float *want = xmalloc(n * sizeof(float));
    relu_forward(want, h, (int64_t)n);
    KERNEL(DEVICE_HOSTDEV, relu_forward, d2, d, (int64_t)n);
    device_download(DEVICE_HOSTDEV, back, d2, n * sizeof(float));
    EXPECT(!memcmp(back, want, n * sizeof(float)), "KERNEL on the host device: the CPU kernel's bits");
    float *cpu_out = xmalloc(n * sizeof(float));
    KERNEL(DEVICE_CPU, relu_forward, cpu_out, h, (int64_t)n);
    EXPECT(!memcmp(cpu_out, want, n * sizeof(float)), "KERNEL on the CPU: the kernel itself");
    g_dev = d;
    expect_death("host code reading device memory", host_reads_device, "hostdev: host code touched device memory");
    expect_death("a host array given to a device kernel", host_array_to_kernel, "relu_forward: argument 2");
    device_free(DEVICE_HOSTDEV, d);
    device_free(DEVICE_HOSTDEV, d2);
    free(h), free(back), free(want), free(cpu_out);
}

/* ---------------------------------------------------------------- device selection */
static void select_tests(void) {
    DeviceKind k = DEVICE_CUDA;
    unsetenv("ATTNGAN_DEVICE");
    EXPECT(device_init(NULL, &k) == 0 && k == DEVICE_CPU && device_current() == DEVICE_CPU, "no flag, no variable: the CPU");
    EXPECT(device_init("hostdev", &k) == 0 && k == DEVICE_HOSTDEV && device_current() == DEVICE_HOSTDEV, "--device hostdev");
    EXPECT(device_init("gpu", &k) < 0 && strstr(err_msg(), "--device gpu: unknown device"), "an unknown name: %s", err_msg());
    setenv("ATTNGAN_DEVICE", "tpu", 1);
    EXPECT(device_init(NULL, &k) < 0 && strstr(err_msg(), "ATTNGAN_DEVICE tpu"), "a bad variable is named: %s", err_msg());
    EXPECT(device_init("cpu", &k) == 0 && k == DEVICE_CPU, "the flag wins over the variable");
    setenv("ATTNGAN_DEVICE", "hostdev", 1);
    EXPECT(device_init("", &k) == 0 && k == DEVICE_HOSTDEV, "the variable when the flag is empty");
    unsetenv("ATTNGAN_DEVICE");
    if (!device_cuda_built()) {
        EXPECT(device_init("cuda", &k) < 0 && strstr(err_msg(), "make CUDA=1"), "cuda without the backend says how to build it: %s",
               err_msg());
    } else {
        const char *why;
        int ok = device_available(DEVICE_CUDA, &why);
        EXPECT(ok || device_init("cuda", &k) < 0, "cuda unusable here (%s) is an error", why);
    }
    device_set_current(DEVICE_CPU);
}

/* ---------------------------------------------------------------- tapes on the host device */
static void tape_tests(void) {
    DevPoolStats st0 = device_pool_stats(DEVICE_HOSTDEV);
    Tape tp;
    tape_init_on(&tp, DEVICE_HOSTDEV);
    float xs[6] = {1, -2, 3, -4, 5, -6}, ws[6] = {0.5f, 1, -1, 2, 0.25f, -0.5f}, bs[2] = {0.1f, -0.2f};
    Tensor *x = TNEW(&tp, 3, 2), *w = tape_leaf(&tp, 2, (int[]){2, 2}), *b = tape_leaf(&tp, 1, (int[]){2});
    EXPECT(x->device == DEVICE_HOSTDEV && w->device == DEVICE_HOSTDEV && hostdev_owns(x->data) && hostdev_owns(w->grad),
           "a host-device tape's tensors and gradients live on it");
    tensor_upload(x, xs);
    tensor_upload(w, ws);
    tensor_upload(b, bs);
    Tensor *loss = op_sum_all(&tp, op_relu(&tp, op_linear(&tp, x, w, b)));
    float l = tensor_item(loss);
    /* the same on the CPU */
    Tape ct;
    tape_init_on(&ct, DEVICE_CPU);
    Tensor *cx = TNEW(&ct, 3, 2), *cw = tape_leaf(&ct, 2, (int[]){2, 2}), *cb = tape_leaf(&ct, 1, (int[]){2});
    memcpy(cx->data, xs, sizeof xs), memcpy(cw->data, ws, sizeof ws), memcpy(cb->data, bs, sizeof bs);
    Tensor *closs = op_sum_all(&ct, op_relu(&ct, op_linear(&ct, cx, cw, cb)));
    EXPECT(l == closs->data[0], "linear, relu, sum on the host device: %g, on the CPU %g", l, closs->data[0]);
    tape_backward(&tp, loss);
    tape_backward(&ct, closs);
    float gw[4], gb[2];
    device_download(DEVICE_HOSTDEV, gw, w->grad, sizeof gw);
    device_download(DEVICE_HOSTDEV, gb, b->grad, sizeof gb);
    EXPECT(!memcmp(gw, cw->grad, sizeof gw) && !memcmp(gb, cb->grad, sizeof gb), "their gradients: the same bits");
    /* scratch copies of host arrays live on the device until the reset */
    int64_t ids[3] = {4, 5, 6};
    const int64_t *dids = tape_dev_copy(&tp, ids, sizeof ids);
    EXPECT(dids != ids && hostdev_owns(dids), "tape_dev_copy: a device copy on a device tape");
    EXPECT(tape_dev_copy(&ct, ids, sizeof ids) == ids, "tape_dev_copy: the host array itself on the CPU");
    Tensor *f = TNEW(&tp, 5);
    tensor_fill(f, 2.5f);
    EXPECT(tensor_item(op_sum_all(&tp, f)) == 12.5f, "tensor_fill on the device");
    tape_free(&tp);
    tape_free(&ct);
    DevPoolStats st = device_pool_stats(DEVICE_HOSTDEV);
    EXPECT(st.live == st0.live, "tape_free gives every device block back (%zu live, %zu before)", st.live, st0.live);
    EXPECT(st.n_raw > 0 && st.cached > 0, "the blocks stay cached for the next step (%zu bytes)", st.cached);
}

/* ---------------------------------------------------------------- parameter sets and the optimizer on the host device */
static void make_set(ParamSet *ps, uint64_t seed) {
    paramset_init(ps, "net");
    PARAM(ps, "a.weight", 7, 5);
    PARAM(ps, "zsl_g.weight", 300);
    BUFFER(ps, "bn.running_mean", 5);
    *paramset_add_i64(ps, "bn.num_batches_tracked") = 3;
    paramset_finalize(ps);
    fill_uniform(ps->values, ps->n_values, -1, 1, seed);
    fill_uniform(ps->buffers, ps->n_buffers, -1, 1, seed + 1);
    fill_uniform(ps->grads, ps->n_values, -2, 2, seed + 2);
}

static void params_tests(void) {
    ParamSet c, d, ce, de;
    make_set(&c, 10), make_set(&d, 10), make_set(&ce, 20), make_set(&de, 20);
    Adam ac, ad;
    adam_init(&ac, &c, 1e-2f, 0.5f, 0.999f, 1e-8f), adam_init(&ad, &d, 1e-2f, 0.5f, 0.999f, 1e-8f);
    adam_set_prefix_scale(&ac, "zsl_g.", 0.1f), adam_set_prefix_scale(&ad, "zsl_g.", 0.1f);
    paramset_to_device(&d, DEVICE_HOSTDEV);
    paramset_to_device(&de, DEVICE_HOSTDEV);
    adam_to_device(&ad, DEVICE_HOSTDEV);
    EXPECT(d.device == DEVICE_HOSTDEV && hostdev_owns(d.values) && hostdev_owns(d.grads) && hostdev_owns(d.buffers) &&
               d.entries[0]->t.device == DEVICE_HOSTDEV && hostdev_owns(d.entries[1]->t.data) && hostdev_owns(ad.m),
           "paramset_to_device and adam_to_device move values, gradients, buffers, entries and the moments");
    for (int step = 0; step < 3; step++) {
        ParamSet *cs[] = {&c}, *ds[] = {&d};
        float tc = clip_grad_norm_sets(cs, 1, 0.5f), td = clip_grad_norm_sets(ds, 1, 0.5f);
        EXPECT(tc == td, "clip_grad_norm on the host device: total %g, on the CPU %g", td, tc);
        adam_step(&ac), adam_step(&ad);
        ema_update(&ce, &c, 0.999f), ema_update(&de, &d, 0.999f);
    }
    paramset_release_grads(&d);
    paramset_zero_grad(&d);
    EXPECT(hostdev_owns(d.grads), "gradients released and taken again stay on the device");
    /* back on the CPU: the same bits */
    paramset_to_device(&d, DEVICE_CPU);
    paramset_to_device(&de, DEVICE_CPU);
    adam_to_device(&ad, DEVICE_CPU);
    EXPECT(!memcmp(c.values, d.values, (size_t)c.n_values * sizeof(float)) && !memcmp(ac.m, ad.m, (size_t)c.n_values * sizeof(float)) &&
               !memcmp(ac.v, ad.v, (size_t)c.n_values * sizeof(float)),
           "three clipped Adam steps on the host device: the CPU's weights and moments, bit for bit");
    EXPECT(!memcmp(ce.values, de.values, (size_t)c.n_values * sizeof(float)), "the EMA: the CPU's bits");
    EXPECT(!memcmp(c.buffers, d.buffers, (size_t)c.n_buffers * sizeof(float)) && d.entries[3]->ival == 3 &&
               d.entries[0]->t.data == d.values && !hostdev_owns(d.values),
           "buffers and integer buffers survive the round trip; the entries point at the host again");
    ParamSet x;
    make_set(&x, 30);
    paramset_to_device(&x, DEVICE_HOSTDEV);
    paramset_copy(&x, &c); /* host to device */
    paramset_copy(&ce, &x); /* device to host */
    EXPECT(!memcmp(ce.values, c.values, (size_t)c.n_values * sizeof(float)), "paramset_copy across devices");
    adam_free(&ac), adam_free(&ad);
    paramset_free(&c), paramset_free(&d), paramset_free(&ce), paramset_free(&de), paramset_free(&x);
}

int main(void) {
    test_begin("test_device");
    pool_tests();
    expect_death("a double free", double_free, "double free of the device block");
    expect_death("a foreign pointer", foreign_free, "not a block of this device's pool");
    expect_death("out of device memory", out_of_memory, "out of device memory");
    hostdev_tests();
    select_tests();
    tape_tests();
    params_tests();
    DevPoolStats st = device_pool_stats(DEVICE_HOSTDEV);
    EXPECT(st.live == 0, "every host-device block was freed (%zu bytes live)", st.live);
    return test_end();
}
