// In-process runs of `refseg` commands for the CLI tests: console output captured, and raw stderr
// writes (progress bars) captured into `err` too, so nothing reaches the test runner's output.

import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { TrainOptions } from '../../src/train/train.js';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export async function runCli(
  t: TestContext,
  cmd: { run(argv: string[]): Promise<number> },
  argv: readonly string[],
): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  t.mock.method(console, 'log', (...a: unknown[]) => out.push(a.join(' ')));
  t.mock.method(console, 'error', (...a: unknown[]) => err.push(a.join(' ')));
  t.mock.method(process.stderr, 'write', (s: string | Uint8Array) => (err.push(String(s)), true));
  try {
    const code = await cmd.run([...argv]);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    t.mock.restoreAll();
  }
}

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface CliProcess {
  child: ChildProcess;
  /** What it has printed so far. */
  out: string;
  err: string;
  /** Its end, once its output is all read. */
  ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `refseg ARGV` as a real child process (signals, kills), killed at the test's end if still running. */
export function spawnCli(
  t: TestContext,
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): CliProcess {
  const child = spawn(process.execPath, [MAIN, ...argv], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')));
  const p: CliProcess = {
    child,
    out: '',
    err: '',
    ended: new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal }))),
  };
  child.stdout!.on('data', (d: Buffer) => (p.out += d));
  child.stderr!.on('data', (d: Buffer) => (p.err += d));
  return p;
}

/** `train()` options for a short, quiet, single-threaded test run; tests override what they test. */
export function testTrainOptions(
  o: Pick<TrainOptions, 'config' | 'data' | 'out'> & Partial<TrainOptions>,
): TrainOptions {
  return {
    sets: [],
    dataset: 'synth-refcoco',
    split: 'train',
    valSplit: 'val',
    steps: 2,
    batch: 2,
    lr: 1e-4,
    visionLrMult: 1,
    weightDecay: 5e-4,
    warmup: 0,
    schedule: 'constant',
    clipNorm: null,
    seed: 0,
    augment: false,
    evalEvery: 0,
    evalLimit: 0,
    checkpointEvery: 100,
    stopAt: 0,
    maxNonFinite: 5,
    threads: 1,
    resume: false,
    quiet: true,
    ...o,
  };
}

/** The step records of a run's `log.jsonl` (validation records left out). */
export function trainLog(dir: string): { step: number; loss: number; grad_norm: number }[] {
  return readFileSync(join(dir, 'log.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { step: number; loss?: number; grad_norm: number })
    .filter((l): l is { step: number; loss: number; grad_norm: number } => l.loss !== undefined);
}
