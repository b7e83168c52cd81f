// What the official Engine.IO v4 and Socket.IO v5 test suites (socketio/socket.io,
// docs/engine.io-protocol/v4-test-suite/test-suite.js and
// docs/socket.io-protocol/v5-test-suite/test-suite.js) take from their environment, so that the
// ports can keep the suites' case bodies exactly as published:
//
// - mocha's describe/it on top of node:test, with mocha's timing: every case fails after 2000 ms
//   (mocha's default) unless a describe block called this.timeout(ms), as the suites' heartbeat
//   blocks do (5000 ms). An uncaught exception fails the running case, as in mocha.
// - chai's expect, for exactly the assertions the suites make (with chai-string's startsWith).
// - WebSocket: the 'ws' package, as the suites' node-imports.js sets it (so an unhandled 'error'
//   event is thrown, as there). fetch: Node's own (the suites' node-imports.js uses node-fetch,
//   which is not installed here; both throw when a request is closed abnormally).
// - The suites' own helpers (sleep, createWebSocket, waitFor, waitForPackets), unchanged: no
//   timeout, no extra listener, nothing recorded.
import { describe as nodeDescribe, it as nodeIt } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';

// ---- mocha ------------------------------------------------------------------------------------

const MOCHA_DEFAULT_TIMEOUT = 2000;
const timeouts = [MOCHA_DEFAULT_TIMEOUT];

// node:test runs a describe callback synchronously, so the timeout a block sets applies to the
// cases declared inside it, and only to those.
export function describe(name, fn) {
  nodeDescribe(name, () => {
    let pushed = false;
    const ctx = {
      timeout(ms) {
        if (pushed) timeouts.pop();
        timeouts.push(ms);
        pushed = true;
      },
    };
    try {
      fn.call(ctx);
    } finally {
      if (pushed) timeouts.pop();
    }
  });
}

export function it(name, fn) {
  nodeIt(name, { timeout: timeouts[timeouts.length - 1] }, fn);
}

// ---- chai -------------------------------------------------------------------------------------

const show = (v) => (typeof v === 'string' ? JSON.stringify(v) : String(v));

export function expect(actual) {
  return {
    to: {
      // deep equality (chai's eql compares ArrayBuffers by their bytes, as deepStrictEqual does)
      eql: (expected) => assert.deepStrictEqual(actual, expected),
      // chai-string
      startsWith: (prefix) => assert.ok(typeof actual === 'string' && actual.startsWith(prefix),
        `expected ${show(actual)} to start with ${show(prefix)}`),
      have: {
        all: {
          keys: (...keys) => assert.deepStrictEqual(Object.keys(actual).sort(), [...keys].sort(),
            `expected ${JSON.stringify(actual)} to have exactly the keys ${keys.join(', ')}`),
        },
      },
      be: {
        a: (type) => assert.equal(typeof actual, type, `expected ${show(actual)} to be a ${type}`),
        oneOf: (list) => assert.ok(list.includes(actual), `expected ${show(actual)} to be one of ${JSON.stringify(list)}`),
      },
    },
  };
}

// ---- the suites' helpers, as published ---------------------------------------------------------

export function sleep(delay) {
  return new Promise((resolve) => setTimeout(resolve, delay));
}

export function createWebSocket(url) {
  const socket = new WebSocket(url);
  socket._eventBuffer = {};
  socket._pendingPromises = {};

  for (const eventType of ['open', 'close', 'message']) {
    socket._eventBuffer[eventType] = [];
    socket._pendingPromises[eventType] = [];

    socket.addEventListener(eventType, (event) => {
      if (socket._pendingPromises[eventType].length) {
        socket._pendingPromises[eventType].shift()(event);
      } else {
        socket._eventBuffer[eventType].push(event);
      }
    });
  }

  return socket;
}

export function waitFor(socket, eventType) {
  if (socket._eventBuffer[eventType].length) {
    return Promise.resolve(socket._eventBuffer[eventType].shift());
  } else {
    return new Promise((resolve) => {
      socket._pendingPromises[eventType].push(resolve);
    });
  }
}

// (Socket.IO v5 suite only)
export function waitForPackets(socket, count) {
  const packets = [];

  return new Promise((resolve) => {
    const handler = (event) => {
      if (event.data === '2') {
        // ignore PING packets
        return;
      }
      packets.push(event.data);
      if (packets.length === count) {
        socket.removeEventListener('message', handler);
        resolve(packets);
      }
    };
    socket.addEventListener('message', handler);
  });
}
