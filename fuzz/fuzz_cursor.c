/* fuzz_cursor.c - libFuzzer target for what the channel transports read from a client: the
 * resume cursor (since=, Last-Event-ID), a publish body turned into the stored JSON value, and
 * the percent-encoded channel name of a path. Invariants: a parsed cursor re-formats to an
 * equivalent one; a stored value is valid JSON; decoding never writes past its buffer, and
 * the strict forms either refuse or agree with the lenient one; a name read is a valid name. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan/wire.h"
#include "core/error.h"
#include "core/json.h"
#include "core/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct hr_cursor c;
    if (hr_cursor_parse(s, size, &c) == 0) {
        char again[128];
        int n = c.epoch[0] ? snprintf(again, sizeof again, "%s:%" PRIu64, c.epoch, c.id)
                           : snprintf(again, sizeof again, "%" PRIu64, c.id);
        struct hr_cursor d;
        if (hr_cursor_parse(again, (size_t)n, &d) != 0 || d.id != c.id ||
            strcmp(d.epoch, c.epoch) != 0)
            abort();
    }
    for (int json = 0; json <= 1; json++) {
        const char *err = NULL;
        struct hr_buf *v = hr_msg_value(s, size, json, &err);
        if (v) {
            if (!hr_json_check(v->data, v->len))
                abort(); /* what is stored must embed as JSON */
            hr_buf_unref(v);
        } else if (!err) {
            abort(); /* a refusal always says why */
        }
    }
    char out[64 + 1], lax[64];
    for (unsigned flags = 0; flags < 8; flags++) {
        out[64] = '#';
        long n = hr_percent_decode(s, size, out, 64, flags);
        long m = hr_percent_decode(s, size, lax, sizeof lax, flags & HR_PCT_PLUS);
        if (out[64] != '#' || (m < 0 && m != HR_ETOOBIG))
            abort();
        if (n >= 0 &&
            ((size_t)n > size || out[n] != '\0' || m != n || memcmp(out, lax, (size_t)n) != 0))
            abort();
        if (n < 0 && n != HR_ETOOBIG &&
            (n != HR_EINVAL || !(flags & (HR_PCT_STRICT | HR_PCT_NO_NUL))))
            abort();
    }
    char *path = malloc(size + 2), name[HR_CHANNEL_NAME_MAX + 1];
    if (!path)
        abort();
    path[0] = '/';
    memcpy(path + 1, s, size);
    path[size + 1] = '\0';
    size_t nlen = 0;
    if (hr_channel_from_path(path, "/", name, &nlen) &&
        (!hr_channel_name_valid(name, nlen) || name[nlen]))
        abort();
    free(path);
    return 0;
}
