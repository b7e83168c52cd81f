/* fuzz_cursor.c - libFuzzer target for what the channel transports read from a client: the
 * resume cursor (since=, Last-Event-ID) and a publish body turned into the stored JSON value.
 * Invariants: a parsed cursor re-formats to an equivalent one; a stored value is valid JSON. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan/wire.h"
#include "sio/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct hr_cursor c;
    if (hr_cursor_parse(s, size, &c) == 0) {
        char again[128];
        int n = c.epoch[0] ? snprintf(again, sizeof again, "%s:%" PRIu64, c.epoch, c.id)
                           : snprintf(again, sizeof again, "%" PRIu64, c.id);
        struct hr_cursor d;
        if (hr_cursor_parse(again, (size_t)n, &d) != 0 || d.id != c.id || strcmp(d.epoch, c.epoch) != 0)
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
    return 0;
}
