/* hub.h - named channels: ids, history, subscribers of any transport, and fan-out.
 *
 * A published message gets the channel's next id (1, 2, ...), is committed to the store, and
 * only then enters the channel's history and reaches its subscribers: an id is never shown
 * before it is durable, so a crash cannot hand the same id to two different messages. The
 * publisher's acknowledgement comes at that moment too. History is bounded by count, bytes and
 * age; a reader whose cursor is older than what is kept is told (a gap), never skipped past
 * silently. Each message is encoded at most once per wire format (hr_hub_encoding) and the
 * encoding is shared by every subscriber using that format.
 *
 * History lives in the store. In memory the hub keeps, per channel, a few words of metadata
 * (last id, first kept id, count, bytes: enough to tell gaps exactly) and a cache of its newest
 * messages: a contiguous tail of its history, so a reader at most that far behind is answered
 * at once. All caches together hold at most limits.cache_bytes (--history-cache); over it the
 * least recently used channel loses its oldest cached messages first. A read older than the
 * cache goes to the store, off the loop, a page at a time (hr_hub_read). With the memory store
 * the cache is the history: what the global bound evicts is gone (readers get a "trimmed"
 * gap), exactly like a message over --history. */
#ifndef HR_HUB_HUB_H
#define HR_HUB_HUB_H

#include <stddef.h>
#include <stdint.h>
#include <uthash.h>
#include <uv.h>

#include "core/buf.h"
#include "store/store.h"

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
    const char *pattern; /* fnmatch(3) glob over the channel name: "user:*" */
    uint8_t policy;
};
int hr_policy_parse(const char *name); /* HR_POLICY_* or HR_EINVAL */
const char *hr_policy_name(int policy);

/* How many encodings of a message the hub keeps (slots 0..HR_HUB_FORMATS-1). The hub knows no
 * wire format: the transports above number theirs (chan/wire.h) and build them
 * (hr_hub_encoding); a slot also keys the per-transport subscriber counts. */
#define HR_HUB_FORMATS 4

struct hr_hub_msg {
    uint64_t id;
    int64_t time_ms;                    /* wall clock at publish */
    struct hr_buf *data;                /* the payload as published */
    struct hr_buf *enc[HR_HUB_FORMATS]; /* encodings, built on first use */
    struct hr_hub *hub;                 /* set while cached: its encodings are charged there */
};

struct hr_sub;
struct hr_channel;
struct hr_hub_read;

struct hr_sub_ops {
    /* A new message for this subscriber. Return < 0 if the subscriber is gone (the hub then
     * unsubscribes it). Must not unsubscribe other subscribers. */
    int (*deliver)(struct hr_sub *sub, struct hr_channel *ch, struct hr_hub_msg *m);
};

/* A subscriber: embed it in the transport's own state (one owner: the transport). Every idle
 * reader of a channel holds one, so it is kept small: what only a lagging reader needs shares
 * one word per policy, and what only a reader not yet subscribed needs shares another. */
struct hr_sub {
    const struct hr_sub_ops *ops;
    struct hr_channel *ch; /* set by hr_hub_subscribe and kept after unsubscribing, for the
                            * owner; NULL once the channel itself is freed */
    struct hr_sub *prev, *next;
    uint64_t last; /* the last id it was sent */
    uint64_t lag;  /* while lagging: skip, the first id held back; coalesce, owed's id */
    union {
        /* subscribed, coalesce: the newest message held back, encoded (history may drop it
         * before the reader catches up) */
        struct hr_buf *owed;
        /* not subscribed: a read of the history its owner has under way (hr_hub_read) */
        struct hr_hub_read *read;
    };
    uint32_t readers;   /* readers it stands for (a Socket.IO room: its sockets), counted
                         * in nsubs; 1 when subscribed */
    uint8_t fmt;        /* its encoding slot (chan/wire.h), for the per-transport counts */
    uint8_t subscribed; /* on ch's list of subscribers */
    uint8_t lagging;    /* skip / coalesce: messages were held back */
    uint8_t flags;      /* free for the owner */
};

struct hr_hub_limits {
    uint32_t max_messages;                            /* history per channel (count) */
    size_t max_bytes;                                 /* history per channel (payload bytes) */
    uint64_t max_age_ms;                              /* history per channel (age); 0 = no limit */
    size_t cache_bytes;                               /* all channels' cached messages together */
    struct hr_policy_rule rules[HR_POLICY_RULES_MAX]; /* slow-consumer policy: first match */
    uint32_t nrules;
};

/* herald's defaults (the table in src/server/config.c; tests/unit/test_server_options.c keeps
 * them equal). */
#define HR_HUB_CACHE_DEFAULT (64u << 20)
#define HR_HUB_LIMITS_DEFAULT                                                                      \
    {                                                                                              \
        .max_messages = 10000, .max_bytes = 16u << 20, .max_age_ms = 0,                            \
        .cache_bytes = HR_HUB_CACHE_DEFAULT                                                        \
    }

struct hr_channel {
    UT_hash_handle hh;
    struct hr_hub *hub;
    /* the history (what the store keeps): exact, whatever is cached */
    uint64_t last_id;    /* the last id committed (0: none yet) */
    uint64_t next_id;    /* the id the next publish gets */
    uint64_t first_id;   /* the oldest id kept; last_id + 1 when none */
    uint64_t kept;       /* messages kept */
    uint64_t kept_bytes; /* their payload bytes */
    int64_t first_time;  /* first_id's publish time, for --history-age */
    /* the cache: the newest kept messages (ids first_cached()..last_id), oldest at head;
     * no ring at all while nothing is cached */
    struct hr_hub_msg *ring;
    uint32_t cap, head, cached;
    struct hr_channel *lru_prev, *lru_next; /* channels with something cached, oldest use first */
    struct hr_sub *subs;
    uint32_t nsubs[HR_HUB_FORMATS];
    uint8_t policy;   /* HR_POLICY_*, from the rules at creation */
    uint8_t trimming; /* a trim by limits is running in the store */
    char epoch[HR_EPOCH_LEN + 1];
    char name[]; /* NUL-terminated */
};

typedef void (*hr_hub_ack_cb)(void *ud, int status, uint64_t id);

struct hr_hub {
    uv_loop_t *loop;
    struct hr_store *store;
    struct hr_hub_limits limits;
    struct hr_channel *channels; /* by name */
    uint64_t published;          /* since start, for stats */
    size_t cache_bytes;          /* charged by cached messages and rings */
    struct hr_channel *lru_head, *lru_tail;
    struct hr_hub_read *reads; /* store reads under way */
    uint32_t busy;             /* pages or a fan-out being handed out: no eviction */
    uint32_t unshown;          /* publishes appended to the store, not yet shown */
    uint8_t committing;        /* a commit's trim: the commit tells the replicas */
    /* set by the owner around hr_hub_publish_buf for a publish a replica forwarded: the
     * replica times it (publish latency, core/metrics.h) from its own arrival, not this hub */
    uint8_t untimed;
    /* Several hubs of one history (worker threads, src/server/workers.c): one sequencer
     * gives ids and writes the store; the others are replicas that forward their publishes
     * to it and apply what it commits (hr_hub_apply). Both hooks are set by the owner;
     * neither is set for a hub on its own. */
    /* replica: a publish goes to the sequencer; ack(ud, ...) once it is committed there and
     * applied here (the hook's contract is hr_hub_publish_buf's) */
    int (*forward)(void *ud, struct hr_channel *ch, struct hr_buf *data, hr_hub_ack_cb ack,
                   void *ack_ud);
    /* sequencer: a message was committed, delivered here, and the history trimmed; or (id 0,
     * data NULL) the history was trimmed apart from a commit */
    void (*committed)(void *ud, struct hr_channel *ch, uint64_t id, int64_t time_ms,
                      struct hr_buf *data);
    /* every hub: its subscriber counts change (census) and are read as the sum over all the
     * hubs (count), see hr_hub_subscribers */
    void (*census)(void *ud, const char *name, int fmt, int32_t delta);
    void (*count)(void *ud, const char *name, size_t len, uint32_t out[HR_HUB_FORMATS]);
    /* replica: hr_hub_synced(r, 1) on this hub's loop once everything the sequencer committed
     * before the call is applied here (a round trip through the sequencer's loop), or
     * hr_hub_synced(r, 0) from any thread when it cannot be (r is then cancelled already:
     * the owner stops its readers before its hub goes) */
    int (*sync)(void *ud, struct hr_hub_read *r);
    void *relay_ud;
};

/* Channel names: 1..200 bytes of [A-Za-z0-9_.:@-], so "user:42" and "chat.room-1" work and
 * nothing needs escaping in a URL path, a header or a file. */
int hr_channel_name_valid(const char *name, size_t len);

/* Set up the hub and load the store's history. Returns 0 or a negative error. */
int hr_hub_init(struct hr_hub *hub, uv_loop_t *loop, struct hr_store *store,
                const struct hr_hub_limits *limits);
/* Close the store first: its last callbacks (commits, trims) still reach the hub's channels;
 * store reads still under way are cancelled here and freed by the store's answer. */
void hr_hub_free(struct hr_hub *hub);

/* The epoch channel `name` has (or would have) in this hub (see HR_EPOCH_LEN). */
void hr_hub_epoch(const struct hr_hub *hub, const char *name, size_t len,
                  char out[HR_EPOCH_LEN + 1]);

/* The channel called name, created when create is set (NULL if invalid or absent). */
struct hr_channel *hr_hub_channel(struct hr_hub *hub, const char *name, size_t len, int create);

/* Publish: ack(ud, 0, id) once committed and delivered, or ack(ud, error, 0). */
int hr_hub_publish(struct hr_hub *hub, struct hr_channel *ch, const void *data, size_t len,
                   hr_hub_ack_cb ack, void *ud);
/* The same for a payload already in a buffer: the hub takes a reference of its own (the
 * caller keeps and unrefs its own), the store another until the commit, and the message in
 * the history is that very buffer - no copy. It must not change afterwards. */
int hr_hub_publish_buf(struct hr_hub *hub, struct hr_channel *ch, struct hr_buf *data,
                       hr_hub_ack_cb ack, void *ud);

/* A channel's subscribers by wire format (ch may be NULL: none here): this hub's, or every
 * hub's of the history when it is one of several. */
void hr_hub_subscribers(struct hr_hub *hub, struct hr_channel *ch, const char *name, size_t len,
                        uint32_t out[HR_HUB_FORMATS]);

/* A replica applies a message its sequencer committed (in commit order): it enters the cache
 * and reaches this hub's subscribers, and the channel's metadata becomes the sequencer's (meta:
 * after its trim). The hub takes its own reference to data. data NULL: only the metadata
 * (a trim). */
int hr_hub_apply(struct hr_hub *hub, const char *name, size_t len, uint64_t id, int64_t time_ms,
                 struct hr_buf *data, const struct hr_store_meta *meta);

/* One page of history: the kept messages after a cursor, ids increasing. The messages are
 * borrowed for the callback only (hr_buf_ref what must outlive it). */
struct hr_hub_page {
    int status;     /* 0, or the store's error (then n is 0) */
    uint64_t first; /* the oldest id kept when read: since + 1 < first
                     * means the reader missed some (a gap) */
    uint32_t n;
    struct hr_hub_msg **m;
};
typedef void (*hr_hub_page_cb)(void *ud, struct hr_channel *ch, const struct hr_hub_page *pg);

#define HR_HUB_PAGE_MAX 1024           /* messages in one page */
#define HR_HUB_PAGE_BYTES (256u << 10) /* about the payload bytes of a page read from the store */

/* Read a page of ch's history after since: at most max messages (up to HR_HUB_PAGE_MAX).
 * When the cache holds what comes after since (or since is up to date), cb runs inside the
 * call and it returns 0. Else the page is read from the store off the loop: it returns 1,
 * sets *req (when req is not NULL) and cb runs later, unless hr_hub_read_cancel(*req) is
 * called first. < 0: an error, cb is not called. */
int hr_hub_read(struct hr_channel *ch, uint64_t since, uint32_t max, hr_hub_page_cb cb, void *ud,
                struct hr_hub_read **req);
void hr_hub_read_cancel(struct hr_hub_read *req);
/* A reader's cursor past a channel's last id: on a replica it may name a commit still on its
 * way here (another worker delivered it first), which is not a lost history. Then cb(ud, ch,
 * an empty page) runs once this hub has applied every commit made before the call: it returns
 * 1 and sets *req (hr_hub_read_cancel(*req) drops it); ch (may be NULL) is kept meanwhile.
 * 0: nothing to wait for (a hub on its own, or the sequencer, knows every id given out).
 * < 0: an error, cb is not called. */
int hr_hub_sync(struct hr_hub *hub, struct hr_channel *ch, hr_hub_page_cb cb, void *ud,
                struct hr_hub_read **req);
/* The owner's answer to hub->sync: here, on the hub's loop (cb runs unless cancelled); else
 * only freed. */
void hr_hub_synced(struct hr_hub_read *r, int here);
/* Whether hr_hub_read(ch, since, ...) would answer at once. */
int hr_hub_cached(const struct hr_channel *ch, uint64_t since);
/* The oldest id still kept (last_id + 1 when the history is empty). */
uint64_t hr_hub_first_id(const struct hr_channel *ch);

/* Evict cached messages (least recently used channel first) until the cache holds at most
 * target bytes: for a global memory budget under pressure. With the memory store this trims
 * history, as the --history-cache bound does. Not from inside a page or deliver callback. */
void hr_hub_cache_shrink(struct hr_hub *hub, size_t target);

/* Messages kept past a page (a Socket.IO replay that must send them all at once): copies
 * of the page's messages, sharing their payloads. */
struct hr_hub_span {
    uint64_t first;
    uint32_t n, cap;
    size_t bytes;
    struct hr_hub_msg *m;
};
int hr_hub_span_add(struct hr_hub_span *sp, const struct hr_hub_page *pg);
void hr_hub_span_free(struct hr_hub_span *sp);

void hr_hub_subscribe(struct hr_channel *ch, struct hr_sub *sub);
void hr_hub_unsubscribe(struct hr_sub *sub);
/* Coalesce: a slow reader owes only the newest message; keep its encoding (replacing the one
 * kept before) and its id (sub->lag). */
void hr_sub_owe(struct hr_sub *sub, struct hr_buf *enc, uint64_t id);
/* Forget ch if nobody ever published to it and nobody reads it: reads of made-up names must
 * not pile up. ch may be freed: the caller must not use it afterwards. */
void hr_hub_forget_unused(struct hr_channel *ch);
/* A subscriber that fans out further (a Socket.IO room) now stands for n readers. */
void hr_hub_readers(struct hr_sub *sub, uint32_t n);

/* An encoding of m for fmt, built once by make(m, ud) and then shared; NULL on failure. The
 * returned buffer is borrowed (hr_buf_ref it to keep it past the call). */
struct hr_buf *hr_hub_encoding(struct hr_hub_msg *m, int fmt,
                               struct hr_buf *(*make)(const struct hr_hub_msg *m, void *ud),
                               void *ud);

#endif
