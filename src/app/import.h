/* import.h: a model directory (as `attngan export` writes it, read by generate, serve and eval)
 * from the official PyTorch checkpoints of AttnGAN (Xu et al. 2018: netG with CA_NET and noise,
 * its RNN_ENCODER without ZSL G) or of the seed (ZSL-AttnGAN: ZSL G inside the text encoder, G
 * on the sentence code). The sizes and the variant are read off the tensors' names and shapes;
 * see `attngan import --help`. */
#ifndef ATTNGAN_IMPORT_H
#define ATTNGAN_IMPORT_H

#include <stddef.h>

typedef struct ImportOptions {
    const char *net_g;         /* G_NET's state_dict as .safetensors (tools/pth2safetensors.py) */
    const char *text_encoder;  /* RNN_ENCODER's state_dict as .safetensors */
    const char *image_encoder; /* CNN_ENCODER's (optional; its heads are kept, not the trunk) */
    const char *captions;      /* the official captions.pickle (word numbering) ... */
    const char *vocab;         /* ... or a vocab.txt (one word per line, line number = id) */
    const char *cfg;           /* optional: the original's YAML (e.g. cfg/bird_attn2.yml) */
    const char *out;           /* the model directory to write */
    const char *note;          /* model.json "trained_on" (NULL: a default naming the files) */
    const char *data;          /* optional: CUB birds, for the relevance centroids (as export) */
    const char *wiki;          /* their Wikipedia directory (NULL: DATA/../wikipedia) */
    int force;                 /* overwrite an existing model directory */
} ImportOptions;

/* Writes o->out; 0, or -1 with err_msg() naming the file, the tensor or the key at fault (-2:
 * writing the directory failed).
 * summary (may be NULL) gets one line describing the model found. */
int model_import(const ImportOptions *o, char *summary, size_t len);

#endif
