/* device.h: where tensors live and where their kernels run.
 *
 * Three devices:
 *  - DEVICE_CPU: host memory from mempool.h, the CPU kernels. The default, unchanged.
 *  - DEVICE_CUDA: GPU memory from a caching pool (devpool.h) over cudaMalloc, the `_cuda` twins
 *    of the kernels (src/ops/cuda). Only in a `make CUDA=1` build, and only with a GPU.
 *  - DEVICE_HOSTDEV, the host-memory "device": the CUDA path's dispatch, pool and copy code with
 *    the CPU kernels, so that `make test` exercises it on a machine without a GPU. Its memory is
 *    a separate reservation behind the same caching pool as CUDA's, and it is *guarded*: host code
 *    can touch it only inside a kernel call or a copy (the pages are PROT_NONE otherwise). Host
 *    code that reads or writes a device tensor's data directly, which on a GPU would read garbage
 *    or crash, stops here with "hostdev: host code touched device memory" and a backtrace.
 *    ATTNGAN_HOSTDEV_GUARD=0 turns the guard off (faster, for benchmarks of the dispatch).
 *
 * A tensor records its device (Tensor.device); a tape allocates on its device (tape_init takes
 * the current one); a parameter set moves with paramset_to_device. The process picks its device
 * once: `--device cpu|cuda|hostdev` or ATTNGAN_DEVICE (device_init).
 *
 * Kernels are called through KERNEL(dev, name, args...): the CPU kernel `name` on the CPU, the
 * same kernel inside the guard on the host device, `name_cuda` on CUDA. On the host device every
 * float or int64 pointer argument must be NULL or device memory (checked: a host array given to a
 * device kernel stops with the kernel's and the argument's names). A kernel with no CUDA twin does
 * not link in a CUDA build: no op falls back to the CPU silently. Each argument is evaluated once.
 */
#ifndef ATTNGAN_DEVICE_H
#define ATTNGAN_DEVICE_H

#include "devpool.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { DEVICE_CPU = 0, DEVICE_HOSTDEV = 1, DEVICE_CUDA = 2 } DeviceKind;

/* "cpu", "hostdev", "cuda" */
const char *device_name(int dev);
/* Parses a device name; 0 on success, -1 for an unknown name. */
int device_parse(const char *s, DeviceKind *out);
/* 1 when `dev` can be used here, else 0 with the reason (static text) in *why. */
int device_available(DeviceKind dev, const char **why);
/* 1 in a `make CUDA=1` build. */
int device_cuda_built(void);
/* Chooses the process's device: `flag` (a --device value) if not NULL or empty, else
 * ATTNGAN_DEVICE, else cpu, and makes it current. -1 (err_set, naming the flag or the variable,
 * the value and the reason) when it is unknown or unusable here. */
int device_init(const char *flag, DeviceKind *out);
DeviceKind device_current(void);
void device_set_current(DeviceKind dev);

/* Memory of `dev` (DEVICE_CPU: mempool.h). device_alloc never returns NULL (FAIL). */
void *device_alloc(int dev, size_t bytes);
void device_free(int dev, void *p);
void device_upload(int dev, void *dst, const void *src, size_t bytes);   /* host -> dev, synchronous */
void device_download(int dev, void *dst, const void *src, size_t bytes); /* dev -> host, synchronous */
void device_copy(int dev, void *dst, const void *src, size_t bytes);     /* dev -> dev */
void device_memset0(int dev, void *dst, size_t bytes);
/* bytes from src on device sd to dst on device dd: a copy, an upload or a download (FAILs between
 * two devices that are not the CPU) */
void device_transfer(int dd, void *dst, int sd, const void *src, size_t bytes);
/* A block of `bytes` on device `from` moved to device `to`: a new block there (on the CPU from
 * xcalloc), the contents transferred, the old block freed (on the CPU with free). NULL stays NULL. */
void *device_move(void *p, size_t bytes, int from, int to);
void device_sync(int dev);
/* The caching pool's counters (zeros for the CPU: see mempool_stats). */
DevPoolStats device_pool_stats(int dev);
void device_pool_reset_peak(int dev);

/* ---- the host device's guard (no-ops when the guard is off) */
void hostdev_enter(void);                  /* device memory readable and writable (nests) */
void hostdev_leave(void);
/* 1 when p is NULL or inside the host device's reservation */
int hostdev_owns(const void *p);
/* FAILs unless p is NULL or device memory of dev (only checked on the host device); arg: which
 * argument of the kernel (from 1), for the message */
void device_check_arg(int dev, const void *p, const char *kernel, int arg);
/* FAILs: a kernel without a CUDA twin in a build without CUDA */
void device_no_cuda(const char *kernel);

/* ---- KERNEL(dev, name, args...): see the head of this file. Each argument is evaluated once, into a
 * local (__auto_type, a GCC and Clang keyword), before the checks and the call. */
#define DEV_NARGS_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17, _18, _19, _20, N, ...) N
#define DEV_NARGS(...) DEV_NARGS_(__VA_ARGS__, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)
#define DEV_CAT_(a, b) a##b
#define DEV_CAT(a, b) DEV_CAT_(a, b)
/* DEV_BIND_n: `__auto_type kaI_ = (xI);` for each argument; DEV_USE_n: `ka1_, ..., kan_`; DEV_CHK_n: the checks */
#define DEV_BIND_1(x) __auto_type ka1_ = (x);
#define DEV_BIND_2(x1, x) DEV_BIND_1(x1) __auto_type ka2_ = (x);
#define DEV_BIND_3(x1, x2, x) DEV_BIND_2(x1, x2) __auto_type ka3_ = (x);
#define DEV_BIND_4(x1, x2, x3, x) DEV_BIND_3(x1, x2, x3) __auto_type ka4_ = (x);
#define DEV_BIND_5(x1, x2, x3, x4, x) DEV_BIND_4(x1, x2, x3, x4) __auto_type ka5_ = (x);
#define DEV_BIND_6(x1, x2, x3, x4, x5, x) DEV_BIND_5(x1, x2, x3, x4, x5) __auto_type ka6_ = (x);
#define DEV_BIND_7(x1, x2, x3, x4, x5, x6, x) DEV_BIND_6(x1, x2, x3, x4, x5, x6) __auto_type ka7_ = (x);
#define DEV_BIND_8(x1, x2, x3, x4, x5, x6, x7, x) DEV_BIND_7(x1, x2, x3, x4, x5, x6, x7) __auto_type ka8_ = (x);
#define DEV_BIND_9(x1, x2, x3, x4, x5, x6, x7, x8, x) DEV_BIND_8(x1, x2, x3, x4, x5, x6, x7, x8) __auto_type ka9_ = (x);
#define DEV_BIND_10(x1, x2, x3, x4, x5, x6, x7, x8, x9, x) DEV_BIND_9(x1, x2, x3, x4, x5, x6, x7, x8, x9) __auto_type ka10_ = (x);
#define DEV_BIND_11(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x) DEV_BIND_10(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10) __auto_type ka11_ = (x);
#define DEV_BIND_12(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x) DEV_BIND_11(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11) __auto_type ka12_ = (x);
#define DEV_BIND_13(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x) DEV_BIND_12(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12) __auto_type ka13_ = (x);
#define DEV_BIND_14(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x) DEV_BIND_13(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13) __auto_type ka14_ = (x);
#define DEV_BIND_15(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x) DEV_BIND_14(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14) __auto_type ka15_ = (x);
#define DEV_BIND_16(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15, x) DEV_BIND_15(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15) __auto_type ka16_ = (x);
#define DEV_BIND_17(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15, x16, x) DEV_BIND_16(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15, x16) __auto_type ka17_ = (x);
#define DEV_BIND_18(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15, x16, x17, x) DEV_BIND_17(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15, x16, x17) __auto_type ka18_ = (x);
#define DEV_BIND_19(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15, x16, x17, x18, x) DEV_BIND_18(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15, x16, x17, x18) __auto_type ka19_ = (x);
#define DEV_BIND_20(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15, x16, x17, x18, x19, x) DEV_BIND_19(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15, x16, x17, x18, x19) __auto_type ka20_ = (x);
#define DEV_USE_1 ka1_
#define DEV_USE_2 ka1_, ka2_
#define DEV_USE_3 ka1_, ka2_, ka3_
#define DEV_USE_4 ka1_, ka2_, ka3_, ka4_
#define DEV_USE_5 ka1_, ka2_, ka3_, ka4_, ka5_
#define DEV_USE_6 ka1_, ka2_, ka3_, ka4_, ka5_, ka6_
#define DEV_USE_7 ka1_, ka2_, ka3_, ka4_, ka5_, ka6_, ka7_
#define DEV_USE_8 ka1_, ka2_, ka3_, ka4_, ka5_, ka6_, ka7_, ka8_
#define DEV_USE_9 ka1_, ka2_, ka3_, ka4_, ka5_, ka6_, ka7_, ka8_, ka9_
#define DEV_USE_10 ka1_, ka2_, ka3_, ka4_, ka5_, ka6_, ka7_, ka8_, ka9_, ka10_
#define DEV_USE_11 ka1_, ka2_, ka3_, ka4_, ka5_, ka6_, ka7_, ka8_, ka9_, ka10_, ka11_
#define DEV_USE_12 ka1_, ka2_, ka3_, ka4_, ka5_, ka6_, ka7_, ka8_, ka9_, ka10_, ka11_, ka12_
#define DEV_USE_13 ka1_, ka2_, ka3_, ka4_, ka5_, ka6_, ka7_, ka8_, ka9_, ka10_, ka11_, ka12_, ka13_
#define DEV_USE_14 ka1_, ka2_, ka3_, ka4_, ka5_, ka6_, ka7_, ka8_, ka9_, ka10_, ka11_, ka12_, ka13_, ka14_
#define DEV_USE_15 ka1_, ka2_, ka3_, ka4_, ka5_, ka6_, ka7_, ka8_, ka9_, ka10_, ka11_, ka12_, ka13_, ka14_, ka15_
#define DEV_USE_16 ka1_, ka2_, ka3_, ka4_, ka5_, ka6_, ka7_, ka8_, ka9_, ka10_, ka11_, ka12_, ka13_, ka14_, ka15_, ka16_
#define DEV_USE_17 ka1_, ka2_, ka3_, ka4_, ka5_, ka6_, ka7_, ka8_, ka9_, ka10_, ka11_, ka12_, ka13_, ka14_, ka15_, ka16_, ka17_
#define DEV_USE_18 ka1_, ka2_, ka3_, ka4_, ka5_, ka6_, ka7_, ka8_, ka9_, ka10_, ka11_, ka12_, ka13_, ka14_, ka15_, ka16_, ka17_, ka18_
#define DEV_USE_19 ka1_, ka2_, ka3_, ka4_, ka5_, ka6_, ka7_, ka8_, ka9_, ka10_, ka11_, ka12_, ka13_, ka14_, ka15_, ka16_, ka17_, ka18_, ka19_
#define DEV_USE_20 ka1_, ka2_, ka3_, ka4_, ka5_, ka6_, ka7_, ka8_, ka9_, ka10_, ka11_, ka12_, ka13_, ka14_, ka15_, ka16_, ka17_, ka18_, ka19_, ka20_
#define DEV_CHK_1(d, k) DEV_CHECK_ONE(d, k, ka1_, 1)
#define DEV_CHK_2(d, k) DEV_CHK_1(d, k); DEV_CHECK_ONE(d, k, ka2_, 2)
#define DEV_CHK_3(d, k) DEV_CHK_2(d, k); DEV_CHECK_ONE(d, k, ka3_, 3)
#define DEV_CHK_4(d, k) DEV_CHK_3(d, k); DEV_CHECK_ONE(d, k, ka4_, 4)
#define DEV_CHK_5(d, k) DEV_CHK_4(d, k); DEV_CHECK_ONE(d, k, ka5_, 5)
#define DEV_CHK_6(d, k) DEV_CHK_5(d, k); DEV_CHECK_ONE(d, k, ka6_, 6)
#define DEV_CHK_7(d, k) DEV_CHK_6(d, k); DEV_CHECK_ONE(d, k, ka7_, 7)
#define DEV_CHK_8(d, k) DEV_CHK_7(d, k); DEV_CHECK_ONE(d, k, ka8_, 8)
#define DEV_CHK_9(d, k) DEV_CHK_8(d, k); DEV_CHECK_ONE(d, k, ka9_, 9)
#define DEV_CHK_10(d, k) DEV_CHK_9(d, k); DEV_CHECK_ONE(d, k, ka10_, 10)
#define DEV_CHK_11(d, k) DEV_CHK_10(d, k); DEV_CHECK_ONE(d, k, ka11_, 11)
#define DEV_CHK_12(d, k) DEV_CHK_11(d, k); DEV_CHECK_ONE(d, k, ka12_, 12)
#define DEV_CHK_13(d, k) DEV_CHK_12(d, k); DEV_CHECK_ONE(d, k, ka13_, 13)
#define DEV_CHK_14(d, k) DEV_CHK_13(d, k); DEV_CHECK_ONE(d, k, ka14_, 14)
#define DEV_CHK_15(d, k) DEV_CHK_14(d, k); DEV_CHECK_ONE(d, k, ka15_, 15)
#define DEV_CHK_16(d, k) DEV_CHK_15(d, k); DEV_CHECK_ONE(d, k, ka16_, 16)
#define DEV_CHK_17(d, k) DEV_CHK_16(d, k); DEV_CHECK_ONE(d, k, ka17_, 17)
#define DEV_CHK_18(d, k) DEV_CHK_17(d, k); DEV_CHECK_ONE(d, k, ka18_, 18)
#define DEV_CHK_19(d, k) DEV_CHK_18(d, k); DEV_CHECK_ONE(d, k, ka19_, 19)
#define DEV_CHK_20(d, k) DEV_CHK_19(d, k); DEV_CHECK_ONE(d, k, ka20_, 20)
/* float, double, int64 and byte pointers are tensor data or scratch: checked; anything else (sizes,
 * int arrays of lengths, host structs) is not */
#define DEV_CHECK_ONE(d, k, x, i)                                                                           \
    device_check_arg((d), _Generic((x), float *: (x), const float *: (x), double *: (x), const double *: (x),        \
                                   int64_t *: (x), const int64_t *: (x), uint8_t *: (x), const uint8_t *: (x),       \
                                   default: (const void *)0), k, i)

#ifdef ATTNGAN_CUDA
#define DEV_CUDA_CALL(name, ...) name##_cuda(__VA_ARGS__)
#else
#define DEV_CUDA_CALL(name, ...) device_no_cuda(#name)
#endif
#define DEV_CALL(f, ...) f(__VA_ARGS__)

#define KERNEL(dev, name, ...)                                                                             \
    do {                                                                                                   \
        int kernel_dev_ = (dev);                                                                           \
        DEV_CAT(DEV_BIND_, DEV_NARGS(__VA_ARGS__))(__VA_ARGS__)                                            \
        if (kernel_dev_ == DEVICE_CPU) {                                                                   \
            DEV_CALL(name, DEV_CAT(DEV_USE_, DEV_NARGS(__VA_ARGS__)));                                     \
        } else if (kernel_dev_ == DEVICE_HOSTDEV) {                                                        \
            DEV_CAT(DEV_CHK_, DEV_NARGS(__VA_ARGS__))(kernel_dev_, #name);                                 \
            hostdev_enter();                                                                               \
            DEV_CALL(name, DEV_CAT(DEV_USE_, DEV_NARGS(__VA_ARGS__)));                                     \
            hostdev_leave();                                                                               \
        } else {                                                                                           \
            DEV_CUDA_CALL(name, DEV_CAT(DEV_USE_, DEV_NARGS(__VA_ARGS__)));                                \
        }                                                                                                  \
    } while (0)

#ifdef __cplusplus
}
#endif

#endif
