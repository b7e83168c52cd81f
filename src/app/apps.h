/* apps.h - the applications the herald binary can serve (--app). */
#ifndef HR_APP_APPS_H
#define HR_APP_APPS_H

#include <herald.h>

/* Create the server for app name ("chat", "conformance-eio", "conformance-sio") from argv:
 * the app's defaults first, then the flags. Returns NULL with *status set (0 after --help or
 * --version, 2 after a bad flag, 1 when the server could not be created). */
herald_io *hr_app_create(const char *name, int argc, char **argv, int *status);

#endif
