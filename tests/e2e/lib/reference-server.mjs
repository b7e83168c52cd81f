// The reference: the official Node.js Socket.IO / Engine.IO server (socket.io 4.8, engine.io 6)
// set up like herald's apps, so the Socket.IO end-to-end tests can be checked against the real
// thing. It documents what herald must do wherever the protocol docs are silent.
//
//   node lib/reference-server.mjs [--app chat|conformance-eio|conformance-sio] [--host A] [--port N]
//        [--max-payload N] [--ping-interval MS] [--ping-timeout MS] [--cors-origin ORIGIN]
//
// Prints "listening on http://HOST:PORT" like herald. Other herald flags (--public, --quiet...)
// are accepted and ignored. The test files run against it instead of herald with REFERENCE=1.
//
// Apps (the same as herald's --app):
// - chat (default): the seed tutorial's server. On connection: socket.send({type:'init',
//   message:'欢迎连接'}) to the new socket only; every "message" event is relayed unchanged to
//   everyone, sender included (io.emit('message', msg)). Defaults: pingInterval 25000,
//   pingTimeout 20000, maxPayload 1000000, CORS "*" (or --cors-origin, with credentials).
// - conformance-eio: Engine.IO at /engine.io/, pingInterval 300, pingTimeout 200, maxPayload
//   1000000, echoes every message (the server of the Engine.IO v4 test suite).
// - conformance-sio: Socket.IO at /socket.io/, pingInterval 300, pingTimeout 200, namespaces "/"
//   and "/custom"; on connection emits "auth" with the client's auth payload; "message" comes back
//   as "message-back", "message-with-ack" is acked with the same arguments (the server of the
//   Socket.IO v5 test suite).
import http from 'node:http';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(import.meta.url);

function parseArgs(argv) {
  const o = { app: 'chat', host: '127.0.0.1', port: 3000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--app': o.app = val(); break;
      case '--host': o.host = val(); break;
      case '--port': o.port = Number(val()); break;
      case '--max-payload': o.maxPayload = Number(val()); break;
      case '--ping-interval': o.pingInterval = Number(val()); break;
      case '--ping-timeout': o.pingTimeout = Number(val()); break;
      case '--cors-origin': o.corsOrigin = val(); break;
      case '--connect-timeout': o.connectTimeout = Number(val()); break;
      case '--quiet': break;
      default:
        if (a.startsWith('--') && i + 1 < argv.length && !argv[i + 1].startsWith('--')) i++; // ignore herald-only flags
    }
  }
  return o;
}

function corsOption(o) {
  // An explicit allowed origin is reflected (with credentials) only when it matches; by default
  // any origin is allowed with "*".
  return o.corsOrigin ? { origin: [o.corsOrigin], credentials: true } : { origin: '*' };
}

async function serve(o) {
  const httpServer = http.createServer((req, res) => {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":"not found"}');
  });
  if (o.app === 'conformance-eio') {
    const { attach } = await import('engine.io');
    const engine = attach(httpServer, {
      path: '/engine.io/',
      pingInterval: o.pingInterval ?? 300,
      pingTimeout: o.pingTimeout ?? 200,
      maxHttpBufferSize: o.maxPayload ?? 1e6,
      cors: corsOption(o),
    });
    engine.on('connection', (socket) => {
      socket.on('message', (data) => socket.send(data));
    });
  } else if (o.app === 'conformance-sio') {
    const { Server } = await import('socket.io');
    const io = new Server(httpServer, {
      pingInterval: o.pingInterval ?? 300,
      pingTimeout: o.pingTimeout ?? 200,
      maxHttpBufferSize: o.maxPayload ?? 1e6,
      cors: corsOption(o),
    });
    const onConnection = (socket) => {
      socket.emit('auth', socket.handshake.auth);
      socket.on('message', (...args) => socket.emit('message-back', ...args));
      socket.on('message-with-ack', (...args) => {
        const ack = args.pop();
        ack(...args);
      });
    };
    io.on('connection', onConnection);
    io.of('/custom').on('connection', onConnection);
  } else if (o.app === 'chat') {
    const { Server } = await import('socket.io');
    const io = new Server(httpServer, {
      pingInterval: o.pingInterval ?? 25000,
      pingTimeout: o.pingTimeout ?? 20000,
      maxHttpBufferSize: o.maxPayload ?? 1e6,
      cors: corsOption(o),
      connectTimeout: o.connectTimeout ?? 45000,
      // herald's chat app has connection state recovery on (--recovery-window 120000)
      connectionStateRecovery: { maxDisconnectionDuration: 120000 },
    });
    io.on('connection', (socket) => {
      socket.send({ type: 'init', message: '欢迎连接' });
      socket.on('message', (msg) => io.emit('message', msg));
    });
  } else {
    throw new Error(`unknown app ${o.app}`);
  }
  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(o.port, o.host, resolve);
  });
  const { port } = httpServer.address();
  console.log(`reference (${o.app}) listening on http://${o.host}:${port}`);
  const stop = () => {
    httpServer.closeAllConnections?.();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

// Start the reference server as a child process, with herald's flags; resolves to the same shape
// as startHerald() in herald.mjs: { port, url, proc, exited, output(), stop(signal) }.
export async function startReference(args = [], { timeoutMs = 15000 } = {}) {
  const argv = [process.execPath, here, '--host', '127.0.0.1', '--port', '0', ...args];
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: path.dirname(path.dirname(here)) });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`reference server did not start:\n${out}`)), timeoutMs);
    const check = () => {
      const m = /listening on http:\/\/[^:\s]+:(\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    proc.stdout.on('data', check);
    proc.stderr.on('data', check);
    proc.on('exit', () => { clearTimeout(timer); reject(new Error(`reference server exited early:\n${out}`)); });
  });
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    proc,
    exited,
    output: () => out,
    async stop(signal = 'SIGTERM', waitMs = 10000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), waitMs);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === here) {
  serve(parseArgs(process.argv.slice(2))).catch((e) => {
    console.error(e.stack || String(e));
    process.exit(2);
  });
}
