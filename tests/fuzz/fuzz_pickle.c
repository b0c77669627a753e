/* fuzz_pickle: a Python pickle (src/io/pickle.c), as the CUB loader reads filenames.pickle,
 * class_info.pickle and captions.pickle. The input is the whole file. On success the typed views
 * the loader uses (string and integer lists, also of the items of a list) must not crash. */
#include "fuzz.h"
#include "../../src/io/pickle.h"

#include <stdlib.h>

static void views(const PickleValue *v) {
    char **strs;
    int64_t *ints;
    size_t n;
    if (pickle_str_list(v, "fuzz", &strs, &n) == 0) pickle_free_str_list(strs, n);
    if (pickle_int_list(v, "fuzz", &ints, &n) == 0) free(ints);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    PickleValue *v = NULL;
    if (pickle_parse(data, size, "fuzz.pickle", &v) != 0) return 0;
    views(v);
    if (v->type == PK_LIST || v->type == PK_TUPLE || v->type == PK_DICT)
        for (size_t i = 0; i < v->n && i < 64; i++) views(v->items[i]);
    pickle_free(v);
    return 0;
}
