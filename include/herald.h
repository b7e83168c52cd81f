/* herald.h - herald's public C API.
 *
 * This release exposes the version only; the Socket.IO-style server API (io, sockets, events,
 * rooms, acks) is built on top of the core in src/ and will be declared here. */
#ifndef HERALD_H
#define HERALD_H

#define HERALD_VERSION_MAJOR 0
#define HERALD_VERSION_MINOR 1
#define HERALD_VERSION_PATCH 0

#endif
