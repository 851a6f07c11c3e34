// Runs `refseg data ...argv` in-process for the CLI tests, capturing console output and raw stderr
// writes (progress bars).

import type { TestContext } from 'node:test';
import { dataCommand } from '../../src/cli/data.js';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export async function runDataCli(t: TestContext, ...argv: string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  t.mock.method(console, 'log', (...a: unknown[]) => out.push(a.join(' ')));
  t.mock.method(console, 'error', (...a: unknown[]) => err.push(a.join(' ')));
  t.mock.method(process.stderr, 'write', (s: string | Uint8Array) => (err.push(String(s)), true));
  try {
    const code = await dataCommand.run(argv);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    t.mock.restoreAll();
  }
}
