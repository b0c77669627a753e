/* test_lanes.c: gradient accumulation's lanes (src/train/lanes.h): each lane keeps its own batch
 * norm buffers and counts, the gradients of the lanes are summed in lane order and averaged, lane
 * 0's running statistics go to every lane at an update; one lane does nothing. The training
 * programs' equivalence with data-parallel ranks is tests/test_dist.sh. */
#include "test.h"
#include "../src/train/lanes.h"

#include <string.h>

static void build(ParamSet *ps) {
    paramset_init(ps, "net");
    PARAM(ps, "w", 3);
    BUFFER(ps, "bn.running_mean", 2);
    paramset_add_i64(ps, "bn.num_batches_tracked");
    PARAM(ps, "v", 2); /* a weight after the buffers: the gradients stay one block */
    paramset_finalize(ps);
    paramset_zero_grad(ps);
}

static void set_grads(ParamSet *ps, float base) {
    for (int64_t k = 0; k < ps->n_values; k++) ps->grads[k] = base + 0.1f * (float)k;
}

int main(void) {
    test_begin("test_lanes");
    ParamSet ps;
    build(&ps);
    ParamEntry *rm = paramset_find(&ps, "bn.running_mean"), *nbt = paramset_find(&ps, "bn.num_batches_tracked");
    rm->t.data[0] = 1.0f, rm->t.data[1] = 2.0f;
    Lanes L;
    lanes_init(&L, 3);
    lanes_add_set(&L, &ps);
    /* each lane's forward moves its own statistics and count */
    for (int j = 0; j < 3; j++) {
        lanes_enter(&L, j);
        EXPECT(rm->t.data[0] == 1.0f && nbt->ival == 0, "lane %d starts from the statistics at registration (%g, %lld)", j,
               (double)rm->t.data[0], (long long)nbt->ival);
        rm->t.data[0] = 10.0f * (float)(j + 1);
        nbt->ival += j + 1;
    }
    lanes_enter(&L, 1);
    EXPECT(rm->t.data[0] == 20.0f && nbt->ival == 2, "lane 1 gets its own statistics back (%g, %lld)", (double)rm->t.data[0],
           (long long)nbt->ival);
    /* gradients: sum in lane order, times 1/3 */
    float g[3][5];
    for (int j = 0; j < 3; j++) {
        set_grads(&ps, (float)j + 0.3f);
        memcpy(g[j], ps.grads, sizeof g[j]);
        lanes_grad_add(&L, &ps, j);
        set_grads(&ps, -99.0f); /* the next backward's zeroed block is the lanes' concern only through add */
    }
    lanes_grad_finish(&L, &ps);
    int mean_ok = 1;
    for (int k = 0; k < 5; k++) {
        float want = ((g[0][k] + g[1][k]) + g[2][k]) * (1.0f / 3.0f);
        mean_ok &= ps.grads[k] == want;
    }
    EXPECT(mean_ok, "the gradients are ((g0 + g1) + g2) * (1/3), bit for bit");
    /* an update: lane 0's statistics to every lane, each lane's count kept */
    lanes_enter(&L, 2);
    lanes_sync_buffers(&L, &ps);
    EXPECT(rm->t.data[0] == 10.0f && nbt->ival == 3, "at the update the current lane (2) holds lane 0's statistics, its own count (%g, %lld)",
           (double)rm->t.data[0], (long long)nbt->ival);
    lanes_enter(&L, 1);
    EXPECT(rm->t.data[0] == 10.0f && rm->t.data[1] == 2.0f && nbt->ival == 2, "lane 1 too (%g, %g, %lld)", (double)rm->t.data[0],
           (double)rm->t.data[1], (long long)nbt->ival);
    lanes_free(&L);
    /* one lane: nothing is kept or changed */
    Lanes one;
    lanes_init(&one, 1);
    lanes_add_set(&one, &ps);
    set_grads(&ps, 5.0f);
    float before[5];
    memcpy(before, ps.grads, sizeof before);
    lanes_grad_add(&one, &ps, 0);
    lanes_grad_finish(&one, &ps);
    lanes_sync_buffers(&one, &ps);
    EXPECT(!memcmp(before, ps.grads, sizeof before) && one.n_sets == 0, "one lane: the gradients untouched, no set kept");
    lanes_free(&one);
    paramset_free(&ps);
    return test_end();
}
