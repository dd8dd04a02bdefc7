/* SPDX-License-Identifier: MIT */
/**
 * @file segmint.h
 * @brief The umbrella header of segmint's public C API.
 *
 * segmint turns transaction logs into per-customer segments, value grades,
 * lifetime values, anomaly flags and cross-sell lists. Include this header
 * and link with `pkg-config --cflags --libs segmint`.
 *
 * Conventions shared by every module: functions return SM_OK (0) or a
 * negative sm_status; an optional caller-owned sm_error receives details;
 * objects are created with sm_<x>_create and released with sm_<x>_destroy
 * (which accepts NULL); results do not depend on the number of threads.
 */
#ifndef SEGMINT_SEGMINT_H
#define SEGMINT_SEGMINT_H

#include "segmint/common.h"
#include "segmint/error.h"
#include "segmint/anomaly.h"
#include "segmint/clv.h"
#include "segmint/rfm.h"
#include "segmint/fim.h"
#include "segmint/kmeans.h"
#include "segmint/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The library's version, "MAJOR.MINOR.PATCH". */
SM_API const char *sm_version(void);

#ifdef __cplusplus
}
#endif
#endif /* SEGMINT_SEGMINT_H */
