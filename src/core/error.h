/* error.h — one error record per call chain: every fallible function takes a
 * dm_error * and, on failure, fills it with a message that names the file,
 * the line or key, and what was expected, then returns -1. */
#ifndef DISTILMD_ERROR_H
#define DISTILMD_ERROR_H

#include <stddef.h>

#define DM_ERROR_MSG_MAX 1024

typedef struct dm_error {
    char msg[DM_ERROR_MSG_MAX];
} dm_error;

/* Formats the message into err (if err is non-NULL) and returns -1, so that a
 * caller can write `return dm_fail(err, "...", ...);`. */
int dm_fail(dm_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Prepends "prefix: " to an existing message (adds context on the way up). */
int dm_error_prefix(dm_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
