/* json_check.c: duplicate keys and range-checked whole numbers in cJSON trees; see json_check.h. */
#include "json_check.h"
#include "../core/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_key(const void *a, const void *b) {
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string ? x->string : "", y->string ? y->string : "");
}

/* The dotted path of the object being checked, for the message (cut at 200 bytes). */
typedef struct Path {
    char buf[256];
    size_t len;
} Path;

static int check(const cJSON *node, Path *p, int depth) {
    /* cJSON itself refuses nesting beyond CJSON_NESTING_LIMIT (1000), so this recursion is bounded */
    if (depth > 2000) return err_set("JSON nested too deeply");
    size_t n = 0;
    for (const cJSON *it = node->child; it; it = it->next) n++;
    if (cJSON_IsObject(node) && n > 1) {
        const cJSON **keys = xmalloc(n * sizeof *keys);
        size_t k = 0;
        for (const cJSON *it = node->child; it; it = it->next) keys[k++] = it;
        qsort(keys, n, sizeof *keys, cmp_key);
        for (size_t i = 1; i < n; i++)
            if (cmp_key(&keys[i - 1], &keys[i]) == 0) {
                const char *name = keys[i]->string ? keys[i]->string : "";
                int rc = p->len ? err_set("duplicate key \"%.100s\" (in \"%s\")", name, p->buf)
                                : err_set("duplicate key \"%.100s\"", name);
                free(keys);
                return rc;
            }
        free(keys);
    }
    if (!cJSON_IsObject(node) && !cJSON_IsArray(node)) return 0;
    size_t idx = 0;
    for (const cJSON *it = node->child; it; it = it->next, idx++) {
        if (!it->child) continue; /* only objects and arrays have members */
        size_t old = p->len;
        int w = cJSON_IsObject(node) ? snprintf(p->buf + old, sizeof p->buf - old, "%s%.100s", old ? "." : "", it->string ? it->string : "")
                                     : snprintf(p->buf + old, sizeof p->buf - old, "[%zu]", idx);
        if (w > 0) p->len = old + (size_t)w < sizeof p->buf ? old + (size_t)w : sizeof p->buf - 1;
        int rc = check(it, p, depth + 1);
        p->len = old;
        p->buf[old] = 0;
        if (rc) return rc;
    }
    return 0;
}

int json_no_duplicate_keys(const cJSON *root) {
    if (!root) return 0;
    Path p;
    p.buf[0] = 0;
    p.len = 0;
    return check(root, &p, 0);
}

int json_whole(const cJSON *v, double lo, double hi, int64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    /* the comparisons are false for NaN; lo and hi bound d inside int64_t before the cast */
    if (!(d >= lo && d <= hi) || d != floor(d) || !(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return 0;
    *out = (int64_t)d;
    return 1;
}
