/* pickle.c: a safe reader of Python pickles (protocols 0-4, plain data only); see pickle.h.
 *
 * The file is interpreted like pickle's virtual machine, but the only objects it can build are
 * None, bool, int, float, str, bytes, list, tuple and dict. The few globals that AttnGAN's files
 * need (numpy's scalar and dtype, _codecs.encode, collections.OrderedDict) are tokens on the stack
 * that REDUCE/BUILD/NEWOBJ turn into plain values; anything else is an error naming the opcode,
 * the global and the byte offset. Nothing is ever executed or imported.
 *
 * Values of one parse may be shared (memo GET, interned small ints); all nodes of a parse are
 * kept on one list that pickle_free() releases. After STOP the result is checked to be acyclic,
 * at most PICKLE_MAX_DEPTH deep and free of leftover numpy/global tokens. */
#include "pickle.h"
#include "../core/error.h"
#include "files.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PICKLE_MAX_FILE ((size_t)512 << 20)  /* bytes */
#define PICKLE_MAX_NODES ((size_t)1 << 26)   /* values built by one parse (ints are interned) */
#define PICKLE_MAX_DEPTH 256                 /* nesting of containers in the result */
#define INT_CACHE_LO (-256)
#define INT_CACHE_HI 65536

enum { K_VALUE, K_GLOBAL, K_DTYPE, K_STORAGE };
enum { G_SCALAR, G_DTYPE, G_ENCODE, G_ODICT, G_REBUILD, G_REBUILD_V2, G_REBUILD_PARAM, G_SIZE, G_STORAGE_TYPE };
static const char *const GLOBAL_NAMES[] = {"numpy.core.multiarray.scalar", "numpy.dtype", "_codecs.encode",
                                           "collections.OrderedDict", "torch._utils._rebuild_tensor",
                                           "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
                                           "torch.Size", "a torch storage type"};
/* PICKLE_TORCH: torch.<name> storage types and what their elements are */
static const struct { const char *name, *dtype; int size; } STORAGE_TYPES[] = {
    {"FloatStorage", "F32", 4}, {"DoubleStorage", "F64", 8}, {"HalfStorage", "F16", 2}, {"BFloat16Storage", "BF16", 2},
    {"LongStorage", "I64", 8},  {"IntStorage", "I32", 4},    {"ShortStorage", "I16", 2}, {"CharStorage", "I8", 1},
    {"ByteStorage", "U8", 1},   {"BoolStorage", "BOOL", 1},
};
#define N_STORAGE_TYPES (sizeof STORAGE_TYPES / sizeof STORAGE_TYPES[0])

/* A value plus the parser's bookkeeping; a PickleValue* handed out is the address of a PkNode. */
typedef struct PkNode {
    PickleValue v;
    struct PkNode *next;   /* all nodes of a parse */
    struct PkNode *owned;  /* the root only: head of that list (what pickle_free releases) */
    size_t cap;            /* allocated items */
    size_t offset;         /* byte offset of the opcode that built it */
    unsigned char kind, global, raw, color; /* raw: PK_STR of a Python 2 str (bytes as they were) */
    char dt_kind;          /* K_DTYPE: 'i', 'u', 'f' or 'b' */
    unsigned char st_type; /* K_GLOBAL G_STORAGE_TYPE: index in STORAGE_TYPES */
    unsigned char dt_size, dt_big, dt_built;
    int height;
} PkNode;

typedef struct Parser {
    const unsigned char *buf;
    size_t len, pos, op_at;
    unsigned char op;
    const char *name;
    PkNode **stack;
    size_t sp, stack_cap;
    size_t *marks;
    size_t n_marks, marks_cap;
    PkNode **memo;
    size_t memo_cap, memo_count;
    PkNode *nodes;
    size_t n_nodes;
    PkNode **ints;         /* interned ints in [INT_CACHE_LO, INT_CACHE_HI) */
    PkNode *none, *yes, *no;
    int flags;             /* PICKLE_TORCH, PICKLE_PREFIX */
} Parser;

/* ---------------------------------------------------------------- names and errors */
static const char *op_name(unsigned char op) {
    switch (op) {
    case '(': return "MARK";        case '.': return "STOP";          case '0': return "POP";
    case '1': return "POP_MARK";    case '2': return "DUP";           case 'F': return "FLOAT";
    case 'I': return "INT";         case 'J': return "BININT";        case 'K': return "BININT1";
    case 'L': return "LONG";        case 'M': return "BININT2";       case 'N': return "NONE";
    case 'P': return "PERSID";      case 'Q': return "BINPERSID";     case 'R': return "REDUCE";
    case 'S': return "STRING";      case 'T': return "BINSTRING";     case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";     case 'X': return "BINUNICODE";    case 'a': return "APPEND";
    case 'b': return "BUILD";       case 'c': return "GLOBAL";        case 'd': return "DICT";
    case '}': return "EMPTY_DICT";  case 'e': return "APPENDS";       case 'g': return "GET";
    case 'h': return "BINGET";      case 'i': return "INST";          case 'j': return "LONG_BINGET";
    case 'l': return "LIST";        case ']': return "EMPTY_LIST";    case 'o': return "OBJ";
    case 'p': return "PUT";         case 'q': return "BINPUT";        case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";     case 't': return "TUPLE";         case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS";    case 'G': return "BINFLOAT";      case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";     case 0x82: return "EXT1";         case 0x83: return "EXT2";
    case 0x84: return "EXT4";       case 0x85: return "TUPLE1";       case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";     case 0x88: return "NEWTRUE";      case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1";      case 0x8b: return "LONG4";        case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES"; case 0x8c: return "SHORT_BINUNICODE"; case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";  case 0x8f: return "EMPTY_SET";    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";  case 0x92: return "NEWOBJ_EX";    case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";    case 0x95: return "FRAME";        case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER"; case 0x98: return "READONLY_BUFFER";
    default: return NULL;
    }
}

/* "name: byte N (opcode X): reason" */
static int perr(Parser *P, const char *fmt, ...) ATTR_PRINTF(2, 3);
static int perr(Parser *P, const char *fmt, ...) {
    char msg[400], op[48];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *nm = op_name(P->op);
    if (nm) snprintf(op, sizeof op, "%s", nm);
    else snprintf(op, sizeof op, "0x%02x", P->op);
    return err_set("%s: byte %zu (opcode %s): %s", P->name, P->op_at, op, msg);
}

/* Printable, truncated copy of untrusted bytes for messages. */
static const char *show(const char *s, size_t n, char *buf, size_t cap) {
    size_t o = 0, i = 0;
    for (; i < n && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') buf[o++] = (char)c;
        else o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    }
    if (i < n) { memcpy(buf + o, "...", 3); o += 3; }
    buf[o] = 0;
    return buf;
}

static const char *type_name(const PkNode *n) {
    static const char *const names[] = {"None", "bool", "int", "float", "str", "bytes", "list", "tuple", "dict"};
    if (n->kind == K_DTYPE) return "numpy.dtype";
    if (n->kind == K_STORAGE) return "torch storage";
    if (n->kind == K_GLOBAL) return GLOBAL_NAMES[n->global];
    if (n->v.type == PK_TENSOR) return "tensor";
    return (unsigned)n->v.type < sizeof names / sizeof names[0] ? names[n->v.type] : "?";
}

/* "an int", "a list", "None", "the global numpy.dtype" for messages. */
static const char *a_type(const PkNode *n) {
    static const char *const names[] = {"None", "a bool", "an int", "a float", "a str", "a bytes object", "a list", "a tuple", "a dict"};
    if (n->kind == K_DTYPE) return "a numpy.dtype";
    if (n->kind == K_STORAGE) return "a torch storage";
    if (n->kind == K_GLOBAL) {
        static char buf[4][80];
        static int k;
        k = (k + 1) % 4;
        if (n->global == G_STORAGE_TYPE) snprintf(buf[k], sizeof buf[k], "the global torch.%s", STORAGE_TYPES[n->st_type].name);
        else snprintf(buf[k], sizeof buf[k], "the global %s", GLOBAL_NAMES[n->global]);
        return buf[k];
    }
    if (n->v.type == PK_TENSOR) return "a tensor";
    return (unsigned)n->v.type < sizeof names / sizeof names[0] ? names[n->v.type] : "?";
}

/* ---------------------------------------------------------------- nodes */
static PkNode *node_new(Parser *P, PickleType t) {
    PkNode *n = xcalloc(1, sizeof *n);
    n->v.type = t;
    n->offset = P->op_at;
    n->next = P->nodes;
    P->nodes = n;
    P->n_nodes++;
    return n;
}

static void node_free_list(PkNode *n) {
    while (n) {
        PkNode *next = n->next;
        free(n->v.s);
        free(n->v.items);
        if (n->v.tensor) free(n->v.tensor->key);
        free(n->v.tensor);
        free(n);
        n = next;
    }
}

static PkNode *int_node(Parser *P, int64_t v) {
    int cached = v >= INT_CACHE_LO && v < INT_CACHE_HI;
    if (cached) {
        if (!P->ints) P->ints = xcalloc(INT_CACHE_HI - INT_CACHE_LO, sizeof *P->ints);
        PkNode **slot = &P->ints[v - INT_CACHE_LO];
        if (!*slot) { *slot = node_new(P, PK_INT); (*slot)->v.i = v; }
        return *slot;
    }
    PkNode *n = node_new(P, PK_INT);
    n->v.i = v;
    return n;
}

static PkNode *bool_node(Parser *P, int b) {
    PkNode **slot = b ? &P->yes : &P->no;
    if (!*slot) { *slot = node_new(P, PK_BOOL); (*slot)->v.i = b; }
    return *slot;
}

/* A str/bytes node owning a copy (NUL-terminated) of n bytes. */
static PkNode *bytes_node(Parser *P, PickleType t, const void *s, size_t n) {
    PkNode *x = node_new(P, t);
    x->v.s = xmalloc(n + 1);
    if (n) memcpy(x->v.s, s, n);
    x->v.s[n] = 0;
    x->v.len = n;
    return x;
}

static void items_add(PkNode *c, PkNode *const *items, size_t n) {
    if (c->v.n + n > c->cap) {
        size_t cap = c->cap ? c->cap : 4;
        while (cap < c->v.n + n) cap *= 2;
        c->v.items = xrealloc(c->v.items, cap * sizeof *c->v.items);
        c->cap = cap;
    }
    for (size_t i = 0; i < n; i++) c->v.items[c->v.n++] = &items[i]->v;
}

static PkNode *item(const PkNode *c, size_t i) { return (PkNode *)c->v.items[i]; }

/* ---------------------------------------------------------------- stack */
static void push(Parser *P, PkNode *n) {
    if (P->sp == P->stack_cap) {
        P->stack_cap = P->stack_cap ? 2 * P->stack_cap : 64;
        P->stack = xrealloc(P->stack, P->stack_cap * sizeof *P->stack);
    }
    P->stack[P->sp++] = n;
}

static size_t avail(const Parser *P) { return P->sp - (P->n_marks ? P->marks[P->n_marks - 1] : 0); }

static int pop(Parser *P, PkNode **out) {
    *out = NULL;
    if (avail(P) == 0) return perr(P, "the stack is empty");
    *out = P->stack[--P->sp];
    return 0;
}

static int top(Parser *P, PkNode **out) {
    *out = NULL;
    if (avail(P) == 0) return perr(P, "the stack is empty");
    *out = P->stack[P->sp - 1];
    return 0;
}

/* Removes the items above the last MARK and the mark; *items is a malloc'ed copy (free it). */
static int pop_mark(Parser *P, PkNode ***items, size_t *n) {
    *items = NULL;
    *n = 0;
    if (!P->n_marks) return perr(P, "no MARK on the stack");
    size_t m = P->marks[--P->n_marks];
    *n = P->sp - m;
    *items = xmalloc((*n ? *n : 1) * sizeof **items);
    if (*n) memcpy(*items, P->stack + m, *n * sizeof **items);
    P->sp = m;
    return 0;
}

static int drop_mark(Parser *P) {
    PkNode **items;
    size_t n;
    int rc = pop_mark(P, &items, &n);
    free(items);
    return rc;
}

static void mark(Parser *P) {
    if (P->n_marks == P->marks_cap) {
        P->marks_cap = P->marks_cap ? 2 * P->marks_cap : 16;
        P->marks = xrealloc(P->marks, P->marks_cap * sizeof *P->marks);
    }
    P->marks[P->n_marks++] = P->sp;
}

/* ---------------------------------------------------------------- reading arguments */
static int need(Parser *P, size_t n, const char *what) {
    if (P->len - P->pos < n)
        return perr(P, "truncated: %s needs %zu bytes, the file has %zu left", what, n, P->len - P->pos);
    return 0;
}

static int read_le(Parser *P, int n, uint64_t *out) {
    *out = 0;
    if (need(P, (size_t)n, "the argument")) return -1;
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)P->buf[P->pos + (size_t)i] << (8 * i);
    P->pos += (size_t)n;
    *out = v;
    return 0;
}

/* A newline-terminated text argument (protocol 0): *s and *n exclude the newline. */
static int read_line(Parser *P, const char **s, size_t *n) {
    *s = NULL;
    *n = 0;
    const unsigned char *p = P->buf + P->pos;
    const unsigned char *nl = memchr(p, '\n', P->len - P->pos);
    if (!nl) return perr(P, "truncated: the text argument has no terminating newline");
    *s = (const char *)p;
    *n = (size_t)(nl - p);
    P->pos += *n + 1;
    return 0;
}

/* A length field followed by that many bytes; the bytes are checked to be in the file. */
static int read_counted(Parser *P, int width, int is_signed, const unsigned char **s, size_t *n) {
    *s = NULL;
    *n = 0;
    uint64_t v;
    if (read_le(P, width, &v)) return -1;
    if (is_signed && width == 4 && (v & 0x80000000u)) return perr(P, "negative length %d", (int)(int32_t)(uint32_t)v);
    if (v > P->len - P->pos)
        return perr(P, "truncated: length %llu exceeds the %zu bytes left in the file", (unsigned long long)v, P->len - P->pos);
    *s = P->buf + P->pos;
    *n = (size_t)v;
    P->pos += (size_t)v;
    return 0;
}

/* Decimal integer with an optional sign, the whole text; -1 on syntax error or overflow. */
static int parse_dec(const char *s, size_t n, int64_t *out) {
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    if (i == n) return -1;
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (lim - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static int line_int(Parser *P, int64_t *out) {
    const char *s;
    size_t n;
    char b[80];
    if (read_line(P, &s, &n)) return -1;
    if (n && s[n - 1] == '\r') n--;
    if (P->op == 'L' && n && s[n - 1] == 'L') n--;
    if (parse_dec(s, n, out)) return perr(P, "'%s' is not a decimal integer that fits in 64 bits", show(s, n, b, sizeof b));
    return 0;
}

/* ---------------------------------------------------------------- strings */
static void utf8_put(char *o, size_t *k, uint32_t cp) {
    if (cp < 0x80) o[(*k)++] = (char)cp;
    else if (cp < 0x800) { o[(*k)++] = (char)(0xc0 | cp >> 6); o[(*k)++] = (char)(0x80 | (cp & 0x3f)); }
    else if (cp < 0x10000) {
        o[(*k)++] = (char)(0xe0 | cp >> 12); o[(*k)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[(*k)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        o[(*k)++] = (char)(0xf0 | cp >> 18); o[(*k)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        o[(*k)++] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[(*k)++] = (char)(0x80 | (cp & 0x3f));
    }
}

/* Decodes one strict UTF-8 sequence at s[*i]; -1 if invalid (overlong, surrogate, > U+10FFFF). */
static int utf8_next(const unsigned char *s, size_t n, size_t *i, uint32_t *cp) {
    unsigned c = s[*i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!len || (size_t)len > n - *i) return -1;
    uint32_t v = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    for (int k = 1; k < len; k++) {
        unsigned d = s[*i + (size_t)k];
        if ((d & 0xc0) != 0x80) return -1;
        v = v << 6 | (d & 0x3f);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min_cp[len] || v > 0x10ffff || (v >= 0xd800 && v < 0xe000)) return -1;
    *i += (size_t)len;
    *cp = v;
    return 0;
}

static int utf8_check(Parser *P, const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t at = i;
        if (utf8_next(s, n, &i, &cp)) return perr(P, "the string is not valid UTF-8 (at its byte %zu)", at);
    }
    return 0;
}

static int hex_val(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int hex_digits(const char *s, size_t n, uint32_t *out) {
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        int h = hex_val((unsigned char)s[i]);
        if (h < 0) return -1;
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return 0;
}

/* UNICODE ('V'): raw-unicode-escape, i.e. latin-1 bytes plus \uXXXX and \UXXXXXXXX escapes. */
static int op_unicode(Parser *P) {
    const char *s;
    size_t n, k = 0;
    if (read_line(P, &s, &n)) return -1;
    char *o = xmalloc(2 * n + 1);
    uint32_t hi = 0; /* a pending high surrogate (\ud83d\ude00 pairs of Python 2 narrow builds) */
    const char *bad = NULL;
    for (size_t i = 0; i < n && !bad;) {
        uint32_t cp = (unsigned char)s[i];
        if (cp == '\\' && i + 1 < n && (s[i + 1] == 'u' || s[i + 1] == 'U')) {
            size_t w = s[i + 1] == 'u' ? 4 : 8;
            if (n - i - 2 < w || hex_digits(s + i + 2, w, &cp) || cp > 0x10ffff) bad = "a bad \\u or \\U escape";
            i += 2 + w;
        } else i++;
        if (bad) break;
        if (cp >= 0xd800 && cp < 0xdc00) {
            if (hi) bad = "an unpaired surrogate";
            hi = cp;
            continue;
        }
        if (cp >= 0xdc00 && cp < 0xe000) {
            if (!hi) { bad = "an unpaired surrogate"; break; }
            cp = 0x10000 + ((hi - 0xd800) << 10) + (cp - 0xdc00);
            hi = 0;
        } else if (hi) bad = "an unpaired surrogate";
        if (!bad) utf8_put(o, &k, cp);
    }
    if (!bad && hi) bad = "an unpaired surrogate";
    if (bad) {
        free(o);
        return perr(P, "the UNICODE string has %s", bad);
    }
    PkNode *x = node_new(P, PK_STR);
    o[k] = 0;
    x->v.s = o;
    x->v.len = k;
    push(P, x);
    return 0;
}

/* Python 2 str repr escapes (codecs.escape_decode) into o; the length, or -1 on a bad escape. */
static long escape_decode(const char *s, size_t n, char *o) {
    static const char names[] = "\\'\"abfnrtv", values[] = "\\'\"\a\b\f\n\r\t\v";
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\') { o[k++] = s[i++]; continue; }
        if (i + 1 == n) return -1; /* trailing backslash */
        char c = s[i + 1];
        const char *hit = c ? strchr(names, c) : NULL;
        if (hit) {
            o[k++] = values[hit - names];
            i += 2;
        } else if (c == 'x') {
            if (i + 3 >= n || hex_val((unsigned char)s[i + 2]) < 0 || hex_val((unsigned char)s[i + 3]) < 0) return -1;
            o[k++] = (char)(hex_val((unsigned char)s[i + 2]) * 16 + hex_val((unsigned char)s[i + 3]));
            i += 4;
        } else if (c >= '0' && c <= '7') {
            unsigned v = 0;
            size_t j = i + 1;
            for (int d = 0; d < 3 && j < n && s[j] >= '0' && s[j] <= '7'; d++, j++) v = v * 8 + (unsigned)(s[j] - '0');
            o[k++] = (char)(v & 0xff);
            i = j;
        } else o[k++] = s[i++]; /* unknown escape: the backslash stays */
    }
    return (long)k;
}

/* STRING ('S'): a quoted Python 2 str literal; kept as raw bytes. */
static int op_string(Parser *P) {
    const char *s;
    size_t n;
    if (read_line(P, &s, &n)) return -1;
    if (n && s[n - 1] == '\r') n--;
    if (n < 2 || s[0] != s[n - 1] || (s[0] != '\'' && s[0] != '"'))
        return perr(P, "the STRING argument is not a quoted string literal");
    char *o = xmalloc(n);
    long k = escape_decode(s + 1, n - 2, o);
    if (k < 0) {
        free(o);
        return perr(P, "the STRING literal has a bad \\ escape");
    }
    PkNode *x = node_new(P, PK_STR);
    o[k] = 0;
    x->v.s = o;
    x->v.len = (size_t)k;
    x->raw = 1;
    push(P, x);
    return 0;
}

static int op_counted_str(Parser *P, int width, int is_signed, PickleType t, int check_utf8) {
    const unsigned char *s;
    size_t n;
    if (read_counted(P, width, is_signed, &s, &n)) return -1;
    if (check_utf8 && utf8_check(P, s, n)) return -1;
    PkNode *x = bytes_node(P, t, s, n);
    x->raw = t == PK_STR && !check_utf8;
    push(P, x);
    return 0;
}

/* The bytes a str stands for under latin-1 (raw Python 2 strs are already bytes). Caller frees. */
static int latin1_bytes(Parser *P, const PkNode *x, unsigned char **out, size_t *n) {
    const unsigned char *s = (const unsigned char *)x->v.s;
    unsigned char *o = xmalloc(x->v.len + 1);
    size_t k = 0;
    if (x->raw || x->v.type == PK_BYTES) {
        memcpy(o, s, x->v.len);
        k = x->v.len;
    } else {
        for (size_t i = 0; i < x->v.len;) {
            uint32_t cp = 0;
            if (utf8_next(s, x->v.len, &i, &cp) || cp > 0xff) {
                free(o);
                return perr(P, "the str (built at byte %zu) has a character beyond latin-1", x->offset);
            }
            o[k++] = (unsigned char)cp;
        }
    }
    *out = o;
    *n = k;
    return 0;
}

/* ---------------------------------------------------------------- numbers */
static int op_float_text(Parser *P) {
    const char *s;
    size_t n;
    char b[80];
    if (read_line(P, &s, &n)) return -1;
    if (n && s[n - 1] == '\r') n--;
    char tmp[64];
    char *end = NULL;
    double d = 0;
    if (n > 0 && n < sizeof tmp) {
        memcpy(tmp, s, n);
        tmp[n] = 0;
        d = strtod(tmp, &end);
    }
    if (!end || end == tmp || *end) return perr(P, "'%s' is not a float", show(s, n, b, sizeof b));
    PkNode *x = node_new(P, PK_FLOAT);
    x->v.f = d;
    push(P, x);
    return 0;
}

static int op_binfloat(Parser *P) {
    if (need(P, 8, "BINFLOAT")) return -1;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++) bits = bits << 8 | P->buf[P->pos + (size_t)i];
    P->pos += 8;
    PkNode *x = node_new(P, PK_FLOAT);
    memcpy(&x->v.f, &bits, 8);
    push(P, x);
    return 0;
}

/* Two's complement little-endian integer of n bytes (LONG1/LONG4) into int64. */
static int decode_long(Parser *P, const unsigned char *s, size_t n, int64_t *out) {
    if (n == 0) { *out = 0; return 0; }
    unsigned char fill = (s[n - 1] & 0x80) ? 0xff : 0;
    for (size_t i = 8; i < n; i++)
        if (s[i] != fill) return perr(P, "the %zu-byte integer does not fit in 64 bits", n);
    if (n > 8 && ((s[7] & 0x80) ? 0xff : 0) != fill) return perr(P, "the %zu-byte integer does not fit in 64 bits", n);
    uint64_t v = fill ? ~(uint64_t)0 : 0;
    for (size_t i = 0; i < n && i < 8; i++) {
        v &= ~((uint64_t)0xff << (8 * i));
        v |= (uint64_t)s[i] << (8 * i);
    }
    memcpy(out, &v, 8);
    return 0;
}

static int op_long_bin(Parser *P, int width) {
    const unsigned char *s = NULL;
    size_t n = 0;
    int64_t v = 0;
    if (read_counted(P, width, 1, &s, &n) || decode_long(P, s, n, &v)) return -1;
    push(P, int_node(P, v));
    return 0;
}

static int op_int_text(Parser *P) {
    const char *s;
    size_t n;
    size_t save = P->pos;
    if (read_line(P, &s, &n)) return -1;
    if (P->op == 'I' && n == 2 && s[0] == '0' && (s[1] == '0' || s[1] == '1')) {
        push(P, bool_node(P, s[1] == '1'));
        return 0;
    }
    P->pos = save;
    int64_t v;
    if (line_int(P, &v)) return -1;
    push(P, int_node(P, v));
    return 0;
}

static int op_int_bin(Parser *P, int width) {
    uint64_t u;
    if (read_le(P, width, &u)) return -1;
    int64_t v = width == 4 ? (int64_t)(int32_t)(uint32_t)u : (int64_t)u;
    push(P, int_node(P, v));
    return 0;
}

/* ---------------------------------------------------------------- memo */
static int memo_index_ok(Parser *P, uint64_t idx) {
    if (idx > P->len) return perr(P, "memo index %llu is implausibly large for a %zu-byte pickle", (unsigned long long)idx, P->len);
    return 0;
}

static int memo_put(Parser *P, uint64_t idx) {
    PkNode *x;
    if (memo_index_ok(P, idx) || top(P, &x)) return -1;
    if (idx >= P->memo_cap) {
        size_t cap = P->memo_cap ? P->memo_cap : 64;
        while (cap <= idx) cap *= 2;
        P->memo = xrealloc(P->memo, cap * sizeof *P->memo);
        memset(P->memo + P->memo_cap, 0, (cap - P->memo_cap) * sizeof *P->memo);
        P->memo_cap = cap;
    }
    if (!P->memo[idx]) P->memo_count++;
    P->memo[idx] = x;
    return 0;
}

static int memo_get(Parser *P, uint64_t idx) {
    if (idx >= P->memo_cap || !P->memo[idx]) return perr(P, "memo key %llu was never stored", (unsigned long long)idx);
    push(P, P->memo[idx]);
    return 0;
}

static int op_memo(Parser *P, int is_put, int width) {
    uint64_t idx;
    if (width == 0) {
        int64_t v;
        if (line_int(P, &v)) return -1;
        if (v < 0) return perr(P, "negative memo key %lld", (long long)v);
        idx = (uint64_t)v;
    } else if (read_le(P, width, &idx)) return -1;
    return is_put ? memo_put(P, idx) : memo_get(P, idx);
}

/* ---------------------------------------------------------------- containers */
static int op_append(Parser *P) {
    PkNode *v, *l;
    if (pop(P, &v) || top(P, &l)) return -1;
    if (l->kind != K_VALUE || l->v.type != PK_LIST) return perr(P, "APPEND to %s (only lists)", a_type(l));
    items_add(l, &v, 1);
    return 0;
}

static int op_appends(Parser *P) {
    PkNode **copy, *l;
    size_t n;
    if (pop_mark(P, &copy, &n)) return -1;
    int rc = top(P, &l);
    if (!rc && (l->kind != K_VALUE || l->v.type != PK_LIST)) rc = perr(P, "APPENDS to %s (only lists)", a_type(l));
    if (!rc) items_add(l, copy, n);
    free(copy);
    return rc;
}

static int key_ok(Parser *P, const PkNode *k) {
    if (k->kind != K_VALUE || k->v.type == PK_LIST || k->v.type == PK_DICT)
        return perr(P, "%s (built at byte %zu) cannot be a dict key", a_type(k), k->offset);
    return 0;
}

static int dict_add(Parser *P, PkNode *d, PkNode *const *kv, size_t n) {
    if (d->kind != K_VALUE || d->v.type != PK_DICT) return perr(P, "setting items of %s (only dicts)", a_type(d));
    if (n % 2) return perr(P, "an odd number (%zu) of keys and values", n);
    for (size_t i = 0; i < n; i += 2)
        if (key_ok(P, kv[i])) return -1;
    items_add(d, kv, n);
    return 0;
}

static int op_setitem(Parser *P) {
    PkNode *kv[2], *d;
    if (pop(P, &kv[1]) || pop(P, &kv[0]) || top(P, &d)) return -1;
    return dict_add(P, d, kv, 2);
}

static int op_setitems(Parser *P) {
    PkNode **copy, *d;
    size_t n;
    if (pop_mark(P, &copy, &n)) return -1;
    int rc = top(P, &d);
    if (!rc) rc = dict_add(P, d, copy, n);
    free(copy);
    return rc;
}

/* LIST, TUPLE, DICT: a new container of the items above the mark. */
static int op_from_mark(Parser *P, PickleType t) {
    PkNode **copy;
    size_t n;
    if (pop_mark(P, &copy, &n)) return -1;
    PkNode *c = node_new(P, t);
    int rc = 0;
    if (t == PK_DICT) rc = dict_add(P, c, copy, n);
    else items_add(c, copy, n);
    free(copy);
    if (!rc) push(P, c);
    return rc;
}

static int op_tuple_n(Parser *P, int n) {
    PkNode *it[3];
    if (avail(P) < (size_t)n) return perr(P, "needs %d items on the stack, it has %zu", n, avail(P));
    for (int i = n - 1; i >= 0; i--) pop(P, &it[i]);
    PkNode *c = node_new(P, PK_TUPLE);
    items_add(c, it, (size_t)n);
    push(P, c);
    return 0;
}

/* ---------------------------------------------------------------- globals */
static int find_global(Parser *P, const char *mod, size_t ml, const char *name, size_t nl) {
    static const struct { const char *mod, *name; int id; } allowed[] = {
        {"numpy.core.multiarray", "scalar", G_SCALAR}, {"numpy._core.multiarray", "scalar", G_SCALAR},
        {"numpy", "dtype", G_DTYPE}, {"_codecs", "encode", G_ENCODE}, {"collections", "OrderedDict", G_ODICT},
    };
    static const struct { const char *mod, *name; int id; } torch_allowed[] = {
        {"torch._utils", "_rebuild_tensor", G_REBUILD}, {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_V2},
        {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAM}, {"torch._utils", "_rebuild_parameter_with_state", G_REBUILD_PARAM},
        {"torch", "Size", G_SIZE},
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (strlen(allowed[i].mod) == ml && !memcmp(allowed[i].mod, mod, ml) && strlen(allowed[i].name) == nl &&
            !memcmp(allowed[i].name, name, nl)) {
            PkNode *g = node_new(P, PK_NONE);
            g->kind = K_GLOBAL;
            g->global = (unsigned char)allowed[i].id;
            push(P, g);
            return 0;
        }
    if (P->flags & PICKLE_TORCH) {
        for (size_t i = 0; i < sizeof torch_allowed / sizeof torch_allowed[0]; i++)
            if (strlen(torch_allowed[i].mod) == ml && !memcmp(torch_allowed[i].mod, mod, ml) &&
                strlen(torch_allowed[i].name) == nl && !memcmp(torch_allowed[i].name, name, nl)) {
                PkNode *g = node_new(P, PK_NONE);
                g->kind = K_GLOBAL;
                g->global = (unsigned char)torch_allowed[i].id;
                push(P, g);
                return 0;
            }
        for (size_t i = 0; ml == 5 && !memcmp(mod, "torch", 5) && i < N_STORAGE_TYPES; i++)
            if (strlen(STORAGE_TYPES[i].name) == nl && !memcmp(STORAGE_TYPES[i].name, name, nl)) {
                PkNode *g = node_new(P, PK_NONE);
                g->kind = K_GLOBAL;
                g->global = G_STORAGE_TYPE;
                g->st_type = (unsigned char)i;
                push(P, g);
                return 0;
            }
    }
    char a[100], b[100];
    if (P->flags & PICKLE_TORCH)
        return perr(P, "global '%s.%s' is not allowed (a state_dict checkpoint needs only collections.OrderedDict, "
                       "torch._utils' tensor rebuilders, torch.Size and torch.*Storage types; this reader never "
                       "executes code: re-save the model's state_dict() if the file pickles a whole model)",
                    show(mod, ml, a, sizeof a), show(name, nl, b, sizeof b));
    return perr(P, "global '%s.%s' is not allowed (this reader only accepts numpy scalars and dtypes, "
                   "_codecs.encode and collections.OrderedDict; it never executes code)",
                show(mod, ml, a, sizeof a), show(name, nl, b, sizeof b));
}

static int op_global(Parser *P) {
    const char *mod, *name;
    size_t ml, nl;
    if (read_line(P, &mod, &ml) || read_line(P, &name, &nl)) return -1;
    return find_global(P, mod, ml, name, nl);
}

static int op_stack_global(Parser *P) {
    PkNode *name, *mod;
    if (pop(P, &name) || pop(P, &mod)) return -1;
    if (name->kind != K_VALUE || name->v.type != PK_STR || mod->kind != K_VALUE || mod->v.type != PK_STR)
        return perr(P, "STACK_GLOBAL needs two str, got %s and %s", a_type(mod), a_type(name));
    return find_global(P, mod->v.s, mod->v.len, name->v.s, name->v.len);
}

static int is_intlike(const PkNode *x) { return x->kind == K_VALUE && (x->v.type == PK_INT || x->v.type == PK_BOOL); }
static int is_str(const PkNode *x) { return x->kind == K_VALUE && x->v.type == PK_STR; }

/* numpy.dtype(code, align, copy): 'i1'..'i8', 'u1'..'u8', 'f4', 'f8', 'b1' (optional byte order). */
static int make_dtype(Parser *P, const PkNode *args, PkNode **out) {
    char b[40];
    if (args->v.n < 1 || args->v.n > 3 || !is_str(item(args, 0)))
        return perr(P, "numpy.dtype needs (code, align, copy), got %zu arguments", args->v.n);
    for (size_t i = 1; i < args->v.n; i++)
        if (!is_intlike(item(args, i))) return perr(P, "numpy.dtype argument %zu is %s, expected int", i, a_type(item(args, i)));
    const char *c = item(args, 0)->v.s;
    size_t n = item(args, 0)->v.len;
    int big = 0;
    if (n && strchr("<>|=", c[0])) { big = c[0] == '>'; c++; n--; }
    int ok = n == 2 && strchr("iufb", c[0]) && c[0] && strchr("1248", c[1]) && c[1];
    if (ok && c[0] == 'f') ok = c[1] == '4' || c[1] == '8';
    if (ok && c[0] == 'b') ok = c[1] == '1';
    if (!ok) return perr(P, "numpy dtype '%s' is not supported (only integer, bool and float scalars)",
                         show(item(args, 0)->v.s, item(args, 0)->v.len, b, sizeof b));
    PkNode *d = node_new(P, PK_NONE);
    d->kind = K_DTYPE;
    d->dt_kind = c[0];
    d->dt_size = (unsigned char)(c[1] - '0');
    d->dt_big = (unsigned char)big;
    *out = d;
    return 0;
}

/* BUILD on a dtype: the state tuple (version, byteorder, ...) sets the byte order. */
static int build_dtype(Parser *P, PkNode *d, const PkNode *state) {
    if (state->kind != K_VALUE || state->v.type != PK_TUPLE || state->v.n < 2 || !is_str(item(state, 1)) ||
        item(state, 1)->v.len != 1 || !strchr("<>|=", item(state, 1)->v.s[0]))
        return perr(P, "the numpy.dtype state is not (version, byteorder, ...)");
    if (d->dt_built) return perr(P, "the numpy.dtype (built at byte %zu) already has a state", d->offset);
    d->dt_big = item(state, 1)->v.s[0] == '>';
    d->dt_built = 1;
    return 0;
}

/* numpy.core.multiarray.scalar(dtype, bytes) -> int, float or bool. */
static int make_scalar(Parser *P, const PkNode *args, PkNode **out) {
    if (args->v.n != 2 || item(args, 0)->kind != K_DTYPE)
        return perr(P, "numpy scalar needs (dtype, bytes), got %zu arguments", args->v.n);
    const PkNode *d = item(args, 0), *data = item(args, 1);
    if (data->kind != K_VALUE || (data->v.type != PK_STR && data->v.type != PK_BYTES))
        return perr(P, "numpy scalar data is %s, expected bytes", a_type(data));
    unsigned char *raw;
    size_t n;
    if (latin1_bytes(P, data, &raw, &n)) return -1;
    if (n != d->dt_size) {
        free(raw);
        return perr(P, "numpy scalar of dtype %c%d needs %d bytes, got %zu", d->dt_kind, d->dt_size, d->dt_size, n);
    }
    uint64_t u = 0;
    for (size_t i = 0; i < n; i++) u |= (uint64_t)raw[d->dt_big ? n - 1 - i : i] << (8 * i);
    free(raw);
    if (d->dt_kind == 'f') {
        PkNode *x = node_new(P, PK_FLOAT);
        if (n == 8) memcpy(&x->v.f, &u, 8);
        else { uint32_t w = (uint32_t)u; float f; memcpy(&f, &w, 4); x->v.f = f; }
        *out = x;
    } else if (d->dt_kind == 'b') *out = bool_node(P, u != 0);
    else {
        int64_t v;
        if (d->dt_kind == 'i' && n < 8 && (u >> (8 * n - 1)) & 1) u |= ~(uint64_t)0 << (8 * n);
        if (d->dt_kind == 'u' && u > (uint64_t)INT64_MAX) return perr(P, "numpy uint64 value %llu does not fit in int64", (unsigned long long)u);
        memcpy(&v, &u, 8);
        *out = int_node(P, v);
    }
    return 0;
}

/* _codecs.encode(str, 'latin1') -> bytes (how protocol 2 stores a numpy scalar's data). */
static int make_encode(Parser *P, const PkNode *args, PkNode **out) {
    char b[40];
    if (args->v.n != 2 || !is_str(item(args, 0)) || !is_str(item(args, 1)))
        return perr(P, "_codecs.encode needs (str, encoding)");
    const char *enc = item(args, 1)->v.s;
    if (strcmp(enc, "latin1") && strcmp(enc, "latin-1") && strcmp(enc, "iso-8859-1") && strcmp(enc, "iso8859-1"))
        return perr(P, "_codecs.encode with encoding '%s' is not supported (only latin1)",
                    show(enc, item(args, 1)->v.len, b, sizeof b));
    unsigned char *raw;
    size_t n;
    if (latin1_bytes(P, item(args, 0), &raw, &n)) return -1;
    *out = bytes_node(P, PK_BYTES, raw, n);
    free(raw);
    return 0;
}

/* collections.OrderedDict() or OrderedDict([[key, value], ...]) -> dict. */
static int make_odict(Parser *P, const PkNode *args, PkNode **out) {
    if (args->v.n > 1) return perr(P, "OrderedDict takes at most one argument, got %zu", args->v.n);
    PkNode *d = node_new(P, PK_DICT);
    if (args->v.n == 1) {
        const PkNode *pairs = item(args, 0);
        if (pairs->kind != K_VALUE || (pairs->v.type != PK_LIST && pairs->v.type != PK_TUPLE))
            return perr(P, "OrderedDict argument is %s, expected a list of pairs", a_type(pairs));
        for (size_t i = 0; i < pairs->v.n; i++) {
            const PkNode *pr = item(pairs, i);
            if (pr->kind != K_VALUE || (pr->v.type != PK_LIST && pr->v.type != PK_TUPLE) || pr->v.n != 2)
                return perr(P, "OrderedDict item %zu is not a (key, value) pair", i);
            PkNode *kv[2] = {item(pr, 0), item(pr, 1)};
            if (dict_add(P, d, kv, 2)) return -1;
        }
    }
    *out = d;
    return 0;
}

/* ---------------------------------------------------------------- torch.save's object pickle */
static int str_or_bytes(const PkNode *x) { return x->kind == K_VALUE && (x->v.type == PK_STR || x->v.type == PK_BYTES); }

/* BINPERSID: ('storage', torch.XStorage, key, location, numel[, view_metadata]) -> a storage. */
static int op_persid(Parser *P) {
    PkNode *pid;
    if (pop(P, &pid)) return -1;
    if (!(P->flags & PICKLE_TORCH)) return perr(P, "persistent ids are not supported (this is not a plain-data pickle)");
    if (pid->kind != K_VALUE || pid->v.type != PK_TUPLE || pid->v.n < 1 || !str_or_bytes(item(pid, 0)))
        return perr(P, "the persistent id is %s, expected a tuple ('storage', ...)", a_type(pid));
    const char *kind = item(pid, 0)->v.s;
    if (!strcmp(kind, "module"))
        return perr(P, "the checkpoint pickles a whole nn.Module (torch.save(model)); re-save model.state_dict() with torch");
    if (strcmp(kind, "storage")) return perr(P, "unknown persistent id type '%.40s'", kind);
    if (pid->v.n != 5 && pid->v.n != 6) return perr(P, "a storage persistent id has %zu fields, expected 5 or 6", pid->v.n);
    const PkNode *ty = item(pid, 1), *key = item(pid, 2), *numel = item(pid, 4);
    if (ty->kind != K_GLOBAL || ty->global != G_STORAGE_TYPE) return perr(P, "the storage type is %s, expected torch.*Storage", a_type(ty));
    if (!str_or_bytes(key) && !(key->kind == K_VALUE && key->v.type == PK_INT)) return perr(P, "the storage key is %s", a_type(key));
    if (!(numel->kind == K_VALUE && numel->v.type == PK_INT) || numel->v.i < 0)
        return perr(P, "the storage size is %s, expected an int >= 0", a_type(numel));
    PkNode *st = node_new(P, PK_NONE);
    st->kind = K_STORAGE;
    PickleTensor *t = st->v.tensor = xcalloc(1, sizeof *t);
    snprintf(t->dtype, sizeof t->dtype, "%s", STORAGE_TYPES[ty->st_type].dtype);
    t->elem_size = STORAGE_TYPES[ty->st_type].size;
    char kb[32];
    if (key->v.type == PK_INT) snprintf(kb, sizeof kb, "%lld", (long long)key->v.i);
    t->key = xstrdup(key->v.type == PK_INT ? kb : key->v.s);
    t->storage_numel = numel->v.i;
    if (pid->v.n == 6 && !(item(pid, 5)->kind == K_VALUE && item(pid, 5)->v.type == PK_NONE)) { /* legacy view: (view_key, offset, size) */
        const PkNode *vw = item(pid, 5);
        if (vw->kind != K_VALUE || vw->v.type != PK_TUPLE || vw->v.n != 3 || item(vw, 1)->v.type != PK_INT ||
            item(vw, 2)->v.type != PK_INT || item(vw, 1)->v.i < 0 || item(vw, 2)->v.i < 0 ||
            item(vw, 1)->v.i > numel->v.i - item(vw, 2)->v.i)
            return perr(P, "the storage view of '%.40s' is not (key, offset, size) inside its %lld elements", t->key,
                        (long long)numel->v.i);
        t->view_offset = item(vw, 1)->v.i;
        t->storage_numel = item(vw, 2)->v.i;
    }
    push(P, st);
    return 0;
}

/* a tuple of ints >= 0 (torch.Size or a plain tuple) into dims; -1 with the message */
static int dims_of(Parser *P, const PkNode *x, const char *what, int64_t *dims, int *nd) {
    if (x->kind != K_VALUE || (x->v.type != PK_TUPLE && x->v.type != PK_LIST)) return perr(P, "the tensor %s is %s, expected a tuple", what, a_type(x));
    if (x->v.n > PICKLE_MAX_DIMS) return perr(P, "the tensor has %zu dimensions, at most %d are supported", x->v.n, PICKLE_MAX_DIMS);
    for (size_t i = 0; i < x->v.n; i++) {
        const PkNode *d = item(x, i);
        if (d->kind != K_VALUE || d->v.type != PK_INT || d->v.i < 0 || d->v.i > ((int64_t)1 << 40))
            return perr(P, "the tensor %s has item %zu = %s, expected an int in 0..2^40", what, i, a_type(d));
        dims[i] = d->v.i;
    }
    *nd = (int)x->v.n;
    return 0;
}

/* _rebuild_tensor(storage, offset, size, stride) and _v2 (+ requires_grad, hooks[, metadata]) */
static int make_tensor(Parser *P, const PkNode *fn, const PkNode *args, PkNode **out) {
    size_t n = args->v.n;
    if (fn->global == G_REBUILD ? n != 4 : (n < 6 || n > 7))
        return perr(P, "%s takes %s arguments, got %zu", GLOBAL_NAMES[fn->global], fn->global == G_REBUILD ? "4" : "6 or 7", n);
    const PkNode *st = item(args, 0), *off = item(args, 1);
    if (st->kind != K_STORAGE) return perr(P, "%s: the storage is %s (a persistent id of torch.save expected)", GLOBAL_NAMES[fn->global], a_type(st));
    if (off->kind != K_VALUE || off->v.type != PK_INT || off->v.i < 0) return perr(P, "the storage offset is %s, expected an int >= 0", a_type(off));
    PkNode *x = node_new(P, PK_TENSOR);
    PickleTensor *t = x->v.tensor = xmalloc(sizeof *t);
    *t = *st->v.tensor;
    t->key = xstrdup(st->v.tensor->key);
    t->offset = off->v.i;
    int ns;
    if (dims_of(P, item(args, 2), "size", t->shape, &t->ndim) || dims_of(P, item(args, 3), "stride", t->stride, &ns)) return -1;
    if (ns != t->ndim) return perr(P, "the tensor has %d sizes and %d strides", t->ndim, ns);
    int64_t last = t->offset, empty = 0, numel = 1, step;
    int over = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] == 0) empty = 1;
        else over |= __builtin_mul_overflow(t->shape[d] - 1, t->stride[d], &step) || __builtin_add_overflow(last, step, &last);
        over |= __builtin_mul_overflow(numel, t->shape[d], &numel);
    }
    if (over || numel > ((int64_t)1 << 34))
        return perr(P, "the tensor's size or strides are out of range (more than 2^34 elements, or an offset past 2^63)");
    if (!empty && last >= t->storage_numel)
        return perr(P, "the tensor reaches element %lld of its storage '%.40s' of %lld elements", (long long)last, t->key,
                    (long long)t->storage_numel);
    *out = x;
    return 0;
}

static int op_reduce(Parser *P) {
    PkNode *args, *fn, *res = NULL;
    if (pop(P, &args) || pop(P, &fn)) return -1;
    if (fn->kind != K_GLOBAL) return perr(P, "REDUCE calls %s (only the allowed globals can be called)", a_type(fn));
    if (args->kind != K_VALUE || args->v.type != PK_TUPLE) return perr(P, "REDUCE arguments are %s, expected a tuple", a_type(args));
    int rc;
    switch (fn->global) {
    case G_REBUILD: case G_REBUILD_V2: rc = make_tensor(P, fn, args, &res); break;
    case G_REBUILD_PARAM: /* _rebuild_parameter(data, requires_grad, hooks[, state]): the data */
        if (args->v.n < 3 || args->v.n > 4 || item(args, 0)->v.type != PK_TENSOR || item(args, 0)->kind != K_VALUE)
            return perr(P, "_rebuild_parameter needs (tensor, requires_grad, hooks[, state])");
        res = item(args, 0);
        rc = 0;
        break;
    case G_SIZE: /* torch.Size((d0, d1, ...)) -> the tuple */
        if (args->v.n != 1 || item(args, 0)->kind != K_VALUE || item(args, 0)->v.type != PK_TUPLE)
            return perr(P, "torch.Size needs one tuple");
        res = item(args, 0);
        rc = 0;
        break;
    case G_STORAGE_TYPE: return perr(P, "%s is only a storage type of persistent ids; it cannot be called", a_type(fn));
    default:
        rc = fn->global == G_SCALAR ? make_scalar(P, args, &res)
           : fn->global == G_DTYPE  ? make_dtype(P, args, &res)
           : fn->global == G_ENCODE ? make_encode(P, args, &res)
                                    : make_odict(P, args, &res);
    }
    if (!rc) push(P, res);
    return rc;
}

static int op_newobj(Parser *P) {
    PkNode *args, *cls;
    if (pop(P, &args) || pop(P, &cls)) return -1;
    if (cls->kind != K_GLOBAL || cls->global != G_ODICT || args->kind != K_VALUE || args->v.type != PK_TUPLE || args->v.n)
        return perr(P, "NEWOBJ is only supported as OrderedDict.__new__(OrderedDict), not on %s", a_type(cls));
    push(P, node_new(P, PK_DICT));
    return 0;
}

static int op_build(Parser *P) {
    PkNode *state, *inst;
    if (pop(P, &state) || top(P, &inst)) return -1;
    if (inst->kind == K_DTYPE) return build_dtype(P, inst, state);
    if ((P->flags & PICKLE_TORCH) && inst->kind == K_VALUE && inst->v.type == PK_DICT) return 0; /* _metadata etc. */
    return perr(P, "BUILD on %s is not supported (only numpy.dtype)", a_type(inst));
}

/* ---------------------------------------------------------------- the machine */
static int op_small(Parser *P, int *stop) {
    PkNode *x;
    switch (P->op) {
    case '(': mark(P); return 0;
    case '.': *stop = 1; return 0;
    case '0':
        if (avail(P)) { P->sp--; return 0; }
        return drop_mark(P); /* POP with an empty stack drops the mark, as in Python */
    case '1': return drop_mark(P);
    case '2': if (top(P, &x)) return -1; push(P, x); return 0;
    case 'N': if (!P->none) P->none = node_new(P, PK_NONE); push(P, P->none); return 0;
    case 0x88: case 0x89: push(P, bool_node(P, P->op == 0x88)); return 0;
    case ']': push(P, node_new(P, PK_LIST)); return 0;
    case '}': push(P, node_new(P, PK_DICT)); return 0;
    case ')': push(P, node_new(P, PK_TUPLE)); return 0;
    case 0x85: case 0x86: case 0x87: return op_tuple_n(P, P->op - 0x84);
    case 'l': return op_from_mark(P, PK_LIST);
    case 't': return op_from_mark(P, PK_TUPLE);
    case 'd': return op_from_mark(P, PK_DICT);
    case 'a': return op_append(P);
    case 'e': return op_appends(P);
    case 's': return op_setitem(P);
    case 'u': return op_setitems(P);
    default: return 1; /* not handled here */
    }
}

static int op_args(Parser *P) {
    uint64_t v;
    switch (P->op) {
    case 'I': case 'L': return op_int_text(P);
    case 'J': return op_int_bin(P, 4);
    case 'K': return op_int_bin(P, 1);
    case 'M': return op_int_bin(P, 2);
    case 0x8a: return op_long_bin(P, 1);
    case 0x8b: return op_long_bin(P, 4);
    case 'F': return op_float_text(P);
    case 'G': return op_binfloat(P);
    case 'S': return op_string(P);
    case 'T': return op_counted_str(P, 4, 1, PK_STR, 0);
    case 'U': return op_counted_str(P, 1, 0, PK_STR, 0);
    case 'V': return op_unicode(P);
    case 'X': return op_counted_str(P, 4, 0, PK_STR, 1);
    case 0x8c: return op_counted_str(P, 1, 0, PK_STR, 1);
    case 0x8d: return op_counted_str(P, 8, 0, PK_STR, 1);
    case 'B': return op_counted_str(P, 4, 0, PK_BYTES, 0);
    case 'C': return op_counted_str(P, 1, 0, PK_BYTES, 0);
    case 0x8e: return op_counted_str(P, 8, 0, PK_BYTES, 0);
    case 'p': return op_memo(P, 1, 0);
    case 'q': return op_memo(P, 1, 1);
    case 'r': return op_memo(P, 1, 4);
    case 'g': return op_memo(P, 0, 0);
    case 'h': return op_memo(P, 0, 1);
    case 'j': return op_memo(P, 0, 4);
    case 0x94: return memo_put(P, P->memo_count);
    case 0x80:
        if (read_le(P, 1, &v)) return -1;
        if (v > 5) return perr(P, "unsupported pickle protocol %llu", (unsigned long long)v);
        return 0;
    case 0x95:
        if (read_le(P, 8, &v)) return -1;
        if (v > P->len - P->pos) return perr(P, "truncated: a frame of %llu bytes exceeds the %zu bytes left", (unsigned long long)v, P->len - P->pos);
        return 0;
    case 'c': return op_global(P);
    case 0x93: return op_stack_global(P);
    case 'R': return op_reduce(P);
    case 'Q': return op_persid(P);
    case 'b': return op_build(P);
    case 0x81: return op_newobj(P);
    default: break;
    }
    if (op_name(P->op)) return perr(P, "opcode %s is not supported: it builds objects this reader does not create", op_name(P->op));
    return perr(P, "unknown opcode 0x%02x", P->op);
}

/* After STOP: the result must be acyclic, at most PICKLE_MAX_DEPTH deep, plain data only. */
static int validate(Parser *P, PkNode *root) {
    typedef struct { PkNode *n; size_t i; } Frame;
    Frame *st = xmalloc((PICKLE_MAX_DEPTH + 2) * sizeof *st);
    size_t d = 0;
    int rc = 0;
    st[d++] = (Frame){root, 0};
    root->color = 1;
    while (d && !rc) {
        Frame *f = &st[d - 1];
        PkNode *n = f->n;
        if (n->kind != K_VALUE) {
            rc = err_set("%s: the %s built at byte %zu is left in the result (only numpy scalars and tensors are converted)",
                         P->name, type_name(n), n->offset);
            break;
        }
        if (f->i == n->v.n) {
            n->color = 2;
            n->height = 1;
            for (size_t i = 0; i < n->v.n; i++)
                if (item(n, i)->height + 1 > n->height) n->height = item(n, i)->height + 1;
            d--;
            continue;
        }
        PkNode *c = item(n, f->i++);
        if (c->color == 2) continue;
        if (c->color == 1) {
            rc = err_set("%s: the %s built at byte %zu contains itself", P->name, type_name(c), c->offset);
        } else if (d > PICKLE_MAX_DEPTH) {
            rc = err_set("%s: values nested more than %d deep", P->name, PICKLE_MAX_DEPTH);
        } else {
            c->color = 1;
            st[d++] = (Frame){c, 0};
        }
    }
    free(st);
    return rc;
}

static int run(Parser *P, PkNode **result) {
    for (;;) {
        if (P->pos >= P->len) {
            P->op_at = P->pos;
            return err_set("%s: byte %zu: truncated: the pickle ends without STOP", P->name, P->pos);
        }
        if (P->n_nodes > PICKLE_MAX_NODES) return perr(P, "more than %zu values", PICKLE_MAX_NODES);
        P->op_at = P->pos;
        P->op = P->buf[P->pos++];
        int stop = 0;
        int rc = op_small(P, &stop);
        if (rc == 1) rc = op_args(P);
        if (rc) return -1;
        if (stop) break;
    }
    if (pop(P, result)) return -1;
    if (P->pos != P->len && !(P->flags & PICKLE_PREFIX)) return perr(P, "%zu bytes follow STOP", P->len - P->pos);
    return validate(P, *result);
}

int pickle_parse(const unsigned char *buf, size_t len, const char *name, PickleValue **out) {
    return pickle_parse_ex(buf, len, name, 0, NULL, out);
}

int pickle_parse_ex(const unsigned char *buf, size_t len, const char *name, int flags, size_t *consumed, PickleValue **out) {
    Parser P = {.buf = buf, .len = len, .name = name ? name : "pickle", .flags = flags};
    PkNode *root = NULL;
    *out = NULL;
    int rc = run(&P, &root);
    if (consumed) *consumed = P.pos;
    free(P.stack);
    free(P.marks);
    free(P.memo);
    free(P.ints);
    if (rc) {
        node_free_list(P.nodes);
        return -1;
    }
    root->owned = P.nodes;
    *out = &root->v;
    return 0;
}

int pickle_load(const char *path, PickleValue **out) {
    *out = NULL;
    size_t len;
    unsigned char *buf = read_file_bytes(path, PICKLE_MAX_FILE, &len);
    if (!buf) return -1;
    int rc = pickle_parse(buf, len, path, out);
    free(buf);
    return rc;
}

void pickle_free(PickleValue *v) {
    if (!v) return;
    PkNode *root = (PkNode *)v;
    CHECK(root->owned, "pickle_free takes the value returned by pickle_load/pickle_parse, not a part of it");
    node_free_list(root->owned);
}

/* ---------------------------------------------------------------- typed views */
static const char *value_a_type(const PickleValue *v) { return a_type((const PkNode *)v); }

static int check_seq(const PickleValue *v, const char *what) {
    if (v->type != PK_LIST && v->type != PK_TUPLE) return err_set("%s: the value is %s, expected a list", what, value_a_type(v));
    return 0;
}

int pickle_str_list(const PickleValue *v, const char *what, char ***out, size_t *n) {
    *out = NULL;
    *n = 0;
    if (check_seq(v, what)) return -1;
    char **list = xcalloc(v->n ? v->n : 1, sizeof *list);
    for (size_t i = 0; i < v->n; i++) {
        const PickleValue *it = v->items[i];
        if (it->type != PK_STR) {
            pickle_free_str_list(list, i);
            return err_set("%s: item %zu is %s, expected str", what, i, value_a_type(it));
        }
        if (strlen(it->s) != it->len) {
            pickle_free_str_list(list, i);
            return err_set("%s: item %zu contains a NUL character", what, i);
        }
        list[i] = xstrdup(it->s);
    }
    *out = list;
    *n = v->n;
    return 0;
}

int pickle_int_list(const PickleValue *v, const char *what, int64_t **out, size_t *n) {
    *out = NULL;
    *n = 0;
    if (check_seq(v, what)) return -1;
    int64_t *list = xmalloc((v->n ? v->n : 1) * sizeof *list);
    for (size_t i = 0; i < v->n; i++) {
        if (v->items[i]->type != PK_INT) {
            free(list);
            return err_set("%s: item %zu is %s, expected int", what, i, value_a_type(v->items[i]));
        }
        list[i] = v->items[i]->i;
    }
    *out = list;
    *n = v->n;
    return 0;
}

void pickle_free_str_list(char **list, size_t n) {
    if (!list) return;
    for (size_t i = 0; i < n; i++) free(list[i]);
    free(list);
}
