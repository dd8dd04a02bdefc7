/* SPDX-License-Identifier: MIT */
/* Fuzz target for the JSON reader: run records come back from stores that
 * may have been copied from elsewhere (RELIABILITY.md S4). */
#include <stdint.h>

#include "engine/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sm_json value;
    sm_error err;
    if (sm_json_parse((const char *)data, size, &value, &err) == 0)
        sm_json_free(&value);
    return 0;
}
