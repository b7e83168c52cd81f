/* json.h - JSON text (RFC 8259): checking a value, its token scanners, escaping a string, and
 * jansson values written exactly as JavaScript's JSON.stringify writes them (compact, object
 * keys in insertion order, numbers in Number.prototype.toString form: shortest round-trip
 * digits, 0.1, 1e+21, 1.5e-7, -0 as 0). */
#ifndef HR_CORE_JSON_H
#define HR_CORE_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Deeper documents are rejected. V8's JSON.parse allows far more, but no Socket.IO
 * application nests event arguments 128 levels deep. */
#define HR_JSON_MAX_DEPTH 128
/* What a scanner returns for a malformed token. */
#define HR_JSON_BAD SIZE_MAX

/* Check that s is one complete JSON value (RFC 8259), returning its kind ('{', '[', '"', 'n'
 * for numbers, 't', 'f', 'z' for null) or 0 if invalid. Whitespace (space, tab, LF, CR) may
 * surround it; nothing else may follow. Strings must be UTF-8 without raw control characters;
 * escaped lone surrogates are accepted (the grammar and JSON.parse accept them). Nesting
 * deeper than HR_JSON_MAX_DEPTH arrays/objects is rejected; the check uses no recursion. */
int hr_json_check(const char *s, size_t len);

/* Token scanners: each takes the index of a token's first byte in s[0..len) and returns the
 * index just past it, or HR_JSON_BAD. */
size_t hr_json_skip_ws(const char *s, size_t len, size_t i);
size_t hr_json_scan_string(const char *s, size_t len, size_t i);
size_t hr_json_scan_number(const char *s, size_t len, size_t i);
size_t hr_json_scan_literal(const char *s, size_t len, size_t i, const char *word);

/* Append s as a JSON string (quotes and escapes, as JSON.stringify would: \" \\ \b \f \n \r
 * \t, other bytes below 0x20 as \u00XX, everything else raw) to *b. s must be valid UTF-8
 * (HR_EINVAL otherwise). Returns 0 or an error; on error *b is unchanged. */
int hr_json_append_string(struct hr_buf **b, const char *s, size_t len);

/* Append v to *b. Returns 0, HR_ENOMEM, or HR_EINVAL (a string that is not UTF-8, nesting
 * deeper than 128). */
int hr_json_dump(const json_t *v, struct hr_buf **b);
/* A double as JavaScript prints it; out needs 32 bytes. Returns the length. */
int hr_json_number(double x, char *out);

#endif
