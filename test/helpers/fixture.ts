// Golden fixtures (scripts/golden/*.py → test/fixtures/golden/*.safetensors), read with
// src/io/safetensors.ts. Adds what a golden test wants on top: float32 tensors looked up by name
// with a shape check, and errors that name the fixture file.

import { loadSafetensors } from '../../src/io/safetensors.js';

export interface FixtureTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export interface Fixture {
  readonly path: string;
  /** `__metadata__` (the generator script's configuration and notes). */
  readonly metadata: Record<string, string>;
  /** The float32 tensor `name`; throws when it is missing, not float32, or not of `shape`. */
  get(name: string, shape?: readonly number[]): FixtureTensor;
}

export function readFixture(path: string): Fixture {
  const { tensors, metadata } = loadSafetensors(path);
  return {
    path,
    metadata,
    get(name, shape) {
      const t = tensors.get(name);
      if (!t) throw new Error(`${path}: no tensor '${name}'`);
      if (!(t.data instanceof Float32Array))
        throw new Error(`${path}: tensor '${name}' is ${t.dtype}, expected float32`);
      if (shape && (shape.length !== t.shape.length || shape.some((d, i) => d !== t.shape[i]))) {
        throw new Error(`${path}: tensor '${name}' is [${t.shape.join(',')}], expected [${shape.join(',')}]`);
      }
      return { shape: t.shape, data: t.data };
    },
  };
}
