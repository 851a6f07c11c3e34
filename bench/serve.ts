// `npm run bench -- serve`: the HTTP server (src/server, `refseg serve`) under load.
//
// The server runs as `refseg serve` in a CHILD process (its own event loop, its own inference
// worker threads), exactly as a user starts it; this process is only the client, so measuring does
// not steal the server's event loop. The client POSTs /v1/segment (multipart: the bundled example
// image examples/scene.png + one of its expressions, cycled; JSON answers) over keep-alive
// connections at each concurrency level, and reports requests/s and latency percentiles per level
// (client-side, request start to last byte of the answer), the ratios against concurrency 1, and
// the server's resident memory (/proc/<pid>/status VmRSS) after warm-up and after the timed
// requests: a server that leaks shows growth there. Requests that do not answer 200 are counted
// and make the benchmark exit 1.
//
// Checkpoint: --checkpoint, else the built-in models/default.safetensors when present, else a
// freshly initialized restr-tiny (`refseg init --config restr-tiny`, the example's vocabulary) in a
// temporary folder — random weights segment just as fast as trained ones.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Vocabulary } from '../src/data/tokenizer.js';
import { defaultCheckpointPath, examplePaths } from '../src/infer/paths.js';
import { Progress } from '../src/util/progress.js';
import { type BenchArgs, type MachineInfo, fmt, machineInfo, table } from './util.js';

export const usage = `Serve flags:
  --checkpoint F     model checkpoint (default: models/default.safetensors when present, else a
                     fresh restr-tiny init with the example's vocabulary in a temporary folder)
  --requests N       timed requests in all, split evenly over the concurrency levels (default
                     1000, --quick 150); the server's RSS is read before and after them
  --concurrency L    comma-separated levels (default 1,2,8)
  --workers N        the server's inference worker threads (default 1, as refseg serve)
  --warmup N         untimed requests at the highest level first (default 200, --quick 30): the
                     server's RSS settles over its first few hundred requests (V8 heap sizing,
                     allocator arenas), so "before" is read after them
  --threads N        ONNX Runtime threads per server worker (default: the server's, cores / workers)`;

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

interface ServeParams {
  checkpoint?: string;
  requests: number;
  levels: number[];
  workers: number;
  warmup: number;
  threads?: number;
}

function parseServeArgs(args: BenchArgs): ServeParams {
  const p: ServeParams = {
    requests: args.quick ? 150 : 1000,
    levels: [1, 2, 8],
    workers: 1,
    warmup: -1,
    ...(args.threads !== undefined ? { threads: args.threads } : {}),
  };
  const int = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min)
      throw new Error(`${flag} needs an integer ≥ ${min}, got '${v ?? ''}'`);
    return n;
  };
  const rest = args.rest;
  for (let i = 0; i < rest.length; i++) {
    const f = rest[i]!;
    const eq = f.indexOf('=');
    const [flag, inline] = eq >= 0 ? [f.slice(0, eq), f.slice(eq + 1)] : [f, undefined];
    const value = () => inline ?? rest[++i];
    if (flag === '--checkpoint') {
      const v = value();
      if (!v) throw new Error('--checkpoint needs a file');
      p.checkpoint = v;
    } else if (flag === '--requests') p.requests = int(flag, value(), 1);
    else if (flag === '--workers') p.workers = int(flag, value(), 1);
    else if (flag === '--concurrency') {
      const v = value() ?? '';
      p.levels = v.split(',').map((s) => int(flag, s.trim(), 1));
    } else throw new Error(`serve: unknown flag '${f}' (npm run bench -- serve --help)`);
  }
  if (p.requests < p.levels.length)
    throw new Error(`--requests ${p.requests} is fewer than the ${p.levels.length} concurrency levels`);
  p.warmup = args.warmup ?? Math.max(args.quick ? 30 : 200, 3 * Math.max(...p.levels));
  return p;
}

// ---------- the checkpoint ----------

interface Checkpoint {
  path: string;
  source: string;
  cleanup: () => Promise<void>;
}

async function checkpointFor(p: ServeParams, expressions: readonly string[]): Promise<Checkpoint> {
  const none = async () => {};
  if (p.checkpoint) return { path: p.checkpoint, source: '--checkpoint', cleanup: none };
  const builtIn = defaultCheckpointPath();
  if (existsSync(builtIn)) return { path: builtIn, source: 'the built-in model', cleanup: none };
  const dir = await mkdtemp(join(tmpdir(), 'refseg-bench-serve-'));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    const vocab = join(dir, 'vocab.json');
    writeFileSync(vocab, JSON.stringify(Vocabulary.build(expressions).toJSON()));
    const out = join(dir, 'model.safetensors');
    const r = spawnSync(
      process.execPath,
      [CLI, 'init', '--config', 'restr-tiny', '--vocab', vocab, '--seed', '0', '--out', out],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`refseg init failed: ${(r.stderr || r.stdout).trim()}`);
    return {
      path: out,
      source: 'fresh restr-tiny init (random weights; models/default.safetensors is not there)',
      cleanup,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

// ---------- the server child ----------

interface ServerChild {
  child: ChildProcess;
  url: string;
  readyMs: number;
  stderr: () => string;
}

function startServerChild(p: ServeParams, checkpoint: string): Promise<ServerChild> {
  const args = [
    CLI,
    'serve',
    '--checkpoint',
    checkpoint,
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--workers',
    String(p.workers),
    // Room for every client connection to wait: the benchmark measures throughput, not 429s.
    '--queue',
    String(Math.max(16, 2 * Math.max(...p.levels))),
    ...(p.threads !== undefined ? ['--threads', String(p.threads)] : []),
  ];
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail('the server was not ready within 300 s'), 300_000);
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${why}${err.trim() ? `: ${err.trim().split('\n').slice(-5).join(' | ')}` : ''}`));
    };
    child.on('error', (e) => fail(e.message));
    child.on('exit', (code, signal) => fail(`refseg serve exited (code ${code}, signal ${signal})`));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const url = /listening on (http:\/\/\S+?) /.exec(out)?.[1];
      if (url && /: ready \(/.test(out)) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        child.removeAllListeners('error');
        child.stdout!.removeAllListeners('data');
        child.stdout!.resume();
        resolve({ child, url, readyMs: performance.now() - t0, stderr: () => err });
      }
    });
  });
}

/** SIGTERM (the server drains, then exits 0); SIGKILL after 30 s. Resolves with the exit code. */
function stopServer(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', (code) => {
      clearTimeout(kill);
      resolve(code);
    });
    child.kill('SIGTERM');
  });
}

/** VmRSS and VmHWM of a process, MiB (null off Linux). */
function procMemory(pid: number): { rssMiB: number | null; peakMiB: number | null } {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (f: string) => {
      const m = new RegExp(`^${f}:\\s+(\\d+) kB`, 'm').exec(s);
      return m ? Number(m[1]) / 1024 : null;
    };
    return { rssMiB: kib('VmRSS'), peakMiB: kib('VmHWM') };
  } catch {
    return { rssMiB: null, peakMiB: null };
  }
}

// ---------- the client ----------

/** multipart/form-data bodies, one per expression: `image` (the PNG file) and `text`. */
function multipartBodies(png: Uint8Array, texts: readonly string[]): { type: string; bodies: Buffer[] } {
  const boundary = `----refseg-bench-${Math.random().toString(16).slice(2)}`;
  const bodies = texts.map((text) =>
    Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="scene.png"\r\n` +
          'Content-Type: image/png\r\n\r\n',
      ),
      png,
      Buffer.from(
        `\r\n--${boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n${text}\r\n--${boundary}--\r\n`,
      ),
    ]),
  );
  return { type: `multipart/form-data; boundary=${boundary}`, bodies };
}

interface Answer {
  status: number;
  body: Buffer;
}

function post(url: URL, agent: Agent, type: string, body: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': type, 'content-length': body.length, accept: 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

interface LevelResult {
  concurrency: number;
  requests: number;
  failed: number;
  /** Statuses of the failed requests (or 'error: ...' for connection errors), counted. */
  failures: Record<string, number>;
  wallMs: number;
  requestsPerS: number;
  latencyMs: { p50: number; p95: number; p99: number; mean: number; max: number };
  serverRssAfterMiB: number | null;
}

const quantile = (sorted: readonly number[], q: number): number => {
  const i = q * (sorted.length - 1);
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (i - lo);
};

/** `n` requests over `concurrency` keep-alive connections, each sending its next one when answered. */
async function runLevel(
  url: URL,
  mp: { type: string; bodies: Buffer[] },
  concurrency: number,
  n: number,
  counter: { next: number },
  onDone: () => void,
): Promise<Omit<LevelResult, 'serverRssAfterMiB'>> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  let started = 0;
  const worker = async () => {
    while (started < n) {
      started++;
      const body = mp.bodies[counter.next++ % mp.bodies.length]!;
      const t0 = performance.now();
      let key: string | null = null;
      try {
        const a = await post(url, agent, mp.type, body);
        if (a.status !== 200) key = String(a.status);
      } catch (e) {
        key = `error: ${(e as Error).message}`;
      }
      latencies.push(performance.now() - t0);
      if (key !== null) failures[key] = (failures[key] ?? 0) + 1;
      onDone();
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const wallMs = performance.now() - t0;
  agent.destroy();
  const s = [...latencies].sort((a, b) => a - b);
  return {
    concurrency,
    requests: n,
    failed: Object.values(failures).reduce((a, b) => a + b, 0),
    failures,
    wallMs,
    requestsPerS: (1000 * n) / wallMs,
    latencyMs: {
      p50: quantile(s, 0.5),
      p95: quantile(s, 0.95),
      p99: quantile(s, 0.99),
      mean: s.reduce((a, b) => a + b, 0) / s.length,
      max: s[s.length - 1]!,
    },
  };
}

// ---------- the benchmark ----------

export async function run(args: BenchArgs): Promise<number> {
  const p = parseServeArgs(args);
  const paths = examplePaths();
  const png = new Uint8Array(readFileSync(paths.image));
  const scene = JSON.parse(readFileSync(paths.expressions, 'utf8')) as {
    width: number;
    height: number;
    expressions: { text: string }[];
  };
  const texts = scene.expressions.map((e) => e.text);
  const mp = multipartBodies(png, texts);
  const machine: MachineInfo = machineInfo();
  const load0 = loadavg()[0]!;

  // Split the timed requests evenly over the levels (the first levels take the remainder).
  const per = p.levels.map(
    (_, i) => Math.floor(p.requests / p.levels.length) + (i < p.requests % p.levels.length ? 1 : 0),
  );

  const ck = await checkpointFor(p, texts);
  let server: ServerChild | undefined;
  let exitCode: number | null = null;
  try {
    server = await startServerChild(p, ck.path);
    const pid = server.child.pid!;
    const atReady = procMemory(pid);
    const readyz = (await (await fetch(new URL('/readyz', server.url))).json()) as {
      model?: { kind?: string; imageSize?: number; maxTokens?: number };
    };
    const url = new URL('/v1/segment', server.url);

    // One answer checked in full: the server segments (a JSON mask), not just answers 200.
    const first = await post(url, new Agent(), mp.type, mp.bodies[0]!);
    if (first.status !== 200)
      throw new Error(`POST /v1/segment answered ${first.status}: ${first.body.toString().slice(0, 300)}`);
    const firstJson = JSON.parse(first.body.toString()) as { width?: number; height?: number; rle?: unknown };
    if (firstJson.width !== scene.width || firstJson.height !== scene.height || !firstJson.rle)
      throw new Error(`unexpected answer: ${first.body.toString().slice(0, 300)}`);

    const total = p.warmup + p.requests;
    const bar = new Progress('bench serve', total, { unit: 'requests' });
    const counter = { next: 1 };
    const maxLevel = Math.max(...p.levels);
    let warm: Awaited<ReturnType<typeof runLevel>> | null = null;
    const levels: LevelResult[] = [];
    // The server's RSS every `sampleEvery` timed requests: [requests so far, MiB].
    const sampleEvery = Math.max(1, Math.round(p.requests / 40));
    const samples: [number, number | null][] = [];
    let before: ReturnType<typeof procMemory>;
    try {
      // Warm-up at the highest level: every buffer the busiest level needs exists before "before".
      if (p.warmup > 0) {
        bar.setStatus(`warm-up, concurrency ${maxLevel}`);
        warm = await runLevel(url, mp, maxLevel, p.warmup, counter, () => bar.tick());
      }
      before = procMemory(pid);
      samples.push([0, before.rssMiB]);
      let timed = 0;
      const onTimed = () => {
        bar.tick();
        if (++timed % sampleEvery === 0) samples.push([timed, procMemory(pid).rssMiB]);
      };
      for (const [i, c] of p.levels.entries()) {
        bar.setStatus(`concurrency ${c}`);
        const r = await runLevel(url, mp, c, per[i]!, counter, onTimed);
        levels.push({ ...r, serverRssAfterMiB: procMemory(pid).rssMiB });
      }
      bar.finish();
    } catch (e) {
      bar.stop();
      throw e;
    }
    const after = procMemory(pid);
    exitCode = await stopServer(server.child);

    const failures: Record<string, number> = {};
    for (const l of warm ? [warm, ...levels] : levels)
      for (const [k, v] of Object.entries(l.failures)) failures[k] = (failures[k] ?? 0) + v;
    const failed = Object.values(failures).reduce((a, b) => a + b, 0);
    const base = levels.find((l) => l.concurrency === 1) ?? levels[0]!;
    const growth = before.rssMiB !== null && after.rssMiB !== null ? after.rssMiB - before.rssMiB : null;
    const growthPct = growth !== null && before.rssMiB ? (100 * growth) / before.rssMiB : null;
    const sampled = samples.map(([, mib]) => mib).filter((m): m is number => m !== null);
    const band = sampled.length ? { min: Math.min(...sampled), max: Math.max(...sampled) } : null;
    const busy = load0 > machine.logicalCpus * 0.5;
    const report = {
      benchmark: 'serve',
      checkpoint: { path: ck.path, source: ck.source },
      model: readyz.model ?? null,
      server: {
        command: `refseg serve --workers ${p.workers}${p.threads !== undefined ? ` --threads ${p.threads}` : ''}`,
        workers: p.workers,
        threadsPerWorker: p.threads ?? 'server default (cores / workers)',
        readyS: server.readyMs / 1000,
        exitCode,
      },
      request: {
        endpoint: 'POST /v1/segment',
        body: `multipart/form-data: ${basename(paths.image)} (${png.length} bytes, ${scene.width}×${scene.height}) + one of ${texts.length} expressions, cycled`,
        answer: 'JSON (RLE mask + score)',
        connections: 'keep-alive, one per concurrent client',
        latency: 'client-side, request start to the last byte of the answer (ms)',
      },
      warmupRequests: p.warmup,
      timedRequests: p.requests,
      machine,
      contention: {
        loadAvg1mAtStart: load0,
        busy,
        note: busy ? 'other processes were using the CPU: absolute numbers are pessimistic and noisy' : null,
      },
      levels: levels.map((l) => ({
        ...l,
        throughputVsConcurrency1: l.requestsPerS / base.requestsPerS,
        p50VsConcurrency1: l.latencyMs.p50 / base.latencyMs.p50,
      })),
      memory: {
        unit: 'MiB (VmRSS of the server process, /proc/<pid>/status)',
        atReadyMiB: atReady.rssMiB,
        beforeMiB: before.rssMiB,
        afterMiB: after.rssMiB,
        requestsBetween: p.requests,
        growthMiB: growth,
        growthPercent: growthPct,
        duringTimedMiB: band,
        note: 'RSS moves by ~10 MiB with garbage collection and with the concurrency level; a leak shows as growth that keeps going (run --concurrency 1,1,1,1 --requests 4000 for a longer soak)',
        peakMiB: after.peakMiB,
        samples: samples.map(([n, mib]) => ({ requests: n, rssMiB: mib })),
      },
      failedRequests: failed,
      failures,
    };

    if (args.json) console.log(JSON.stringify(report, null, 2));
    else {
      const m = readyz.model;
      const out: string[] = [];
      out.push(
        `refseg serve benchmark — ${m ? `${m.kind} ${m.imageSize} px` : 'model'} from ${ck.source}${ck.source === '--checkpoint' ? ` (${ck.path})` : ''}`,
      );
      out.push(
        `server: refseg serve in a child process, ${p.workers} inference worker${p.workers > 1 ? 's' : ''}, ` +
          `ORT threads per worker ${p.threads ?? 'default (cores / workers)'}; ready in ${fmt(server.readyMs / 1000, 1)} s`,
      );
      out.push(
        `requests: POST /v1/segment, multipart ${basename(paths.image)} ${scene.width}×${scene.height} + one of ${texts.length} expressions, JSON answers, keep-alive; ` +
          `${p.warmup} warm-up + ${p.requests} timed`,
      );
      out.push(
        `machine: ${machine.cpuModel}, ${machine.logicalCpus} logical CPUs, ${machine.memoryGiB.toFixed(0)} GiB; Node ${machine.node}; ` +
          `load average ${load0.toFixed(2)} at start${busy ? ' — BUSY: other processes share the CPU, numbers are noisy' : ''}`,
      );
      out.push('');
      out.push(
        table(
          [
            'concurrency',
            'requests',
            'req/s',
            'p50 ms',
            'p95 ms',
            'p99 ms',
            'req/s vs c=1',
            'p50 vs c=1',
            'failed',
          ],
          levels.map((l) => [
            String(l.concurrency),
            String(l.requests),
            fmt(l.requestsPerS, 1),
            fmt(l.latencyMs.p50, 1),
            fmt(l.latencyMs.p95, 1),
            fmt(l.latencyMs.p99, 1),
            `${fmt(l.requestsPerS / base.requestsPerS, 2)}×`,
            `${fmt(l.latencyMs.p50 / base.latencyMs.p50, 2)}×`,
            String(l.failed),
          ]),
        ),
      );
      out.push('');
      const sign = (x: number | null) => (x === null ? '–' : `${x >= 0 ? '+' : ''}${x.toFixed(1)}`);
      out.push(
        `server memory (VmRSS): ${fmt(atReady.rssMiB, 1)} MiB at ready, ${fmt(before.rssMiB, 1)} MiB after warm-up → ` +
          `${fmt(after.rssMiB, 1)} MiB after ${p.requests} more requests: growth ${sign(growth)} MiB (${sign(growthPct)}%); ` +
          `peak ${fmt(after.peakMiB, 1)} MiB`,
      );
      out.push(
        `  during the timed requests (${samples.length} samples, every ${sampleEvery}): ${fmt(band?.min, 1)}–${fmt(band?.max, 1)} MiB; ` +
          `after each level: ${levels.map((l) => `c=${l.concurrency} ${fmt(l.serverRssAfterMiB, 1)}`).join(', ')} MiB`,
      );
      out.push(
        `server exit after SIGTERM: ${exitCode === 0 ? '0 (drained)' : String(exitCode)}; failed requests: ${failed}` +
          (failed
            ? ` (${Object.entries(failures)
                .map(([k, v]) => `${k} ×${v}`)
                .join(', ')})`
            : ''),
      );
      console.log(out.join('\n'));
    }
    return failed > 0 || exitCode !== 0 ? 1 : 0;
  } finally {
    if (server && server.child.exitCode === null && server.child.signalCode === null)
      server.child.kill('SIGKILL');
    await ck.cleanup();
  }
}
