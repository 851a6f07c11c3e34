// `--set key=value` overrides of a config (model-agnostic): `key` is a dotted path into the config
// (`fusion.variant`, `vision.depth`), and the value is parsed as the type of the value already at
// that path (number, boolean, string; JSON for arrays and objects), so `--set decoder=0` is an
// error instead of a string "0" that validation would reject later with a less precise message.
// Overrides apply to a COMPLETE config (after validation), then the result is validated again.

import { ConfigError } from './schema.js';

export type JsonObject = { [k: string]: unknown };

/** Splits `key=value` at the first '='. */
export function parseAssignment(s: string): { key: string; value: string } {
  const i = s.indexOf('=');
  if (i <= 0) throw new ConfigError(s, `an override must look like key=value, got '${s}'`);
  return { key: s.slice(0, i).trim(), value: s.slice(i + 1) };
}

function parseTyped(key: string, current: unknown, text: string): unknown {
  switch (typeof current) {
    case 'number': {
      const v = text.trim() === '' ? Number.NaN : Number(text);
      if (!Number.isFinite(v)) throw new ConfigError(key, `expects a number, got '${text}'`);
      return v;
    }
    case 'boolean':
      if (text === 'true') return true;
      if (text === 'false') return false;
      throw new ConfigError(key, `expects true or false, got '${text}'`);
    case 'string':
      return text;
    default: {
      try {
        const v: unknown = JSON.parse(text);
        if (Array.isArray(current) !== Array.isArray(v) || typeof v !== typeof current) {
          throw new Error('type differs');
        }
        return v;
      } catch {
        throw new ConfigError(
          key,
          `expects JSON of the same type as ${JSON.stringify(current)}, got '${text}'`,
        );
      }
    }
  }
}

/** The value at a dotted path, or undefined. */
export function getPath(o: unknown, path: string): unknown {
  let cur: unknown = o;
  for (const k of path.split('.')) {
    if (typeof cur !== 'object' || cur === null || !Object.hasOwn(cur, k)) return undefined;
    cur = (cur as JsonObject)[k];
  }
  return cur;
}

/** A deep copy of `config` with `value` (already typed) at the dotted `path`, which must exist. */
export function setPath<T>(config: T, path: string, value: unknown): T {
  const copy = structuredClone(config) as unknown as JsonObject;
  const keys = path.split('.');
  let cur: JsonObject = copy;
  keys.forEach((k, i) => {
    if (!Object.hasOwn(cur, k)) {
      const at = keys.slice(0, i).join('.');
      const known = Object.keys(cur).join(', ');
      throw new ConfigError(path, `no such key '${k}'${at ? ` in '${at}'` : ''} (known: ${known})`);
    }
    if (i === keys.length - 1) cur[k] = value;
    else {
      const next = cur[k];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) {
        throw new ConfigError(path, `'${keys.slice(0, i + 1).join('.')}' is not an object`);
      }
      cur = next as JsonObject;
    }
  });
  return copy as unknown as T;
}

/** Applies `key=value` overrides in order; each key must exist and each value parse as its type. */
export function applyOverrides<T>(config: T, sets: readonly string[]): T {
  let out = structuredClone(config);
  for (const s of sets) {
    const { key, value } = parseAssignment(s);
    const current = getPath(out, key);
    if (current === undefined) out = setPath(out, key, value); // throws, naming the missing key
    out = setPath(out, key, parseTyped(key, current, value));
  }
  return out;
}
