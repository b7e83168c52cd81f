/* chat.c - the tutorial's server.js, in C with herald's API: every new client is greeted, and
 * every "message" is broadcast to everyone, sender included. Static files come from public/.
 *
 *   ./chat [--port 3000] [--public public] ...   (any flag of herald --help) */
#include <herald.h>
#include <stdio.h>

static void on_message(herald_socket *socket, const herald_args *args, herald_ack *ack, void *ud)
{
    json_t *msg = herald_arg(args, 0);
    /* io.emit('message', msg): broadcast to all users */
    herald_broadcast(herald_socket_nsp(socket), NULL, NULL, "message", json_pack("[O]", msg));
}

static void on_disconnect(herald_socket *socket, const char *reason, void *ud)
{
    printf("用户已断开连接\n");
}

static void on_connection(herald_socket *socket, void *ud)
{
    printf("用户已连接 %s\n", herald_id(socket));
    herald_send(socket, json_pack("{s:s, s:s}", "type", "init", "message", "欢迎连接"));
    herald_on(socket, "message", on_message, NULL);
    herald_on_disconnect(socket, on_disconnect, NULL);
}

int main(int argc, char **argv)
{
    struct herald_options opts;
    herald_options_init(&opts); /* port 3000, any origin, static files from public/ */
    int rc = herald_options_parse(&opts, argc, argv); /* --port, --public, ... */
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    herald_io *io = herald_new(&opts);
    herald_on_connection(herald_of(io, "/"), on_connection, NULL);
    printf("服务器已启动，访问 http://localhost:%d\n", opts.port);
    return herald_run(io);
}
