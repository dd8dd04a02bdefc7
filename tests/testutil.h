/* SPDX-License-Identifier: MIT */
/*
 * Helpers every Check suite uses: the data-set root (SEGMINT_DATA), the test
 * seed (SM_TEST_SEED, printed on failure), scratch directories, and a main
 * that runs a suite and reports. Only tests link this.
 */
#ifndef SEGMINT_TESTUTIL_H
#define SEGMINT_TESTUTIL_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Full path of `relative` under the data-set root, or NULL when the root or
 * the file is absent (the caller then skips). Returned string is static per
 * call site use: copy it if you need two at once. */
const char *sm_test_data_path(const char *relative);

/* Seed for randomised tests: SM_TEST_SEED if set, else `fallback`. */
uint64_t sm_test_seed(uint64_t fallback);

/* Creates a fresh empty directory under the build tree's Testing/tmp and
 * writes its path into buf. Aborts the test on failure. */
void sm_test_tmpdir(char *buf, size_t len, const char *tag);

/* Removes a directory tree (best effort; used for scratch stores). */
void sm_test_rmtree(const char *path);

/* Writes `text` to path (creating/truncating it). */
void sm_test_write_file(const char *path, const char *text);

/* Runs the suite, prints the seed if anything failed, returns the exit code. */
int sm_test_run(Suite *suite);

/* Marks the current test as skipped in the log (Check has no skip status). */
#define SM_TEST_SKIP(why)                                                                \
    do {                                                                                 \
        fprintf(stderr, "SKIP %s: %s\n", __func__, (why));                             \
        return;                                                                          \
    } while (0)

#endif
