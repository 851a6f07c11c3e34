// `refseg data check`: validates a whole dataset, every split, and lists every problem instead of
// stopping at the first (the loaders' own rule, reliability.md "Dataset loading", is to fail a run
// past a corrupt-sample budget; a check wants the full list):
// - the files that define the splits parse (refs(<splitBy>).json|.p and instances.json, or the
//   ReferIt query files); a split that cannot load at all (a file name that leaves the dataset
//   root, a missing instances.json) is one problem naming why;
// - every record is well-formed and points to an existing annotation and image record (the
//   loaders' skip reasons, each naming the refs file and record);
// - every mask decodes (RLE, polygons, or ReferIt's .mat), naming the annotation or file;
// - every image file exists and is a file; with `decodeImages`, it also decodes (reliability.md
//   "Images") to the size of its annotation.

import { stat } from 'node:fs/promises';
import { openDataset, type DatasetLocation } from './splits.js';
import { readSampleImage, sampleMask, type ReferSample } from './refer.js';

export interface CheckProblem {
  /** The split being checked, when the problem belongs to one. */
  split?: string;
  /** Where: a file, or a record in one ("refs(unc).json[12] ref_id 40"). */
  where: string;
  problem: string;
}

export interface SplitSummary {
  split: string;
  /** Sentences the split's file lists. */
  declared: number;
  /** Expressions that load (with a decodable mask), refs and images among them. */
  expressions: number;
  refs: number;
  images: number;
  /** Expressions lost to problems. */
  skipped: number;
}

export interface CheckReport {
  dataset: string;
  root: string;
  splitBy: string;
  sources: string[];
  splits: SplitSummary[];
  problems: CheckProblem[];
}

export interface CheckOptions extends DatasetLocation {
  /** Decode every image and compare its size with the annotation's (slow; default false). */
  decodeImages?: boolean;
  /** Progress of each long loop: `phase` names it ("test: masks"). */
  onProgress?: (phase: string, done: number, total: number) => void;
  /** Images checked concurrently (default 16). */
  concurrency?: number;
}

/** Runs `fn` over `items`, `concurrency` at a time, reporting progress. */
async function forEachLimited<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T) => Promise<void>,
  progress: (done: number) => void,
): Promise<void> {
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      await fn(items[next++]!);
      progress(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** How problems name an annotation: ReferIt's object name, else the ann_id. */
const sampleName = (s: ReferSample): string =>
  typeof s.extra?.referit === 'string' ? `object ${s.extra.referit}` : `ann_id ${s.annId}`;

export async function checkDataset(o: CheckOptions): Promise<CheckReport> {
  const progress = o.onProgress ?? (() => {});
  const report: CheckReport = {
    dataset: o.dataset,
    root: o.root,
    splitBy: o.splitBy ?? '',
    sources: [],
    splits: [],
    problems: [],
  };
  let ds;
  try {
    ds = await openDataset(o);
  } catch (e) {
    report.problems.push({ where: o.root, problem: (e as Error).message });
    return report;
  }
  report.splitBy = ds.splitBy;
  report.sources = ds.sources;

  for (const [split, declared] of Object.entries(ds.splits)) {
    const problem = (where: string, what: string) => report.problems.push({ split, where, problem: what });
    let data;
    try {
      data = await ds.load(split, {
        maxCorruptFraction: 1,
        checkImages: false,
        onProgress: (d, t) => progress(`${split}: load`, d, t),
      });
    } catch (e) {
      problem(split, `cannot load: ${(e as Error).message}`);
      report.splits.push({ split, declared, expressions: 0, refs: 0, images: 0, skipped: declared });
      continue;
    }
    for (const s of data.budget.skipped) problem(s.where, s.reason);
    let skipped = data.budget.count;

    // Masks: one decode per annotation (ReferIt's were decoded while loading; this re-checks the RLE).
    const byAnn = new Map<number, ReferSample[]>();
    for (const s of data.samples) {
      const group = byAnn.get(s.annId);
      if (group) group.push(s);
      else byAnn.set(s.annId, [s]);
    }
    const bad = new Set<ReferSample>();
    let done = 0;
    for (const group of byAnn.values()) {
      try {
        sampleMask(group[0]!);
      } catch (e) {
        problem(sampleName(group[0]!), `mask does not decode: ${(e as Error).message}`);
        for (const s of group) bad.add(s);
      }
      if (++done % 256 === 0 || done === byAnn.size) progress(`${split}: masks`, done, byAnn.size);
    }

    // Images: exist (and decode, to the size of every mask on them) once per file.
    const byFile = new Map<string, ReferSample[]>();
    for (const s of data.samples) {
      const group = byFile.get(s.file);
      if (group) group.push(s);
      else byFile.set(s.file, [s]);
    }
    const badFiles = new Map<string, string>();
    await forEachLimited(
      [...byFile.values()],
      o.concurrency ?? 16,
      async (group) => {
        const s = group[0]!;
        try {
          const st = await stat(s.file);
          if (!st.isFile()) throw new Error('not a file');
          if (o.decodeImages) {
            const img = await readSampleImage(s);
            const other = group.find((x) => x.width !== img.width || x.height !== img.height);
            if (other)
              throw new Error(
                `decoded image is ${img.width}×${img.height} but the mask of ${sampleName(other)} is ${other.width}×${other.height}`,
              );
          }
        } catch (e) {
          const err = e as NodeJS.ErrnoException;
          badFiles.set(
            s.file,
            err.code === 'ENOENT' ? 'image is missing' : err.message.replace(`${s.file}: `, ''),
          );
        }
      },
      (d) => progress(`${split}: images`, d, byFile.size),
    );
    // Checked concurrently, reported in file order.
    for (const file of [...badFiles.keys()].sort()) problem(file, badFiles.get(file)!);
    const good = data.samples.filter((s) => !bad.has(s) && !badFiles.has(s.file));
    skipped += data.samples.length - good.length;
    report.splits.push({
      split,
      declared,
      expressions: good.length,
      refs: new Set(good.map((s) => s.refId)).size,
      images: new Set(good.map((s) => s.file)).size,
      skipped,
    });
  }
  return report;
}
