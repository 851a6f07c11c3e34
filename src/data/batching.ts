// Deterministic shuffling and batching with exact resumability, and augmentation that keeps every
// referring expression true.
//
// Order: epoch e visits the samples in Rng.from('batch-order', seed, e).permutation(n), so the
// whole sampler state is { seed, epoch, position } (plus the dataset size, kept only to refuse a
// restore onto a different dataset): a checkpoint stores those numbers and a restored sampler yields
// exactly the batches a straight run would (reliability.md "Training state"). Augmentation draws
// from Rng.from('augment', seed, epoch, slot) for the sample at `slot` of epoch `epoch`, so it too
// is a function of the position, not of how many draws happened before a restore.
//
// Augmentation (training only): a horizontal flip is applied ONLY to expressions with no
// horizontal-direction word (HORIZONTAL_WORDS): flipping "the man on the left" would make it false,
// and rewriting left↔right is not attempted (it gets "left-handed", "the right answer" and typos
// wrong), so such samples are simply never flipped. Brightness/contrast jitter is small and
// photometric, so colour words stay true. Scale jitter is not done: the letterbox fixes the scale.

import { Rng } from './random.js';
import { flipHorizontal, type BinaryMask, type RgbImage } from './image.js';
import { tokenizeWords } from './tokenizer.js';

export interface SamplerState {
  seed: number;
  /** Epoch of the next batch, from 0. */
  epoch: number;
  /** Index into that epoch's order of the next sample. */
  position: number;
  /** Dataset size the order was drawn for (a guard, not part of the order). */
  size: number;
}

export interface SamplerOptions {
  seed: number;
  batchSize: number;
  /** Shuffle each epoch (default true); false visits 0..n-1 in order (evaluation). */
  shuffle?: boolean;
  /** Drop an epoch's last incomplete batch (default true, for training); else yield it short. */
  dropLast?: boolean;
}

export interface Batch {
  epoch: number;
  /** Position in the epoch's order of the first sample; sample k has slot start + k. */
  start: number;
  /** Dataset indices. */
  indices: number[];
}

/** The visiting order of one epoch. */
export function epochOrder(size: number, seed: number, epoch: number, shuffle = true): number[] {
  if (!shuffle) return Array.from({ length: size }, (_, i) => i);
  return Rng.from('batch-order', seed, epoch).permutation(size);
}

/** The augmentation stream of the sample at `slot` of epoch `epoch`. */
export function augmentRng(seed: number, epoch: number, slot: number): Rng {
  return Rng.from('augment', seed, epoch, slot);
}

export class BatchSampler {
  private epoch: number;
  private position: number;
  private order: number[] | null = null;
  private orderEpoch = -1;
  private readonly shuffle: boolean;
  private readonly dropLast: boolean;

  constructor(
    readonly size: number,
    private readonly o: SamplerOptions,
    state?: SamplerState,
  ) {
    if (!Number.isInteger(size) || size < 1)
      throw new Error(`sampler: dataset size must be a positive integer, got ${size}`);
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1)
      throw new Error(`sampler: batch size must be a positive integer, got ${o.batchSize}`);
    this.shuffle = o.shuffle ?? true;
    this.dropLast = o.dropLast ?? true;
    if (this.dropLast && o.batchSize > size)
      throw new Error(`sampler: batch size ${o.batchSize} exceeds the ${size} samples with dropLast`);
    this.epoch = 0;
    this.position = 0;
    if (state) {
      if (state.seed !== o.seed)
        throw new Error(`sampler: state was saved with seed ${state.seed}, options say ${o.seed}`);
      if (state.size !== size)
        throw new Error(`sampler: state was saved for ${state.size} samples, the dataset has ${size}`);
      if (
        !Number.isInteger(state.epoch) ||
        state.epoch < 0 ||
        !Number.isInteger(state.position) ||
        state.position < 0 ||
        state.position > size
      ) {
        throw new Error(`sampler: invalid state ${JSON.stringify(state)}`);
      }
      this.epoch = state.epoch;
      this.position = state.position;
    }
  }

  /** The state to checkpoint: restoring it continues with the very next batch. */
  state(): SamplerState {
    return { seed: this.o.seed, epoch: this.epoch, position: this.position, size: this.size };
  }

  private orderOf(epoch: number): number[] {
    if (this.orderEpoch !== epoch) {
      this.order = epochOrder(this.size, this.o.seed, epoch, this.shuffle);
      this.orderEpoch = epoch;
    }
    return this.order!;
  }

  /** The next batch; epochs roll over forever (training counts iterations, not epochs). */
  next(): Batch {
    const b = this.o.batchSize;
    const left = this.size - this.position;
    if (left === 0 || (this.dropLast && left < b)) {
      this.epoch++;
      this.position = 0;
    }
    const start = this.position;
    const end = Math.min(this.size, start + b);
    const indices = this.orderOf(this.epoch).slice(start, end);
    this.position = end;
    return { epoch: this.epoch, start, indices };
  }
}

/**
 * Words that name a horizontal direction (or depend on it); an expression holding any is never
 * flipped. Deliberately generous, common RefCOCO misspellings included: a false positive only
 * costs one flip, a miss teaches the model a false expression.
 */
export const HORIZONTAL_WORDS: ReadonlySet<string> = new Set([
  'left', 'right', 'leftmost', 'rightmost', 'lefthand', 'righthand', 'leftside', 'rightside',
  'lefter', 'righter', 'leftest', 'rightest', 'leftward', 'rightward', 'leftwards', 'rightwards',
  'lft', 'lef', 'leftt', 'lefft', 'rigth', 'rigt', 'righ', 'rght', 'riht', 'rite', 'rightt',
  'east', 'west', 'eastern', 'western', 'eastmost', 'westmost',
  'clockwise', 'counterclockwise', 'anticlockwise',
]); // prettier-ignore

export function hasHorizontalWord(sentence: string): boolean {
  return tokenizeWords(sentence).some((w) => HORIZONTAL_WORDS.has(w));
}

export interface AugmentOptions {
  /** Probability of a horizontal flip for expressions without horizontal words (default 0.5; 0 = off). */
  flip?: number;
  /** Brightness factor drawn from [1-b, 1+b] (default 0.1; 0 = off). */
  brightness?: number;
  /** Contrast factor drawn from [1-c, 1+c] around the mean gray level (default 0.1; 0 = off). */
  contrast?: number;
}

export interface Augmented {
  image: RgbImage;
  mask: BinaryMask;
  flipped: boolean;
  brightness: number;
  contrast: number;
}

/**
 * Augments one training sample. Three draws are always taken (flip coin, brightness, contrast) so
 * the options never shift the stream.
 */
export function augment(
  image: RgbImage,
  mask: BinaryMask,
  sentence: string,
  rng: Rng,
  o: AugmentOptions = {},
): Augmented {
  if (image.width !== mask.width || image.height !== mask.height) {
    throw new Error(`augment: image is ${image.width}×${image.height} but mask ${mask.width}×${mask.height}`);
  }
  const pFlip = o.flip ?? 0.5;
  const b = o.brightness ?? 0.1;
  const c = o.contrast ?? 0.1;
  const coin = rng.next();
  const brightness = 1 + b * (2 * rng.next() - 1);
  const contrast = 1 + c * (2 * rng.next() - 1);
  const flipped = coin < pFlip && !hasHorizontalWord(sentence);
  let img = flipped ? flipHorizontal(image, 3) : image;
  const m = flipped ? flipHorizontal(mask, 1) : mask;
  if (brightness !== 1 || contrast !== 1) img = jitter(img, brightness, contrast);
  return { image: img, mask: m, flipped, brightness, contrast };
}

/** torchvision-style: x·brightness, then blend with the mean gray level by `contrast`; clamp, round. */
function jitter(img: RgbImage, brightness: number, contrast: number): RgbImage {
  const d = img.data;
  let gray = 0;
  for (let i = 0; i < d.length; i += 3) gray += 0.299 * d[i]! + 0.587 * d[i + 1]! + 0.114 * d[i + 2]!;
  const mean = (brightness * gray) / (d.length / 3 || 1);
  const out = new Uint8Array(d.length);
  for (let i = 0; i < d.length; i++) {
    const v = (d[i]! * brightness - mean) * contrast + mean;
    out[i] = Math.min(255, Math.max(0, Math.round(v)));
  }
  return { width: img.width, height: img.height, data: out };
}

/**
 * Training expressions grouped by image (`file`), groups in order of first appearance: the units a
 * per-image sampler shuffles when several expressions of one image share a batch (train.ts
 * `perImage`).
 */
export function groupByImage(samples: readonly { file: string }[]): number[][] {
  const groups = new Map<string, number[]>();
  samples.forEach((s, i) => {
    const g = groups.get(s.file);
    if (g) g.push(i);
    else groups.set(s.file, [i]);
  });
  return [...groups.values()];
}

/** The expression-choice stream of the image at `slot` of epoch `epoch` (per-image batches). */
export function pickRng(seed: number, epoch: number, slot: number): Rng {
  return Rng.from('per-image', seed, epoch, slot);
}

/**
 * Picks k expressions of one image (`group`: its sample indices; `objectOf`: a sample's object id).
 * Distinct objects come first, in random order, each with one random expression of its own: two
 * expressions of one image that name DIFFERENT objects are what makes the pair teach grounding (the
 * same pixels, a different sentence, a different mask). When the image has fewer than k objects the
 * rest are further expressions without repeats, and only an image with fewer than k expressions
 * repeats one.
 */
export function pickPerImage(
  group: readonly number[],
  objectOf: (sample: number) => number,
  k: number,
  rng: Rng,
): number[] {
  if (group.length === 0) throw new Error('pickPerImage: the image has no expressions');
  const byObject = new Map<number, number[]>();
  for (const i of group) {
    const o = objectOf(i);
    const list = byObject.get(o);
    if (list) list.push(i);
    else byObject.set(o, [i]);
  }
  const objects = [...byObject.values()];
  const picked: number[] = [];
  for (const j of rng.permutation(objects.length)) {
    if (picked.length === k) break;
    const list = objects[j]!;
    picked.push(list[rng.int(0, list.length - 1)]!);
  }
  if (picked.length < k) {
    const rest = group.filter((i) => !picked.includes(i));
    for (const j of rng.permutation(rest.length)) {
      if (picked.length === k) break;
      picked.push(rest[j]!);
    }
  }
  while (picked.length < k) picked.push(group[rng.int(0, group.length - 1)]!);
  return picked;
}
