/* fuzz_pth: a torch.save checkpoint (src/io/pth.c, src/io/pickle.c with PICKLE_TORCH), as
 * `attngan import` reads bird_AttnGAN2.pth. The input is the whole file, zip or legacy; it is
 * converted to safetensors and, when that succeeds, the result must open and validate. The same
 * bytes also go through the torch-mode pickle reader directly (the object pickle of a zip). */
#include "fuzz.h"
#include "../../src/io/pickle.h"
#include "../../src/io/pth.h"
#include "../../src/io/safetensors.h"

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    PickleValue *v = NULL;
    size_t used = 0;
    if (pickle_parse_ex(data, size, "fuzz.pkl", PICKLE_TORCH | PICKLE_PREFIX, &used, &v) == 0) pickle_free(v);
    const char *in = fuzz_write("in.pth", data, size);
    char out[4096];
    snprintf(out, sizeof out, "%s/out.safetensors", fuzz_tmpdir());
    if (pth_to_safetensors(in, out) == 0) {
        SafeTensors st;
        if (st_open(&st, out) != 0) abort(); /* what pth.c writes must read back */
        st_close(&st);
    }
    fuzz_clear();
    return 0;
}
