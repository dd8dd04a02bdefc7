/* SPDX-License-Identifier: MIT */
/*
 * SHA-256 (FIPS 180-4) for the duplicate-import check (the CSV reader
 * feeds it the bytes it parses): a portable
 * implementation and, on x86-64 CPUs with the SHA extensions, the same
 * compression function with SHA-NI instructions (chosen at run time).
 */
#ifndef SEGMINT_STORAGE_SHA256_H
#define SEGMINT_STORAGE_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segmint/error.h"

typedef struct sm_sha256 {
    uint32_t state[8];
    uint64_t bytes;
    unsigned char block[64];
    size_t used;
    bool hardware;
} sm_sha256;

void sm_sha256_init(sm_sha256 *h);
/* Forces the portable code (tests compare both paths). */
void sm_sha256_init_portable(sm_sha256 *h);
void sm_sha256_update(sm_sha256 *h, const void *data, size_t len);
void sm_sha256_final(sm_sha256 *h, unsigned char digest[32]);

void sm_sha256_hex(const unsigned char digest[32], char hex[65]);

#endif
