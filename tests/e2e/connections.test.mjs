// File descriptors and connection limits: herald raises its soft open-file limit to the hard
// one, lowers --max-connections (with a warning) to what fits beside a reserve, refuses
// connections past it cleanly and says so in its log (one line a second at most), keeps every
// established client working, and accepts again once connections close; and
// --max-connections-per-ip refuses one address's excess without touching other addresses.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { startHerald, heraldBin } from './lib/herald.mjs';
import { startCanary } from './lib/hostile.mjs';

const prlimit = (soft, hard) => ['prlimit', `--nofile=${soft}:${hard}`, '--'];

// Open a connection from localAddress and send one request: resolves to 'answered' (an HTTP
// response came), 'refused' (closed with nothing sent back) or 'silent' (still open, no answer
// within ms). keep: leave an answered connection open (returned as .sock).
function probe(port, { localAddress = '127.0.0.1', ms = 3000, keep = false } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1', localAddress });
    let data = '', done = false;
    const finish = (r) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!keep || r !== 'answered') sock.destroy();
      resolve({ result: r, sock, data });
    };
    const timer = setTimeout(() => finish('silent'), ms);
    sock.on('connect', () => sock.write('GET /no-such-page HTTP/1.1\r\nHost: x\r\n\r\n'));
    sock.on('data', (d) => { data += d; if (data.includes('\r\n\r\n')) finish('answered'); });
    sock.on('end', () => finish(data ? 'answered' : 'refused'));
    sock.on('close', () => finish(data ? 'answered' : 'refused'));
    sock.on('error', () => finish('refused'));
  });
}

// Connect and send nothing: resolves once connected, with a flag that turns true if the
// server closes it.
function idleConnect(port, localAddress = '127.0.0.1') {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1', localAddress });
    const c = { sock, closed: false };
    sock.on('close', () => { c.closed = true; });
    sock.on('end', () => { c.closed = true; });
    sock.on('error', () => { c.closed = true; });
    sock.on('connect', () => resolve(c));
  });
}

async function until(pred, ms, what) {
  const t0 = Date.now();
  while (!(await pred())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// GET a path on a connection of its own that is closed afterwards; resolves to the body.
function getOnce(port, pathname) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathname, agent: false, headers: { Connection: 'close' } }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
  });
}

function nofileOf(pid) {
  const m = /Max open files\s+(\d+)\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'));
  return { soft: Number(m[1]), hard: Number(m[2]) };
}

describe('the open-file limit', () => {
  const running = [];
  after(async () => { for (const h of running) await h.stop(); });

  test('the soft limit is raised to the hard one, and a --max-connections above it is lowered with a warning', async () => {
    const h = await startHerald(['--max-connections', '10000000', '--store', 'memory'], { wrapper: prlimit(256, 1024) });
    running.push(h);
    assert.deepEqual(nofileOf(h.proc.pid), { soft: 1024, hard: 1024 });
    // 1024 less the reserve (64 + 1024 / 32); stderr may come after the listening line on stdout
    await until(() => /--max-connections 10000000 lowered to 928: the open-file limit is 1024/.test(h.output()), 3000, 'the warning');
  });

  test('a --max-connections that fits is left alone, without a warning', async () => {
    const h = await startHerald(['--max-connections', '100', '--store', 'memory'], { wrapper: prlimit(256, 256) });
    running.push(h);
    assert.doesNotMatch(h.output(), /lowered/);
  });

  test('past the limit new connections are refused and logged; established clients keep working; accepted again after', async () => {
    // 256 descriptors: at most 256 - (64 + 8) = 184 connections
    const h = await startHerald(['--max-connections-per-ip', '0', '--header-timeout', '60', '--store', 'sqlite'],
      { wrapper: prlimit(256, 256) });
    running.push(h);
    await until(() => /--max-connections 100000 lowered to 184/.test(h.output()), 3000, 'the warning');
    const canary = await startCanary(h);
    // the canary's publisher opens its keep-alive connection with its first publish: let it
    // be established before the limit is reached (a new connection is refused at the limit)
    await until(async () => /"canary":\d/.test(await getOnce(h.port, '/poll/canary?since=0')), 5000, 'the canary\'s first message');
    const conns = [];
    try {
      for (let i = 0; i < 400; i++) conns.push(await idleConnect(h.port));
      await until(() => /refused \d+ connections?: 184 open/.test(h.output()), 5000, 'the refusals in the log');
      await until(() => conns.filter((c) => c.closed).length >= 400 - 184, 5000, 'the connections past the limit to be closed');
      const open = conns.filter((c) => !c.closed).length;
      assert.ok(open <= 184, `${open} idle connections open`);
      assert.ok(open >= 150, `only ${open} connections were accepted`);
      // one log line per second at most, however many were refused
      const lines = h.output().split('\n').filter((l) => /refused \d+ connection/.test(l));
      assert.ok(lines.length <= 3, `${lines.length} refusal lines:\n${lines.join('\n')}`);
      // new clients are refused cleanly (closed, not left hanging) while the limit holds: keep
      // trying for a second and a half, while the canary goes on publishing and reading
      for (const t0 = Date.now(); Date.now() - t0 < 1500;)
        assert.equal((await probe(h.port)).result, 'refused');
      // close the idle connections: new clients are accepted again
      for (const c of conns) c.sock.destroy();
      await until(async () => (await probe(h.port, { ms: 1000 })).result === 'answered', 5000, 'a new connection to be answered');
      const fig = await canary.check('connections past the open-file limit');
      assert.ok(fig.published >= 5);
      assert.ok(h.proc.exitCode === null, 'herald is still running');
    } finally {
      for (const c of conns) c.sock.destroy();
    }
  });
});

describe('--max-connections-per-ip', () => {
  let h;
  after(async () => { if (h) await h.stop(); });

  test('one address over the limit is refused and logged; other addresses are not affected', async () => {
    h = await startHerald(['--max-connections-per-ip', '5', '--store', 'memory']);
    const held = [];
    try {
      // the limit counts connections open at once: keep five open from 127.0.0.1
      for (let i = 0; i < 5; i++) {
        const r = await probe(h.port, { keep: true });
        assert.equal(r.result, 'answered', `connection ${i + 1} of 5`);
        held.push(r.sock);
      }
      assert.equal((await probe(h.port)).result, 'refused', 'the sixth from 127.0.0.1');
      await until(() => /refused 1 connection: over --max-connections-per-ip 5/.test(h.output()), 3000, 'the log line');
      // other addresses each have their own count
      for (const addr of ['127.0.0.2', '127.0.0.3']) {
        for (let i = 0; i < 5; i++) {
          const r = await probe(h.port, { localAddress: addr, keep: true });
          assert.equal(r.result, 'answered', `${addr} connection ${i + 1}`);
          held.push(r.sock);
        }
        assert.equal((await probe(h.port, { localAddress: addr })).result, 'refused', `the sixth from ${addr}`);
      }
      // the held connections still work
      const again = await new Promise((resolve) => {
        let d = '';
        held[0].on('data', (x) => { d += x; if (d.includes('\r\n\r\n')) resolve(d); });
        held[0].write('GET /no-such-page HTTP/1.1\r\nHost: x\r\n\r\n');
      });
      assert.match(again, /^HTTP\/1\.1 404/);
      // one closes: its address may connect again
      held[0].destroy();
      await until(async () => (await probe(h.port, { ms: 1000 })).result === 'answered', 5000, 'a new connection from 127.0.0.1');
    } finally {
      for (const s of held) s.destroy();
    }
  });

  test('the default is 256 and 0 turns it off (see --help)', () => {
    const help = execFileSync(heraldBin, ['--help']).toString();
    assert.match(help, /--max-connections-per-ip N[\s\S]*default 256, 0 for no limit/);
  });
});
