/* fuzz_keras: the Keras Inception-v3 stored as a TensorFlow.js layers model (src/nn/keras_inception.c),
 * which `attngan eval` and the pretraining read from EXTRA.INCEPTION_WEIGHTS or --inception: a
 * downloaded directory of model.json (topology and weightsManifest: names, shapes, dtypes,
 * quantisation, shard paths) and the weight shards it names. The input is a directory tree packed
 * as fuzz.h describes ("@@ model.json", "@@ weights.bin", ...), unpacked into a scratch directory
 * and loaded into one image encoder made at start. A failed load must leave the encoder as it was
 * (its torchvision convention, the first trunk weight unchanged and not marked loaded); a load that
 * succeeds must set the Keras convention and mark the weight loaded. */
#include "fuzz.h"
#include "../../src/nn/config.h"
#include "../../src/nn/keras_inception.h"

#include <stdlib.h>
#include <string.h>

static ImageEncoder g_ie;
static ParamEntry *g_first;
static float g_first_value;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    ModelConfig cfg;
    model_config_default(&cfg);
    cfg.embedding_dim = 16;
    image_encoder_init(&g_ie, &cfg);
    g_first = paramset_find(&g_ie.ps, "Conv2d_1a_3x3.conv.weight");
    if (!g_first) abort();
    g_first_value = g_first->t.data[0];
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *root = fuzz_unpack_tree(data, size);
    if (keras_inception_load(&g_ie, root) != 0) {
        if (g_ie.convention != INCEPTION_TORCHVISION || g_first->loaded || g_first->t.data[0] != g_first_value) abort();
        return 0;
    }
    /* a whole trunk loaded: possible only from a complete model; put the encoder back */
    if (g_ie.convention != INCEPTION_KERAS || !g_first->loaded) abort();
    image_encoder_free(&g_ie);
    LLVMFuzzerInitialize(NULL, NULL);
    return 0;
}
