// Configuration (README "Operations / Configuration", src/server/config.c) against the real
// binary: every option as a flag, a HERALD_* variable and a key of a --config JSON file, with
// flag > env > file > default per option, seen in --print-config and in what herald does (the
// port it listens on, the request-head limit it enforces); every refusal, one line on stderr
// naming the variable or FILE:LINE:COLUMN and exit 2; --print-config's output read back gives
// the same configuration, secrets never printed.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { startHerald, heraldBin, repoRoot, httpExchange, sanitizerReport, freePort } from './lib/herald.mjs';

const T = { timeout: 60000 };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-config-'));
const servers = [];
after(async () => {
  for (const h of servers) {
    if (h.proc.exitCode === null && h.proc.signalCode === null) {
      const r = await h.stop();
      assert.deepEqual(r, { code: 0, signal: null }, h.output().slice(-2000));
    }
    assert.equal(sanitizerReport(h), null, `sanitizer report:\n${sanitizerReport(h)}`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

// The runner's own HERALD_* variables (if any) stay out: each test says what herald gets.
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HERALD_')));

let nfile = 0;
function file(content, name = `c${nfile++}.json`) {
  const p = path.join(dir, name);
  fs.writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return p;
}

function run(args, env = {}) {
  return spawnSync(heraldBin, args, { encoding: 'utf8', timeout: 10000, cwd: dir, env: { ...baseEnv, ...env } });
}

// The effective configuration herald prints (exit 0; on stderr one line: where values came from).
function printed(args, env = {}) {
  const r = run([...args, '--print-config'], env);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /^herald: [^\n]*\n$/);
  return JSON.parse(r.stdout);
}

// Exit 2 and exactly this line on stderr, nothing on stdout.
function refused(args, env, line) {
  const r = run(args, env);
  assert.equal(r.stderr, `herald: ${line}\n`);
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
}


async function herald(args, opts) {
  const h = await startHerald(['--store', 'memory', '--workers', '1', ...args], opts);
  servers.push(h);
  return h;
}

async function stop(h) {
  const r = await h.stop();
  assert.deepEqual(r, { code: 0, signal: null }, h.output().slice(-2000));
  assert.equal(sanitizerReport(h), null, `sanitizer report:\n${sanitizerReport(h)}`);
}

// A request whose head is 6000 bytes: over --max-head 4096, under 8192.
const bigHead = `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ${'a'.repeat(6000)}\r\nConnection: close\r\n\r\n`;

describe('precedence: flag > env > file > default', () => {
  test('--print-config shows, per option, the highest source that gives it', T, () => {
    const f = file({
      port: 4001, 'max-head': 4096, store: 'memory', 'lp-timeout': 2.5, quiet: true,
      'channel-rule': ['a:* all none', 'b:* token none'], 'channel-policy': 'x:*=skip',
    });
    const c = printed(['--config', f, '--port', '4003'], {
      HERALD_PORT: '4002', HERALD_MAX_HEAD: '8192', HERALD_QUIET: '0',
      HERALD_CHANNEL_RULE: 'c:* all all\nd:* none none', HERALD_HISTORY_AGE: '',
    });
    assert.equal(c.port, 4003);                 // flag over env and file
    assert.equal(c['max-head'], 8192);          // env over file
    assert.equal(c.quiet, false);               // env 0 over the file's true
    assert.equal(c.store, 'memory');            // file over default
    assert.equal(c['lp-timeout'], 2.5);         // file, seconds with decimals
    assert.equal(c.history, 10000);             // default
    assert.equal(c['history-age'], 0);          // an empty variable is unset
    assert.deepEqual(c['channel-rule'], ['c:* all all', 'd:* none none']); // env's list, whole
    assert.deepEqual(c['channel-policy'], ['x:*=skip']);
    // and stderr says which source gave what
    const r = run(['--config', f, '--port', '4003', '--print-config'], { HERALD_PORT: '4002', HERALD_MAX_HEAD: '8192' });
    assert.equal(r.stderr, `herald: port from the command line; max-head from the environment; store, channel-policy, lp-timeout, channel-rule, quiet from ${f}; the rest: defaults\n`);
    assert.equal(run(['--print-config']).stderr, 'herald: every option at its default\n');
    // a channel rule from the environment configures access control: the derived defaults follow
    assert.equal(c['publish-rate'], 50);
    assert.equal(c['allowed-origins'], null);

    // without the flag and the variables: the file's; without the file: the defaults
    const fileOnly = printed(['--config', f]);
    assert.equal(fileOnly.port, 4001);
    assert.equal(fileOnly['max-head'], 4096);
    assert.equal(fileOnly.quiet, true);
    assert.deepEqual(fileOnly['channel-rule'], ['a:* all none', 'b:* token none']);
    const none = printed([]);
    assert.equal(none.port, 3000);
    assert.equal(none['max-head'], 16384);
    assert.equal(none.store, 'sqlite');
    assert.equal(none['publish-rate'], 0);
    assert.deepEqual(none['channel-rule'], []);
    // flags' list over the variable's
    assert.deepEqual(printed(['--channel-rule', 'e:* all all'], { HERALD_CHANNEL_RULE: 'c:* all all' })['channel-rule'], ['e:* all all']);
  });

  test('HERALD_CONFIG names the file; --config wins over it', T, () => {
    const a = file({ port: 4101 });
    const b = file({ port: 4102 });
    assert.equal(printed([], { HERALD_CONFIG: a }).port, 4101);
    assert.equal(printed(['--config', b], { HERALD_CONFIG: a }).port, 4102);
  });

  test('the old HERALD_JWT_SECRET and HERALD_PUBLISH_KEY still work, and are never printed', T, () => {
    const secret = 's3cret-'.padEnd(40, 'x');
    const c = printed([], { HERALD_JWT_SECRET: secret, HERALD_PUBLISH_KEY: 'publish-key-0123456789' });
    assert.equal(c['jwt-secret'], '<redacted>');
    assert.equal(c['publish-key'], '<redacted>');
    assert.equal(c['publish-rate'], 50); // secured by them
    const raw = run(['--print-config'], { HERALD_JWT_SECRET: secret, HERALD_PUBLISH_KEY: 'publish-key-0123456789' }).stdout;
    assert.ok(!raw.includes(secret) && !raw.includes('publish-key-0123456789'), raw);
  });

  test('the port herald listens on: file, then env over it, then a flag over both', T, async () => {
    const [a, b] = [await freePort(), await freePort()];
    const f = file({ port: a, 'max-head': 4096 });

    let h = await herald(['--config', f], { port: null });
    assert.equal(h.port, a);
    assert.equal((await httpExchange(h.port, bigHead)).status, 431); // the file's --max-head
    await stop(h);

    h = await herald(['--config', f], { port: null, env: { HERALD_PORT: String(b), HERALD_MAX_HEAD: '8192' } });
    assert.equal(h.port, b);
    assert.equal((await httpExchange(h.port, bigHead)).status, 200); // the variable's: the page
    await stop(h);

    // the helper's --port 0: any free port, not the variable's nor the file's
    h = await herald(['--config', f], { env: { HERALD_PORT: String(b) } });
    assert.notEqual(h.port, a);
    assert.notEqual(h.port, b);
    await stop(h);
  });
});

describe('refusals: one line, exit 2, before listening', () => {
  test('config file: FILE:LINE:COLUMN and the reason', T, () => {
    const cases = [
      ['{\n  "port": 3000,\n  "prot": 3001\n}\n', '3:3: unknown option "prot" (see herald --help)'],
      ['{\n  "port": 70000\n}\n', "2:11: port wants a number from 0 to 65535, not '70000'"],
      ['{"store": "disk"}', "1:11: store wants memory or sqlite, not 'disk'"],
      ['{"lp-timeout": 0}', "1:16: lp-timeout wants seconds > 0, not '0'"],
      ['{"channel-rule": ["news:* all"]}', "1:18: channel-rule wants 'PATTERN READ PUBLISH', each of all|token|owner|none, not 'news:* all'"],
      ['{"port": "3000"}', '1:10: port wants a whole number, not a string'],
      ['{"max-head": 4096.5}', '1:14: max-head wants a whole number, not a number with decimals'],
      ['{"quiet": "yes"}', '1:11: quiet wants true or false, not a string'],
      ['{"store": ["memory"]}', '1:11: store wants a string, not an array'],
      ['{"channel-policy": [1]}', '1:20: channel-policy wants a string or an array of strings, not an array'],
      ['{\n  "port": 3000\n  "store": "memory"\n}\n', `3:9: '}' expected near '"store"'`],
      ['{"port": 3000,\n "port": 3001}', `2:7: duplicate object key near '"port"'`],
      ['{"port": 3000', "1:13: '}' expected near end of file"],
      ['[3000]', 'wants an object of options, {"port": 3000, ...}, not an array'],
      ['{"config": "other.json"}', '1:2: unknown option "config": not in a file'],
      ['{"print-config": true}', '1:2: unknown option "print-config": not in a file'],
      ['{"jwt-secret": "<redacted>"}', '1:16: <redacted> is what --print-config shows in place of jwt-secret: give the secret'],
    ];
    for (const [text, why] of cases) {
      const f = file(text);
      const line = why.startsWith('wants') ? `${f}:1:1: ${why}` : `${f}:${why}`;
      refused(['--config', f], {}, line);
    }
    refused(['--config', path.join(dir, 'missing.json')], {}, `cannot read config file ${path.join(dir, 'missing.json')}: No such file or directory`);
    refused([], { HERALD_CONFIG: dir }, `cannot read config file ${dir}: Is a directory`);
  });

  test('environment: the variable and the reason', T, () => {
    // a variable that names no option: ignored, with a warning that names it (never its value)
    const r = run(['--print-config'], { HERALD_JWT_SECRT: 'x'.repeat(40), HERALD_HELP: '1', HERALD_SERVICE_HOST: '10.0.0.1' });
    assert.equal(r.status, 0, r.stderr);
    for (const name of ['HERALD_JWT_SECRT', 'HERALD_HELP', 'HERALD_SERVICE_HOST']) {
      assert.match(r.stderr, new RegExp(`herald warn: ${name} names no option; ignored \\(see herald --help\\)\n`));
    }
    assert.ok(!r.stderr.includes('x'.repeat(40)), 'the value of a misspelt secret is not printed');
    assert.equal(JSON.parse(r.stdout)['jwt-secret'], null, 'a misspelt variable sets nothing');
    refused([], { HERALD_PORT: 'abc' }, "HERALD_PORT: port wants a number from 0 to 65535, not 'abc'");
    refused([], { HERALD_MAX_MSG_RATE: '-1' }, "HERALD_MAX_MSG_RATE: max-msg-rate wants messages a second up to 1000000 (0: no limit), not '-1'");
    refused([], { HERALD_QUIET: 'yes' }, "HERALD_QUIET wants 1, 0, true or false, not 'yes'");
    refused([], { HERALD_CHANNEL_POLICY: 'a:*=skip\nb:*=slow' }, "HERALD_CHANNEL_POLICY: channel-policy wants PATTERN=disconnect|skip|coalesce, not 'b:*=slow'");
    refused([], { HERALD_CORS_ORIGIN: '*', HERALD_ALLOWED_ORIGINS: '*' }, 'the environment: --cors-origin is the old name of --allowed-origins: give one');
  });

  test('a refusal of a lower source is not hidden by a higher one giving the same option', T, () => {
    // every source is checked whole: a bad file value stops herald even with the flag given
    const f = file('{"port": 70000}');
    refused(['--config', f, '--port', '3000'], {}, `${f}:1:10: port wants a number from 0 to 65535, not '70000'`);
  });
});

describe('--print-config', () => {
  test('its output given back with --config is the same configuration (secrets excepted)', T, () => {
    const secret = 'jwt-secret-'.padEnd(48, 'z');
    const key = 'publish-key-0123456789';
    const f = file({ 'history-age': 90, 'channel-policy': ['t:*=coalesce', 'odd=name=skip'], 'max-memory': 0 });
    const args = ['--config', f, '--app', 'conformance-eio', '--lp-timeout', '0.25', '--quiet',
      '--channel-rule', 'news:* all none', '--allowed-origins', 'https://a.example,http://localhost:8080',
      '--jwt-secret', secret];
    const env = { HERALD_PUBLISH_KEY: key, HERALD_MAX_HEAD: '2048' };
    const r = run([...args, '--print-config'], env);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!r.stdout.includes(secret) && !r.stdout.includes(key), r.stdout);
    const first = JSON.parse(r.stdout);
    assert.equal(first['jwt-secret'], '<redacted>');
    assert.equal(first['max-head'], 2048);
    assert.equal(first['lp-timeout'], 0.25);
    assert.equal(first['max-memory'], 0);
    assert.equal(first.app, 'conformance-eio');
    assert.equal(first['cors-origin'], undefined); // the old name is not printed
    // every option of --help but the four that are not file keys is in it
    const help = run(['--help']).stdout;
    const flags = [...help.matchAll(/^ {2}(?:-\w, )?--([a-z0-9-]+)/gm)].map((m) => m[1])
      .filter((n) => !['help', 'version', 'config', 'print-config', 'cors-origin'].includes(n));
    assert.deepEqual(Object.keys(first).sort(), flags.sort());

    // given back as it is, the redacted secrets are refused
    const asIs = file(r.stdout);
    const line = r.stdout.split('\n').findIndex((l) => l.includes('"jwt-secret"')) + 1;
    refused(['--config', asIs], {}, `${asIs}:${line}:17: <redacted> is what --print-config shows in place of jwt-secret: give the secret`);

    // without them (given by the environment instead), the same configuration, printed alike
    const back = { ...first };
    delete back['jwt-secret'];
    delete back['publish-key'];
    const again = run(['--config', file(back), '--print-config'], { HERALD_JWT_SECRET: secret, HERALD_PUBLISH_KEY: key });
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.stdout, r.stdout);
  });

  test('the example herald.json of the README is a valid configuration', T, () => {
    const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const part = readme.slice(readme.indexOf('### Configuration'));
    const m = /```json\n([\s\S]*?)```/.exec(part);
    assert.ok(m, 'no json block under "### Configuration"');
    const example = JSON.parse(m[1]);
    const c = printed(['--config', file(m[1], 'herald.json')]);
    for (const [k, v] of Object.entries(example)) {
      if (k === 'publish-key' || k === 'jwt-secret') assert.equal(c[k], '<redacted>');
      else assert.deepEqual(c[k], v, k);
    }
  });
});

describe('--help', () => {
  test('says where options come from, once, and groups them under headings', T, () => {
    const r = run(['--help']);
    assert.equal(r.status, 0);
    const text = r.stdout;
    assert.equal(text.split('HERALD_MAX_MSG_RATE').length - 1, 1);
    assert.match(text, /\na flag wins over a variable, a variable over the file, the file over the default\.\n/);
    const headings = [...text.matchAll(/^(\S[^\n]*):$/gm)].map((m) => m[1]);
    assert.deepEqual(headings.map((h) => h.split(' ')[0]), ['Server', 'Socket.IO', 'Channels', 'Limits', 'Access', 'Stopping', 'Operations', 'Socket.IO', 'Configuration']);
    // --config and --print-config under Configuration, with what they do
    const conf = text.slice(text.indexOf('\nConfiguration:'));
    assert.match(conf, /--config FILE +read options from this JSON file/);
    assert.match(conf, /--print-config +print the effective configuration/);
  });
});
