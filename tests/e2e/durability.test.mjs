// The SQLite store (the default): history, ids and the epoch survive a restart, and a publish
// that was acknowledged survives kill -9 in the middle of a burst; a reader holding a cursor from
// before the kill resumes on every transport (/ws, /sse, /lp, /poll) with every stored message
// after it, once, in order. After a power loss (herald did not stop, and the system booted
// since) the epoch changes, so a cursor from before is told of a gap.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import WebSocket from 'ws';
import { startHerald, freshDataDir, sleep, sanitizerReport } from './lib/herald.mjs';
import {
  makeAgent, request, publish, pollReq, pollAll, info, assertExactRun, SseClient, JSON_TYPE,
} from './lib/channels-util.mjs';

const idOf = (cursor) => Number(cursor.split(':')[1]);

// A /ws/{ch} reader: resolves once open; msgs [{id, cursor, data}], other (any other frame), closed.
function wsReader(port, pathname) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${pathname}`);
  const r = { ws, msgs: [], other: [], closed: false, waiters: [] };
  const wake = () => { for (const w of r.waiters.splice(0)) w(); };
  ws.on('message', (d) => {
    const j = JSON.parse(d.toString());
    if (j && j.id !== undefined && j.cursor !== undefined) r.msgs.push(j); else r.other.push(j);
    wake();
  });
  ws.on('close', () => { r.closed = true; wake(); });
  ws.on('error', () => { r.closed = true; wake(); });
  r.until = (pred, ms, what) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`WS ${pathname}: timed out after ${ms} ms waiting for ${what}; ${r.msgs.length} messages, other ${JSON.stringify(r.other).slice(0, 200)}, closed=${r.closed}`)), ms);
    const check = () => { if (pred()) { clearTimeout(timer); resolve(); } else r.waiters.push(check); };
    check();
  });
  r.opened = new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); ws.once('unexpected-response', (req, res) => reject(new Error(`HTTP ${res.statusCode}`))); });
  return r;
}

// Follow a channel with a chain of /poll or /lp requests from since until the server is gone;
// records every message (id -> JSON text) and the last `next` it was given.
function pollFollower(base, route, ch, since) {
  const f = { seen: new Map(), next: since, stopped: false, answers: 0 };
  const agent = makeAgent(1);
  f.done = (async () => {
    while (!f.stopped) {
      let res;
      try { res = await pollReq(base, route, ch, f.next, { agent, timeoutMs: 5000 }); } catch { break; }
      if (res.status !== 200 || !res.json) break;
      for (const m of res.json.messages) f.seen.set(m.id, JSON.stringify(m.data));
      f.next = res.json.next;
      f.answers++;
      if (route === 'poll' && !res.json.more) await sleep(5);
    }
    agent.destroy();
  })();
  return f;
}

describe('SQLite store', { timeout: 120000 }, () => {
  test('history, ids and the epoch survive a clean restart', async () => {
    const data = freshDataDir();
    let h = await startHerald(['--data', data]);
    let epoch;
    try {
      for (let i = 1; i <= 5; i++) assert.equal((await publish(h.url, 'keep', { n: i })).id, i);
      epoch = (await info(h.url, 'keep')).epoch;
    } finally { await h.stop(); }
    h = await startHerald(['--data', data]);
    try {
      const inf = await info(h.url, 'keep');
      assert.equal(inf.epoch, epoch, 'the same epoch after a restart');
      assert.equal(inf.last_id, 5);
      const { messages, gaps } = await pollAll(h.url, 'poll', 'keep', `${epoch}:2`, { epoch });
      assert.deepEqual(gaps, []);
      assert.deepEqual(messages.map((m) => m.data), [{ n: 3 }, { n: 4 }, { n: 5 }]);
      assert.equal((await publish(h.url, 'keep', { n: 6 })).id, 6, 'ids go on after the restart');
    } finally { await h.stop(); }
  });

  // --store-sync normal skips the fsync of each commit: a crash of herald itself (this kill)
  // must still lose nothing acknowledged, as with the default full
  for (const sync of ['full', 'normal']) test(`kill -9 in a publish burst (--store-sync ${sync}): every acknowledged message is there after a restart, and a cursor from before the kill resumes on every transport`, async (t) => {
    const data = freshDataDir();
    let h = await startHerald(['--data', data, '--store-sync', sync]);
    const acked = new Map(); // id -> value
    const agent = makeAgent(32);
    let killed = false;
    let lastAck; // the cursor in the latest POST answer
    const burst = async (k) => {
      for (let i = 0; !killed; i++) {
        const value = JSON.stringify({ writer: k, i });
        try {
          const res = await request(h.url, 'POST', '/pub/burst', { body: value, headers: JSON_TYPE, agent, timeoutMs: 5000 });
          if (res.status === 200) { acked.set(res.json.id, value); lastAck = res.json.cursor; }
        } catch { return; } // the server is gone
      }
    };
    // readers on every transport follow the burst live, each keeping the cursor it last got
    const epoch = (await info(h.url, 'burst')).epoch;
    const wsLive = wsReader(h.port, '/ws/burst');
    await wsLive.opened;
    const sseLive = await SseClient.open(h.port, '/sse/burst', { keepText: false });
    const lpLive = pollFollower(h.url, 'lp', 'burst', '0');
    const pollLive = pollFollower(h.url, 'poll', 'burst', '0');
    let ackCursor; // the cursor of a publish acknowledged well before the kill
    const writers = Array.from({ length: 16 }, (_, k) => burst(k));
    const until = Date.now() + 20000;
    try {
      while (acked.size < 1000 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      ackCursor = lastAck;
      while (acked.size < 2000 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.ok(acked.size >= 2000, `only ${acked.size} publishes acknowledged before the kill`);
    } finally {
      h.proc.kill('SIGKILL');
      killed = true;
      await h.exited;
      await Promise.all(writers);
      agent.destroy();
      lpLive.stopped = pollLive.stopped = true;
      await Promise.all([lpLive.done, pollLive.done]);
      sseLive.close();
      wsLive.ws.terminate();
    }
    // what the live readers saw before the kill, and the cursors they hold
    const seenLive = [
      ['ws', new Map(wsLive.msgs.map((m) => [m.id, JSON.stringify(m.data)]))],
      ['sse', new Map(sseLive.messages().map((m) => [idOf(m.id), JSON.stringify(JSON.parse(m.data))]))],
      ['lp', lpLive.seen],
      ['poll', pollLive.seen],
    ];
    const cursors = [
      ['the ack of a publish', ackCursor],
      ['the live WS reader', wsLive.msgs.at(-1)?.cursor ?? `${epoch}:0`],
      ['the live SSE reader', sseLive.lastEventId || `${epoch}:0`],
      ['the live long-poll', lpLive.next],
      ['the live poll', pollLive.next],
    ];
    for (const [who, c] of cursors) assert.match(c, new RegExp(`^${epoch}:\\d+$`), `${who}: cursor ${c}`);

    h = await startHerald(['--data', data, '--lp-timeout', '1', '--store-sync', sync]);
    try {
      const { messages } = await pollAll(h.url, 'poll', 'burst', '0');
      const stored = new Map(messages.map((m) => [m.id, JSON.stringify(m.data)]));
      const lost = [...acked.keys()].filter((id) => stored.get(id) !== acked.get(id));
      assert.deepEqual(lost.slice(0, 10), [], `${lost.length} of ${acked.size} acknowledged messages lost or changed`);
      // what was stored is a run of ids from 1 with no hole
      const ids = messages.map((m) => m.id);
      assert.deepEqual(ids, Array.from({ length: ids.length }, (_, i) => i + 1));
      const last = ids.length;
      // a message is shown to nobody before it is committed: whatever a live reader got is stored
      for (const [route, seen] of seenLive) {
        const notStored = [...seen].filter(([id, v]) => stored.get(id) !== v).map(([id]) => id);
        assert.deepEqual(notStored.slice(0, 10), [], `${route}: ${notStored.length} of ${seen.size} messages seen live before the kill are not stored as seen`);
      }
      assert.equal((await info(h.url, 'burst')).epoch, epoch, 'the epoch survives kill -9');
      t.diagnostic(`${acked.size} acknowledged, ${last} stored (${last - [...acked.keys()].filter((id) => id <= last).length} committed without an answer); ` +
        `cursors ${cursors.map(([who, c]) => `${who.replace(/^the /, '')}=${idOf(c)}`).join(', ')}; ` +
        `seen live: ${seenLive.map(([r, m]) => `${r} ${m.size}`).join(', ')}`);

      // resume from each cursor taken before the kill, on each transport: exactly the stored
      // messages after it (every acknowledged one, and those committed whose answer the kill
      // cut off), in order, once, and no gap notice
      const resumeWs = async (c, want) => {
        const r = wsReader(h.port, `/ws/burst?since=${c}`);
        await r.opened;
        await r.until(() => r.msgs.length >= want || r.closed, 20000, `${want} messages`);
        await sleep(100);
        r.ws.close();
        assert.deepEqual(r.other, [], `/ws since=${c}: only message frames (no gap)`);
        return r.msgs.map((m) => ({ id: m.id, data: m.data }));
      };
      const resumeSse = async (c, want) => {
        const s = await SseClient.open(h.port, '/sse/burst', { headers: { 'Last-Event-ID': c }, keepText: false });
        assert.equal(s.status, 200);
        await s.waitMessages(want, 20000);
        await sleep(100);
        s.close();
        assert.deepEqual(s.events.filter((e) => e.type !== 'message'), [], `/sse Last-Event-ID ${c}: no gap event`);
        return s.messages().map((m) => ({ id: idOf(m.id), data: JSON.parse(m.data) }));
      };
      const resumePoll = (route) => async (c) => {
        const r = await pollAll(h.url, route, 'burst', c, { epoch });
        assert.deepEqual(r.gaps, [], `/${route} since=${c}: no gap`);
        return r.messages.map((m) => ({ id: m.id, data: m.data }));
      };
      const transports = [['ws', resumeWs], ['sse', resumeSse], ['lp', resumePoll('lp')], ['poll', resumePoll('poll')]];
      for (const [who, c] of cursors) {
        const from = idOf(c);
        assert.ok(from <= last, `${who}: cursor ${c} is within what was stored (${last})`);
        const ackedAfter = [...acked.keys()].filter((id) => id > from).length;
        for (const [route, resume] of transports) {
          const got = await resume(c, last - from);
          const what = `/${route} from ${who} (${c})`;
          assertExactRun(got.map((m) => m.id), got.map((m) => m.data), from + 1, last, stored, what);
          const gotIds = new Set(got.map((m) => m.id));
          assert.equal([...acked.keys()].filter((id) => id > from && gotIds.has(id)).length, ackedAfter, `${what}: every acknowledged message after the cursor`);
        }
      }
      const next = await publish(h.url, 'burst', { after: true });
      assert.equal(next.id, ids.length + 1, 'the next id follows the stored ones');
    } finally { await h.stop(); }
    assert.equal(sanitizerReport(h), null, `sanitizer report:\n${sanitizerReport(h)}`);
  });

  // Subscribers get a batch before its fsync, so a power loss may undo messages they have (never
  // one whose publisher was answered), and their ids would be given again. herald records in the
  // file whether it stopped cleanly and which boot of the system it ran in; the "power loss" here
  // is a kill -9 and then that boot changed behind its back, as a reboot would.
  test('a start after a power loss takes a new epoch (a cursor from before gets a gap, ids go on); a kill -9 alone or a clean stop before a reboot keeps it', async () => {
    const data = freshDataDir();
    const db = path.join(data, 'herald.db');
    const sql = (q) => {
      const r = spawnSync('sqlite3', [db, q], { encoding: 'utf8', timeout: 10000 });
      assert.equal(r.status, 0, `sqlite3 ${q}: ${r.stderr || r.error}`);
      return r.stdout.trim();
    };
    const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const killed = async (h) => { h.proc.kill('SIGKILL'); await h.exited; };

    let h = await startHerald(['--data', data]);
    let epoch;
    try {
      for (let i = 1; i <= 3; i++) assert.equal((await publish(h.url, 'p', { n: i })).id, i);
      epoch = (await info(h.url, 'p')).epoch;
    } catch (e) { await killed(h); throw e; }
    await killed(h);
    assert.equal(sql("SELECT value FROM meta WHERE key = 'clean'"), '0', 'a running herald marks the file not closed cleanly');
    assert.equal(sql("SELECT value FROM meta WHERE key = 'boot'"), boot);

    // a kill -9 alone: the OS kept every commit, the epoch stays
    h = await startHerald(['--data', data]);
    try {
      assert.equal((await info(h.url, 'p')).epoch, epoch, 'the epoch survives kill -9');
    } catch (e) { await killed(h); throw e; }
    await killed(h);

    // a kill -9, then the system booted: a new epoch
    sql("UPDATE meta SET value = 'an earlier boot' WHERE key = 'boot'");
    h = await startHerald(['--data', data]);
    let renewed;
    try {
      const inf = await info(h.url, 'p');
      renewed = inf.epoch;
      assert.notEqual(renewed, epoch, 'a new epoch after a power loss');
      assert.equal(inf.last_id, 3, 'history is kept');
      const r = await pollAll(h.url, 'poll', 'p', `${epoch}:3`, { epoch: renewed });
      assert.deepEqual(r.gaps.map((g) => g.gap), ['epoch'], 'a cursor from before is told of a gap');
      assert.equal((await publish(h.url, 'p', { n: 4 })).id, 4, 'ids go on');
      assert.match(h.output(), /the system restarted while herald was running/);
    } finally { await h.stop(); }
    assert.equal(sql("SELECT value FROM meta WHERE key = 'clean'"), '1', 'a clean stop marks the file');

    // a clean stop, then the system booted: nothing was undone, the epoch stays
    sql("UPDATE meta SET value = 'an earlier boot' WHERE key = 'boot'");
    h = await startHerald(['--data', data]);
    try {
      assert.equal((await info(h.url, 'p')).epoch, renewed, 'a clean stop keeps the epoch across a reboot');
    } finally { await h.stop(); }
    assert.equal(sanitizerReport(h), null, `sanitizer report:\n${sanitizerReport(h)}`);
  });
});
