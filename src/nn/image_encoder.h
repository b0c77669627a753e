/* image_encoder.h: CNN_ENCODER of the seed: bilinear resize to 299, the Inception-v3 trunk
 * (torchvision inception_v3 up to Mixed_7c, BasicConv2d = conv (no bias) + BN(eps 1e-3) + ReLU,
 * frozen), region features emb_features (1x1 conv 768 -> E, no bias) on Mixed_6e (17x17) and
 * the global code emb_cnn_code (Linear 2048 -> E) on avg_pool(Mixed_7c, 8).
 * state_dict keys: torchvision's (Conv2d_1a_3x3.conv.weight, Conv2d_1a_3x3.bn.*, Mixed_5b.*,
 * ..., Mixed_7c.*) plus emb_features.weight, emb_cnn_code.{weight,bias}.
 * Two conventions for the trunk (ImageEncoder.convention): torchvision's (the default: resize
 * with align_corners=False, 3x3 branch average pools counting the padding) and Keras's, for the
 * pretrained Keras InceptionV3 that src/nn/keras_inception.c loads (input (x + 1) / 2 in [0, 1],
 * resize with align_corners=True, branch average pools excluding the padding from the count). */
#ifndef ATTNGAN_IMAGE_ENCODER_H
#define ATTNGAN_IMAGE_ENCODER_H

#include "config.h"
#include "layers.h"

typedef struct InceptionTrunk InceptionTrunk; /* defined in image_encoder.c */

typedef enum {
    INCEPTION_TORCHVISION = 0,   /* torchvision inception_v3 (the seed's CNN_ENCODER) */
    INCEPTION_KERAS = 1          /* Keras InceptionV3 weights (keras_inception_load sets it) */
} InceptionConvention;

typedef struct ImageEncoder {
    ModelConfig cfg;
    ParamSet ps;                 /* name "image_encoder" */
    InceptionTrunk *trunk;
    Conv2dLayer emb_features;
    LinearLayer emb_cnn_code;
    int train;                   /* trunk BN: batch statistics + running-stat updates (seed's DAMSM) */
    InceptionConvention convention;  /* INCEPTION_TORCHVISION after image_encoder_init */
    int trunk_pinned;            /* image_encoder_pin_trunk is on */
} ImageEncoder;

typedef struct ImageEncoderOut {
    Tensor *region;              /* (B, E, 17, 17) emb_features(Mixed_6e) */
    Tensor *code;                /* (B, E) emb_cnn_code(pool) */
    Tensor *trunk_pool;          /* (B, 2048) avg_pool(Mixed_7c, 8) */
    Tensor *mixed_6e;            /* (B, 768, 17, 17) the trunk's Mixed_6e output (region's input) */
} ImageEncoderOut;

/* The trunk's tensors are registered frozen (requires_grad false); the emb layers trainable. */
void image_encoder_init(ImageEncoder *ie, const ModelConfig *cfg);
void image_encoder_free(ImageEncoder *ie);
/* Marks the trunk frozen and the heads trainable (or all frozen with heads_trainable = 0). */
void image_encoder_set_trainable(ImageEncoder *ie, int heads_trainable);
/* on: pins the trunk's convolution weights (conv2d_pin_weights), so the convolutions keep their
 * reordered copies instead of reordering the frozen weights on every call: faster, and about 87 MB
 * more per weight layout in use (forward, input gradient). The trunk's values must not change
 * while pinned (a load into it must come before, or pin again after). off: drops the copies.
 * image_encoder_free unpins. The GAN trainer pins (its trunk runs forward and input gradient on
 * every step); the DAMSM trainer does not (its trunk runs forward only, and memory is its limit). */
void image_encoder_pin_trunk(ImageEncoder *ie, int on);
/* 1 if key is a trunk key (its first component is an Inception part name). */
int image_encoder_is_trunk_key(const char *key);
/* imgs (B, 3, S, S) in [-1, 1], any S (resized to 299 bilinearly; 299 is an exact copy).
 * INCEPTION_KERAS: the trunk sees (imgs + 1) / 2, resized with align_corners=True. */
ImageEncoderOut image_encoder_forward(Tape *tp, ImageEncoder *ie, Tensor *imgs);
/* The global code from the trunk's outputs: emb_cnn_code(pool (B, 2048)), or with
 * cfg.image_code_mixed (EXTRA.IMAGE_CODE 'mixed_6e') emb_cnn_code(the 17x17 mean of mixed_6e
 * (B, 768, 17, 17)). */
Tensor *image_encoder_code(Tape *tp, ImageEncoder *ie, Tensor *mixed_6e, Tensor *pool);

/* The frozen eval-mode trunk (conv2d_bn_relu_frozen) keeps its activations in oneDNN's nChw16c
 * layout from the first convolution's output to Mixed_7c, so no convolution reorders its input
 * or output; the two outputs come back in NCHW. Default on (ATTNGAN_TRUNK_LAYOUT=blocked|nchw);
 * the values agree with the NCHW path within the convolutions' rounding (tests). */
void image_encoder_set_blocked_layout(int on);

#endif
