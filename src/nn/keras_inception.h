/* keras_inception.h: loads the pretrained Keras InceptionV3 stored as a TensorFlow.js layers
 * model (model.json: topology + weightsManifest; weight shards such as weights.bin, uint8 or
 * uint16 quantised per tensor, value = min + scale * q) into the torchvision-named trunk of an
 * ImageEncoder, and switches the encoder to the Keras convention (INCEPTION_KERAS).
 *
 * Mapping by order: Keras conv2d_N / batch_normalization_N (N = 1..94) are the N-th
 * torchvision BasicConv2d in module order (Conv2d_1a_3x3, ..., Mixed_7c.branch_pool). Kernels
 * (KH, KW, C, O) become (O, C, KH, KW); BN weight = gamma (1 when the layer has no scale),
 * bias = beta (0 when it has no center), running_mean / running_var = moving_mean /
 * moving_variance, num_batches_tracked = 0. The heads (emb_features, emb_cnn_code) and the
 * Keras dense head are left alone. See ../shared/models/README.md for the model. */
#ifndef ATTNGAN_KERAS_INCEPTION_H
#define ATTNGAN_KERAS_INCEPTION_H

#include "image_encoder.h"

/* Reads <model_dir>/model.json and the shards its manifest names, validates the manifest
 * (shapes, dtypes, quantisation fields, byte sizes), the BN/conv layer configs and every
 * kernel's shape against its torchvision twin, then fills the trunk and sets
 * ie->convention = INCEPTION_KERAS. 0, or -1 with err_msg() naming the file and the weight;
 * on error ie is unchanged. */
int keras_inception_load(ImageEncoder *ie, const char *model_dir);

#endif
