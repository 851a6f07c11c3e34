// Shared helpers of the benchmarks: timing statistics, resident-memory readings, running a case in
// a fresh child process (so each case gets its own peak RSS), the Python peer, derived numbers
// (GFLOP/s, ratios, design.md §4 targets, a contention check), machine facts, and a plain-text table.
//
// Peak RSS is process-wide (Linux VmHWM), so one process per case. Writing "5" to
// /proc/self/clear_refs resets the high-water mark to the current RSS (Linux ≥ 4.0): a case resets
// it after setup to read the peak of its timed phase alone, next to the whole-process peak.

import { fork, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// ---------- statistics ----------

export interface Stats {
  /** Milliseconds. */
  median: number;
  min: number;
  p95: number;
  mean: number;
  n: number;
  samples: number[];
}

/** The p-quantile (0 ≤ p ≤ 1) of samples, linear between order statistics (numpy's default). */
export function quantile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new Error('quantile: no samples');
  const s = [...samples].sort((a, b) => a - b);
  const i = p * (s.length - 1);
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return s[lo]! + (s[hi]! - s[lo]!) * (i - lo);
}

export function stats(samples: readonly number[]): Stats {
  if (samples.length === 0) throw new Error('stats: no samples');
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => quantile(s, p);
  return {
    median: q(0.5),
    min: s[0]!,
    p95: q(0.95),
    mean: s.reduce((a, b) => a + b, 0) / s.length,
    n: s.length,
    samples: [...samples],
  };
}

export interface TimingOptions {
  warmup: number;
  repeat: number;
  /** Called between the warmup runs and the timed repeats (e.g. MemoryProbe.timedStart). */
  beforeTimed?: () => void;
}

export interface TimedStats extends Stats {
  /**
   * Process CPU time (user + system, all threads) over wall time of the timed repeats. Alone on
   * the machine a run with T busy threads reads ≈ T; much less means other processes took the CPU.
   */
  cpuPerWall: number;
}

/** Runs `fn` warmup + repeat times; returns the statistics of the timed repeats (ms). */
export async function timeIt(fn: () => Promise<unknown> | unknown, o: TimingOptions): Promise<TimedStats> {
  for (let i = 0; i < o.warmup; i++) await fn();
  o.beforeTimed?.();
  const samples: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < o.repeat; i++) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  const cpu = process.cpuUsage(cpu0);
  const wall = samples.reduce((a, b) => a + b, 0);
  return { ...stats(samples), cpuPerWall: (cpu.user + cpu.system) / 1000 / wall };
}

// ---------- memory ----------

function statusKiB(field: 'VmHWM' | 'VmRSS'): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

const mib = (kib: number | null) => (kib === null ? null : kib / 1024);

/** Peak resident set of this process so far (VmHWM), MiB; null off Linux. */
export const peakRssMiB = (): number | null => mib(statusKiB('VmHWM'));
/** Current resident set (VmRSS), MiB. */
export const rssMiB = (): number | null => mib(statusKiB('VmRSS'));

/** Resets the peak-RSS mark to the current RSS; false where the kernel does not allow it. */
export function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** Full GC when the process runs with --expose-gc (isolated cases do), so freed buffers leave RSS. */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Memory readings of one case, MiB (null where /proc is not available). */
export interface MemoryReport {
  /** RSS when the case started (the runtime alone). */
  baselineRssMiB: number | null;
  /** RSS after building the model and session, before any run. */
  setupRssMiB: number | null;
  /** RSS after the warmup runs. */
  afterWarmupRssMiB: number | null;
  /** Peak of the timed repeats alone (the mark is reset after warmup); null if it cannot be reset. */
  runPeakRssMiB: number | null;
  /** Peak of the whole process: setup, warmup and timed repeats. */
  processPeakRssMiB: number | null;
}

/** One timed case of a benchmark (engine, restr): what the isolated child process reports. */
export interface CaseResult {
  timeMs: TimedStats;
  setupMs: number;
  memory: MemoryReport;
  /** MACs of one run as counted for GFLOP/s (countMacs over the traced graph, or the case's formula). */
  macs: number;
  /** Parameters the case's graph holds (where it has a model). */
  params?: number;
  /** Case-specific numbers; the key carries the unit. */
  extra?: Record<string, number>;
}

/** Tracks a case's memory phases: call setupDone() after setup, timedStart() before the repeats. */
export class MemoryProbe {
  private readonly baseline = rssMiB();
  private setup: number | null = null;
  private warm: number | null = null;
  private setupPeak: number | null = null;
  private resettable = false;

  setupDone(): void {
    collectGarbage();
    this.setup = rssMiB();
  }

  timedStart(): void {
    this.warm = rssMiB();
    // Read before the reset clears it: the peak of setup and warmup.
    this.setupPeak = peakRssMiB();
    this.resettable = resetPeakRss();
  }

  report(): MemoryReport {
    const now = peakRssMiB();
    const runPeak = this.resettable ? now : null;
    const proc = now === null ? null : Math.max(now, this.setupPeak ?? 0);
    return {
      baselineRssMiB: this.baseline,
      setupRssMiB: this.setup,
      afterWarmupRssMiB: this.warm,
      runPeakRssMiB: runPeak,
      processPeakRssMiB: proc,
    };
  }
}

// ---------- isolated cases ----------

export interface IsolatedResult<T> {
  result: T;
  /** The child's VmHWM when the case returned, MiB (since the last reset, if the case reset it). */
  finalPeakRssMiB: number | null;
}

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));

/**
 * Runs `cases[caseName](params)` of the bench module at `moduleUrl` in a fresh Node process and
 * returns its result (structured-clone serializable) with the child's final VmHWM.
 */
export function runIsolated<T>(
  moduleUrl: string,
  caseName: string,
  params: unknown,
): Promise<IsolatedResult<T>> {
  return new Promise((resolve, reject) => {
    const child = fork(WORKER, [], {
      execArgv: ['--expose-gc'],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let done = false;
    child.on('message', (m: { ok: boolean; result?: T; error?: string; finalPeakRssMiB: number | null }) => {
      done = true;
      if (m.ok) resolve({ result: m.result as T, finalPeakRssMiB: m.finalPeakRssMiB });
      else reject(new Error(`case '${caseName}' failed: ${m.error}`));
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (!done)
        reject(new Error(`case '${caseName}' exited without a result (code ${code}, signal ${signal})`));
    });
    child.send({ module: moduleUrl, case: caseName, params });
  });
}

// ---------- the Python peer ----------

/** A Python that imports torch: /usr/bin/python3 first (Debian's python3-torch), then PATH's. */
export function findTorchPython(
  candidates = ['/usr/bin/python3', 'python3', 'python'],
): { python: string; torch: string } | null {
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (r.status === 0) return { python, torch: r.stdout.trim() };
  }
  return null;
}

/**
 * The PyTorch peer of a benchmark: the Python that has torch (null when skipped or missing) and,
 * when there is none, the note that says why (printed once and put in the report).
 */
export function torchPeer(wanted: boolean): {
  torch: ReturnType<typeof findTorchPython>;
  note: string | null;
} {
  if (!wanted) return { torch: null, note: 'PyTorch peer: skipped (--no-peer)' };
  const torch = findTorchPython();
  return {
    torch,
    note: torch
      ? null
      : 'PyTorch peer: skipped (no Python with torch: install Debian python3-torch for /usr/bin/python3)',
  };
}

/** Runs a Python script and parses the last line of its stdout as JSON. */
export function runPythonJson<T>(
  python: string,
  script: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<T> {
  return new Promise((resolve, reject) => {
    const p = spawn(python, [script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0)
        return reject(
          new Error(
            `${python} ${script} ${args.join(' ')} exited ${code}: ${err.trim().split('\n').slice(-5).join(' | ')}`,
          ),
        );
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new Error(`${script}: stdout's last line is not JSON: ${last.slice(0, 200)}`));
      }
    });
  });
}

/** A peer script under bench/peers/: next to the sources (dist/bench/ → bench/peers/), else under the working directory. */
export function peerScript(file: string): string {
  const candidates = [
    fileURLToPath(new URL(`../../bench/peers/${file}`, import.meta.url)),
    resolve(`bench/peers/${file}`),
  ];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error(`bench/peers/${file} not found (looked at ${candidates.join(', ')})`);
  return found;
}

/** Thread environment of a PyTorch peer: OpenMP and OpenBLAS pools the size of ONNX Runtime's. */
export const torchThreadEnv = (threads: number): Record<string, string> => ({
  OMP_NUM_THREADS: String(threads),
  OPENBLAS_NUM_THREADS: String(threads),
});

/** What a PyTorch peer script (bench/peers/*.py) prints: one JSON line per case. */
export interface PeerResult {
  case: string;
  torch: string;
  threads: number;
  interopThreads: number;
  python: string;
  blas: string;
  timeMs: TimedStats;
  setupMs: number;
  macs?: number;
  params?: number;
  baselineRssMiB: number | null;
  setupRssMiB: number | null;
  afterWarmupRssMiB: number | null;
  runPeakRssMiB: number | null;
  processPeakRssMiB: number;
}

// ---------- derived numbers ----------

/** Effective GFLOP/s: 2 × MACs / time (ms); null when either is missing. */
export const gflops = (macs: number | null | undefined, ms: number | null | undefined): number | null =>
  macs && ms ? (2 * macs) / (ms * 1e6) : null;

/** a / b; null when either is missing or b ≤ 0. */
export const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a != null && b != null && b > 0 ? a / b : null;

/**
 * The machine's matmul rate (GFLOP/s): the best measured, ONNX Runtime's (MLAS) or the PyTorch
 * peer's (its BLAS; OpenBLAS can be faster), the ceiling design.md §4 measures forward rates against.
 */
export function matmulCeiling(onnxruntime: number | null, pytorch: number | null) {
  const best = onnxruntime === null ? pytorch : Math.max(onnxruntime, pytorch ?? 0);
  const bestFrom = best === null ? null : best === onnxruntime ? 'ONNX Runtime (MLAS)' : 'PyTorch (its BLAS)';
  return { onnxruntime, pytorch, best, bestFrom };
}

export interface Target {
  name: string;
  value: number | null;
  limit: number;
  higherIsBetter: boolean;
  status: 'PASS' | 'MISS' | 'n/a';
}

/** A design.md §4 target checked against a measured value. */
export function target(name: string, value: number | null, limit: number, higherIsBetter: boolean): Target {
  const ok = value !== null && (higherIsBetter ? value >= limit : value <= limit);
  return { name, value, limit, higherIsBetter, status: value === null ? 'n/a' : ok ? 'PASS' : 'MISS' };
}

export interface Contention {
  busy: boolean;
  maxLoadAvg1m: number;
  /** Lowest CPU time per wall time per thread over the compute cases (≈ 1 when alone). */
  minCpuPerWallPerThread: number | null;
  note: string | null;
}

/**
 * Whether other processes took the CPU during the run: a compute case that got much less CPU than
 * its threads, or a 1-minute load average well above what the benchmark itself puts on the machine
 * (it decays over a minute, so the previous case's own threads still show in it).
 */
export function contention(
  loads: readonly number[],
  cpuPerWall: readonly number[],
  threads: number,
  machine: MachineInfo,
): Contention {
  const maxLoad = Math.max(0, ...loads);
  const minShare = cpuPerWall.length ? Math.min(...cpuPerWall) / threads : null;
  const cores = machine.physicalCores ?? machine.logicalCpus;
  const busy = maxLoad > Math.max(cores, threads) + 1.5 || (minShare !== null && minShare < 0.8);
  const note = busy
    ? `WARNING: the machine was busy (1-min load average up to ${maxLoad.toFixed(1)} on ${cores} cores, this benchmark's own ${threads} threads included; lowest CPU time per wall time per thread ${fmt(minShare, 2)}): times are inflated and ratios noisy. Re-run on an idle machine.`
    : null;
  return { busy, maxLoadAvg1m: maxLoad, minCpuPerWallPerThread: minShare, note };
}

// ---------- machine ----------

export interface MachineInfo {
  cpuModel: string;
  logicalCpus: number;
  physicalCores: number | null;
  memoryGiB: number;
  node: string;
  onnxruntimeNode: string | null;
}

export function machineInfo(): MachineInfo {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  let physicalCores: number | null = null;
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    cpuModel = /^model name\s*:\s*(.*)$/m.exec(info)?.[1]?.trim() ?? cpuModel;
    const cores = new Set<string>();
    let phys = '';
    for (const line of info.split('\n')) {
      const [k, v] = line.split(':').map((s) => s.trim());
      if (k === 'physical id') phys = v ?? '';
      if (k === 'core id') cores.add(`${phys}/${v}`);
    }
    physicalCores = cores.size || null;
  } catch {
    /* not Linux */
  }
  let ortVersion: string | null = null;
  try {
    const req = createRequire(import.meta.url);
    const pkg = req.resolve('onnxruntime-node/package.json');
    ortVersion = (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
  } catch {
    /* not resolvable */
  }
  return {
    cpuModel,
    logicalCpus: cpus().length,
    physicalCores,
    memoryGiB: totalmem() / 2 ** 30,
    node: process.version,
    onnxruntimeNode: ortVersion,
  };
}

// ---------- output ----------

/** A plain-text table; columns after the first are right-aligned. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const w = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  return [line(header), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

export const fmt = (v: number | null | undefined, digits = 1): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits);

// ---------- arguments ----------

/** Flags every benchmark understands; undefined means "the benchmark's default". */
export interface BenchArgs {
  json: boolean;
  quick: boolean;
  repeat?: number;
  warmup?: number;
  threads?: number;
  /** Arguments the common parser did not consume (benchmark-specific). */
  rest: string[];
}

export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  const a: BenchArgs = { json: false, quick: false, rest: [] };
  const int = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min)
      throw new Error(`${flag} needs an integer ≥ ${min}, got '${v ?? ''}'`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    const [flag, inline] = f.includes('=')
      ? [f.slice(0, f.indexOf('=')), f.slice(f.indexOf('=') + 1)]
      : [f, undefined];
    const value = () => inline ?? argv[++i];
    if (flag === '--json') a.json = true;
    else if (flag === '--quick') a.quick = true;
    else if (flag === '--repeat') a.repeat = int(flag, value(), 1);
    else if (flag === '--warmup') a.warmup = int(flag, value(), 0);
    else if (flag === '--threads') a.threads = int(flag, value(), 1);
    else a.rest.push(f);
  }
  return a;
}
