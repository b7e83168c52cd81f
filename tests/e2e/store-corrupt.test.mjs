// A --data directory whose herald.db is not a usable herald database: random bytes, a copy cut
// short, a database whose herald tables have other columns. herald must stop at start (exit
// status not 0) with one line that names the file and SQLite's own error for the call that
// failed, and must leave the file exactly as it was (no WAL switch, no tables added).
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startHerald, freshDataDir, heraldBin, repoRoot } from './lib/herald.mjs';
import { publish } from './lib/channels-util.mjs';

const sha = (file) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

// Run herald on dir until it exits by itself (at most 10 s). Returns { code, signal, stdout, stderr }.
function runUntilExit(dir) {
  const argv = ['--host', '127.0.0.1', '--port', '0', '--public', path.join(repoRoot, 'public'), '--data', dir];
  const proc = spawn(heraldBin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
    proc.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

// A directory holding herald.db with the given bytes (or made by fill(dbPath)).
function dataDirWith(bytesOrFill) {
  const dir = freshDataDir();
  const db = path.join(dir, 'herald.db');
  if (typeof bytesOrFill === 'function') bytesOrFill(db); else fs.writeFileSync(db, bytesOrFill);
  return { dir, db };
}

function sqlite(db, sql) {
  const r = spawnSync('sqlite3', [db, sql], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 0, `sqlite3 ${sql}: ${r.stderr || r.error}`);
}

// Start herald on the bad file and check how it refuses it.
async function expectRefused({ dir, db }, sqliteError) {
  const before = sha(db);
  const r = await runUntilExit(dir);
  assert.equal(r.signal, null, `herald did not exit by itself:\n${r.stdout}${r.stderr}`);
  assert.notEqual(r.code, 0, `herald exited 0:\n${r.stdout}${r.stderr}`);
  assert.doesNotMatch(r.stdout, /listening on/, 'herald must not start serving');
  const lines = r.stderr.split('\n').filter((l) => l.includes(db));
  assert.equal(lines.length, 1, `one line names ${db}; stderr:\n${r.stderr}`);
  assert.match(lines[0], sqliteError, `SQLite's error in: ${lines[0]}`);
  assert.doesNotMatch(r.stderr, /not an error/, 'the message of the failed call, not of the handle after it');
  assert.doesNotMatch(r.stderr, /ERROR: (Address|Leak)Sanitizer|runtime error:/, r.stderr);
  assert.equal(sha(db), before, 'the file is left exactly as it was');
  // herald.lock is herald's own (one herald per data directory), not SQLite's
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f !== 'herald.lock').sort(), ['herald.db'], 'no -wal or -shm file is created beside it');
}

describe('a herald.db that is not a usable herald database', () => {
  let good; // the bytes of a real herald.db with messages in it
  before(async () => {
    const dir = freshDataDir();
    const h = await startHerald(['--data', dir]);
    for (let i = 0; i < 60; i++) await publish(h.url, `c${i % 3}`, 'x'.repeat(2000) + i);
    const { code } = await h.stop();
    assert.equal(code, 0);
    good = fs.readFileSync(path.join(dir, 'herald.db'));
    assert.ok(good.length >= 30 * 4096, `a database of many pages (${good.length} bytes)`);
  });

  test('random bytes: "file is not a database"', async () => {
    await expectRefused(dataDirWith(crypto.randomBytes(64 * 1024)), /file is not a database/);
  });

  test('a text file: "file is not a database"', async () => {
    await expectRefused(dataDirWith('DB_URL=postgres://localhost/app\n'.repeat(200)), /file is not a database/);
  });

  test('a copy cut short inside its first page: "database disk image is malformed"', async () => {
    await expectRefused(dataDirWith(good.subarray(0, 1000)), /database disk image is malformed/);
  });

  test('a copy cut in half at a page boundary: "database disk image is malformed"', async () => {
    const half = Math.floor(good.length / 2 / 4096) * 4096;
    await expectRefused(dataDirWith(good.subarray(0, half)), /database disk image is malformed/);
  });

  test('a database whose meta table has other columns: names the table and the missing column', async () => {
    await expectRefused(dataDirWith((db) => sqlite(db, 'CREATE TABLE meta(a, b); INSERT INTO meta VALUES (1, 2);')),
      /not a herald database: table meta: no such column: key/);
  });

  test('a database whose messages table has other columns: names the table and the missing column', async () => {
    await expectRefused(dataDirWith((db) => sqlite(db,
      "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('epoch', 'abc');" +
      'CREATE TABLE messages(channel TEXT, body BLOB);')),
    /not a herald database: table messages: no such column: (id|time_ms|data)/);
  });

  test('an empty herald.db is a new database: herald starts and uses it', async () => {
    const { dir, db } = dataDirWith(Buffer.alloc(0));
    const h = await startHerald(['--data', dir]);
    await publish(h.url, 'fresh', { ok: true });
    const { code } = await h.stop();
    assert.equal(code, 0);
    assert.ok(fs.statSync(db).size > 0);
  });
});
