/* pickle.h: a small, safe reader of Python pickles (protocols 0-2, and the opcodes of 3-4 that
 * plain data uses) for AttnGAN's data files: filenames.pickle (a list of str), class_info.pickle
 * (a list of ints or numpy int64 scalars) and captions.pickle ([train_captions, test_captions,
 * ixtoword, wordtoix]). It builds values and never executes anything: the only globals accepted
 * are numpy's scalar/dtype reconstruction (turned into plain ints) and collections.OrderedDict;
 * any other global, or any opcode outside plain data, is an error naming it and the byte offset. */
#ifndef ATTNGAN_PICKLE_H
#define ATTNGAN_PICKLE_H

#include <stddef.h>
#include <stdint.h>

typedef enum { PK_NONE, PK_BOOL, PK_INT, PK_FLOAT, PK_STR, PK_BYTES, PK_LIST, PK_TUPLE, PK_DICT } PickleType;

typedef struct PickleValue PickleValue;
struct PickleValue {
    PickleType type;
    int64_t i;            /* PK_BOOL, PK_INT */
    double f;             /* PK_FLOAT */
    char *s;              /* PK_STR (UTF-8, NUL-terminated), PK_BYTES */
    size_t len;           /* bytes of s */
    PickleValue **items;  /* PK_LIST, PK_TUPLE: n items; PK_DICT: keys and values alternating, n = 2 * pairs */
    size_t n;
};

/* Parses a whole file; returns 0 or -1 with err_msg() naming the file, the offset and the reason. */
int pickle_load(const char *path, PickleValue **out);
int pickle_parse(const unsigned char *buf, size_t len, const char *name, PickleValue **out);
void pickle_free(PickleValue *v);

/* Views with type checks; -1 with err_msg() ("<what>: item 3 is a float, expected str"). */
int pickle_str_list(const PickleValue *v, const char *what, char ***out, size_t *n);   /* strings are copies */
int pickle_int_list(const PickleValue *v, const char *what, int64_t **out, size_t *n);
void pickle_free_str_list(char **list, size_t n);

#endif
