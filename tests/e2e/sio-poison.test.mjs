// Poison Socket.IO packets against herald's default app (the chat room): a hostile client sends
// a binary event whose placeholders socket.io-parser cannot reconstruct, such as
// 451-["message",{"_placeholder":true,"num":99}] with one attachment, or more attachments
// than its Decoder takes (10). Relayed, every official client in the room fails with
// "parse error" and reconnects, and connection state recovery replays the same packet to it.
// The rule: herald never sends a packet the official parser cannot decode; it refuses such a
// packet and closes the client that sent it, as the reference server does (its decoder throws,
// the client is closed).
//
// Each poison goes in over HTTP long-polling and over WebSocket from a raw Engine.IO client.
// Readers are official socket.io-client 4.8 clients (polling, WebSocket, and the default
// upgrade) with reconnection on: they must see no disconnect and no second connect, and keep
// receiving what the other users send, also after a recovery reconnect that follows a poison
// sent while they were away.
import { describe, test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { startHerald } from './lib/herald.mjs';
import { stopServer, until, fetchT } from './lib/sio-util.mjs';
import { startCanary } from './lib/hostile.mjs';

const T = { timeout: 60000 };
const RUN = `p${process.pid}-${Date.now().toString(36)}`;
let seq = 0;
const tag = (name) => `${RUN}-${name}-${++seq}`;

const ph = (num) => `{"_placeholder":true,"num":${num}}`;
const phs = (n) => Array.from({ length: n }, (_, i) => ph(i)).join(',');
// [name, Socket.IO text packet, number of binary attachments that follow it]
const POISONS = [
  ['num 99', `451-["message",${ph(99)}]`, 1],
  ['num -1', `451-["message",${ph(-1)}]`, 1],
  ['num = attachments', `452-["message",${ph(0)},${ph(2)}]`, 2],
  ['num a string', `451-["message",${ph('"0"')}]`, 1],
  ['num 0.5', `451-["message",${ph('0.5')}]`, 1],
  ['escaped key', `451-["message",{"\\u005fplaceholder":true,"num":7}]`, 1],
  ['duplicate key, the last true', `451-["message",${ph(0)},{"_placeholder":false,"_placeholder":true,"num":9}]`, 1],
  ['in an ack-id event', `451-42["message",${ph(5)}]`, 1],
  ['binary ack', `461-3[${ph(3)}]`, 1],
  ['11 attachments (the Decoder takes 10)', `4511-["message",${phs(11)}]`, 11],
];

let srv;
const readers = [];
const opened = [];

function reader(url, transports, opts = {}) {
  const socket = io(url, { forceNew: true, transports, timeout: 8000, reconnectionDelay: 100, reconnectionDelayMax: 200, ...opts });
  const r = { socket, name: transports ? transports.join('+') : 'default', messages: [], connects: 0, disconnects: [], errors: [] };
  socket.on('connect', () => { r.connects++; });
  socket.on('disconnect', (reason) => { r.disconnects.push(reason); });
  socket.on('connect_error', (e) => { r.errors.push(e.message); });
  socket.on('message', (...args) => { r.messages.push(args); });
  readers.push(r);
  return r;
}

const has = (r, t) => r.messages.some((args) => args[0] === t);
const describeR = (r) => `${r.name}: connects=${r.connects}, disconnects=${JSON.stringify(r.disconnects)}, errors=${JSON.stringify(r.errors)}`;

// A raw Engine.IO client over long-polling, joined to the main namespace.
async function pollingClient(url) {
  const hs = await fetchT(`${url}/socket.io/?EIO=4&transport=polling`);
  assert.equal(hs.status, 200);
  const { sid } = JSON.parse(hs.body.slice(1));
  const base = `${url}/socket.io/?EIO=4&transport=polling&sid=${sid}`;
  const post = async (records) => (await fetchT(base, { method: 'POST', body: records.join('\x1e'), headers: { 'content-type': 'text/plain;charset=UTF-8' } })).status;
  assert.equal(await post(['40']), 200);
  const got = await fetchT(base);
  assert.match(got.body, /^40\{"sid"/, 'CONNECT answered');
  return { post, get: () => fetchT(base, {}, 10000) };
}

// A raw Engine.IO client over WebSocket, joined to the main namespace.
async function wsClient(url) {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
  opened.push(ws);
  const texts = [];
  let closed = null;
  ws.on('message', (d, isBinary) => { if (!isBinary) texts.push(d.toString()); });
  ws.on('close', (code) => { closed = code; });
  ws.on('error', () => {});
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  await until(() => texts.some((t) => t.startsWith('0{')), 5000, 'the Engine.IO open packet');
  ws.send('40');
  await until(() => texts.some((t) => t.startsWith('40{"sid"')), 5000, 'the CONNECT answer');
  return { ws, texts, closed: () => closed };
}

const attachment = (i) => Buffer.from([0xde, 0xad, i]);

// Send one poison over the transport. Resolves to a function that resolves once herald has
// closed that client (the reference closes a client whose packet its decoder refuses).
async function sendPoison(url, transport, [name, text, nbins]) {
  if (transport === 'polling') {
    const c = await pollingClient(url);
    const records = [text, ...Array.from({ length: nbins }, (_, i) => 'b' + attachment(i).toString('base64'))];
    assert.equal(await c.post(records), 200);
    return async () => {
      // the session is gone: a poll answers with the close packet, or 400 once it is forgotten
      const deadline = Date.now() + 10000;
      for (const seen = [];;) {
        const r = await c.get();
        if (r.status === 400 || r.body.split('\x1e').includes('1')) return;
        seen.push(r.body.slice(0, 80));
        assert.ok(Date.now() < deadline, `herald to close the polling client that sent "${name}"; polls: ${JSON.stringify(seen)}`);
      }
    };
  }
  const c = await wsClient(url);
  c.ws.send(text);
  for (let i = 0; i < nbins; i++) c.ws.send(attachment(i));
  return () => until(() => c.closed() !== null, 10000, `herald to close the WebSocket client that sent "${name}"`);
}

// Everyone must have the message tagged t, with no disconnect or reconnect on the way.
async function allReceive(list, t, { connects = 1, disconnects = 0 } = {}) {
  await until(() => list.every((r) => has(r, t) || r.disconnects.length > disconnects), 15000,
    () => `every reader to get ${t}; ${list.map(describeR).join('; ')}`);
  for (const r of list) {
    assert.equal(r.disconnects.length, disconnects, `${describeR(r)}`);
    assert.equal(r.connects, connects, `${describeR(r)}`);
    assert.ok(has(r, t), `${r.name} got ${t}`);
  }
}

// the hostile-neighbours canary (an SSE reader and a publisher) runs through every attack
let canary;
before(async () => {
  srv = await startHerald([]);
  canary = await startCanary(srv, { rssLimitKb: 256 * 1024 });
});
after(async () => {
  await canary.check('the poison packets');
  await stopServer(srv);
});
afterEach(() => {
  for (const r of readers.splice(0)) r.socket.disconnect();
  for (const w of opened.splice(0)) w.terminate();
});

for (const transport of ['polling', 'websocket']) {
  describe(`poison packets sent over ${transport}`, () => {
    test('the readers in the room stay connected and keep receiving', T, async () => {
      const list = [reader(srv.url, ['polling']), reader(srv.url, ['websocket']), reader(srv.url, undefined)];
      const sender = reader(srv.url, ['websocket']);
      await until(() => [...list, sender].every((r) => r.socket.connected), 10000, 'the readers to connect');
      // the default client upgrades: let it finish, so that the poison meets the WebSocket too
      await until(() => list[2].socket.io.engine.transport.name === 'websocket', 10000, 'the upgrade');
      for (const poison of POISONS) {
        const closed = await sendPoison(srv.url, transport, poison);
        const t = tag(poison[0]);
        sender.socket.emit('message', t);
        await allReceive([...list, sender], t);
        await closed();
      }
      // legal binary still goes through, to all
      const t = tag('binary');
      sender.socket.emit('message', t, Buffer.from([1, 2, 3]), { deep: [Buffer.from([4])] });
      await allReceive([...list, sender], t);
      for (const r of list) {
        const m = r.messages.find((args) => args[0] === t);
        assert.deepEqual([...m[1]], [1, 2, 3], `${r.name}: the buffer`);
        assert.deepEqual([...m[2].deep[0]], [4], `${r.name}: the nested buffer`);
      }
    });

    test('a recovery reconnect does not replay a poison sent while the reader was away', T, async () => {
      // reconnection off: the reader comes back when told, after the poison is in
      const list = [reader(srv.url, ['polling'], { reconnection: false }), reader(srv.url, ['websocket'], { reconnection: false })];
      const sender = reader(srv.url, ['websocket']);
      await until(() => [...list, sender].every((r) => r.socket.connected), 10000, 'the readers to connect');
      const t0 = tag('before');
      sender.socket.emit('message', t0);
      await allReceive([...list, sender], t0);
      for (const r of list) r.socket.io.engine.close();
      await until(() => list.every((r) => r.disconnects.length === 1), 10000, 'the readers to drop');
      const closed = [];
      for (const poison of POISONS) closed.push(await sendPoison(srv.url, transport, poison));
      // published to the channel "chat" through the HTTP API, the room's channel: the official
      // sender in the room is poisoned too by the unfixed server
      const t1 = tag('missed');
      const pub = await fetchT(`${srv.url}/pub/chat`, { method: 'POST', body: t1 });
      assert.equal(pub.status, 200, pub.body);
      for (const r of list) {
        r.socket.io.reconnection(true);
        r.socket.connect();
      }
      await until(() => list.every((r) => r.connects === 2) || list.some((r) => r.disconnects.length > 1), 15000,
        () => `the readers to reconnect; ${list.map(describeR).join('; ')}`);
      await allReceive(list, t1, { connects: 2, disconnects: 1 });
      for (const r of list) assert.equal(r.socket.recovered, true, `${r.name} recovered`);
      const t2 = tag('after');
      sender.socket.emit('message', t2);
      await allReceive(list, t2, { connects: 2, disconnects: 1 });
      assert.deepEqual(list.map((r) => r.disconnects), list.map(() => ['forced close']));
      for (const c of closed) await c();
    });
  });
}
