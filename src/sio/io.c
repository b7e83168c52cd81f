/* io.c - the Socket.IO server's setup and teardown: what it is given (the loop, the channels'
 * hub and store, the output cap) and the timers it owns. The composition root (src/server/)
 * calls these; herald_new and herald_run live there. */
#include "admin.h"
#include "recovery.h"
#include "sio.h"

void hr_sio_init(herald_io *io, const struct herald_options *o, uv_loop_t *loop, struct hr_hub *hub,
                 struct hr_store *store, uint64_t max_queued)
{
    io->opts = *o;
    io->opts.config = NULL; /* the root's; Socket.IO reads the fields above it only */
    io->loop = loop;
    io->hub = hub;
    io->store = store;
    io->max_queued = max_queued;
    uv_timer_init(loop, &io->ack_timer);
    io->ack_timer.data = io;
    uv_timer_init(loop, &io->connect_timer);
    io->connect_timer.data = io;
    uv_timer_init(loop, &io->expiry_timer);
    io->expiry_timer.data = io;
}

void hr_sio_close(herald_io *io)
{
    /* nobody comes back to a server that stopped: the rooms saved sessions held go now,
     * while the hub they read is still there */
    while (io->saved)
        hr_sio_saved_free(io, io->saved);
    uv_timer_stop(&io->ack_timer);
    uv_close((uv_handle_t *)&io->ack_timer, NULL);
    uv_timer_stop(&io->connect_timer);
    uv_close((uv_handle_t *)&io->connect_timer, NULL);
    uv_timer_stop(&io->expiry_timer);
    uv_close((uv_handle_t *)&io->expiry_timer, NULL);
    hr_sio_admin_close(io);
}
