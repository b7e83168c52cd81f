/* hub.h - named channels: ids, history, subscribers of any transport, and fan-out.
 *
 * A published message gets the channel's next id (1, 2, ...), is committed to the store, and
 * only then enters the channel's history and reaches its subscribers: an id is never shown
 * before it is durable, so a crash cannot hand the same id to two different messages. The
 * publisher's acknowledgement comes at that moment too. History is bounded by count, bytes and
 * age; a reader whose cursor is older than what is kept is told (a gap), never skipped past
 * silently. Each message is encoded at most once per wire format (hr_hub_encoding) and the
 * encoding is shared by every subscriber using that format. */
#ifndef HR_HUB_HUB_H
#define HR_HUB_HUB_H

#include <stddef.h>
#include <stdint.h>
#include <uthash.h>
#include <uv.h>

#include "../core/buf.h"
#include "../store/store.h"

#define HR_CHANNEL_NAME_MAX 200

/* The wire formats a message may be encoded in; each transport names its own. */
enum { HR_FMT_WS, HR_FMT_SSE, HR_FMT_POLL, HR_FMT_SIO, HR_FMT_COUNT };

struct hr_hub_msg {
    uint64_t id;
    int64_t time_ms;                    /* wall clock at publish */
    struct hr_buf *data;                /* the payload as published */
    struct hr_buf *enc[HR_FMT_COUNT];   /* encodings, built on first use */
};

struct hr_sub;
struct hr_channel;

struct hr_sub_ops {
    /* A new message for this subscriber. Return < 0 if the subscriber is gone (the hub then
     * unsubscribes it). Must not unsubscribe other subscribers. */
    int (*deliver)(struct hr_sub *sub, struct hr_channel *ch, struct hr_hub_msg *m);
};

/* A subscriber: embed it in the transport's own state (one owner: the transport). */
struct hr_sub {
    const struct hr_sub_ops *ops;
    struct hr_channel *ch;
    struct hr_sub *prev, *next;
    uint8_t fmt;                        /* HR_FMT_*, for the per-transport counts */
};

struct hr_hub_limits {
    uint32_t max_messages;              /* history per channel (count) */
    size_t max_bytes;                   /* history per channel (payload bytes) */
    uint64_t max_age_ms;                /* history per channel (age); 0 = no limit */
};

#define HR_HUB_LIMITS_DEFAULT {.max_messages = 10000, .max_bytes = 16u << 20, .max_age_ms = 0}

struct hr_channel {
    char *name;
    UT_hash_handle hh;
    struct hr_hub *hub;
    uint64_t last_id;                   /* the last id committed (0: none yet) */
    uint64_t next_id;                   /* the id the next publish gets */
    struct hr_hub_msg *ring;            /* history, oldest at head */
    uint32_t cap, head, count;
    size_t bytes;
    struct hr_sub *subs;
    uint32_t nsubs[HR_FMT_COUNT];
};

struct hr_hub {
    uv_loop_t *loop;
    struct hr_store *store;
    struct hr_hub_limits limits;
    struct hr_channel *channels;        /* by name */
    uint64_t published;                 /* since start, for stats */
};

/* Channel names: 1..200 bytes of [A-Za-z0-9_.:@-], so "user:42" and "chat.room-1" work and
 * nothing needs escaping in a URL path, a header or a file. */
int hr_channel_name_valid(const char *name, size_t len);

/* Set up the hub and load the store's history. Returns 0 or a negative error. */
int hr_hub_init(struct hr_hub *hub, uv_loop_t *loop, struct hr_store *store,
                const struct hr_hub_limits *limits);
void hr_hub_free(struct hr_hub *hub);

/* The channel called name, created when create is set (NULL if invalid or absent). */
struct hr_channel *hr_hub_channel(struct hr_hub *hub, const char *name, size_t len, int create);

/* Publish: ack(ud, 0, id) once committed and delivered, or ack(ud, error, 0). */
typedef void (*hr_hub_ack_cb)(void *ud, int status, uint64_t id);
int hr_hub_publish(struct hr_hub *hub, struct hr_channel *ch, const void *data, size_t len,
                   hr_hub_ack_cb ack, void *ud);

/* History after cursor `since`: fn for each kept message with id > since, in order, until fn
 * returns non-zero. Returns 1 when messages after since were trimmed away (a gap: the reader
 * missed some), else 0. */
typedef int (*hr_hub_each_cb)(void *ud, struct hr_hub_msg *m);
int hr_hub_since(struct hr_channel *ch, uint64_t since, hr_hub_each_cb fn, void *ud);
/* The oldest id still kept (last_id + 1 when the history is empty). */
uint64_t hr_hub_first_id(const struct hr_channel *ch);

void hr_hub_subscribe(struct hr_channel *ch, struct hr_sub *sub);
void hr_hub_unsubscribe(struct hr_sub *sub);

/* An encoding of m for fmt, built once by make(m, ud) and then shared; NULL on failure. The
 * returned buffer is borrowed (hr_buf_ref it to keep it past the call). */
struct hr_buf *hr_hub_encoding(struct hr_hub_msg *m, int fmt,
                               struct hr_buf *(*make)(const struct hr_hub_msg *m, void *ud), void *ud);

#endif
