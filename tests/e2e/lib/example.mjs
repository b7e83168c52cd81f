// Start one of herald's example programs (examples/*.c, built into <build>/examples) the way
// startHerald() starts herald: loopback, an ephemeral port, herald's flags, resolving once it
// prints its "listening on http://HOST:PORT" line.
// The directory is env HERALD_EXAMPLES (set by ctest), else <repo>/build/examples.
import path from 'node:path';
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { repoRoot } from './herald.mjs';

export const examplesDir = process.env.HERALD_EXAMPLES
  ? path.resolve(process.env.HERALD_EXAMPLES) : path.join(repoRoot, 'build/examples');

export function examplePath(name) { return path.join(examplesDir, name); }

// Returns { port, url, proc, exited, output(), stop(signal) } like startHerald().
export async function startExample(name, args = [], { timeoutMs = 15000 } = {}) {
  const bin = examplePath(name);
  if (!existsSync(bin)) throw new Error(`example ${name} not built: ${bin} is missing`);
  const pub = args.includes('--public') ? [] : ['--public', path.join(repoRoot, 'public')];
  const argv = ['--host', '127.0.0.1', '--port', '0', ...pub, ...args];
  const proc = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${out}`)), timeoutMs);
    const onData = (d) => {
      out += d;
      const m = /listening on http:\/\/[^:\s]+:(\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', () => { clearTimeout(timer); reject(new Error(`${name} exited early:\n${out}`)); });
  });
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    proc,
    exited,
    output: () => out,
    async stop(signal = 'SIGTERM', waitMs = 10000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), waitMs);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
}
