/* json.c - JSON text: a strict RFC 8259 validator and its token scanners (iterative, with a
 * fixed nesting limit, so hostile input such as "[[[[..." costs no stack), JSON string
 * escaping, and JSON.stringify-compatible output for jansson values (ECMA-262 §21.1.3.6
 * Number.prototype.toString and §25.5.2 JSON.stringify), so what herald builds from values
 * reads the same as what a JavaScript server would have sent. */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "text.h"
#include "utf8.h"

/* Deeper documents are rejected. V8's JSON.parse allows far more, but no Socket.IO
 * application nests event arguments 128 levels deep. */
#define JSON_MAX_DEPTH HR_JSON_MAX_DEPTH
#define BAD HR_JSON_BAD

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

size_t hr_json_skip_ws(const char *s, size_t len, size_t i)
{
    while (i < len && is_ws(s[i]))
        i++;
    return i;
}

/* -------------------------------------------------------------------------------------- */
/* RFC 8259 tokens. Each scanner takes the index of the token's first byte and returns the
 * index just past it, or BAD. */

/* §7: a string. Raw bytes must be valid UTF-8 (§8.1) and not control characters; escapes are
 * the eight short forms and \uXXXX. A lone surrogate escape is allowed, as the grammar (and
 * JSON.parse) allow it. */
size_t hr_json_scan_string(const char *s, size_t len, size_t i)
{
    i++; /* the opening quote */
    for (;;) {
        size_t run = i;
        while (i < len && s[i] != '"' && s[i] != '\\' && (uint8_t)s[i] >= 0x20)
            i++;
        /* '"' and '\\' are ASCII and never inside a multi-byte sequence, so each run between
         * them must be complete UTF-8 on its own. */
        if (i > run &&
            hr_utf8_validate(HR_UTF8_ACCEPT, (const uint8_t *)s + run, i - run) != HR_UTF8_ACCEPT)
            return BAD;
        if (i >= len || (uint8_t)s[i] < 0x20)
            return BAD;
        if (s[i] == '"')
            return i + 1;
        if (i + 1 >= len)
            return BAD;
        switch (s[i + 1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't': i += 2; break;
        case 'u':
            if (len - i < 6)
                return BAD;
            for (int k = 2; k < 6; k++)
                if (hr_hex_value(s[i + k]) < 0)
                    return BAD;
            i += 6;
            break;
        default: return BAD;
        }
    }
}

/* §6: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
size_t hr_json_scan_number(const char *s, size_t len, size_t i)
{
    if (i < len && s[i] == '-')
        i++;
    if (i >= len || !is_digit(s[i]))
        return BAD;
    if (s[i] == '0') {
        i++;
    } else {
        while (i < len && is_digit(s[i]))
            i++;
    }
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || !is_digit(s[i]))
            return BAD;
        while (i < len && is_digit(s[i]))
            i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= len || !is_digit(s[i]))
            return BAD;
        while (i < len && is_digit(s[i]))
            i++;
    }
    return i;
}

size_t hr_json_scan_literal(const char *s, size_t len, size_t i, const char *word)
{
    size_t n = strlen(word);
    if (len - i < n || memcmp(s + i, word, n) != 0)
        return BAD;
    return i + n;
}

/* An object member's key and colon, from the first byte after '{' or ',' (whitespace
 * allowed); returns the index after the ':'. */
static size_t scan_key(const char *s, size_t len, size_t i)
{
    i = hr_json_skip_ws(s, len, i);
    if (i >= len || s[i] != '"')
        return BAD;
    i = hr_json_scan_string(s, len, i);
    if (i == BAD)
        return BAD;
    i = hr_json_skip_ws(s, len, i);
    if (i >= len || s[i] != ':')
        return BAD;
    return i + 1;
}

/* §2-§5: one value starting at s[i] (no leading whitespace), returning the index after it.
 * Containers are tracked on a small explicit stack instead of by recursion. */
static size_t scan_value(const char *s, size_t len, size_t i)
{
    char stack[JSON_MAX_DEPTH];
    size_t depth = 0;

    for (;;) {
        /* A value is expected at i. */
        i = hr_json_skip_ws(s, len, i);
        if (i >= len)
            return BAD;
        char c = s[i];
        if (c == '[' || c == '{') {
            if (depth == JSON_MAX_DEPTH)
                return BAD;
            stack[depth++] = c;
            i = hr_json_skip_ws(s, len, i + 1);
            if (i < len && s[i] == (c == '[' ? ']' : '}')) {
                depth--;
                i++;
            } else {
                if (c == '{' && (i = scan_key(s, len, i)) == BAD)
                    return BAD;
                continue;
            }
        } else if (c == '"') {
            i = hr_json_scan_string(s, len, i);
        } else if (c == '-' || is_digit(c)) {
            i = hr_json_scan_number(s, len, i);
        } else if (c == 't') {
            i = hr_json_scan_literal(s, len, i, "true");
        } else if (c == 'f') {
            i = hr_json_scan_literal(s, len, i, "false");
        } else if (c == 'n') {
            i = hr_json_scan_literal(s, len, i, "null");
        } else {
            return BAD;
        }
        if (i == BAD)
            return BAD;

        /* A value ended at i: close containers until one wants another element. */
        for (;;) {
            if (depth == 0)
                return i;
            i = hr_json_skip_ws(s, len, i);
            if (i >= len)
                return BAD;
            char open = stack[depth - 1];
            if (s[i] == ',') {
                i++;
                if (open == '{' && (i = scan_key(s, len, i)) == BAD)
                    return BAD;
                break;
            }
            if (s[i] != (open == '[' ? ']' : '}'))
                return BAD;
            depth--;
            i++;
        }
    }
}

int hr_json_check(const char *s, size_t len)
{
    if (!s)
        return 0;
    size_t i = hr_json_skip_ws(s, len, 0);
    if (i >= len)
        return 0;
    size_t end = scan_value(s, len, i);
    if (end == BAD || hr_json_skip_ws(s, len, end) != len)
        return 0;
    switch (s[i]) {
    case '{':
    case '[':
    case '"':
    case 't':
    case 'f': return s[i];
    case 'n': return 'z';
    default: return 'n'; /* '-' or a digit */
    }
}

int hr_json_append_string(struct hr_buf **b, const char *s, size_t len)
{
    static const char hexdig[] = "0123456789abcdef";
    uint32_t old = (*b)->len;
    int rc;

    /* Raw bytes are copied through, so they must already be UTF-8, or the output would not
     * be JSON text (JSON.stringify cannot meet this case: JS strings are UTF-16). */
    if (len && hr_utf8_validate(HR_UTF8_ACCEPT, (const uint8_t *)s, len) != HR_UTF8_ACCEPT)
        return HR_EINVAL;
    if ((rc = hr_buf_append(b, "\"", 1)))
        goto fail;
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)s[i];
        char esc[6];
        size_t n = 2;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hexdig[c >> 4];
            esc[5] = hexdig[c & 15];
            n = 6;
            break;
        }
        if ((i > run && (rc = hr_buf_append(b, s + run, i - run))) ||
            (rc = hr_buf_append(b, esc, n)))
            goto fail;
        run = i + 1;
    }
    if ((len > run && (rc = hr_buf_append(b, s + run, len - run))) ||
        (rc = hr_buf_append(b, "\"", 1)))
        goto fail;
    return 0;
fail:
    (*b)->len = old;
    return rc;
}

/* -------------------------------------------------------------------------------------- */
/* JSON.stringify */

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
        json_object_foreach((json_t *)v, key, val)
        {
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
            if ((i && (rc = hr_buf_append(b, ",", 1))) ||
                (rc = dump(json_array_get(v, i), b, depth + 1)))
                return rc;
        return hr_buf_append(b, "]", 1);
    case JSON_STRING: return hr_json_append_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: {
        int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return hr_buf_append(b, num, (size_t)n);
    }
    case JSON_REAL: {
        int n = hr_json_number(json_real_value(v), num);
        return hr_buf_append(b, num, (size_t)n);
    }
    case JSON_TRUE: return hr_buf_append(b, "true", 4);
    case JSON_FALSE: return hr_buf_append(b, "false", 5);
    default: return hr_buf_append(b, "null", 4);
    }
}

int hr_json_dump(const json_t *v, struct hr_buf **b)
{
    return dump(v, b, 0);
}
