/* json_check.h: checks that every reader of untrusted JSON (safetensors headers, model.json and
 * config.json, `attngan serve` request bodies) applies before it trusts a parsed cJSON tree.
 *
 *  - Duplicate keys: cJSON keeps both members and its lookups return the first, so a second
 *    "lr" or a second "__metadata__" would be silently ignored (or, in a reader that counts
 *    members first, miscounted). A duplicate key anywhere in the tree is an error.
 *  - Numbers: a JSON number is a double; converting one outside the target type's range to an
 *    integer is undefined behaviour in C. json_whole() range-checks before any cast.
 * The messages name the key but not the file: callers add it with err_prefix(). */
#ifndef ATTNGAN_JSON_CHECK_H
#define ATTNGAN_JSON_CHECK_H

#include <cjson/cJSON.h>
#include <stdint.h>

/* 0, or -1 with err_msg() 'duplicate key "lr" (in "TRAIN")' for the first object, depth first,
 * that holds the same key twice. O(n log n) in the number of members of each object. */
int json_no_duplicate_keys(const cJSON *root);

/* Whether v is a number that is a whole number in [lo, hi] (finite, no fraction); on success
 * *out gets it. lo and hi must be within +-2^63. No error message: callers say what it is. */
int json_whole(const cJSON *v, double lo, double hi, int64_t *out);

#endif
