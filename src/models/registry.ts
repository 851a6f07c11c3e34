// The model registry: config `model` kind → ModelDef, checkpoint format → ModelDef, preset name →
// config. Model-agnostic pipelines (init, inspect, export, train, eval) resolve `--config` here:
// a preset name or a JSON file, then `--set key=value` overrides, then the model's validation.
// A new model registers with one `registerModel` line at the bottom.

import { readFileSync } from 'node:fs';
import type { AnyModelDef, ModelDef } from './model.js';
import { applyOverrides } from './overrides.js';
import { RESTR_PRESETS } from './restr/config.js';
import { restrModel } from './restr/model.js';
import { ConfigError } from './schema.js';
import { SHARED_RIS_PRESETS } from './shared-ris/config.js';
import { sharedRisModel } from './shared-ris/model.js';

const MODELS = new Map<string, AnyModelDef>();
const PRESETS = new Map<string, { kind: string; config: unknown }>();

export function registerModel<C>(def: ModelDef<C>, presets: Readonly<Record<string, C>>): void {
  if (MODELS.has(def.kind)) throw new Error(`model kind '${def.kind}' is registered twice`);
  MODELS.set(def.kind, def as unknown as AnyModelDef);
  for (const [name, config] of Object.entries(presets)) {
    if (PRESETS.has(name)) throw new Error(`preset '${name}' is registered twice`);
    PRESETS.set(name, { kind: def.kind, config });
  }
}

export const modelKinds = (): string[] => [...MODELS.keys()];
export const presetNames = (): string[] => [...PRESETS.keys()];

export function modelDef(kind: string): AnyModelDef {
  const d = MODELS.get(kind);
  if (!d) throw new ConfigError('model', `unknown model '${kind}' (known: ${modelKinds().join(', ')})`);
  return d;
}

/** The model whose checkpoint/ONNX format id is `format` (e.g. 'refseg.restr/1'). */
export function modelForFormat(format: string): AnyModelDef {
  for (const d of MODELS.values()) if (d.format === format) return d;
  const known = [...MODELS.values()].map((d) => d.format).join(', ');
  throw new Error(`unknown model format '${format}' (known: ${known})`);
}

export interface ResolvedConfig {
  def: AnyModelDef;
  /** Validated and complete. */
  config: unknown;
  /** The preset name, or the file the config came from. */
  source: string;
}

/** Validates a raw config object with the model its `model` field names. */
export function validateConfig(raw: unknown): { def: AnyModelDef; config: unknown } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ConfigError('', 'a config must be a JSON object');
  const kind = (raw as { model?: unknown }).model;
  if (typeof kind !== 'string')
    throw new ConfigError('model', `is required (one of: ${modelKinds().join(', ')})`);
  const def = modelDef(kind);
  return { def, config: def.validate(raw) };
}

/**
 * `--config` (a preset name, or a path to a JSON file) plus `--set` overrides, validated. Overrides
 * are applied to the completed config, so every field can be overridden.
 */
export function resolveConfig(spec: string, sets: readonly string[] = []): ResolvedConfig {
  let raw: unknown;
  const preset = PRESETS.get(spec);
  if (preset) raw = structuredClone(preset.config);
  else if (spec.endsWith('.json')) {
    let text: string;
    try {
      text = readFileSync(spec, 'utf8');
    } catch (e) {
      throw new Error(`config file '${spec}': ${(e as Error).message}`);
    }
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new Error(`config file '${spec}': invalid JSON: ${(e as Error).message}`);
    }
  } else {
    throw new Error(`--config '${spec}' is neither a preset (${presetNames().join(', ')}) nor a .json file`);
  }
  const where = preset ? `preset '${spec}'` : `config file '${spec}'`;
  try {
    const first = validateConfig(raw);
    const config = sets.length ? first.def.validate(applyOverrides(first.config, sets)) : first.config;
    return { def: first.def, config, source: spec };
  } catch (e) {
    if (e instanceof ConfigError)
      throw new ConfigError(e.field, `${e.message.replace(/^config field '[^']*': /, '')} (in ${where})`);
    throw e;
  }
}

registerModel(restrModel, RESTR_PRESETS);
registerModel(sharedRisModel, SHARED_RIS_PRESETS);
