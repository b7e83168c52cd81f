// The official Socket.IO v5 conformance suite (socketio/socket.io,
// docs/socket.io-protocol/v5-test-suite/test-suite.js, 32 cases: 16 Engine.IO cases at
// /socket.io/ and 16 Socket.IO ones), ported case by case from mocha + chai to node:test against
// herald's `--app conformance-sio` (Socket.IO at /socket.io/, pingInterval 300, pingTimeout 200,
// namespaces "/" and "/custom"; on connection "auth" is emitted with the client's auth payload,
// "message" comes back as "message-back", "message-with-ack" is acked with its arguments).
// Assertions are the suite's, one for one (chai `eql` -> deepStrictEqual). Where the suite does
// not await something (the close of a refused WebSocket), the port waits a little and reports a
// diagnostic instead of failing, to stay exactly as strict. With REFERENCE=1 the same cases run
// against the official Node.js socket.io server (lib/reference-server.mjs).
//
// The suite's WebSocket is a browser's: its message events are separate tasks, so awaiting one
// never misses the next. The 'ws' package dispatches the messages of one read synchronously, so
// events are buffered until awaited (lib/sio-util.mjs createWebSocket), which gives the same order.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, stopServer, createWebSocket as createWs, waitFor, waitForPackets, closeAll, sleep, fetchT as fetch,
} from './lib/sio-util.mjs';

const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
// Timing slack added to the suite's sleeps (never to its assertions) for a loaded machine: a
// server timer may fire late, and a request may need a moment to reach the server.
const SLACK = 400;
const SETTLE = 50;

let server;
let URL_;
let WS_URL;
const sockets = [];
// `new WebSocket(url)` in the suite, with binaryType 'arraybuffer' throughout (a browser's default is 'blob').
const newWebSocket = (url) => createWs(url, { binaryType: 'arraybuffer', track: sockets });

async function initLongPollingSession() {
  const response = await fetch(`${URL_}/socket.io/?EIO=4&transport=polling`);
  const content = await response.text();
  return JSON.parse(content.substring(1)).sid;
}

async function initSocketIOConnection() {
  const socket = newWebSocket(`${WS_URL}/socket.io/?EIO=4&transport=websocket`);
  socket.binaryType = 'arraybuffer';
  await waitFor(socket, 'message'); // Engine.IO handshake
  socket.send('40');
  await waitFor(socket, 'message'); // Socket.IO handshake
  await waitFor(socket, 'message'); // "auth" packet
  return socket;
}

function assertEioHandshake(value, upgrades) {
  assert.deepStrictEqual(Object.keys(value).sort(), ['maxPayload', 'pingInterval', 'pingTimeout', 'sid', 'upgrades'], JSON.stringify(value));
  assert.equal(typeof value.sid, 'string');
  assert.deepStrictEqual(value.upgrades, upgrades);
  assert.deepStrictEqual(value.pingInterval, PING_INTERVAL);
  assert.deepStrictEqual(value.pingTimeout, PING_TIMEOUT);
  assert.deepStrictEqual(value.maxPayload, 1000000);
}

function assertSioHandshake(handshake) {
  assert.deepStrictEqual(Object.keys(handshake), ['sid'], JSON.stringify(handshake));
  assert.equal(typeof handshake.sid, 'string');
}

const startsWith = (s, p) => assert.ok(typeof s === 'string' && s.startsWith(p), `expected ${JSON.stringify(s)} to start with ${JSON.stringify(p)}`);

// The suite calls waitFor(socket, "close") without awaiting it: nothing is asserted. Wait up to
// 2 s anyway and report (not fail) when the server keeps the connection.
async function unawaitedClose(t, socket) {
  const closed = await Promise.race([waitFor(socket, 'close', 2000).then(() => true, () => false), sleep(2100).then(() => false)]);
  if (!closed) t.diagnostic(`${socket.url} was not closed within 2 s (the suite does not await this)`);
}

before(async () => {
  server = await startServer(['--app', 'conformance-sio']);
  URL_ = server.url;
  WS_URL = URL_.replace('http', 'ws');
});
after(async () => { closeAll(sockets); await stopServer(server); });
afterEach(() => closeAll(sockets));

describe('Engine.IO protocol', { timeout: 10000 }, () => {
  describe('handshake', () => {
    describe('HTTP long-polling', () => {
      it('should successfully open a session', async () => {
        const response = await fetch(`${URL_}/socket.io/?EIO=4&transport=polling`);
        assert.deepStrictEqual(response.status, 200);
        const content = await response.text();
        startsWith(content, '0');
        assertEioHandshake(JSON.parse(content.substring(1)), ['websocket']);
      });

      it("should fail with an invalid 'EIO' query parameter", async () => {
        const response = await fetch(`${URL_}/socket.io/?transport=polling`);
        assert.deepStrictEqual(response.status, 400);
        const response2 = await fetch(`${URL_}/socket.io/?EIO=abc&transport=polling`);
        assert.deepStrictEqual(response2.status, 400);
      });

      it("should fail with an invalid 'transport' query parameter", async () => {
        const response = await fetch(`${URL_}/socket.io/?EIO=4`);
        assert.deepStrictEqual(response.status, 400);
        const response2 = await fetch(`${URL_}/socket.io/?EIO=4&transport=abc`);
        assert.deepStrictEqual(response2.status, 400);
      });

      it('should fail with an invalid request method', async () => {
        const response = await fetch(`${URL_}/socket.io/?EIO=4&transport=polling`, { method: 'post' });
        assert.deepStrictEqual(response.status, 400);
        const response2 = await fetch(`${URL_}/socket.io/?EIO=4&transport=polling`, { method: 'put' });
        assert.deepStrictEqual(response2.status, 400);
      });
    });

    describe('WebSocket', () => {
      it('should successfully open a session', async () => {
        const socket = newWebSocket(`${WS_URL}/socket.io/?EIO=4&transport=websocket`);
        const { data } = await waitFor(socket, 'message');
        startsWith(data, '0');
        assertEioHandshake(JSON.parse(data.substring(1)), []);
        socket.close();
      });

      it("should fail with an invalid 'EIO' query parameter", async (t) => {
        const socket = newWebSocket(`${WS_URL}/socket.io/?transport=websocket`);
        const c1 = unawaitedClose(t, socket);
        const socket2 = newWebSocket(`${WS_URL}/socket.io/?EIO=abc&transport=websocket`);
        await unawaitedClose(t, socket2);
        await c1;
      });

      it("should fail with an invalid 'transport' query parameter", async (t) => {
        const socket = newWebSocket(`${WS_URL}/socket.io/?EIO=4`);
        const c1 = unawaitedClose(t, socket);
        const socket2 = newWebSocket(`${WS_URL}/socket.io/?EIO=4&transport=abc`);
        await unawaitedClose(t, socket2);
        await c1;
      });
    });
  });

  describe('heartbeat', { timeout: 5000 }, () => {
    describe('HTTP long-polling', () => {
      it('should send ping/pong packets', async () => {
        const sid = await initLongPollingSession();
        for (let i = 0; i < 3; i++) {
          const pollResponse = await fetch(`${URL_}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
          assert.deepStrictEqual(pollResponse.status, 200);
          assert.deepStrictEqual(await pollResponse.text(), '2');
          const pushResponse = await fetch(`${URL_}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'post', body: '3' });
          assert.deepStrictEqual(pushResponse.status, 200);
        }
      });

      it('should close the session upon ping timeout', async () => {
        const sid = await initLongPollingSession();
        await sleep(PING_INTERVAL + PING_TIMEOUT + SLACK);
        const pollResponse = await fetch(`${URL_}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
        assert.deepStrictEqual(pollResponse.status, 400);
      });
    });

    describe('WebSocket', () => {
      it('should send ping/pong packets', async () => {
        const socket = newWebSocket(`${WS_URL}/socket.io/?EIO=4&transport=websocket`);
        await waitFor(socket, 'message'); // handshake
        for (let i = 0; i < 3; i++) {
          const { data } = await waitFor(socket, 'message');
          assert.deepStrictEqual(data, '2');
          socket.send('3');
        }
        socket.close();
      });

      it('should close the session upon ping timeout', async () => {
        const socket = newWebSocket(`${WS_URL}/socket.io/?EIO=4&transport=websocket`);
        await waitFor(socket, 'close'); // handshake
      });
    });
  });

  describe('close', () => {
    describe('HTTP long-polling', () => {
      it('should forcefully close the session', async () => {
        const sid = await initLongPollingSession();
        const [pollResponse] = await Promise.all([
          fetch(`${URL_}/socket.io/?EIO=4&transport=polling&sid=${sid}`),
          // (the suite sends both at once; the POST waits a moment so that the GET is pending first)
          sleep(SETTLE).then(() => fetch(`${URL_}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'post', body: '1' })),
        ]);
        assert.deepStrictEqual(pollResponse.status, 200);
        assert.deepStrictEqual(await pollResponse.text(), '6');
        const pollResponse2 = await fetch(`${URL_}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
        assert.deepStrictEqual(pollResponse2.status, 400);
      });
    });

    describe('WebSocket', () => {
      it('should forcefully close the session', async () => {
        const socket = newWebSocket(`${WS_URL}/socket.io/?EIO=4&transport=websocket`);
        await waitFor(socket, 'message'); // handshake
        socket.send('1');
        await waitFor(socket, 'close');
      });
    });
  });

  describe('upgrade', () => {
    it('should successfully upgrade from HTTP long-polling to WebSocket', async () => {
      const sid = await initLongPollingSession();
      const socket = newWebSocket(`${WS_URL}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
      await waitFor(socket, 'open');
      // send probe
      socket.send('2probe');
      const probeResponse = await waitFor(socket, 'message');
      assert.deepStrictEqual(probeResponse.data, '3probe');
      // complete upgrade
      socket.send('5');
    });

    it('should ignore HTTP requests with same sid after upgrade', async () => {
      const sid = await initLongPollingSession();
      const socket = newWebSocket(`${WS_URL}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
      await waitFor(socket, 'open');
      socket.send('2probe');
      socket.send('5');
      await sleep(2 * SETTLE); // (not in the suite: lets the upgrade land before the next request)
      const pollResponse = await fetch(`${URL_}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
      assert.deepStrictEqual(pollResponse.status, 400);
    });

    it('should ignore WebSocket connection with same sid after upgrade', async () => {
      const sid = await initLongPollingSession();
      const socket = newWebSocket(`${WS_URL}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
      await waitFor(socket, 'open');
      socket.send('2probe');
      socket.send('5');
      await sleep(2 * SETTLE); // (not in the suite: lets the upgrade land before the next request)
      const socket2 = newWebSocket(`${WS_URL}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
      await waitFor(socket2, 'close');
    });
  });
});

describe('Socket.IO protocol', { timeout: 10000 }, () => {
  describe('connect', () => {
    it('should allow connection to the main namespace', async () => {
      const socket = newWebSocket(`${WS_URL}/socket.io/?EIO=4&transport=websocket`);
      await waitFor(socket, 'message'); // Engine.IO handshake
      socket.send('40');
      const { data } = await waitFor(socket, 'message');
      startsWith(data, '40');
      assertSioHandshake(JSON.parse(data.substring(2)));
      const authPacket = await waitFor(socket, 'message');
      assert.deepStrictEqual(authPacket.data, '42["auth",{}]');
    });

    it('should allow connection to the main namespace with a payload', async () => {
      const socket = newWebSocket(`${WS_URL}/socket.io/?EIO=4&transport=websocket`);
      await waitFor(socket, 'message'); // Engine.IO handshake
      socket.send('40{"token":"123"}');
      const { data } = await waitFor(socket, 'message');
      startsWith(data, '40');
      assertSioHandshake(JSON.parse(data.substring(2)));
      const authPacket = await waitFor(socket, 'message');
      assert.deepStrictEqual(authPacket.data, '42["auth",{"token":"123"}]');
    });

    it('should allow connection to a custom namespace', async () => {
      const socket = newWebSocket(`${WS_URL}/socket.io/?EIO=4&transport=websocket`);
      await waitFor(socket, 'message'); // Engine.IO handshake
      socket.send('40/custom,');
      const { data } = await waitFor(socket, 'message');
      startsWith(data, '40/custom,');
      assertSioHandshake(JSON.parse(data.substring(10)));
      const authPacket = await waitFor(socket, 'message');
      assert.deepStrictEqual(authPacket.data, '42/custom,["auth",{}]');
    });

    it('should allow connection to a custom namespace with a payload', async () => {
      const socket = newWebSocket(`${WS_URL}/socket.io/?EIO=4&transport=websocket`);
      await waitFor(socket, 'message'); // Engine.IO handshake
      socket.send('40/custom,{"token":"abc"}');
      const { data } = await waitFor(socket, 'message');
      startsWith(data, '40/custom,');
      assertSioHandshake(JSON.parse(data.substring(10)));
      const authPacket = await waitFor(socket, 'message');
      assert.deepStrictEqual(authPacket.data, '42/custom,["auth",{"token":"abc"}]');
    });

    it('should disallow connection to an unknown namespace', async () => {
      const socket = newWebSocket(`${WS_URL}/socket.io/?EIO=4&transport=websocket`);
      await waitFor(socket, 'message'); // Engine.IO handshake
      socket.send('40/random');
      const { data } = await waitFor(socket, 'message');
      assert.deepStrictEqual(data, '44/random,{"message":"Invalid namespace"}');
    });

    it('should disallow connection with an invalid handshake', async () => {
      const socket = newWebSocket(`${WS_URL}/socket.io/?EIO=4&transport=websocket`);
      await waitFor(socket, 'message'); // Engine.IO handshake
      socket.send('4abc');
      await waitFor(socket, 'close');
    });

    it('should close the connection if no handshake is received', async () => {
      const socket = newWebSocket(`${WS_URL}/socket.io/?EIO=4&transport=websocket`);
      await waitFor(socket, 'close');
    });
  });

  describe('disconnect', () => {
    it('should disconnect from the main namespace', async () => {
      const socket = await initSocketIOConnection();
      socket.send('41');
      const { data } = await waitFor(socket, 'message');
      assert.deepStrictEqual(data, '2');
    });

    it('should connect then disconnect from a custom namespace', async () => {
      const socket = await initSocketIOConnection();
      await waitFor(socket, 'message'); // ping
      socket.send('40/custom');
      await waitFor(socket, 'message'); // Socket.IO handshake
      await waitFor(socket, 'message'); // auth packet
      socket.send('41/custom');
      socket.send('42["message","message to main namespace"]');
      const { data } = await waitFor(socket, 'message');
      assert.deepStrictEqual(data, '42["message-back","message to main namespace"]');
    });
  });

  describe('message', () => {
    it('should send a plain-text packet', async () => {
      const socket = await initSocketIOConnection();
      socket.send('42["message",1,"2",{"3":[true]}]');
      const { data } = await waitFor(socket, 'message');
      assert.deepStrictEqual(data, '42["message-back",1,"2",{"3":[true]}]');
    });

    it('should send a packet with binary attachments', async () => {
      const socket = await initSocketIOConnection();
      socket.send('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
      socket.send(Uint8Array.from([1, 2, 3]));
      socket.send(Uint8Array.from([4, 5, 6]));
      const packets = await waitForPackets(socket, 3);
      assert.deepStrictEqual(packets[0], '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
      assert.deepStrictEqual(packets[1], Uint8Array.from([1, 2, 3]).buffer);
      assert.deepStrictEqual(packets[2], Uint8Array.from([4, 5, 6]).buffer);
      socket.close();
    });

    it('should send a plain-text packet with an ack', async () => {
      const socket = await initSocketIOConnection();
      socket.send('42456["message-with-ack",1,"2",{"3":[false]}]');
      const { data } = await waitFor(socket, 'message');
      assert.deepStrictEqual(data, '43456[1,"2",{"3":[false]}]');
    });

    it('should send a packet with binary attachments and an ack', async () => {
      const socket = await initSocketIOConnection();
      socket.send('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
      socket.send(Uint8Array.from([1, 2, 3]));
      socket.send(Uint8Array.from([4, 5, 6]));
      const packets = await waitForPackets(socket, 3);
      assert.deepStrictEqual(packets[0], '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
      assert.deepStrictEqual(packets[1], Uint8Array.from([1, 2, 3]).buffer);
      assert.deepStrictEqual(packets[2], Uint8Array.from([4, 5, 6]).buffer);
      socket.close();
    });

    it('should close the connection upon invalid format (unknown packet type)', async () => {
      const socket = await initSocketIOConnection();
      socket.send('4abc');
      await waitFor(socket, 'close');
    });

    it('should close the connection upon invalid format (invalid payload format)', async () => {
      const socket = await initSocketIOConnection();
      socket.send('42{}');
      await waitFor(socket, 'close');
    });

    it('should close the connection upon invalid format (invalid ack id)', async () => {
      const socket = await initSocketIOConnection();
      socket.send('42abc["message-with-ack",1,"2",{"3":[false]}]');
      await waitFor(socket, 'close');
    });
  });
});
