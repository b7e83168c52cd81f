/* apps.h - the applications the herald binary can serve (--app), written on the public API. */
#ifndef HR_APP_APPS_H
#define HR_APP_APPS_H

#include <herald.h>

struct hr_eio_handler;

struct hr_app {
    const char *name;
    /* The app's defaults, set before the flags are read (so flags still win); NULL: herald's. */
    void (*defaults)(struct herald_options *o);
    /* An app on Engine.IO alone (the Engine.IO suite's echo) gives its handler; the server
     * then runs it in place of Socket.IO. NULL: a Socket.IO app. */
    const struct hr_eio_handler *eio;
    /* Give the server's namespaces their handlers; *state is passed to stop. Returns 0 or
     * HR_ENOMEM. NULL: nothing to do. */
    int (*start)(herald_io *io, void **state);
    /* After herald_run returned: free what start made. */
    void (*stop)(void *state);
};

/* The app called name, or NULL. */
const struct hr_app *hr_app_find(const char *name);
/* Whether name is one of the apps (what --app accepts). */
int hr_app_known(const char *name);

#endif
