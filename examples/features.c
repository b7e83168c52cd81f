/* features.c - a Socket.IO server that exercises the whole C API, for the end-to-end tests and
 * as a reference for the calls: namespaces (static, dynamic), auth middleware, events and acks
 * both ways, binary attachments, rooms, broadcasts, disconnects.
 *
 *   ./features [herald flags]       e.g. --port 0 --public public
 *
 * Events on "/" and "/admin" (the client's → the server's answer):
 *   echo ...args            → "echo" with the same arguments (binary included)
 *   echo-ack ...args, ack   → ack(...args)
 *   join room, ack          → joins; ack(room)
 *   leave room, ack         → leaves; ack(room)
 *   rooms ack               → ack([rooms...])
 *   to-room room, x         → "room-message"(x) to everyone in room
 *   broadcast x             → "broadcast"(x) to everyone but the sender
 *   to-all x                → "all"(x) to everyone, sender included
 *   send x                  → socket.send(x), the event "message"
 *   ask ...args             → emits "question"(...args) with an ack; the client's reply comes back
 *                             as "answer"(...reply), or "answer"("timeout") after 2 s
 *   disconnect-me           → the server disconnects the socket from the namespace
 *   whoami ack              → ack({"id":..,"nsp":..,"auth":..,"recovered":..})
 * Middleware: auth {"token":"bad"} is refused with "not authorized"; "/admin" also needs
 * {"role":"admin"}. Namespaces named "/dyn-<anything>" are created on demand. */
#include <herald.h>
#include <stdio.h>
#include <string.h>

#define MAX_BINS 16

static size_t bins_of(const herald_args *a, struct herald_bin *out)
{
    size_t n = herald_args_binaries(a);
    n = n > MAX_BINS ? MAX_BINS : n;
    for (size_t i = 0; i < n; i++)
        out[i].data = herald_args_binary(a, i, &out[i].len);
    return n;
}

static const char *arg_str(const herald_args *a, size_t i)
{
    return json_string_value(herald_arg(a, i));
}

static void echo(herald_socket *s, const herald_args *a, herald_ack *ack, void *ud)
{
    size_t len;
    const char *raw = herald_args_raw(a, &len);
    struct herald_bin bins[MAX_BINS];
    herald_emit_raw(s, "echo", raw, len, bins, bins_of(a, bins));
}

static void echo_ack(herald_socket *s, const herald_args *a, herald_ack *ack, void *ud)
{
    size_t len;
    const char *raw = herald_args_raw(a, &len);
    struct herald_bin bins[MAX_BINS];
    if (ack)
        herald_ack_send_raw(ack, raw, len, bins, bins_of(a, bins));
}

static void join(herald_socket *s, const herald_args *a, herald_ack *ack, void *ud)
{
    const char *room = arg_str(a, 0);
    if (room)
        herald_join(s, room);
    if (ack)
        herald_ack_send(ack, json_pack("[s?]", room));
}

static void leave(herald_socket *s, const herald_args *a, herald_ack *ack, void *ud)
{
    const char *room = arg_str(a, 0);
    if (room)
        herald_leave(s, room);
    if (ack)
        herald_ack_send(ack, json_pack("[s?]", room));
}

static void rooms(herald_socket *s, const herald_args *a, herald_ack *ack, void *ud)
{
    const char *list[64];
    size_t n = herald_rooms(s, list, 64);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(list[i]));
    if (ack)
        herald_ack_send(ack, json_pack("[o]", arr));
    else
        json_decref(arr);
}

static void to_room(herald_socket *s, const herald_args *a, herald_ack *ack, void *ud)
{
    const char *room = arg_str(a, 0);
    if (room)
        herald_broadcast(herald_socket_nsp(s), room, NULL, "room-message",
                         json_pack("[O?]", herald_arg(a, 1)));
}

static void broadcast(herald_socket *s, const herald_args *a, herald_ack *ack, void *ud)
{
    herald_broadcast(herald_socket_nsp(s), NULL, s, "broadcast",
                     json_pack("[O?]", herald_arg(a, 0)));
}

static void to_all(herald_socket *s, const herald_args *a, herald_ack *ack, void *ud)
{
    herald_broadcast(herald_socket_nsp(s), NULL, NULL, "all", json_pack("[O?]", herald_arg(a, 0)));
}

static void send_msg(herald_socket *s, const herald_args *a, herald_ack *ack, void *ud)
{
    herald_send(s, json_incref(herald_arg(a, 0)));
}

static void answer(herald_socket *s, const herald_args *reply, void *ud)
{
    if (!reply) {
        herald_emit(s, "answer", json_pack("[s]", "timeout"));
        return;
    }
    size_t len;
    const char *raw = herald_args_raw(reply, &len);
    struct herald_bin bins[MAX_BINS];
    herald_emit_raw(s, "answer", raw, len, bins, bins_of(reply, bins));
}

static void ask(herald_socket *s, const herald_args *a, herald_ack *ack, void *ud)
{
    /* the client's arguments become the question, binary included */
    size_t len;
    const char *raw = herald_args_raw(a, &len);
    struct herald_bin bins[MAX_BINS];
    herald_emit_ack_raw(s, "question", raw, len, bins, bins_of(a, bins), 2000, answer, NULL);
}

static void disconnect_me(herald_socket *s, const herald_args *a, herald_ack *ack, void *ud)
{
    herald_disconnect(s, 0);
}

static void whoami(herald_socket *s, const herald_args *a, herald_ack *ack, void *ud)
{
    if (ack)
        herald_ack_send(ack, json_pack("[{s:s,s:s,s:O,s:b}]", "id", herald_id(s), "nsp",
                                       herald_nsp_name(herald_socket_nsp(s)), "auth",
                                       (json_t *)herald_auth(s), "recovered", herald_recovered(s)));
}

static void on_connection(herald_socket *s, void *ud)
{
    herald_on(s, "echo", echo, NULL);
    herald_on(s, "echo-ack", echo_ack, NULL);
    herald_on(s, "join", join, NULL);
    herald_on(s, "leave", leave, NULL);
    herald_on(s, "rooms", rooms, NULL);
    herald_on(s, "to-room", to_room, NULL);
    herald_on(s, "broadcast", broadcast, NULL);
    herald_on(s, "to-all", to_all, NULL);
    herald_on(s, "send", send_msg, NULL);
    herald_on(s, "ask", ask, NULL);
    herald_on(s, "disconnect-me", disconnect_me, NULL);
    herald_on(s, "whoami", whoami, NULL);
}

static const char *no_bad_token(herald_socket *s, const json_t *auth, void *ud)
{
    const char *token = json_string_value(json_object_get(auth, "token"));
    return token && strcmp(token, "bad") == 0 ? "not authorized" : NULL;
}

static const char *admins_only(herald_socket *s, const json_t *auth, void *ud)
{
    const char *role = json_string_value(json_object_get(auth, "role"));
    return role && strcmp(role, "admin") == 0 ? NULL : "admins only";
}

static int allow_dynamic(const char *name, void *ud)
{
    return strncmp(name, "/dyn-", 5) == 0 && name[5] != '\0';
}

static void setup_dynamic(herald_nsp *nsp, void *ud)
{
    herald_on_connection(nsp, on_connection, NULL);
}

int main(int argc, char **argv)
{
    struct herald_options opts;
    herald_options_init(&opts);
    int rc = herald_options_parse(&opts, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    herald_io *io = herald_new(&opts);
    if (!io)
        return 1;
    herald_nsp *root = herald_of(io, "/"), *admin = herald_of(io, "/admin");
    herald_use(root, no_bad_token, NULL);
    herald_use(admin, no_bad_token, NULL);
    herald_use(admin, admins_only, NULL);
    herald_on_connection(root, on_connection, NULL);
    herald_on_connection(admin, on_connection, NULL);
    herald_allow_namespaces(io, allow_dynamic, setup_dynamic, NULL);
    return herald_run(io);
}
