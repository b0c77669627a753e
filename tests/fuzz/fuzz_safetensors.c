/* fuzz_safetensors: a safetensors file (src/io/safetensors.c), as `attngan` reads checkpoints and
 * downloaded models. The input is the whole file. On success every tensor must lie inside the
 * mapping, be found under its own name and convert to f32 (and to int64 for integer dtypes). */
#include "fuzz.h"
#include "../../src/io/safetensors.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("in.safetensors", data, size);
    SafeTensors st;
    if (st_open(&st, path) != 0) return 0;
    for (int i = 0; i < st.n; i++) {
        const StTensor *t = &st.tensors[i];
        size_t bytes = (size_t)t->numel * st_dtype_size(t->dtype);
        if (t->data < st.map || t->data + bytes > st.map + st.map_len) abort();   /* outside the file */
        if (st_find(&st, t->name) != t) abort();                                   /* a name twice */
        if (t->numel > (1 << 16)) continue;
        float *f = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *f);
        if (st_read_f32(&st, t->name, f, t->numel) != 0) abort();
        free(f);
        if (t->dtype == ST_I64 || t->dtype == ST_I32 || t->dtype == ST_U8 || t->dtype == ST_BOOL || t->dtype == ST_I8) {
            int64_t *v = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *v);
            if (st_read_i64(&st, t->name, v, t->numel) != 0) abort();
            free(v);
        }
    }
    for (int i = 0; i < st.n_meta; i++)
        if (st_meta(&st, st.meta_keys[i]) != st.meta_vals[i]) abort();            /* a metadata key twice */
    st_close(&st);
    return 0;
}
