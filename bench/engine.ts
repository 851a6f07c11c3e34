// `npm run bench -- engine`: the engine's acceptance benchmark (design.md §1, §4).
//
// ViT-B/16 (12 blocks, d 768, 12 heads, MLP 3072) over 900 tokens (480×480), batch 1, timed on
// ONNX Runtime CPU and on PyTorch eager (bench/peers/vit_torch.py) in the same run, each case in
// its own process so that its peak RSS is its own. Cases:
//   matmul   one N×N×N MatMul graph: the machine's single-precision matmul rate (GFLOP/s)
//   forward  inference graph, parameters as initializers, graph optimization 'all'
//   fwdbwd   forward + loss + backward only (gradients reduced to their squared norm)
//   train    the training step via StepRunner: forward + loss + backward in one graph, gradients
//            out, AdamW in place on the host (src/train/step.ts says why)
//   stateio  parameters and AdamW moments through ORT alone (see stateioCase): what sending and
//            receiving the whole state would cost per step, pre-allocated vs fresh outputs, vs a
//            memcpy; the measurement behind keeping the update out of the graph
// Effective GFLOP/s = 2 × MACs / time, MACs from countMacs on the traced forward graph; backward
// is counted as 2× forward by convention (fwdbwd and train = 3× forward MACs, AdamW not counted).

import { loadavg } from 'node:os';
import { gradients } from '../src/autodiff/grad.js';
import { countMacs, nodeMacs } from '../src/graph/cost.js';
import { Graph, type Tensor } from '../src/graph/graph.js';
import { toModelProto } from '../src/graph/onnx.js';
import * as op from '../src/graph/ops.js';
import { initParams } from '../src/nn/init.js';
import { Scope, countParams } from '../src/nn/params.js';
import { type HostTensor, Session, type SessionOptions } from '../src/runtime/session.js';
import { StepRunner } from '../src/train/runner.js';
import { TORCH_ADAMW_DEFAULTS, buildTrainStep } from '../src/train/step.js';
import {
  type BenchArgs,
  type MachineInfo,
  type CaseResult,
  MemoryProbe,
  type PeerResult,
  type Stats,
  collectGarbage,
  contention,
  torchPeer,
  fmt,
  gflops,
  machineInfo,
  matmulCeiling,
  peerScript,
  ratio,
  runIsolated,
  runPythonJson,
  stats,
  table,
  target,
  timeIt,
  torchThreadEnv,
} from './util.js';
import {
  VIT_B16_480,
  VIT_QUICK,
  type VitConfig,
  lcg,
  meanSquare,
  patchDimOf,
  patchesInput,
  tokensOf,
  vitEncoder,
} from './vit.js';

export const usage = `Engine flags:
  --image N     image side in pixels (tokens = (N/16)²; default 480, --quick 128)
  --batch N     batch size (default 1)
  --depth N     number of blocks (default 12, --quick 2)
  --cases LIST  comma-separated subset of matmul,forward,fwdbwd,train,stateio
  --no-peer     skip the PyTorch peer
  --dump DIR    write ONNX Runtime's optimized graph of each case to DIR/<case>.onnx (inspection)`;

const ALL_CASES = ['matmul', 'forward', 'fwdbwd', 'train', 'stateio'] as const;
type CaseName = (typeof ALL_CASES)[number];
const PEER_CASES: ReadonlySet<CaseName> = new Set(['matmul', 'forward', 'fwdbwd', 'train']);

const TARGETS = {
  forwardTimeRatio: 0.6,
  forwardMatmulFraction: 0.7,
  trainTimeRatio: 1.0,
  trainPeakRatio: 1.2,
};

// ---------- cases (run in a child process by bench/worker.ts) ----------

interface CaseParams {
  cfg: VitConfig;
  threads: number;
  warmup: number;
  repeat: number;
  matmulN: number;
  dumpDir: string | null;
}

const f32 = (shape: readonly number[], data: Float32Array): HostTensor => ({ dtype: 'float32', shape, data });

function sessionOptions(p: CaseParams, name: string): SessionOptions {
  return {
    threads: p.threads,
    optimization: 'all',
    ...(p.dumpDir ? { optimizedModelPath: `${p.dumpDir}/${name}.onnx` } : {}),
  };
}

function patchesData(c: VitConfig): HostTensor {
  const shape = [c.batch, tokensOf(c), patchDimOf(c)];
  const r = lcg(12345);
  return f32(
    shape,
    Float32Array.from({ length: shape[0]! * shape[1]! * shape[2]! }, () => r() * 2 - 1),
  );
}

/** The traced encoder; `y` is its output, `macs` the forward's MACs. */
function traceVit(cfg: VitConfig) {
  const g = new Graph('vit');
  const s = Scope.root(g);
  const x = patchesInput(g, cfg);
  const y = vitEncoder(s, x, cfg);
  return { g, s, y, macs: countMacs([y]), params: countParams(s.registry.specs.values()) };
}

const timing = (p: CaseParams, probe: MemoryProbe) => ({
  warmup: p.warmup,
  repeat: p.repeat,
  beforeTimed: () => probe.timedStart(),
});

async function matmulCase(p: CaseParams): Promise<CaseResult> {
  const probe = new MemoryProbe();
  const t0 = performance.now();
  const n = p.matmulN;
  const g = new Graph('matmul');
  const c = g.named(op.matmul(g.input('a', 'float32', [n, n]), g.input('b', 'float32', [n, n])), 'c');
  const session = await Session.create(toModelProto(g, { outputs: [c] }), sessionOptions(p, 'matmul'));
  const r = lcg(3);
  const a = f32(
    [n, n],
    Float32Array.from({ length: n * n }, () => r()),
  );
  const b = f32(
    [n, n],
    Float32Array.from({ length: n * n }, () => r()),
  );
  const into = { c: f32([n, n], new Float32Array(n * n)) };
  const setupMs = performance.now() - t0;
  probe.setupDone();
  // A single matmul is short: at least 3 warmups and 10 repeats whatever the ViT cases use.
  const timeMs = await timeIt(() => session.run({ a, b }, ['c'], into), {
    warmup: Math.max(3, p.warmup),
    repeat: Math.max(10, p.repeat),
    beforeTimed: () => probe.timedStart(),
  });
  await session.dispose();
  return { timeMs, setupMs, memory: probe.report(), macs: n ** 3 };
}

async function forwardCase(p: CaseParams): Promise<CaseResult> {
  const probe = new MemoryProbe();
  const t0 = performance.now();
  const { g, s, y, macs, params } = traceVit(p.cfg);
  const out = g.named(y, 'tokens');
  let values: Map<string, Float32Array> | null = initParams(s.registry.specs.values(), lcg(1));
  let model: Uint8Array | null = toModelProto(g, { outputs: [out], paramValues: values });
  values = null; // ORT holds its own copy of the initializers from here on
  const session = await Session.create(model, sessionOptions(p, 'forward'));
  model = null;
  const feeds = { patches: patchesData(p.cfg) };
  const into = { tokens: f32(out.shape as number[], new Float32Array(out.size!)) };
  const setupMs = performance.now() - t0;
  probe.setupDone();
  const timeMs = await timeIt(() => session.run(feeds, ['tokens'], into), timing(p, probe));
  await session.dispose();
  return { timeMs, setupMs, memory: probe.report(), macs, params };
}

async function fwdbwdCase(p: CaseParams): Promise<CaseResult> {
  const probe = new MemoryProbe();
  const t0 = performance.now();
  const { g, s, y, macs, params } = traceVit(p.cfg);
  const loss = meanSquare(y);
  const specs = [...s.registry.specs.values()];
  const pt = specs.map((sp) => s.registry.tensors.get(sp.name)!);
  const grads = g.scope('backward', () => gradients(loss, pt));
  // Every gradient must be computed, none leaves ORT: reduce them to ‖g‖² as the step graph does.
  const gradSq = grads
    .map((d) => op.reduceSum(op.mul(d, d), op.allAxes(d), false))
    .reduce((a, b) => op.add(a, b));
  const outs = [g.named(loss, 'loss'), g.named(gradSq, 'grad_sq')];
  const session = await Session.create(toModelProto(g, { outputs: outs }), sessionOptions(p, 'fwdbwd'));
  const values = initParams(specs, lcg(1));
  const feeds: Record<string, HostTensor> = { patches: patchesData(p.cfg) };
  for (const sp of specs) feeds[sp.name] = f32(sp.shape, values.get(sp.name)!);
  const setupMs = performance.now() - t0;
  probe.setupDone();
  const timeMs = await timeIt(() => session.run(feeds, ['loss', 'grad_sq']), timing(p, probe));
  await session.dispose();
  return { timeMs, setupMs, memory: probe.report(), macs: 3 * macs, params };
}

async function trainCase(p: CaseParams): Promise<CaseResult> {
  const probe = new MemoryProbe();
  const t0 = performance.now();
  const { g, s, y, macs, params } = traceVit(p.cfg);
  const step = buildTrainStep({
    registry: s.registry,
    loss: meanSquare(y),
    adamw: { ...TORCH_ADAMW_DEFAULTS, clipNorm: null },
  });
  const graphMacs = g.nodes.reduce((a, n) => a + nodeMacs(n), 0);
  let values: Map<string, Float32Array> | null = initParams(s.registry.specs.values(), lcg(1));
  const runner = await StepRunner.create(step, values, sessionOptions(p, 'train'));
  values = null; // the runner copied them into its state
  const data = { patches: patchesData(p.cfg) };
  const setupMs = performance.now() - t0;
  probe.setupDone();
  let last = { loss: NaN, finite: false };
  const timeMs = await timeIt(async () => (last = await runner.step(data, 1e-4)), timing(p, probe));
  if (!last.finite) throw new Error(`training step produced a non-finite loss (${last.loss})`);
  await runner.dispose();
  return {
    timeMs,
    setupMs,
    memory: probe.report(),
    macs: 3 * macs,
    params,
    extra: { stepGraphMacs: graphMacs, stateMiB: (3 * params * 4) / 2 ** 20, lastLoss: last.loss },
  };
}

/**
 * Parameters and both AdamW moments (the step's state) through ORT with no real compute:
 *   timeMs            Identity from every state input to an output, outputs pre-allocated (StepRunner's way)
 *   fresh             the same, outputs allocated by ORT / the binding
 *   addToOutputs      y = x + 1 for every state tensor, y a graph output (pre-allocated)
 *   addInternal       the same Add, but y only feeds a ReduceMax: nothing of that size leaves ORT
 *   jsCopy            TypedArray.set of the same bytes into already-touched buffers (memcpy floor)
 * addToOutputs − addInternal is what receiving the state costs per step beyond the compute that
 * writes it (a lower bound: addInternal also pays the ReduceMax's read pass).
 */
async function stateioCase(p: CaseParams): Promise<CaseResult> {
  const probe = new MemoryProbe();
  const t0 = performance.now();
  const { s, params } = traceVit(p.cfg);
  const specs = [...s.registry.specs.values()];
  const state = specs.flatMap((sp) =>
    ['', 'adam.m.', 'adam.v.'].map((kind) => ({ name: `${kind}${sp.name}`, shape: sp.shape })),
  );
  /** One graph over every state tensor; `f` maps an input to its output tensor. */
  const build = async (tag: string, f: (x: Tensor) => Tensor) => {
    const g = new Graph(`state-${tag}`);
    const outs = state.map((st) => g.named(f(g.input(st.name, 'float32', st.shape)), `out.${st.name}`));
    const session = await Session.create(
      toModelProto(g, { outputs: outs }),
      sessionOptions(p, `stateio-${tag}`),
    );
    return { session, outs };
  };
  const identity = await build('identity', (x) => x);
  const addOut = await build('add', (x) => op.add(x, 1));
  const addInternal = await build('add-internal', (x) => op.reduceMax(op.add(x, 1), op.allAxes(x), false));
  const r = lcg(5);
  const feeds: Record<string, HostTensor> = {};
  const into: Record<string, HostTensor> = {};
  for (const st of state) {
    const size = st.shape.reduce((a, b) => a * b, 1);
    feeds[st.name] = f32(
      st.shape,
      Float32Array.from({ length: size }, () => r()),
    );
    into[`out.${st.name}`] = f32(st.shape, new Float32Array(size));
  }
  const outNames = state.map((st) => `out.${st.name}`);
  const setupMs = performance.now() - t0;
  probe.setupDone();
  const timeMs = await timeIt(() => identity.session.run(feeds, outNames, into), timing(p, probe));
  const loop = async (fn: () => Promise<unknown>) => {
    const t: number[] = [];
    for (let i = 0; i < p.warmup + p.repeat; i++) {
      collectGarbage(); // the binding's fresh output buffers from the last run go first
      const t1 = performance.now();
      await fn();
      if (i >= p.warmup) t.push(performance.now() - t1);
    }
    return stats(t).median;
  };
  const fresh = await loop(() => identity.session.run(feeds, outNames));
  const addToOutputs = await loop(() => addOut.session.run(feeds, outNames, into));
  const internal = await loop(() => addInternal.session.run(feeds, outNames));
  const copy = await loop(async () => {
    for (const st of state)
      (into[`out.${st.name}`]!.data as Float32Array).set(feeds[st.name]!.data as Float32Array);
  });
  for (const x of [identity, addOut, addInternal]) await x.session.dispose();
  return {
    timeMs,
    setupMs,
    memory: probe.report(),
    macs: 0,
    params,
    extra: {
      tensors: state.length,
      stateMiB: (3 * params * 4) / 2 ** 20,
      freshOutputsMedianMs: fresh,
      addToOutputsMedianMs: addToOutputs,
      addInternalMedianMs: internal,
      jsCopyMedianMs: copy,
    },
  };
}

export const cases: Record<CaseName, (p: CaseParams) => Promise<CaseResult>> = {
  matmul: matmulCase,
  forward: forwardCase,
  fwdbwd: fwdbwdCase,
  train: trainCase,
  stateio: stateioCase,
};

// ---------- the PyTorch peer ----------

function peerArgs(c: CaseName, p: CaseParams): string[] {
  const v = p.cfg;
  const common = ['--case', c, '--threads', String(p.threads)];
  if (c === 'matmul')
    return [
      ...common,
      '--n',
      String(p.matmulN),
      '--warmup',
      String(Math.max(3, p.warmup)),
      '--repeat',
      String(Math.max(10, p.repeat)),
    ];
  return [
    ...common,
    ...[
      '--warmup',
      p.warmup,
      '--repeat',
      p.repeat,
      '--image',
      v.image,
      '--patch',
      v.patch,
      '--dim',
      v.dim,
      '--depth',
      v.depth,
    ],
    ...['--heads', v.heads, '--mlp-dim', v.mlpDim, '--batch', v.batch],
  ].map(String);
}

// ---------- the report ----------

interface Row {
  refseg: CaseResult | null;
  pytorch: PeerResult | null;
  /** 1-minute load average of the machine when each side's case started and ended. */
  loadAvg: { refseg: [number, number]; pytorch: [number, number] | null };
}

function configFrom(args: BenchArgs): {
  cfg: VitConfig;
  cases: CaseName[];
  peer: boolean;
  dumpDir: string | null;
} {
  const cfg: VitConfig = { ...(args.quick ? VIT_QUICK : VIT_B16_480) };
  let cases: CaseName[] = [...ALL_CASES];
  let peer = true;
  let dumpDir: string | null = null;
  const rest = [...args.rest];
  while (rest.length) {
    const f = rest.shift()!;
    const int = () => {
      const n = Number(rest.shift());
      if (!Number.isInteger(n) || n < 1) throw new Error(`${f} needs a positive integer`);
      return n;
    };
    if (f === '--image') cfg.image = int();
    else if (f === '--batch') cfg.batch = int();
    else if (f === '--depth') cfg.depth = int();
    else if (f === '--no-peer') peer = false;
    else if (f === '--dump') dumpDir = rest.shift() ?? null;
    else if (f === '--cases') {
      const list = (rest.shift() ?? '').split(',').filter(Boolean);
      for (const c of list)
        if (!(ALL_CASES as readonly string[]).includes(c))
          throw new Error(`unknown case '${c}' (have ${ALL_CASES.join(', ')})`);
      cases = list as CaseName[];
    } else throw new Error(`engine: unknown flag '${f}'\n\n${usage}`);
  }
  if (cfg.image % cfg.patch !== 0) throw new Error(`--image must be a multiple of ${cfg.patch}`);
  return { cfg, cases, peer, dumpDir };
}

export async function run(args: BenchArgs): Promise<number> {
  const { cfg, cases: selected, peer: wantPeer, dumpDir } = configFrom(args);
  const machine: MachineInfo = machineInfo();
  const threads = args.threads ?? machine.physicalCores ?? machine.logicalCpus;
  const p: CaseParams = {
    cfg,
    threads,
    warmup: args.warmup ?? 1,
    repeat: args.repeat ?? 3,
    matmulN: args.quick ? 512 : 2048,
    dumpDir,
  };
  const log = (m: string) => process.stderr.write(`engine: ${m}\n`);

  const { torch, note: peerNote } = torchPeer(wantPeer);
  if (peerNote) log(peerNote);

  // Each case runs on both sides back to back (refseg, then PyTorch), so that a change in the
  // machine's load during the run hits both sides of a ratio alike.
  const rows: Partial<Record<CaseName, Row>> = {};
  const moduleUrl = import.meta.url;
  const load = () => loadavg()[0]!;
  const env = torchThreadEnv(threads);
  const script = torch ? peerScript('vit_torch.py') : null;
  for (const c of selected) {
    log(`refseg ${c} …`);
    const t = performance.now();
    const l0 = load();
    const r = await runIsolated<CaseResult>(moduleUrl, c, p);
    const row: Row = { refseg: r.result, pytorch: null, loadAvg: { refseg: [l0, load()], pytorch: null } };
    rows[c] = row;
    log(
      `refseg ${c}: median ${fmt(r.result.timeMs.median)} ms (case took ${fmt((performance.now() - t) / 1000)} s)`,
    );
    if (torch && script && PEER_CASES.has(c)) {
      log(`PyTorch ${c} …`);
      const l1 = load();
      row.pytorch = await runPythonJson<PeerResult>(torch.python, script, peerArgs(c, p), env);
      row.loadAvg.pytorch = [l1, load()];
      log(`PyTorch ${c}: median ${fmt(row.pytorch.timeMs.median)} ms`);
    }
  }
  // Contention check (stateio is a copy, mostly on one thread: not a compute case).
  const cont = contention(
    Object.values(rows).flatMap((r) => [...r!.loadAvg.refseg, ...(r!.loadAvg.pytorch ?? [])]),
    (Object.keys(rows) as CaseName[])
      .filter((c) => c !== 'stateio')
      .flatMap((c) =>
        [rows[c]!.refseg?.timeMs.cpuPerWall, rows[c]!.pytorch?.timeMs.cpuPerWall].filter(
          (x): x is number => x !== undefined,
        ),
      ),
    threads,
    machine,
  );
  if (cont.note) log(cont.note);

  // Derived numbers.
  const med = (c: CaseName, side: 'refseg' | 'pytorch') => rows[c]?.[side]?.timeMs.median;
  const refMacs = (c: CaseName) => rows[c]?.refseg?.macs;
  const derived = Object.fromEntries(
    (Object.keys(rows) as CaseName[]).map((c) => {
      const row = rows[c]!;
      const macs = refMacs(c) ?? row.pytorch?.macs;
      return [
        c,
        {
          refsegGflopPerS: c === 'stateio' ? null : gflops(macs, med(c, 'refseg')),
          pytorchGflopPerS:
            c === 'stateio' ? null : gflops(c === 'matmul' ? row.pytorch?.macs : macs, med(c, 'pytorch')),
          timeRatio: ratio(med(c, 'refseg'), med(c, 'pytorch')),
          processPeakRatio: ratio(row.refseg?.memory.processPeakRssMiB, row.pytorch?.processPeakRssMiB),
          runPeakRatio: ratio(row.refseg?.memory.runPeakRssMiB, row.pytorch?.runPeakRssMiB),
        },
      ];
    }),
  ) as Partial<
    Record<
      CaseName,
      {
        refsegGflopPerS: number | null;
        pytorchGflopPerS: number | null;
        timeRatio: number | null;
        processPeakRatio: number | null;
        runPeakRatio: number | null;
      }
    >
  >;

  const stepMs = med('train', 'refseg');
  const fwdbwdMs = med('fwdbwd', 'refseg');
  const stateio = rows.stateio?.refseg;
  const roundTrip = {
    stepMinusFwdBwdMs: stepMs != null && fwdbwdMs != null ? stepMs - fwdbwdMs : null,
    identityPreallocatedMs: stateio?.timeMs.median ?? null,
    identityFreshMs: stateio?.extra?.freshOutputsMedianMs ?? null,
    addToOutputsMs: stateio?.extra?.addToOutputsMedianMs ?? null,
    addInternalMs: stateio?.extra?.addInternalMedianMs ?? null,
    receiveOverheadMs:
      stateio?.extra?.addToOutputsMedianMs != null && stateio.extra.addInternalMedianMs != null
        ? stateio.extra.addToOutputsMedianMs - stateio.extra.addInternalMedianMs
        : null,
    jsCopyMs: stateio?.extra?.jsCopyMedianMs ?? null,
    stateMiB: stateio?.extra?.stateMiB ?? null,
    stateTensors: stateio?.extra?.tensors ?? null,
  };

  const ceiling = matmulCeiling(
    derived.matmul?.refsegGflopPerS ?? null,
    derived.matmul?.pytorchGflopPerS ?? null,
  );
  const { onnxruntime: ortMatmulRate, best: matmulRate, bestFrom: matmulSource } = ceiling;
  const fwdRate = derived.forward?.refsegGflopPerS ?? null;
  const targets = [
    target(
      'forward time ≤ 0.6 × PyTorch',
      derived.forward?.timeRatio ?? null,
      TARGETS.forwardTimeRatio,
      false,
    ),
    target(
      "forward ≥ 70% of the machine's best measured matmul GFLOP/s",
      ratio(fwdRate, matmulRate),
      TARGETS.forwardMatmulFraction,
      true,
    ),
    target(
      'training step time ≤ 1.0 × PyTorch',
      derived.train?.timeRatio ?? null,
      TARGETS.trainTimeRatio,
      false,
    ),
    target(
      'training step peak RSS ≤ 1.2 × PyTorch',
      derived.train?.processPeakRatio ?? null,
      TARGETS.trainPeakRatio,
      false,
    ),
  ];

  const peerInfo = Object.values(rows).find((r) => r?.pytorch)?.pytorch ?? null;
  const params = rows.forward?.refseg?.params ?? rows.train?.refseg?.params ?? null;
  const report = {
    benchmark: 'engine',
    model: { ...cfg, tokens: tokensOf(cfg), params, forwardMacs: rows.forward?.refseg?.macs ?? null },
    timing: { warmup: p.warmup, repeat: p.repeat, statistic: 'median of repeats (min, p95 alongside)' },
    machine,
    contention: cont,
    threads: {
      onnxruntime: { intraOp: threads, interOp: 1 },
      pytorch: peerInfo
        ? {
            intraOp: peerInfo.threads,
            interOp: peerInfo.interopThreads,
            env: Object.entries(env)
              .map(([k, v]) => `${k}=${v}`)
              .join(' '),
          }
        : null,
    },
    peer:
      torch && peerInfo
        ? { name: 'PyTorch eager', python: torch.python, torch: peerInfo.torch, blas: peerInfo.blas }
        : { skipped: peerNote },
    conventions: {
      gflopPerS:
        '2 × MACs / median time; MACs from countMacs on the traced forward graph; fwdbwd and train count 3 × forward MACs (AdamW not counted)',
      peakRss:
        'processPeakRssMiB: whole child process (VmHWM / ru_maxrss); runPeakRssMiB: timed repeats only (peak mark reset after warmup)',
      cpuPerWall:
        'process CPU time (all threads) / wall time over the timed repeats: ≈ busy threads when alone on the machine',
      stateRoundTrip:
        'stepMinusFwdBwdMs = train − fwdbwd medians (gradients out of ORT + host AdamW); identity*: Identity graph over params + m + v; receiveOverheadMs = (x+1 to graph outputs) − (x+1 kept inside ORT)',
    },
    results: Object.fromEntries(
      Object.entries(rows).map(([c, r]) => [c, { ...r, derived: derived[c as CaseName] }]),
    ),
    stateRoundTrip: roundTrip,
    matmulRateGflopPerS: ceiling,
    forwardFractionOfMatmul: {
      ofBest: ratio(fwdRate, matmulRate),
      ofOnnxRuntime: ratio(fwdRate, ortMatmulRate),
    },
    targets,
    targetsApply: !args.quick,
  };

  if (args.json) {
    console.log(JSON.stringify(report, null, 2));
    return 0;
  }

  const out: string[] = [];
  const tok = tokensOf(cfg);
  out.push(
    `refseg engine benchmark — ${cfg.name}: ${cfg.image}×${cfg.image} (${tok} tokens), batch ${cfg.batch}, ${cfg.depth} blocks, d ${cfg.dim}, ${cfg.heads} heads, MLP ${cfg.mlpDim}${params ? `, ${(params / 1e6).toFixed(1)} M params` : ''}`,
  );
  out.push(
    `machine: ${machine.cpuModel}, ${machine.logicalCpus} logical CPUs (${machine.physicalCores ?? '?'} cores), ${machine.memoryGiB.toFixed(0)} GiB; Node ${machine.node}`,
  );
  out.push(
    `refseg:  onnxruntime-node ${machine.onnxruntimeNode ?? '?'} (CPU EP), intra-op threads ${threads}, inter-op 1, graph optimization 'all'`,
  );
  out.push(
    peerInfo && torch
      ? `PyTorch: ${peerInfo.torch} eager (${torch.python}, Python ${peerInfo.python}, BLAS ${peerInfo.blas}), set_num_threads(${peerInfo.threads}), interop ${peerInfo.interopThreads}, OMP/OPENBLAS_NUM_THREADS=${threads}`
      : (peerNote ?? 'PyTorch peer: no result'),
  );
  out.push(
    `timing: warmup ${p.warmup}, repeat ${p.repeat} (matmul ≥ 3/10); times are medians in ms; each case in its own process`,
  );
  out.push('');
  const label: Record<CaseName, string> = {
    matmul: `matmul ${p.matmulN}³`,
    forward: 'forward (inference)',
    fwdbwd: 'forward+backward',
    train: 'training step (+AdamW)',
    stateio: 'state I/O (Identity)',
  };
  const caseRows = (Object.keys(rows) as CaseName[]).map((c) => {
    const r = rows[c]!;
    const d = derived[c]!;
    const range = (s: Stats | undefined) =>
      s ? `${fmt(s.median, 0)} (${fmt(s.min, 0)}–${fmt(s.p95, 0)})` : '–';
    return [
      label[c],
      range(r.refseg?.timeMs),
      range(r.pytorch?.timeMs),
      fmt(d.timeRatio, 2),
      fmt(d.refsegGflopPerS, 1),
      fmt(d.pytorchGflopPerS, 1),
      fmt(r.refseg?.memory.processPeakRssMiB, 0),
      fmt(r.pytorch?.processPeakRssMiB, 0),
      fmt(d.processPeakRatio, 2),
      `${fmt(r.refseg?.memory.runPeakRssMiB, 0)} / ${fmt(r.pytorch?.runPeakRssMiB, 0)}`,
      `${fmt(r.refseg?.timeMs.cpuPerWall, 2)} / ${fmt(r.pytorch?.timeMs.cpuPerWall, 2)}`,
    ];
  });
  out.push(
    table(
      [
        'case',
        'refseg ms (min–p95)',
        'PyTorch ms (min–p95)',
        'ratio',
        'refseg GFLOP/s',
        'PyTorch GFLOP/s',
        'refseg peak MiB',
        'PyTorch peak MiB',
        'peak ratio',
        'run peak MiB r/P',
        'CPU/wall r/P',
      ],
      caseRows,
    ),
  );
  out.push('');
  out.push(
    'GFLOP/s = 2 × MACs / median time; forward+backward and training step count 3 × forward MACs (AdamW not counted).',
  );
  out.push(
    'peak = whole child process (VmHWM / ru_maxrss, incl. setup); run peak = timed repeats only (mark reset after warmup).',
  );
  out.push(
    `CPU/wall = process CPU time of all threads / wall time while timed (≈ ${threads} when alone on the machine).`,
  );
  if (rows.forward?.refseg) {
    const f = rows.forward.refseg;
    const pct = (x: number | null) => fmt((x ?? NaN) * 100, 0);
    out.push(
      `forward MACs ${(f.macs / 1e9).toFixed(2)} G (countMacs); refseg forward ${fmt(fwdRate)} GFLOP/s = ${pct(ratio(fwdRate, matmulRate))}% of the best ${p.matmulN}³ matmul rate measured (${fmt(matmulRate)} GFLOP/s, ${matmulSource ?? '?'}), ${pct(ratio(fwdRate, ortMatmulRate))}% of ORT's own`,
    );
  }
  if (rows.train?.refseg?.extra) {
    const e = rows.train.refseg.extra;
    out.push(
      `training step graph: ${((e.stepGraphMacs ?? 0) / 1e9).toFixed(2)} G MACs counted over all its nodes (vs 3 × forward = ${((rows.train.refseg.macs ?? 0) / 1e9).toFixed(2)} G)`,
    );
  }
  out.push('');
  out.push(
    `state round trip through ORT (what an update inside the graph would pay per step): parameters + AdamW moments, ${roundTrip.stateTensors ?? '?'} tensors, ${fmt(roundTrip.stateMiB, 0)} MiB in and out:`,
  );
  const rt = (label: string, v: number | null) =>
    out.push(`  ${label.padEnd(76)} ${fmt(v, 0).padStart(6)} ms`);
  rt('training step − forward+backward (gradients out + host AdamW in place)', roundTrip.stepMinusFwdBwdMs);
  rt('Identity graph, outputs pre-allocated', roundTrip.identityPreallocatedMs);
  rt('Identity graph, fresh outputs', roundTrip.identityFreshMs);
  rt('x + 1 over the state, written to graph outputs (pre-allocated)', roundTrip.addToOutputsMs);
  rt('x + 1 over the state, kept inside ORT (only a ReduceMax of it leaves)', roundTrip.addInternalMs);
  rt('  → receiving the state (difference of the two lines above)', roundTrip.receiveOverheadMs);
  rt('TypedArray.set of the same bytes (memcpy floor)', roundTrip.jsCopyMs);
  out.push('');
  out.push(
    `targets (design.md §4${args.quick ? '; --quick sizes: indicative only, the targets are for ViT-B/16 at 480×480' : ''}):`,
  );
  for (const t of targets)
    out.push(
      `  ${t.status.padEnd(4)}  ${t.name}: ${t.value === null ? 'not measured' : t.value.toFixed(2)} (limit ${t.limit})`,
    );
  if (peerNote) out.push(`\n${peerNote}`);
  if (cont.note) out.push(`\n${cont.note}`);
  console.log(out.join('\n'));
  return 0;
}
