/* files.h: small file-system helpers: directories, whole files written atomically (a temporary
 * file, fsync, rename: a reader sees the old file or the new one, never a part), read whole.
 * Used by training (checkpoints), evaluation (reports), generation and the commands. */
#ifndef ATTNGAN_FILES_H
#define ATTNGAN_FILES_H

#include <stddef.h>

/* mkdir -p; 0 or -1 with err_msg(). */
int mkdir_p(const char *path);
/* fsync of a file or directory by path; 0 or -1 with err_msg(). */
int files_fsync(const char *path);
/* Writes a whole file atomically (temp, fsync, rename). */
int write_file_atomic(const char *path, const void *data, size_t len);
/* Copies a file to dst atomically (temp, fsync, rename); 0 or -1 with err_msg() naming the file. */
int copy_file_atomic(const char *src, const char *dst);
/* The whole of a file ("-": stdin) in one malloc'ed block, its length in *len, followed by a NUL
 * that *len does not count; NULL with err_msg() naming the file when it cannot be opened or read,
 * holds more than max_bytes (a regular file is refused by its size before anything is read), or
 * does not fit in memory. Never aborts: the readers of untrusted files (pickle, pth) use it. */
void *read_file_bytes(const char *path, size_t max_bytes, size_t *len);
/* The same as a NUL-terminated string, for text files. */
char *read_file_all(const char *path, size_t max_bytes);

#endif
