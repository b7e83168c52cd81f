// Peer for bench/compare, built by hand (bench/README.md): a WebSocket broadcast server on
// uWebSockets, written as its users write one: every client subscribes to one topic on open, and
// each message a client sends is published to that topic, which uWS delivers to every other
// subscriber (WebSocket::publish excludes the sender), corked, once per loop iteration.
// Usage: uws-broadcast [--host 127.0.0.1] [--port 8092]   (--port 0: any free port)
// Serves WebSockets on every path; prints "listening on http://HOST:PORT" once it accepts.
#include "App.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {
struct PerSocketData {};
constexpr std::string_view kTopic = "broadcast";
}

int main(int argc, char **argv)
{
    std::string host = "127.0.0.1";
    int port = 8092;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--host"))
            host = argv[i + 1];
        else if (!std::strcmp(argv[i], "--port"))
            port = std::atoi(argv[i + 1]);
        else {
            std::fprintf(stderr, "usage: uws-broadcast [--host 127.0.0.1] [--port 8092]\n");
            return 2;
        }
    }

    uWS::App()
        .ws<PerSocketData>("/*",
                           {
                               // uWS's defaults (no compression, pings on, 120 s idle timeout),
                               // but a backpressure limit as large as herald's --max-queued, so
                               // that a burst is queued, never dropped
                               .maxBackpressure = 4 * 1024 * 1024,
                               .open = [](auto *ws) { ws->subscribe(kTopic); },
                               .message =
                                   [](auto *ws, std::string_view message, uWS::OpCode opCode) {
                                       ws->publish(kTopic, message, opCode);
                                   },
                           })
        .listen(host, port,
                [&host](auto *listen_socket) {
                    if (!listen_socket) {
                        std::fprintf(stderr, "uws-broadcast: cannot listen\n");
                        std::exit(1);
                    }
                    // --port 0 picks a free port; print the real one
                    int p = us_socket_local_port(0, (struct us_socket_t *)listen_socket);
                    std::printf("listening on http://%s:%d\n", host.c_str(), p);
                    std::fflush(stdout);
                })
        .run();
    return 0;
}
