/* main.c - the herald binary: reads the configuration (file, environment, flags), picks the app
 * (--app, the tutorial's chat server by default), makes the server and runs it until SIGINT or
 * SIGTERM. */
#include <stdio.h>

#include "app/apps.h"
#include "config.h"
#include "io.h"

int main(int argc, char **argv)
{
    struct herald_config cfg;
    char err[256];
    hr_config_init(&cfg);
    cfg.app_known = hr_app_known;
    int rc = hr_config_parse(&cfg, argc, argv, err, sizeof err);
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "herald: %s\n", err);
        return rc < 0 ? 2 : 0;
    }
    const struct hr_app *app = hr_app_find(cfg.app); /* the table accepts known apps only */
    if (app->defaults) {
        /* the app's defaults, then the flags again over them */
        hr_config_init(&cfg);
        cfg.app_known = hr_app_known;
        app->defaults(&cfg.io);
        hr_config_parse(&cfg, argc, argv, err, sizeof err);
    }
    if (cfg.print_config) {
        /* stdout stays a config file; where each value came from goes to stderr */
        hr_config_print_sources(stderr, &cfg);
        return hr_config_print(stdout, &cfg) < 0 ? 1 : 0;
    }
    herald_io *io = hr_server_io_new(&cfg, app->eio, app->name);
    if (!io)
        return 1;
    void *state = NULL;
    if (app->start && app->start(io, &state) < 0) {
        fprintf(stderr, "herald: %s: out of memory\n", app->name);
        return 1;
    }
    rc = herald_run(io);
    if (app->stop)
        app->stop(state);
    return rc;
}
