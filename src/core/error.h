/* error.h: error reporting for the whole program.
 *
 * Two kinds of failure:
 *  - bugs and violated preconditions (wrong shapes, NULL where not allowed): CHECK/FAIL print
 *    file:line and a message, then abort. They never depend on user input.
 *  - bad input (files, configs, flags): functions return -1 after err_set() stored a human
 *    message; callers add context with err_prefix() and the program prints err_msg().
 */
#ifndef ATTNGAN_ERROR_H
#define ATTNGAN_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#if defined(__GNUC__)
#define ATTR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define ATTR_NORETURN __attribute__((noreturn))
#else
#define ATTR_PRINTF(a, b)
#define ATTR_NORETURN
#endif

void fail_at(const char *file, int line, const char *fmt, ...) ATTR_PRINTF(3, 4) ATTR_NORETURN;
void check_failed(const char *file, int line, const char *cond, const char *fmt, ...) ATTR_PRINTF(4, 5) ATTR_NORETURN;

#define FAIL(...) fail_at(__FILE__, __LINE__, __VA_ARGS__)
/* CHECK(cond, fmt, ...): the message is required and says what is wrong in the caller's terms. */
#define CHECK(cond, ...) do { if (!(cond)) check_failed(__FILE__, __LINE__, #cond, __VA_ARGS__); } while (0)

/* Thread-local last error message for recoverable errors. Always returns -1. */
int err_set(const char *fmt, ...) ATTR_PRINTF(1, 2);
/* Prepends "<prefix>: " to the current message. Always returns -1. */
int err_prefix(const char *fmt, ...) ATTR_PRINTF(1, 2);
const char *err_msg(void);
void err_clear(void);

/* Allocation that never returns NULL (out of memory is fatal). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

#endif
