/* json.h - jansson values to JSON text exactly as JavaScript's JSON.stringify writes them:
 * compact, object keys in insertion order, numbers in Number.prototype.toString form
 * (shortest round-trip digits: 0.1, 1e+21, 1.5e-7, -0 as 0). */
#ifndef HR_SIO_JSON_H
#define HR_SIO_JSON_H

#include <jansson.h>

#include "../core/buf.h"

/* Append v to *b. Returns 0, HR_ENOMEM, or HR_EINVAL (a string that is not UTF-8, nesting
 * deeper than 128). */
int hr_json_dump(const json_t *v, struct hr_buf **b);
/* A double as JavaScript prints it; out needs 32 bytes. Returns the length. */
int hr_json_number(double x, char *out);

#endif
