/* recovery.h - connection state recovery (Socket.IO 4.6+): with a recovery window, every
 * packet sent carries an offset and is kept for the window; a socket that drops is saved; one
 * that comes back with its pid and the last offset it got has its id and rooms again, then
 * what it missed. Kept packets live in their namespace, saved sessions in the io. */
#ifndef HR_SIO_RECOVERY_H
#define HR_SIO_RECOVERY_H

#include "sio.h"

/* Append the broadcast's offset to its arguments and keep it for returning sockets (room
 * NULL: everyone; except: a socket that does not get it). Returns the entry (its raw text is
 * what to send), or NULL to send the packet as it was. A channel's message (chan_id, its
 * cursor as offset) is only marked: returns NULL. */
struct hr_sio_kept *hr_sio_keep(herald_nsp *nsp, const char *room, herald_socket *except,
                                const char *event, const char *raw, size_t len,
                                const struct herald_bin *bins, size_t nbins, const char *offset,
                                uint64_t chan_id);
void hr_sio_kept_free(struct hr_sio_kept *k);
/* The kept packet k was encoded (frame): k keeps that frame instead of its text, and every
 * replay of it sends the frame as it is. */
void hr_sio_kept_encoded(herald_nsp *nsp, struct hr_sio_kept *k, struct hr_buf *frame);

/* A socket goes for reason: one that dropped (not one that left on purpose) is saved, so it
 * may come back within the window. */
void hr_sio_save_session(herald_socket *s, const char *reason);
void hr_sio_saved_free(herald_io *io, struct hr_sio_saved *sv);

/* The session pid saved from nsp, if a socket connecting with auth {pid, offset} recovers it:
 * saved within the window, and offset still kept (*from: that packet; what follows it is what
 * the socket missed). NULL: not a recovery (any argument may be NULL). */
struct hr_sio_saved *hr_sio_recovery_find(struct hr_sio_client *c, herald_nsp *nsp, const char *pid,
                                          const char *offset, struct hr_sio_kept **from);
/* sv was recovered (or given up): it goes. */
void hr_sio_recovery_done(struct hr_sio_client *c, struct hr_sio_saved *sv);

/* Workers: a CONNECT p to nsp that names a session not saved here is held (1) while the
 * other workers are asked for it (io->ask); 0: handle it now. */
int hr_sio_recovery_ask(struct hr_sio_client *c, herald_nsp *nsp, const struct hr_sio_packet *p);
/* On the worker asked: takes the session pid of namespace nsp_name out of this io with copies
 * of the packets kept after offset (the caller owns both, to give to hr_sio_moved on the
 * asking worker), or returns NULL when it is not here or cannot be recovered. */
struct hr_sio_saved *hr_sio_recovery_take(herald_io *io, const char *nsp_name, const char *pid,
                                          const char *offset, struct hr_sio_kept **chain);
/* On the asking worker: one answer to the request token (sv NULL: not there). The held CONNECT
 * goes on once every worker answered. */
void hr_sio_moved(herald_io *io, uint64_t token, struct hr_sio_saved *sv,
                  struct hr_sio_kept *chain);
/* Frees a session taken out of its io and its packets (any thread). */
void hr_sio_moved_free(struct hr_sio_saved *sv, struct hr_sio_kept *chain);
/* The client goes: its held CONNECT or what was given it goes too. */
void hr_sio_moving_free(struct hr_sio_client *c);
/* Whether the kept packet k is one the socket of sv missed: sent to everyone or to one of its
 * rooms, and not sent by it (except). A channel's marker is not: the channel replays it. */
int hr_sio_recovery_missed(const struct hr_sio_saved *sv, const struct hr_sio_kept *k);
/* Where the replay of room i of sv (a channel room) starts: after the id before the first of
 * its messages kept after from, or else after the channel's last id when the socket dropped. */
uint64_t hr_sio_recovery_since(const struct hr_sio_saved *sv, uint32_t i,
                               const struct hr_sio_kept *from);
/* Send s, recovered from sv, what it missed after from, in order: kept packets, and each
 * channel room's messages where they were sent among them (the ones sent while nobody was in
 * the room first). */
void hr_sio_recovery_replay(herald_socket *s, const struct hr_sio_saved *sv,
                            const struct hr_sio_kept *from);

#endif
