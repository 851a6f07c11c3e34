// Training batches as host tensors: images, token ids, targets and drop-path scales.
//
// One function serves the single-process loop and each data-parallel worker (parallel.ts): a
// worker fills only its rows of the batch, and every random draw is a function of the sample's
// slot in the epoch or of the step, so the rows a worker fills are exactly the rows the whole
// batch would hold.
//
// Images are decoded each time they are used, not kept: a cache of decoded images (it held up to
// 1.5 GiB) made V8 run a full garbage collection about every third step in each worker (884
// mark-compacts in 1,200 steps against 18 without it), whose concurrent marking took the cores from
// ONNX Runtime. Measured on 2 cores, the built-in model's recipe (2 workers): 88.7 samples/s with the
// cache, 107.0 without (steps 800-1,200, the cache full); a synthetic PNG decodes in 0.4 ms (png.ts).

import { augment, augmentRng, pickPerImage, pickRng } from '../data/batching.js';
import { type Normalization, flipHorizontal, letterbox, letterboxMask } from '../data/image.js';
import { Rng } from '../data/random.js';
import { type ReferSample, readSampleImage, sampleMask } from '../data/refer.js';
import type { TextEncoder } from '../data/text.js';
import type { AnyModelDef } from '../models/model.js';
import type { HostTensor } from '../runtime/session.js';

/** Training samples by index: the loader's array in the loop, shared-memory records in a worker. */
export interface SampleTable {
  readonly length: number;
  at(i: number): ReferSample | undefined;
}

/**
 * Training samples as one UTF-8 JSON record each in shared memory, for the data-parallel workers.
 * Held as objects (a structured clone in each worker), the 100,000 samples of 16,000 synthetic images
 * made each worker's heap 62 MB, which V8 marks at every full collection; packed, it is 10 MB.
 * Measured with another training run on the machine, that set went from 38-40 to 43 samples/s over
 * steps 400-1,200 (the benchmark's 3,200 images stayed at 44); on the idle machine it now holds
 * 96 samples/s over 2,000 steps, as the benchmark set does, where it had fallen to 75-77.
 * A worker parses the few records a batch needs.
 */
export interface PackedSamples {
  length: number;
  bytes: SharedArrayBuffer;
  /** Float64 end offset of each record in `bytes`. */
  ends: SharedArrayBuffer;
}

export function packSamples(samples: readonly ReferSample[]): PackedSamples {
  const enc = new TextEncoder();
  const records = samples.map((s) => enc.encode(JSON.stringify(s)));
  const bytes = new SharedArrayBuffer(records.reduce((n, r) => n + r.length, 0));
  const ends = new SharedArrayBuffer(8 * samples.length);
  const [b, e] = [new Uint8Array(bytes), new Float64Array(ends)];
  let end = 0;
  records.forEach((r, i) => {
    b.set(r, end);
    e[i] = end += r.length;
  });
  return { length: samples.length, bytes, ends };
}

export function sampleTable(p: PackedSamples): SampleTable {
  const [b, e] = [new Uint8Array(p.bytes), new Float64Array(p.ends)];
  const dec = new TextDecoder();
  return {
    length: p.length,
    at: (i) =>
      i >= 0 && i < p.length
        ? (JSON.parse(dec.decode(b.subarray(i ? e[i - 1]! : 0, e[i]!))) as ReferSample)
        : undefined,
  };
}

/** What a batch is made from; fixed for a run. */
export interface BatchSource {
  def: AnyModelDef;
  config: unknown;
  samples: SampleTable;
  /** Sample indices by image when a batch holds several expressions of each (`perImage` > 1). */
  groups: readonly number[][] | null;
  encoder: TextEncoder;
  seed: number;
  augment: boolean;
  /** Expressions in the whole batch. */
  batch: number;
  /** Expressions of one image per batch (1: the sampler's units are expressions). */
  perImage: number;
}

/**
 * Host tensors of `batch` (the sampler's units, from `start` in epoch `epoch`) for step `step`. `rows`
 * is the first expression row of this part of the whole batch (0 for a whole batch): a part of
 * `indices.length` units fills those rows only, with the same values the whole batch holds there.
 */
export async function makeBatch(
  src: BatchSource,
  batch: { epoch: number; start: number; indices: number[] },
  step: number,
  rows = 0,
): Promise<Record<string, HostTensor>> {
  const { def, config, samples, groups, encoder } = src;
  const S = def.imageSize(config);
  const L = def.maxTokens(config);
  const K = src.perImage;
  const U = batch.indices.length; // images (or expressions when K = 1) in this part
  const B = U * K;
  const norm = def.normalization(config);
  const images = new Float32Array(U * 3 * S * S);
  const tokens = new BigInt64Array(B * L);
  const masks = new Float32Array(B * S * S);
  const targets = Object.entries(def.trainTargets(config, B)).map(([name, t]) => ({
    name,
    shape: t.shape,
    data: new Float32Array(t.shape.reduce((a, b) => a * b, 1)),
  }));
  await Promise.all(
    batch.indices.map(async (idx, k) => {
      // the expressions of this image: K of its group, or the one sample. In a worker each `at`
      // parses a record, so each is read once here.
      const read = new Map<number, ReferSample>();
      const sample = (i: number): ReferSample => {
        let r = read.get(i);
        if (!r) read.set(i, (r = samples.at(i)!));
        return r;
      };
      const picked = groups
        ? pickPerImage(
            groups[idx]!,
            (i) => sample(i).annId,
            K,
            pickRng(src.seed, batch.epoch, batch.start + k),
          )
        : [idx];
      const rec = picked.map(sample);
      let img = await readSampleImage(rec[0]!);
      let gts = rec.map((r) => sampleMask(r));
      if (src.augment) {
        // one draw per image; no flip if ANY of its expressions names a horizontal direction
        const sentences = rec.map((r) => r.sentence).join(' ');
        const a = augment(img, gts[0]!, sentences, augmentRng(src.seed, batch.epoch, batch.start + k));
        img = { ...img, ...a.image };
        gts = gts.map((m, j) => (j === 0 ? a.mask : a.flipped ? flipHorizontal(m, 1) : m));
      }
      const lb = letterbox(img, S, norm as Normalization);
      images.set(lb.tensor, k * 3 * S * S);
      rec.forEach((r, j) => {
        const e = k * K + j; // row of this expression in the part
        const m = letterboxMask(gts[j]!, S);
        masks.set(m, e * S * S);
        tokens.set(encoder.encode(r.sentence), e * L);
        const per = def.makeTargets(config, m);
        for (const t of targets) {
          const v = per[t.name]!;
          t.data.set(v, e * v.length);
        }
      });
    }),
  );
  const feeds: Record<string, HostTensor> = {
    image: { dtype: 'float32', shape: [U, 3, S, S], data: images },
    [def.tokenInput]: { dtype: 'int64', shape: [B, L], data: tokens },
    target_mask: { dtype: 'float32', shape: [B, 1, S, S], data: masks },
  };
  for (const t of targets) feeds[t.name] = { dtype: 'float32', shape: t.shape, data: t.data };
  // Stochastic depth: per block, branch and sample of the WHOLE batch, keep with probability
  // 1 − rate, scaled by 1/(1 − rate); a part takes its rows.
  const rng = Rng.from('droppath', src.seed, step);
  for (const b of def.dropPathBlocks(config)) {
    for (const branch of ['attn', 'mlp'] as const) {
      const d = new Float32Array(src.batch);
      for (let i = 0; i < src.batch; i++) d[i] = rng.next() < b.rate ? 0 : 1 / (1 - b.rate);
      feeds[`droppath.${b.name}.${branch}`] = {
        dtype: 'float32',
        shape: [B, 1, 1],
        data: d.slice(rows, rows + B),
      };
    }
  }
  return feeds;
}
