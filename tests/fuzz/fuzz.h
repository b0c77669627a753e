/* fuzz.h: what the harnesses in tests/fuzz/ share (fuzz_util.c).
 *
 * Each harness defines LLVMFuzzerTestOneInput (and may define LLVMFuzzerInitialize). It is linked
 * two ways: with libFuzzer by clang (`make fuzz`, tests/fuzz/fuzz.mk), and with replay.c by the
 * normal build, which runs every file of tests/fuzz/corpus/<name>/ and tests/fuzz/regress/<name>/
 * through it as a unit test. A harness must not leak, print on success, or depend on the order of
 * the inputs: each input is parsed from scratch. */
#ifndef ATTNGAN_FUZZ_H
#define ATTNGAN_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* This process's scratch directory (created on first use under $TMPDIR, /dev/shm or /tmp, and
 * removed at exit). */
const char *fuzz_tmpdir(void);
/* Writes data to <tmpdir>/<name> (name may hold '/': directories are made); returns the path
 * (static buffer, valid until the next call). Fatal if it cannot. */
const char *fuzz_write(const char *name, const void *data, size_t size);
/* Empties the scratch directory. */
void fuzz_clear(void);
/* The input as a NUL-terminated malloc'ed string (bytes after an embedded NUL are ignored by the
 * callee, as they would be in a C string). */
char *fuzz_cstr(const uint8_t *data, size_t size);

/* A directory tree packed in one input, for the directory loaders: entries
 *     "@@ relative/path\n" followed by the file's bytes up to the next "\n@@ " (or the end).
 * Paths may use [A-Za-z0-9._-] and '/', no "..", no empty part, at most 8 parts; others are
 * skipped, as is anything before the first "@@ ". Unpacks into an emptied <tmpdir>/tree and
 * returns that path (static), with at most 256 files. */
const char *fuzz_unpack_tree(const uint8_t *data, size_t size);

#endif
