/* SPDX-License-Identifier: MIT */
/*
 * Error records, status texts and the checked allocator behind core.h.
 * The allocator keeps one process-wide counter only for the fault-injection
 * hook; it is atomic so OpenMP workers may allocate.
 */
#include "kernels/core.h"

#include <malloc.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

const char *sm_strerror(int code)
{
    switch (code) {
    case SM_OK: return "success";
    case SM_ERR_NOMEM: return "out of memory";
    case SM_ERR_INVALID_ARG: return "invalid argument";
    case SM_ERR_PARSE: return "malformed input";
    case SM_ERR_IO: return "input/output error";
    case SM_ERR_STORAGE: return "storage error";
    case SM_ERR_NUMERIC: return "numeric error";
    case SM_ERR_INVALID_STATE: return "invalid state";
    case SM_ERR_CANCELLED: return "cancelled";
    case SM_ERR_OVERFLOW: return "size overflow";
    case SM_ERR_EXISTS: return "already exists";
    case SM_ERR_NOT_FOUND: return "not found";
    case SM_ERR_SCHEMA: return "unsupported store schema";
    default: return "unknown error";
    }
}

void sm_error_clear(sm_error *err)
{
    if (err != NULL)
        memset(err, 0, sizeof *err);
}

/* Copies at most cap-1 bytes and always terminates; truncation of a message
 * is acceptable, of data it would not be. */
static void copy_text(char *dst, size_t cap, const char *src)
{
    if (src == NULL) {
        dst[0] = '\0';
        return;
    }
    size_t len = strlen(src);
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void set_message(sm_error *err, const char *fmt, va_list ap)
{
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
}

int sm_error_set(sm_error *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    sm_error_clear(err);
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    set_message(err, fmt, ap);
    va_end(ap);
    return code;
}

int sm_error_set_at(sm_error *err, int code, const char *path, uint64_t line, uint32_t column,
                    const char *field, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    sm_error_clear(err);
    err->code = code;
    err->line = line;
    err->column = column;
    copy_text(err->path, sizeof err->path, path);
    copy_text(err->field, sizeof err->field, field);
    va_list ap;
    va_start(ap, fmt);
    set_message(err, fmt, ap);
    va_end(ap);
    return code;
}

void sm_error_set_cause(sm_error *err, int cause)
{
    if (err != NULL)
        err->cause = cause;
}

int sm_error_format(const sm_error *err, char *buf, size_t len)
{
    if (err == NULL)
        return snprintf(buf, len, "%s", "");
    char location[SM_ERROR_PATH_MAX + 48] = "";
    if (err->path[0] != '\0') {
        if (err->line > 0 && err->column > 0)
            snprintf(location, sizeof location, "%s:%" PRIu64 ":%" PRIu32 ": ", err->path, err->line,
                     err->column);
        else if (err->line > 0)
            snprintf(location, sizeof location, "%s:%" PRIu64 ": ", err->path, err->line);
        else
            snprintf(location, sizeof location, "%s: ", err->path);
    }
    char field[SM_ERROR_FIELD_MAX + 16] = "";
    if (err->field[0] != '\0')
        snprintf(field, sizeof field, "field \"%s\": ", err->field);
    const char *msg = err->msg[0] != '\0' ? err->msg : sm_strerror(err->code);
    return snprintf(buf, len, "%s%s%s", location, field, msg);
}

/* --- allocation ----------------------------------------------------------- */

static atomic_uint_fast64_t alloc_attempts;
static atomic_uint_fast64_t alloc_fail_nth;   /* 0 = never fail */
static atomic_bool alloc_fail_persistent;

void sm_alloc_fail_at(uint64_t nth, bool persistent)
{
    atomic_store(&alloc_attempts, 0);
    atomic_store(&alloc_fail_persistent, persistent);
    atomic_store(&alloc_fail_nth, nth);
}

uint64_t sm_alloc_attempts(void)
{
    return atomic_load(&alloc_attempts);
}

/* True if the fault-injection hook says this allocation must fail. */
static bool injected_failure(void)
{
    uint64_t nth = atomic_load_explicit(&alloc_fail_nth, memory_order_relaxed);
    uint64_t attempt = atomic_fetch_add_explicit(&alloc_attempts, 1, memory_order_relaxed) + 1;
    if (nth == 0)
        return false;
    return attempt == nth || (attempt > nth && atomic_load(&alloc_fail_persistent));
}

/* Blocks of 4 MiB and more ask for transparent huge pages. On virtual
 * machines the first touch of each 4 KiB page traps to the hypervisor: on the
 * development VM (THP in "madvise" mode) filling 256 MiB faults for 0.8 s in
 * 4 KiB pages and 0.02-0.2 s in 2 MiB ones, and an import of 1M rows touched
 * 60,000 fresh pages. Only the 2 MiB-aligned interior can be huge. Where THP
 * is off or unknown the advice is ignored, so its result is too. */
#define HUGE_PAGE ((uintptr_t)2 << 20)
#define HUGE_ADVICE_MIN ((size_t)4 << 20)

static void *advise_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    if (p != NULL && bytes >= HUGE_ADVICE_MIN) {
        uintptr_t start = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
        uintptr_t end = ((uintptr_t)p + bytes) & ~(HUGE_PAGE - 1);
        if (end > start)
            (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
    }
#else
    (void)bytes;
#endif
    return p;
}

void *sm_malloc(size_t size)
{
    if (injected_failure())
        return NULL;
    return advise_huge(malloc(size == 0 ? 1 : size), size);
}

void *sm_calloc(size_t n, size_t size)
{
    size_t total;
    if (!sm_mul_size(n, size, &total) || injected_failure())
        return NULL;
    if (total < HUGE_ADVICE_MIN)
        return calloc(total == 0 ? 1 : n, total == 0 ? 1 : size);
    /* Cleared only after the advice, so that the pages fault in as 2 MiB
     * ones and as writes. glibc would clear a block taken from the heap
     * (its mmap threshold rises to 32 MiB as large blocks are freed) in
     * 4 KiB pages first; and a fresh zero block first read (as hash slots
     * are probed) maps the zero page, whose replacement on the first write
     * costs a TLB flush on every core the process runs on. */
    void *p = advise_huge(malloc(total), total);
    if (p != NULL)
        memset(p, 0, total);
    return p;
}

void *sm_alloc_array(size_t n, size_t size)
{
    size_t total;
    if (!sm_mul_size(n, size, &total))
        return NULL;
    return sm_malloc(total);
}

void *sm_realloc_array(void *p, size_t n, size_t size)
{
    size_t total;
    if (!sm_mul_size(n, size, &total) || injected_failure())
        return NULL;
    if (total < HUGE_ADVICE_MIN)
        return realloc(p, total == 0 ? 1 : total);
    if (p == NULL)
        return advise_huge(malloc(total), total);
    /* realloc would copy into, or extend onto, pages it touches before the
     * advice could reach them; so large blocks move by hand. */
    size_t old = malloc_usable_size(p);
    if (old >= total)
        return realloc(p, total);
    void *q = advise_huge(malloc(total), total);
    if (q == NULL)
        return NULL;
    memcpy(q, p, old);
    free(p);
    return q;
}

void *sm_aligned_alloc(size_t n, size_t size)
{
    size_t total;
    if (!sm_mul_size(n, size, &total) || injected_failure())
        return NULL;
    /* aligned_alloc wants a multiple of the alignment. */
    size_t rounded;
    if (!sm_add_size(total, 63, &rounded))
        return NULL;
    rounded &= ~(size_t)63;
    return advise_huge(aligned_alloc(64, rounded == 0 ? 64 : rounded), rounded);
}

char *sm_strdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = sm_malloc(len);
    if (copy != NULL)
        memcpy(copy, s, len);
    return copy;
}

void sm_free(void *p)
{
    free(p);
}
