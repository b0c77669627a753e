/* text_notice.c: invalid UTF-8 and the words the tokenizer changes; see text_notice.h. */
#include "text_notice.h"
#include "text.h"
#include "../core/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* The code point at s (length in *len), or -1 for an invalid sequence. */
static long decode(const unsigned char *s, int *len) {
    unsigned c = s[0];
    int n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    *len = 1;
    if (n == 1) return c;
    if (n == 0) return -1;
    uint32_t cp = c & (0x7Fu >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return -1;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    *len = n;
    return (long)cp;
}

long text_utf8_invalid_at(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int len;
        if (decode(p, &len) < 0) return (long)(p - (const unsigned char *)s);
        p += len;
    }
    return -1;
}

static int ascii_word(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Whether the code point (its n UTF-8 bytes) is a word character the tokenizer drops: "a?a"
 * tokenizes to the one word "aa". */
static int vanishes(const unsigned char *cp, int n) {
    char probe[8] = "a";
    memcpy(probe + 1, cp, (size_t)n);
    probe[n + 1] = 'a';
    probe[n + 2] = 0;
    char **tok;
    int nt = text_tokenize(probe, &tok);
    int v = nt == 1 && !strcmp(tok[0], "aa");
    text_free_tokens(tok, nt);
    return v;
}

static void append(char **list, size_t *len, const char *s, size_t n) {
    *list = xrealloc(*list, *len + n + 1);
    memcpy(*list + *len, s, n);
    *len += n;
    (*list)[*len] = 0;
}

char *text_changed_words(const char *text) {
    char *list = NULL;
    size_t len = 0;
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        if (*p < 0x80 && !ascii_word(*p)) { p++; continue; }
        const unsigned char *w = p;
        int changed = 0;
        while (*p && !(*p < 0x80 && !ascii_word(*p))) {
            int n;
            long cp = decode(p, &n);
            if (cp >= 0x80 && !changed) changed = vanishes(p, n);
            p += n;
        }
        if (!changed) continue;
        size_t wl = (size_t)(p - w);
        char *word = xmalloc(wl + 1);
        memcpy(word, w, wl);
        word[wl] = 0;
        /* the same word listed once */
        int seen = 0;
        if (list) {
            for (const char *q = list; (q = strstr(q, word)); q++)
                if ((q == list || (q >= list + 2 && q[-2] == ',' && q[-1] == ' ')) && !strncmp(q + wl, " -> ", 4)) { seen = 1; break; }
        }
        if (!seen) {
            if (len) append(&list, &len, ", ", 2);
            append(&list, &len, word, wl);
            append(&list, &len, " -> ", 4);
            char **tok;
            int nt = text_tokenize(word, &tok);
            if (!nt) append(&list, &len, "(dropped)", 9);
            for (int i = 0; i < nt; i++) {
                if (i) append(&list, &len, " ", 1);
                append(&list, &len, tok[i], strlen(tok[i]));
            }
            text_free_tokens(tok, nt);
        }
        free(word);
    }
    return list;
}
