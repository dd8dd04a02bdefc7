/* SPDX-License-Identifier: MIT */
#include "segmint/segmint.h"

const char *sm_version(void)
{
    return SEGMINT_VERSION_STRING;
}
