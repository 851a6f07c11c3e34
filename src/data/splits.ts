// Every split of a dataset, whatever its layout, for the tools that look at all of them
// (`refseg data check`, `refseg data stats`): which splits exist with their sentence counts, and a
// loader per split that parses the shared refs file once (the refer layout's refs(<splitBy>).p of
// RefCOCO is tens of MB of pickle; loadRefer would otherwise read it again for every split).

import { datasetInfo, type DatasetName } from './datasets.js';
import {
  REFS_READERS,
  countSplits,
  loadRefer,
  readRefs,
  type ReferDataset,
  type ReferOptions,
  type RefsReader,
} from './refer.js';
import { referitSplits } from './referit.js';

export interface DatasetLocation {
  /** Dataset root (what `--data` names). */
  root: string;
  dataset: DatasetName;
  splitBy?: string;
}

export interface OpenDataset {
  /** splitBy in use ('' for ReferIt). */
  splitBy: string;
  /** The files that define the splits: refs(<splitBy>).json|.p, or the ReferIt query files. */
  sources: string[];
  /** Sentences per split, as the files declare them (before any record is checked). */
  splits: Record<string, number>;
  /** loadRefer for one split; `options` override the caller's defaults. */
  load(split: string, options?: Partial<ReferOptions>): Promise<ReferDataset>;
}

/** A reader that parses each file once and hands the same records to every later call. */
function memoized(read: RefsReader): RefsReader {
  const cache = new Map<string, Promise<unknown>>();
  return (bytes, source) => {
    let v = cache.get(source);
    if (!v) cache.set(source, (v = Promise.resolve(read(bytes, source))));
    return v;
  };
}

/** Finds a dataset's splits. Throws (naming the file) when the files that list them are unreadable. */
export async function openDataset(o: DatasetLocation): Promise<OpenDataset> {
  const info = datasetInfo(o.dataset);
  const base: ReferOptions = {
    root: o.root,
    dataset: o.dataset,
    split: '',
    ...(o.splitBy ? { splitBy: o.splitBy } : {}),
  };
  const load = (split: string, options: Partial<ReferOptions> = {}) =>
    loadRefer({ ...base, ...options, split });
  if (info.layout === 'referit') {
    if (o.splitBy) throw new Error(`${o.dataset}: the ReferIt layout has no splitBy (got '${o.splitBy}')`);
    const { files, splits } = await referitSplits(o.root);
    return { splitBy: '', sources: [...files.values()], splits, load };
  }
  base.readers = { json: memoized(REFS_READERS.json), p: memoized(REFS_READERS.p) };
  const { refsFile, splitBy, refs } = await readRefs(base);
  return { splitBy, sources: [refsFile], splits: countSplits(refs), load };
}
