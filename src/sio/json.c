/* json.c - JSON.stringify-compatible output for jansson values (ECMA-262 §21.1.3.6
 * Number.prototype.toString and §25.5.2 JSON.stringify), so what herald builds from values
 * reads the same as what a JavaScript server would have sent. */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "packet.h"

int hr_json_number(double x, char *out)
{
    if (!isfinite(x))
        return snprintf(out, 32, "null");
    if (x == 0)
        return snprintf(out, 32, "0"); /* also -0 */
    /* shortest digits that read back as x */
    char buf[40];
    int p;
    for (p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    /* buf is [-]d[.ddd]e[+-]XX: collect the digits and the exponent */
    char digits[20];
    int k = 0, neg = buf[0] == '-';
    const char *q = buf + neg;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9')
            digits[k++] = *q;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    int n = atoi(q + 1) + 1; /* x = 0.digits * 10^n */
    char *o = out;
    if (neg)
        *o++ = '-';
    if (k <= n && n <= 21) {
        memcpy(o, digits, (size_t)k);
        o += k;
        for (int i = k; i < n; i++)
            *o++ = '0';
    } else if (0 < n && n <= 21) {
        memcpy(o, digits, (size_t)n);
        o += n;
        *o++ = '.';
        memcpy(o, digits + n, (size_t)(k - n));
        o += k - n;
    } else if (-6 < n && n <= 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -n; i++)
            *o++ = '0';
        memcpy(o, digits, (size_t)k);
        o += k;
    } else {
        *o++ = digits[0];
        if (k > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, (size_t)(k - 1));
            o += k - 1;
        }
        o += sprintf(o, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
    }
    *o = '\0';
    return (int)(o - out);
}

static int dump(const json_t *v, struct hr_buf **b, int depth)
{
    char num[32];
    int rc = 0;
    if (depth > 128)
        return HR_EINVAL;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        int first = 1;
        if ((rc = hr_buf_append(b, "{", 1)))
            return rc;
        json_object_foreach((json_t *)v, key, val) {
            if ((!first && (rc = hr_buf_append(b, ",", 1))) ||
                (rc = hr_json_append_string(b, key, strlen(key))) ||
                (rc = hr_buf_append(b, ":", 1)) || (rc = dump(val, b, depth + 1)))
                return rc;
            first = 0;
        }
        return hr_buf_append(b, "}", 1);
    }
    case JSON_ARRAY:
        if ((rc = hr_buf_append(b, "[", 1)))
            return rc;
        for (size_t i = 0; i < json_array_size(v); i++)
            if ((i && (rc = hr_buf_append(b, ",", 1))) || (rc = dump(json_array_get(v, i), b, depth + 1)))
                return rc;
        return hr_buf_append(b, "]", 1);
    case JSON_STRING:
        return hr_json_append_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: {
        int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return hr_buf_append(b, num, (size_t)n);
    }
    case JSON_REAL: {
        int n = hr_json_number(json_real_value(v), num);
        return hr_buf_append(b, num, (size_t)n);
    }
    case JSON_TRUE:
        return hr_buf_append(b, "true", 4);
    case JSON_FALSE:
        return hr_buf_append(b, "false", 5);
    default:
        return hr_buf_append(b, "null", 4);
    }
}

int hr_json_dump(const json_t *v, struct hr_buf **b)
{
    return dump(v, b, 0);
}
