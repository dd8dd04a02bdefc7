/* SPDX-License-Identifier: MIT */
/**
 * @file error.h
 * @brief Status codes and the caller-owned error record.
 *
 * Every fallible segmint function returns an `int`: SM_OK (0) or one of the
 * negative sm_status codes below. Library codes never mix with errno or LMDB
 * codes; those are kept in sm_error.cause. An sm_error is optional (pass NULL
 * to ignore details), owned by the caller, and needs no global state, so it
 * is safe to use one per thread.
 */
#ifndef SEGMINT_ERROR_H
#define SEGMINT_ERROR_H

#include <stddef.h>
#include <stdint.h>

#include "segmint/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Status codes. Negative so that they never collide with counts. */
typedef enum sm_status {
    SM_OK = 0,
    SM_ERR_NOMEM = -1,         /**< an allocation failed */
    SM_ERR_INVALID_ARG = -2,   /**< a parameter is out of its documented range */
    SM_ERR_PARSE = -3,         /**< input text is malformed (path:line:column set) */
    SM_ERR_IO = -4,            /**< a file operation failed (cause = errno) */
    SM_ERR_STORAGE = -5,       /**< the LMDB store failed or is corrupt (cause = LMDB code) */
    SM_ERR_NUMERIC = -6,       /**< NaN/inf in input, or a computation did not converge */
    SM_ERR_INVALID_STATE = -7, /**< object used out of order or after a failure */
    SM_ERR_CANCELLED = -8,     /**< the progress callback asked to stop */
    SM_ERR_OVERFLOW = -9,      /**< a size or count does not fit its type */
    SM_ERR_EXISTS = -10,       /**< refusing to overwrite or re-import (use force) */
    SM_ERR_NOT_FOUND = -11,    /**< a named file, run, column or key does not exist */
    SM_ERR_SCHEMA = -12        /**< store schema unknown or newer than this build */
} sm_status;

#define SM_ERROR_MSG_MAX 256
#define SM_ERROR_PATH_MAX 512
#define SM_ERROR_FIELD_MAX 64

/**
 * Details of the last failure of a call. Filled only on failure.
 * line and column are 1-based; 0 means "not about a position in an input".
 */
typedef struct sm_error {
    int code;                          /**< an sm_status */
    int cause;                         /**< errno or LMDB code behind it, 0 if none */
    uint64_t line;                     /**< input line, 1-based; 0 = none */
    uint32_t column;                   /**< input column (field index for CSV), 1-based; 0 = none */
    char path[SM_ERROR_PATH_MAX];      /**< file or store the error is about; "" = none */
    char field[SM_ERROR_FIELD_MAX];    /**< field or parameter name; "" = none */
    char msg[SM_ERROR_MSG_MAX];        /**< human message without the location prefix */
} sm_error;

/** Static English text for a status code ("out of memory"). Never NULL. */
SM_API const char *sm_strerror(int code);

/** Resets an error record to "no error". Accepts NULL. */
SM_API void sm_error_clear(sm_error *err);

/**
 * Renders `err` in compiler style so editors can jump to it:
 * `path:line:column: field "X": message`, omitting the parts that are unset.
 * Always NUL-terminates when len > 0.
 * @return the number of characters the full text needs (like snprintf).
 */
SM_API int sm_error_format(const sm_error *err, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* SEGMINT_ERROR_H */
