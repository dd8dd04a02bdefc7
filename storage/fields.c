/* SPDX-License-Identifier: MIT */
/*
 * Exact field conversions. Money never passes through binary floating point:
 * "2.55" is 255 x 10^-2, multiplied by the quantity in 128-bit integers and
 * rounded once to the store's scale. Dates use Howard Hinnant's
 * days_from_civil, so no time zone database or locale is consulted.
 */
#include "storage/fields.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "segmint/store.h"
#include "storage/csv.h"

const char *sm_field_status_text(sm_field_status status)
{
    switch (status) {
    case SM_FIELD_OK: return "ok";
    case SM_FIELD_EMPTY: return "is empty";
    case SM_FIELD_NAN: return "is NaN (not a number)";
    case SM_FIELD_INFINITE: return "is infinity or a value too large";
    case SM_FIELD_TOO_LARGE: return "is too large (more than 18 significant digits or beyond 10^17 minor units)";
    case SM_FIELD_SYNTAX: return "is not a number";
    case SM_FIELD_NOT_INTEGER: return "is not a whole number";
    case SM_FIELD_BAD_DATE: return "is not a valid date or time";
    case SM_FIELD_DATE_RANGE: return "is outside the years 1000..9999";
    }
    return "is invalid";
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void sm_trim(const char **s, size_t *len)
{
    const char *p = *s;
    size_t n = *len;
    while (n > 0 && is_blank(p[0]))
        p++, n--;
    while (n > 0 && is_blank(p[n - 1]))
        n--;
    *s = p;
    *len = n;
}

static bool equals_nocase(const char *s, size_t len, const char *word)
{
    size_t n = strlen(word);
    if (len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != word[i])
            return false;
    }
    return true;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

sm_field_status sm_parse_decimal(const char *s, size_t len, sm_decimal *out)
{
    sm_trim(&s, &len);
    if (len == 0)
        return SM_FIELD_EMPTY;
    size_t i = 0;
    bool negative = false;
    if (s[0] == '+' || s[0] == '-') {
        negative = s[0] == '-';
        i = 1;
    }
    if (equals_nocase(s + i, len - i, "nan"))
        return SM_FIELD_NAN;
    if (equals_nocase(s + i, len - i, "inf") || equals_nocase(s + i, len - i, "infinity"))
        return SM_FIELD_INFINITE;
    /* value = m * 10^(pending - fraction_digits): leading zeros add nothing,
     * trailing zeros wait in `pending` until a nonzero digit needs them. */
    int64_t m = 0;
    int digits = 0, pending = 0, fraction = 0;
    bool any_digit = false, in_fraction = false;
    for (; i < len; i++) {
        char c = s[i];
        if (c == '.' && !in_fraction) {
            in_fraction = true;
            continue;
        }
        if (!is_digit(c))
            break;
        any_digit = true;
        if (in_fraction)
            fraction++;
        if (c == '0') {
            if (m != 0)
                pending++;
            continue;
        }
        if (digits + pending + 1 > 18)
            return SM_FIELD_TOO_LARGE;
        for (int z = 0; z < pending; z++)
            m *= 10;
        m = m * 10 + (c - '0');
        digits += pending + 1;
        pending = 0;
    }
    if (!any_digit)
        return SM_FIELD_SYNTAX;
    int64_t exponent = (int64_t)pending - fraction;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool exp_negative = false;
        if (i < len && (s[i] == '+' || s[i] == '-')) {
            exp_negative = s[i] == '-';
            i++;
        }
        if (i == len || !is_digit(s[i]))
            return SM_FIELD_SYNTAX;
        int64_t e = 0;
        for (; i < len && is_digit(s[i]); i++)
            if (e < 1000000)
                e = e * 10 + (s[i] - '0');
        exponent += exp_negative ? -e : e;
    }
    if (i != len)
        return SM_FIELD_SYNTAX;
    if (m == 0) {
        out->mantissa = 0;
        out->exponent = 0;
        return SM_FIELD_OK;
    }
    /* Beyond double's range: what a float parser would call infinity. */
    if (exponent + digits - 1 > 308)
        return SM_FIELD_INFINITE;
    if (exponent < -400) {
        out->mantissa = 0;
        out->exponent = 0;
        return SM_FIELD_OK;
    }
    out->mantissa = negative ? -m : m;
    out->exponent = (int32_t)exponent;
    return SM_FIELD_OK;
}

sm_field_status sm_decimal_to_minor(sm_decimal d, int64_t factor, int scale_digits, int64_t *out)
{
    __int128 v = (__int128)d.mantissa * factor;
    int64_t k = (int64_t)d.exponent + scale_digits;
    if (v == 0) {
        *out = 0;
        return SM_FIELD_OK;
    }
    if (k >= 0) {
        for (int64_t j = 0; j < k; j++) {
            v *= 10;
            if (v > SM_AMOUNT_MAX || v < -SM_AMOUNT_MAX)
                return SM_FIELD_TOO_LARGE;
        }
    } else {
        if (k < -38) {
            *out = 0;
            return SM_FIELD_OK;
        }
        __int128 div = 1;
        for (int64_t j = 0; j < -k; j++)
            div *= 10;
        __int128 q = v / div, r = v % div;
        if (r < 0)
            r = -r;
        if (2 * r >= div) /* half away from zero */
            q += v < 0 ? -1 : 1;
        v = q;
    }
    if (v > SM_AMOUNT_MAX || v < -SM_AMOUNT_MAX)
        return SM_FIELD_TOO_LARGE;
    *out = (int64_t)v;
    return SM_FIELD_OK;
}

sm_field_status sm_parse_quantity(const char *s, size_t len, int32_t *out)
{
    sm_decimal d;
    sm_field_status st = sm_parse_decimal(s, len, &d);
    if (st != SM_FIELD_OK)
        return st;
    __int128 v = d.mantissa;
    if (d.exponent < 0) {
        if (d.exponent < -18)
            return SM_FIELD_NOT_INTEGER;
        int64_t div = 1;
        for (int j = 0; j < -d.exponent; j++)
            div *= 10;
        if (d.mantissa % div != 0)
            return SM_FIELD_NOT_INTEGER;
        v = d.mantissa / div;
    } else {
        for (int j = 0; j < d.exponent; j++) {
            v *= 10;
            if (v > INT32_MAX || v < -INT32_MAX)
                return SM_FIELD_TOO_LARGE;
        }
    }
    if (v > INT32_MAX || v < -INT32_MAX)
        return SM_FIELD_TOO_LARGE;
    *out = (int32_t)v;
    return SM_FIELD_OK;
}

/* --- dates ------------------------------------------------------------------------ */

int64_t sm_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void sm_civil_from_days(int64_t z, int64_t *y_out, unsigned *m_out, unsigned *d_out)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t y = (int64_t)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    *y_out = y + (m <= 2);
    *m_out = m;
    *d_out = d;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

static bool digits_at(const char *s, size_t len, size_t at, size_t n, unsigned *value)
{
    if (at + n > len)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[at + i]))
            return false;
        v = v * 10 + (unsigned)(s[at + i] - '0');
    }
    *value = v;
    return true;
}

static sm_field_status compose(int64_t y, unsigned mo, unsigned d, unsigned h, unsigned mi, unsigned sec,
                               int64_t offset, int64_t *out)
{
    if (y < 1000 || y > 9999)
        return SM_FIELD_DATE_RANGE;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return SM_FIELD_BAD_DATE;
    int64_t t = sm_days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + sec - offset;
    if (t < SM_TIME_MIN || t > SM_TIME_MAX)
        return SM_FIELD_DATE_RANGE;
    *out = t;
    return SM_FIELD_OK;
}

sm_field_status sm_parse_time_iso(const char *s, size_t len, int64_t *out)
{
    sm_trim(&s, &len);
    if (len == 0)
        return SM_FIELD_EMPTY;
    unsigned y, mo, d, h = 0, mi = 0, sec = 0;
    if (!digits_at(s, len, 0, 4, &y) || len < 10 || s[4] != '-' || !digits_at(s, len, 5, 2, &mo) ||
        s[7] != '-' || !digits_at(s, len, 8, 2, &d))
        return SM_FIELD_SYNTAX;
    size_t i = 10;
    int64_t offset = 0;
    if (i < len) {
        if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
            return SM_FIELD_SYNTAX;
        if (!digits_at(s, len, i + 1, 2, &h) || i + 3 >= len || s[i + 3] != ':' ||
            !digits_at(s, len, i + 4, 2, &mi))
            return SM_FIELD_SYNTAX;
        i += 6;
        if (i < len && s[i] == ':') {
            if (!digits_at(s, len, i + 1, 2, &sec))
                return SM_FIELD_SYNTAX;
            i += 3;
            if (i < len && (s[i] == '.' || s[i] == ',')) {
                size_t start = ++i;
                while (i < len && is_digit(s[i]))
                    i++;
                if (i == start)
                    return SM_FIELD_SYNTAX;
            }
        }
        if (i < len) {
            if (s[i] == 'Z' || s[i] == 'z') {
                i++;
            } else if (s[i] == '+' || s[i] == '-') {
                int sign = s[i] == '-' ? -1 : 1;
                unsigned oh, om = 0;
                if (!digits_at(s, len, i + 1, 2, &oh))
                    return SM_FIELD_SYNTAX;
                i += 3;
                if (i < len && s[i] == ':')
                    i++;
                if (i < len) {
                    if (!digits_at(s, len, i, 2, &om))
                        return SM_FIELD_SYNTAX;
                    i += 2;
                }
                if (oh > 23 || om > 59)
                    return SM_FIELD_BAD_DATE;
                offset = sign * ((int64_t)oh * 3600 + (int64_t)om * 60);
            }
        }
        if (i != len)
            return SM_FIELD_SYNTAX;
    }
    return compose(y, mo, d, h, mi, sec, offset, out);
}

sm_field_status sm_parse_time_epoch(const char *s, size_t len, int64_t *out)
{
    sm_trim(&s, &len);
    if (len == 0)
        return SM_FIELD_EMPTY;
    size_t i = 0;
    bool negative = false;
    if (s[0] == '-' || s[0] == '+') {
        negative = s[0] == '-';
        i = 1;
    }
    if (i == len)
        return SM_FIELD_SYNTAX;
    int64_t v = 0;
    for (; i < len; i++) {
        if (!is_digit(s[i]))
            return SM_FIELD_SYNTAX;
        if (v > INT64_C(100000000000000))
            return SM_FIELD_DATE_RANGE;
        v = v * 10 + (s[i] - '0');
    }
    if (negative)
        v = -v;
    if (v < SM_TIME_MIN || v > SM_TIME_MAX)
        return SM_FIELD_DATE_RANGE;
    *out = v;
    return SM_FIELD_OK;
}

sm_field_status sm_parse_time_auto(const char *s, size_t len, int64_t *out)
{
    sm_trim(&s, &len);
    if (len == 0)
        return SM_FIELD_EMPTY;
    bool all_digits = true;
    for (size_t i = (s[0] == '-'); i < len; i++)
        all_digits = all_digits && is_digit(s[i]);
    if (all_digits)
        return sm_parse_time_epoch(s, len, out);
    return sm_parse_time_iso(s, len, out);
}

sm_field_status sm_parse_time_yyyymmdd(const char *s, size_t len, int64_t *out)
{
    sm_trim(&s, &len);
    if (len == 0)
        return SM_FIELD_EMPTY;
    unsigned y, mo, d;
    if (len != 8 || !digits_at(s, len, 0, 4, &y) || !digits_at(s, len, 4, 2, &mo) || !digits_at(s, len, 6, 2, &d))
        return SM_FIELD_SYNTAX;
    return compose(y, mo, d, 0, 0, 0, 0, out);
}

/* 1 or 2 digits. */
static bool small_number(const char *s, size_t len, size_t *i, unsigned *v)
{
    if (*i >= len || !is_digit(s[*i]))
        return false;
    *v = (unsigned)(s[(*i)++] - '0');
    if (*i < len && is_digit(s[*i]))
        *v = *v * 10 + (unsigned)(s[(*i)++] - '0');
    return true;
}

sm_field_status sm_parse_time_mdy(const char *s, size_t len, int64_t *out)
{
    sm_trim(&s, &len);
    if (len == 0)
        return SM_FIELD_EMPTY;
    size_t i = 0;
    unsigned mo, d, y, h = 0, mi = 0, sec = 0;
    if (!small_number(s, len, &i, &mo) || i >= len || s[i++] != '/' || !small_number(s, len, &i, &d) ||
        i >= len || s[i++] != '/' || !digits_at(s, len, i, 4, &y))
        return SM_FIELD_SYNTAX;
    i += 4;
    if (i < len) {
        if (s[i] != ' ')
            return SM_FIELD_SYNTAX;
        while (i < len && s[i] == ' ')
            i++;
        if (!small_number(s, len, &i, &h) || i >= len || s[i++] != ':' || !digits_at(s, len, i, 2, &mi))
            return SM_FIELD_SYNTAX;
        i += 2;
        if (i < len && s[i] == ':') {
            if (!digits_at(s, len, i + 1, 2, &sec))
                return SM_FIELD_SYNTAX;
            i += 3;
        }
        if (i != len)
            return SM_FIELD_SYNTAX;
    }
    return compose(y, mo, d, h, mi, sec, 0, out);
}

sm_field_status sm_parse_time_strptime(const char *s, const char *format, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_mday = 1;
    while (is_blank(*s))
        s++;
    if (*s == '\0')
        return SM_FIELD_EMPTY;
    const char *end = strptime(s, format, &tm);
    if (end == NULL)
        return SM_FIELD_SYNTAX;
    while (is_blank(*end))
        end++;
    if (*end != '\0')
        return SM_FIELD_SYNTAX;
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_hour < 0 || tm.tm_min < 0 || tm.tm_sec < 0)
        return SM_FIELD_BAD_DATE;
    return compose((int64_t)tm.tm_year + 1900, (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday,
                   (unsigned)tm.tm_hour, (unsigned)tm.tm_min, (unsigned)tm.tm_sec, (int64_t)tm.tm_gmtoff, out);
}

void sm_format_time_iso(int64_t t, char buf[32])
{
    int64_t days = t / 86400, rem = t % 86400;
    if (rem < 0) {
        rem += 86400;
        days -= 1;
    }
    int64_t y;
    unsigned m, d;
    sm_civil_from_days(days, &y, &m, &d);
    char tmp[96];
    snprintf(tmp, sizeof tmp, "%04lld-%02u-%02uT%02u:%02u:%02uZ", (long long)y, m, d, (unsigned)(rem / 3600),
             (unsigned)(rem / 60 % 60), (unsigned)(rem % 60));
    size_t len = strlen(tmp);
    if (len > 31)
        len = 31;
    memcpy(buf, tmp, len);
    buf[len] = '\0';
}

/* --- keys ------------------------------------------------------------------------------ */

void sm_canonical_numeric_id(const char **s, size_t *len)
{
    const char *p = *s;
    size_t n = *len, digits = 0;
    while (digits < n && is_digit(p[digits]))
        digits++;
    if (digits == 0)
        return;
    if (digits < n) {
        if (p[digits] != '.' || digits + 1 == n)
            return;
        for (size_t i = digits + 1; i < n; i++)
            if (p[i] != '0')
                return;
    }
    size_t start = 0;
    while (start + 1 < digits && p[start] == '0')
        start++;
    *s = p + start;
    *len = digits - start;
}

sm_key_problem sm_check_key(const char *s, size_t len, size_t *offset)
{
    if (len > SM_STORE_KEY_MAX) {
        *offset = SM_STORE_KEY_MAX;
        return SM_KEY_TOO_LONG;
    }
    bool high = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F) {
            *offset = i;
            return SM_KEY_CONTROL;
        }
        high |= c >= 0x80;
    }
    if (high && !sm_utf8_valid(s, len, offset))
        return SM_KEY_BAD_UTF8;
    return SM_KEY_OK;
}
