/* safetensors.h: read (mmap) and write the safetensors format.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON mapping names to
 * {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data area) plus an
 * optional "__metadata__" object of strings, then the data. The reader validates everything
 * before handing out a tensor: sizes, dtypes, shapes, offsets in range and not overlapping.
 * Every error names the file and the tensor or field at fault.
 */
#ifndef ATTNGAN_SAFETENSORS_H
#define ATTNGAN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_U8, ST_BOOL, ST_I8, ST_NDTYPES } StDtype;

#define ST_MAX_DIMS 8

typedef struct StTensor {
    char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end;      /* offsets in the data area */
    const unsigned char *data; /* into the mapping; may be unaligned */
} StTensor;

typedef struct SafeTensors {
    char *path;
    unsigned char *map;
    size_t map_len;
    StTensor *tensors;
    int n;
    char **meta_keys, **meta_vals;
    int n_meta;
} SafeTensors;

const char *st_dtype_name(StDtype d);
size_t st_dtype_size(StDtype d);

/* Opens and validates; returns 0, or -1 with err_msg() set (the file is closed). */
int st_open(SafeTensors *st, const char *path);
void st_close(SafeTensors *st);
const StTensor *st_find(const SafeTensors *st, const char *name);
/* Metadata value for key or NULL. */
const char *st_meta(const SafeTensors *st, const char *key);

/* Converts a tensor to f32 (F32, F16, BF16, F64, I64, I32, U8, BOOL) into dst of n elements;
 * -1 if absent or n differs from its element count. */
int st_read_f32(const SafeTensors *st, const char *name, float *dst, int64_t n);
/* Integer read (I64, I32, U8, BOOL). */
int st_read_i64(const SafeTensors *st, const char *name, int64_t *dst, int64_t n);

/* Writer: collects tensors (copies their bytes) and writes atomically (temp file, fsync, rename). */
typedef struct StWriter StWriter;
StWriter *st_writer_new(void);
void st_writer_add(StWriter *w, const char *name, StDtype dtype, int ndim, const int64_t *shape, const void *data);
void st_writer_add_f32(StWriter *w, const char *name, int ndim, const int *shape, const float *data);
void st_writer_meta(StWriter *w, const char *key, const char *value);
int st_writer_write(StWriter *w, const char *path);   /* 0 or -1 with err_msg() */
void st_writer_free(StWriter *w);

/* fp16 / bf16 conversions (round to nearest even on the way down). */
float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t h);
uint16_t st_f32_to_f16(float f);
uint16_t st_f32_to_bf16(float f);

#endif
