/* main.c - the herald binary: the default app (the tutorial's chat server) or another --app,
 * with static files, /echo, and Socket.IO; stops cleanly on SIGINT or SIGTERM. */
#include "app/apps.h"

int main(int argc, char **argv)
{
    int status = 0;
    herald_io *io = hr_app_create("chat", argc, argv, &status);
    return io ? herald_run(io) : status;
}
