// `refseg train`: the training loop for any registered model (spec/restr.md §5 recipe,
// spec/reliability.md "Training state").
//
// One ONNX graph does forward + loss + backward (step.ts) and AdamW updates the weights in place
// on the host (runner.ts, adamw.ts), or N worker threads share each batch (parallel.ts); this loop
// feeds batches (batch.ts), the learning rate (linear warm-up then poly/cosine decay) and
// host-drawn stochastic-depth scales, validates periodically (oIoU, pointing), and writes
// checkpoints atomically. Everything random is a pure function of (seed, epoch, slot) or
// (seed, step), so the saved step and sampler position are the whole RNG state: N steps + kill +
// resume + N steps equals 2N straight steps.

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BatchSampler, type SamplerState, groupByImage } from '../data/batching.js';
import type { DatasetName } from '../data/datasets.js';
import { imageQueries } from '../data/queries.js';
import { loadRefer } from '../data/refer.js';
import {
  type TextEncoder,
  buildTextEncoder,
  textEncoderFor,
  textEncoderFromCheckpoint,
} from '../data/text.js';
import { Graph, type Tensor } from '../graph/graph.js';
import * as op from '../graph/ops.js';
import { evaluate } from '../eval/evaluate.js';
import { Predictor } from '../infer/predictor.js';
import { writeFileAtomicSync } from '../io/atomic.js';
import { loadSafetensors, saveSafetensorsAtomic } from '../io/safetensors.js';
import type { IoTensor } from '../io/tensor.js';
import { type PosInit, initModel } from '../models/build.js';
import { loadModelCheckpoint, saveModelCheckpoint } from '../models/checkpoint.js';
import type { AnyModelDef, TrainInputs } from '../models/model.js';
import { getPath, setPath } from '../models/overrides.js';
import { resolveConfig, validateConfig } from '../models/registry.js';
import { diceLoss } from '../nn/layers.js';
import { Scope } from '../nn/params.js';
import { Progress } from '../util/progress.js';
import { lineChartPng } from '../util/plot.js';
import { type BatchSource, makeBatch, packSamples } from './batch.js';
import { ParallelRunner } from './parallel.js';
import { type OptimizerState, StepRunner } from './runner.js';
import { type Schedule, type ScheduleKind, learningRate } from './schedule.js';
import { buildTrainStep, stateNames } from './step.js';

export interface TrainOptions {
  /** Preset name or config JSON file (ignored on resume and with `init`: the run's or checkpoint's config is used). */
  config: string;
  sets: string[];
  /** Start from these weights (a model checkpoint, e.g. from `refseg init --vit`). */
  init?: string;
  data: string;
  dataset: DatasetName;
  split: string;
  valSplit: string;
  /** Root of the validation split when it is not `data` (e.g. a fixed benchmark beside a larger generated training set). */
  valData?: string;
  splitBy?: string;
  out: string;
  steps: number;
  batch: number;
  lr: number;
  /** Learning-rate multiplier of the `vision` group (0.1 when the ViT is pretrained). */
  visionLrMult: number;
  /**
   * Weight of a Dice term on the mask added to the model's loss (nn/layers.ts `diceLoss`;
   * Shared-RIS's Eq. 12 term, which ReSTR's loss lacks). 0 or absent: the model's own loss.
   */
  maskDice?: number;
  /**
   * Keep an exponential moving average of the weights with this decay (ema.ts); checkpoints and
   * validation then use the average. 0 or absent: the weights themselves.
   */
  ema?: number;
  /** Add one query per training image from these fields (data/queries.ts `imageQueries`). */
  queries?: readonly string[];
  weightDecay: number;
  warmup: number; // fraction of steps
  schedule: ScheduleKind;
  clipNorm: number | null;
  seed: number;
  /** Initial patch position table when training from scratch (default 'trunc_normal'; build.ts InitOptions). */
  posInit?: PosInit;
  augment: boolean;
  /**
   * Expressions of one image per batch (default 1). With K > 1 a batch holds batch/K images, K
   * expressions each (distinct objects first, data/batching.ts `pickPerImage`); the image half of
   * the model runs once per image (models with a `split` only: ReSTR).
   */
  perImage?: number;
  /**
   * Data-parallel worker threads (default 1: the loop runs the step itself). Each worker runs
   * batch/N expressions with `threads` ONNX Runtime threads (default 1); parallel.ts.
   */
  workers?: number;
  evalEvery: number;
  /** Validate on at most this many expressions (0 = all). */
  evalLimit: number;
  checkpointEvery: number;
  /** Stop after this step as if interrupted (to test resume); 0 = off. */
  stopAt: number;
  /** Consecutive non-finite steps that stop the run. */
  maxNonFinite: number;
  threads?: number;
  resume: boolean;
  quiet: boolean;
}

interface LogLine {
  step: number;
  loss: number;
  lr: number;
  grad_norm: number;
  finite: boolean;
  samples_per_s: number;
  elapsed_s: number;
}

interface RunState {
  format: 'refseg.train/1';
  step: number; // completed loop steps
  t: number; // completed optimizer updates
  sampler: SamplerState;
  options: TrainOptions;
  bestOIoU: number;
  nonFinite: number;
  elapsedS: number;
}

const STATE_FILE = 'train-state.safetensors';
const LOG_FILE = 'log.jsonl';

type LogRecord = Partial<LogLine> & { step: number; val?: { oIoU: number; pointing?: number | null } };

/** The records of a run's log, a line cut short (a process killed while writing it) left out. */
function readLog(path: string): LogRecord[] {
  const records: LogRecord[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    try {
      records.push(JSON.parse(line) as LogRecord);
    } catch {
      // an empty line, or one cut short
    }
  }
  return records;
}

/**
 * A resumed run's log, cut back to its checkpoint: the records of steps after it (a run killed
 * after its last checkpoint logged them; the resumed run logs them again) and a line cut short are
 * dropped, so the log holds each step once.
 */
function trimLog(path: string, step: number): void {
  if (!existsSync(path)) return;
  const kept = readLog(path).filter((r) => r.step <= step);
  writeFileAtomicSync(path, Buffer.from(kept.map((r) => `${JSON.stringify(r)}\n`).join('')));
}

function log(o: TrainOptions, msg: string): void {
  if (!o.quiet) process.stderr.write(`${msg}\n`);
}

/** The training graph: model forward + loss + backward, with host-fed targets and drop-path scales. */
export function buildStep(def: AnyModelDef, config: unknown, o: TrainOptions) {
  const g = new Graph(`${def.kind}.train`);
  const s = Scope.root(g);
  const S = def.imageSize(config);
  const B = o.batch;
  const K = o.perImage ?? 1;
  const image = g.input('image', 'float32', [B / K, 3, S, S]);
  const tokens = g.input(def.tokenInput, 'int64', [B, def.maxTokens(config)]);
  const mask = g.input('target_mask', 'float32', [B, 1, S, S]);
  const extra: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(def.trainTargets(config, B)))
    extra[name] = g.input(name, t.dtype, t.shape);
  const dropPath = new Map<string, { attn: Tensor; mlp: Tensor }>();
  for (const b of def.dropPathBlocks(config)) {
    dropPath.set(b.name, {
      attn: g.input(`droppath.${b.name}.attn`, 'float32', [B, 1, 1]),
      mlp: g.input(`droppath.${b.name}.mlp`, 'float32', [B, 1, 1]),
    });
  }
  const train: TrainInputs = { mask, extra, dropPath };
  const out =
    K === 1
      ? def.forward(s, config, { image, tokens }, train)
      : sharedImageForward(def, s, config, image, tokens, train, K);
  const own = def.loss(config, out, train);
  const loss = o.maskDice ? op.add(own, op.mul(diceLoss(out.maskLogits, mask), o.maskDice)) : own;
  return buildTrainStep({
    registry: s.registry,
    loss,
    adamw: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: o.weightDecay, clipNorm: o.clipNorm },
    lrMult: (group) => (group === 'vision' ? o.visionLrMult : 1),
    ...(out.bufferUpdates ? { bufferUpdates: out.bufferUpdates } : {}),
  });
}

/**
 * The forward pass of a batch that holds K expressions of each image (`perImage`): the image half
 * (`def.split.encodeImage`) runs once per image and its features are repeated K times, row i·K + j
 * serving expression j of image i; the text half runs per expression. The values equal those of a
 * batch that repeats each image K times (test/train/parallel.test.ts), and the gradient of the
 * repeat (Expand) sums the K expressions' gradients into the image's one pass.
 * Drop path in the image half draws once per image: its blocks read the first expression's scale.
 */
function sharedImageForward(
  def: AnyModelDef,
  s: Scope,
  config: unknown,
  image: Tensor,
  tokens: Tensor,
  train: TrainInputs,
  K: number,
) {
  const split = def.split!;
  const perImage = (t: Tensor) =>
    op.reshape(op.slice(op.reshape(t, [-1, K, 1, 1]), [1], [0], [1]), [-1, 1, 1]);
  const imageDrop = new Map(
    [...(train.dropPath ?? new Map<string, { attn: Tensor; mlp: Tensor }>())].map(([name, d]) => [
      name,
      { attn: perImage(d.attn), mlp: perImage(d.mlp) },
    ]),
  );
  const features = split.encodeImage(s, config, image, { ...train, dropPath: imageDrop });
  const repeated: Record<string, Tensor> = {};
  for (const [name, f] of Object.entries(features)) {
    const [bi, ...rest] = f.shape as number[];
    const wide = op.expand(op.unsqueeze(f, [1]), [bi!, K, ...rest]);
    repeated[name] = op.reshape(wide, [bi! * K, ...rest]);
  }
  return split.fromFeatures(s, config, repeated, tokens, train);
}

async function saveRunState(
  dir: string,
  s: OptimizerState,
  st: RunState,
  config: unknown,
  vocab: unknown,
): Promise<void> {
  const tensors = new Map<string, IoTensor>();
  for (const [name, v] of s.params) {
    const n = stateNames(name);
    tensors.set(name, { dtype: 'float32', shape: [v.length], data: v });
    tensors.set(n.m, { dtype: 'float32', shape: [v.length], data: s.m.get(name)! });
    tensors.set(n.v, { dtype: 'float32', shape: [v.length], data: s.v.get(name)! });
    if (s.ema) tensors.set(n.ema, { dtype: 'float32', shape: [v.length], data: s.ema.get(name)! });
  }
  for (const [name, v] of s.buffers)
    tensors.set(`buffer.${name}`, { dtype: 'float32', shape: [v.length], data: v });
  const metadata = {
    format: st.format,
    state: JSON.stringify(st),
    config: JSON.stringify(config),
    vocab: JSON.stringify(vocab),
  };
  await saveSafetensorsAtomic(join(dir, STATE_FILE), tensors, metadata, { rejectNonFinite: true });
}

function loadRunState(dir: string) {
  const path = join(dir, STATE_FILE);
  const f = loadSafetensors(path);
  if (f.metadata.format !== 'refseg.train/1')
    throw new Error(`${path}: not a refseg training state (format '${f.metadata.format}')`);
  const st = JSON.parse(f.metadata.state!) as RunState;
  const get = (n: string) => {
    const t = f.tensors.get(n);
    if (!t) return undefined;
    return t.data as Float32Array;
  };
  return {
    st,
    config: JSON.parse(f.metadata.config!) as unknown,
    vocab: JSON.parse(f.metadata.vocab!) as unknown,
    get,
    names: [...f.tensors.keys()],
  };
}

export interface TrainResult {
  steps: number;
  bestOIoU: number;
  lastLoss: number;
  samplesPerSecond: number;
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  mkdirSync(opts.out, { recursive: true });
  const resuming = opts.resume && existsSync(join(opts.out, STATE_FILE));
  let o = opts;
  let def: AnyModelDef;
  let config: unknown;
  let encoder: TextEncoder;
  let saved: ReturnType<typeof loadRunState> | null = null;
  let initCk: ReturnType<typeof loadModelCheckpoint> | null = null;

  if (resuming) {
    saved = loadRunState(opts.out);
    trimLog(join(opts.out, LOG_FILE), saved.st.step);
    // The run's own options, except how far to go and how loud to be.
    o = {
      ...saved.st.options,
      steps: opts.steps || saved.st.options.steps,
      stopAt: opts.stopAt,
      quiet: opts.quiet,
      resume: true,
    };
    ({ def, config } = validateConfig(saved.config)); // re-validated: guards against a hand-edited state
    // the run's own vocabulary, read as it was written (text.ts: the same ids as before the stop)
    encoder = textEncoderFromCheckpoint(saved.vocab, def.maxTokens(config), join(opts.out, STATE_FILE));
    log(o, `resuming ${o.out} at step ${saved.st.step}/${o.steps}`);
  } else if (opts.init) {
    if (opts.posInit)
      throw new Error(`--pos-init initializes from scratch; --init ${opts.init} brings its own weights`);
    initCk = loadModelCheckpoint(opts.init);
    if (!initCk.vocab) throw new Error(`--init ${opts.init}: the checkpoint carries no vocabulary`);
    ({ def, config } = initCk); // the checkpoint's model and config, never a preset's
  } else {
    ({ def, config } = resolveConfig(opts.config, opts.sets));
  }

  // options that the model alone decides, checked before any data is read
  const perImage = o.perImage ?? 1;
  if (!Number.isInteger(perImage) || perImage < 1)
    throw new Error(`--per-image must be a positive integer, got ${perImage}`);
  if (o.batch % perImage !== 0)
    throw new Error(
      `--batch ${o.batch} is not a multiple of --per-image ${perImage} (a batch holds batch/K whole images)`,
    );
  if (perImage > 1 && !def.split)
    throw new Error(
      `--per-image ${perImage}: model '${def.kind}' has no image half to share (image and text mix from its first layer)`,
    );
  if (o.maskDice && def.kind === 'shared-ris')
    throw new Error(`--mask-dice: shared-ris's loss has its Dice term already (config loss.dice)`);
  const trainSet = await loadRefer({
    root: o.data,
    dataset: o.dataset,
    split: o.split,
    ...(o.splitBy ? { splitBy: o.splitBy } : {}),
    ...(o.queries ? { withObjects: true } : {}),
  });
  const samples = o.queries
    ? [...trainSet.samples, ...imageQueries(trainSet, o.queries, o.seed)]
    : trainSet.samples;
  const groups = perImage > 1 ? groupByImage(samples) : null;
  const units = groups ? groups.length : samples.length; // what the sampler shuffles
  const workers = o.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1)
    throw new Error(`--workers must be a positive integer, got ${workers}`);
  if ((o.batch / perImage) % workers !== 0)
    throw new Error(
      `--batch ${o.batch} does not split evenly over --workers ${workers}${perImage > 1 ? ` (${o.batch / perImage} images of ${perImage} expressions)` : ''}`,
    );
  if (samples.length < o.batch)
    throw new Error(`--split ${o.split}: ${samples.length} expressions, fewer than one batch of ${o.batch}`);
  if (groups && groups.length < o.batch / perImage)
    throw new Error(
      `--split ${o.split}: ${groups.length} images, fewer than one batch of ${o.batch / perImage} images (--batch ${o.batch} / --per-image ${perImage})`,
    );
  const valSet =
    o.evalEvery > 0
      ? await loadRefer({
          root: o.valData ?? o.data,
          dataset: o.dataset,
          split: o.valSplit,
          ...(o.splitBy ? { splitBy: o.splitBy } : {}),
        })
      : null;
  const valSamples = valSet ? (o.evalLimit > 0 ? valSet.samples.slice(0, o.evalLimit) : valSet.samples) : [];

  let params: Map<string, Float32Array>;
  if (!resuming) {
    if (initCk) {
      encoder = textEncoderFor(def, config, initCk.vocab, o.init!); // word vocabulary or SentencePiece (BEiT-3 import)
      params = initCk.params;
    } else {
      // the model's framing decides the layout (text.ts): ReSTR word ids, Shared-RIS [CLS] … [EOT]
      const built = buildTextEncoder(
        def,
        config,
        samples.map((s) => s.sentence),
      );
      encoder = built.encoder;
      config = def.validate(setPath(config, def.configPaths.vocabSize, built.vocabSize));
      params = initModel(def, config, o.seed, o.posInit ? { posInit: o.posInit } : {});
    }
  } else {
    params = new Map();
  }
  encoder = encoder!;
  const vocabJson = encoder.toJSON();

  log(
    o,
    `model ${def.kind}, ${trainSet.samples.length} training expressions (${o.split})${o.queries ? ` and ${samples.length - trainSet.samples.length} queries` : ''}, ${valSamples.length} for validation; vocabulary ${String(getPath(config, def.configPaths.vocabSize))}`,
  );
  // with workers, each runs the step graph on its share of the batch
  const stepGraph = buildStep(def, config, { ...o, batch: o.batch / workers });
  if (resuming) {
    for (const p of stepGraph.params) {
      const v = saved!.get(p.name);
      if (!v) throw new Error(`${join(o.out, STATE_FILE)}: parameter '${p.name}' is missing`);
      params.set(p.name, v);
    }
    for (const b of stepGraph.buffers) params.set(b.name, saved!.get(`buffer.${b.name}`)!);
  }
  // what a batch is made from: the loop's own (`src`) or each worker's (which rebuilds the rest)
  const batchData = { config, samples, groups, seed: o.seed, augment: o.augment, batch: o.batch, perImage };
  const src: BatchSource = { ...batchData, def, encoder };
  const emaDecay = o.ema || null; // the weight average's decay; 0 or absent: none
  const runner =
    workers > 1
      ? await ParallelRunner.create(
          stepGraph,
          params,
          { ...batchData, samples: packSamples(samples), vocab: vocabJson, threads: o.threads ?? 1 },
          workers,
          emaDecay,
        )
      : await StepRunner.create(stepGraph, params, o.threads ? { threads: o.threads } : {}, emaDecay);
  let st: RunState = {
    format: 'refseg.train/1',
    step: 0,
    t: 0,
    sampler: { seed: o.seed, epoch: 0, position: 0, size: units },
    options: o,
    bestOIoU: -1,
    nonFinite: 0,
    elapsedS: 0,
  };
  if (resuming) {
    st = { ...saved!.st, options: o };
    const m = new Map<string, Float32Array>();
    const v = new Map<string, Float32Array>();
    // the weight average goes on from the run's own (a fresh run's starts from the weights)
    const ema = new Map<string, Float32Array>();
    for (const p of stepGraph.params) {
      const n = stateNames(p.name);
      m.set(p.name, saved!.get(n.m)!);
      v.set(p.name, saved!.get(n.v)!);
      if (!emaDecay) continue;
      const e = saved!.get(n.ema);
      if (!e) throw new Error(`${join(o.out, STATE_FILE)}: the weight average of '${p.name}' is missing`);
      ema.set(p.name, e);
    }
    const bufs = new Map(stepGraph.buffers.map((b) => [b.name, saved!.get(`buffer.${b.name}`)!]));
    runner.setState({ t: st.t, params, m, v, buffers: bufs, ...(emaDecay ? { ema } : {}) });
  }

  // the sampler's units: expressions, or images when a batch holds K expressions of each
  const sampler = new BatchSampler(units, { seed: o.seed, batchSize: o.batch / perImage }, st.sampler);
  const schedule: Schedule = {
    kind: o.schedule,
    baseLr: o.lr,
    totalSteps: o.steps,
    warmupSteps: Math.round(o.warmup * o.steps),
    power: 0.9,
  };
  const logPath = join(o.out, LOG_FILE);
  const bar = o.quiet ? null : new Progress('train', o.steps, { unit: 'steps', initial: st.step });
  const t0 = performance.now() - st.elapsedS * 1000;
  let lastLoss = NaN;
  let smooth = NaN;
  let rate = 0;

  /** What checkpoints hold and validation runs: the weights, or their average with `--ema`. */
  const weights = (s: OptimizerState) => new Map([...(s.ema ?? s.params), ...s.buffers]);

  const saveAll = async () => {
    const s = runner.state(); // one copy out of the workers' shared memory for both files
    await saveModelCheckpoint(join(o.out, 'last.safetensors'), def, config, weights(s), { vocab: vocabJson });
    st.sampler = sampler.state();
    st.t = runner.t;
    st.elapsedS = (performance.now() - t0) / 1000;
    await saveRunState(o.out, s, st, config, vocabJson);
  };

  const validate = async () => {
    const w = weights(runner.state());
    const predictor = await Predictor.create(
      def,
      config,
      w,
      o.threads ? { threads: o.threads * workers } : {},
    );
    try {
      const acc = await evaluate({
        predictor,
        encoder,
        samples: valSamples,
        dataset: o.dataset,
        split: o.valSplit,
        threshold: def.threshold(config),
        progress: false,
      });
      const sum = acc.summary();
      await appendFile(
        logPath,
        JSON.stringify({
          step: st.step,
          val: { oIoU: sum.oIoU, mIoU: sum.mIoU, pointing: sum.pointing, count: sum.count },
        }) + '\n',
      );
      log(
        o,
        `\nstep ${st.step}: val oIoU ${(100 * sum.oIoU).toFixed(2)}  mIoU ${(100 * sum.mIoU).toFixed(2)}  pointing ${sum.pointing === null ? '–' : (100 * sum.pointing).toFixed(1)}  (${sum.count} expressions)`,
      );
      if (sum.oIoU > st.bestOIoU) {
        st.bestOIoU = sum.oIoU;
        await saveModelCheckpoint(join(o.out, 'best.safetensors'), def, config, w, {
          vocab: vocabJson,
          metadata: { val_oIoU: String(sum.oIoU), step: String(st.step) },
        });
      }
    } finally {
      await predictor.dispose();
    }
  };

  try {
    while (st.step < o.steps) {
      const tb = performance.now();
      const batch = sampler.next();
      const lr = learningRate(schedule, st.step);
      const r =
        runner instanceof ParallelRunner
          ? await runner.step(batch, st.step, lr)
          : await runner.step(await makeBatch(src, batch, st.step), lr);
      st.step++;
      const dt = (performance.now() - tb) / 1000;
      rate = rate ? 0.9 * rate + 0.1 * (o.batch / dt) : o.batch / dt;
      if (r.finite) {
        st.nonFinite = 0;
        lastLoss = r.loss;
        smooth = Number.isNaN(smooth) ? r.loss : 0.95 * smooth + 0.05 * r.loss;
      } else if (++st.nonFinite >= o.maxNonFinite) {
        throw new Error(
          `stopping: ${st.nonFinite} non-finite steps in a row at step ${st.step} (weights were left unchanged; last good checkpoint kept)`,
        );
      }
      const line: LogLine = {
        step: st.step,
        loss: r.loss,
        lr,
        grad_norm: r.gradNorm,
        finite: r.finite,
        samples_per_s: rate,
        elapsed_s: (performance.now() - t0) / 1000,
      };
      await appendFile(logPath, JSON.stringify(line) + '\n');
      bar?.setStatus(`loss ${smooth.toFixed(4)} lr ${lr.toExponential(2)} ${rate.toFixed(1)} samples/s`);
      bar?.update(st.step);
      if (o.evalEvery > 0 && (st.step % o.evalEvery === 0 || st.step === o.steps)) await validate();
      if (st.step % o.checkpointEvery === 0 || st.step === o.steps || st.step === o.stopAt) await saveAll();
      if (o.stopAt && st.step >= o.stopAt) break;
    }
  } finally {
    bar?.finish();
    await runner.dispose();
  }
  await writeCurves(o.out).catch((e: Error) => log(o, `could not draw curves: ${e.message}`));
  return { steps: st.step, bestOIoU: st.bestOIoU, lastLoss, samplesPerSecond: rate };
}

/** Training curves as PNG: loss (smoothed), and validation oIoU and pointing against step. */
export async function writeCurves(dir: string): Promise<void> {
  // The last record of each step (trimLog leaves one on resume; older logs may repeat steps).
  const loss = new Map<number, number>();
  const val = new Map<number, NonNullable<LogRecord['val']>>();
  for (const l of readLog(join(dir, LOG_FILE))) {
    if (l.val) val.set(l.step, l.val);
    else if (l.finite && l.loss !== undefined) loss.set(l.step, l.loss);
  }
  const steps = [...loss.keys()].sort((a, b) => a - b);
  const smoothed: [number, number][] = [];
  let s = NaN;
  for (const k of steps) {
    s = Number.isNaN(s) ? loss.get(k)! : 0.98 * s + 0.02 * loss.get(k)!;
    smoothed.push([k, s]);
  }
  await writeFile(
    join(dir, 'loss.png'),
    await lineChartPng([{ name: 'training loss (EMA 0.98)', points: smoothed }], {
      title: 'Training loss',
      xLabel: 'step',
      yLabel: 'loss',
      logY: true,
    }),
  );
  if (val.size) {
    const sorted = [...val.entries()].sort((a, b) => a[0] - b[0]);
    const series = [
      { name: 'val oIoU (%)', points: sorted.map(([k, v]) => [k, 100 * v.oIoU] as [number, number]) },
    ];
    const pointing = sorted.filter(([, v]) => typeof v.pointing === 'number');
    if (pointing.length)
      series.push({
        name: 'val pointing (%)',
        points: pointing.map(([k, v]) => [k, 100 * v.pointing!] as [number, number]),
      });
    await writeFile(
      join(dir, 'val.png'),
      await lineChartPng(series, { title: 'Validation oIoU and pointing', xLabel: 'step', yLabel: '%' }),
    );
  }
}
