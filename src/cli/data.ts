// `refseg data <subcommand>`: dataset tools. `synth` writes the built-in synthetic referring
// benchmark (spec/data.md §4) in the refer layout; `check` validates a dataset of any layout
// (src/data/check.ts) and `stats` describes it (src/data/stats.ts); more subcommands register in
// SUBCOMMANDS.
//
// Usage mistakes (unknown subcommand or flag, bad value) exit 2 with a message naming what was
// wrong; failures while running exit 1.

import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError, datasetFlag, required } from './args.js';
import type { Command } from './commands.js';
import {
  FLAVORS,
  FLAVOR_SPECS,
  MAX_SIZE,
  MIN_SIZE,
  isFlavor,
  writeSynthDataset,
} from '../data/synth/generate.js';
import { DATASET_NAMES } from '../data/datasets.js';
import { checkDataset } from '../data/check.js';
import { datasetStats, statsCharts, statsMarkdown } from '../data/stats.js';
import type { DatasetLocation } from '../data/splits.js';
import { writeFileAtomic } from '../io/atomic.js';
import { Progress } from '../util/progress.js';

/** A usage mistake: reported with the command's name and a pointer to --help, exit code 2. */

interface Subcommand {
  summary: string;
  run(argv: string[]): Promise<number>;
}

/** parseArgs with its errors reworded to name the flag ("unknown option '--imgs'"). */
function parseFlags(
  argv: string[],
  options: NonNullable<ParseArgsConfig['options']>,
): Record<string, string | boolean | undefined> {
  try {
    const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
    return values as Record<string, string | boolean | undefined>;
  } catch (e) {
    const err = e as Error & { code?: string };
    const quoted = /'([^']+)'/.exec(err.message)?.[1];
    switch (err.code) {
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
        throw new UsageError(`unknown option '${quoted}'`);
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
        // node: "Option '--out <value>' argument missing", "... is ambiguous" (a value like '-1'),
        // "Option '--force' does not take an argument"
        const flag = quoted?.split(' ')[0];
        if (!flag) throw new UsageError(err.message);
        if (/does not take an argument/.test(err.message))
          throw new UsageError(`option '${flag}' takes no value`);
        const hint = /ambiguous/.test(err.message)
          ? ` (for a value starting with '-', write ${flag}=VALUE)`
          : '';
        throw new UsageError(`option '${flag}' needs a value${hint}`);
      }
      case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
        throw new UsageError(`unexpected argument '${quoted}'`);
      default:
        throw new UsageError(err.message);
    }
  }
}

function intFlag(
  name: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be an integer, got '${value}'`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`--${name} must be in [${min}, ${max}], got ${value}`);
  return n;
}

const SYNTH_USAGE = `Usage: refseg data synth --flavor FLAVOR --out DIR [options]

Write the built-in synthetic referring-segmentation benchmark in the refer layout:
  DIR/images/synth/FLAVOR/synth_NNNNNN.png
  DIR/FLAVOR/instances.json        (COCO, compressed RLE masks)
  DIR/FLAVOR/refs(SPLITBY).json    (splitBy unc: train/val/testA/testB; umd: train/val/test)

Options:
  --flavor F      ${FLAVORS.join(' | ')}
                    synth-refcoco:  attributes and location words ("the small red circle on the left")
                    synth-refcoco+: appearance only, no location words ("the striped blue square")
                    synth-refcocog: relations ("the blue square that is below the large yellow star")
  --out DIR       dataset root (created if missing)
  --images N      number of images (default 2000)
  --size S        image side in pixels, ${MIN_SIZE}..${MAX_SIZE} (default 320)
  --seed N        random seed (default 0); same seed, same bytes
  --force         replace an existing dataset of this flavor in DIR
  -h, --help      show this help`;

async function synth(argv: string[]): Promise<number> {
  const values = parseFlags(argv, {
    flavor: { type: 'string' },
    out: { type: 'string' },
    images: { type: 'string' },
    size: { type: 'string' },
    seed: { type: 'string' },
    force: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    console.log(SYNTH_USAGE);
    return 0;
  }
  const flavor = values.flavor as string | undefined;
  if (flavor === undefined) throw new UsageError(`--flavor is required (${FLAVORS.join(', ')})`);
  if (!isFlavor(flavor)) throw new UsageError(`--flavor '${flavor}' is not one of ${FLAVORS.join(', ')}`);
  const out = values.out as string | undefined;
  if (!out) throw new UsageError('--out is required');
  const images = intFlag('images', values.images as string | undefined, 2000, 1, 10_000_000);
  const size = intFlag('size', values.size as string | undefined, 320, MIN_SIZE, MAX_SIZE);
  const seed = intFlag('seed', values.seed as string | undefined, 0, 0, 2 ** 32 - 1);

  const progress = new Progress(flavor, images, { unit: 'images' });
  const t0 = performance.now();
  let summary;
  try {
    summary = await writeSynthDataset({
      flavor,
      out,
      images,
      size,
      seed,
      force: values.force === true,
      onProgress: (done) => progress.update(done),
    });
  } catch (e) {
    progress.stop();
    throw e;
  }
  progress.finish();
  const seconds = (performance.now() - t0) / 1000;

  const rows = [...Object.entries(summary.splits), ['total', summary.total] as const];
  const lines = [
    `${flavor} (splitBy ${FLAVOR_SPECS[flavor].splitBy}, ${size}×${size}, seed ${seed}) → ${out}`,
    `${'split'.padEnd(6)} ${'images'.padStart(7)} ${'refs'.padStart(7)} ${'expressions'.padStart(11)}`,
    ...rows.map(
      ([name, c]) =>
        `${name.padEnd(6)} ${String(c.images).padStart(7)} ${String(c.refs).padStart(7)} ${String(c.sentences).padStart(11)}`,
    ),
    `${summary.annotations} objects; ${(100 * summary.withDistractor).toFixed(1)}% of refs have a same-shape or same-colour distractor; ${summary.meanWords.toFixed(1)} words per expression`,
    `wrote ${summary.instancesPath}, ${summary.refsPath} and ${images} images in ${seconds.toFixed(1)} s (${(images / seconds).toFixed(0)} images/s)`,
  ];
  console.log(lines.join('\n'));
  return 0;
}

// ---------- check and stats ----------

/** --data, --dataset and --split-by, shared by check and stats. */
const DATASET_FLAGS = {
  data: { type: 'string' },
  dataset: { type: 'string' },
  'split-by': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const DATASET_HELP = `  --data DIR      dataset root: DIR/<dataset>/instances.json + refs(<splitBy>).json|.p (refer
                  layout), or DIR/referit/{images,mask}/ + referit_query_<split>.json (referit)
  --dataset NAME  ${DATASET_NAMES.join(' | ')}
  --split-by S    refs(<S>) file (default: the dataset's; ReferIt has none)
  --json          print JSON instead of text`;

function datasetFlags(values: Record<string, string | boolean | undefined>): DatasetLocation {
  const root = required('data', values.data as string | undefined, 'the dataset root');
  const dataset = datasetFlag(values.dataset as string | undefined);
  const splitBy = values['split-by'] as string | undefined;
  return { root, dataset, ...(splitBy ? { splitBy } : {}) };
}

/** Progress bars for a job of several long loops: a new phase finishes the previous bar. */
function phasedProgress(unit: string) {
  let current: { phase: string; bar: Progress } | undefined;
  return {
    update(phase: string, done: number, total: number): void {
      if (current?.phase !== phase) {
        current?.bar.finish();
        current = { phase, bar: new Progress(phase, total, { unit }) };
      }
      current.bar.update(done);
    },
    finish: () => current?.bar.finish(),
    stop: () => current?.bar.stop(),
  };
}

const CHECK_USAGE = `Usage: refseg data check --data DIR --dataset NAME [options]

Validate every split of a dataset and list every problem found: split files that do not parse,
records pointing to missing annotations or images, file names leaving the dataset root, masks
that do not decode (RLE, polygons, ReferIt .mat), missing image files. Prints the counts per split
and the problems with the files they concern; exit code 1 when there are problems, 0 otherwise.

Options:
${DATASET_HELP}
  --decode-images also decode every image and compare its size with its mask's (slow)
  -h, --help      show this help`;

/** How many problems the text output lists (JSON has them all). */
const LISTED_PROBLEMS = 50;

async function check(argv: string[]): Promise<number> {
  const values = parseFlags(argv, { ...DATASET_FLAGS, 'decode-images': { type: 'boolean' } });
  if (values.help) {
    console.log(CHECK_USAGE);
    return 0;
  }
  const where = datasetFlags(values);
  const progress = phasedProgress('items');
  let report;
  try {
    report = await checkDataset({
      ...where,
      decodeImages: values['decode-images'] === true,
      onProgress: progress.update,
    });
  } catch (e) {
    progress.stop();
    throw e;
  }
  progress.finish();
  const ok = report.problems.length === 0;
  if (values.json) {
    console.log(JSON.stringify({ ok, ...report }, null, 1));
    return ok ? 0 : 1;
  }
  const lines = [
    `${report.dataset}${report.splitBy ? ` (splitBy ${report.splitBy})` : ''} at ${report.root}` +
      (report.sources.length
        ? `: splits from ${report.sources.map((f) => path.basename(f)).join(', ')}`
        : ''),
  ];
  if (report.splits.length > 0) {
    const w = Math.max(5, ...report.splits.map((s) => s.split.length));
    const cols = ['declared', 'expressions', 'refs', 'images', 'skipped'] as const;
    lines.push(`${'split'.padEnd(w)} ${cols.map((c) => c.padStart(11)).join(' ')}`);
    for (const s of report.splits)
      lines.push(`${s.split.padEnd(w)} ${cols.map((c) => String(s[c]).padStart(11)).join(' ')}`);
  }
  if (ok) lines.push('OK: no problems found');
  else {
    lines.push(`${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}:`);
    for (const p of report.problems.slice(0, LISTED_PROBLEMS))
      lines.push(`  ${p.split ? `[${p.split}] ` : ''}${p.where}: ${p.problem}`);
    if (report.problems.length > LISTED_PROBLEMS)
      lines.push(`  … and ${report.problems.length - LISTED_PROBLEMS} more (--json lists them all)`);
  }
  console.log(lines.join('\n'));
  return ok ? 0 : 1;
}

const STATS_USAGE = `Usage: refseg data stats --data DIR --dataset NAME [options]

Describe every split of a dataset: expressions, refs, images; expression length in words (as
evaluation counts them) and target size (mask area / image area), as histograms and in the
evaluation's breakdown buckets. Prints the Markdown summary (or JSON).

Options:
${DATASET_HELP}
  --out DIR       also write DIR/stats.md, DIR/stats.json and the bar charts DIR/splits.png,
                  DIR/lengths.png, DIR/areas.png (DIR is created if missing)
  -h, --help      show this help`;

async function stats(argv: string[]): Promise<number> {
  const values = parseFlags(argv, { ...DATASET_FLAGS, out: { type: 'string' } });
  if (values.help) {
    console.log(STATS_USAGE);
    return 0;
  }
  const where = datasetFlags(values);
  const out = values.out as string | undefined;
  if (out === '') throw new UsageError('--out needs a folder');
  const progress = phasedProgress('items');
  let s;
  try {
    s = await datasetStats({ ...where, onProgress: progress.update });
  } catch (e) {
    progress.stop();
    throw e;
  }
  progress.finish();
  const json = JSON.stringify(s, null, 1) + '\n';
  if (out) {
    await mkdir(out, { recursive: true });
    const charts = await statsCharts(s);
    for (const c of charts) await writeFileAtomic(path.join(out, c.name), c.png);
    await writeFileAtomic(path.join(out, 'stats.json'), Buffer.from(json));
    const md = statsMarkdown(
      s,
      charts.map((c) => c.name),
    );
    await writeFileAtomic(path.join(out, 'stats.md'), Buffer.from(md));
    console.error(`wrote stats.md, stats.json, ${charts.map((c) => c.name).join(', ')} to ${out}`);
  }
  console.log(values.json ? json.trimEnd() : statsMarkdown(s).trimEnd());
  return 0;
}

const SUBCOMMANDS: Record<string, Subcommand> = {
  synth: { summary: 'write the synthetic referring benchmark (refer layout)', run: synth },
  check: { summary: 'validate a dataset: files, records, masks, images; exit 1 on problems', run: check },
  stats: {
    summary: 'per-split counts, expression length and target size histograms (PNG, Markdown, JSON)',
    run: stats,
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(SUBCOMMANDS).map((k) => k.length));
  const lines = Object.entries(SUBCOMMANDS).map(([name, s]) => `  ${name.padEnd(width)}  ${s.summary}`);
  return `Usage: refseg data <subcommand> [options]\n\nSubcommands:\n${lines.join('\n')}\n\nRun 'refseg data <subcommand> --help' for its options.`;
}

export const dataCommand: Command = {
  summary: 'dataset tools (synth: generate the synthetic benchmark; check, stats: validate, describe)',
  async run(argv: string[]): Promise<number> {
    const [name, ...rest] = argv;
    if (name === '--help' || name === '-h' || name === 'help') {
      console.log(usage());
      return 0;
    }
    if (name === undefined) {
      console.error(`refseg data: missing subcommand\n\n${usage()}`);
      return 2;
    }
    const sub = SUBCOMMANDS[name];
    if (!sub) {
      console.error(
        `refseg data: unknown subcommand '${name}' (known: ${Object.keys(SUBCOMMANDS).join(', ')})\n\n${usage()}`,
      );
      return 2;
    }
    try {
      return await sub.run(rest);
    } catch (e) {
      if (e instanceof UsageError) {
        console.error(`refseg data ${name}: ${e.message}\nRun 'refseg data ${name} --help' for usage.`);
        return 2;
      }
      console.error(`refseg data ${name}: ${e instanceof Error ? e.message : String(e)}`);
      if (process.env.REFSEG_DEBUG && e instanceof Error) console.error(e.stack);
      return 1;
    }
  },
};
