// bench/stalled.mjs: subscribers that stop reading, for bench/compare's fan-out runs.
//
//   node bench/stalled.mjs --port P --path /ws/bench [--kind ws|sse] [-n 1]
//
// Opens n subscribers (a WebSocket upgrade, or an EventSource GET), waits for the server's
// answer head, then stops reading: the server's output for them piles up in its queues (after
// the kernel's socket buffers fill), and its slow-consumer policy, if it has one, should cut
// them. Prints "stalled N" once all are open; on SIGTERM prints
// "RESULT stalled=N cut=K" (K: how many the server closed meanwhile) and exits.
import net from 'node:net';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const port = Number(opt('--port'));
const path = opt('--path', '/ws/bench');
const kind = opt('--kind', path.startsWith('/sse') ? 'sse' : 'ws');
const n = Number(opt('-n', '1'));
if (!port || !n) {
  console.error('usage: node bench/stalled.mjs --port P --path PATH [--kind ws|sse] [-n N]');
  process.exit(2);
}

let cut = 0;
const request = kind === 'ws'
  ? `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
  : `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`;

function open() {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let head = '';
    const timer = setTimeout(() => reject(new Error('no answer head within 30 s')), 30000);
    s.on('data', (d) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      clearTimeout(timer);
      s.removeAllListeners('data');
      if (!/^HTTP\/1\.1 (101|200) /.test(head)) {
        reject(new Error(`refused: ${head.split('\r\n')[0]}`));
        return;
      }
      s.pause(); // read nothing more
      s.on('close', () => { cut++; });
      resolve(s);
    });
    s.on('error', (e) => { clearTimeout(timer); reject(e); });
    s.write(request);
  });
}

const socks = [];
for (let i = 0; i < n; i++) socks.push(await open());
console.log(`stalled ${n}`);
process.on('SIGTERM', () => {
  console.log(`RESULT stalled=${n} cut=${cut}`);
  for (const s of socks) s.destroy();
  process.exit(0);
});
setInterval(() => {}, 1 << 30);
