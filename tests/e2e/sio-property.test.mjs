// Property: herald never sends a packet that the official parsers cannot decode.
//
// Random and mutated client packets (every Socket.IO packet type, binary ones with attachments,
// namespaces, ack ids, odd JSON, broken headers) are sent by raw Engine.IO clients, over HTTP
// long-polling and over WebSocket, to herald's chat app and to examples/features. Receiver
// clients in the same namespaces and rooms, and the senders themselves, capture every packet
// herald sends them at the Engine.IO level; each is decoded with the official engine.io-parser
// (decodePacket / decodePayload) and socket.io-parser (Decoder, as socket.io-client 4.8 uses
// it), and none may fail. A sender that herald closes (it sent something invalid) is replaced
// by a new one. Official socket.io-client canaries in the room must stay connected and get
// every message they send throughout, and so must the hostile-neighbours canary (an SSE
// reader and a publisher, lib/hostile.mjs); the server must stay up, its RSS bounded.
//
// Bounded: SIO_PROPERTY_COUNT packets per server (default 3000), SIO_PROPERTY_SEED for the
// PRNG (printed, so a failure can be replayed with the same seed).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { decodePacket, decodePayload } from 'engine.io-parser';
import { Decoder } from 'socket.io-parser';
import { startHerald } from './lib/herald.mjs';
import { startExample } from './lib/example.mjs';
import { stopServer, until, fetchT } from './lib/sio-util.mjs';
import { startCanary } from './lib/hostile.mjs';

const COUNT = Number(process.env.SIO_PROPERTY_COUNT || 3000);
const SEED = process.env.SIO_PROPERTY_SEED ? Number(process.env.SIO_PROPERTY_SEED) : (Date.now() ^ (process.pid << 16)) >>> 0;
const TIME_BUDGET_MS = 60000;
const RSS_LIMIT_KB = 256 * 1024; // herald starts at a few MB; 3000 small packets must not grow it

// mulberry32: small, seedable, good enough to pick cases
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- packet generator ----------------------------------------------------------------------

function generator(rand, { events, namespaces, rooms }) {
  const int = (n) => Math.floor(rand() * n);
  const pick = (a) => a[int(a.length)];
  const chance = (p) => rand() < p;

  const strings = ['', 'x', 'hello', 'message', 'ünïcødé 欢迎', '\u2028', 'a"b\\c', '\ud83d\ude00', '\u0000',
    '_placeholder', 'num', '{"_placeholder":true,"num":0}', '\x1e', '\x1f', '/admin', ',', '-'];
  const rawStrings = ['"\\ud800"', '"\\udc00x"', '"\\u0000"', '"\\u001e"', '"\\/"', '"\\u005fplaceholder"'];
  const numbers = ['0', '-0', '1', '-1', '0.5', '1e400', '-1e-400', '9007199254740993', '1E2', '123456789012345678901234567890'];

  // a JSON value as text; nbins: placeholders may name attachments 0..nbins-1 (or not)
  function value(depth, nbins) {
    const r = rand();
    if (depth > 3 || r < 0.35) {
      const k = int(6);
      if (k === 0) return JSON.stringify(pick(strings));
      if (k === 1) return pick(rawStrings);
      if (k === 2) return pick(numbers);
      if (k === 3) return pick(['true', 'false', 'null']);
      if (k === 4) return JSON.stringify(pick(strings) + int(1000));
      return String(int(100));
    }
    if (r < 0.43) return placeholder(nbins);
    if (r < 0.75) return `[${Array.from({ length: int(4) }, () => value(depth + 1, nbins)).join(',')}]`;
    const keys = Array.from({ length: int(4) }, () => (chance(0.2) ? pick(['"_placeholder"', '"num"', '"\\u005fplaceholder"', '"n\\u0075m"']) : JSON.stringify(pick(strings))));
    return `{${keys.map((k) => `${k}:${value(depth + 1, nbins)}`).join(',')}}`;
  }

  function placeholder(nbins) {
    const num = chance(0.7) ? String(int(Math.max(1, nbins))) : pick(['-1', '99', String(nbins), '"0"', '0.5', '1e0', 'null', '[0]', '10', '11']);
    const r = rand();
    if (r < 0.7) return `{"_placeholder":true,"num":${num}}`;
    if (r < 0.8) return `{"num":${num},"_placeholder":true}`;
    if (r < 0.85) return `{"_placeholder":true,"num":${num},"extra":1}`;
    if (r < 0.9) return `{"_placeholder":false,"_placeholder":true,"num":${num}}`;
    if (r < 0.95) return `{"\\u005fplaceholder":true,"num":${num}}`;
    return `{"_placeholder":true}`;
  }

  function legalPlaceholders(n) { return Array.from({ length: n }, (_, i) => `{"_placeholder":true,"num":${i}}`); }

  function eventName() {
    const r = rand();
    if (r < 0.75) return JSON.stringify(pick(events));
    if (r < 0.85) return JSON.stringify(pick(['connect', 'disconnect', 'connect_error', 'disconnecting', 'newListener', 'removeListener']));
    if (r < 0.92) return pick(numbers);
    return value(2, 0);
  }

  function args(nbins, legal) {
    const list = [];
    const extra = int(4);
    for (let i = 0; i < extra; i++) list.push(value(1, nbins));
    if (legal) for (const p of legalPlaceholders(nbins)) list.splice(int(list.length + 1), 0, chance(0.3) ? `{"deep":[${p}]}` : p);
    // for rooms: the first argument a room name now and then
    if (chance(0.3)) list.unshift(JSON.stringify(pick(rooms)));
    return list;
  }

  const nsp = () => (chance(0.6) ? '' : `${pick(namespaces)},`);
  const ackId = () => (chance(0.7) ? '' : pick(['0', '1', '42', '9007199254740993', '007', String(int(1e6))]));

  // one packet: { text, bins: [Buffer] }
  function packet() {
    const r = rand();
    const binary = chance(0.35);
    let nbins = binary ? (chance(0.85) ? 1 + int(3) : pick([0, 10, 11, 12])) : 0;
    const legal = chance(0.75);
    let text;
    if (r < 0.05) {
      text = `0${pick(namespaces)},${chance(0.5) ? JSON.stringify({ token: pick(['x', 'bad']), role: 'admin' }) : ''}`;
      nbins = 0;
    } else if (r < 0.08) {
      text = `1${nsp()}`;
      nbins = 0;
    } else if (r < 0.7) {
      const body = `[${[eventName(), ...args(nbins, legal)].join(',')}]`;
      text = binary ? `5${nbins}-${nsp()}${ackId()}${body}` : `2${nsp()}${ackId()}${body}`;
    } else if (r < 0.85) {
      const body = `[${args(nbins, legal).join(',')}]`;
      text = binary ? `6${nbins}-${nsp()}${int(5)}${body}` : `3${nsp()}${int(5)}${body}`;
    } else if (r < 0.88) {
      text = `4${nsp()}${JSON.stringify({ message: 'x' })}`;
      nbins = 0;
    } else {
      // a mutation of a legal event
      const body = `[${JSON.stringify(pick(events))},${legalPlaceholders(Math.max(1, nbins)).join(',')}]`;
      text = mutate(`5${Math.max(1, nbins)}-${nsp()}${body}`);
      nbins = Math.max(1, nbins) + pick([0, 0, 0, -1, 1]);
    }
    const sentBins = Math.max(0, nbins + (chance(0.9) ? 0 : pick([-1, 1])));
    const bins = Array.from({ length: sentBins }, (_, i) => Buffer.from([i, int(256), int(256)]));
    return { text, bins };
  }

  function mutate(s) {
    const a = [...s];
    const n = 1 + int(3);
    for (let k = 0; k < n; k++) {
      const i = int(a.length + 1);
      const m = int(5);
      const ch = pick(['"', '[', ']', '{', '}', ',', ':', '-', '/', '0', '9', 'x', '\\', ' ', '\x1e', 'é']);
      if (m === 0) a.splice(i, 1);
      else if (m === 1) a.splice(i, 0, ch);
      else if (m === 2) a[i] = ch;
      else if (m === 3) a.length = Math.max(1, i);
      else a.splice(i, 0, ...a.slice(0, int(6)));
    }
    return a.join('');
  }

  return { packet };
}

// ---- raw Engine.IO clients that decode all they get ------------------------------------------

class Capture {
  constructor(label, failures) {
    this.label = label;
    this.failures = failures;
    this.decoder = this.newDecoder();
    this.decoded = 0;
    this.binaryDecoded = 0;
    this.events = [];
  }

  newDecoder() {
    const d = new Decoder();
    d.on('decoded', (p) => {
      this.decoded++;
      if (p.type === 2 || p.type === 3) {
        if (Array.isArray(p.data) && p.data.some((x) => Buffer.isBuffer(x) || (x && typeof x === 'object' && hasBuffer(x)))) this.binaryDecoded++;
        if (p.type === 2) this.events.push(p.data);
      }
    });
    return d;
  }

  fail(what, data) {
    this.failures.push(`${this.label}: ${what}: ${typeof data === 'string' ? JSON.stringify(data.slice(0, 300)) : `<${data && data.length} bytes>`}`);
  }

  // one Engine.IO packet as engine.io-parser decoded it
  eio(p, raw) {
    if (p.type === 'error') { this.fail('engine.io-parser error', raw); return; }
    if (p.type !== 'message') return p.type;
    // after a failure, the attachments of the refused packet are not failures of their own
    if (this.skipping && typeof p.data !== 'string') return p.type;
    this.skipping = false;
    try {
      this.decoder.add(p.data);
    } catch (e) {
      this.fail(`socket.io-parser: ${e.message}`, p.data);
      this.decoder = this.newDecoder();
      this.skipping = true;
    }
    return p.type;
  }
}

function hasBuffer(x, depth = 0) {
  if (Buffer.isBuffer(x)) return true;
  if (!x || typeof x !== 'object' || depth > 5) return false;
  return Object.values(x).some((v) => hasBuffer(v, depth + 1));
}

// A raw client over 'polling' or 'websocket'. open() handshakes and sends the CONNECT packets
// given; send(records) sends Socket.IO text packets and Buffers as Engine.IO messages.
class RawClient {
  constructor(url, transport, capture) {
    this.url = url;
    this.transport = transport;
    this.capture = capture;
    this.closed = false;
    this.opened = false;
    this.texts = [];
  }

  async open(connects) {
    if (this.transport === 'websocket') {
      const ws = new WebSocket(`${this.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
      this.ws = ws;
      ws.on('message', (d, isBinary) => {
        const raw = isBinary ? d : d.toString();
        const p = decodePacket(raw, 'nodebuffer');
        if (!isBinary) this.texts.push(raw);
        if (this.capture.eio(p, raw) === 'ping') this.ws.send('3');
      });
      ws.on('close', () => { this.closed = true; });
      ws.on('error', () => { this.closed = true; });
      await new Promise((resolve) => { ws.once('open', resolve); ws.once('close', resolve); });
      await until(() => this.closed || this.texts.length > 0, 5000, 'the open packet');
    } else {
      const hs = await fetchT(`${this.url}/socket.io/?EIO=4&transport=polling`);
      this.take(hs.body);
      this.base = `${this.url}/socket.io/?EIO=4&transport=polling&sid=${JSON.parse(hs.body.slice(1)).sid}`;
      this.pollLoop();
    }
    this.opened = true;
    if (connects.length) await this.send(connects);
  }

  take(body) {
    for (const p of decodePayload(body, 'nodebuffer')) {
      const t = this.capture.eio(p, body);
      if (t === 'close') this.closed = true;
      if (t === 'ping') this.send(['\x00pong']);
    }
  }

  async pollLoop() {
    while (!this.closed && !this.stopped) {
      let r;
      try {
        r = await fetchT(this.base, {}, 40000);
      } catch {
        this.closed = true;
        break;
      }
      if (r.status !== 200) { this.closed = true; break; }
      this.take(r.body);
    }
  }

  // records: Socket.IO packet texts (sent as Engine.IO message "4...") and Buffers
  async send(records) {
    if (this.closed) return;
    const eio = records.map((x) => (Buffer.isBuffer(x) ? x : x === '\x00pong' ? '3' : '4' + x));
    if (this.transport === 'websocket') {
      for (const x of eio) if (this.ws.readyState === WebSocket.OPEN) this.ws.send(x);
      return;
    }
    const body = eio.map((x) => (Buffer.isBuffer(x) ? 'b' + x.toString('base64') : x)).join('\x1e');
    try {
      const r = await fetchT(this.base, { method: 'POST', body, headers: { 'content-type': 'text/plain;charset=UTF-8' } });
      if (r.status !== 200) this.closed = true;
    } catch {
      this.closed = true;
    }
  }

  stop() {
    this.stopped = true;
    if (this.ws) this.ws.terminate();
    else if (this.base && !this.closed) fetchT(this.base, { method: 'POST', body: '1' }).catch(() => {});
  }
}

// ---- the run -----------------------------------------------------------------------------------

async function runProperty(srv, { label, events, namespaces, rooms, receiverSetup, canaryEvent, seed }) {
  const rand = prng(seed);
  const gen = generator(rand, { events, namespaces, rooms });
  const failures = [];
  const clients = [];
  const started = Date.now();

  // receivers: both transports, every namespace they may join, in the rooms
  const receivers = [];
  for (const transport of ['polling', 'websocket']) {
    const c = new RawClient(srv.url, transport, new Capture(`${label} receiver ${transport}`, failures));
    await c.open(receiverSetup.connects);
    if (receiverSetup.after.length) await c.send(receiverSetup.after);
    receivers.push(c);
    clients.push(c);
  }

  // canaries: official clients in the room, sending now and then; each must get every one
  const canaries = [];
  for (const transports of [['websocket'], ['polling']]) {
    const s = io(srv.url, { forceNew: true, transports, reconnection: true, reconnectionDelay: 100 });
    const k = { s, got: new Set(), sent: [], disconnects: [], connects: 0 };
    s.on('connect', () => { k.connects++; });
    s.on('disconnect', (r) => { k.disconnects.push(r); });
    s.onAny((ev, ...a) => { if (typeof a[0] === 'string' && a[0].startsWith('canary-')) k.got.add(a[0]); });
    canaries.push(k);
  }
  await until(() => canaries.every((k) => k.s.connected), 10000, 'the canaries to connect');
  let canarySeq = 0;
  const canaryEmit = () => {
    for (const k of canaries) {
      const t = `canary-${k.s.io.engine.transport.name}-${++canarySeq}`;
      k.sent.push(t);
      k.s.emit(canaryEvent, t);
    }
  };

  // senders: two per transport, replaced when herald closes one
  const senders = [];
  const newSender = async (i) => {
    const transport = i % 2 ? 'polling' : 'websocket';
    const c = new RawClient(srv.url, transport, new Capture(`${label} sender ${transport} #${i}`, failures));
    await c.open(receiverSetup.connects);
    clients.push(c);
    return c;
  };
  for (let i = 0; i < 4; i++) senders.push(await newSender(i));

  let sent = 0, replaced = 0, binaries = 0;
  const deadline = started + TIME_BUDGET_MS - 15000;
  while (sent < COUNT && Date.now() < deadline) {
    const i = Math.floor(rand() * senders.length);
    if (senders[i].closed) {
      senders[i].stop();
      senders[i] = await newSender(i);
      replaced++;
    }
    // a few packets per send (one POST over polling)
    const records = [];
    const n = 1 + Math.floor(rand() * 3);
    for (let k = 0; k < n; k++) {
      const { text, bins } = gen.packet();
      records.push(text, ...bins);
      if (bins.length) binaries++;
      sent++;
    }
    await senders[i].send(records);
    if (sent % 100 < n) canaryEmit();
  }

  // the end: a last canary message; once every canary has all of them, what herald sent before
  // has reached the raw clients too (one loop, in order) — wait for the receivers to see it
  canaryEmit();
  const last = `canary-end-${label}`;
  canaries[0].s.emit(canaryEvent, last);
  // (a timeout is reported after the decode failures, which say more)
  let waitError = null;
  try {
    await until(() => canaries.every((k) => k.sent.every((t) => k.got.has(t))), 20000,
      () => `every canary message back: ${canaries.map((k) => `${k.sent.filter((t) => !k.got.has(t)).length} missing, disconnects ${JSON.stringify(k.disconnects)}`).join('; ')}`);
    await until(() => receivers.every((c) => c.capture.events.some((e) => e.includes(last))), 20000, 'the receivers to get the last canary message');
  } catch (e) {
    waitError = e;
  }
  const alive = await fetchT(`${srv.url}/socket.io/?EIO=4&transport=polling`);

  const summary = `${label}: seed ${seed}, ${sent} packets (${binaries} with attachments) in ${Date.now() - started} ms, ` +
    `${replaced} senders closed and replaced, decoded by receivers: ${receivers.map((c) => `${c.capture.decoded} (${c.capture.binaryDecoded} binary)`).join(', ')}, ` +
    `by senders: ${clients.filter((c) => !receivers.includes(c)).reduce((a, c) => a + c.capture.decoded, 0)}`;
  console.log(summary);

  const canaryState = canaries.map((k) => ({ name: k.s.io.opts.transports.join(), disconnects: [...k.disconnects], connects: k.connects }));
  for (const k of canaries) k.s.disconnect();
  for (const c of clients) c.stop();

  assert.deepEqual(failures.slice(0, 20), [], `packets herald sent that the official parsers refuse (SIO_PROPERTY_SEED=${seed}); ${summary}`);
  if (waitError) throw waitError;
  for (const k of canaryState) {
    assert.deepEqual(k.disconnects, [], `canary ${k.name} stayed connected (SIO_PROPERTY_SEED=${seed})`);
    assert.equal(k.connects, 1, `canary ${k.name} connected once`);
  }
  assert.equal(alive.status, 200, 'herald still answers a handshake');
  assert.ok(srv.proc.exitCode === null && srv.proc.signalCode === null, 'herald is running');
  assert.ok(sent >= Math.min(COUNT, 500), `at least 500 packets were sent in the time budget (${sent})`);
  assert.ok(receivers.every((c) => c.capture.decoded > 20), `the receivers decoded what herald relayed: ${summary}`);
}

console.log(`sio-property: SIO_PROPERTY_SEED=${SEED} SIO_PROPERTY_COUNT=${COUNT}`);

describe('every packet herald sends decodes with the official parsers', () => {
  test('chat app (the default): random and mutated packets from polling and WebSocket clients', { timeout: TIME_BUDGET_MS + 30000 }, async () => {
    const srv = await startHerald([]);
    try {
      const canary = await startCanary(srv, { rssLimitKb: RSS_LIMIT_KB });
      await runProperty(srv, {
        label: 'chat', seed: SEED, events: ['message', 'message', 'message', 'chat', 'x'],
        namespaces: ['/', '/admin', '/nope', '/a\x1eb', '/é'], rooms: ['chat'],
        receiverSetup: { connects: ['0'], after: [] }, canaryEvent: 'message',
      });
      await canary.check('random packets to the chat app');
    } finally {
      await stopServer(srv);
    }
  });

  test('examples/features: namespaces, rooms, acks both ways, echo, ask', { timeout: TIME_BUDGET_MS + 30000 }, async () => {
    const srv = await startExample('features');
    try {
      const canary = await startCanary(srv, { rssLimitKb: RSS_LIMIT_KB });
      await runProperty(srv, {
        label: 'features', seed: (SEED + 1) >>> 0,
        events: ['echo', 'echo-ack', 'to-all', 'to-room', 'broadcast', 'send', 'ask', 'join', 'rooms', 'whoami', 'leave'],
        namespaces: ['/', '/admin', '/dyn-a', '/dyn-\x1e', '/nope', '/é'], rooms: ['r1', 'r2'],
        receiverSetup: {
          connects: ['0', '0/admin,{"role":"admin"}', '0/dyn-a,'],
          after: ['2["join","r1"]', '2/admin,["join","r1"]', '2/dyn-a,["join","r1"]'],
        },
        canaryEvent: 'to-all',
      });
      await canary.check('random packets to examples/features');
    } finally {
      await stopServer(srv);
    }
  });
});
