/* device.c: devices, their memory and copies, and the host device's guard; see device.h. */
#include "device.h"
#include "error.h"
#include "mempool.h"

#ifdef ATTNGAN_CUDA
#include "../ops/cuda/cuda_rt.h"
#endif

#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static DeviceKind g_current = DEVICE_CPU;

const char *device_name(int dev) {
    switch (dev) {
    case DEVICE_CPU: return "cpu";
    case DEVICE_HOSTDEV: return "hostdev";
    case DEVICE_CUDA: return "cuda";
    default: return "?";
    }
}

int device_parse(const char *s, DeviceKind *out) {
    if (!s) return -1;
    if (!strcmp(s, "cpu")) *out = DEVICE_CPU;
    else if (!strcmp(s, "hostdev")) *out = DEVICE_HOSTDEV;
    else if (!strcmp(s, "cuda")) *out = DEVICE_CUDA;
    else return -1;
    return 0;
}

int device_cuda_built(void) {
#ifdef ATTNGAN_CUDA
    return 1;
#else
    return 0;
#endif
}

int device_available(DeviceKind dev, const char **why) {
    const char *w = "ready";
    int ok = 1;
    if (dev == DEVICE_CUDA) {
#ifdef ATTNGAN_CUDA
        ok = cu_available(&w);
#else
        ok = 0;
        w = "this build has no CUDA backend (build with `make CUDA=1`)";
#endif
    }
    if (why) *why = w;
    return ok;
}

int device_init(const char *flag, DeviceKind *out) {
    const char *src = "--device", *val = flag;
    if (!val || !*val) {
        src = "ATTNGAN_DEVICE";
        val = getenv("ATTNGAN_DEVICE");
    }
    DeviceKind d = DEVICE_CPU;
    if (val && *val) {
        if (device_parse(val, &d) < 0) return err_set("%s %s: unknown device (expected cpu, cuda or hostdev)", src, val);
        const char *why;
        if (!device_available(d, &why)) return err_set("%s %s: the device cannot be used here: %s", src, val, why);
    }
    g_current = d;
    if (out) *out = d;
    return 0;
}

DeviceKind device_current(void) { return g_current; }
void device_set_current(DeviceKind dev) { g_current = dev; }

/* ---------------------------------------------------------------- the host device */

static struct {
    pthread_mutex_t mu;
    unsigned char *base;
    size_t reserve, top;   /* bytes handed to the pool so far (bump) */
    int guard;             /* 1: PROT_NONE outside kernels and copies */
    int depth;             /* hostdev_enter nesting */
    DevPool pool;
    struct sigaction old_segv;
} H = {.mu = PTHREAD_MUTEX_INITIALIZER};
static pthread_once_t h_once = PTHREAD_ONCE_INIT;

/* The guard flips the protection of everything handed out so far: a cost per page table entry,
 * so the reservation is 2 MiB aligned and asks for transparent huge pages (one entry per 2 MiB),
 * and the flipped range ends on a 2 MiB boundary (whole huge pages are never split). */
#define HOSTDEV_HUGE ((size_t)2 << 20)
static void set_access(int rw) {
    if (!H.guard || !H.top) return;
    size_t len = (H.top + HOSTDEV_HUGE - 1) / HOSTDEV_HUGE * HOSTDEV_HUGE;
    CHECK(mprotect(H.base, len, rw ? PROT_READ | PROT_WRITE : PROT_NONE) == 0, "hostdev: mprotect failed");
}

static void segv_handler(int sig, siginfo_t *si, void *uctx) {
    const unsigned char *a = si->si_addr;
    if (H.guard && H.base && a >= H.base && a < H.base + H.reserve) {
        char msg[256];
        int n = snprintf(msg, sizeof msg,
                         "hostdev: host code touched device memory at %p (offset %zu of the host device's memory): "
                         "a device tensor's data was read or written outside a kernel or a copy\n",
                         (const void *)a, (size_t)(a - H.base));
        if (n > 0) (void)!write(2, msg, (size_t)n);
        void *bt[48];
        int nb = backtrace(bt, 48);
        backtrace_symbols_fd(bt, nb, 2);
        signal(SIGABRT, SIG_DFL);
        abort();
    }
    /* not ours: hand it to whoever handled it before (AddressSanitizer, or the default action) */
    if (H.old_segv.sa_flags & SA_SIGINFO) {
        H.old_segv.sa_sigaction(sig, si, uctx);
    } else if (H.old_segv.sa_handler == SIG_DFL || H.old_segv.sa_handler == SIG_IGN) {
        sigaction(SIGSEGV, &H.old_segv, NULL); /* the faulting instruction runs again and gets it */
    } else {
        H.old_segv.sa_handler(sig);
    }
}

static void *hostdev_raw_alloc(size_t bytes) {
    pthread_mutex_lock(&H.mu);
    if (H.top + bytes > H.reserve) {
        pthread_mutex_unlock(&H.mu);
        return NULL;
    }
    void *p = H.base + H.top;
    H.top += bytes;
    if (H.depth > 0) set_access(1); /* inside a kernel: the new block is open too */
    pthread_mutex_unlock(&H.mu);
    return p;
}

/* the address range is not reused (a bump allocator); its pages go back to the kernel */
static void hostdev_raw_free(void *p, size_t bytes) { (void)madvise(p, bytes, MADV_DONTNEED); }

static void hostdev_init(void) {
    const char *g = getenv("ATTNGAN_HOSTDEV_GUARD");
    CHECK(!g || !*g || !strcmp(g, "0") || !strcmp(g, "1"), "ATTNGAN_HOSTDEV_GUARD=%s: expected 0 or 1", g);
    H.guard = !(g && !strcmp(g, "0"));
    for (size_t r = (size_t)1 << 36; r >= ((size_t)1 << 30); r >>= 1) {
        void *m = mmap(NULL, r + HOSTDEV_HUGE, H.guard ? PROT_NONE : PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m != MAP_FAILED) {
            uintptr_t a = ((uintptr_t)m + HOSTDEV_HUGE - 1) & ~(uintptr_t)(HOSTDEV_HUGE - 1);
            H.base = (unsigned char *)a;
            H.reserve = r;
            (void)madvise(H.base, r, MADV_HUGEPAGE);
            break;
        }
    }
    CHECK(H.base != NULL, "hostdev: cannot reserve address space for the host device");
    H.pool.name = "hostdev";
    H.pool.raw_alloc = hostdev_raw_alloc;
    H.pool.raw_free = hostdev_raw_free;
    if (H.guard) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = segv_handler;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        CHECK(sigaction(SIGSEGV, &sa, &H.old_segv) == 0, "hostdev: cannot install the SIGSEGV handler");
    }
}

static void hostdev_ready(void) { pthread_once(&h_once, hostdev_init); }

void hostdev_enter(void) {
    hostdev_ready();
    pthread_mutex_lock(&H.mu);
    if (H.depth++ == 0) set_access(1);
    pthread_mutex_unlock(&H.mu);
}

void hostdev_leave(void) {
    pthread_mutex_lock(&H.mu);
    CHECK(H.depth > 0, "hostdev_leave without hostdev_enter");
    if (--H.depth == 0) set_access(0);
    pthread_mutex_unlock(&H.mu);
}

int hostdev_owns(const void *p) {
    if (!p) return 1;
    hostdev_ready();
    const unsigned char *a = p;
    return a >= H.base && a < H.base + H.top;
}

void device_check_arg(int dev, const void *p, const char *kernel, int arg) {
    if (dev != DEVICE_HOSTDEV || !p) return;
    CHECK(hostdev_owns(p), "%s: argument %d (%p) is host memory, but the kernel runs on the device %s: a tensor "
          "or an array was not moved to the device", kernel, arg, p, device_name(dev));
}

void device_no_cuda(const char *kernel) {
    FAIL("%s: a CUDA tensor in a build without the CUDA backend (build with `make CUDA=1`)", kernel);
}

/* ---------------------------------------------------------------- memory and copies */

static void bad_device(int dev) { FAIL("device %d: not a device", dev); }

void *device_alloc(int dev, size_t bytes) {
    switch (dev) {
    case DEVICE_CPU: return mempool_alloc(bytes);
    case DEVICE_HOSTDEV: hostdev_ready(); return devpool_alloc(&H.pool, bytes);
#ifdef ATTNGAN_CUDA
    case DEVICE_CUDA: return cu_alloc(bytes);
#endif
    default: bad_device(dev);
    }
    return NULL;
}

void device_free(int dev, void *p) {
    if (!p) return;
    switch (dev) {
    case DEVICE_CPU: mempool_free(p); return;
    case DEVICE_HOSTDEV: devpool_free(&H.pool, p); return;
#ifdef ATTNGAN_CUDA
    case DEVICE_CUDA: cu_free(p); return;
#endif
    default: bad_device(dev);
    }
}

void device_upload(int dev, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    switch (dev) {
    case DEVICE_CPU: memmove(dst, src, bytes); return;
    case DEVICE_HOSTDEV:
        device_check_arg(dev, dst, "device_upload", 1);
        hostdev_enter();
        memcpy(dst, src, bytes);
        hostdev_leave();
        return;
#ifdef ATTNGAN_CUDA
    case DEVICE_CUDA: cu_upload(dst, src, bytes); return;
#endif
    default: bad_device(dev);
    }
}

void device_download(int dev, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    switch (dev) {
    case DEVICE_CPU: memmove(dst, src, bytes); return;
    case DEVICE_HOSTDEV:
        device_check_arg(dev, src, "device_download", 2);
        hostdev_enter();
        memcpy(dst, src, bytes);
        hostdev_leave();
        return;
#ifdef ATTNGAN_CUDA
    case DEVICE_CUDA: cu_download(dst, src, bytes); return;
#endif
    default: bad_device(dev);
    }
}

void device_copy(int dev, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    switch (dev) {
    case DEVICE_CPU: memmove(dst, src, bytes); return;
    case DEVICE_HOSTDEV:
        device_check_arg(dev, dst, "device_copy", 1);
        device_check_arg(dev, src, "device_copy", 2);
        hostdev_enter();
        memmove(dst, src, bytes);
        hostdev_leave();
        return;
#ifdef ATTNGAN_CUDA
    case DEVICE_CUDA: cu_copy(dst, src, bytes); return;
#endif
    default: bad_device(dev);
    }
}

void device_memset0(int dev, void *dst, size_t bytes) {
    if (!bytes) return;
    switch (dev) {
    case DEVICE_CPU: memset(dst, 0, bytes); return;
    case DEVICE_HOSTDEV:
        device_check_arg(dev, dst, "device_memset0", 1);
        hostdev_enter();
        memset(dst, 0, bytes);
        hostdev_leave();
        return;
#ifdef ATTNGAN_CUDA
    case DEVICE_CUDA: cu_memset0(dst, bytes); return;
#endif
    default: bad_device(dev);
    }
}

void device_transfer(int dd, void *dst, int sd, const void *src, size_t bytes) {
    if (dd == sd) device_copy(dd, dst, src, bytes);
    else if (sd == DEVICE_CPU) device_upload(dd, dst, src, bytes);
    else if (dd == DEVICE_CPU) device_download(sd, dst, src, bytes);
    else FAIL("from device %s to %s directly: go through the CPU", device_name(sd), device_name(dd));
}

void *device_move(void *p, size_t bytes, int from, int to) {
    if (!p) return NULL;
    void *q = to == DEVICE_CPU ? xcalloc(bytes ? bytes : 1, 1) : device_alloc(to, bytes ? bytes : 1);
    device_transfer(to, q, from, p, bytes);
    if (from == DEVICE_CPU) free(p);
    else device_free(from, p);
    return q;
}

void device_sync(int dev) {
#ifdef ATTNGAN_CUDA
    if (dev == DEVICE_CUDA) cu_sync();
#else
    (void)dev;
#endif
}

DevPoolStats device_pool_stats(int dev) {
    DevPoolStats z;
    memset(&z, 0, sizeof z);
    if (dev == DEVICE_HOSTDEV) {
        hostdev_ready();
        return devpool_stats(&H.pool);
    }
#ifdef ATTNGAN_CUDA
    if (dev == DEVICE_CUDA) return cu_pool_stats();
#endif
    return z;
}

void device_pool_reset_peak(int dev) {
    if (dev == DEVICE_HOSTDEV) {
        hostdev_ready();
        devpool_reset_peak(&H.pool);
    }
#ifdef ATTNGAN_CUDA
    if (dev == DEVICE_CUDA) cu_pool_reset_peak();
#endif
}
