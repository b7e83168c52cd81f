/* workers.c - --workers N: N servers in one process, one per thread, each with its own loop,
 * connections, Socket.IO sessions and hub, made one server by messages:
 *   - the port is shared (SO_REUSEPORT): the kernel spreads new connections over the workers;
 *   - one channel history: worker 0 is the sequencer (it gives ids and writes the store); the
 *     others forward their publishes to it and apply what it commits, in its order, to their
 *     own hub (a replica: its own cache, its own subscribers, reads of older history from its
 *     own handle on the store), so a channel's subscribers may be on any worker;
 *   - a Socket.IO broadcast is relayed to the other workers' sockets;
 *   - an Engine.IO request whose session another worker holds (its id names the worker) is
 *     taken there with its connection, before it is parsed.
 * Workers share no object: each message is a copy in the receiver's inbox (a list under a
 * mutex and a uv_async), so the only lock on the fan-out path is the inbox's, taken once per
 * message per worker, never per delivery. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uthash.h>

#include "core/budget.h"
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "io.h"
#include "sio/admin.h"
#include "sio/recovery.h"

/* A message for one worker. run is called on its thread, or with to == NULL when the worker
 * no longer takes messages (then it only frees). */
struct wmsg {
    struct wmsg *next;
    void (*run)(struct hr_io *to, struct wmsg *m);
};

struct inbox {
    uv_mutex_t lock;
    struct wmsg *head, *tail;
    uv_async_t wake;
    struct hr_io *io;
    int open; /* taking messages: its loop runs them */
};

struct hr_workers {
    unsigned n;
    int port;
    atomic_int stopping;
    uv_sem_t ready;
    uv_sem_t listening; /* a worker closed its listener (hr_workers_stop) */
    int status[HR_WORKERS_MAX];
    uint8_t started[HR_WORKERS_MAX];
    uv_thread_t thread[HR_WORKERS_MAX];
    struct inbox box[HR_WORKERS_MAX];
    struct hr_server_group conns; /* the connection limits are the process's */
    /* worker 0's: how many others run, how many have stopped, whether it has */
    unsigned running, done;
    uint8_t zero_stopped;
    uv_mutex_t census_lock;
    struct census *census; /* every channel with subscribers on some worker */
};

/* A channel's subscribers summed over the workers (what GET /pub/{channel} reports). Changed
 * when a subscriber comes or goes, never per message. */
struct census {
    UT_hash_handle hh;
    uint32_t n[HR_HUB_FORMATS];
    uint64_t total;
    char name[];
};

/* A publish forwarded to the sequencer, waiting for its acknowledgement. */
struct hr_forward {
    struct hr_forward *prev, *next;
    hr_hub_ack_cb ack;
    void *ud;
    size_t bytes;
    uint64_t t0; /* uv_hrtime when it came: its publish latency is timed here */
};

/* ---- inboxes ---- */

static void post(struct hr_workers *w, unsigned to, struct wmsg *m)
{
    struct inbox *b = &w->box[to];
    m->next = NULL;
    uv_mutex_lock(&b->lock);
    if (!b->open) {
        uv_mutex_unlock(&b->lock);
        m->run(NULL, m);
        return;
    }
    if (b->tail)
        b->tail->next = m;
    else
        b->head = m;
    b->tail = m;
    uv_mutex_unlock(&b->lock);
    uv_async_send(&b->wake);
}

static void inbox_cb(uv_async_t *a)
{
    struct inbox *b = a->data;
    uv_mutex_lock(&b->lock);
    struct wmsg *m = b->head;
    b->head = b->tail = NULL;
    uv_mutex_unlock(&b->lock);
    while (m) {
        struct wmsg *next = m->next;
        m->run(b->io, m);
        m = next;
    }
}

static int inbox_open(struct hr_workers *w, struct hr_io *r)
{
    struct inbox *b = &w->box[r->worker];
    if (uv_async_init(r->loop, &b->wake, inbox_cb) < 0)
        return HR_ENOMEM;
    b->wake.data = b;
    b->io = r;
    uv_mutex_lock(&b->lock);
    b->open = 1;
    uv_mutex_unlock(&b->lock);
    return 0;
}

/* Take no more messages into worker k's inbox: what is in it is freed unrun. */
static void close_inbox(struct hr_workers *w, unsigned k)
{
    struct inbox *b = &w->box[k];
    uv_mutex_lock(&b->lock);
    int was_open = b->open;
    b->open = 0;
    struct wmsg *m = b->head;
    b->head = b->tail = NULL;
    uv_mutex_unlock(&b->lock);
    for (struct wmsg *next; m; m = next) {
        next = m->next;
        m->run(NULL, m);
    }
    if (was_open)
        uv_close((uv_handle_t *)&b->wake, NULL);
}

/* Worker 0 hears that another worker's server stopped. */
static void run_done(struct hr_io *to, struct wmsg *m)
{
    free(m);
    if (!to)
        return;
    struct hr_workers *w = to->workers;
    w->done++;
    if (w->zero_stopped && w->done >= w->running) {
        close_inbox(w, 0);
        hr_io_release(to);
    }
}

int hr_workers_stopped(struct hr_io *r)
{
    struct hr_workers *w = r->workers;
    if (!w)
        return 1;
    if (r->worker == 0) {
        /* the sequencer goes on taking the others' publishes, and the signals, until every
         * other worker has stopped: a second signal still reaches their connections */
        w->zero_stopped = 1;
        if (w->done < w->running)
            return 0;
        close_inbox(w, 0);
        return 1;
    }
    close_inbox(w, r->worker);
    struct wmsg *m = calloc(1, sizeof(*m));
    if (m) {
        m->run = run_done;
        post(w, 0, m);
    }
    return 1;
}

/* ---- stopping ---- */

struct stop_listening {
    struct wmsg m;
    struct hr_workers *w;
};

static void run_stop(struct hr_io *to, struct wmsg *m)
{
    free(m);
    if (to)
        herald_stop(&to->sio);
}

/* First of two steps: every worker stops accepting, and says so (also when it no longer takes
 * messages: its listener is closed already). */
static void run_close_listener(struct hr_io *to, struct wmsg *m)
{
    struct hr_workers *w = ((struct stop_listening *)m)->w;
    free(m);
    if (to)
        hr_server_close_listener(&to->srv);
    uv_sem_post(&w->listening);
}

static void post_stops(struct hr_io *r)
{
    struct hr_workers *w = r->workers;
    for (unsigned k = 0; k < w->n; k++) {
        if (k == r->worker)
            continue;
        struct wmsg *m = calloc(1, sizeof(*m));
        if (m) {
            m->run = run_stop;
            post(w, k, m);
        }
    }
}

void hr_workers_stop(struct hr_io *r)
{
    struct hr_workers *w = r->workers;
    if (!w || atomic_exchange(&w->stopping, 1))
        return;
    /* no worker accepts any more before any of them tells its clients to go: a client that
     * saw its close cannot connect to another worker (a short wait: workers never block) */
    unsigned asked = 0;
    for (unsigned k = 0; k < w->n; k++) {
        if (k == r->worker)
            continue;
        struct stop_listening *m = calloc(1, sizeof(*m));
        if (!m)
            continue;
        m->m.run = run_close_listener;
        m->w = w;
        post(w, k, &m->m);
        asked++;
    }
    while (asked--)
        uv_sem_wait(&w->listening);
    post_stops(r);
}

void hr_workers_stop_now(struct hr_io *r)
{
    /* each stopping worker, told again, closes its connections without waiting */
    if (r->workers && r->worker == 0)
        post_stops(r);
}

/* ---- channels: publishes go to the sequencer, commits come back ---- */

struct publish_msg {
    struct wmsg m;
    unsigned origin;
    struct hr_forward *fw;
    size_t name_len, len;
    char bytes[]; /* name, then the payload */
};

struct ack_msg {
    struct wmsg m;
    struct hr_forward *fw;
    int status;
    uint64_t id;
};

struct apply_msg {
    struct wmsg m;
    uint64_t id;
    int64_t time_ms;
    struct hr_store_meta meta;
    size_t name_len, len;
    char bytes[];
};

struct publish_rec {
    struct hr_workers *w;
    unsigned origin;
    struct hr_forward *fw;
};

static void run_ack(struct hr_io *to, struct wmsg *m)
{
    struct ack_msg *a = (struct ack_msg *)m;
    if (to) {
        struct hr_forward *fw = a->fw;
        if (fw->prev)
            fw->prev->next = fw->next;
        else
            to->forwarded = fw->next;
        if (fw->next)
            fw->next->prev = fw->prev;
        hr_budget_release(HR_MEM_PUBLISH, fw->bytes);
        if (a->status == 0)
            hr_metrics_publish_latency(uv_hrtime() - fw->t0);
        if (fw->ack)
            fw->ack(fw->ud, a->status, a->id);
        free(fw);
    }
    free(a);
}

static void send_ack(struct hr_workers *w, unsigned origin, struct hr_forward *fw, int status,
                     uint64_t id)
{
    struct ack_msg *a = calloc(1, sizeof(*a));
    if (!a)
        return; /* the origin fails it when it stops: nothing better can be done */
    a->m.run = run_ack;
    a->fw = fw;
    a->status = status;
    a->id = id;
    post(w, origin, &a->m);
}

static void published_cb(void *ud, int status, uint64_t id)
{
    struct publish_rec *rec = ud;
    send_ack(rec->w, rec->origin, rec->fw, status, id);
    free(rec);
}

/* On the sequencer: a publish another worker forwarded. */
static void run_publish(struct hr_io *to, struct wmsg *m)
{
    struct publish_msg *p = (struct publish_msg *)m;
    if (to) {
        struct hr_workers *w = to->workers;
        struct hr_channel *ch = hr_hub_channel(&to->hub, p->bytes, p->name_len, 1);
        struct hr_buf *data = ch ? hr_buf_from(p->bytes + p->name_len, p->len) : NULL;
        struct publish_rec *rec = data ? malloc(sizeof(*rec)) : NULL;
        int rc = HR_ENOMEM;
        if (rec) {
            *rec = (struct publish_rec){w, p->origin, p->fw};
            to->hub.untimed = 1; /* the replica times it, from its arrival there */
            rc = hr_hub_publish_buf(&to->hub, ch, data, published_cb, rec);
            to->hub.untimed = 0;
            if (rc < 0)
                free(rec);
        }
        if (data)
            hr_buf_unref(data);
        if (rc < 0)
            send_ack(w, p->origin, p->fw, ch ? rc : HR_EINVAL, 0);
    }
    free(p);
}

/* The replicas' hub hook: a publish goes to the sequencer. */
static int forward_cb(void *ud, struct hr_channel *ch, struct hr_buf *data, hr_hub_ack_cb ack,
                      void *ack_ud)
{
    struct hr_io *r = ud;
    size_t nlen = strlen(ch->name);
    struct hr_forward *fw = calloc(1, sizeof(*fw));
    struct publish_msg *p = fw ? malloc(sizeof(*p) + nlen + data->len) : NULL;
    if (!p) {
        free(fw);
        return HR_ENOMEM;
    }
    *fw = (struct hr_forward){
        .next = r->forwarded, .ack = ack, .ud = ack_ud, .bytes = data->len, .t0 = uv_hrtime()};
    if (r->forwarded)
        r->forwarded->prev = fw;
    r->forwarded = fw;
    /* charged as a publish waiting for its commit, as the sequencer's own are */
    hr_budget_charge(HR_MEM_PUBLISH, data->len);
    p->m.run = run_publish;
    p->origin = r->worker;
    p->fw = fw;
    p->name_len = nlen;
    p->len = data->len;
    memcpy(p->bytes, ch->name, nlen);
    memcpy(p->bytes + nlen, data->data, data->len);
    post(r->workers, 0, &p->m);
    return 0;
}

void hr_workers_fail_forwarded(struct hr_io *r)
{
    while (r->forwarded) {
        struct hr_forward *fw = r->forwarded;
        r->forwarded = fw->next;
        hr_budget_release(HR_MEM_PUBLISH, fw->bytes);
        if (fw->ack)
            fw->ack(fw->ud, HR_ECLOSED, 0);
        free(fw);
    }
}

static void run_apply(struct hr_io *to, struct wmsg *m)
{
    struct apply_msg *a = (struct apply_msg *)m;
    struct hr_buf *data = to && a->id ? hr_buf_from(a->bytes + a->name_len, a->len) : NULL;
    if (to && (data || !a->id))
        hr_hub_apply(&to->hub, a->bytes, a->name_len, a->id, a->time_ms, data, &a->meta);
    hr_buf_unref(data);
    free(a);
}

/* The sequencer's hub hook: what it committed goes to every replica. */
static void committed_cb(void *ud, struct hr_channel *ch, uint64_t id, int64_t time_ms,
                         struct hr_buf *data)
{
    struct hr_io *r = ud;
    struct hr_workers *w = r->workers;
    if (!w)
        return;
    size_t nlen = strlen(ch->name), dlen = data ? data->len : 0;
    struct hr_store_meta meta = {.first_id = hr_hub_first_id(ch),
                                 .last_id = ch->last_id,
                                 .count = ch->kept,
                                 .bytes = ch->kept_bytes,
                                 .first_time = ch->first_time};
    for (unsigned k = 1; k < w->n; k++) {
        struct apply_msg *a = malloc(sizeof(*a) + nlen + dlen);
        if (!a) {
            /* that worker's readers would miss it silently: they are told by a gap instead */
            hr_error("worker %u: out of memory relaying a message of %s", k, ch->name);
            continue;
        }
        a->m.run = run_apply;
        a->id = id;
        a->time_ms = time_ms;
        a->meta = meta;
        a->name_len = nlen;
        a->len = dlen;
        memcpy(a->bytes, ch->name, nlen);
        if (dlen)
            memcpy(a->bytes + nlen, data->data, dlen);
        post(w, k, &a->m);
    }
}

/* A replica's wait for what the sequencer committed so far (hr_hub_sync): a message to the
 * sequencer, which sends it back; it comes back after every commit the sequencer relayed
 * before, since each inbox keeps its order. */
struct sync_msg {
    struct wmsg m;
    struct hr_workers *w;
    unsigned origin;
    struct hr_hub_read *r;
};

static void run_synced(struct hr_io *to, struct wmsg *m)
{
    struct sync_msg *sm = (struct sync_msg *)m;
    hr_hub_synced(sm->r, to != NULL);
    free(sm);
}

static void run_sync(struct hr_io *to, struct wmsg *m)
{
    struct sync_msg *sm = (struct sync_msg *)m;
    (void)to; /* the sequencer, or NULL: its inbox closed (only after the others stopped) */
    sm->m.run = run_synced;
    post(sm->w, sm->origin, &sm->m);
}

static int sync_cb(void *ud, struct hr_hub_read *rd)
{
    struct hr_io *r = ud;
    struct sync_msg *sm = malloc(sizeof(*sm));
    if (!sm)
        return HR_ENOMEM;
    *sm = (struct sync_msg){.m.run = run_sync, .w = r->workers, .origin = r->worker, .r = rd};
    post(r->workers, 0, &sm->m);
    return 0;
}

/* ---- Socket.IO broadcasts ---- */

struct broadcast_msg {
    struct wmsg m;
    char *nsp, *room, *event, *raw;
    size_t len, nbins;
    struct herald_bin bins[];
};

static void run_broadcast(struct hr_io *to, struct wmsg *m)
{
    struct broadcast_msg *b = (struct broadcast_msg *)m;
    if (to)
        hr_sio_relayed(&to->sio, b->nsp, b->room, b->event, b->raw, b->len, b->bins, b->nbins);
    free(b);
}

static void relay_cb(void *ud, const char *nsp, const char *room, const char *event,
                     const char *raw, size_t len, const struct herald_bin *bins, size_t nbins)
{
    struct hr_io *r = ud;
    struct hr_workers *w = r->workers;
    size_t nsp_len = strlen(nsp) + 1, room_len = room ? strlen(room) + 1 : 0,
           ev_len = strlen(event) + 1, bytes = nsp_len + room_len + ev_len + len + 1;
    for (size_t i = 0; i < nbins; i++)
        bytes += bins[i].len;
    for (unsigned k = 0; k < w->n; k++) {
        if (k == r->worker)
            continue;
        struct broadcast_msg *b = malloc(sizeof(*b) + nbins * sizeof(b->bins[0]) + bytes);
        if (!b) {
            hr_error("worker %u: out of memory relaying a broadcast", k);
            continue;
        }
        char *p = (char *)&b->bins[nbins];
        b->m.run = run_broadcast;
        b->nsp = memcpy(p, nsp, nsp_len);
        p += nsp_len;
        b->room = room ? memcpy(p, room, room_len) : NULL;
        p += room_len;
        b->event = memcpy(p, event, ev_len);
        p += ev_len;
        b->raw = memcpy(p, raw, len);
        p[len] = '\0';
        p += len + 1;
        b->len = len;
        b->nbins = nbins;
        for (size_t i = 0; i < nbins; i++) {
            b->bins[i] = (struct herald_bin){memcpy(p, bins[i].data, bins[i].len), bins[i].len};
            p += bins[i].len;
        }
        post(w, k, &b->m);
    }
}

/* ---- subscriber counts ---- */

static void census_cb(void *ud, const char *name, int fmt, int32_t delta)
{
    struct hr_workers *w = ((struct hr_io *)ud)->workers;
    size_t len = strlen(name);
    struct census *e;
    uv_mutex_lock(&w->census_lock);
    HASH_FIND(hh, w->census, name, len, e);
    if (!e && delta > 0 && (e = calloc(1, sizeof(*e) + len + 1))) {
        memcpy(e->name, name, len + 1);
        HASH_ADD(hh, w->census, name[0], len, e);
    }
    if (e) {
        e->n[fmt] += (uint32_t)delta;
        e->total += (uint64_t)(int64_t)delta;
        if (!e->total) {
            HASH_DEL(w->census, e);
            free(e);
        }
    }
    uv_mutex_unlock(&w->census_lock);
}

static void count_cb(void *ud, const char *name, size_t len, uint32_t out[HR_HUB_FORMATS])
{
    struct hr_workers *w = ((struct hr_io *)ud)->workers;
    struct census *e;
    uv_mutex_lock(&w->census_lock);
    HASH_FIND(hh, w->census, name, len, e);
    for (int f = 0; f < HR_HUB_FORMATS; f++)
        out[f] = e ? e->n[f] : 0;
    uv_mutex_unlock(&w->census_lock);
}

/* ---- Socket.IO sessions saved on another worker ---- */

struct ask_msg {
    struct wmsg m;
    struct hr_workers *w;
    unsigned origin;
    uint64_t token;
    char *nsp, *pid, *offset; /* in bytes */
    char bytes[];
};

struct answer_msg {
    struct wmsg m;
    uint64_t token;
    struct hr_sio_saved *sv;
    struct hr_sio_kept *chain;
};

static void run_answer(struct hr_io *to, struct wmsg *m)
{
    struct answer_msg *a = (struct answer_msg *)m;
    if (to)
        hr_sio_moved(&to->sio, a->token, a->sv, a->chain);
    else
        hr_sio_moved_free(a->sv, a->chain);
    free(a);
}

static void run_ask(struct hr_io *to, struct wmsg *m)
{
    struct ask_msg *q = (struct ask_msg *)m;
    struct answer_msg *a = calloc(1, sizeof(*a));
    if (to && a)
        a->sv = hr_sio_recovery_take(&to->sio, q->nsp, q->pid, q->offset, &a->chain);
    if (a) {
        a->m.run = run_answer;
        a->token = q->token;
        /* a stopped worker still answers (nothing), so the asking one is not left waiting */
        post(q->w, q->origin, &a->m);
    }
    free(q);
}

static unsigned ask_cb(void *ud, uint64_t token, const char *nsp, const char *pid,
                       const char *offset)
{
    struct hr_io *r = ud;
    struct hr_workers *w = r->workers;
    size_t ln = strlen(nsp) + 1, lp = strlen(pid) + 1, lo = strlen(offset) + 1;
    unsigned asked = 0;
    for (unsigned k = 0; k < w->n; k++) {
        if (k == r->worker)
            continue;
        struct ask_msg *q = malloc(sizeof(*q) + ln + lp + lo);
        if (!q)
            continue;
        q->m.run = run_ask;
        q->w = w;
        q->origin = r->worker;
        q->token = token;
        q->nsp = memcpy(q->bytes, nsp, ln);
        q->pid = memcpy(q->bytes + ln, pid, lp);
        q->offset = memcpy(q->bytes + ln + lp, offset, lo);
        asked++;
        post(w, k, &q->m);
    }
    return asked;
}

/* ---- Engine.IO requests go to the worker holding their session ---- */

struct handoff_msg {
    struct wmsg m;
    struct hr_sock sock; /* with its TLS session, if any */
    size_t len;
    char data[];
};

static void run_handoff(struct hr_io *to, struct wmsg *m)
{
    struct handoff_msg *h = (struct handoff_msg *)m;
    if (to)
        hr_server_adopt(&to->srv, h->sock, h->data, h->len);
    else
        hr_sock_close(&h->sock);
    free(h);
}

/* The session a request names (its sid query parameter), if it is one of this server's
 * Engine.IO path: which worker holds it, or -1. */
static int session_worker(const struct hr_io *r, const char *line, size_t len)
{
    const char *sp = memchr(line, ' ', len);
    if (!sp)
        return -1;
    const char *t = sp + 1, *end = line + len;
    const char *te = memchr(t, ' ', (size_t)(end - t));
    size_t plen = strlen(r->eio.opts.path);
    if (!te || (size_t)(te - t) < plen || memcmp(t, r->eio.opts.path, plen) != 0)
        return -1;
    const char *q = memchr(t, '?', (size_t)(te - t));
    for (const char *p = q ? q + 1 : NULL; p && p < te;) {
        if (te - p > 4 && memcmp(p, "sid=", 4) == 0)
            return hr_eio_sid_worker(p + 4, (size_t)(te - p - 4));
        p = memchr(p, '&', (size_t)(te - p));
        if (p)
            p++;
    }
    return -1;
}

#define STEER_LINE_MAX 8192 /* a longer request line is served here (and refused there) */

static int steer_cb(struct hr_conn *c, const char *data, size_t len, void *ud)
{
    struct hr_io *r = ud;
    struct hr_workers *w = r->workers;
    const char *nl = memchr(data, '\n', len < STEER_LINE_MAX ? len : STEER_LINE_MAX);
    if (!nl)
        return len < STEER_LINE_MAX ? HR_AGAIN : 0;
    int k = session_worker(r, data, (size_t)(nl - data));
    if (k < 0 || (unsigned)k >= w->n || (unsigned)k == r->worker)
        return 0;
    struct handoff_msg *h = malloc(sizeof(*h) + len);
    if (!h)
        return 0;
    memcpy(h->data, data, len);
    h->len = len;
    if (hr_conn_detach(c, &h->sock) < 0) {
        free(h); /* output still held back: served here (the session is unknown here) */
        return 0;
    }
    h->m.run = run_handoff;
    post(w, (unsigned)k, &h->m);
    return 1;
}

/* ---- starting and joining ---- */

static void link_worker(struct hr_workers *w, struct hr_io *r)
{
    r->workers = w;
    r->srv.group = &w->conns;
    r->router.steer = steer_cb;
    r->router.steer_ud = r;
    r->sio.relay = relay_cb;
    r->sio.relay_ud = r;
    r->sio.ask = ask_cb;
    r->hub.relay_ud = r;
    r->hub.census = census_cb;
    r->hub.count = count_cb;
    if (r->worker == 0)
        r->hub.committed = committed_cb;
    else {
        r->hub.forward = forward_cb;
        r->hub.sync = sync_cb;
    }
}

struct start {
    struct hr_workers *w;
    struct hr_io *first;
    unsigned k;
};

static void worker_main(void *arg)
{
    struct start *st = arg;
    struct hr_workers *w = st->w;
    struct hr_io *first = st->first;
    unsigned k = st->k;
    free(st);
    uv_loop_t loop;
    int rc = 1;
    struct hr_io *r = NULL;
    if (uv_loop_init(&loop) == 0) {
        r = hr_io_make(&first->cfg, first->eio_app, first->app_name, &loop, k, first->store);
        if (r) {
            r->push.publish = r->sio.publish = first->push.publish; /* one table */
            hr_sio_admin_share(&r->sio, &first->sio);               /* one count of admin sockets */
        }
        if (r && hr_sio_copy_handlers(&r->sio, &first->sio) == 0 && inbox_open(w, r) == 0) {
            link_worker(w, r);
            r->srv.tls = first->tls; /* one certificate, reloaded once for all */
            rc = hr_io_listen(r, w->port);
        }
    }
    w->status[k] = rc;
    uv_sem_post(&w->ready);
    if (!r) {
        if (rc == 1)
            fprintf(stderr, "herald: worker %u could not start\n", k);
        uv_loop_close(&loop);
        return;
    }
    if (rc == 0) {
        r->running = 1;
        uv_run(r->loop, UV_RUN_DEFAULT);
    }
    hr_io_finish(r);
}

int hr_workers_start(struct hr_io *r)
{
    unsigned n = hr_io_workers(&r->cfg);
    struct hr_workers *w = calloc(1, sizeof(*w));
    if (!w || uv_sem_init(&w->ready, 0) < 0) {
        free(w);
        return HR_ENOMEM;
    }
    if (uv_sem_init(&w->listening, 0) < 0) {
        uv_sem_destroy(&w->ready);
        free(w);
        return HR_ENOMEM;
    }
    w->n = n;
    w->port = hr_server_port(&r->srv);
    for (unsigned k = 0; k < n; k++)
        uv_mutex_init(&w->box[k].lock);
    uv_mutex_init(&w->census_lock);
    if (hr_server_group_init(&w->conns) < 0 || inbox_open(w, r) < 0) {
        uv_sem_destroy(&w->ready);
        uv_sem_destroy(&w->listening);
        free(w);
        return HR_ENOMEM;
    }
    link_worker(w, r);
    int rc = 0;
    for (unsigned k = 1; k < n; k++) {
        struct start *st = malloc(sizeof(*st));
        if (!st) {
            rc = HR_ENOMEM;
            break;
        }
        *st = (struct start){w, r, k};
        if (uv_thread_create(&w->thread[k], worker_main, st) != 0) {
            free(st);
            rc = HR_ENOMEM;
            break;
        }
        w->started[k] = 1;
        /* one at a time: each reads worker 0's configuration and handlers while it waits */
        uv_sem_wait(&w->ready);
        if (w->status[k] != 0) {
            rc = HR_EINVAL;
            break;
        }
        w->running++;
    }
    if (rc < 0) {
        hr_workers_stop(r);
        atomic_store(&w->stopping, 1);
    }
    return rc;
}

void hr_workers_join(struct hr_io *r)
{
    struct hr_workers *w = r->workers;
    if (!w || r->worker != 0)
        return;
    for (unsigned k = 1; k < w->n; k++)
        if (w->started[k])
            uv_thread_join(&w->thread[k]);
    close_inbox(w, 0);
    r->workers = NULL;
    r->hub.committed = NULL;
    r->hub.census = NULL;
    r->hub.count = NULL;
    r->srv.group = NULL;
    hr_server_group_free(&w->conns);
    r->router.steer = NULL;
    r->sio.relay = NULL;
    r->sio.ask = NULL;
    for (unsigned k = 0; k < w->n; k++)
        uv_mutex_destroy(&w->box[k].lock);
    /* worker 0's own subscribers are still counted: they leave as it finishes */
    struct census *e, *tmp;
    HASH_ITER(hh, w->census, e, tmp)
    {
        HASH_DEL(w->census, e);
        free(e);
    }
    uv_mutex_destroy(&w->census_lock);
    uv_sem_destroy(&w->ready);
    uv_sem_destroy(&w->listening);
    free(w);
}
