/* SPDX-License-Identifier: MIT */
/*
 * Field conversions for the importers, exact and locale-free: decimal money
 * into integer minor units (one rounding, half away from zero), whole
 * quantities, ISO 8601 / epoch / YYYYMMDD / M/D/YYYY H:MM / strptime dates
 * into UTC seconds, and key normalisation. Each parser returns a status
 * naming what was wrong, so a rejection can say "NaN" rather than "bad".
 */
#ifndef SEGMINT_STORAGE_FIELDS_H
#define SEGMINT_STORAGE_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum sm_field_status {
    SM_FIELD_OK = 0,
    SM_FIELD_EMPTY,        /* nothing but blanks */
    SM_FIELD_NAN,          /* "nan", "NaN", "-nan" */
    SM_FIELD_INFINITE,     /* "inf", "infinity", or a magnitude such as 1e309 */
    SM_FIELD_TOO_LARGE,    /* finite but beyond the range we store */
    SM_FIELD_SYNTAX,       /* not a number / not a date */
    SM_FIELD_NOT_INTEGER,  /* a quantity with a fractional part */
    SM_FIELD_BAD_DATE,     /* well-formed but impossible (Feb 30, 25:00, offset 19:00) */
    SM_FIELD_DATE_RANGE    /* outside years 1000..9999 */
} sm_field_status;

/* Short English text for a status, e.g. "is NaN (not a number)". */
const char *sm_field_status_text(sm_field_status status);

/* A decimal number as mantissa * 10^exponent, exactly as written.
 * At most 18 significant digits. */
typedef struct sm_decimal {
    int64_t mantissa;
    int32_t exponent;
} sm_decimal;

/* [blanks][+-]digits[.digits][(e|E)[+-]digits][blanks], or .5 / 5. */
sm_field_status sm_parse_decimal(const char *s, size_t len, sm_decimal *out);

/* Largest |amount| stored, in minor units (10^17: a thousand trillion at scale 100). */
#define SM_AMOUNT_MAX INT64_C(100000000000000000)

/* round(factor * d * 10^scale_digits), half away from zero; TOO_LARGE past
 * SM_AMOUNT_MAX. scale_digits in 0..6, |factor| < 2^31. */
sm_field_status sm_decimal_to_minor(sm_decimal d, int64_t factor, int scale_digits, int64_t *out);

/* A whole number in int32 range ("6", "-6", "6.0", "6e0"). */
sm_field_status sm_parse_quantity(const char *s, size_t len, int32_t *out);

/* Days since 1970-01-01 of a proleptic Gregorian date (no range check). */
int64_t sm_days_from_civil(int64_t y, unsigned m, unsigned d);
/* Inverse of the above. */
void sm_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

#define SM_TIME_MIN INT64_C(-30610224000)  /* 1000-01-01T00:00:00Z */
#define SM_TIME_MAX INT64_C(253402300799)  /* 9999-12-31T23:59:59Z */

/* ISO 8601: YYYY-MM-DD, or that plus [T ]HH:MM[:SS[.fraction]] and an
 * optional Z / +HH / +HHMM / +HH:MM offset; fractions are truncated; times
 * without an offset are UTC. */
sm_field_status sm_parse_time_iso(const char *s, size_t len, int64_t *out);
/* Epoch seconds: [blanks][-]digits[blanks]. */
sm_field_status sm_parse_time_epoch(const char *s, size_t len, int64_t *out);
/* ISO 8601, else epoch seconds when the field is all digits. */
sm_field_status sm_parse_time_auto(const char *s, size_t len, int64_t *out);
/* YYYYMMDD (CDNOW). */
sm_field_status sm_parse_time_yyyymmdd(const char *s, size_t len, int64_t *out);
/* M/D/YYYY H:MM[:SS] (the UCI spreadsheet export of Online Retail). */
sm_field_status sm_parse_time_mdy(const char *s, size_t len, int64_t *out);
/* strptime(format) on a NUL-terminated field; %z offsets are honoured,
 * everything else is UTC. The whole field must be consumed. */
sm_field_status sm_parse_time_strptime(const char *s, const char *format, int64_t *out);

/* Writes t as "YYYY-MM-DDTHH:MM:SSZ" (21 bytes with the NUL). */
void sm_format_time_iso(int64_t t, char buf[32]);

/* Trims ASCII blanks (space, tab, CR) from both ends. */
void sm_trim(const char **s, size_t *len);

/* "17850.0" / "00017" -> "17850" / "17": a numeric id with an optional
 * ".0..." suffix, written canonically. Other text is left as is. */
void sm_canonical_numeric_id(const char **s, size_t *len);

typedef enum sm_key_problem {
    SM_KEY_OK = 0,
    SM_KEY_TOO_LONG,       /* > SM_STORE_KEY_MAX bytes */
    SM_KEY_CONTROL,        /* a control character (incl. NUL) */
    SM_KEY_BAD_UTF8
} sm_key_problem;

/* Checks an external key (already trimmed, non-empty); *offset gets the
 * byte at fault. */
sm_key_problem sm_check_key(const char *s, size_t len, size_t *offset);

#endif
