/* env.c: environment switches; see env.h. */
#include "env.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int env_switch(_Atomic int *cache, const char *var, const char *const *values, int n, int dflt) {
    int v = atomic_load(cache);
    if (v >= 0) return v;
    CHECK(n > 0 && dflt >= 0 && dflt < n, "env_switch %s: default %d outside the %d values", var, dflt, n);
    const char *e = getenv(var);
    v = dflt;
    if (e && *e) {
        v = -1;
        for (int i = 0; i < n && v < 0; i++)
            if (!strcmp(e, values[i])) v = i;
        if (v < 0) {
            char allowed[256] = "";
            for (int i = 0; i < n; i++) {
                size_t len = strlen(allowed);
                snprintf(allowed + len, sizeof allowed - len, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ", values[i]);
            }
            FAIL("%s=%s: expected %s", var, e, allowed);
        }
    }
    atomic_store(cache, v);
    return v;
}
