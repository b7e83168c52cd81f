// Static files from --public: index, Content-Type, validators and conditional requests, HEAD,
// directory redirects, path traversal and symlinks, and a 50 MB file that must arrive intact
// without blocking other clients. Everything is served from a temporary --public directory.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startHerald, rawConnect, waitFor, sleep, rssKb } from './lib/herald.mjs';
import { parseSeq, exchange, assertJsonError } from './lib/http-util.mjs';

const INDEX = '<!doctype html><title>static</title><p>root index</p>\n';
const SUB_INDEX = '<!doctype html><p>sub index</p>\n';
const SECRET = 'TOP-SECRET-outside-the-public-root\n';
const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000' +
  '1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082', 'hex');
const BIG_SIZE = 50 * 1024 * 1024;
const FIXED_MTIME = new Date('2020-01-02T03:04:05Z');

const files = {
  'index.html': INDEX,
  'style.css': 'body { color: red }\n',
  'app.js': 'console.log("hi");\n',
  'data.json': '{"a":1}\n',
  'img.png': PNG,
  'pic.svg': '<svg xmlns="http://www.w3.org/2000/svg"/>\n',
  'blob.xyz': 'unknown extension\n',
  'noext': 'no extension\n',
  'with space.txt': 'spaced\n',
  'empty.txt': '',
  'fixed.txt': 'fixed mtime\n',
  'sub/index.html': SUB_INDEX,
  'sub/page.html': '<p>page</p>\n',
  // dotfiles: never served (express.static's default, dotfiles: 'ignore')
  '.env': 'DB_PASSWORD=hunter2\n',
  '.git/config': '[remote "origin"]\n\turl = git@example.com:secret.git\n',
  '.git/HEAD': 'ref: refs/heads/main\n',
  'sub/.htpasswd': 'admin:$apr1$secret\n',
  '.private/index.html': '<p>private index</p>\n',
  '.private/notes.txt': 'private notes\n',
  '.well-known/security.txt': 'Contact: mailto:security@example.com\n',
};
const DOTFILES = ['.env', '.git/config', '.git/HEAD', 'sub/.htpasswd', '.private/index.html', '.private/notes.txt',
  '.well-known/security.txt'];

let pub, outside, big, bigSha, h;

const get = (p, extra = '') => `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`;
const head = (p, extra = '') => `HEAD ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`;
const content = (name) => Buffer.from(files[name]);

async function GET(p, extra = '') {
  const { responses } = await exchange(h.port, get(p, extra));
  assert.ok(responses[0], `no response to GET ${p}`);
  return responses[0];
}

before(async () => {
  pub = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-static-'));
  outside = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-outside-'));
  for (const [name, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(pub, name)), { recursive: true });
    fs.writeFileSync(path.join(pub, name), data);
  }
  fs.utimesSync(path.join(pub, 'fixed.txt'), FIXED_MTIME, FIXED_MTIME);
  fs.writeFileSync(path.join(outside, 'secret.txt'), SECRET);
  fs.symlinkSync('index.html', path.join(pub, 'link-in.html'));
  fs.symlinkSync('sub/page.html', path.join(pub, 'link-page.html'));
  fs.symlinkSync('/etc/passwd', path.join(pub, 'link-out'));
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(pub, 'link-secret.txt'));
  fs.symlinkSync(outside, path.join(pub, 'link-dir-out'));
  // 50 MB of pseudo-random bytes (a repeating pattern would hide offset errors)
  big = Buffer.allocUnsafe(BIG_SIZE);
  const block = crypto.randomBytes(1 << 20);
  for (let i = 0; i < 50; i++) {
    block.copy(big, i << 20);
    big.writeUInt32BE(i, i << 20); // make every MiB distinct
  }
  fs.writeFileSync(path.join(pub, 'big.bin'), big);
  bigSha = crypto.createHash('sha256').update(big).digest('hex');
  h = await startHerald(['--public', pub]);
});

after(async () => {
  if (h) await h.stop();
  for (const d of [pub, outside]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
describe('serving files', () => {
  test('GET / serves index.html', async () => {
    const r = await GET('/');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(r.body.toString(), INDEX);
    assert.equal(Number(r.headers['content-length']), Buffer.byteLength(INDEX));
  });

  test('GET /sub/ serves sub/index.html', async () => {
    const r = await GET('/sub/');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), SUB_INDEX);
  });

  test('query string is ignored for the file lookup', async () => {
    const r = await GET('/index.html?v=123&x=y');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), INDEX);
  });

  test('percent-encoded names are decoded (/with%20space.txt)', async () => {
    const r = await GET('/with%20space.txt');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), files['with space.txt']);
  });

  test('Content-Type by extension', async () => {
    const cases = [
      ['/index.html', /^text\/html; charset=utf-8$/],
      ['/style.css', /^text\/css(; ?charset=utf-8)?$/],
      ['/app.js', /^text\/javascript(; ?charset=utf-8)?$/],
      ['/data.json', /^application\/json$/],
      ['/img.png', /^image\/png$/],
      ['/pic.svg', /^image\/svg\+xml$/],
      ['/blob.xyz', /^application\/octet-stream$/],
      ['/noext', /^application\/octet-stream$/],
    ];
    for (const [p, re] of cases) {
      const r = await GET(p);
      assert.equal(r.status, 200, `${p} status`);
      assert.match(r.headers['content-type'] || '(none)', re, `${p} Content-Type`);
      assert.ok(r.body.equals(content(p.slice(1))), `${p} body`);
    }
  });

  test('an empty file: 200 with Content-Length 0', async () => {
    const { c, responses } = await exchange(h.port, get('/empty.txt') + get('/index.html'), { count: 2, keep: true });
    try {
      assert.equal(responses[0].status, 200);
      assert.equal(responses[0].headers['content-length'], '0');
      assert.equal(responses[1].status, 200, 'the next pipelined answer follows directly');
      assert.equal(responses[1].body.toString(), INDEX);
    } finally { c.sock.destroy(); }
  });

  test('a missing file -> 404 JSON (also inside a missing directory)', async () => {
    assertJsonError(await GET('/missing.html'), 404, '/missing.html');
    assertJsonError(await GET('/no/such/dir/file.css'), 404, '/no/such/dir/file.css');
    assertJsonError(await GET('/sub/missing.html'), 404, '/sub/missing.html');
  });

  test('a directory without a trailing slash -> 301 with Location adding the slash', async () => {
    const r = await GET('/sub');
    assertJsonError(r, 301, 'GET /sub'); // with its reason phrase: "301 Moved Permanently"
    assert.equal(r.reason, 'Moved Permanently');
    assert.equal(r.headers.location, '/sub/');
    const q = await GET('/sub?a=1');
    assert.equal(q.status, 301);
    assert.equal(q.headers.location, '/sub/?a=1', 'Location keeps the query');
  });

  test('a symlink to a file inside the root is served', async () => {
    const r = await GET('/link-in.html');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), INDEX);
    const r2 = await GET('/link-page.html');
    assert.equal(r2.status, 200);
    assert.equal(r2.body.toString(), files['sub/page.html']);
  });
});

// ---------------------------------------------------------------------------------------------
describe('dotfiles', () => {
  const leaks = (r) => DOTFILES.some((f) => r.body.length > 0 && r.body.toString().includes(files[f].trim()));
  const missing = async () => GET('/no-such-file');

  test('every dotfile, and every file in a dot directory, answers 404 like a missing file', async () => {
    const miss = await missing();
    for (const f of DOTFILES) {
      const r = await GET('/' + f);
      assertJsonError(r, 404, '/' + f);
      assert.ok(!leaks(r), `/${f} leaked its content`);
      assert.equal(r.body.toString(), miss.body.toString(), `/${f}: the same answer as a missing file`);
    }
  });

  test('percent-encoded dots are decoded before the check', async () => {
    for (const p of ['/%2eenv', '/%2Eenv', '/%2egit/config', '/.git%2fconfig', '/sub/%2ehtpasswd', '/sub%2f.htpasswd',
      '/%2e%77ell-known/security.txt']) {
      const r = await GET(p);
      assertJsonError(r, 404, p);
      assert.ok(!leaks(r), `${p} leaked`);
    }
  });

  test('a dot directory: its index, its slash form and the bare name all 404 (no redirect)', async () => {
    for (const p of ['/.private/', '/.private', '/.git', '/.git/', '/.private/?x=1']) assertJsonError(await GET(p), 404, p);
  });

  test('HEAD of a dotfile -> 404 too', async () => {
    const { responses } = await exchange(h.port, head('/.env'), { methods: ['HEAD'] });
    assert.equal(responses[0].status, 404);
  });

  test('names that only contain dots elsewhere are still served', async () => {
    const r = await GET('/style.css?v=.env');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), files['style.css']);
  });
});

describe('validators, conditional requests, HEAD', () => {
  let etag, lastModified;
  before(async () => {
    const r = await GET('/style.css');
    etag = r.headers.etag;
    lastModified = r.headers['last-modified'];
  });

  test('ETag and Last-Modified are sent', async () => {
    assert.match(etag || '', /^(W\/)?"[^"]+"$/, `ETag ${etag}`);
    assert.match(lastModified || '', /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/, `Last-Modified ${lastModified}`);
    const mtime = Math.floor(fs.statSync(path.join(pub, 'style.css')).mtimeMs / 1000);
    assert.equal(new Date(lastModified).getTime() / 1000, mtime, 'Last-Modified is the file mtime');
    const r = await GET('/fixed.txt');
    assert.equal(r.headers['last-modified'], 'Thu, 02 Jan 2020 03:04:05 GMT');
    assert.equal((await GET('/style.css')).headers.etag, etag, 'ETag is stable');
  });

  // A 304 must carry no body: pipeline the conditional request with a GET of another file and
  // check that the second answer starts right after the 304's head.
  async function conditional(extra, method = 'GET') {
    const req = (method === 'HEAD' ? head : get)('/style.css', extra) + get('/data.json');
    const { responses, rest } = await exchange(h.port, req, { count: 2, methods: [method, 'GET'] });
    assert.equal(responses.length, 2, 'two answers');
    assert.equal(responses[1].status, 200, 'the answer after the conditional one');
    assert.equal(responses[1].body.toString(), files['data.json'], 'the answer after the conditional one: body');
    assert.equal(rest.length, 0, 'stray bytes');
    return responses[0];
  }

  function assert304(r, what) {
    assert.equal(r.status, 304, `${what}: status\n${r.rawHead}`);
    assert.equal(r.body.length, 0);
    assert.equal(r.headers.etag, etag, `${what}: 304 repeats the ETag`);
  }

  test('If-None-Match with the ETag -> 304 without a body', async () => {
    assert304(await conditional(`If-None-Match: ${etag}\r\n`), 'exact ETag');
  });

  test('If-None-Match with a list containing the ETag -> 304', async () => {
    assert304(await conditional(`If-None-Match: "nope", ${etag}, "other"\r\n`), 'list');
    assert304(await conditional(`If-None-Match: "nope",${etag}\r\n`), 'list without spaces');
  });

  test('If-None-Match: * -> 304', async () => {
    assert304(await conditional('If-None-Match: *\r\n'), '*');
  });

  test('If-None-Match with the W/ (weak) form of the ETag -> 304', async () => {
    const weak = etag.startsWith('W/') ? etag : `W/${etag}`;
    assert304(await conditional(`If-None-Match: ${weak}\r\n`), 'W/ ETag');
    assert304(await conditional(`If-None-Match: "x", ${weak}\r\n`), 'W/ ETag in a list');
  });

  test('If-None-Match that does not match -> 200 with the body', async () => {
    const r = await conditional('If-None-Match: "does-not-match"\r\n');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), files['style.css']);
    const r2 = await conditional(`If-None-Match: ${etag.replace(/"$/, 'x"')}\r\n`);
    assert.equal(r2.status, 200, 'an ETag with a matching prefix is not a match');
  });

  test('If-Modified-Since >= mtime -> 304; older -> 200', async () => {
    assert304(await conditional(`If-Modified-Since: ${lastModified}\r\n`), 'IMS = Last-Modified');
    const later = new Date(new Date(lastModified).getTime() + 3600e3).toUTCString();
    assert304(await conditional(`If-Modified-Since: ${later}\r\n`), 'IMS one hour later');
    const earlier = new Date(new Date(lastModified).getTime() - 86400e3).toUTCString();
    const r = await conditional(`If-Modified-Since: ${earlier}\r\n`);
    assert.equal(r.status, 200, 'IMS a day before mtime');
    assert.equal(r.body.toString(), files['style.css']);
    const g = await conditional('If-Modified-Since: not a date\r\n');
    assert.equal(g.status, 200, 'an invalid If-Modified-Since is ignored');
  });

  test('If-None-Match takes precedence over If-Modified-Since', async () => {
    const later = new Date(new Date(lastModified).getTime() + 3600e3).toUTCString();
    const r = await conditional(`If-None-Match: "nope"\r\nIf-Modified-Since: ${later}\r\n`);
    assert.equal(r.status, 200, 'a non-matching If-None-Match wins over a satisfied If-Modified-Since');
  });

  test('a 304 does not claim a wrong Content-Length', async () => {
    const r = await conditional(`If-None-Match: ${etag}\r\n`);
    assert.equal(r.status, 304);
    const cl = r.headers['content-length'];
    // RFC 9110 §8.6: a 304 may only carry the length the 200 would have had.
    assert.ok(cl === undefined || Number(cl) === Buffer.byteLength(files['style.css']),
      `304 has Content-Length: ${cl}, but the representation is ${Buffer.byteLength(files['style.css'])} bytes`);
  });

  test('HEAD: the same headers as GET (incl. Content-Length), no body', async () => {
    for (const p of ['/style.css', '/img.png', '/', '/big.bin']) {
      const { responses, rest } = await exchange(h.port, head(p) + get('/data.json'), { count: 2, methods: ['HEAD', 'GET'] });
      const hd = responses[0];
      assert.equal(hd.status, 200, `HEAD ${p}`);
      assert.equal(rest.length, 0, `HEAD ${p}: stray bytes (a body?)`);
      assert.equal(responses[1].body.toString(), files['data.json'], `HEAD ${p}: next answer follows the head directly`);
      const g = p === '/big.bin' ? null : await GET(p);
      const size = p === '/big.bin' ? BIG_SIZE : g.body.length;
      assert.equal(Number(hd.headers['content-length']), size, `HEAD ${p}: Content-Length`);
      if (g) {
        for (const k of ['content-type', 'content-length', 'etag', 'last-modified'])
          assert.equal(hd.headers[k], g.headers[k], `HEAD ${p}: ${k} same as GET`);
      }
    }
  });

  test('HEAD with a matching If-None-Match -> 304', async () => {
    assert304(await conditional(`If-None-Match: ${etag}\r\n`, 'HEAD'), 'HEAD + INM');
  });

  test('the ETag changes when the file changes', async () => {
    const f = path.join(pub, 'changing.txt');
    fs.writeFileSync(f, 'version one\n');
    fs.utimesSync(f, new Date('2021-01-01T00:00:00Z'), new Date('2021-01-01T00:00:00Z'));
    const r1 = await GET('/changing.txt');
    fs.writeFileSync(f, 'version two, longer\n');
    const r2 = await GET('/changing.txt');
    assert.equal(r2.body.toString(), 'version two, longer\n');
    assert.notEqual(r2.headers.etag, r1.headers.etag, 'new content, new ETag');
    const r3 = await GET('/changing.txt', `If-None-Match: ${r1.headers.etag}\r\n`);
    assert.equal(r3.status, 200, 'the old ETag no longer matches');
    assert.equal(r3.body.toString(), 'version two, longer\n');
  });
});

// ---------------------------------------------------------------------------------------------
describe('path traversal and symlinks', () => {
  const leaked = (r) => /root:.*:0:0:/.test(r.body.toString('latin1')) || r.body.toString('latin1').includes('TOP-SECRET');

  for (const p of ['/../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/%2E%2E/x', '/a/../../x', '/..%2f..%2fetc/passwd',
    '/../../../../../../etc/passwd', '/sub/../../etc/passwd', '/%2e%2e%2f%2e%2e%2fetc%2fpasswd', '/.%2e/.%2e/etc/passwd',
    '/index.html%00', '/index.html%00.png', '/%00', '/sub/%2e%2e/%2e%2e/' + path.basename(outside) + '/secret.txt']) {
    test(`traversal ${p} -> 400, never the file`, async () => {
      const { responses } = await exchange(h.port, get(p));
      assert.ok(responses[0], `no answer to ${p}`);
      assert.ok(!leaked(responses[0]), `${p} leaked a file outside the root`);
      assertJsonError(responses[0], 400, p);
    });
  }

  test('other traversal spellings are refused (4xx) and never leak', async () => {
    for (const p of ['/..\\..\\etc\\passwd', '/%5c..%5c..%5cetc%5cpasswd', '/%252e%252e/etc/passwd', '//etc/passwd',
      '/./../etc/passwd', '/' + path.relative(pub, '/etc/passwd')]) {
      const { responses, closed } = await exchange(h.port, get(p));
      const r = responses[0];
      assert.ok(r || closed, `no answer to ${p}`);
      if (!r) continue;
      assert.ok(!leaked(r), `${p} leaked a file outside the root`);
      assert.ok(r.status >= 400 && r.status < 500, `${p}: status ${r.status}`);
    }
  });

  test('absolute-form target cannot escape', async () => {
    const { responses } = await exchange(h.port, 'GET http://127.0.0.1/../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const r = responses[0];
    assert.ok(r, 'no answer');
    assert.ok(!leaked(r));
    assert.ok(r.status >= 400 && r.status < 500, `status ${r.status}`);
  });

  test('a symlink to /etc/passwd -> 403', async () => {
    const r = await GET('/link-out');
    assert.ok(!leaked(r), 'leaked /etc/passwd');
    assertJsonError(r, 403, '/link-out');
  });

  test('a symlink to a file outside the root -> 403', async () => {
    const r = await GET('/link-secret.txt');
    assert.ok(!leaked(r), 'leaked the outside file');
    assertJsonError(r, 403, '/link-secret.txt');
  });

  test('a symlink to a directory outside the root -> 403 (for the directory and files in it)', async () => {
    for (const p of ['/link-dir-out/secret.txt', '/link-dir-out']) {
      const r = await GET(p);
      assert.ok(!leaked(r), `${p} leaked the outside file`);
      assertJsonError(r, 403, p);
    }
  });

  // Through a symlink to an outside directory, 403 vs 404 must not reveal which files exist
  // out there: every path through it is refused the same way.
  test('a symlinked outside directory is refused whatever the file (no existence oracle)', async () => {
    for (const p of ['/link-dir-out/', '/link-dir-out/no-such-file.txt', '/link-dir-out/index.html']) {
      const r = await GET(p);
      assert.ok(!leaked(r), `${p} leaked the outside file`);
      assertJsonError(r, 403, p);
    }
  });

  test('HEAD of an outside symlink is refused too', async () => {
    const { responses } = await exchange(h.port, head('/link-out'), { methods: ['HEAD'] });
    assert.equal(responses[0].status, 403);
  });
});

// ---------------------------------------------------------------------------------------------
describe('large file (50 MB)', () => {
  function download(pathname) {
    return new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: h.port, path: pathname, agent: false }, (res) => {
        const hash = crypto.createHash('sha256');
        let n = 0;
        res.on('data', (d) => { hash.update(d); n += d.length; });
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, n, sha: hash.digest('hex') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.setTimeout(30000, () => req.destroy(new Error('download timed out')));
    });
  }

  test('downloads intact (sha256)', async () => {
    const r = await download('/big.bin');
    assert.equal(r.status, 200);
    assert.equal(Number(r.headers['content-length']), BIG_SIZE);
    assert.equal(r.headers['content-type'], 'application/octet-stream');
    assert.equal(r.n, BIG_SIZE, 'bytes received');
    assert.equal(r.sha, bigSha, 'sha256 of the download');
  });

  test('a slow / paused reader does not block other clients, and still gets the file intact', async () => {
    const rss0 = rssKb(h.proc.pid);
    const sock = net.connect(h.port, '127.0.0.1');
    await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
    let headBuf = Buffer.alloc(0), headDone = false, n = 0, ended = false;
    const hash = crypto.createHash('sha256');
    const done = new Promise((resolve, reject) => {
      sock.on('data', (d) => {
        if (!headDone) {
          headBuf = Buffer.concat([headBuf, d]);
          const e = headBuf.indexOf('\r\n\r\n');
          if (e < 0) return;
          headDone = true;
          const headText = headBuf.subarray(0, e).toString('latin1');
          if (!/^HTTP\/1\.1 200 /.test(headText)) { reject(new Error('bad head: ' + headText)); return; }
          d = headBuf.subarray(e + 4);
        }
        hash.update(d);
        n += d.length;
        if (n >= BIG_SIZE) resolve();
      });
      sock.on('end', () => { ended = true; if (n < BIG_SIZE) reject(new Error(`connection ended after ${n} of ${BIG_SIZE} body bytes`)); });
      sock.on('error', reject);
    });
    try {
      sock.write(get('/big.bin'));
      // read a little, then stop reading
      await new Promise((resolve) => { const t = setInterval(() => { if (n >= 1 << 20) { clearInterval(t); resolve(); } }, 5); });
      sock.pause();
      await sleep(300);
      const nPaused = n;

      // other clients: plain requests answered promptly
      for (let i = 0; i < 20; i++) {
        const t0 = Date.now();
        const { responses } = await exchange(h.port, get(i % 2 ? '/' : '/style.css'), { ms: 3000 });
        const dt = Date.now() - t0;
        assert.equal(responses[0].status, 200);
        assert.ok(dt < 2000, `request ${i} took ${dt} ms while a download was paused`);
      }
      // another full download completes while the first is paused
      const t0 = Date.now();
      const other = await download('/big.bin');
      assert.equal(other.sha, bigSha, 'concurrent download intact');
      assert.ok(Date.now() - t0 < 20000, 'concurrent download took too long');
      await sleep(100);
      assert.ok(n - nPaused < 10 * 1024 * 1024, 'the paused reader kept receiving');

      // the server must not buffer the whole file for a reader that does not read
      const rss1 = rssKb(h.proc.pid);
      assert.ok(rss1 - rss0 < 40 * 1024, `herald RSS grew by ${rss1 - rss0} kB while a 50 MB download was paused`);

      // now read slowly: bursts with pauses
      sock.resume();
      let lastPause = n;
      const slow = setInterval(() => {
        if (n - lastPause > 8 * 1024 * 1024) { lastPause = n; sock.pause(); setTimeout(() => sock.resume(), 100); }
      }, 10);
      try { await done; } finally { clearInterval(slow); }
      assert.equal(n, BIG_SIZE, 'body bytes');
      assert.equal(hash.digest('hex'), bigSha, 'sha256 of the slowly read download');
      assert.ok(!ended || n === BIG_SIZE);
    } finally { sock.destroy(); }
  });

  test('the server still answers after the large downloads', async () => {
    const r = await GET('/');
    assert.equal(r.status, 200);
    assert.equal(h.proc.exitCode, null);
  });
});
