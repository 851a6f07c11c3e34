// `npm run bench -- restr`: the ReSTR inference acceptance benchmark (design.md §4).
//
// restr-b16 (the paper configuration) forward at 480×480, batch 1, on 2 intra-op threads, timed on
// ONNX Runtime CPU and on PyTorch eager (bench/peers/restr_torch.py, which runs the spec's plain
// re-implementation scripts/golden/restr.py) in the same run, each case in its own process so its
// peak RSS is its own. Cases:
//   matmul  the machine's single-precision matmul rate: bench engine's matmul case (ORT MLAS) and
//           its PyTorch peer (vit_torch.py --case matmul), reused as they are
//   full    the whole inference graph: image + words → mask_logits, patch_logits
//   image   the split export's image part: image → v (runs once per image)
//   text    the split export's text part: v + words → mask_logits, patch_logits (once per expression)
// Graphs are traced at a fixed batch (as the segmenter's), parameters from initModel (fixed seed)
// as initializers, graph optimization 'all'. Inputs: a random image and word ids right-padded to
// per-sample lengths (WORD_FRACTIONS of L). Effective GFLOP/s = 2 × MACs / median time, MACs from
// countMacs on the traced graph of the case (src/graph/cost.ts, the count `refseg inspect` shows).

import { loadavg } from 'node:os';
import { countMacs } from '../src/graph/cost.js';
import { toModelProto } from '../src/graph/onnx.js';
import {
  type BuiltGraph,
  buildImagePart,
  buildInference,
  buildTextPart,
  initModel,
} from '../src/models/build.js';
import { inspectModel } from '../src/models/inspect.js';
import { resolveConfig } from '../src/models/registry.js';
import type { RestrConfig } from '../src/models/restr/config.js';
import { restrModel } from '../src/models/restr/model.js';
import { countParams } from '../src/nn/params.js';
import { type HostTensor, Session } from '../src/runtime/session.js';
import type { cases as engineCases } from './engine.js';
import {
  type BenchArgs,
  type CaseResult,
  MemoryProbe,
  type PeerResult,
  type TimedStats,
  contention,
  matmulCeiling,
  torchPeer,
  fmt,
  gflops,
  machineInfo,
  peerScript,
  quantile,
  ratio,
  runIsolated,
  runPythonJson,
  table,
  target,
  timeIt,
  torchThreadEnv,
} from './util.js';
import { lcg } from './vit.js';

export const usage = `ReSTR flags:
  --preset NAME  a ReSTR preset or a config .json (default restr-b16; --quick restr-tiny)
  --image S      image side in pixels (default 480; --quick: the preset's own)
  --batch B      images (one expression each) per run (default 1)
  --set K=V      config override, as refseg's --set (repeatable)
  --cases LIST   comma-separated subset of matmul,full,image,text (default all)
  --seed N       parameter and input seed (default 1)
  --no-peer      skip the PyTorch peer
  --dump DIR     write ONNX Runtime's optimized graph of each case to DIR/restr-<case>.onnx
Defaults: --threads 2, --warmup 2, --repeat 10.`;

const ALL_CASES = ['matmul', 'full', 'image', 'text'] as const;
type CaseName = (typeof ALL_CASES)[number];
type ModelCase = Exclude<CaseName, 'matmul'>;

const TARGETS = { forwardTimeRatio: 0.6, forwardMatmulFraction: 0.7 };
/** Non-padding words per sample as a fraction of L (cycled over the batch): 12, 7, 17, 4 of 20. */
const WORD_FRACTIONS = [0.6, 0.35, 0.85, 0.2];

// ---------- cases (run in a child process by bench/worker.ts) ----------

interface CaseParams {
  config: RestrConfig;
  batch: number;
  threads: number;
  warmup: number;
  repeat: number;
  seed: number;
  dumpDir: string | null;
}

export function wordsPerSample(c: RestrConfig, batch: number): number[] {
  const L = c.language.maxWords;
  return Array.from({ length: batch }, (_, b) =>
    Math.max(1, Math.min(L, Math.round(WORD_FRACTIONS[b % WORD_FRACTIONS.length]! * L))),
  );
}

function buildCase(name: ModelCase, c: RestrConfig, batch: number): BuiltGraph {
  if (name === 'full') return buildInference(restrModel, c, batch);
  return name === 'image' ? buildImagePart(restrModel, c, batch) : buildTextPart(restrModel, c, batch);
}

/** Random feeds for a graph's inputs: floats in [-1, 1), word ids right-padded per sample. */
function randomFeeds(
  built: BuiltGraph,
  c: RestrConfig,
  batch: number,
  seed: number,
): Record<string, HostTensor> {
  const r = lcg(seed + 1000);
  const feeds: Record<string, HostTensor> = {};
  for (const t of built.inputs) {
    const shape = t.shape.map(Number);
    const size = shape.reduce((a, b) => a * b, 1);
    if (t.dtype === 'int64') {
      const L = shape[1]!;
      const ids = new BigInt64Array(size); // 0 = padding
      const V = c.language.vocabSize;
      wordsPerSample(c, batch).forEach((n, b) => {
        for (let i = 0; i < n; i++) ids[b * L + i] = BigInt(2 + Math.floor(r() * (V - 2))); // 0 <pad>, 1 <unk>
      });
      feeds[t.name] = { dtype: 'int64', shape, data: ids };
    } else {
      feeds[t.name] = {
        dtype: 'float32',
        shape,
        data: Float32Array.from({ length: size }, () => r() * 2 - 1),
      };
    }
  }
  return feeds;
}

async function modelCase(name: ModelCase, p: CaseParams): Promise<CaseResult> {
  const probe = new MemoryProbe();
  const t0 = performance.now();
  const c = p.config;
  const built = buildCase(name, c, p.batch);
  const macs = countMacs(built.outputs);
  const params = countParams(built.registry.specs.values());
  let values: Map<string, Float32Array> | null = initModel(restrModel, c, p.seed);
  let model: Uint8Array | null = toModelProto(built.graph, { outputs: built.outputs, paramValues: values });
  values = null; // ORT holds its own copy of the initializers from here on
  const session = await Session.create(model, {
    threads: p.threads,
    optimization: 'all',
    ...(p.dumpDir ? { optimizedModelPath: `${p.dumpDir}/restr-${name}.onnx` } : {}),
  });
  model = null;
  const feeds = randomFeeds(built, c, p.batch, p.seed);
  const outNames = built.outputs.map((t) => t.name);
  const into: Record<string, HostTensor> = {};
  for (const t of built.outputs) {
    const shape = t.shape.map(Number);
    into[t.name] = { dtype: 'float32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) };
  }
  const setupMs = performance.now() - t0;
  probe.setupDone();
  const timeMs = await timeIt(() => session.run(feeds, outNames, into), {
    warmup: p.warmup,
    repeat: p.repeat,
    beforeTimed: () => probe.timedStart(),
  });
  const first = into[outNames[0]!]!.data as Float32Array;
  if (!first.every(Number.isFinite)) throw new Error(`restr ${name}: non-finite output '${outNames[0]}'`);
  await session.dispose();
  return { timeMs, setupMs, memory: probe.report(), macs, params };
}

export const cases: Record<ModelCase, (p: CaseParams) => Promise<CaseResult>> = {
  full: (p) => modelCase('full', p),
  image: (p) => modelCase('image', p),
  text: (p) => modelCase('text', p),
};

// ---------- the run ----------

type EngineMatmulParams = Parameters<(typeof engineCases)['matmul']>[0];

interface Row {
  refseg: CaseResult | null;
  pytorch: PeerResult | null;
  /** 1-minute load average of the machine when each side's case started and ended. */
  loadAvg: { refseg: [number, number]; pytorch: [number, number] | null };
}

function configFrom(args: BenchArgs) {
  let preset = args.quick ? 'restr-tiny' : 'restr-b16';
  let image: number | null = args.quick ? null : 480;
  let batch = 1;
  let seed = 1;
  let peer = true;
  let dumpDir: string | null = null;
  let selected: CaseName[] = [...ALL_CASES];
  const sets: string[] = [];
  const rest = [...args.rest];
  while (rest.length) {
    const f = rest.shift()!;
    const value = () => {
      const v = rest.shift();
      if (v === undefined) throw new Error(`${f} needs a value`);
      return v;
    };
    const int = (min: number) => {
      const v = value();
      const n = Number(v);
      if (!Number.isInteger(n) || n < min) throw new Error(`${f} needs an integer ≥ ${min}, got '${v}'`);
      return n;
    };
    if (f === '--preset') preset = value();
    else if (f === '--image') image = int(1);
    else if (f === '--batch') batch = int(1);
    else if (f === '--seed') seed = int(0);
    else if (f === '--set') sets.push(value());
    else if (f === '--no-peer') peer = false;
    else if (f === '--dump') dumpDir = value();
    else if (f === '--cases') {
      const list = value().split(',').filter(Boolean);
      for (const c of list)
        if (!(ALL_CASES as readonly string[]).includes(c))
          throw new Error(`unknown case '${c}' (have ${ALL_CASES.join(', ')})`);
      selected = list as CaseName[];
    } else throw new Error(`restr: unknown flag '${f}'\n\n${usage}`);
  }
  if (image !== null) sets.unshift(`imageSize=${image}`);
  const resolved = resolveConfig(preset, sets);
  if (resolved.def.kind !== 'restr')
    throw new Error(`restr: '${preset}' is a ${resolved.def.kind} config, not ReSTR`);
  return { preset, config: resolved.config as RestrConfig, batch, seed, peer, dumpDir, selected };
}

export async function run(args: BenchArgs): Promise<number> {
  const o = configFrom(args);
  const c = o.config;
  const machine = machineInfo();
  const threads = args.threads ?? 2;
  const p: CaseParams = {
    config: c,
    batch: o.batch,
    threads,
    warmup: args.warmup ?? 2,
    repeat: args.repeat ?? 10,
    seed: o.seed,
    dumpDir: o.dumpDir,
  };
  const matmulN = args.quick ? 512 : 2048;
  const log = (m: string) => process.stderr.write(`restr: ${m}\n`);

  const { torch, note: peerNote } = torchPeer(o.peer);
  if (peerNote) log(peerNote);

  // Each case runs on both sides back to back (refseg, then PyTorch), so that a change in the
  // machine's load during the run hits both sides of a ratio alike.
  const rows: Partial<Record<CaseName, Row>> = {};
  const load = () => loadavg()[0]!;
  const env = torchThreadEnv(threads);
  const words = wordsPerSample(c, o.batch);
  for (const name of o.selected) {
    log(`refseg ${name} …`);
    const t = performance.now();
    const l0 = load();
    let refseg: CaseResult;
    if (name === 'matmul') {
      // bench engine's own matmul case (A single matmul is short: engine runs ≥ 3 warmups, ≥ 10 repeats.)
      const mp: EngineMatmulParams = {
        cfg: { name: 'unused', image: 16, patch: 16, dim: 1, depth: 0, heads: 1, mlpDim: 1, batch: 1 },
        threads,
        warmup: p.warmup,
        repeat: p.repeat,
        matmulN,
        dumpDir: null,
      };
      refseg = (await runIsolated<CaseResult>(new URL('./engine.js', import.meta.url).href, 'matmul', mp))
        .result;
    } else refseg = (await runIsolated<CaseResult>(import.meta.url, name, p)).result;
    const row: Row = { refseg, pytorch: null, loadAvg: { refseg: [l0, load()], pytorch: null } };
    rows[name] = row;
    log(
      `refseg ${name}: median ${fmt(refseg.timeMs.median)} ms (case took ${fmt((performance.now() - t) / 1000)} s)`,
    );
    if (!torch || (name !== 'matmul' && name !== 'full')) continue;
    log(`PyTorch ${name} …`);
    const l1 = load();
    row.pytorch =
      name === 'matmul'
        ? await runPythonJson<PeerResult>(
            torch.python,
            peerScript('vit_torch.py'),
            ['--case', 'matmul', '--threads', threads, '--n', matmulN]
              .concat(['--warmup', Math.max(3, p.warmup), '--repeat', Math.max(10, p.repeat)])
              .map(String),
            env,
          )
        : await runPythonJson<PeerResult>(
            torch.python,
            peerScript('restr_torch.py'),
            ['--config-json', JSON.stringify(c), '--threads', String(threads), '--batch', String(o.batch)]
              .concat(['--warmup', String(p.warmup), '--repeat', String(p.repeat)])
              .concat(['--words', words.join(','), '--seed', String(o.seed)]),
            env,
          );
    row.loadAvg.pytorch = [l1, load()];
    log(`PyTorch ${name}: median ${fmt(row.pytorch.timeMs.median)} ms`);
  }

  // ---------- derived numbers ----------
  const cont = contention(
    Object.values(rows).flatMap((r) => [...r!.loadAvg.refseg, ...(r!.loadAvg.pytorch ?? [])]),
    Object.values(rows).flatMap((r) =>
      [r!.refseg?.timeMs.cpuPerWall, r!.pytorch?.timeMs.cpuPerWall].filter(
        (x): x is number => x !== undefined,
      ),
    ),
    threads,
    machine,
  );
  if (cont.note) log(cont.note);

  const latency = (s: TimedStats | undefined) =>
    s ? { median: s.median, p10: quantile(s.samples, 0.1), p90: quantile(s.samples, 0.9), min: s.min } : null;
  const med = (name: CaseName, side: 'refseg' | 'pytorch') => rows[name]?.[side]?.timeMs.median;
  const fullMacs = rows.full?.refseg?.macs ?? null;
  const derived = Object.fromEntries(
    (Object.keys(rows) as CaseName[]).map((name) => {
      const r = rows[name]!;
      const macs = r.refseg?.macs ?? null;
      const peerMacs = name === 'matmul' ? (r.pytorch?.macs ?? null) : macs; // same config, same work
      return [
        name,
        {
          refsegLatencyMs: latency(r.refseg?.timeMs),
          pytorchLatencyMs: latency(r.pytorch?.timeMs),
          refsegGflopPerS: gflops(macs, med(name, 'refseg')),
          pytorchGflopPerS: gflops(peerMacs, med(name, 'pytorch')),
          /** Runs per second × batch: images/s (full, image) or expressions/s (text). */
          refsegItemsPerS: name === 'matmul' ? null : ratio(1000 * o.batch, med(name, 'refseg')),
          pytorchItemsPerS: name === 'matmul' ? null : ratio(1000 * o.batch, med(name, 'pytorch')),
          timeRatio: ratio(med(name, 'refseg'), med(name, 'pytorch')),
          processPeakRatio: ratio(r.refseg?.memory.processPeakRssMiB, r.pytorch?.processPeakRssMiB),
        },
      ];
    }),
  ) as Partial<
    Record<
      CaseName,
      Record<string, unknown> & {
        refsegGflopPerS: number | null;
        pytorchGflopPerS: number | null;
        timeRatio: number | null;
      }
    >
  >;

  const ceiling = matmulCeiling(
    derived.matmul?.refsegGflopPerS ?? null,
    derived.matmul?.pytorchGflopPerS ?? null,
  );
  const { onnxruntime: ortMatmulRate, best: matmulRate, bestFrom: matmulSource } = ceiling;
  const fwdRate = derived.full?.refsegGflopPerS ?? null;
  const targets = [
    target('forward time ≤ 0.6 × PyTorch', derived.full?.timeRatio ?? null, TARGETS.forwardTimeRatio, false),
    target(
      "forward ≥ 70% of the machine's best measured matmul GFLOP/s",
      ratio(fwdRate, matmulRate),
      TARGETS.forwardMatmulFraction,
      true,
    ),
  ];

  // MACs per part of the model (inspect's scopes: vision, language, fusion, decoder), at this batch.
  const inspected = inspectModel(restrModel, c);
  const macsByPart = inspected.rows.map((r) => ({ name: r.name, macs: r.macs * o.batch, sub: r.sub }));
  const peerFull = rows.full?.pytorch ?? null;
  const peerInfo = Object.values(rows).find((r) => r?.pytorch)?.pytorch ?? null;
  const refParams = rows.full?.refseg?.params ?? null;
  const paramNote =
    peerFull?.params != null && refParams != null && peerFull.params !== refParams
      ? `note: parameter counts differ (refseg ${refParams}, PyTorch ${peerFull.params})`
      : null;
  if (paramNote) log(paramNote);

  const report = {
    benchmark: 'restr',
    model: {
      preset: o.preset,
      config: c,
      imageSize: c.imageSize,
      batch: o.batch,
      wordsPerSample: words,
      params: refParams,
      macs: {
        full: fullMacs,
        image: rows.image?.refseg?.macs ?? null,
        text: rows.text?.refseg?.macs ?? null,
        byPart: macsByPart,
      },
    },
    timing: {
      warmup: p.warmup,
      repeat: p.repeat,
      statistic: 'median of repeats (p10, p90 alongside); matmul ≥ 3 warmups / 10 repeats',
    },
    machine,
    contention: cont,
    threads: {
      onnxruntime: { intraOp: threads, interOp: 1 },
      pytorch: peerInfo
        ? { intraOp: peerInfo.threads, interOp: peerInfo.interopThreads, env: torchThreadEnv(threads) }
        : null,
    },
    peer:
      torch && peerInfo
        ? {
            name: 'PyTorch eager (scripts/golden/restr.py forward, inference_mode)',
            python: torch.python,
            torch: peerInfo.torch,
            blas: peerInfo.blas,
            params: peerFull?.params ?? null,
          }
        : { skipped: peerNote },
    conventions: {
      gflopPerS:
        '2 × MACs / median time; MACs from countMacs on the traced graph of each case (the PyTorch side is credited the same MACs)',
      itemsPerS: 'batch × 1000 / median ms: images/s for full and image, expressions/s for text',
      peakRss:
        'processPeakRssMiB: whole child process (VmHWM / ru_maxrss, setup included); runPeakRssMiB: timed repeats only',
      cpuPerWall:
        'process CPU time (all threads) / wall time over the timed repeats: ≈ busy threads when alone',
      split: 'image + text = full in MACs; image runs once per image, text once per expression',
    },
    results: Object.fromEntries(
      Object.entries(rows).map(([name, r]) => [name, { ...r, derived: derived[name as CaseName] }]),
    ),
    matmulRateGflopPerS: { n: matmulN, ...ceiling },
    forwardFractionOfMatmul: {
      ofBest: ratio(fwdRate, matmulRate),
      ofOnnxRuntime: ratio(fwdRate, ortMatmulRate),
    },
    targets,
    targetsApply: !args.quick && o.preset === 'restr-b16' && c.imageSize === 480 && o.batch === 1,
  };

  if (args.json) {
    console.log(JSON.stringify(report, null, 2));
    return 0;
  }

  // ---------- the table ----------
  const out: string[] = [];
  const v = c.vision;
  out.push(
    `refseg ReSTR benchmark — ${o.preset}: ${c.imageSize}×${c.imageSize} (${(c.imageSize / c.patchSize) ** 2} patches), batch ${o.batch}, words per sample ${words.join(',')} of ${c.language.maxWords}; ViT d ${v.dim}×${v.depth}, fusion ${c.fusion.variant} d ${c.fusion.dim}×${c.fusion.depth}${refParams ? `, ${(refParams / 1e6).toFixed(1)} M params` : ''}`,
  );
  out.push(
    `machine: ${machine.cpuModel}, ${machine.logicalCpus} logical CPUs (${machine.physicalCores ?? '?'} cores), ${machine.memoryGiB.toFixed(0)} GiB; Node ${machine.node}`,
  );
  out.push(
    `refseg:  onnxruntime-node ${machine.onnxruntimeNode ?? '?'} (CPU EP), intra-op threads ${threads}, inter-op 1, graph optimization 'all', fixed batch`,
  );
  out.push(
    peerInfo && torch
      ? `PyTorch: ${peerInfo.torch} eager (${torch.python}, Python ${peerInfo.python}, BLAS ${peerInfo.blas}), scripts/golden/restr.py forward under inference_mode, set_num_threads(${peerInfo.threads}), interop ${peerInfo.interopThreads}`
      : (peerNote ?? 'PyTorch peer: no result'),
  );
  out.push(
    `timing: warmup ${p.warmup}, repeat ${p.repeat}; ms as median (p10–p90); each case in its own process`,
  );
  out.push('');
  const label: Record<CaseName, string> = {
    matmul: `matmul ${matmulN}³`,
    full: 'forward (full)',
    image: '  image part (once per image)',
    text: '  text part (once per expression)',
  };
  const range = (s: TimedStats | undefined) =>
    s ? `${fmt(s.median, 1)} (${fmt(quantile(s.samples, 0.1), 1)}–${fmt(quantile(s.samples, 0.9), 1)})` : '–';
  const caseRows = (Object.keys(rows) as CaseName[]).map((name) => {
    const r = rows[name]!;
    const d = derived[name]!;
    return [
      label[name],
      fmt((r.refseg?.macs ?? NaN) / 1e9, 2),
      range(r.refseg?.timeMs),
      range(r.pytorch?.timeMs),
      fmt(d.timeRatio, 2),
      fmt(d.refsegGflopPerS, 1),
      fmt(d.pytorchGflopPerS, 1),
      fmt(d.refsegItemsPerS as number | null, 2),
      `${fmt(r.refseg?.memory.processPeakRssMiB, 0)} / ${fmt(r.pytorch?.processPeakRssMiB, 0)}`,
      `${fmt(r.refseg?.memory.runPeakRssMiB, 0)} / ${fmt(r.pytorch?.runPeakRssMiB, 0)}`,
      `${fmt(r.refseg?.timeMs.cpuPerWall, 2)} / ${fmt(r.pytorch?.timeMs.cpuPerWall, 2)}`,
    ];
  });
  out.push(
    table(
      [
        'case',
        'GMACs',
        'refseg ms',
        'PyTorch ms',
        'ratio',
        'refseg GFLOP/s',
        'PyTorch GFLOP/s',
        'refseg /s',
        'peak MiB r/P',
        'run peak MiB r/P',
        'CPU/wall r/P',
      ],
      caseRows,
    ),
  );
  out.push('');
  out.push(
    `MACs by part (refseg inspect's scopes, batch ${o.batch}): ${macsByPart
      .map(
        (r) => `${r.sub ? ' (of which ' : ', '}${r.name} ${(r.macs / 1e9).toFixed(2)} G${r.sub ? ')' : ''}`,
      )
      .join('')
      .slice(2)}`,
  );
  out.push(
    "GFLOP/s = 2 × MACs / median time (both sides credited refseg's MAC count); /s = images/s (full, image) or expressions/s (text).",
  );
  out.push(
    'peak = whole child process (VmHWM / ru_maxrss, incl. setup); run peak = timed repeats only (mark reset after warmup).',
  );
  if (fwdRate !== null && matmulRate !== null)
    out.push(
      `refseg forward ${fmt(fwdRate)} GFLOP/s = ${fmt((ratio(fwdRate, matmulRate) ?? NaN) * 100, 0)}% of the best ${matmulN}³ matmul rate measured (${fmt(matmulRate)} GFLOP/s, ${matmulSource ?? 'not measured'}), ${fmt((ratio(fwdRate, ortMatmulRate) ?? NaN) * 100, 0)}% of ORT's own`,
    );
  out.push('');
  out.push(
    `targets (design.md §4${report.targetsApply ? '' : `; ${o.preset} at ${c.imageSize}, batch ${o.batch}: indicative only, the targets are for restr-b16 at 480×480, batch 1`}):`,
  );
  for (const t of targets)
    out.push(
      `  ${t.status.padEnd(4)}  ${t.name}: ${t.value === null ? 'not measured' : t.value.toFixed(2)} (limit ${t.limit})`,
    );
  if (paramNote) out.push(`\n${paramNote}`);
  if (peerNote) out.push(`\n${peerNote}`);
  if (cont.note) out.push(`\n${cont.note}`);
  console.log(out.join('\n'));
  return 0;
}
