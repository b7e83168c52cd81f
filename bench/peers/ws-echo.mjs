// Peer for bench/run.sh: the WebSocket echo server a Node user would write with `ws`.
// Usage: node ws-echo.mjs [--host 127.0.0.1] [--port 8090]   (--port 0: any free port)
// Serves ws://HOST:PORT/echo (every message is sent back as received, text or binary)
// and prints "listening on http://HOST:PORT" once it accepts connections.
import http from 'node:http';
import { WebSocketServer } from 'ws';

const args = process.argv.slice(2);
function opt(name, dflt) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
}
const host = opt('--host', '127.0.0.1');
const port = Number(opt('--port', '8090'));

const server = http.createServer((req, res) => {
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found\n');
});
// Defaults as a user would leave them: no permessage-deflate (ws 8 default), 100 MiB max payload.
const wss = new WebSocketServer({ server, path: '/echo' });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});

server.listen(port, host, () => {
  // --port 0 picks a free port; print the real one.
  console.log(`listening on http://${host}:${server.address().port}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => process.exit(0));
}
