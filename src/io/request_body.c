/* request_body.c: the bird request body; see request_body.h. */
#include "request_body.h"
#include "json_check.h"
#include "../core/error.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *msg, size_t cap, int status, const char *fmt, ...) ATTR_PRINTF(4, 5);
static int fail(char *msg, size_t cap, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    return status;
}

/* Code points of s (n bytes) if it is valid UTF-8 (shortest forms, no surrogates, at most
 * U+10FFFF), else -1. */
static long utf8_len(const unsigned char *s, size_t n) {
    long count = 0;
    for (size_t i = 0; i < n; count++) {
        unsigned c = s[i];
        size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (!k || k > n - i) return -1;
        uint32_t cp = k == 1 ? c : c & (0x7Fu >> k);
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return -1;
            cp = cp << 6 | (s[i + j] & 0x3Fu);
        }
        static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < least[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
        i += k;
    }
    return count;
}

/* A client's string quoted in a message: printable ASCII (others '?'), cut at max bytes. */
static void printable(char *dst, size_t cap, const char *src, size_t max) {
    size_t o = 0;
    if (max + 4 > cap) max = cap > 4 ? cap - 4 : 0;
    for (size_t i = 0; src[i]; i++) {
        if (i >= max) {
            memcpy(dst + o, "...", 3), o += 3;
            break;
        }
        unsigned char ch = (unsigned char)src[i];
        dst[o++] = ch >= 0x20 && ch < 0x7F ? (char)ch : '?';
    }
    dst[o] = 0;
}

/* The offset of the first escape \u0000 inside a JSON string of the text, or -1: cJSON decodes it
 * into a NUL that ends its C string, so "a\u0000b" would arrive as "a". */
static long nul_escape_at(const char *s, size_t n) {
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_str) {
            in_str = s[i] == '"';
        } else if (s[i] == '"') {
            in_str = 0;
        } else if (s[i] == '\\' && i + 1 < n) {
            if (s[i + 1] == 'u' && i + 5 < n && !memcmp(s + i + 2, "0000", 4)) return (long)i;
            i++;
        }
    }
    return -1;
}

/* An integer field: absent or null leaves *out; else a whole number in [lo, hi]. */
static int whole_field(const cJSON *root, const char *name, double lo, double hi, int64_t *out, int *given, char *msg, size_t cap) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!json_whole(v, lo, hi, out)) return fail(msg, cap, 400, "\"%s\" must be an integer from %.0f to %.0f", name, lo, hi);
    if (given) *given = 1;
    return 0;
}

static int parse(const char *body, size_t len, const BirdLimits *lim, const cJSON *root, BirdRequest *out, char *msg, size_t cap) {
    if (!cJSON_IsObject(root)) return fail(msg, cap, 400, "the body must be a JSON object such as {\"caption\": \"a small red bird\"}");
    static const char *const FIELDS[] = {"caption", "seed", "n", "stage", "format"};
    unsigned seen = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        size_t k = 0;
        while (k < sizeof FIELDS / sizeof *FIELDS && !(it->string && !strcmp(it->string, FIELDS[k]))) k++;
        char name[64];
        printable(name, sizeof name, it->string ? it->string : "", 40);
        if (k == sizeof FIELDS / sizeof *FIELDS)
            return fail(msg, cap, 400, "unknown field \"%s\" (the fields are caption, seed, n, stage, format)", name);
        if (seen & 1u << k) return fail(msg, cap, 400, "duplicate field \"%s\"", name);
        seen |= 1u << k;
    }
    const cJSON *capv = cJSON_GetObjectItemCaseSensitive(root, "caption");
    if (!capv) return fail(msg, cap, 400, "missing field \"caption\" (a string)");
    if (!cJSON_IsString(capv) || !capv->valuestring) return fail(msg, cap, 400, "\"caption\" must be a string");
    long nul = nul_escape_at(body, len);
    if (nul >= 0)
        return fail(msg, cap, 400, "the body holds a NUL character (\\u0000 at byte %ld): a caption cannot contain NUL", nul);
    const char *caption = capv->valuestring;
    size_t bytes = strlen(caption);
    long chars = utf8_len((const unsigned char *)caption, bytes);
    if (chars < 0) return fail(msg, cap, 400, "\"caption\" is not valid UTF-8");
    if (chars > lim->max_caption || bytes > lim->max_caption_bytes)
        return fail(msg, cap, 413, "the caption has %ld characters; this server accepts at most %d", chars, lim->max_caption);
    int blank = 1;
    for (const char *p = caption; *p && blank; p++) blank = *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v';
    if (blank) return fail(msg, cap, 400, "the caption is empty");
    int64_t seed = 0, n = 1, stage = lim->stages;
    int st;
    if ((st = whole_field(root, "seed", 0, lim->max_seed, &seed, &out->has_seed, msg, cap)) ||
        (st = whole_field(root, "n", 1, lim->max_n, &n, NULL, msg, cap)))
        return st;
    if (whole_field(root, "stage", 1, lim->stages, &stage, NULL, msg, cap)) {
        size_t l = strlen(msg);
        snprintf(msg + l, cap - l, " (this model has %d stage%s: %s px)", lim->stages, lim->stages > 1 ? "s" : "",
                 lim->stages == 1 ? "64" : lim->stages == 2 ? "64, 128" : "64, 128, 256");
        return 400;
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (fmt && !cJSON_IsNull(fmt)) {
        if (!cJSON_IsString(fmt) || (strcmp(fmt->valuestring, "png") && strcmp(fmt->valuestring, "json")))
            return fail(msg, cap, 400, "\"format\" must be \"png\" or \"json\"");
        out->format = strcmp(fmt->valuestring, "json") ? BIRD_FORMAT_PNG : BIRD_FORMAT_JSON;
    }
    out->caption = xstrdup(caption);
    out->seed = (uint64_t)seed;
    out->n = (int)n;
    out->stage = (int)stage;
    return 0;
}

/* The body as one JSON value and nothing after it: 0 and *root (cJSON_Delete it), or the status
 * (400) with the reason in msg. */
static int json_body(const char *body, size_t len, cJSON **root, char *msg, size_t cap) {
    *root = NULL;
    if (!body || len == 0) return fail(msg, cap, 400, "empty body: expected a JSON object such as {\"caption\": \"a small red bird\"}");
    /* JSON text never holds a raw NUL; inside a string cJSON would keep it, and the C string of
     * the caption would silently end there */
    const char *raw_nul = memchr(body, 0, len);
    if (raw_nul)
        return fail(msg, cap, 400, "the body holds a NUL byte (at byte %ld): not valid JSON, and a caption cannot contain NUL",
                    (long)(raw_nul - body));
    const char *at = NULL; /* where parsing stopped (cJSON_GetErrorPtr is a global: not for threads) */
    cJSON *r = cJSON_ParseWithLengthOpts(body, len, &at, 0);
    if (!r) {
        long off = at && at >= body && at <= body + len ? (long)(at - body) : -1;
        return fail(msg, cap, 400, "the body is not valid JSON (near byte %ld)", off);
    }
    while (at && at < body + len && (*at == ' ' || *at == '\t' || *at == '\n' || *at == '\r')) at++;
    if (at && at < body + len) {
        cJSON_Delete(r);
        return fail(msg, cap, 400, "the body is not valid JSON (text after the value at byte %ld)", (long)(at - body));
    }
    *root = r;
    return 0;
}

int bird_request_parse(const char *body, size_t len, const BirdLimits *lim, BirdRequest *out, char *msg, size_t cap) {
    memset(out, 0, sizeof *out);
    if (cap) msg[0] = 0;
    cJSON *root;
    int st = json_body(body, len, &root, msg, cap);
    if (st) return st;
    st = parse(body, len, lim, root, out, msg, cap);
    cJSON_Delete(root);
    if (st) bird_request_free(out);
    return st;
}

int seed_request_parse(const char *body, size_t len, const BirdLimits *lim, BirdRequest *out, char *msg, size_t cap) {
    memset(out, 0, sizeof *out);
    if (cap) msg[0] = 0;
    cJSON *root;
    int st = json_body(body, len, &root, msg, cap);
    if (st) return st;
    if (!cJSON_IsObject(root)) st = fail(msg, cap, 400, "the body must be a JSON object with a \"caption\"");
    else if (json_no_duplicate_keys(root)) st = fail(msg, cap, 400, "a field appears twice in the body");
    const cJSON *c = st ? NULL : cJSON_GetObjectItemCaseSensitive(root, "caption");
    if (!st && !c) st = fail(msg, cap, 400, "no \"caption\" in the body");
    if (!st) { /* the caption's own checks are bird_request_parse's, on {"caption": ...} alone */
        cJSON *only = cJSON_CreateObject();
        cJSON_AddItemReferenceToObject(only, "caption", (cJSON *)c);
        char *one = cJSON_PrintUnformatted(only);
        cJSON_Delete(only);
        if (!one) st = fail(msg, cap, 400, "out of memory");
        else {
            st = bird_request_parse(one, strlen(one), lim, out, msg, cap);
            free(one);
        }
    }
    cJSON_Delete(root);
    if (st) bird_request_free(out);
    return st;
}

void bird_request_free(BirdRequest *r) {
    free(r->caption);
    memset(r, 0, sizeof *r);
}
