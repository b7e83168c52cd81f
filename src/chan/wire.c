/* wire.c - cursors, message JSON and channel paths shared by the channel transports. */
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"
#include "core/text.h"
#include "core/utf8.h"

int hr_cursor_parse(const char *s, size_t len, struct hr_cursor *out)
{
    memset(out, 0, sizeof(*out));
    const char *colon = memchr(s, ':', len);
    const char *num = colon ? colon + 1 : s;
    size_t nlen = len - (size_t)(num - s);
    if (nlen == 0 || nlen > 20)
        return HR_EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < nlen; i++) {
        if (num[i] < '0' || num[i] > '9')
            return HR_EINVAL;
        uint64_t d = (uint64_t)(num[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return HR_EINVAL;
        v = v * 10 + d;
    }
    out->id = v;
    if (colon) {
        size_t elen = (size_t)(colon - s);
        if (elen == 0 || elen > HR_CURSOR_EPOCH_MAX)
            return HR_EINVAL;
        for (size_t i = 0; i < elen; i++)
            if (s[i] <= ' ' || s[i] == 0x7f || s[i] == '"' || s[i] == '\\')
                return HR_EINVAL;
        memcpy(out->epoch, s, elen);
        out->epoch[elen] = 0;
    }
    return 0;
}

int hr_cursor_of(const struct hr_cursor *c, const struct hr_channel *ch)
{
    return !c->epoch[0] || strcmp(c->epoch, ch->epoch) == 0;
}

const char *hr_cursor_start(const struct hr_cursor *c, const struct hr_channel *ch, uint64_t *since)
{
    if (!hr_cursor_of(c, ch)) {
        *since = 0;
        return "epoch";
    }
    if (c->id > ch->last_id) {
        /* an id this channel never gave out: the reader is from a history that was lost */
        *since = 0;
        return "unknown";
    }
    *since = c->id;
    return c->id + 1 < hr_hub_first_id(ch) ? "trimmed" : NULL;
}

const char *hr_channel_from_path(const char *path, const char *prefix,
                                 char out[HR_CHANNEL_NAME_MAX + 1], size_t *len)
{
    size_t plen = strlen(prefix);
    if (strncmp(path, prefix, plen) != 0)
        return NULL;
    const char *p = path + plen;
    long dl = hr_percent_decode(p, strcspn(p, "?#"), out, HR_CHANNEL_NAME_MAX + 1, HR_PCT_STRICT);
    if (dl < 0)
        return NULL;
    size_t n = (size_t)dl;
    if (!hr_channel_name_valid(out, n))
        return NULL;
    *len = n;
    return out;
}

struct hr_buf *hr_msg_json(const struct hr_hub_msg *m, const char *epoch)
{
    struct hr_buf *b = hr_buf_new(m->data->len + 96);
    if (!b)
        return NULL;
    if (hr_buf_printf(
            &b, "{\"id\":%" PRIu64 ",\"cursor\":\"%s:%" PRIu64 "\",\"time\":%" PRId64 ",\"data\":",
            m->id, epoch, m->id, m->time_ms) < 0 ||
        hr_buf_append(&b, m->data->data, m->data->len) < 0 || hr_buf_append(&b, "}", 1) < 0) {
        hr_buf_unref(b);
        return NULL;
    }
    return b;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A JSON value is stored without the whitespace around it, so it embeds cleanly: its first
 * byte, and its end in *end. */
static size_t json_bounds(const char *s, size_t len, size_t *end)
{
    size_t lead = hr_json_skip_ws(s, len, 0);
    while (len > lead && is_ws(s[len - 1]))
        len--;
    *end = len;
    return lead;
}

struct hr_buf *hr_msg_json_copy(const char *body, size_t len)
{
    size_t end, lead = json_bounds(body, len, &end);
    return hr_buf_from(body + lead, end - lead);
}

struct hr_buf *hr_msg_value(const char *body, size_t len, int json, const char **err)
{
    if (json) {
        if (!hr_json_check(body, len)) {
            *err = "body is not valid JSON";
            return NULL;
        }
        struct hr_buf *b = hr_msg_json_copy(body, len);
        if (!b)
            *err = "out of memory";
        return b;
    }
    if (hr_utf8_validate(HR_UTF8_ACCEPT, (const uint8_t *)body, len) != HR_UTF8_ACCEPT) {
        *err = "body is not valid UTF-8 text";
        return NULL;
    }
    struct hr_buf *b = hr_buf_new(len + 16);
    if (!b || hr_json_append_string(&b, body, len) < 0) {
        hr_buf_unref(b);
        *err = "out of memory";
        return NULL;
    }
    /* escapes may have doubled it: kept in the history, it costs only what it holds */
    hr_buf_shrink(&b, b->len);
    return b;
}

struct hr_buf *hr_msg_value_buf(struct hr_buf *body, int json, const char **err)
{
    if (!json || !body) {
        /* text becomes a JSON string: the one re-encoding a publish gets */
        struct hr_buf *v = hr_msg_value(body ? body->data : "", body ? body->len : 0, json, err);
        hr_buf_unref(body);
        return v;
    }
    if (!hr_json_check(body->data, body->len)) {
        hr_buf_unref(body);
        *err = "body is not valid JSON";
        return NULL;
    }
    size_t len, lead = json_bounds(body->data, body->len, &len);
    if (lead == 0 && len == body->len)
        return body;
    if (body->refs != 1) {
        /* others see these bytes as they are: the value gets its own */
        struct hr_buf *v = hr_buf_from(body->data + lead, len - lead);
        hr_buf_unref(body);
        if (!v)
            *err = "out of memory";
        return v;
    }
    if (lead)
        memmove(body->data, body->data + lead, len - lead);
    body->len = (uint32_t)(len - lead);
    return body;
}
