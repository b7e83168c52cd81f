/* recovery.c - connection state recovery (Socket.IO 4.6+): broadcasts kept for a window,
 * sessions saved when a socket drops, and what a returning socket gets back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "internal.h"
#include "recovery.h"

void hr_sio_kept_free(struct hr_sio_kept *k)
{
    for (size_t i = 0; i < k->nbins; i++) {
        free((void *)k->bins[i].data);
        if (k->bin_msgs)
            hr_eio_msg_release(&k->bin_msgs[i]);
    }
    free(k->bins);
    free(k->bin_msgs);
    hr_buf_unref(k->frame);
    free(k->event);
    free(k->raw);
    free(k->room);
    free(k);
}

/* Drop kept broadcasts older than the window, or beyond the memory budget. */
static void kept_prune(herald_nsp *nsp, uint64_t now)
{
    uint64_t window = nsp->io->opts.recovery_window_ms;
    while (nsp->kept_head &&
           (now - nsp->kept_head->at > window || nsp->kept_bytes > HR_SIO_KEPT_MAX)) {
        struct hr_sio_kept *k = nsp->kept_head;
        nsp->kept_head = k->next;
        if (!nsp->kept_head)
            nsp->kept_tail = NULL;
        nsp->kept_bytes -= k->bytes;
        hr_sio_kept_free(k);
    }
}

/* Returns 0, or HR_ETOOBIG when k alone was over the bound (it is freed). */
static int kept_append(herald_nsp *nsp, struct hr_sio_kept *k)
{
    if (nsp->kept_tail)
        nsp->kept_tail->next = k;
    else
        nsp->kept_head = k;
    nsp->kept_tail = k;
    nsp->kept_bytes += k->bytes;
    kept_prune(nsp, k->at);
    return nsp->kept_tail == k ? 0 : HR_ETOOBIG;
}

void hr_sio_kept_encoded(herald_nsp *nsp, struct hr_sio_kept *k, struct hr_buf *frame)
{
    size_t cost = sizeof(*frame) + frame->cap;
    k->frame = hr_buf_ref(frame);
    nsp->kept_bytes = nsp->kept_bytes - k->raw_len + cost;
    k->bytes = k->bytes - k->raw_len + cost;
    free(k->raw);
    k->raw = NULL;
    k->raw_len = 0;
}

/* Append the broadcast's offset to its arguments and keep it for returning sockets. Returns
 * the entry (its raw text is what to send), or NULL to send the packet as it was. A channel's
 * message (chan_id, its cursor as offset) is only marked: returns NULL. */
struct hr_sio_kept *hr_sio_keep(herald_nsp *nsp, const char *room, herald_socket *except,
                                const char *event, const char *raw, size_t len,
                                const struct herald_bin *bins, size_t nbins, const char *offset,
                                uint64_t chan_id)
{
    herald_io *io = nsp->io;
    struct hr_sio_kept *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    k->at = uv_now(io->loop);
    if (chan_id) {
        snprintf(k->offset, sizeof k->offset, "%s", offset);
        k->chan_id = chan_id;
        if (!(k->room = strdup(room))) {
            free(k);
            return NULL;
        }
        k->bytes = sizeof(*k) + strlen(room) + 1;
        kept_append(nsp, k);
        return NULL;
    }
    snprintf(k->offset, sizeof k->offset, "%llu", (unsigned long long)++io->next_offset);
    char off[48];
    int n = snprintf(off, sizeof off, "%s\"%s\"", len ? "," : "", k->offset);
    k->raw = malloc(len + (size_t)n + 1);
    k->event = strdup(event);
    k->room = room ? strdup(room) : NULL;
    if (!k->raw || !k->event || (room && !k->room)) {
        hr_sio_kept_free(k);
        return NULL;
    }
    memcpy(k->raw, raw, len);
    memcpy(k->raw + len, off, (size_t)n + 1);
    k->raw_len = len + (size_t)n;
    size_t bin_bytes = 0;
    if (nbins) {
        k->bins = calloc(nbins, sizeof(*k->bins));
        if (!k->bins) {
            hr_sio_kept_free(k);
            return NULL;
        }
        for (; k->nbins < nbins; k->nbins++) {
            void *copy = malloc(bins[k->nbins].len ? bins[k->nbins].len : 1);
            if (!copy) {
                hr_sio_kept_free(k);
                return NULL;
            }
            memcpy(copy, bins[k->nbins].data, bins[k->nbins].len);
            k->bins[k->nbins] = (struct herald_bin){copy, bins[k->nbins].len};
            bin_bytes += bins[k->nbins].len;
        }
    }
    if (except)
        snprintf(k->except, sizeof k->except, "%s", except->id);
    k->bytes = k->raw_len + bin_bytes + sizeof(*k);
    /* one packet over the whole bound is not kept (nor sent with an offset) */
    return kept_append(nsp, k) == 0 ? k : NULL;
}

/* The channel rooms the session held are let go of. */
static void saved_release(struct hr_sio_saved *sv)
{
    for (uint32_t i = 0; sv->held && i < sv->nrooms; i++)
        if (sv->held[i]) {
            sv->held[i] = 0;
            hr_sio_room_release(sv->nsp, sv->rooms[i]);
        }
}

void hr_sio_saved_free(herald_io *io, struct hr_sio_saved *sv)
{
    if (!sv->moved) {
        HASH_DEL(io->saved, sv);
        saved_release(sv);
    }
    for (uint32_t i = 0; i < sv->nrooms; i++)
        free(sv->rooms[i]);
    free(sv->rooms);
    free(sv->chan_last);
    free(sv->held);
    free(sv);
}

static void saved_prune(herald_io *io, uint64_t now)
{
    /* uthash iterates in insertion order: the oldest come first */
    struct hr_sio_saved *sv, *tmp;
    HASH_ITER(hh, io->saved, sv, tmp)
    {
        if (now - sv->at <= io->opts.recovery_window_ms)
            break;
        hr_sio_saved_free(io, sv);
    }
}

/* A socket that dropped (not one that left on purpose) may come back within the window. */
void hr_sio_save_session(herald_socket *s, const char *reason)
{
    herald_io *io = s->nsp->io;
    if (!io->opts.recovery_window_ms || !s->pid[0] ||
        strcmp(reason, "client namespace disconnect") == 0 ||
        strcmp(reason, "server namespace disconnect") == 0 ||
        strcmp(reason, "server shutting down") == 0)
        return;
    struct hr_sio_saved *sv = calloc(1, sizeof(*sv));
    if (!sv)
        return;
    memcpy(sv->pid, s->pid, sizeof sv->pid);
    memcpy(sv->sid, s->id, sizeof sv->sid);
    sv->nsp = s->nsp;
    sv->at = uv_now(io->loop);
    size_t n = s->own_room;
    for (const struct hr_sio_member *m = s->rooms; m; m = m->next_room)
        n++;
    sv->rooms = calloc(n ? n : 1, sizeof(char *));
    sv->chan_last = calloc(n ? n : 1, sizeof(uint64_t));
    sv->held = calloc(n ? n : 1, 1);
    int ok = sv->rooms && sv->chan_last && sv->held;
    if (ok && s->own_room && (sv->rooms[sv->nrooms] = strdup(s->id)))
        sv->nrooms++;
    for (const struct hr_sio_member *m = s->rooms; ok && m; m = m->next_room) {
        if (!(sv->rooms[sv->nrooms] = strdup(m->room->name)))
            continue;
        if (m->room->sub.ch) {
            /* the room stays (and marks) while the session may come back, even with
             * nobody else in it */
            sv->chan_last[sv->nrooms] = m->room->sub.ch->last_id;
            sv->held[sv->nrooms] = 1;
            m->room->held++;
        }
        sv->nrooms++;
    }
    HASH_ADD_STR(io->saved, pid, sv);
    saved_prune(io, sv->at);
}

static int saved_in_room(const struct hr_sio_saved *sv, const char *room)
{
    for (uint32_t i = 0; i < sv->nrooms; i++)
        if (strcmp(sv->rooms[i], room) == 0)
            return 1;
    return 0;
}

struct hr_sio_saved *hr_sio_recovery_find(struct hr_sio_client *c, herald_nsp *nsp, const char *pid,
                                          const char *offset, struct hr_sio_kept **from)
{
    herald_io *io = c->io;
    struct hr_sio_saved *sv = NULL;
    *from = NULL;
    if (!io->opts.recovery_window_ms || !pid || !offset)
        return NULL;
    struct hr_sio_moving *mv = c->moving;
    if (mv && !mv->waiting && mv->sv && mv->sv->nsp == nsp && strcmp(mv->sv->pid, pid) == 0 &&
        strcmp(mv->head.offset, offset) == 0) {
        *from = &mv->head;
        return mv->sv;
    }
    saved_prune(io, uv_now(io->loop));
    HASH_FIND_STR(io->saved, pid, sv);
    if (!sv || sv->nsp != nsp)
        return NULL;
    /* the offset must still be kept, or what came after it cannot be replayed */
    struct hr_sio_kept *k = nsp->kept_head;
    while (k && strcmp(k->offset, offset) != 0)
        k = k->next;
    if (!k)
        return NULL;
    *from = k;
    return sv;
}

int hr_sio_recovery_missed(const struct hr_sio_saved *sv, const struct hr_sio_kept *k)
{
    return !k->chan_id && strcmp(k->except, sv->sid) != 0 &&
           (!k->room || saved_in_room(sv, k->room));
}

uint64_t hr_sio_recovery_since(const struct hr_sio_saved *sv, uint32_t i,
                               const struct hr_sio_kept *from)
{
    uint64_t since = sv->chan_last[i];
    for (const struct hr_sio_kept *k = from->next; k; k = k->next)
        if (k->chan_id && strcmp(k->room, sv->rooms[i]) == 0) {
            if (k->chan_id - 1 < since)
                since = k->chan_id - 1;
            break;
        }
    return since;
}

void hr_sio_recovery_replay(herald_socket *s, const struct hr_sio_saved *sv,
                            const struct hr_sio_kept *from)
{
    herald_nsp *nsp = s->nsp;
    /* a channel room's messages come from the channel's history, each where it was sent
     * among the other packets (a marker) */
    struct hr_cursor *cur = calloc(sv->nrooms ? sv->nrooms : 1, sizeof(*cur));
    for (uint32_t i = 0; cur && i < sv->nrooms; i++)
        cur[i].id = hr_sio_recovery_since(sv, i, from);
    uint8_t *told = calloc(sv->nrooms ? sv->nrooms : 1, 1);
    for (const struct hr_sio_kept *k = from->next; k; k = k->next) {
        if (k->chan_id) {
            for (uint32_t i = 0; cur && told && i < sv->nrooms; i++) {
                struct hr_sio_room *r;
                if (strcmp(k->room, sv->rooms[i]) != 0)
                    continue;
                HASH_FIND_STR(nsp->rooms, sv->rooms[i], r);
                if (r && r->sub.ch && cur[i].id < k->chan_id) {
                    hr_sio_replay_channel(s, r->sub.ch, &cur[i], k->chan_id, told[i]);
                    told[i] = 1;
                }
            }
            continue;
        }
        if (hr_sio_recovery_missed(sv, k))
            hr_sio_emit_kept(s, (struct hr_sio_kept *)k);
    }
    for (uint32_t i = 0; cur && told && i < sv->nrooms; i++) {
        struct hr_sio_room *r;
        HASH_FIND_STR(nsp->rooms, sv->rooms[i], r);
        if (r && r->sub.ch)
            hr_sio_replay_channel(s, r->sub.ch, &cur[i], UINT64_MAX, told[i]);
    }
    free(cur);
    free(told);
}

void hr_sio_recovery_done(struct hr_sio_client *c, struct hr_sio_saved *sv)
{
    if (c->moving && c->moving->sv == sv)
        hr_sio_moving_free(c);
    else
        hr_sio_saved_free(c->io, sv);
}

/* ---- workers: a session saved on another worker ---- */

int hr_sio_recovery_ask(struct hr_sio_client *c, herald_nsp *nsp, const struct hr_sio_packet *p)
{
    herald_io *io = c->io;
    if (!io->ask || c->moving || !p->data || !io->opts.recovery_window_ms)
        return 0;
    json_t *auth = json_loadb(p->data, p->data_len, 0, NULL);
    const char *pid = json_string_value(json_object_get(auth, "pid"));
    const char *offset = json_string_value(json_object_get(auth, "offset"));
    struct hr_sio_saved *sv = NULL;
    if (pid)
        HASH_FIND_STR(io->saved, pid, sv);
    struct hr_sio_moving *mv = NULL;
    if (pid && offset && !sv && strlen(offset) < sizeof mv->head.offset &&
        (mv = calloc(1, sizeof(*mv)))) {
        mv->nsp = malloc(p->nsp_len + 1);
        mv->data = malloc(p->data_len + 1);
        if (mv->nsp && mv->data) {
            memcpy(mv->nsp, p->nsp, p->nsp_len);
            mv->nsp_len = p->nsp_len;
            memcpy(mv->data, p->data, p->data_len);
            mv->data_len = p->data_len;
            mv->has_data = 1;
            snprintf(mv->head.offset, sizeof mv->head.offset, "%s", offset);
            mv->c = c;
            mv->token = ++io->next_token;
            mv->waiting = io->ask(io->relay_ud, mv->token, nsp->name, pid, offset);
        }
        if (!mv->waiting) {
            free(mv->nsp);
            free(mv->data);
            free(mv);
            mv = NULL;
        }
    }
    json_decref(auth);
    if (!mv)
        return 0;
    mv->next = io->moving;
    io->moving = mv;
    c->moving = mv;
    return 1;
}

/* A copy of k for another thread: no buffer of this one (a frame travels as bytes). */
static struct hr_sio_kept *kept_copy(const struct hr_sio_kept *k)
{
    struct hr_sio_kept *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    memcpy(n->offset, k->offset, sizeof n->offset);
    memcpy(n->except, k->except, sizeof n->except);
    n->chan_id = k->chan_id;
    n->at = k->at;
    n->bytes = k->bytes;
    const char *raw = k->frame ? (const char *)k->frame->data : k->raw;
    size_t len = k->frame ? k->frame->len : k->raw_len;
    n->raw_frame = k->frame != NULL;
    int ok =
        (!k->event || (n->event = strdup(k->event))) && (!k->room || (n->room = strdup(k->room)));
    if (ok && raw && (n->raw = malloc(len + 1))) {
        memcpy(n->raw, raw, len);
        n->raw[len] = '\0';
        n->raw_len = len;
    } else if (raw) {
        ok = 0;
    }
    if (ok && k->nbins && (n->bins = calloc(k->nbins, sizeof(*n->bins)))) {
        for (; n->nbins < k->nbins; n->nbins++) {
            void *copy = malloc(k->bins[n->nbins].len ? k->bins[n->nbins].len : 1);
            if (!copy) {
                ok = 0;
                break;
            }
            memcpy(copy, k->bins[n->nbins].data, k->bins[n->nbins].len);
            n->bins[n->nbins] = (struct herald_bin){copy, k->bins[n->nbins].len};
        }
    } else if (k->nbins) {
        ok = 0;
    }
    if (!ok) {
        hr_sio_kept_free(n);
        return NULL;
    }
    return n;
}

void hr_sio_moved_free(struct hr_sio_saved *sv, struct hr_sio_kept *chain)
{
    while (chain) {
        struct hr_sio_kept *next = chain->next;
        hr_sio_kept_free(chain);
        chain = next;
    }
    if (sv) {
        sv->moved = 1;
        hr_sio_saved_free(NULL, sv);
    }
}

struct hr_sio_saved *hr_sio_recovery_take(herald_io *io, const char *nsp_name, const char *pid,
                                          const char *offset, struct hr_sio_kept **chain)
{
    herald_nsp *nsp;
    struct hr_sio_kept *from;
    *chain = NULL;
    HASH_FIND_STR(io->nsps, nsp_name, nsp);
    struct hr_sio_client probe = {.io = io};
    struct hr_sio_saved *sv = nsp ? hr_sio_recovery_find(&probe, nsp, pid, offset, &from) : NULL;
    if (!sv)
        return NULL;
    struct hr_sio_kept **tail = chain;
    for (const struct hr_sio_kept *k = from->next; k; k = k->next) {
        if (!(*tail = kept_copy(k))) {
            hr_sio_moved_free(NULL, *chain);
            *chain = NULL;
            return NULL; /* out of memory: not recovered, rather than recovered with holes */
        }
        tail = &(*tail)->next;
    }
    HASH_DEL(io->saved, sv);
    saved_release(sv);
    sv->moved = 1;
    sv->nsp = NULL;
    return sv;
}

void hr_sio_moved(herald_io *io, uint64_t token, struct hr_sio_saved *sv, struct hr_sio_kept *chain)
{
    struct hr_sio_moving **pp = &io->moving, *mv;
    while ((mv = *pp) && mv->token != token)
        pp = &mv->next;
    if (!mv || !mv->c || mv->sv || !sv) {
        /* nobody waits for it any more, or one was given already (a pid is saved once) */
        hr_sio_moved_free(sv, chain);
        if (!mv || --mv->waiting)
            return;
    } else {
        mv->sv = sv;
        mv->head.next = chain;
        if (--mv->waiting)
            return;
    }
    *pp = mv->next;
    mv->next = NULL;
    struct hr_sio_client *c = mv->c;
    if (!c) {
        hr_sio_moved_free(mv->sv, mv->head.next);
        free(mv->nsp);
        free(mv->data);
        free(mv);
        return;
    }
    /* the packets become this worker's: their frames are made here */
    for (struct hr_sio_kept *k = mv->head.next; k; k = k->next)
        if (k->raw_frame) {
            k->frame = hr_buf_from(k->raw, k->raw_len);
            free(k->raw);
            k->raw = NULL;
            k->raw_len = 0;
            k->raw_frame = 0;
        }
    if (mv->sv)
        HASH_FIND(hh, io->nsps, mv->nsp, mv->nsp_len, mv->sv->nsp);
    struct hr_sio_packet p = {.type = HR_SIO_CONNECT,
                              .ack_id = -1,
                              .nsp = mv->nsp,
                              .nsp_len = mv->nsp_len,
                              .data = mv->has_data ? mv->data : NULL,
                              .data_len = mv->data_len};
    hr_sio_on_connect(c, &p);
    /* c may be gone; if it is not, and the session was not recovered, it stays until then */
}

void hr_sio_moving_free(struct hr_sio_client *c)
{
    struct hr_sio_moving *mv = c->moving;
    if (!mv)
        return;
    c->moving = NULL;
    if (mv->waiting) {
        mv->c = NULL; /* the answers still find it, then it goes */
        return;
    }
    hr_sio_moved_free(mv->sv, mv->head.next);
    free(mv->nsp);
    free(mv->data);
    free(mv);
}
