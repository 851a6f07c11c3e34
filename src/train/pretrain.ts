// Pretraining ReSTR's vision encoder on the training images' instance categories, before
// `refseg train --init`: what a COCO-pretrained backbone brings to a referring model, learned from
// the dataset's own training split. Each patch predicts, for each of its cells×cells cells, the share of
// the cell's pixels that each category covers (a low-resolution semantic segmentation, BCE on the
// shares) from the encoder's output through a linear head that is then dropped. With `attributes`,
// each value of the named annotation fields (e.g. the generator's synth.size) is a class of its own
// beside the categories, learned the same way. The checkpoint is
// written back with the trained `vision.*` tensors; every other tensor and the vocabulary are kept.
// (docs/restr-tiny-experiments.md, session 9: why the built-in recipe uses it.)

import { readFile } from 'node:fs/promises';
import { totalmem } from 'node:os';
import type { DatasetName } from '../data/datasets.js';
import { type Normalization, decodeImage, letterbox, letterboxMask } from '../data/image.js';
import { Rng } from '../data/random.js';
import { annotationField, decodeSegmentation, loadRefer, type ReferObject } from '../data/refer.js';
import { Graph } from '../graph/graph.js';
import { loadModelCheckpoint, saveModelCheckpoint } from '../models/checkpoint.js';
import type { RestrConfig } from '../models/restr/config.js';
import { visionEncoder } from '../models/restr/model.js';
import { initParams } from '../nn/init.js';
import { bceWithLogits, linear } from '../nn/layers.js';
import { Scope } from '../nn/params.js';
import { Progress } from '../util/progress.js';
import { StepRunner } from './runner.js';
import { learningRate } from './schedule.js';
import { buildTrainStep } from './step.js';

export interface PretrainOptions {
  /** A ReSTR checkpoint (e.g. from `refseg init`); written back with trained vision weights. */
  init: string;
  data: string;
  dataset: DatasetName;
  split?: string;
  splitBy?: string;
  out: string;
  steps: number;
  /** Images per step. */
  batch: number;
  lr: number;
  /** Fraction of the steps with linear warm-up; then polynomial decay (power 0.9) to 0. */
  warmup: number;
  weightDecay: number;
  clipNorm: number | null;
  /** Cells per patch side whose category shares each patch predicts (divides the patch size). */
  cells: number;
  /**
   * Annotation fields (dotted paths into instances.json's extra fields, e.g. `synth.size`) whose
   * string values are predicted as classes beside the categories; every object must have them.
   */
  attributes?: readonly string[];
  seed: number;
  threads?: number;
  /**
   * Memory (bytes) for the images and targets made in the first epoch, kept for the later ones
   * (default `PRETRAIN_CACHE_BYTES`); images past it are made again each epoch. The values are the
   * same either way: only the speed changes.
   */
  cacheBytes?: number;
  quiet?: boolean;
}

/**
 * The default of `PretrainOptions.cacheBytes`: 4 GiB, all 16,000 training images of the built-in
 * recipe at 128 px (254 KiB each: the normalized image and its class shares, float32), or a quarter
 * of the machine's memory where that is less.
 */
export const PRETRAIN_CACHE_BYTES = Math.min(4 * 2 ** 30, Math.floor(totalmem() / 4));

export interface PretrainResult {
  steps: number;
  images: number;
  categories: number;
  /** Classes predicted per cell: the categories and every value of each attribute. */
  classes: number;
  lastLoss: number;
  imagesPerSecond: number;
  /** Images whose input and targets were kept in memory after their first epoch, and their bytes. */
  kept: { images: number; bytes: number };
}

/**
 * Targets of one letterboxed S×S image: for each patch (row-major) and each of its cells×cells
 * cells (row-major), the share of the cell's pixels covered by each class, [N, cells², C]. An
 * object counts for each of its classes (its category, and its attributes' values).
 */
export function categoryShares(
  objects: readonly { mask: Float32Array; classes: readonly number[] }[],
  size: number,
  patch: number,
  cells: number,
  classCount: number,
): Float32Array {
  const G = size / patch;
  const cell = patch / cells;
  const per = cells * cells * classCount;
  const out = new Float32Array(G * G * per);
  const w = 1 / (cell * cell);
  for (const { mask, classes } of objects) {
    for (let y = 0; y < size; y++) {
      const row = Math.floor(y / patch) * G;
      const cy = Math.floor((y % patch) / cell) * cells;
      for (let x = 0; x < size; x++) {
        const m = mask[y * size + x]!;
        if (m === 0) continue;
        const at = (row + Math.floor(x / patch)) * per + (cy + Math.floor((x % patch) / cell)) * classCount;
        for (const k of classes) out[at + k]! += m * w;
      }
    }
  }
  return out;
}

export async function pretrainVision(o: PretrainOptions): Promise<PretrainResult> {
  const ck = loadModelCheckpoint(o.init);
  if (ck.def.kind !== 'restr')
    throw new Error(
      `--init ${o.init}: a '${ck.def.kind}' checkpoint; pretraining is for ReSTR's vision encoder`,
    );
  const c = ck.config as RestrConfig;
  const [S, P] = [c.imageSize, c.patchSize];
  if (!Number.isInteger(o.cells) || o.cells < 1 || P % o.cells !== 0)
    throw new Error(`--cells ${o.cells} must divide the patch size ${P}`);
  const N = (S / P) ** 2;

  const set = await loadRefer({
    root: o.data,
    dataset: o.dataset,
    split: o.split ?? 'train',
    ...(o.splitBy ? { splitBy: o.splitBy } : {}),
    withObjects: true,
  });
  if (!set.objects)
    throw new Error(
      `${o.dataset}: its layout lists no objects per image (instances.json); nothing to pretrain on`,
    );
  const objects = set.objects;
  const categoryIds = [...set.categories.keys()]; // instances.json's order
  const catIndex = new Map(categoryIds.map((id, i) => [id, i]));
  if (categoryIds.length === 0) throw new Error(`${set.refsFile}: instances.json lists no categories`);
  const attributes = attributeClasses(objects, o.attributes ?? [], categoryIds.length);
  const C = categoryIds.length + attributes.values.length;
  const images = [...new Map(set.samples.map((s) => [s.imageId, s])).values()]; // one sample per image
  if (images.length < o.batch)
    throw new Error(`--batch ${o.batch} is more than the ${images.length} images of split ${set.split}`);
  const OUT = o.cells * o.cells * C;
  const norm = ck.def.normalization(c) as Normalization; // as training batches letterbox (batch.ts)

  const g = new Graph('restr.pretrain');
  const s = Scope.root(g);
  const image = g.input('image', 'float32', [o.batch, 3, S, S]);
  const target = g.input('target', 'float32', [o.batch, N, OUT]);
  const zv = g.scope('vision', () => visionEncoder(s.sub('vision', 'vision'), c, image, undefined));
  const logits = g.scope('head', () => linear(s.sub('pretrain_head'), zv, c.vision.dim, OUT));
  const step = buildTrainStep({
    registry: s.registry,
    loss: bceWithLogits(logits, target),
    adamw: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: o.weightDecay, clipNorm: o.clipNorm },
  });
  const rng = Rng.from('pretrain', o.seed);
  const head = initParams(
    step.params.filter((p) => !p.name.startsWith('vision.')),
    () => rng.next(),
  );
  const start = new Map(step.params.map((p) => [p.name, ck.params.get(p.name) ?? head.get(p.name)!]));
  const runner = await StepRunner.create(step, start, o.threads ? { threads: o.threads } : {});

  // One image's input and targets, made from its files, or kept from an earlier epoch while the
  // budget lasts: making a batch of 32 (PNG decoding, letterboxing, masks, shares) took 30-80 ms
  // of a 170-250 ms step on 2 cores, copying 32 kept images about 4 ms. A run that ends within its
  // first epoch sees no image twice, so it keeps none (filling the memory slowed the first epoch).
  const [X, Y] = [3 * S * S, N * OUT];
  const secondEpoch = o.steps > Math.floor(images.length / o.batch);
  const kept = new KeptImages(X, Y, images.length, secondEpoch ? (o.cacheBytes ?? PRETRAIN_CACHE_BYTES) : 0);
  const made = async (k: number): Promise<{ x: Float32Array; y: Float32Array }> => {
    const hit = kept.get(k);
    if (hit) return hit;
    const im = images[k]!;
    const decoded = await decodeImage(await readFile(im.file), { source: im.file });
    const masks = (objects.get(im.imageId) ?? ([] as ReferObject[]))
      .filter((ob) => catIndex.has(ob.categoryId))
      .map((ob) => ({
        mask: letterboxMask(decodeSegmentation(ob.segmentation, im.height, im.width), S, 'area'),
        classes: [catIndex.get(ob.categoryId)!, ...attributes.of(ob)],
      }));
    const r = { x: letterbox(decoded, S, norm).tensor, y: categoryShares(masks, S, P, o.cells, C) };
    kept.keep(k, r.x, r.y);
    return r;
  };
  const x = new Float32Array(o.batch * X);
  const y = new Float32Array(o.batch * Y);
  const makeBatch = async (picked: number[]) => {
    await Promise.all(
      picked.map(async (k, b) => {
        const r = await made(k);
        x.set(r.x, b * X);
        y.set(r.y, b * Y);
      }),
    );
  };

  // Images in the order the refs first name them, reshuffled each epoch; seed 0 draws the
  // stream the built-in model's pretraining drew (README), other seeds their own.
  const batches = imageBatches(images.length, o.batch, (epoch) =>
    Rng.from('pretrain-order', epoch, ...(o.seed ? [o.seed] : [])).shuffle(images.map((_, i) => i)),
  );
  const bar = o.quiet ? null : new Progress('pretrain', o.steps, { unit: 'steps' });
  const schedule = {
    kind: 'poly' as const,
    baseLr: o.lr,
    totalSteps: o.steps,
    warmupSteps: Math.round(o.warmup * o.steps),
    power: 0.9,
  };
  const t0 = performance.now();
  let [lastLoss, smooth] = [NaN, NaN];
  for (let t = 0; t < o.steps; t++) {
    await makeBatch(batches.next().value);
    const lr = learningRate(schedule, t);
    const r = await runner.step(
      {
        image: { dtype: 'float32', shape: [o.batch, 3, S, S], data: x },
        target: { dtype: 'float32', shape: [o.batch, N, OUT], data: y },
      },
      lr,
    );
    if (!r.finite) throw new Error(`pretraining diverged at step ${t + 1} (loss ${r.loss}); lower --lr`);
    lastLoss = r.loss;
    smooth = Number.isNaN(smooth) ? r.loss : 0.98 * smooth + 0.02 * r.loss;
    bar?.setStatus(`loss ${smooth.toFixed(4)} lr ${lr.toExponential(2)}`);
    bar?.tick();
  }
  bar?.finish();
  const seconds = (performance.now() - t0) / 1000;

  const out = new Map(ck.params);
  for (const [name, v] of runner.state().params)
    if (name.startsWith('vision.')) out.set(name, Float32Array.from(v));
  await runner.dispose();
  await saveModelCheckpoint(o.out, ck.def, ck.config, out, {
    ...(ck.vocab ? { vocab: ck.vocab } : {}),
    metadata: {
      pretrained:
        `vision on ${categoryIds.length} categories` +
        (o.attributes?.length ? ` and the values of ${o.attributes.join(', ')}` : '') +
        ` of ${o.dataset} ${set.split}: ${o.steps} steps of ${o.batch} images`,
    },
  });
  return {
    steps: o.steps,
    images: images.length,
    categories: categoryIds.length,
    classes: C,
    lastLoss,
    imagesPerSecond: (o.steps * o.batch) / seconds,
    kept: { images: kept.count, bytes: kept.bytes },
  };
}

/**
 * Each image's input (X floats) and targets (Y floats), for the first `budget` bytes' worth of
 * images kept, in slabs of up to 256 MiB: a few large arrays rather than one per image (the
 * training loop's cache of decoded images, one array each, made V8 collect garbage every third
 * step: batch.ts).
 */
class KeptImages {
  private readonly slabs: Float32Array[] = [];
  private readonly slot: Int32Array;
  private readonly capacity: number;
  private readonly perSlab: number;
  count = 0;

  constructor(
    private readonly X: number,
    private readonly Y: number,
    images: number,
    budget: number,
  ) {
    this.slot = new Int32Array(images).fill(-1);
    this.capacity = Math.min(images, Math.floor(budget / (4 * (X + Y))));
    this.perSlab = Math.max(1, Math.floor(2 ** 28 / (4 * (X + Y))));
  }

  get bytes(): number {
    return this.count * 4 * (this.X + this.Y);
  }

  get(k: number): { x: Float32Array; y: Float32Array } | undefined {
    const i = this.slot[k]!;
    if (i < 0) return undefined;
    const at = (i % this.perSlab) * (this.X + this.Y);
    const slab = this.slabs[Math.floor(i / this.perSlab)]!;
    return { x: slab.subarray(at, at + this.X), y: slab.subarray(at + this.X, at + this.X + this.Y) };
  }

  /** Keeps copies of image k's arrays if the budget has room. */
  keep(k: number, x: Float32Array, y: Float32Array): void {
    if (this.count >= this.capacity || this.slot[k]! >= 0) return;
    const i = this.count++;
    const s = Math.floor(i / this.perSlab);
    const rows = Math.min(this.perSlab, this.capacity - s * this.perSlab);
    const slab = (this.slabs[s] ??= new Float32Array(rows * (this.X + this.Y)));
    slab.set(x, (i % this.perSlab) * (this.X + this.Y));
    slab.set(y, (i % this.perSlab) * (this.X + this.Y) + this.X);
    this.slot[k] = i;
  }
}

/**
 * The image indices of each pretraining step, endlessly: `order(epoch)` (a permutation of
 * 0..count−1) cut into batches of `batch`; the remainder of an epoch that does not fill a batch is
 * left out, and the next epoch's order starts the next batch.
 */
export function* imageBatches(
  count: number,
  batch: number,
  order: (epoch: number) => number[],
): Generator<number[], never> {
  for (let epoch = 0; ; epoch++) {
    const ord = order(epoch);
    for (let pos = 0; pos + batch <= count; pos += batch) yield ord.slice(pos, pos + batch);
  }
}

/**
 * The classes the named annotation fields add beside the `first` categories: one per value seen in
 * the split (sorted, so the class order is the data's, not the load order's), as `path=value`.
 * `of` gives an object's class indices, resolved here once for every object of the split (the
 * batch loop asks for them every step). Every object must have every field, as a string.
 */
export function attributeClasses(
  objects: ReadonlyMap<number, readonly ReferObject[]>,
  paths: readonly string[],
  first: number,
): { values: string[]; of: (ob: ReferObject) => number[] } {
  const all = [...objects.values()].flat();
  const named = new Map(
    all.map((ob) => [ob, paths.map((path) => `${path}=${annotationField(ob, path, '--attributes')}`)]),
  );
  const values = paths.flatMap((path, j) => [...new Set(all.map((ob) => named.get(ob)![j]!))].sort());
  const index = new Map(values.map((v, i) => [v, first + i]));
  const classes = new Map([...named].map(([ob, keys]) => [ob, keys.map((k) => index.get(k)!)]));
  return {
    values,
    of: (ob) =>
      classes.get(ob) ??
      paths.map((path) => index.get(`${path}=${annotationField(ob, path, '--attributes')}`)!),
  };
}
