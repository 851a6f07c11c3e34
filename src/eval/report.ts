// Evaluation report, Markdown for people and JSON for tools, per spec/data.md §5: it names the
// binarization threshold, the resolution the metrics were computed at ("original") and the split,
// then gives oIoU, mIoU, Prec@{0.5..0.9}, pointing (metrics.ts pointingHit) and the length and
// target-area breakdowns.
// Both files are written atomically (src/io/atomic.ts) so an interrupted run never leaves half a report.

import { writeFileAtomic } from '../io/atomic.js';
import {
  AREA_BUCKETS,
  PREC_THRESHOLDS,
  lengthBucketsFor,
  type BucketSummary,
  type GroupSummary,
  type MetricAccumulator,
  type MetricSummary,
} from './metrics.js';

export const REPORT_FORMAT = 'refseg.eval-report/1';

export interface ReportContext {
  /** Model or preset name, e.g. "restr-b16". */
  model: string;
  /** Checkpoint path or name, when there is one. */
  checkpoint?: string;
  splitBy?: string;
  /** Input size S the model ran at. */
  imageSize?: number;
  /** Samples skipped as corrupt (reliability.md: counted, never silent). */
  skipped?: number;
  /** Extra notes, one line each. */
  notes?: string[];
}

export interface EvalReport extends MetricSummary {
  format: typeof REPORT_FORMAT;
  model: string;
  checkpoint: string | null;
  dataset: string;
  splitBy: string | null;
  split: string;
  threshold: number;
  /** Metrics are computed on predictions mapped back to each image's original size. */
  resolution: 'original';
  imageSize: number | null;
  skipped: number;
  /** How the breakdown buckets are defined, so the JSON is self-describing. */
  buckets: { length: string[]; area: string[]; lengthUnit: 'words'; areaUnit: 'share of image pixels' };
  notes: string[];
}

export function buildReport(acc: MetricAccumulator, ctx: ReportContext): EvalReport {
  return {
    format: REPORT_FORMAT,
    model: ctx.model,
    checkpoint: ctx.checkpoint ?? null,
    dataset: acc.dataset,
    splitBy: ctx.splitBy ?? null,
    split: acc.split,
    threshold: acc.threshold,
    resolution: 'original',
    imageSize: ctx.imageSize ?? null,
    skipped: ctx.skipped ?? 0,
    buckets: {
      length: lengthBucketsFor(acc.dataset).map((b) => b.label),
      area: AREA_BUCKETS.map((b) => b.label),
      lengthUnit: 'words',
      areaUnit: 'share of image pixels',
    },
    notes: ctx.notes ?? [],
    ...acc.summary(),
  };
}

const pct = (x: number): string => (100 * x).toFixed(2);

function row(label: string, g: GroupSummary): string {
  // An empty bucket has no scores: a dash, not ΣI/ΣU = 0/0 read as 100 % or a mean of nothing as 0 %.
  if (g.count === 0) return `| ${label} | 0 |${' – |'.repeat(3 + PREC_THRESHOLDS.length)}`;
  const prec = PREC_THRESHOLDS.map((t) => pct(g.precision[String(t)]!));
  const pointing = g.pointing === null ? '–' : pct(g.pointing);
  return `| ${label} | ${g.count} | ${pct(g.oIoU)} | ${pct(g.mIoU)} | ${prec.join(' | ')} | ${pointing} |`;
}

function table(first: string, rows: string[]): string[] {
  const head = `| ${first} | n | oIoU | mIoU | ${PREC_THRESHOLDS.map((t) => `P@${t}`).join(' | ')} | pointing |`;
  const rule = `|${' --- |'.repeat(5 + PREC_THRESHOLDS.length)}`;
  return [head, rule, ...rows];
}

export function reportMarkdown(r: EvalReport): string {
  const setting = [
    `- model: ${r.model}${r.checkpoint ? ` (checkpoint ${r.checkpoint})` : ''}`,
    `- dataset: ${r.dataset}${r.splitBy ? ` (splitBy ${r.splitBy})` : ''}, split: **${r.split}**`,
    `- threshold: probability ≥ ${r.threshold}`,
    `- resolution: ${r.resolution} (predictions mapped back to each image's size${r.imageSize ? ` from ${r.imageSize}×${r.imageSize}` : ''})`,
    `- expressions: ${r.count}, skipped as corrupt: ${r.skipped}`,
  ];
  const bucketRows = (bs: BucketSummary[]): string[] => bs.map((b) => row(b.label, b));
  return [
    `# Evaluation: ${r.model} on ${r.dataset} ${r.split}`,
    '',
    ...setting,
    ...r.notes.map((n) => `- ${n}`),
    '',
    'oIoU = ΣI/ΣU, mIoU = mean per-expression IoU (1 when the union is empty), P@t = share with IoU ≥ t, pointing = share whose most probable pixel lies on the target (threshold-free; – when only binary masks were scored); all in %.',
    '',
    ...table('set', [row('all', r)]),
    '',
    '## By expression length (words)',
    '',
    ...table('words', bucketRows(r.byLength)),
    '',
    '## By target area (share of the image)',
    '',
    ...table('area', bucketRows(r.byArea)),
    '',
  ].join('\n');
}

/** Writes `<base>.md` and `<base>.json`; returns both paths. */
export async function writeReport(
  base: string,
  report: EvalReport,
): Promise<{ markdown: string; json: string }> {
  const enc = new TextEncoder();
  const markdown = `${base}.md`;
  const json = `${base}.json`;
  await writeFileAtomic(json, enc.encode(JSON.stringify(report, null, 2) + '\n'));
  await writeFileAtomic(markdown, enc.encode(reportMarkdown(report)));
  return { markdown, json };
}
