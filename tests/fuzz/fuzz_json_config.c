/* fuzz_json_config: the JSON configs: a model directory's model.json (src/gen/gen.c, with the
 * training config inside it: src/nn/train_config.c), a run's config.json (the same reader) and
 * the model config of dumps and checkpoints (src/nn/config.c). The input is the JSON text, given
 * to each. gen_model_load reads it as <dir>/model.json in a directory without vocab.txt, so it
 * stops after the JSON, before any network is built. */
#include "fuzz.h"
#include "../../src/gen/gen.h"
#include "../../src/nn/config.h"
#include "../../src/nn/train_config.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *js = fuzz_cstr(data, size);
    ModelConfig mc;
    model_config_default(&mc);
    model_config_from_json(&mc, js);
    TrainConfig *tc = malloc(sizeof *tc);
    train_config_default(tc);
    if (train_config_from_json(tc, js) == 0) {
        char *out = train_config_to_json(tc);
        TrainConfig *back = malloc(sizeof *back);
        train_config_default(back);
        if (train_config_from_json(back, out) != 0 || train_config_diff(tc, back)) abort();
        free(back);
        free(out);
    }
    free(tc);
    free(js);
    fuzz_clear();
    fuzz_write("model/model.json", data, size);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/model", fuzz_tmpdir());
    GenModel *m = malloc(sizeof *m);
    if (gen_model_load(m, dir) == 0) abort(); /* no vocab.txt: it cannot succeed */
    free(m);
    return 0;
}
