// `refseg data stats`: what a dataset holds, per split: expressions, refs and images; expression
// length (words, as src/data/tokenizer.ts splits them, the count evaluation buckets by) and target
// size (mask area / image area) as histograms and in the evaluation's breakdown buckets
// (src/eval/metrics.ts, spec/data.md §5); as JSON, Markdown and PNG bar charts.
//
// Records the loaders skip and masks that do not decode are left out and counted (`refseg data
// check` says why).

import { AREA_BUCKETS, areaBucket, lengthBucket, lengthBucketsFor } from '../eval/metrics.js';
import { barChartPng } from '../util/plot.js';
import { sampleMask, type ReferSample } from './refer.js';
import { countsFromString, maskArea, rleArea } from './rle.js';
import { openDataset, type DatasetLocation } from './splits.js';
import { tokenizeWords } from './tokenizer.js';

/** Length histogram bins: 0..LAST_WORDS words, the last one holding longer expressions too. */
export const LAST_WORDS = 20;
/** Area histogram: AREA_BINS bins of equal width over [0, 1] of the image. */
export const AREA_BINS = 20;

export interface Count {
  label: string;
  count: number;
}

export interface SplitStats {
  split: string;
  expressions: number;
  refs: number;
  images: number;
  /** Expressions left out: skipped by the loader or with a mask that does not decode. */
  skipped: number;
  words: { mean: number; median: number; max: number };
  /** lengthHistogram[k]: expressions of k words (the last bin: LAST_WORDS or more). */
  lengthHistogram: number[];
  /** The dataset's paper buckets (metrics.ts), empty expressions counted in the first. */
  lengthBuckets: Count[];
  /** areaHistogram[k]: expressions whose target covers [k, k+1)/AREA_BINS of the image. */
  areaHistogram: number[];
  areaBuckets: Count[];
  meanAreaRatio: number;
}

export interface DatasetStats {
  dataset: string;
  root: string;
  splitBy: string;
  sources: string[];
  splits: SplitStats[];
}

export interface StatsOptions extends DatasetLocation {
  onProgress?: (phase: string, done: number, total: number) => void;
}

/**
 * Foreground pixels of a sample's mask. An RLE is not decoded to pixels (a COCO mask is 300k of
 * them): its runs are checked to cover the image exactly, as decoding would, and the object's
 * runs summed. Polygons are rasterized.
 */
function targetArea(s: ReferSample): number {
  const seg = s.segmentation;
  if (Array.isArray(seg)) return maskArea(sampleMask(s));
  const counts = typeof seg.counts === 'string' ? countsFromString(seg.counts) : seg.counts;
  let total = 0;
  for (const c of counts) total += Number.isInteger(c) && c >= 0 ? c : NaN;
  if (total !== s.width * s.height)
    throw new Error(`ann_id ${s.annId}: RLE runs cover ${total} pixels, the image has ${s.width * s.height}`);
  return rleArea({ size: seg.size, counts });
}

function median(sorted: readonly number[]): number {
  if (sorted.length === 0) return 0;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export async function datasetStats(o: StatsOptions): Promise<DatasetStats> {
  const progress = o.onProgress ?? (() => {});
  const ds = await openDataset(o);
  const lengthBuckets = lengthBucketsFor(o.dataset);
  const out: DatasetStats = {
    dataset: o.dataset,
    root: o.root,
    splitBy: ds.splitBy,
    sources: ds.sources,
    splits: [],
  };
  for (const split of Object.keys(ds.splits)) {
    const data = await ds.load(split, {
      maxCorruptFraction: 1,
      checkImages: false,
      onProgress: (d, t) => progress(`${split}: load`, d, t),
    });
    const areas = new Map<number, number | null>(); // annId → area ratio, null when it does not decode
    const words: number[] = [];
    const ratios: number[] = [];
    const kept: ReferSample[] = [];
    data.samples.forEach((s, i) => {
      if (!areas.has(s.annId)) {
        let ratio: number | null;
        try {
          ratio = targetArea(s) / (s.width * s.height);
        } catch {
          ratio = null;
        }
        areas.set(s.annId, ratio);
      }
      const ratio = areas.get(s.annId);
      if (ratio !== null && ratio !== undefined) {
        kept.push(s);
        ratios.push(ratio);
        words.push(tokenizeWords(s.sentence).length);
      }
      if ((i + 1) % 1024 === 0 || i + 1 === data.samples.length)
        progress(`${split}: masks`, i + 1, data.samples.length);
    });

    const lengthHistogram = new Array<number>(LAST_WORDS + 1).fill(0);
    const lengthCounts = new Array<number>(lengthBuckets.length).fill(0);
    for (const w of words) {
      lengthHistogram[Math.min(w, LAST_WORDS)]!++;
      lengthCounts[lengthBucket(lengthBuckets, w)]!++;
    }
    const areaHistogram = new Array<number>(AREA_BINS).fill(0);
    const areaCounts = new Array<number>(AREA_BUCKETS.length).fill(0);
    for (const r of ratios) {
      areaHistogram[Math.min(AREA_BINS - 1, Math.floor(r * AREA_BINS))]!++;
      areaCounts[areaBucket(r)]!++;
    }
    const sortedWords = [...words].sort((a, b) => a - b);
    const n = kept.length;
    out.splits.push({
      split,
      expressions: n,
      refs: new Set(kept.map((s) => s.refId)).size,
      images: new Set(kept.map((s) => s.file)).size,
      skipped: data.budget.count + (data.samples.length - n),
      words: {
        mean: n ? words.reduce((a, b) => a + b, 0) / n : 0,
        median: median(sortedWords),
        max: sortedWords[n - 1] ?? 0,
      },
      lengthHistogram,
      lengthBuckets: lengthBuckets.map((b, k) => ({ label: b.label, count: lengthCounts[k]! })),
      areaHistogram,
      areaBuckets: AREA_BUCKETS.map((b, k) => ({ label: b.label, count: areaCounts[k]! })),
      meanAreaRatio: n ? ratios.reduce((a, b) => a + b, 0) / n : 0,
    });
  }
  return out;
}

const pct = (n: number, of: number): string => (of ? `${((100 * n) / of).toFixed(1)}%` : '-');

/** Histogram bin labels: words 0..LAST_WORDS ("20+"), area bins by their lower bound in %. */
export const LENGTH_LABELS = Array.from({ length: LAST_WORDS + 1 }, (_, k) =>
  k === LAST_WORDS ? `${k}+` : String(k),
);
export const AREA_LABELS = Array.from({ length: AREA_BINS }, (_, k) => String((100 * k) / AREA_BINS));

export function statsMarkdown(s: DatasetStats, charts: readonly string[] = []): string {
  const L: string[] = [];
  L.push(`# ${s.dataset}${s.splitBy ? ` (splitBy ${s.splitBy})` : ''}`, '');
  L.push(`Dataset root \`${s.root}\`; splits from ${s.sources.map((f) => `\`${f}\``).join(', ')}.`, '');
  L.push(
    '| split | expressions | refs | images | skipped | words (mean / median / max) | mean target area |',
  );
  L.push('|---|---:|---:|---:|---:|---|---:|');
  for (const p of s.splits) {
    L.push(
      `| ${p.split} | ${p.expressions} | ${p.refs} | ${p.images} | ${p.skipped} | ` +
        `${p.words.mean.toFixed(2)} / ${p.words.median} / ${p.words.max} | ${(100 * p.meanAreaRatio).toFixed(1)}% |`,
    );
  }
  const bucketTable = (title: string, pick: (p: SplitStats) => Count[]) => {
    const labels = pick(s.splits[0]!).map((c) => c.label);
    L.push(
      '',
      `## ${title}`,
      '',
      `| split | ${labels.join(' | ')} |`,
      `|---|${labels.map(() => '---:').join('|')}|`,
    );
    for (const p of s.splits)
      L.push(
        `| ${p.split} | ${pick(p)
          .map((c) => `${c.count} (${pct(c.count, p.expressions)})`)
          .join(' | ')} |`,
      );
  };
  if (s.splits.length > 0) {
    bucketTable('Expression length (words), evaluation buckets', (p) => p.lengthBuckets);
    bucketTable('Target area (share of the image), evaluation buckets', (p) => p.areaBuckets);
  }
  if (charts.length) L.push('', ...charts.map((c) => `![${c}](${c})`));
  return L.join('\n') + '\n';
}

/** The three charts as PNG: expressions per split, length histogram, target-area histogram. */
export async function statsCharts(s: DatasetStats): Promise<{ name: string; png: Buffer }[]> {
  const share = (hist: readonly number[], n: number) => hist.map((c) => (n ? (100 * c) / n : 0));
  const splits = s.splits.map((p) => p.split);
  return [
    {
      name: 'splits.png',
      png: await barChartPng(splits, [{ name: 'expressions', values: s.splits.map((p) => p.expressions) }], {
        title: `${s.dataset}: expressions per split`,
        xLabel: 'split',
        yLabel: 'expressions',
      }),
    },
    {
      name: 'lengths.png',
      png: await barChartPng(
        LENGTH_LABELS,
        s.splits.map((p) => ({ name: p.split, values: share(p.lengthHistogram, p.expressions) })),
        { title: `${s.dataset}: expression length`, xLabel: 'words', yLabel: '% of the split' },
      ),
    },
    {
      name: 'areas.png',
      png: await barChartPng(
        AREA_LABELS,
        s.splits.map((p) => ({ name: p.split, values: share(p.areaHistogram, p.expressions) })),
        {
          title: `${s.dataset}: target size`,
          xLabel: `target area, % of the image (bins of ${100 / AREA_BINS}%, labelled by their start)`,
          yLabel: '% of the split',
        },
      ),
    },
  ];
}
