// Shared by the ReSTR model tests: a micro config (runs in ONNX Runtime in milliseconds), inputs
// with padded expressions, and running an exported graph.

import { restrModel } from '../../src/models/restr/model.js';
import type { RestrConfig } from '../../src/models/restr/config.js';
import { type HostTensor, Session } from '../../src/runtime/session.js';
import { Rng } from '../../src/data/random.js';

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** 32×32 images, 8×8 patches (Nv = 16, K = 3), widths 16 / 8 / 16: every width differs from its neighbours'. */
export function microConfig(o: DeepPartial<RestrConfig> = {}): RestrConfig {
  return restrModel.validate({
    model: 'restr',
    imageSize: 32,
    patchSize: 8,
    ...o,
    vision: { dim: 24, depth: 2, heads: 2, mlpDim: 32, dropPath: 0.1, ...o.vision },
    language: {
      vocabSize: 20,
      wordDim: 8,
      depth: 1,
      heads: 2,
      mlpDim: 16,
      maxWords: 6,
      dropPath: 0,
      ...o.language,
    },
    fusion: {
      variant: 'cme',
      dim: 16,
      depth: 2,
      heads: 2,
      mlpDim: 32,
      share: false,
      dropPath: 0.1,
      ...o.fusion,
    },
  });
}

/** Images in [-1, 1] and word ids; sample b has `lengths[b]` words, the rest is padding (0). */
export function sampleInputs(
  c: RestrConfig,
  lengths: readonly number[],
  seed = 1,
): { image: HostTensor; words: HostTensor } {
  const r = Rng.from('restr-test', seed);
  const B = lengths.length;
  const [S, L] = [c.imageSize, c.language.maxWords];
  const image = Float32Array.from({ length: B * 3 * S * S }, () => r.float(-1, 1));
  const words = new BigInt64Array(B * L);
  lengths.forEach((n, b) => {
    for (let i = 0; i < n; i++) words[b * L + i] = BigInt(r.int(2, c.language.vocabSize - 1));
  });
  return {
    image: { dtype: 'float32', shape: [B, 3, S, S], data: image },
    words: { dtype: 'int64', shape: [B, L], data: words },
  };
}

/** Sample `b` of a batch as a batch of one. */
export function pick(t: HostTensor, b: number): HostTensor {
  const per = t.shape.slice(1).reduce((a, d) => a * d, 1);
  return {
    dtype: t.dtype,
    shape: [1, ...t.shape.slice(1)],
    data: t.data.slice(b * per, (b + 1) * per),
  } as HostTensor;
}

export async function runOnnx(
  model: Uint8Array,
  feeds: Record<string, HostTensor>,
): Promise<Record<string, HostTensor>> {
  const s = await Session.create(model);
  try {
    return await s.run(feeds);
  } finally {
    await s.dispose();
  }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}
