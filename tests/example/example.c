/* SPDX-License-Identifier: MIT */
/* A program outside the source tree, built only with
 * `pkg-config --cflags --libs segmint`, exactly as README's quick start shows. */
#include <segmint/segmint.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    printf("segmint %s\n", sm_version());
    sm_error err;
    sm_error_clear(&err);
    char text[64];
    sm_error_format(&err, text, sizeof text);
    return strcmp(sm_strerror(SM_ERR_NOMEM), "out of memory") == 0 ? 0 : 1;
}
