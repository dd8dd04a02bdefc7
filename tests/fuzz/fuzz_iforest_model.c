/* SPDX-License-Identifier: MIT */
/* Fuzz target for the Isolation Forest model loader, which reads untrusted
 * files: any byte string must load or be refused without crashing, reading
 * out of bounds or leaking. When the first byte is odd the rest gets a valid
 * trailing hash, so the structural checks behind the hash are reached too.
 * A model that loads must score finite values in (0, 1] and serialise back
 * to exactly the bytes it came from (the format is canonical). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "segmint/anomaly.h"

static void fix_hash(uint8_t *buf, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i + 8 < len; i++) {
        h ^= buf[i];
        h *= 0x100000001b3ull;
    }
    for (int i = 0; i < 8; i++)
        buf[len - 8 + i] = (uint8_t)(h >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t len = size - 1;
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data + 1, len);
    if ((data[0] & 1) && len >= 8)
        fix_hash(buf, len);
    sm_iforest *forest = NULL;
    sm_error err;
    if (sm_iforest_deserialize(buf, len, &forest, &err) == SM_OK) {
        size_t d = sm_iforest_n_features(forest);
        if (d <= 4096) {
            float *x = calloc(4 * d, sizeof *x);
            double s[4];
            for (size_t i = 0; x != NULL && i < 4 * d; i++)
                x[i] = (float)((int)(i * 37 % 11) - 5) * (i % 3 ? 0.5f : 1e3f);
            if (x != NULL && sm_iforest_score(forest, s, x, 4, d, d, 1, NULL, &err) == SM_OK)
                for (int i = 0; i < 4; i++)
                    if (!(isfinite(s[i]) && s[i] > 0.0 && s[i] <= 1.0))
                        __builtin_trap();
            free(x);
        }
        size_t out_len = sm_iforest_serialized_size(forest);
        uint8_t *out = malloc(out_len);
        if (out == NULL || out_len != len || sm_iforest_serialize(forest, out, out_len, &err) != SM_OK ||
            memcmp(out, buf, len) != 0)
            __builtin_trap();
        free(out);
        sm_iforest_destroy(forest);
    }
    free(buf);
    return 0;
}
