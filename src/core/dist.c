/* dist.c: the ranks of a data-parallel run over MPI; see dist.h. */
#include "dist.h"
#include "device.h"
#include "env.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef ATTNGAN_MPI
#include <mpi.h>
#endif
/* NCCL between GPUs: a CUDA build with MPI (make CUDA=1 MPI=1; NCCL from CUDA_HOME) */
#if defined(ATTNGAN_MPI) && defined(ATTNGAN_CUDA)
#define DIST_NCCL 1
#include <nccl.h>
#include "../ops/cuda/cuda_rt.h"
#endif

static int g_rank = 0, g_size = 1, g_inited = 0;
#ifdef ATTNGAN_MPI
static int g_mpi = 0; /* MPI_Init was called */
#endif
static int64_t g_grad_bytes = 0, g_grad_calls = 0;
#ifdef DIST_NCCL
static ncclComm_t g_nccl;
static int g_nccl_state = 0; /* 0 not tried, 1 ready, -1 not used (nccl_ready) */
#endif

int dist_has_mpi(void) {
#ifdef ATTNGAN_MPI
    return 1;
#else
    return 0;
#endif
}

/* The world size an MPI launcher announced in the environment (Open MPI, PMI/Slurm, PMIx); 0 when
 * no launcher started this process. */
static int launcher_size(void) {
    const char *keys[3] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(keys[i]);
        if (v && *v) return atoi(v) > 0 ? atoi(v) : 1;
    }
    return getenv("PMIX_RANK") ? 1 : 0;
}

int dist_init(void) {
    if (g_inited) return 0;
    g_inited = 1;
    int announced = launcher_size();
#ifdef ATTNGAN_MPI
    if (!announced) return 0;
    int provided = 0;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) return err_set("MPI_Init_thread failed");
    g_mpi = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    if (g_rank != 0) { /* rank 0 alone talks; the others' errors still reach stderr */
        fflush(stdout);
        if (!freopen("/dev/null", "w", stdout)) return err_set("rank %d: cannot redirect stdout to /dev/null", g_rank);
    }
    return 0;
#else
    if (announced > 1)
        return err_set("an MPI launcher started %d ranks, but this attngan was built without MPI: each rank would train alone "
                       "and write the same files. Install Open MPI (apt-get install libopenmpi-dev openmpi-bin) and rebuild "
                       "(make MPI=1), or run a single process without mpirun", announced);
    return 0;
#endif
}

int dist_finalize(int rc) {
#ifdef DIST_NCCL
    if (g_nccl_state == 1 && !rc) ncclCommDestroy(g_nccl);
    g_nccl_state = 0;
#endif
#ifdef ATTNGAN_MPI
    if (g_mpi) {
        fflush(stdout);
        fflush(stderr);
        if (rc) MPI_Abort(MPI_COMM_WORLD, rc); /* the others may be waiting in a collective */
        MPI_Finalize();
        g_mpi = 0;
    }
#endif
    return rc;
}

int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }
int64_t dist_grad_bytes(void) { return g_grad_bytes; }
int64_t dist_grad_calls(void) { return g_grad_calls; }

uint64_t dist_rank_seed(uint64_t seed, int rank) {
    if (rank == 0) return seed;
    /* splitmix64 of (seed, rank): far from every other rank's and from seed's own neighbours */
    uint64_t x = seed ^ ((uint64_t)rank * 0x9E3779B97F4A7C15ULL) ^ 0xd157ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

void dist_log_step_traffic(void) {
    static int done = 0;
    if (done || g_size == 1) return;
    done = 1;
    printf("data-parallel: one step allreduces %.2f MB of fp32 gradients per rank in %lld allreduce(s) (a ring sends "
           "2(N-1)/N of that per rank: %.2f MB at N = %d)\n", (double)g_grad_bytes / 1e6, (long long)g_grad_calls,
           2.0 * (g_size - 1) / g_size * (double)g_grad_bytes / 1e6, g_size);
}

int dist_check_each_step(void) {
    static _Atomic int cache = ENV_SWITCH_INIT;
    static const char *const v[2] = {"0", "1"};
    return g_size > 1 && env_switch(&cache, "ATTNGAN_DIST_CHECK", v, 2, 0) == 1;
}

#ifdef DIST_NCCL
/* The ranks' NCCL communicator, made on the first allreduce of GPU memory (the CUDA device is open
 * by then): rank 0's unique id reaches the others through MPI. ATTNGAN_DIST_BACKEND=mpi keeps
 * GPU gradients on MPI through host memory instead (e.g. two ranks sharing one GPU, which NCCL
 * refuses). */
static int nccl_ready(void) {
    if (g_nccl_state) return g_nccl_state == 1;
    static _Atomic int cache = ENV_SWITCH_INIT;
    static const char *const v[2] = {"nccl", "mpi"};
    if (env_switch(&cache, "ATTNGAN_DIST_BACKEND", v, 2, 0) == 1) return (g_nccl_state = -1), 0;
    ncclUniqueId id;
    if (g_rank == 0 && ncclGetUniqueId(&id) != ncclSuccess) FAIL("NCCL: ncclGetUniqueId failed");
    MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    ncclResult_t r = ncclCommInitRank(&g_nccl, g_size, id, g_rank);
    if (r != ncclSuccess)
        FAIL("NCCL: ncclCommInitRank (rank %d of %d) failed: %s. Each rank needs a GPU of its own (they are given by local "
             "rank, or set CUDA_VISIBLE_DEVICES per rank); ATTNGAN_DIST_BACKEND=mpi exchanges through host memory instead",
             g_rank, g_size, ncclGetErrorString(r));
    g_nccl_state = 1;
    return 1;
}
#endif

#ifdef ATTNGAN_MPI
/* The ranks' mean of n floats on device dev, in place: NCCL's average on a GPU; elsewhere MPI's
 * sum (through host memory off the CPU) times 1/size. */
static void allreduce_mean(float *x, int64_t n, int dev) {
    g_grad_bytes += n * (int64_t)sizeof(float);
    g_grad_calls++;
#ifdef DIST_NCCL
    if (dev == DEVICE_CUDA && nccl_ready()) {
        ncclResult_t r = ncclAllReduce(x, x, (size_t)n, ncclFloat, ncclAvg, g_nccl, (cudaStream_t)cu_stream());
        if (r != ncclSuccess) FAIL("NCCL: ncclAllReduce of %lld floats failed: %s", (long long)n, ncclGetErrorString(r));
        return;
    }
#endif
    float *h = x;
    if (dev != DEVICE_CPU) {
        h = xmalloc((size_t)n * sizeof(float));
        device_download(dev, h, x, (size_t)n * sizeof(float));
    }
    for (int64_t o = 0; o < n;) { /* MPI counts are ints */
        int c = n - o > (1 << 30) ? (1 << 30) : (int)(n - o);
        MPI_Allreduce(MPI_IN_PLACE, h + o, c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        o += c;
    }
    float inv = 1.0f / (float)g_size;
    for (int64_t k = 0; k < n; k++) h[k] *= inv;
    if (dev != DEVICE_CPU) {
        device_upload(dev, x, h, (size_t)n * sizeof(float));
        free(h);
    }
}
#endif

void dist_sync_grads(ParamSet *ps) {
    if (g_size == 1 || ps->grads_synced || !ps->grads) return;
#ifdef ATTNGAN_MPI
    /* one bucket per run of adjacent weights that take gradients (the set's gradients are one
     * block in entry order): a whole network is one allreduce; frozen weights are skipped, as the
     * optimizer skips them */
    int64_t lo = -1, hi = -1;
    for (int i = 0; i <= ps->n; i++) {
        const ParamEntry *e = i < ps->n ? ps->entries[i] : NULL;
        if (e && e->kind != PARAM_WEIGHT) continue; /* buffers live elsewhere: they do not split a run */
        int take = e && e->t.requires_grad;
        if (take && lo >= 0 && e->offset == hi) { hi += e->t.n; continue; }
        if (lo >= 0) allreduce_mean(ps->grads + lo, hi - lo, ps->device);
        lo = hi = -1;
        if (take) lo = e->offset, hi = e->offset + e->t.n;
    }
#endif
    ps->grads_synced = 1;
}

void dist_sync_buffers(ParamSet *ps) {
    if (g_size == 1 || !ps->n_buffers) return;
#ifdef ATTNGAN_MPI
    size_t bytes = (size_t)ps->n_buffers * sizeof(float);
    float *h = ps->buffers;
    if (ps->device != DEVICE_CPU) {
        h = xmalloc(bytes);
        device_download(ps->device, h, ps->buffers, bytes);
    }
    dist_bcast(h, bytes);
    if (ps->device != DEVICE_CPU) {
        device_upload(ps->device, ps->buffers, h, bytes);
        free(h);
    }
#endif
}

/* FNV-1a over bytes, continued from h */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

int dist_check_same(const ParamSet *ps, const char *when) {
    if (g_size == 1) return 0;
    size_t nv = (size_t)ps->n_values * sizeof(float);
    float *v = ps->values;
    if (ps->device != DEVICE_CPU) {
        v = xmalloc(nv ? nv : 1);
        device_download(ps->device, v, ps->values, nv);
    }
    uint64_t h = fnv(0xcbf29ce484222325ULL, v, nv);
    if (ps->device != DEVICE_CPU) free(v);
    uint64_t *all = xcalloc((size_t)g_size, sizeof(uint64_t));
#ifdef ATTNGAN_MPI
    MPI_Allgather(&h, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
#else
    all[0] = h; /* (one rank: returned above) */
#endif
    int bad = -1;
    for (int r = 1; r < g_size && bad < 0; r++)
        if (all[r] != all[0]) bad = r;
    free(all);
    if (bad >= 0) return err_set("%s: the weights of %s differ between rank 0 and rank %d", when, ps->name, bad);
    return 0;
}

void dist_max_int(int *x, int n) {
#ifdef ATTNGAN_MPI
    if (g_size > 1) MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
#endif
}

void dist_sum_double(double *x, int n) {
#ifdef ATTNGAN_MPI
    if (g_size > 1) MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
#endif
}

void dist_bcast(void *buf, size_t bytes) {
#ifdef ATTNGAN_MPI
    if (g_size == 1) return;
    for (size_t o = 0; o < bytes;) {
        int c = bytes - o > (1u << 30) ? (1 << 30) : (int)(bytes - o);
        MPI_Bcast((char *)buf + o, c, MPI_BYTE, 0, MPI_COMM_WORLD);
        o += (size_t)c;
    }
#endif
}

void dist_gather(const void *mine, void *all, size_t bytes) {
    if (g_size == 1) {
        if (all) memcpy(all, mine, bytes);
        return;
    }
#ifdef ATTNGAN_MPI
    MPI_Gather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
#endif
}

void dist_barrier(void) {
#ifdef ATTNGAN_MPI
    if (g_size > 1) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

int dist_agree(int rc) {
    int x = rc != 0;
    dist_max_int(&x, 1);
    return rc ? rc : x ? -1 : 0;
}
