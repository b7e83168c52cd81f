// Start one of herald's example programs (examples/*.c, built into <build>/examples) the way
// startHerald() starts herald: loopback, an ephemeral port, herald's flags, resolving once it
// prints its "listening on http://HOST:PORT" line.
// The directory is env E2E_EXAMPLES (set by ctest), else <repo>/build/examples.
import path from 'node:path';
import { existsSync } from 'node:fs';
import { repoRoot, startHerald } from './herald.mjs';

export const examplesDir = process.env.E2E_EXAMPLES
  ? path.resolve(process.env.E2E_EXAMPLES) : path.join(repoRoot, 'build/examples');

export function examplePath(name) { return path.join(examplesDir, name); }

// Returns { port, url, proc, exited, output(), stop(signal) } like startHerald().
export async function startExample(name, args = [], { timeoutMs = 15000 } = {}) {
  const bin = examplePath(name);
  if (!existsSync(bin)) throw new Error(`example ${name} not built: ${bin} is missing`);
  return startHerald(args, { timeoutMs, bin });
}
