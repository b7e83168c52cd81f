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
/* A channel's epoch: 12 hex digits of SHA-256(store epoch, channel name). It changes whenever
 * the store's epoch does (history could have been lost), and differs between channels, so a
 * cursor "<epoch>:<id>" names one message of one channel: one taken from another channel is
 * noticed (a gap "epoch"), never read as an id of this one. */
#define HR_EPOCH_LEN 12

/* What happens to a subscriber whose output queue is over --max-queued when a message comes
 * (a slow consumer), per channel by name pattern (--channel-policy PATTERN=POLICY):
 *   disconnect  it is disconnected and told why (SSE "event: close", WebSocket 1008); it
 *               resumes from its cursor when it comes back, so nothing is lost (the default);
 *   skip        messages are dropped while it is behind; once its output drains it gets a gap
 *               notice (reason "slow", the ids it missed) and goes on with the newest ones;
 *   coalesce    only the latest message is owed: once its output drains it gets the newest
 *               one held back, kept by the subscriber even if history drops it
 *               (state-like channels such as an unread counter).
 * Memory stays bounded in every case: nothing is queued past the limit. */
enum { HR_POLICY_DISCONNECT, HR_POLICY_SKIP, HR_POLICY_COALESCE };
#define HR_POLICY_RULES_MAX 16
struct hr_policy_rule {
    const char *pattern;                /* fnmatch(3) glob over the channel name: "user:*" */
    uint8_t policy;
};
int hr_policy_parse(const char *name);  /* HR_POLICY_* or -1 */
const char *hr_policy_name(int policy);

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
    uint32_t readers;                   /* readers it stands for (a Socket.IO room: its
                                         * sockets), counted in nsubs; 1 when subscribed */
    uint8_t lagging;                    /* skip / coalesce: messages were held back */
    uint64_t lag_from;                  /* the first id held back */
    uint64_t last;                      /* the last id it was sent */
    struct hr_buf *owed;                /* coalesce: the newest held back, encoded (history
                                         * may drop it before the reader catches up) */
    uint64_t owed_id;
};

struct hr_hub_limits {
    uint32_t max_messages;              /* history per channel (count) */
    size_t max_bytes;                   /* history per channel (payload bytes) */
    uint64_t max_age_ms;                /* history per channel (age); 0 = no limit */
    struct hr_policy_rule rules[HR_POLICY_RULES_MAX]; /* slow-consumer policy: first match */
    uint32_t nrules;
};

#define HR_HUB_LIMITS_DEFAULT {.max_messages = 10000, .max_bytes = 16u << 20, .max_age_ms = 0}

struct hr_channel {
    char *name;
    UT_hash_handle hh;
    struct hr_hub *hub;
    char epoch[HR_EPOCH_LEN + 1];
    uint64_t last_id;                   /* the last id committed (0: none yet) */
    uint64_t next_id;                   /* the id the next publish gets */
    struct hr_hub_msg *ring;            /* history, oldest at head */
    uint32_t cap, head, count;
    size_t bytes;
    struct hr_sub *subs;
    uint32_t nsubs[HR_FMT_COUNT];
    uint8_t policy;                     /* HR_POLICY_*, from the rules at creation */
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

/* The epoch channel `name` has (or would have) in this hub (see HR_EPOCH_LEN). */
void hr_hub_epoch(const struct hr_hub *hub, const char *name, size_t len, char out[HR_EPOCH_LEN + 1]);

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
/* Coalesce: a slow reader owes only the newest message; keep its encoding (replacing the one
 * kept before). */
void hr_sub_owe(struct hr_sub *sub, struct hr_buf *enc, uint64_t id);
/* Forget ch if nobody ever published to it and nobody reads it: reads of made-up names must
 * not pile up. ch may be freed: the caller must not use it afterwards. */
void hr_hub_forget_unused(struct hr_channel *ch);
/* A subscriber that fans out further (a Socket.IO room) now stands for n readers. */
void hr_hub_readers(struct hr_sub *sub, uint32_t n);

/* An encoding of m for fmt, built once by make(m, ud) and then shared; NULL on failure. The
 * returned buffer is borrowed (hr_buf_ref it to keep it past the call). */
struct hr_buf *hr_hub_encoding(struct hr_hub_msg *m, int fmt,
                               struct hr_buf *(*make)(const struct hr_hub_msg *m, void *ud), void *ud);

#endif
