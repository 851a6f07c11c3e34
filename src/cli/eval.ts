// `refseg eval`: scores a checkpoint on one split of a refer-layout dataset with the protocol of
// spec/restr.md §5 and the metrics of spec/data.md §5 (oIoU, mIoU, Prec@0.5…0.9 at the original
// resolution, by expression length and by target size), writes the report (Markdown + JSON) and
// prints it. `refseg eval merge` joins shards.
//
// - Shards: `--shard i/n` takes the expressions whose index is ≡ i (mod n) after a stable sort by
//   (ref_id, sent_id), so the n shards partition the split whatever order the refs file has; each
//   writes its MetricAccumulator state plus the run's context, and `merge` checks that the shards
//   are the same evaluation, that each of 0..n-1 is there exactly once, and that no expression is
//   lost before summing. The merged report is byte-for-byte the unsharded one (metrics.ts sums in
//   one fixed order).
// - `--blank-text` feeds every expression as the empty string (all padding): the text-blind control
//   for "the model must use the sentence". Breakdowns still bucket by the real sentence's length.
// - `--subset` keeps the refs of the synthetic benchmark whose target has a distractor of the same
//   shape (or colour) in the scene, read from the refs' `synth` metadata: the expressions a model
//   can only get right by reading them.
//
// Usage mistakes exit 2 with a message naming the flag; failures while running exit 1.

import { mkdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { DATASET_NAMES, datasetInfo } from '../data/datasets.js';
import { loadRefer, type ReferSample } from '../data/refer.js';
import { textEncoderFromCheckpoint, type TextEncoder } from '../data/text.js';
import { evaluate } from '../eval/evaluate.js';
import { MetricAccumulator, type MetricsState } from '../eval/metrics.js';
import { buildReport, reportMarkdown, writeReport, type EvalReport } from '../eval/report.js';
import { writeFileAtomic } from '../io/atomic.js';
import { Predictor } from '../infer/predictor.js';
import { loadModelCheckpoint } from '../models/checkpoint.js';
import { UsageError, datasetFlag, intFlag, numberFlag, required } from './args.js';
import type { Command } from './commands.js';

const HELP = `Usage: refseg eval --checkpoint CKPT --data DIR --dataset NAME [options]
       refseg eval merge SHARD.json... [--json] [--out BASE]

Scores a checkpoint on one split (restr.md §5): each image letterboxed to the model's size, the
probability mapped back to the original image (bilinear) and binarized at probability ≥ threshold;
oIoU, mIoU, Prec@0.5…0.9 at the original resolution, by expression length and by target size;
and pointing: the share of expressions whose most probable pixel lies on the target (no threshold).

Options:
  --checkpoint F        model checkpoint (.safetensors) carrying its vocabulary
  --data DIR            dataset root (refer layout: DIR/<dataset>/instances.json, refs(<splitBy>).json|.p)
  --dataset NAME        ${DATASET_NAMES.join(' | ')}
  --split S             split to score (default val)
  --split-by S          refs(<S>) file (default: the dataset's)
  --threshold t         binarization threshold in [0, 1] (default: the model's, ReSTR 0.5)
  --batch B             expressions per run (default 8)
  --threads N           ONNX Runtime intra-op threads (default: all cores)
  --subset NAME         same-shape | same-color: only refs whose target has at least one distractor
                        of the same shape (colour) in the scene (synthetic benchmark metadata)
  --blank-text          every expression replaced by the empty string (text-blind control)
  --shard i/n           score the expressions with index ≡ i (mod n) after sorting by (ref_id, sent_id)
                        and write the shard state BASE.shard-i-of-n.json instead of a report
  --out BASE            write BASE.md and BASE.json (default: next to the checkpoint,
                        <checkpoint>.eval.<dataset>.<split>[.<subset>][.blank-text])
  --save-predictions D  write D/<ref_id>_<sent_id>.png (0/255 mask at the original size) and
                        D/predictions.jsonl ({ref_id, sent_id, sentence, iou} per line;
                        predictions.shard-i-of-n.jsonl for a shard)
  --json                print the report as JSON instead of Markdown
  -h, --help            show this help

merge: joins the shard states of one evaluation (all of shards 0..n-1, exactly once) into the
report an unsharded run writes; BASE defaults to the first shard's name without .shard-i-of-n.json.`;

// ---------- flags ----------

export interface Shard {
  index: number;
  count: number;
}

export function parseShard(v: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(v);
  if (!m) throw new UsageError(`--shard must be i/n (e.g. 0/4), got '${v}'`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index >= count) throw new UsageError(`--shard ${v}: need n ≥ 1 and 0 ≤ i < n`);
  return { index, count };
}

/** Shard i of n of the expressions: index ≡ i (mod n) after a stable sort by (ref_id, sent_id). */
export function shardSamples<T extends { refId: number; sentId: number }>(
  samples: readonly T[],
  shard: Shard,
): T[] {
  return [...samples]
    .sort((a, b) => a.refId - b.refId || a.sentId - b.sentId)
    .filter((_, i) => i % shard.count === shard.index);
}

/** `--subset` names → the per-ref `synth` count that must be ≥ 1 (src/data/synth/generate.ts). */
const SUBSETS: Record<string, { key: string; what: string }> = {
  'same-shape': { key: 'sameShapeDistractors', what: 'a distractor of the same shape' },
  'same-color': { key: 'sameColorDistractors', what: 'a distractor of the same colour' },
};

function inSubset(s: ReferSample, subset: string, refsFile: string): boolean {
  const synth = s.extra?.synth as Record<string, unknown> | undefined;
  const n = synth?.[SUBSETS[subset]!.key];
  if (typeof n !== 'number')
    throw new Error(
      `--subset ${subset} needs the synthetic benchmark's per-ref "synth" metadata; ${refsFile} ref_id ${s.refId} has no synth.${SUBSETS[subset]!.key}`,
    );
  return n >= 1;
}

/** The empty sentence for every expression: all padding, what the model sees without text. */
function blankEncoder(e: TextEncoder): TextEncoder {
  const blank = e.encode('');
  return { length: e.length, encode: () => blank.slice(), toJSON: () => e.toJSON() };
}

// ---------- shard files ----------

/** Everything besides the metrics that two shards of one evaluation must share. */
interface EvalContext {
  model: string;
  checkpoint: string;
  splitBy: string;
  imageSize: number;
  notes: string[];
  /** Expressions selected in the whole split (subset applied, before sharding). */
  expressions: number;
  /** Samples the loader skipped as corrupt (the same for every shard). */
  skippedLoad: number;
}

interface ShardState extends MetricsState {
  shard: Shard;
  eval: EvalContext;
  /** Samples of this shard skipped because their image or mask did not decode. */
  skippedDecode: number;
}

const shardSuffix = (s: Shard): string => `.shard-${s.index}-of-${s.count}`;

function reportWithExpressions(
  acc: MetricAccumulator,
  ctx: EvalContext,
  skipped: number,
  extraNotes: string[] = [],
) {
  const report: EvalReport = buildReport(acc, {
    model: ctx.model,
    checkpoint: ctx.checkpoint,
    splitBy: ctx.splitBy,
    imageSize: ctx.imageSize,
    skipped,
    notes: [...ctx.notes, ...extraNotes],
  });
  // Per-expression IoUs in (ref_id, sent_id) order, so runs can be compared expression by expression.
  return { ...report, expressions: acc.ious() };
}

async function emit(report: EvalReport, json: boolean, base?: string): Promise<void> {
  if (base) {
    const w = await writeReport(base, report);
    console.error(`wrote ${w.markdown} and ${w.json}`);
  }
  console.log(json ? JSON.stringify(report, null, 2) : reportMarkdown(report));
}

// ---------- refseg eval ----------

async function runEval(argv: string[]): Promise<number> {
  const { values: o } = parseArgs({
    args: argv,
    options: {
      checkpoint: { type: 'string' },
      data: { type: 'string' },
      dataset: { type: 'string' },
      split: { type: 'string', default: 'val' },
      'split-by': { type: 'string' },
      threshold: { type: 'string' },
      batch: { type: 'string' },
      threads: { type: 'string' },
      subset: { type: 'string' },
      'blank-text': { type: 'boolean', default: false },
      shard: { type: 'string' },
      out: { type: 'string' },
      'save-predictions': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const checkpoint = required('checkpoint', o.checkpoint);
  const root = required('data', o.data, 'the dataset root');
  const dataset = datasetFlag(o.dataset);
  let threshold = numberFlag('threshold', o.threshold, { min: 0, max: 1 });
  const batchSize = intFlag('batch', o.batch, { min: 1 }) ?? 8;
  const threads = intFlag('threads', o.threads, { min: 1 });
  const shard = o.shard === undefined ? undefined : parseShard(o.shard);
  if (o.subset !== undefined && !(o.subset in SUBSETS))
    throw new UsageError(`--subset '${o.subset}' is not one of ${Object.keys(SUBSETS).join(', ')}`);
  const blankText = o['blank-text'] === true;

  const ck = loadModelCheckpoint(checkpoint);
  const encoder = textEncoderFromCheckpoint(ck.vocab, ck.def.maxTokens(ck.config), checkpoint);
  threshold ??= ck.def.threshold(ck.config);
  const data = await loadRefer({
    root,
    dataset,
    split: o.split!,
    ...(o['split-by'] ? { splitBy: o['split-by'] } : {}),
  });
  const skippedLoad = data.budget.count;

  let selected = data.samples;
  const notes: string[] = [];
  if (o.subset) {
    const subset = o.subset;
    selected = selected.filter((s) => inSubset(s, subset, data.refsFile));
    notes.push(
      `subset ${subset}: expressions whose target has ${SUBSETS[subset]!.what} in the scene (${selected.length} of ${data.samples.length})`,
    );
    if (selected.length === 0)
      throw new Error(`--subset ${subset}: no expression of ${data.split} qualifies`);
  }
  if (blankText)
    notes.push('text-blind control: every expression replaced by the empty string (all padding)');
  const samples = shard ? shardSamples(selected, shard) : selected;

  const imageSize = ck.def.imageSize(ck.config);
  const ctx: EvalContext = {
    model: ck.def.kind,
    checkpoint,
    splitBy: data.splitBy,
    imageSize,
    notes,
    expressions: selected.length,
    skippedLoad,
  };

  const defaultSplitBy = datasetInfo(dataset).defaultSplitBy;
  const ckName = path.basename(checkpoint).replace(/\.safetensors$/, '');
  const base =
    o.out ??
    path.join(
      path.dirname(checkpoint),
      `${ckName}.eval.${dataset}${data.splitBy !== defaultSplitBy ? `.${data.splitBy}` : ''}.${data.split}` +
        `${o.subset ? `.${o.subset}` : ''}${blankText ? '.blank-text' : ''}`,
    );

  const predDir = o['save-predictions'];
  const lines: { refId: number; sentId: number; line: string }[] = [];
  if (predDir) await mkdir(predDir, { recursive: true });

  const predictor = await Predictor.create(ck.def, ck.config, ck.params, threads ? { threads } : {});
  let acc: MetricAccumulator;
  try {
    acc = await evaluate({
      predictor,
      encoder: blankText ? blankEncoder(encoder) : encoder,
      samples,
      dataset,
      split: data.split,
      threshold,
      batchSize,
      progress: {
        label: `eval ${dataset} ${data.split}${shard ? ` shard ${shard.index}/${shard.count}` : ''}`,
      },
      budget: data.budget,
      ...(predDir
        ? {
            onPrediction: async (s: ReferSample, _p: Float32Array, pred: Uint8Array, r: { iou: number }) => {
              const png = Buffer.alloc(pred.length);
              for (let i = 0; i < pred.length; i++) png[i] = pred[i] ? 255 : 0;
              // b-w: a one-channel grayscale PNG (sharp would otherwise write sRGB).
              await sharp(png, { raw: { width: s.width, height: s.height, channels: 1 } })
                .toColourspace('b-w')
                .png()
                .toFile(path.join(predDir, `${s.refId}_${s.sentId}.png`));
              lines.push({
                refId: s.refId,
                sentId: s.sentId,
                line: JSON.stringify({
                  ref_id: s.refId,
                  sent_id: s.sentId,
                  sentence: s.sentence,
                  iou: r.iou,
                }),
              });
            },
          }
        : {}),
    });
  } finally {
    await predictor.dispose();
  }
  const skippedDecode = data.budget.count - skippedLoad;

  if (predDir) {
    lines.sort((a, b) => a.refId - b.refId || a.sentId - b.sentId);
    const file = path.join(predDir, `predictions${shard ? shardSuffix(shard) : ''}.jsonl`);
    await writeFileAtomic(file, new TextEncoder().encode(lines.map((l) => l.line + '\n').join('')));
    console.error(`wrote ${lines.length} masks and ${file}`);
  }

  if (shard) {
    const state: ShardState = { ...acc.toJSON(), shard, eval: ctx, skippedDecode };
    const file = `${base}${shardSuffix(shard)}.json`;
    await writeFileAtomic(file, new TextEncoder().encode(JSON.stringify(state) + '\n'));
    console.error(`wrote ${file} (shard ${shard.index}/${shard.count}: ${acc.size} expressions)`);
    const partial = `shard ${shard.index}/${shard.count}: a partial result; merge all shards with 'refseg eval merge'`;
    await emit(reportWithExpressions(acc, ctx, skippedLoad + skippedDecode, [partial]), o.json === true);
    return 0;
  }
  await emit(reportWithExpressions(acc, ctx, skippedLoad + skippedDecode), o.json === true, base);
  return 0;
}

// ---------- refseg eval merge ----------

async function readShard(file: string): Promise<ShardState> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
  const s = json as Partial<ShardState> | null;
  const sh = s?.shard;
  if (
    !s ||
    typeof s !== 'object' ||
    !sh ||
    !Number.isSafeInteger(sh.index) ||
    !Number.isSafeInteger(sh.count) ||
    !s.eval
  )
    throw new Error(
      `${file}: not a shard state written by 'refseg eval --shard' (no "shard" and "eval" fields)`,
    );
  return s as ShardState;
}

async function runMerge(argv: string[]): Promise<number> {
  const { values: o, positionals: files } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean', default: false }, out: { type: 'string' } },
    strict: true,
    allowPositionals: true,
  });
  if (files.length === 0) throw new UsageError('merge needs the shard files (SHARD.json...)');
  const shards = await Promise.all(files.map(readShard));
  const first = shards[0]!;
  const { count } = first.shard;
  const same = (s: ShardState) => JSON.stringify({ ...s.eval, d: s.dataset, sp: s.split, t: s.threshold });
  const byIndex = new Map<number, string>();
  shards.forEach((s, k) => {
    const file = files[k]!;
    if (s.shard.count !== count)
      throw new Error(`${file} is shard ${s.shard.index}/${s.shard.count}, ${files[0]} is one of ${count}`);
    if (same(s) !== same(first)) {
      const diff = (['dataset', 'split', 'threshold'] as const).find((f) => s[f] !== first[f]);
      const what = diff
        ? `${diff} ${JSON.stringify(s[diff])} vs ${JSON.stringify(first[diff])}`
        : Object.keys(s.eval)
            .filter(
              (f) =>
                JSON.stringify(s.eval[f as keyof EvalContext]) !==
                JSON.stringify(first.eval[f as keyof EvalContext]),
            )
            .map(
              (f) =>
                `${f} ${JSON.stringify(s.eval[f as keyof EvalContext])} vs ${JSON.stringify(first.eval[f as keyof EvalContext])}`,
            )
            .join(', ');
      throw new Error(`${file} and ${files[0]} are not shards of the same evaluation (${what})`);
    }
    const dup = byIndex.get(s.shard.index);
    if (dup !== undefined) throw new Error(`${file} and ${dup} are both shard ${s.shard.index}/${count}`);
    byIndex.set(s.shard.index, file);
  });
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !byIndex.has(i));
  if (missing.length)
    throw new Error(
      `shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${count}`).join(', ')} missing`,
    );

  const acc = MetricAccumulator.merge(shards);
  const skippedDecode = shards.reduce((a, s) => a + (s.skippedDecode ?? 0), 0);
  if (acc.size + skippedDecode !== first.eval.expressions)
    throw new Error(
      `the shards hold ${acc.size} expressions (+${skippedDecode} skipped), the evaluation selected ${first.eval.expressions}`,
    );
  let base = o.out;
  if (!base) {
    const m = /^(.*)\.shard-\d+-of-\d+\.json$/.exec(files[0]!);
    if (!m) throw new UsageError(`--out is required: ${files[0]} is not named BASE.shard-i-of-n.json`);
    base = m[1]!;
  }
  console.error(`merged ${count} shard${count > 1 ? 's' : ''}: ${acc.size} expressions`);
  await emit(
    reportWithExpressions(acc, first.eval, first.eval.skippedLoad + skippedDecode),
    o.json === true,
    base,
  );
  return 0;
}

export const evalCommand: Command = {
  summary: 'score a checkpoint on a split (oIoU, mIoU, Prec@t, breakdowns); merge shards',
  async run(argv: string[]): Promise<number> {
    if (argv.includes('--help') || argv.includes('-h') || argv[0] === 'help') {
      console.log(HELP);
      return 0;
    }
    const merge = argv[0] === 'merge';
    const name = merge ? 'refseg eval merge' : 'refseg eval';
    try {
      return merge ? await runMerge(argv.slice(1)) : await runEval(argv);
    } catch (e) {
      if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
        console.error(`${name}: ${(e as Error).message}\nRun 'refseg eval --help' for usage.`);
        return 2;
      }
      console.error(`${name}: ${e instanceof Error ? e.message : String(e)}`);
      if (process.env.REFSEG_DEBUG && e instanceof Error) console.error(e.stack);
      return 1;
    }
  },
};
