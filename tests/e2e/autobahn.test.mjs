// Autobahn|Testsuite fuzzingclient cases 1-7, 9 and 10, replayed against herald's /echo endpoint
// with a raw client (lib/herald.mjs WsClient). Case numbers, payloads and the order of frames follow
// crossbario/autobahn-testsuite (autobahntestsuite/case/case*.py). Where Autobahn accepts a
// "non-strict" or "informational" outcome, these tests assert herald's specified behaviour
// instead: messages are processed in order (an echo queued before a failure is delivered),
// failures send a close frame with the exact code and then close TCP, and the server answers a
// close with a close carrying the same code.
import { describe, test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startHerald, repoRoot, WsClient, frame, sleep, describeEvents, sanitizerReport } from './lib/herald.mjs';

const TEXT = 1, BINARY = 2, CONT = 0, CLOSE = 8, PING = 9, PONG = 10;
const b = (hex) => Buffer.from(hex.replace(/\s+/g, ''), 'hex');
const s = (str) => Buffer.from(str, 'utf8');

let herald;
// --public: herald's default static root is cwd-relative and node --test runs from tests/e2e.
// the cases send thousands of messages back to back: no per-client message rate here
before(async () => { herald = await startHerald(['--public', path.join(repoRoot, 'public'), '--max-msg-rate', '0']); });
after(async () => {
  if (!herald) return;
  await herald.stop();
  const report = sanitizerReport(herald);
  assert.equal(report, null, `sanitizer report from herald:\n${report}`);
});
afterEach(() => {
  assert.equal(herald.proc.exitCode, null, `herald exited:\n${herald.output().slice(-2000)}`);
  assert.equal(herald.proc.signalCode, null, `herald was killed by ${herald.proc.signalCode}:\n${herald.output().slice(-2000)}`);
});

// Run fn with a fresh connection to /echo; always tear the socket down.
async function withWs(fn) {
  const c = await WsClient.open(herald.port);
  try {
    await fn(c);
    assert.deepEqual(c.violations, [], 'server sent frames a server must not send');
  } finally {
    c.destroy();
  }
}

function sameBytes(actual, expected, what) {
  if (actual.equals(expected)) return;
  let i = 0;
  while (i < Math.min(actual.length, expected.length) && actual[i] === expected[i]) i++;
  assert.fail(`${what}: got ${actual.length} bytes, expected ${expected.length}; first difference at offset ${i}`);
}

async function expectMessage(c, opcode, data, ms = 5000) {
  const ev = await c.next(ms, `${opcode === TEXT ? 'text' : 'binary'} echo of ${data.length} bytes`);
  assert.equal(ev.type, 'message', `expected a message, got ${describeEvents([ev])}`);
  assert.equal(ev.opcode, opcode, `echo opcode: got ${ev.opcode}, expected ${opcode}`);
  sameBytes(ev.data, data, 'echoed payload');
}

async function expectPong(c, data, ms = 5000) {
  const ev = await c.next(ms, 'pong');
  assert.equal(ev.type, 'pong', `expected a pong, got ${describeEvents([ev])}`);
  sameBytes(ev.data, data, 'pong payload');
}

// The server fails the connection: next event is a close frame with `code`, then TCP closes, and
// nothing follows the close frame. The client does not answer the close.
async function expectFailure(c, code, ms = 3000) {
  const ev = await c.next(ms, `close frame with code ${code}`);
  assert.equal(ev.type, 'close', `expected close ${code}, got ${describeEvents([ev])} (all: ${describeEvents(c.events)})`);
  assert.equal(ev.code, code, `close code: got ${ev.code}, expected ${code}`);
  await c.waitTcpClose(ms);
  assert.deepEqual(c.pending().map((e) => e.type), [], 'events after the close frame');
}

// Client-initiated closing handshake: the server's reply carries the same code (for an empty close
// payload: an empty payload or 1000), then the server closes TCP.
async function closeHandshake(c, code = 1000, reason = '') {
  c.sendClose(code, reason);
  const ev = await c.next(3000, 'close reply');
  assert.equal(ev.type, 'close', `expected the close reply, got ${describeEvents([ev])} (all: ${describeEvents(c.events)})`);
  if (code === undefined) assert.ok(ev.code === 1005 || ev.code === 1000, `close reply code ${ev.code}, expected empty or 1000`);
  else assert.equal(ev.code, code, `close reply code: got ${ev.code}, expected ${code}`);
  await c.waitTcpClose(3000);
  assert.deepEqual(c.pending().map((e) => e.type), [], 'events after the close reply');
}

// Split a message into frames of fragSize payload bytes (first frame carries the opcode).
function fragments(opcode, payload, fragSize) {
  const out = [];
  for (let off = 0; off < payload.length || off === 0; off += fragSize) {
    const end = Math.min(off + fragSize, payload.length);
    out.push(frame(off === 0 ? opcode : CONT, payload.subarray(off, end), { fin: end >= payload.length }));
    if (payload.length === 0) break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
describe('1 framing', () => {
  const lengths = [0, 125, 126, 127, 128, 65535, 65536];
  for (const [group, opcode, fill] of [['1.1', TEXT, 0x2a], ['1.2', BINARY, 0xfe]]) {
    const kind = opcode === TEXT ? 'text' : 'binary';
    lengths.forEach((len, i) => {
      test(`${group}.${i + 1} ${kind} message with payload length ${len}`, () => withWs(async (c) => {
        const p = Buffer.alloc(len, fill);
        c.send(frame(opcode, p));
        await expectMessage(c, opcode, p);
        await closeHandshake(c);
      }));
    });
    test(`${group}.8 ${kind} message with payload length 65536 sent in chops of 997 octets`, () => withWs(async (c) => {
      const p = Buffer.alloc(65536, fill);
      await c.sendChopped(frame(opcode, p), 997);
      await expectMessage(c, opcode, p);
      await closeHandshake(c);
    }));
  }
});

// ---------------------------------------------------------------------------------------------
describe('2 pings/pongs', () => {
  test('2.1 ping without payload', () => withWs(async (c) => {
    c.send(frame(PING));
    await expectPong(c, Buffer.alloc(0));
    await closeHandshake(c);
  }));
  test('2.2 ping with small text payload', () => withWs(async (c) => {
    c.send(frame(PING, s('Hello, world!')));
    await expectPong(c, s('Hello, world!'));
    await closeHandshake(c);
  }));
  test('2.3 ping with small binary (non UTF-8) payload', () => withWs(async (c) => {
    const p = b('00 ff fe fd fc fb 00 ff');
    c.send(frame(PING, p));
    await expectPong(c, p);
    await closeHandshake(c);
  }));
  test('2.4 ping with binary payload of 125 octets', () => withWs(async (c) => {
    const p = Buffer.alloc(125, 0xfe);
    c.send(frame(PING, p));
    await expectPong(c, p);
    await closeHandshake(c);
  }));
  test('2.5 ping with binary payload of 126 octets fails the connection', () => withWs(async (c) => {
    c.send(frame(PING, Buffer.alloc(126, 0xfe)));
    await expectFailure(c, 1002);
  }));
  test('2.6 ping with payload of 125 octets sent in octet-wise chops', () => withWs(async (c) => {
    const p = Buffer.alloc(125, 0xfe);
    await c.sendChopped(frame(PING, p), 1);
    await expectPong(c, p);
    await closeHandshake(c);
  }));
  test('2.7 unsolicited pong without payload is ignored', () => withWs(async (c) => {
    c.send(frame(PONG));
    await closeHandshake(c); // the close reply is the first and only thing the server sends
  }));
  test('2.8 unsolicited pong with payload is ignored', () => withWs(async (c) => {
    c.send(frame(PONG, s('unsolicited pong payload')));
    await closeHandshake(c);
  }));
  test('2.9 unsolicited pong with payload, then ping with payload', () => withWs(async (c) => {
    c.send(Buffer.concat([frame(PONG, s('unsolicited pong payload')), frame(PING, s('ping payload'))]));
    await expectPong(c, s('ping payload'));
    await closeHandshake(c);
  }));
  test('2.10 ten pings with payload, each answered in order', () => withWs(async (c) => {
    const pings = Array.from({ length: 10 }, (_, i) => s(`payload-${i}`));
    c.send(Buffer.concat(pings.map((p) => frame(PING, p))));
    for (const p of pings) await expectPong(c, p);
    await closeHandshake(c);
  }));
  test('2.11 ten pings with payload sent in octet-wise chops, each answered in order', () => withWs(async (c) => {
    const pings = Array.from({ length: 10 }, (_, i) => s(`payload-${i}`));
    await c.sendChopped(Buffer.concat(pings.map((p) => frame(PING, p))), 1);
    for (const p of pings) await expectPong(c, p);
    await closeHandshake(c);
  }));
});

// ---------------------------------------------------------------------------------------------
describe('3 reserved bits', () => {
  const hello = s('Hello, world!');
  test('3.1 small text message with RSV = 1 fails the connection', () => withWs(async (c) => {
    c.send(frame(TEXT, hello, { rsv: 1 }));
    await expectFailure(c, 1002);
  }));
  test('3.2 text message, then text with RSV = 2, then ping: echo, then fail, no pong', () => withWs(async (c) => {
    c.send(Buffer.concat([frame(TEXT, hello), frame(TEXT, hello, { rsv: 2 }), frame(PING)]));
    await expectMessage(c, TEXT, hello);
    await expectFailure(c, 1002);
  }));
  test('3.3 same as 3.2 with RSV = 3, frames sent one by one', () => withWs(async (c) => {
    await c.sendSync([frame(TEXT, hello), frame(TEXT, hello, { rsv: 3 }), frame(PING)]);
    await expectMessage(c, TEXT, hello);
    await expectFailure(c, 1002);
  }));
  test('3.4 same as 3.2 with RSV = 4, octets sent in octet-wise chops', () => withWs(async (c) => {
    await c.sendChopped(Buffer.concat([frame(TEXT, hello), frame(TEXT, hello, { rsv: 4 }), frame(PING)]), 1);
    await expectMessage(c, TEXT, hello);
    await expectFailure(c, 1002);
  }));
  test('3.5 small binary message with RSV = 5 fails the connection', () => withWs(async (c) => {
    c.send(frame(BINARY, b('00 ff fe fd fc fb 00 ff'), { rsv: 5 }));
    await expectFailure(c, 1002);
  }));
  test('3.6 ping with RSV = 6 fails the connection', () => withWs(async (c) => {
    c.send(frame(PING, hello, { rsv: 6 }));
    await expectFailure(c, 1002);
  }));
  test('3.7 close with RSV = 7 fails the connection', () => withWs(async (c) => {
    c.send(frame(CLOSE, Buffer.alloc(0), { rsv: 7 }));
    await expectFailure(c, 1002);
  }));
});

// ---------------------------------------------------------------------------------------------
describe('4 opcodes', () => {
  const hello = s('Hello, world!');
  const payload = s('reserved opcode payload');
  const cases = [
    // [case, opcode, with payload, preceded by a text message and followed by a ping]
    ['4.1.1', 3, false, false], ['4.1.2', 4, true, false], ['4.1.3', 5, false, true],
    ['4.1.4', 6, true, true], ['4.1.5', 7, true, true],
    ['4.2.1', 11, false, false], ['4.2.2', 12, true, false], ['4.2.3', 13, false, true],
    ['4.2.4', 14, true, true], ['4.2.5', 15, true, true],
  ];
  for (const [id, op, withPayload, sandwich] of cases) {
    const kind = op < 8 ? 'non-control' : 'control';
    const name = `${id} reserved ${kind} opcode ${op}${withPayload ? ' with payload' : ''}` +
      (sandwich ? ' after a text message, followed by a ping: echo, then fail, no pong' : ' fails the connection');
    test(name, () => withWs(async (c) => {
      const bad = frame(op, withPayload ? payload : Buffer.alloc(0));
      if (sandwich) {
        c.send(Buffer.concat([frame(TEXT, hello), bad, frame(PING)]));
        await expectMessage(c, TEXT, hello);
      } else {
        c.send(bad);
      }
      await expectFailure(c, 1002);
    }));
  }
});

// ---------------------------------------------------------------------------------------------
describe('5 fragmentation', () => {
  const f1 = s('fragment1'), f2 = s('fragment2');
  test('5.1 ping in 2 fragments fails the connection', () => withWs(async (c) => {
    c.send(Buffer.concat([frame(PING, f1, { fin: false }), frame(CONT, f2)]));
    await expectFailure(c, 1002);
  }));
  test('5.2 pong in 2 fragments fails the connection', () => withWs(async (c) => {
    c.send(Buffer.concat([frame(PONG, f1, { fin: false }), frame(CONT, f2)]));
    await expectFailure(c, 1002);
  }));

  const twoFrags = () => [frame(TEXT, f1, { fin: false }), frame(CONT, f2)];
  test('5.3 text message in 2 fragments', () => withWs(async (c) => {
    c.send(Buffer.concat(twoFrags()));
    await expectMessage(c, TEXT, s('fragment1fragment2'));
    await closeHandshake(c);
  }));
  test('5.4 text message in 2 fragments, frames sent one by one', () => withWs(async (c) => {
    await c.sendSync(twoFrags());
    await expectMessage(c, TEXT, s('fragment1fragment2'));
    await closeHandshake(c);
  }));
  test('5.5 text message in 2 fragments, octets sent in octet-wise chops', () => withWs(async (c) => {
    await c.sendChopped(Buffer.concat(twoFrags()), 1);
    await expectMessage(c, TEXT, s('fragment1fragment2'));
    await closeHandshake(c);
  }));

  const withPing = () => [frame(TEXT, f1, { fin: false }), frame(PING, s('ping payload')), frame(CONT, f2)];
  test('5.6 text message in 2 fragments with a ping in between', () => withWs(async (c) => {
    c.send(Buffer.concat(withPing()));
    await expectPong(c, s('ping payload'));
    await expectMessage(c, TEXT, s('fragment1fragment2'));
    await closeHandshake(c);
  }));
  test('5.7 text message in 2 fragments with a ping in between, frames sent one by one', () => withWs(async (c) => {
    await c.sendSync(withPing());
    await expectPong(c, s('ping payload'));
    await expectMessage(c, TEXT, s('fragment1fragment2'));
    await closeHandshake(c);
  }));
  test('5.8 text message in 2 fragments with a ping in between, octets sent in octet-wise chops', () => withWs(async (c) => {
    await c.sendChopped(Buffer.concat(withPing()), 1);
    await expectPong(c, s('ping payload'));
    await expectMessage(c, TEXT, s('fragment1fragment2'));
    await closeHandshake(c);
  }));

  // 5.9-5.14: a continuation frame with nothing to continue, then an unfragmented text message.
  for (const [base, fin] of [[9, true], [12, false]]) {
    const frames = () => [frame(CONT, s('non-continuation payload'), { fin }), frame(TEXT, s('Hello, world!'))];
    const what = `continuation frame with FIN = ${fin} and nothing to continue, then a text message`;
    test(`5.${base} ${what}, sent in one chop: fail, no echo`, () => withWs(async (c) => {
      c.send(Buffer.concat(frames()));
      await expectFailure(c, 1002);
    }));
    test(`5.${base + 1} ${what}, frames sent one by one: fail, no echo`, () => withWs(async (c) => {
      await c.sendSync(frames());
      await expectFailure(c, 1002);
    }));
    test(`5.${base + 2} ${what}, octets sent in octet-wise chops: fail, no echo`, () => withWs(async (c) => {
      await c.sendChopped(Buffer.concat(frames()), 1);
      await expectFailure(c, 1002);
    }));
  }

  test('5.15 text message in 2 fragments, then a continuation with nothing to continue, then text: echo, then fail', () => withWs(async (c) => {
    c.send(Buffer.concat([
      frame(TEXT, f1, { fin: false }), frame(CONT, f2), frame(CONT, s('fragment3'), { fin: false }), frame(TEXT, s('fragment4')),
    ]));
    await expectMessage(c, TEXT, s('fragment1fragment2'));
    await expectFailure(c, 1002);
  }));
  for (const [id, fin] of [['5.16', false], ['5.17', true]]) {
    test(`${id} repeated 2x: continuation (FIN = ${fin}) with nothing to continue, then text in 2 fragments: fail`, () => withWs(async (c) => {
      const once = [frame(CONT, f1, { fin }), frame(TEXT, f2, { fin: false }), frame(CONT, s('fragment3'))];
      c.send(Buffer.concat([...once, ...once]));
      await expectFailure(c, 1002);
    }));
  }
  test('5.18 text message in 2 fragments with both frame opcodes text: fail', () => withWs(async (c) => {
    c.send(Buffer.concat([frame(TEXT, f1, { fin: false }), frame(TEXT, f2)]));
    await expectFailure(c, 1002);
  }));

  // 5.19 / 5.20: fragments with a pause and pings in between. Each ping is answered at once,
  // before the message is complete.
  for (const [id, sync] of [['5.19', false], ['5.20', true]]) {
    test(`${id} text message in 5 fragments sent slowly with 2 pings in between${sync ? ', frames sent one by one' : ''}`, () => withWs(async (c) => {
      const frags = ['fragment1', 'fragment2', 'fragment3', 'fragment4', 'fragment5'].map(s);
      const pings = [s('pongme 1!'), s('pongme 2!')];
      const send = (frames) => (sync ? c.sendSync(frames) : c.send(Buffer.concat(frames)));
      await send([frame(TEXT, frags[0], { fin: false }), frame(CONT, frags[1], { fin: false }), frame(PING, pings[0])]);
      await expectPong(c, pings[0], 1000); // answered while the message is still incomplete
      await sleep(1000);
      assert.deepEqual(c.pending().map((e) => e.type), [], 'nothing but the first pong before the message is complete');
      await send([frame(CONT, frags[2], { fin: false }), frame(CONT, frags[3], { fin: false }), frame(PING, pings[1]), frame(CONT, frags[4])]);
      await expectPong(c, pings[1]);
      await expectMessage(c, TEXT, Buffer.concat(frags));
      await closeHandshake(c);
    }));
  }
});

// ---------------------------------------------------------------------------------------------
// The UTF-8 test sequences of case6_x_x.py (from Markus Kuhn's UTF-8-test.txt), as
// [sub-category title, [[valid, bytes], ...]]; sub-category k is Autobahn case 6.(k+5).
function utf8Sequences() {
  const V = (hex) => [true, b(hex)], I = (hex) => [false, b(hex)];
  const hello = (mid) => Buffer.concat([s('hello'), b(mid), s('world')]);
  const vss = b('ce ba e1 bd b9 cf 83 ce bc ce b5');
  const cats = [];
  cats.push(['Some valid UTF-8 sequences', [
    [true, hello('24')], [true, hello('c2a2')], [true, hello('e282ac')], [true, hello('f0a4ada2')], [true, vss],
  ]]);
  // A prefix is valid exactly when it ends on a code point boundary.
  const boundaries = new Set([2, 5, 7, 9, 11]);
  cats.push(['All prefixes of a valid UTF-8 string that contains multi-byte code points',
    Array.from({ length: vss.length }, (_, i) => [boundaries.has(i + 1), vss.subarray(0, i + 1)])]);
  cats.push(['First possible sequence of a certain length', [V('00'), V('c280'), V('e0a080'), V('f0908080')]]);
  cats.push(['First possible sequence length 5/6 (invalid codepoints)', [I('f888808080'), I('fc8480808080')]]);
  cats.push(['Last possible sequence of a certain length', [V('7f'), V('dfbf'), V('efbfbf'), V('f48fbfbf')]]);
  cats.push(['Last possible sequence length 4/5/6 (invalid codepoints)', [I('f7bfbfbf'), I('fbbfbfbfbf'), I('fdbfbfbfbfbf')]]);
  cats.push(['Other boundary conditions', [V('ed9fbf'), V('ee8080'), V('efbfbd'), V('f48fbfbf'), I('f4908080')]]);
  const range = (lo, hi) => Buffer.from(Array.from({ length: hi - lo }, (_, i) => lo + i)); // [lo, hi) like xrange
  cats.push(['Unexpected continuation bytes', [
    I('80'), I('bf'), I('80bf'), I('80bf80'), I('80bf80bf'), I('80bf80bf80'), I('80bf80bf80bf'), [false, range(0x80, 0xbf)],
  ]]);
  cats.push(['Lonely start characters', [[0xc0, 0xdf], [0xe0, 0xef], [0xf0, 0xf7], [0xf8, 0xfb], [0xfc, 0xfd]].map(([lo, hi]) =>
    [false, Buffer.from(Array.from({ length: hi - lo }, (_, i) => [lo + i, 0x20]).flat())])]);
  const missing = ['c0', 'e080', 'f08080', 'f8808080', 'fc80808080', 'df', 'efbf', 'f7bfbf', 'fbbfbfbf', 'fdbfbfbfbf'];
  cats.push(['Sequences with last continuation byte missing', missing.map(I)]);
  cats.push(['Concatenation of incomplete sequences', [I(missing.join(''))]]);
  cats.push(['Impossible bytes', [I('fe'), I('ff'), I('fefeffff')]]);
  cats.push(['Examples of an overlong ASCII character', [I('c0af'), I('e080af'), I('f08080af'), I('f8808080af'), I('fc80808080af')]]);
  cats.push(['Maximum overlong sequences', [I('c1bf'), I('e09fbf'), I('f08fbfbf'), I('f887bfbfbf'), I('fc83bfbfbfbf')]]);
  cats.push(['Overlong representation of the NUL character', [I('c080'), I('e08080'), I('f0808080'), I('f880808080'), I('fc8080808080')]]);
  cats.push(['Single UTF-16 surrogates', ['eda080', 'edadbf', 'edae80', 'edafbf', 'edb080', 'edbe80', 'edbfbf'].map(I)]);
  cats.push(['Paired UTF-16 surrogates', ['eda080edb080', 'eda080edbfbf', 'edadbfedb080', 'edadbfedbfbf',
    'edae80edb080', 'edae80edbfbf', 'edafbfedb080', 'edafbfedbfbf'].map(I)]);
  const nonchars = ['efbfbe', 'efbfbf'];
  for (const z1 of ['f0', 'f1', 'f2', 'f3', 'f4']) {
    for (const z2 of ['8f', '9f', 'af', 'bf']) {
      if (z1 === 'f4' && z2 !== '8f') continue; // > U+10FFFF
      for (const z3 of ['be', 'bf']) {
        const zz = z1 + z2 + 'bf' + z3;
        if (zz !== 'f08fbfbe' && zz !== 'f08fbfbf') nonchars.push(zz); // overlong
      }
    }
  }
  cats.push(['Non-character code points (valid UTF-8)', nonchars.map(V)]);
  cats.push(['Unicode specials (i.e. replacement char)', ['efbfb9', 'efbfba', 'efbfbb', 'efbfbc', 'efbfbd', 'efbfbe', 'efbfbf'].map(V)]);
  return cats;
}

describe('6 UTF-8 handling', () => {
  test('6.1.1 text message of length 0', () => withWs(async (c) => {
    c.send(frame(TEXT, Buffer.alloc(0)));
    await expectMessage(c, TEXT, Buffer.alloc(0));
    await closeHandshake(c);
  }));
  test('6.1.2 fragmented text message, 3 fragments each of length 0', () => withWs(async (c) => {
    c.send(Buffer.concat([frame(TEXT, Buffer.alloc(0), { fin: false }), frame(CONT, Buffer.alloc(0), { fin: false }), frame(CONT, Buffer.alloc(0))]));
    await expectMessage(c, TEXT, Buffer.alloc(0));
    await closeHandshake(c);
  }));
  test('6.1.3 fragmented text message, 3 fragments, first and last of length 0', () => withWs(async (c) => {
    const mid = s('middle frame payload');
    c.send(Buffer.concat([frame(TEXT, Buffer.alloc(0), { fin: false }), frame(CONT, mid, { fin: false }), frame(CONT, Buffer.alloc(0))]));
    await expectMessage(c, TEXT, mid);
    await closeHandshake(c);
  }));

  const helloUtf8 = s('Hello-µ@ßöäüàá-UTF-8!!');
  test('6.2.1 valid UTF-8 text message in one fragment', () => withWs(async (c) => {
    c.send(frame(TEXT, helloUtf8));
    await expectMessage(c, TEXT, helloUtf8);
    await closeHandshake(c);
  }));
  test('6.2.2 valid UTF-8 text message in two fragments, split on a code point boundary', () => withWs(async (c) => {
    c.send(Buffer.concat([frame(TEXT, s('Hello-µ@ßöä'), { fin: false }), frame(CONT, s('üàá-UTF-8!!'))]));
    await expectMessage(c, TEXT, helloUtf8);
    await closeHandshake(c);
  }));
  test('6.2.3 valid UTF-8 text message in fragments of 1 octet', () => withWs(async (c) => {
    c.send(Buffer.concat(fragments(TEXT, helloUtf8, 1)));
    await expectMessage(c, TEXT, helloUtf8);
    await closeHandshake(c);
  }));
  test('6.2.4 valid UTF-8 text message (multi-byte code points only) in fragments of 1 octet', () => withWs(async (c) => {
    const p = b('ce ba e1 bd b9 cf 83 ce bc ce b5');
    c.send(Buffer.concat(fragments(TEXT, p, 1)));
    await expectMessage(c, TEXT, p);
    await closeHandshake(c);
  }));

  const invalid631 = b('ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80 65 64 69 74 65 64');
  test('6.3.1 invalid UTF-8 text message, unfragmented: 1007', () => withWs(async (c) => {
    c.send(frame(TEXT, invalid631));
    await expectFailure(c, 1007);
  }));
  test('6.3.2 invalid UTF-8 text message in fragments of 1 octet: 1007', () => withWs(async (c) => {
    c.send(Buffer.concat(fragments(TEXT, invalid631, 1)));
    await expectFailure(c, 1007);
  }));

  // 6.4.x fail fast: the part that makes the text invalid arrives while the message (6.4.1/6.4.2)
  // or the frame (6.4.3/6.4.4) is incomplete; herald must fail the connection then, before the
  // rest is sent. Part 1 alone must be accepted without any reaction.
  const P1 = b('ce ba e1 bd b9 cf 83 ce bc ce b5'), P2 = b('f4 90 80 80'), P3 = b('65 64 69 74 65 64');
  const P = Buffer.concat([P1, P2, P3]);
  async function failFast(c, parts) {
    c.send(parts[0]);
    await sleep(300);
    assert.deepEqual(c.pending().map((e) => e.type), [], 'the valid first part must not be answered');
    assert.equal(c.tcpClosed, false, 'the valid first part must not close the connection');
    c.send(parts[1]);
    // The third part is never sent: the close must come without it.
    await expectFailure(c, 1007, 2000);
  }
  test('6.4.1 fail fast on invalid code point (U+110000) in the 2nd of 3 fragments', () => withWs(async (c) => {
    await failFast(c, [frame(TEXT, P1, { fin: false }), frame(CONT, P2, { fin: false }), frame(CONT, P3)]);
  }));
  test('6.4.2 fail fast on invalid code point: 2nd fragment is the single invalid octet', () => withWs(async (c) => {
    await failFast(c, [frame(TEXT, P.subarray(0, 12), { fin: false }), frame(CONT, P.subarray(12, 13), { fin: false }), frame(CONT, P.subarray(13))]);
  }));
  // One frame, its payload sent in 3 chops; the frame header (2 bytes + 4 mask) precedes chop 1.
  const hl = 6;
  test('6.4.3 fail fast on invalid code point in the 2nd chop of a single frame', () => withWs(async (c) => {
    const f = frame(TEXT, P);
    await failFast(c, [f.subarray(0, hl + 11), f.subarray(hl + 11, hl + 15), f.subarray(hl + 15)]);
  }));
  test('6.4.4 fail fast on invalid code point: 2nd chop of a single frame is the single invalid octet', () => withWs(async (c) => {
    const f = frame(TEXT, P);
    await failFast(c, [f.subarray(0, hl + 12), f.subarray(hl + 12, hl + 13), f.subarray(hl + 13)]);
  }));

  utf8Sequences().forEach(([title, seqs], k) => {
    describe(`6.${k + 5} ${title}`, () => {
      seqs.forEach(([valid, p], j) => {
        const id = `6.${k + 5}.${j + 1}`;
        const name = `${id} ${valid ? 'valid' : 'invalid'} UTF-8 in one text frame: ${p.toString('hex').slice(0, 48)}${p.length > 24 ? '...' : ''}` +
          (valid ? ' is echoed' : ' fails with 1007');
        test(name, () => withWs(async (c) => {
          c.send(frame(TEXT, p));
          if (valid) {
            await expectMessage(c, TEXT, p);
            await closeHandshake(c);
          } else {
            await expectFailure(c, 1007);
          }
        }));
      });
    });
  });
});

// ---------------------------------------------------------------------------------------------
describe('7 close handling', () => {
  const hello = s('Hello World!');
  test('7.1.1 text message followed by a close frame: echo, then clean close', () => withWs(async (c) => {
    c.send(frame(TEXT, hello));
    await expectMessage(c, TEXT, hello);
    await closeHandshake(c);
  }));
  test('7.1.2 two close frames: one close reply, then TCP closed', () => withWs(async (c) => {
    c.sendClose(1000);
    c.sendClose(1000);
    const ev = await c.next(3000, 'close reply');
    assert.equal(ev.type, 'close');
    assert.equal(ev.code, 1000);
    await c.waitTcpClose(3000);
    assert.deepEqual(c.pending().map((e) => e.type), []);
  }));
  test('7.1.3 ping after a close frame gets no pong', () => withWs(async (c) => {
    c.send(Buffer.concat([frame(CLOSE, b('03e8')), frame(PING)]));
    const ev = await c.next(3000, 'close reply');
    assert.equal(ev.type, 'close');
    assert.equal(ev.code, 1000);
    await c.waitTcpClose(3000);
    assert.deepEqual(c.pending().map((e) => e.type), [], 'nothing after the close reply');
  }));
  test('7.1.4 text message after a close frame is not echoed', () => withWs(async (c) => {
    c.send(Buffer.concat([frame(CLOSE, b('03e8')), frame(TEXT, hello)]));
    const ev = await c.next(3000, 'close reply');
    assert.equal(ev.type, 'close');
    assert.equal(ev.code, 1000);
    await c.waitTcpClose(3000);
    assert.deepEqual(c.pending().map((e) => e.type), [], 'nothing after the close reply');
  }));
  test('7.1.5 fragment 1, then close, then fragment 2: clean close with 1000, no echo', () => withWs(async (c) => {
    c.send(Buffer.concat([frame(TEXT, s('fragment1'), { fin: false }), frame(CLOSE, b('03e8')), frame(CONT, s('fragment2'))]));
    const ev = await c.next(3000, 'close reply');
    assert.equal(ev.type, 'close', `expected the close reply, got ${describeEvents([ev])}`);
    assert.equal(ev.code, 1000);
    await c.waitTcpClose(3000);
    assert.deepEqual(c.pending().map((e) => e.type), [], 'nothing after the close reply');
  }));
  test('7.1.6 256K text message, text message, close, ping: both echoed in order, close 1000, no pong', () => withWs(async (c) => {
    // Autobahn: informational. herald processes frames in order and flushes queued echoes
    // before its close reply, so both messages must arrive whole.
    const big = Buffer.alloc(256 * 1024);
    const pat = s('BAsd7&jh23');
    for (let i = 0; i < big.length; i++) big[i] = pat[i % pat.length];
    c.send(Buffer.concat([frame(TEXT, big), frame(TEXT, hello), frame(CLOSE, b('03e8')), frame(PING)]));
    await expectMessage(c, TEXT, big);
    await expectMessage(c, TEXT, hello);
    const ev = await c.next(3000, 'close reply');
    assert.equal(ev.type, 'close');
    assert.equal(ev.code, 1000);
    await c.waitTcpClose(3000);
    assert.deepEqual(c.pending().map((e) => e.type), [], 'no pong after the close reply');
  }));

  test('7.3.1 close with payload length 0: reply empty or 1000, then TCP closed', () => withWs(async (c) => {
    await closeHandshake(c, undefined);
  }));
  test('7.3.2 close with payload length 1 fails with 1002', () => withWs(async (c) => {
    c.send(frame(CLOSE, b('03')));
    await expectFailure(c, 1002);
  }));
  test('7.3.3 close with code 1000 and no reason', () => withWs(async (c) => {
    await closeHandshake(c, 1000);
  }));
  test('7.3.4 close with code 1000 and a short reason', () => withWs(async (c) => {
    await closeHandshake(c, 1000, 'Hello World!');
  }));
  test('7.3.5 close with code 1000 and a reason of maximum length (123)', () => withWs(async (c) => {
    await closeHandshake(c, 1000, '*'.repeat(123));
  }));
  test('7.3.6 close with code 1000 and a 124-byte reason (payload 126 > 125) fails with 1002', () => withWs(async (c) => {
    c.send(frame(CLOSE, Buffer.concat([b('03e8'), Buffer.alloc(124, 0x2a)])));
    await expectFailure(c, 1002);
  }));
  test('7.5.1 close with invalid UTF-8 reason fails with 1007', () => withWs(async (c) => {
    c.sendClose(1000, b('ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80 65 64 69 74 65 64'));
    await expectFailure(c, 1007);
  }));

  [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999].forEach((code, i) => {
    test(`7.7.${i + 1} close with valid code ${code} is answered with ${code}`, () => withWs(async (c) => {
      await closeHandshake(c, code);
    }));
  });
  [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999].forEach((code, i) => {
    test(`7.9.${i + 1} close with invalid code ${code} fails with 1002`, () => withWs(async (c) => {
      c.sendClose(code);
      await expectFailure(c, 1002);
    }));
  });
  // Autobahn: informational; herald's spec says these codes are invalid on the wire.
  [5000, 65535].forEach((code, i) => {
    test(`7.13.${i + 1} close with code ${code} fails with 1002`, () => withWs(async (c) => {
      c.sendClose(code);
      await expectFailure(c, 1002);
    }));
  });
});

// ---------------------------------------------------------------------------------------------
// Limits/performance. Text payloads mix ASCII with 2-, 3- and 4-byte code points so that UTF-8
// validation is exercised across frame and read boundaries; binary payloads cover all byte values.
function textPayload(len) {
  const pat = s('BAsd7&jh23 µ€𝄞 ');
  const out = Buffer.allocUnsafe(len);
  for (let off = 0; off < len; off += pat.length) pat.copy(out, off, 0, Math.min(pat.length, len - off));
  // do not end inside a code point: pad the tail from the last lead byte with '*'
  let i = len - 1;
  while (i >= 0 && (out[i] & 0xc0) === 0x80) i--;
  if (i >= 0 && out[i] >= 0xc0) {
    const need = out[i] >= 0xf0 ? 4 : out[i] >= 0xe0 ? 3 : 2;
    if (len - i < need) out.fill(0x2a, i);
  }
  return out;
}
function binaryPayload(len) {
  const out = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) out[i] = (i * 31 + (i >> 8)) & 0xff;
  return out;
}

describe('9 limits and performance', { timeout: 120000 }, () => {
  const KB = 1024, MB = 1024 * 1024;
  const big = [64 * KB, 256 * KB, MB, 4 * MB, 8 * MB, 16 * MB];
  const label = (n) => (n >= MB ? `${n / MB}M` : n >= KB ? `${n / KB}K` : `${n}`);
  for (const [grp, opcode, gen] of [['9.1', TEXT, textPayload], ['9.2', BINARY, binaryPayload]]) {
    big.forEach((len, i) => {
      test(`${grp}.${i + 1} ${opcode === TEXT ? 'text' : 'binary'} message of ${label(len)} in one frame`, { timeout: 30000 }, () => withWs(async (c) => {
        const p = gen(len);
        c.send(frame(opcode, p));
        await expectMessage(c, opcode, p, 20000);
        await closeHandshake(c);
      }));
    });
  }
  const fragSizes = [64, 256, KB, 4 * KB, 16 * KB, 64 * KB, 256 * KB, MB, 4 * MB];
  for (const [grp, opcode, gen] of [['9.3', TEXT, textPayload], ['9.4', BINARY, binaryPayload]]) {
    const p = gen(4 * MB);
    fragSizes.forEach((fs, i) => {
      test(`${grp}.${i + 1} ${opcode === TEXT ? 'text' : 'binary'} message of 4M in fragments of ${label(fs)}`, { timeout: 30000 }, () => withWs(async (c) => {
        c.send(Buffer.concat(fragments(opcode, p, fs)));
        await expectMessage(c, opcode, p, 20000);
        await closeHandshake(c);
      }));
    });
  }
  const chops = [64, 128, 256, 512, 1024, 2048];
  for (const [grp, opcode, gen] of [['9.5', TEXT, textPayload], ['9.6', BINARY, binaryPayload]]) {
    const p = gen(MB);
    chops.forEach((chop, i) => {
      test(`${grp}.${i + 1} ${opcode === TEXT ? 'text' : 'binary'} message of 1M sent in chops of ${chop} octets`, { timeout: 30000 }, () => withWs(async (c) => {
        await c.sendChopped(frame(opcode, p), chop);
        await expectMessage(c, opcode, p, 20000);
        await closeHandshake(c);
      }));
    });
  }
  const sizes = [0, 16, 64, 256, 1024, 4096];
  for (const [grp, opcode, gen] of [['9.7', TEXT, textPayload], ['9.8', BINARY, binaryPayload]]) {
    sizes.forEach((size, i) => {
      test(`${grp}.${i + 1} 1000 ${opcode === TEXT ? 'text' : 'binary'} messages of ${size} bytes, one round trip each`, { timeout: 30000 }, () => withWs(async (c) => {
        const p = gen(size);
        const f = frame(opcode, p);
        for (let n = 0; n < 1000; n++) {
          c.send(f);
          await expectMessage(c, opcode, p);
        }
        await closeHandshake(c);
      }));
    });
  }
});

// ---------------------------------------------------------------------------------------------
describe('10 auto-fragmentation', () => {
  test('10.1.1 text message of 65536 bytes sent in frames of 1300 bytes is echoed whole', () => withWs(async (c) => {
    const p = Buffer.alloc(65536, 0x2a);
    c.send(Buffer.concat(fragments(TEXT, p, 1300)));
    await expectMessage(c, TEXT, p);
    await closeHandshake(c);
  }));
});
