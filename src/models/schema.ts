// Field checks for model configs: every error names the dotted field it is about
// (`config field 'vision.heads': ...`), unknown keys are refused (typos must not pass silently),
// and optional fields are completed from defaults so the validated object is total.
// Model-agnostic: ReSTR and Shared-RIS configs are both validated with these helpers.

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`config field '${field || '<root>'}': ${message}`);
  }
}

const show = (v: unknown): string =>
  typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));

export const join = (path: string, key: string | number): string => (path ? `${path}.${key}` : String(key));

/** A plain JSON object at `path` whose keys are all in `allowed`. */
export function object(path: string, v: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new ConfigError(path, `must be an object, got ${show(v)}`);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) {
      const near = allowed.filter((a) => a.toLowerCase() === k.toLowerCase() || editDistance(a, k) <= 2);
      throw new ConfigError(
        join(path, k),
        `unknown key${near.length ? ` (did you mean '${near[0]}'?)` : ''}; allowed: ${allowed.join(', ')}`,
      );
    }
  }
  return o;
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(
        d[i - 1]![j]! + 1,
        d[i]![j - 1]! + 1,
        d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
  }
  return d[a.length]![b.length]!;
}

function present(o: Record<string, unknown>, key: string, path: string, fallback: unknown): unknown {
  const v = o[key];
  if (v !== undefined) return v;
  if (fallback === undefined) throw new ConfigError(join(path, key), 'is required');
  return fallback;
}

/** A positive integer (or ≥ `min`). */
export function int(
  o: Record<string, unknown>,
  key: string,
  path: string,
  fallback?: number,
  min = 1,
): number {
  const v = present(o, key, path, fallback);
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw new ConfigError(join(path, key), `must be an integer, got ${show(v)}`);
  if (v < min) throw new ConfigError(join(path, key), `must be ≥ ${min}, got ${v}`);
  return v;
}

/** A finite number in [lo, hi] (or [lo, hi) with `openHigh`). */
export function num(
  o: Record<string, unknown>,
  key: string,
  path: string,
  lo: number,
  hi: number,
  fallback?: number,
  openHigh = false,
): number {
  const v = present(o, key, path, fallback);
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new ConfigError(join(path, key), `must be a finite number, got ${show(v)}`);
  if (v < lo || v > hi || (openHigh && v === hi))
    throw new ConfigError(join(path, key), `must be in [${lo}, ${hi}${openHigh ? ')' : ']'}, got ${v}`);
  return v;
}

export function bool(o: Record<string, unknown>, key: string, path: string, fallback?: boolean): boolean {
  const v = present(o, key, path, fallback);
  if (typeof v !== 'boolean') throw new ConfigError(join(path, key), `must be true or false, got ${show(v)}`);
  return v;
}

export function oneOf<T extends string>(
  o: Record<string, unknown>,
  key: string,
  path: string,
  values: readonly T[],
  fallback?: T,
): T {
  const v = present(o, key, path, fallback);
  if (typeof v !== 'string' || !values.includes(v as T)) {
    throw new ConfigError(
      join(path, key),
      `must be one of ${values.map((x) => `"${x}"`).join(', ')}, got ${show(v)}`,
    );
  }
  return v as T;
}

/** Throws a ConfigError on `field` unless `ok`. */
export function check(ok: boolean, field: string, message: string): void {
  if (!ok) throw new ConfigError(field, message);
}
