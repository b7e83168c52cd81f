// Peer for bench/compare: the WebSocket broadcast server a Node user would write with `ws` (its
// README's "Server broadcast" example, excluding the sender).
// Usage: node ws-broadcast.mjs [--host 127.0.0.1] [--port 8091]   (--port 0: any free port)
// Serves WebSockets on every path (ws://HOST:PORT/ws/bench, /echo, ...): each text or binary
// message a client sends goes to every other open client. Prints "listening on http://HOST:PORT"
// once it accepts connections.
import http from 'node:http';
import { WebSocketServer, WebSocket } from 'ws';

const args = process.argv.slice(2);
function opt(name, dflt) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
}
const host = opt('--host', '127.0.0.1');
const port = Number(opt('--port', '8091'));

const server = http.createServer((req, res) => {
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found\n');
});
// Defaults as a user would leave them (no permessage-deflate, the ws 8 default); any path, so that
// the load generators' channel paths work unchanged.
const wss = new WebSocketServer({ server });
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => {
    wss.clients.forEach((client) => {
      if (client !== ws && client.readyState === WebSocket.OPEN) {
        client.send(data, { binary: isBinary });
      }
    });
  });
});

server.listen(port, host, () => {
  // --port 0 picks a free port; print the real one.
  console.log(`listening on http://${host}:${server.address().port}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => process.exit(0));
}
