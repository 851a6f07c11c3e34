// Model checkpoints (spec/restr.md §3; model-agnostic): safetensors holding every parameter by its
// contract name, float32 (float16 allowed for shipping), with `__metadata__`:
//   format  the model's format id ('refseg.restr/1'), which selects the ModelDef on load
//   config  the complete config as JSON (spec §4)
//   vocab   the vocabulary as JSON, when the model was given one
// Loading validates the config with the model, then checks every tensor against the parameter
// list that config implies: a missing, unexpected, mis-shaped, non-float or non-finite tensor is
// an error naming the file and the tensor. Writing is atomic and refuses non-finite values
// (reliability.md "Training state").

import { getPath } from './overrides.js';
import type { AnyModelDef, ModelDef } from './model.js';
import { parameterSpecs } from './build.js';
import { modelForFormat } from './registry.js';
import {
  type SafetensorsFile,
  loadSafetensors,
  readSafetensors,
  saveSafetensorsAtomic,
  writeSafetensors,
} from '../io/safetensors.js';
import { type IoTensor, floatDataAsF32 } from '../io/tensor.js';

export class CheckpointError extends Error {
  override name = 'CheckpointError';
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(`${source}: ${message}`);
  }
}

export interface ModelCheckpoint {
  def: AnyModelDef;
  /** Validated and complete. */
  config: unknown;
  /** float32 values by parameter name, in the model's registration order. */
  params: Map<string, Float32Array>;
  /** The vocabulary JSON, when the checkpoint carries one. */
  vocab?: unknown;
  metadata: Record<string, string>;
}

export interface SaveOptions {
  vocab?: unknown;
  /** Storage dtype (default float32; float16 for shipping). */
  dtype?: 'float32' | 'float16';
  /** Extra metadata entries (must not collide with format/config/vocab). */
  metadata?: Record<string, string>;
}

const RESERVED = ['format', 'config', 'vocab'];

function tensorsAndMetadata<C>(
  def: ModelDef<C>,
  config: C,
  params: ReadonlyMap<string, Float32Array>,
  o: SaveOptions,
  source: string,
) {
  const specs = parameterSpecs(def, config);
  const tensors = new Map<string, IoTensor>();
  for (const s of specs) {
    const v = params.get(s.name);
    if (!v) throw new CheckpointError(source, `no value for parameter '${s.name}' [${s.shape.join(',')}]`);
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (v.length !== n)
      throw new CheckpointError(
        source,
        `parameter '${s.name}' has ${v.length} values, expected [${s.shape.join(',')}] = ${n}`,
      );
    tensors.set(s.name, { dtype: 'float32', shape: s.shape, data: v });
  }
  const known = new Set(specs.map((s) => s.name));
  const extra = [...params.keys()].filter((k) => !known.has(k));
  if (extra.length)
    throw new CheckpointError(
      source,
      `'${extra[0]}' is not a parameter of this ${def.kind} config${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ''}`,
    );
  const metadata: Record<string, string> = { ...(o.metadata ?? {}) };
  for (const k of RESERVED)
    if (k in metadata) throw new CheckpointError(source, `metadata key '${k}' is reserved`);
  metadata.format = def.format;
  metadata.config = JSON.stringify(config);
  if (o.vocab !== undefined) metadata.vocab = JSON.stringify(o.vocab);
  return { tensors, metadata, opts: { dtype: o.dtype ?? 'float32', rejectNonFinite: true } as const };
}

/** Writes a checkpoint atomically; every parameter of the config must be given, nothing else. */
export async function saveModelCheckpoint<C>(
  path: string,
  def: ModelDef<C>,
  config: C,
  params: ReadonlyMap<string, Float32Array>,
  o: SaveOptions = {},
): Promise<void> {
  const t = tensorsAndMetadata(def, def.validate(config), params, o, path);
  try {
    await saveSafetensorsAtomic(path, t.tensors, t.metadata, t.opts);
  } catch (e) {
    throw new CheckpointError(path, (e as Error).message);
  }
}

/** The checkpoint as bytes (tests, in-memory round trips). */
export function encodeModelCheckpoint<C>(
  def: ModelDef<C>,
  config: C,
  params: ReadonlyMap<string, Float32Array>,
  o: SaveOptions = {},
): Uint8Array {
  const t = tensorsAndMetadata(def, def.validate(config), params, o, '<checkpoint>');
  try {
    return writeSafetensors(t.tensors, t.metadata, t.opts);
  } catch (e) {
    throw new CheckpointError('<checkpoint>', (e as Error).message);
  }
}

function parseJsonMeta(source: string, file: SafetensorsFile, key: string): unknown {
  const text = file.metadata[key];
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(source, `__metadata__.${key} is not valid JSON: ${(e as Error).message}`);
  }
}

function fromFile(file: SafetensorsFile, source: string): ModelCheckpoint {
  const format = file.metadata.format;
  if (format === undefined)
    throw new CheckpointError(source, '__metadata__.format is missing (not a refseg model checkpoint)');
  let def: AnyModelDef;
  try {
    def = modelForFormat(format);
  } catch (e) {
    throw new CheckpointError(source, `__metadata__.format: ${(e as Error).message}`);
  }
  const raw = parseJsonMeta(source, file, 'config');
  if (raw === undefined) throw new CheckpointError(source, '__metadata__.config is missing');
  let config: unknown;
  try {
    config = def.validate(raw);
  } catch (e) {
    throw new CheckpointError(source, `__metadata__.config: ${(e as Error).message}`);
  }
  const vocab = parseJsonMeta(source, file, 'vocab');
  checkVocab(source, def, config, vocab);

  const params = new Map<string, Float32Array>();
  const specs = parameterSpecs(def, config);
  for (const s of specs) {
    const t = file.tensors.get(s.name);
    if (!t) throw new CheckpointError(source, `tensor '${s.name}' [${s.shape.join(',')}] is missing`);
    if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i])) {
      throw new CheckpointError(
        source,
        `tensor '${s.name}' is [${t.shape.join(',')}], the config needs [${s.shape.join(',')}]`,
      );
    }
    const data = floatDataAsF32(t);
    if (!data)
      throw new CheckpointError(source, `tensor '${s.name}' is ${t.dtype}, expected a floating-point type`);
    const bad = data.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0)
      throw new CheckpointError(source, `tensor '${s.name}' has a non-finite value at index ${bad}`);
    params.set(s.name, data);
  }
  for (const name of file.tensors.keys()) {
    if (!params.has(name))
      throw new CheckpointError(
        source,
        `unexpected tensor '${name}' (not a parameter of this ${def.kind} config)`,
      );
  }
  return { def, config, params, ...(vocab !== undefined ? { vocab } : {}), metadata: { ...file.metadata } };
}

/** A vocabulary with a `words` list must have exactly the model's vocabulary size. */
function checkVocab(source: string, def: AnyModelDef, config: unknown, vocab: unknown): void {
  if (typeof vocab !== 'object' || vocab === null) return;
  const words = (vocab as { words?: unknown }).words;
  const size = getPath(config, def.configPaths.vocabSize);
  if (Array.isArray(words) && typeof size === 'number' && words.length !== size) {
    throw new CheckpointError(
      source,
      `__metadata__.vocab has ${words.length} words, but ${def.configPaths.vocabSize} is ${size}`,
    );
  }
}

export function loadModelCheckpoint(path: string): ModelCheckpoint {
  return fromFile(loadSafetensors(path), path);
}

export function decodeModelCheckpoint(bytes: Uint8Array, source = '<checkpoint>'): ModelCheckpoint {
  return fromFile(readSafetensors(bytes, { source }), source);
}
