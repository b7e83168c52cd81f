// pubload.mjs - publish load: C concurrent keep-alive clients POST small JSON messages to
// /pub/{channel} for S seconds; prints one RESULT line with publishes/s and latency percentiles.
//   node bench/pubload.mjs URL CHANNEL CONCURRENCY SECONDS
import http from 'node:http';

const [url, channel = 'bench', conc = '64', secs = '5'] = process.argv.slice(2);
const u = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(conc) });
const end = Date.now() + Number(secs) * 1000;
const lat = [];
let ok = 0, failed = 0;

function post(body) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const req = http.request({ host: u.hostname, port: u.port, method: 'POST', path: `/pub/${channel}`, agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => {
        lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (res.statusCode === 200) ok++; else failed++;
        resolve();
      });
    });
    req.on('error', () => { failed++; resolve(); });
    req.end(body);
  });
}

async function worker(k) {
  for (let i = 0; Date.now() < end; i++) await post(JSON.stringify({ w: k, i, pad: 'x'.repeat(64) }));
}

const t0 = Date.now();
await Promise.all(Array.from({ length: Number(conc) }, (_, k) => worker(k)));
const dt = (Date.now() - t0) / 1000;
lat.sort((a, b) => a - b);
const pct = (p) => lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(2) : 'NA';
console.log(`RESULT publishes=${ok} failed=${failed} per_s=${(ok / dt).toFixed(0)} p50_ms=${pct(0.5)} p99_ms=${pct(0.99)}`);
agent.destroy();
