/* SPDX-License-Identifier: MIT */
#include "testutil.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *sm_test_data_path(const char *relative)
{
    static char path[4096];
    const char *root = getenv("SEGMINT_DATA");
    if (root == NULL || root[0] == '\0')
        root = SEGMINT_DATA_DEFAULT;
    snprintf(path, sizeof path, "%s/%s", root, relative);
    if (access(path, R_OK) != 0)
        return NULL;
    return path;
}

uint64_t sm_test_seed(uint64_t fallback)
{
    const char *text = getenv("SM_TEST_SEED");
    if (text == NULL || text[0] == '\0')
        return fallback;
    return strtoull(text, NULL, 0);
}

void sm_test_tmpdir(char *buf, size_t len, const char *tag)
{
    char base[4096];
    snprintf(base, sizeof base, "%s/Testing/tmp", SEGMINT_BINARY_DIR);
    mkdir(SEGMINT_BINARY_DIR "/Testing", 0755);
    mkdir(base, 0755);
    snprintf(buf, len, "%s/%s-%ld-XXXXXX", base, tag, (long)getpid());
    if (mkdtemp(buf) == NULL)
        ck_abort_msg("mkdtemp %s: %s", buf, strerror(errno));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void sm_test_rmtree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void sm_test_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
    size_t len = strlen(text);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

int sm_test_run(Suite *suite)
{
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    if (failed > 0)
        fprintf(stderr, "failed with SM_TEST_SEED=%s\n",
                getenv("SM_TEST_SEED") ? getenv("SM_TEST_SEED") : "(default)");
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
