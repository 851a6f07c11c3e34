// Flag helpers shared by every command: a usage error (exit 2, message + the command's help),
// typed number parsing that names the flag, and the wrapper that turns both into exit codes.

import { DATASET_NAMES, type DatasetName, isDatasetName } from '../data/datasets.js';

export class UsageError extends Error {}

/** --dataset: required, and one of the known datasets. */
export function datasetFlag(v: string | undefined): DatasetName {
  const name = required('dataset', v, DATASET_NAMES.join(', '));
  if (!isDatasetName(name))
    throw new UsageError(`--dataset '${name}' is not one of ${DATASET_NAMES.join(', ')}`);
  return name;
}

export function intFlag(
  flag: string,
  v: string | undefined,
  o: { min?: number; max?: number } = {},
): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  const min = o.min ?? 0;
  const max = o.max ?? Number.MAX_SAFE_INTEGER;
  if (v.trim() === '' || !Number.isSafeInteger(n) || n < min || n > max) {
    const want =
      o.max !== undefined
        ? `an integer in [${min}, ${max}]`
        : min === 0
          ? 'a non-negative integer'
          : `an integer ≥ ${min}`;
    throw new UsageError(`--${flag} must be ${want}, got '${v}'`);
  }
  return n;
}

export function numberFlag(
  flag: string,
  v: string | undefined,
  o: { min?: number; max?: number } = {},
): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (
    v.trim() === '' ||
    !Number.isFinite(n) ||
    (o.min !== undefined && n < o.min) ||
    (o.max !== undefined && n > o.max)
  ) {
    const range = o.min !== undefined || o.max !== undefined ? ` in [${o.min ?? '-∞'}, ${o.max ?? '∞'}]` : '';
    throw new UsageError(`--${flag} must be a number${range}, got '${v}'`);
  }
  return n;
}

/** A comma-separated list of names ("category,synth.color"), none of them empty. */
export function listFlag(flag: string, v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const items = v.split(',').map((f) => f.trim());
  if (items.some((f) => f === ''))
    throw new UsageError(`--${flag} must be a comma-separated list of names, got '${v}'`);
  return items;
}

/** One of `choices`, or a usage error listing them ("a, b or c"). */
export function choiceFlag<T extends string>(
  flag: string,
  v: string | undefined,
  choices: readonly T[],
): T | undefined {
  if (v === undefined) return undefined;
  if (!(choices as readonly string[]).includes(v)) {
    const list =
      choices.length > 1 ? `${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}` : choices.join('');
    throw new UsageError(`--${flag} must be ${list}, got '${v}'`);
  }
  return v as T;
}

export function required<T>(flag: string, v: T | undefined, hint = ''): T {
  if (v === undefined || v === '') throw new UsageError(`--${flag} is required${hint ? ` (${hint})` : ''}`);
  return v;
}

/** Runs a command body: `--help` prints help; usage errors print the message and help, exit 2. */
export async function runCommand(help: string, argv: string[], fn: () => Promise<number>): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(help);
    return 0;
  }
  try {
    return await fn();
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`refseg: ${(e as Error).message}\n\n${help}`);
      return 2;
    }
    throw e;
  }
}
