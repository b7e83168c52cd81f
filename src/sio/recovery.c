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

void hr_sio_saved_free(herald_io *io, struct hr_sio_saved *sv)
{
    HASH_DEL(io->saved, sv);
    for (uint32_t i = 0; i < sv->nrooms; i++)
        free(sv->rooms[i]);
    free(sv->rooms);
    free(sv->chan_last);
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
    if (sv->rooms && sv->chan_last && s->own_room && (sv->rooms[sv->nrooms] = strdup(s->id)))
        sv->nrooms++;
    for (const struct hr_sio_member *m = s->rooms; sv->rooms && sv->chan_last && m;
         m = m->next_room) {
        if (!(sv->rooms[sv->nrooms] = strdup(m->room->name)))
            continue;
        if (m->room->sub.ch)
            sv->chan_last[sv->nrooms] = m->room->sub.ch->last_id;
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

struct hr_sio_saved *hr_sio_recovery_find(herald_io *io, herald_nsp *nsp, const char *pid,
                                          const char *offset, struct hr_sio_kept **from)
{
    struct hr_sio_saved *sv = NULL;
    *from = NULL;
    if (!io->opts.recovery_window_ms || !pid || !offset)
        return NULL;
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
