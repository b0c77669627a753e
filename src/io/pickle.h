/* pickle.h: a small, safe reader of Python pickles (protocols 0-2, and the opcodes of 3-4 that
 * plain data uses) for AttnGAN's data files: filenames.pickle (a list of str), class_info.pickle
 * (a list of ints or numpy int64 scalars) and captions.pickle ([train_captions, test_captions,
 * ixtoword, wordtoix]). It builds values and never executes anything: the only globals accepted
 * are numpy's scalar/dtype reconstruction (turned into plain ints) and collections.OrderedDict;
 * any other global, or any opcode outside plain data, is an error naming it and the byte offset.
 * With PICKLE_TORCH (pickle_parse_ex) it also reads the object pickle of torch.save (src/io/pth.h). */
#ifndef ATTNGAN_PICKLE_H
#define ATTNGAN_PICKLE_H

#include <stddef.h>
#include <stdint.h>

typedef enum { PK_NONE, PK_BOOL, PK_INT, PK_FLOAT, PK_STR, PK_BYTES, PK_LIST, PK_TUPLE, PK_DICT, PK_TENSOR } PickleType;

/* PK_TENSOR (PICKLE_TORCH only): a tensor of torch.save's object pickle, as torch._utils'
 * _rebuild_tensor(_v2) describes it; its data lives in the storage record `key` of the file. */
#define PICKLE_MAX_DIMS 8
typedef struct PickleTensor {
    char dtype[8];            /* "F32", "F64", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL" */
    int elem_size;            /* bytes */
    char *key;                /* the storage record (a legacy storage view: the root storage's key) */
    int64_t storage_numel;    /* elements of that storage (a view: of the view) */
    int64_t view_offset;      /* a legacy storage view: its first element in the root storage */
    int64_t offset;           /* storage_offset, elements, into the storage (or view) */
    int ndim;
    int64_t shape[PICKLE_MAX_DIMS], stride[PICKLE_MAX_DIMS];
} PickleTensor;

typedef struct PickleValue PickleValue;
struct PickleValue {
    PickleType type;
    int64_t i;            /* PK_BOOL, PK_INT */
    double f;             /* PK_FLOAT */
    char *s;              /* PK_STR (UTF-8, NUL-terminated), PK_BYTES */
    size_t len;           /* bytes of s */
    PickleValue **items;  /* PK_LIST, PK_TUPLE: n items; PK_DICT: keys and values alternating, n = 2 * pairs */
    size_t n;
    PickleTensor *tensor; /* PK_TENSOR */
};

/* Parses a whole file; returns 0 or -1 with err_msg() naming the file, the offset and the reason. */
int pickle_load(const char *path, PickleValue **out);
int pickle_parse(const unsigned char *buf, size_t len, const char *name, PickleValue **out);

/* pickle_parse with options:
 *  PICKLE_TORCH   the object pickle of torch.save: also the globals a state_dict needs
 *                 (torch._utils._rebuild_tensor, _rebuild_tensor_v2, _rebuild_parameter(_with_state),
 *                 torch.Size, torch.<Float|Double|Half|BFloat16|Long|Int|Short|Char|Byte|Bool>Storage),
 *                 storage persistent ids ('storage', type, key, location, numel[, view]) by BINPERSID,
 *                 and BUILD on a dict (an OrderedDict's attributes, e.g. _metadata, are dropped).
 *                 Tensors become PK_TENSOR values (shape, stride, offset checked against the
 *                 storage's size); any other global or persistent id is an error naming it.
 *  PICKLE_PREFIX  the pickle may be followed by more bytes (torch.save's legacy format is a
 *                 sequence of pickles): *consumed gets the bytes up to and including STOP. */
enum { PICKLE_TORCH = 1, PICKLE_PREFIX = 2 };
int pickle_parse_ex(const unsigned char *buf, size_t len, const char *name, int flags, size_t *consumed, PickleValue **out);
void pickle_free(PickleValue *v);

/* Views with type checks; -1 with err_msg() ("<what>: item 3 is a float, expected str"). */
int pickle_str_list(const PickleValue *v, const char *what, char ***out, size_t *n);   /* strings are copies */
int pickle_int_list(const PickleValue *v, const char *what, int64_t **out, size_t *n);
void pickle_free_str_list(char **list, size_t n);

#endif
