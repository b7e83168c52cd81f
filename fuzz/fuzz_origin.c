/* fuzz_origin.c - libFuzzer target for the origin allow-list (src/http/origin.c): an input is
 * an Origin value, and also a list for --allowed-origins. Invariants: a serialized origin is
 * a fixed point (serializing it again gives itself) made only of an origin's characters, never
 * longer than the input; a value matches a list holding it, and the request's own origin
 * (its Host) always; a list that parses holds no more entries than commas allow. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "http/origin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *v = (const char *)data;
    char out[HR_ORIGIN_MAX + 1], again[HR_ORIGIN_MAX + 1];
    long n = hr_origin_serialize(v, size, out, sizeof out);
    if (n >= 0) {
        if ((size_t)n > size || strlen(out) != (size_t)n)
            abort();
        if (strcspn(out, ",\r\n \t\"") != (size_t)n)
            abort();
        long m = hr_origin_serialize(out, (size_t)n, again, sizeof again);
        if (m != n || memcmp(out, again, (size_t)n) != 0)
            abort();
        /* listed: allowed; the Host it names after "://": its own origin when http (a value
         * longer than HR_ORIGIN_MAX as sent is refused whatever it serializes to) */
        struct hr_origins o;
        char err[160];
        if (hr_origins_parse(&o, out, err, sizeof err) != 0)
            abort();
        int fits = size <= HR_ORIGIN_MAX;
        if (o.n != 1 || hr_origins_check(&o, v, size, NULL, 0, 0) !=
                            (fits ? HR_ORIGIN_ALLOWED : HR_ORIGIN_REFUSED))
            abort();
        hr_origins_free(&o);
        if (hr_origins_parse(&o, "none", err, sizeof err) != 0)
            abort();
        const char *host = strstr(out, "://") + 3;
        if (fits && strncmp(out, "http://", 7) == 0 &&
            hr_origins_check(&o, v, size, host, strlen(host), 0) != HR_ORIGIN_ALLOWED)
            abort();
        if (fits && strncmp(out, "https://", 8) == 0 &&
            hr_origins_check(&o, v, size, host, strlen(host), 1) != HR_ORIGIN_ALLOWED)
            abort();
        hr_origins_free(&o);
    } else if (n != HR_EINVAL) {
        abort();
    }
    /* the input as a list */
    char *spec = malloc(size + 1);
    if (!spec)
        abort();
    memcpy(spec, data, size);
    spec[size] = '\0';
    struct hr_origins o;
    char err[160];
    err[0] = '\0';
    int rc = hr_origins_parse(&o, spec, err, sizeof err);
    if (rc == 0) {
        size_t commas = 0;
        for (size_t i = 0; spec[i]; i++)
            commas += spec[i] == ',';
        if (o.n > commas + 1 || o.bytes > strlen(spec) + 1 || (o.any && o.n))
            abort();
        const char *p = o.list;
        for (uint32_t i = 0; i < o.n; i++) {
            size_t l = strlen(p);
            if (hr_origins_check(&o, p, l, NULL, 0, 0) != HR_ORIGIN_ALLOWED)
                abort();
            p += l + 1;
        }
        hr_origins_free(&o);
    } else if (rc != HR_EINVAL || !err[0]) {
        abort();
    }
    free(spec);
    return 0;
}
