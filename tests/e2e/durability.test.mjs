// The SQLite store (the default): history, ids and the epoch survive a restart, and a publish
// that was acknowledged survives kill -9 in the middle of a burst.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald, freshDataDir } from './lib/herald.mjs';
import { makeAgent, request, publish, pollAll, info, JSON_TYPE } from './lib/channels-util.mjs';

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

  test('kill -9 in a publish burst: every acknowledged message is there after a restart', async () => {
    const data = freshDataDir();
    let h = await startHerald(['--data', data]);
    const acked = new Map(); // id -> value
    const agent = makeAgent(32);
    let killed = false;
    const burst = async (k) => {
      for (let i = 0; !killed; i++) {
        const value = JSON.stringify({ writer: k, i });
        try {
          const res = await request(h.url, 'POST', '/pub/burst', { body: value, headers: JSON_TYPE, agent, timeoutMs: 5000 });
          if (res.status === 200) acked.set(res.json.id, value);
        } catch { return; } // the server is gone
      }
    };
    const writers = Array.from({ length: 16 }, (_, k) => burst(k));
    const until = Date.now() + 20000;
    while (acked.size < 2000 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.ok(acked.size >= 2000, `only ${acked.size} publishes acknowledged before the kill`);
    h.proc.kill('SIGKILL');
    killed = true;
    await h.exited;
    await Promise.all(writers);
    agent.destroy();

    h = await startHerald(['--data', data]);
    try {
      const { messages } = await pollAll(h.url, 'poll', 'burst', '0');
      const stored = new Map(messages.map((m) => [m.id, JSON.stringify(m.data)]));
      const lost = [...acked.keys()].filter((id) => stored.get(id) !== acked.get(id));
      assert.deepEqual(lost.slice(0, 10), [], `${lost.length} of ${acked.size} acknowledged messages lost or changed`);
      // what was stored is a run of ids from 1 with no hole
      const ids = messages.map((m) => m.id);
      assert.deepEqual(ids, Array.from({ length: ids.length }, (_, i) => i + 1));
      const next = await publish(h.url, 'burst', { after: true });
      assert.equal(next.id, ids.length + 1, 'the next id follows the stored ones');
    } finally { await h.stop(); }
  });
});
