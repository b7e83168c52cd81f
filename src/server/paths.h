/* paths.h - where an installed herald finds its web pages and its data directory without
 * flags, so that it runs from any working directory. */
#ifndef HR_SERVER_PATHS_H
#define HR_SERVER_PATHS_H

/* The running program is installed when it is PREFIX/bin/NAME and PREFIX/share/herald/public
 * is a directory (cmake --install, the .deb). Then:
 *   the pages: PREFIX/share/herald/public;
 *   the Socket.IO Admin UI's build: PREFIX/share/herald/admin-ui;
 *   the data:  $STATE_DIRECTORY (systemd's StateDirectory=herald) if set, else
 *              /var/lib/herald (PREFIX/var/lib/herald for a prefix other than /usr) when run
 *              as root or when that directory is writable, else the user's own
 *              $XDG_STATE_HOME/herald (~/.local/state/herald).
 * NULL when the program is not installed (a build-tree binary, an example program): the
 * table's relative defaults (public, data) stand. Found once; the strings live until exit. */
const char *hr_paths_public(void);
const char *hr_paths_data(void);
const char *hr_paths_admin_ui(void);

#endif
