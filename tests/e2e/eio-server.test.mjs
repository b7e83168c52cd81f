// Engine.IO server behaviour the official suites touch only loosely, checked in detail against
// herald's `--app conformance-eio` (Engine.IO at /engine.io/, pingInterval 300, pingTimeout 200,
// every message echoed):
//
// - A WebSocket that comes for a session that is already upgraded, or whose upgrade is under
//   way, gets what the reference server gives it: the handshake completes (101), then a close
//   frame with no status code and nothing else, and the session goes on undisturbed.
// - The heartbeat keeps to its schedule: a session that never answers a ping is gone
//   pingInterval + pingTimeout after its handshake even when the event loop ran the ping late
//   (herald's process is stopped across the ping's due time), and a request that comes after
//   that deadline finds the session gone (400) whatever the loop was doing.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stopServer, httpRequest, sleep, USE_REFERENCE } from './lib/sio-util.mjs';
import { WsClient, describeEvents } from './lib/herald.mjs';

const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;

let server;
before(async () => { server = await startServer(['--app', 'conformance-eio']); });
after(() => stopServer(server));

const eioPath = (q) => `/engine.io/?EIO=4&${q}`;

async function pollingSession() {
  const r = await httpRequest(`${server.url}${eioPath('transport=polling')}`);
  assert.equal(r.status, 200, r.body);
  const open = JSON.parse(r.body.slice(1));
  assert.equal(open.pingInterval, PING_INTERVAL);
  assert.equal(open.pingTimeout, PING_TIMEOUT);
  return open.sid;
}

const textOf = (e) => (e.type === 'message' ? e.data.toString() : `<${e.type}>`);

// The next message that is not a ping, answering pings on the way (so the session stays up).
async function nextMessage(ws, what) {
  for (;;) {
    const e = await ws.next(3000, what);
    if (e.type !== 'message') return e;
    if (e.data.toString() === '2') { ws.send(wsText('3')); continue; }
    return e;
  }
}

// A masked client text frame.
function wsText(s) {
  const data = Buffer.from(s);
  assert.ok(data.length < 126);
  const mask = Buffer.from([1, 2, 3, 4]);
  const body = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) body[i] = data[i] ^ mask[i & 3];
  return Buffer.concat([Buffer.from([0x81, 0x80 | data.length]), mask, body]);
}

// The second WebSocket for sid: 101, then a close frame with an empty payload (code 1005 for the
// client), no message before it.
async function expectLateWebSocketClosed(sid) {
  const late = await WsClient.open(server.port, { path: eioPath(`transport=websocket&sid=${sid}`) });
  try {
    const e = await late.next(3000, 'the close frame of a WebSocket that came too late');
    assert.equal(e.type, 'close', `expected only a close frame, got ${describeEvents(late.events)}`);
    assert.equal(e.payload.length, 0, 'the close frame carries no status code (as the reference sends it)');
    late.sendClose(); // the closing handshake's answer; then the server closes TCP
    await late.waitTcpClose(3000);
    assert.deepEqual(late.events.map((x) => x.type), ['close'], `nothing but the close frame: ${describeEvents(late.events)}`);
    assert.deepEqual(late.violations, []);
  } finally {
    late.destroy();
  }
}

describe('a WebSocket for a session that has one already', () => {
  test('after the upgrade: 101, then an empty close frame; the upgraded session is unaffected', async () => {
    const sid = await pollingSession();
    const ws = await WsClient.open(server.port, { path: eioPath(`transport=websocket&sid=${sid}`) });
    try {
      ws.send(wsText('2probe'));
      assert.equal(textOf(await nextMessage(ws, '3probe')), '3probe');
      ws.send(wsText('5'));
      // the upgrade has landed once a poll is refused
      for (const deadline = Date.now() + 3000; ;) {
        const r = await httpRequest(`${server.url}${eioPath(`transport=polling&sid=${sid}`)}`);
        if (r.status === 400) break;
        assert.ok(Date.now() < deadline, `polling still answered after the upgrade: ${r.status} ${r.body}`);
      }
      await expectLateWebSocketClosed(sid);
      ws.send(wsText('4still here'));
      assert.equal(textOf(await nextMessage(ws, 'the echo on the upgraded WebSocket')), '4still here');
    } finally {
      ws.destroy();
    }
  });

  test('during the upgrade (probe answered, no upgrade packet yet): 101, then an empty close frame; the upgrade completes', async () => {
    const sid = await pollingSession();
    const ws = await WsClient.open(server.port, { path: eioPath(`transport=websocket&sid=${sid}`) });
    try {
      ws.send(wsText('2probe'));
      assert.equal(textOf(await nextMessage(ws, '3probe')), '3probe');
      await expectLateWebSocketClosed(sid);
      ws.send(wsText('5'));
      ws.send(wsText('4upgraded'));
      assert.equal(textOf(await nextMessage(ws, 'the echo after the upgrade')), '4upgraded');
    } finally {
      ws.destroy();
    }
  });

  test('for an unknown sid the handshake is refused with 400 "Session ID unknown"', async () => {
    await assert.rejects(WsClient.open(server.port, { path: eioPath('transport=websocket&sid=nosuchsession') }),
      /handshake failed: HTTP\/1\.1 400/);
  });
});

describe('heartbeat deadlines', { skip: USE_REFERENCE && 'stops the server process to make its event loop late' }, () => {
  // The ping is due PING_INTERVAL after the handshake. herald's process is stopped from well
  // before that until well after it, so the loop sends the ping late; the pong is still due
  // PING_INTERVAL + PING_TIMEOUT after the handshake, not PING_TIMEOUT after the late ping.
  // A poll sent after that deadline (but before late ping + PING_TIMEOUT) must find the session
  // gone. (Before the fix it got the pending ping, 200 "2": the deadline had moved.)
  test('a session without pong ends pingInterval + pingTimeout after its handshake, even if the ping went out late', async () => {
    const sid = await pollingSession();
    const t0 = Date.now(); // after the handshake's answer: the server's deadline is before t0 + 500
    const pid = server.proc.pid;
    await sleep(100);
    process.kill(pid, 'SIGSTOP');
    try {
      await sleep(PING_INTERVAL + 180 - (Date.now() - t0)); // resumed at t0 + 480: ping sent then
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await sleep(Math.max(0, PING_INTERVAL + PING_TIMEOUT + 60 - (Date.now() - t0))); // t0 + 560
    const r = await httpRequest(`${server.url}${eioPath(`transport=polling&sid=${sid}`)}`);
    assert.equal(r.status, 400, `poll at ${Date.now() - t0} ms after the handshake: ${r.status} ${JSON.stringify(r.body)}`);
    assert.deepEqual(JSON.parse(r.body), { code: 1, message: 'Session ID unknown' });
  });

  test('a pong within pingTimeout of the ping keeps the session (the schedule starts again from the pong)', async () => {
    const sid = await pollingSession();
    const url = `${server.url}${eioPath(`transport=polling&sid=${sid}`)}`;
    for (let i = 0; i < 3; i++) {
      const r = await httpRequest(url);
      assert.equal(r.status, 200);
      assert.equal(r.body, '2');
      assert.equal((await httpRequest(url, { method: 'POST', body: '3' })).status, 200);
    }
    // no pong for the next ping: gone after pingInterval + pingTimeout from the last pong
    const r = await httpRequest(url);
    assert.equal(r.body, '2');
    await sleep(PING_TIMEOUT + 50);
    const gone = await httpRequest(url);
    assert.equal(gone.status, 400, gone.body);
  });
});
