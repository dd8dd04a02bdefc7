/* SPDX-License-Identifier: MIT */
/* Fuzz target for the CSV reader: any byte string must parse or be rejected
 * without crashing, reading out of bounds or leaking; field lengths must stay
 * within the input. The first byte picks the delimiter and a small record
 * limit so the over-long path is reached too. */
#include <stdint.h>
#include <string.h>

#include "storage/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static const char delimiters[] = {',', ';', '\t', '|'};
    sm_csv_options options;
    sm_csv_options_init(&options);
    options.delimiter = delimiters[data[0] & 3];
    options.max_record_bytes = (data[0] & 4) ? 64 : (size_t)1 << 20;
    sm_csv_reader *reader;
    sm_error err;
    if (sm_csv_open_memory(data + 1, size - 1, "fuzz", &options, &reader, &err) != 0)
        return 0;
    sm_csv_record rec;
    size_t total = 0;
    while (sm_csv_next(reader, &rec, &err) == 1) {
        for (size_t i = 0; i < rec.n_fields; i++) {
            total += rec.lengths[i];
            if (rec.lengths[i] > size || rec.fields[i][rec.lengths[i]] != '\0')
                __builtin_trap();
            size_t bad;
            (void)sm_utf8_valid(rec.fields[i], rec.lengths[i], &bad);
        }
        if (rec.end_offset > size)
            __builtin_trap();
    }
    if (total > size)
        __builtin_trap();
    sm_csv_close(reader);
    return 0;
}
