// Loader for ReferIt as the ReSTR authors' pipeline releases it (spec/data.md §2), producing the
// same ReferSample records as the refer layout, so training and evaluation need not know which
// layout a dataset has (loadRefer in refer.ts calls loadReferit for `--dataset referit`).
//
//   <root>/referit/images/<img>.jpg
//   <root>/referit/mask/<img>_<ann>.mat        MATLAB v5 (src/io/mat.ts); the object is segimg_t == 0
//   <root>/referit_query_<split>.json          {"<img>_<ann>": ["sentence", ...], ...}
//
// The query files may also sit in <root>/referit/ (text_objseg keeps them apart from the images);
// each one present is a split (the release has trainval and test). There is no splitBy.
//
// Sample fields: one object ("<img>_<ann>") is one ref; imageId is <img>, and ref, annotation and
// sentence ids are positions in the query file (object order, and sentence order across objects),
// stable for a given file. The object's name is kept as `extra.referit`. There are no categories.
//
// The masks are read while loading: the image size comes from the mask (segimg_t is H×W), and the
// mask is kept as a compressed COCO RLE (rle.ts), which `sampleMask` decodes like any other. A
// missing or undecodable mask skips its object's sentences through the CorruptBudget (counted,
// named); file names are checked to stay under the root (resolveUnder), and the image pre-pass is
// refer.ts's.

import { readdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { FormatError } from '../io/errors.js';
import { matNumeric, readMat } from '../io/mat.js';
import { datasetInfo } from './datasets.js';
import {
  CorruptBudget,
  REFS_READERS,
  checkImagesExist,
  resolveUnder,
  type ReferDataset,
  type ReferOptions,
  type ReferSample,
} from './refer.js';
import { encodeRle, type Mask } from './rle.js';

/** Mask folder relative to the dataset root. */
export const REFERIT_MASK_DIR = 'referit/mask';
/** The mask variable; the object is where it is 0 (text_objseg's load_gt_mask). */
export const REFERIT_MASK_VARIABLE = 'segimg_t';

const QUERY_FILE = /^referit_query_(.+)\.json$/;
const OBJECT_KEY = /^(\d+)_(\d+)$/;
/** Masks read concurrently while loading. */
const READ_AHEAD = 32;

/** The object mask of a ReferIt .mat file's bytes: segimg_t == 0, row-major H×W. */
export function referitMask(bytes: Uint8Array, source: string): Mask {
  const seg = matNumeric(readMat(bytes, { source }), REFERIT_MASK_VARIABLE, source);
  const [height, width] = seg.dims;
  if (seg.dims.length !== 2 || !height || !width)
    throw new FormatError(
      source,
      `${REFERIT_MASK_VARIABLE} is [${seg.dims.join('×')}], expected a non-empty H×W image`,
    );
  const data = new Uint8Array(height * width);
  const zero = typeof seg.data[0] === 'bigint' ? 0n : 0;
  for (let i = 0; i < data.length; i++) data[i] = seg.data[i] === zero ? 1 : 0;
  return { height, width, data };
}

/**
 * The query files of a ReferIt dataset, split name → path: those in the root, else those in
 * <root>/referit. Empty when there are none.
 */
export async function referitQueryFiles(root: string): Promise<Map<string, string>> {
  for (const dir of [path.resolve(root), path.resolve(root, 'referit')]) {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    const found = new Map<string, string>();
    for (const name of names.sort()) {
      const m = QUERY_FILE.exec(name);
      if (m) found.set(m[1]!, path.join(dir, name));
    }
    if (found.size > 0) return found;
  }
  return new Map();
}

type Queries = Record<string, unknown>;

/** A query file: an object mapping "<img>_<ann>" to a list of sentences. */
export async function readReferitQueries(file: string): Promise<Queries> {
  const q = await REFS_READERS.json(await readFile(file), file);
  if (typeof q !== 'object' || q === null || Array.isArray(q))
    throw new Error(`${file}: expected an object mapping "<image>_<annotation>" to a list of sentences`);
  return q as Queries;
}

const sentenceCount = (v: unknown): number => (Array.isArray(v) ? v.length : 1);

/** The query file of each split and its sentence count; throws when there is no query file. */
export async function referitSplits(
  root: string,
): Promise<{ files: Map<string, string>; splits: Record<string, number> }> {
  const files = await referitQueryFiles(root);
  if (files.size === 0) {
    const r = path.resolve(root);
    throw new Error(`no referit_query_<split>.json in ${r} or ${path.join(r, 'referit')}`);
  }
  const splits: Record<string, number> = {};
  for (const [split, file] of files)
    splits[split] = Object.values(await readReferitQueries(file)).reduce(
      (n: number, v) => n + sentenceCount(v),
      0,
    );
  return { files, splits };
}

/** Loads one split of a ReferIt-layout dataset (see the file comment). */
export async function loadReferit(o: ReferOptions): Promise<ReferDataset> {
  const info = datasetInfo(o.dataset);
  if (o.splitBy)
    throw new Error(
      `${o.dataset}: the ReferIt layout has no splitBy (got '${o.splitBy}'); its splits are the referit_query_<split>.json files`,
    );
  const root = path.resolve(o.root);
  const imageDir = resolveUnder(root, o.imageDir ?? info.imageDir, 'image folder');
  const maskDir = resolveUnder(root, REFERIT_MASK_DIR, 'mask folder');

  const { files, splits } = await referitSplits(root);
  const queryFile = files.get(o.split);
  if (!queryFile)
    throw new Error(`no referit_query_${o.split}.json (splits present: ${[...files.keys()].join(', ')})`);
  const objects = Object.entries(await readReferitQueries(queryFile));
  if (objects.length === 0) throw new Error(`${queryFile}: no objects in split "${o.split}"`);
  const budget = new CorruptBudget(splits[o.split]!, o.maxCorruptFraction ?? 0.01);
  const queryName = path.basename(queryFile);

  // Sentence ids are positions across the file, so a skipped object does not renumber the others.
  const firstSentId: number[] = [];
  objects.reduce((n, [, v], i) => ((firstSentId[i] = n), n + sentenceCount(v)), 0);

  // Each object's mask is read (READ_AHEAD files at a time) into the object or the reason it is
  // skipped; skips are then counted in file order, so the budget's list does not depend on timing.
  type Loaded = {
    key: string;
    index: number;
    sentences: unknown[];
    file: string;
    imageId: number;
    mask: Mask;
  };
  const load = async ([key, sentences]: [string, unknown], index: number): Promise<Loaded | string> => {
    const m = OBJECT_KEY.exec(key);
    if (!m) return 'object name must be "<image>_<annotation>" with numeric parts';
    if (!Array.isArray(sentences) || sentences.length === 0) return 'expected a non-empty list of sentences';
    // Digits only, so these cannot leave their folders; resolveUnder states the rule anyway.
    const maskFile = resolveUnder(maskDir, `${key}.mat`, `${queryName} "${key}"`);
    const file = resolveUnder(imageDir, `${m[1]}.jpg`, `${queryName} "${key}"`);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(maskFile);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      return err.code === 'ENOENT' ? `mask ${maskFile} is missing` : `${maskFile}: ${err.message}`;
    }
    try {
      return { key, index, sentences, file, imageId: Number(m[1]), mask: referitMask(bytes, maskFile) };
    } catch (e) {
      return (e as Error).message;
    }
  };

  const samples: ReferSample[] = [];
  for (let start = 0; start < objects.length; start += READ_AHEAD) {
    const batch = objects.slice(start, start + READ_AHEAD);
    const loaded = await Promise.all(batch.map((entry, k) => load(entry, start + k)));
    loaded.forEach((obj, k) => {
      const [key, sentences] = batch[k]!;
      if (typeof obj === 'string') {
        budget.skip(`${queryName} "${key}"`, obj, Math.max(1, sentenceCount(sentences)));
        return;
      }
      const segmentation = encodeRle(obj.mask);
      obj.sentences.forEach((s, j) => {
        if (typeof s !== 'string') {
          budget.skip(`${queryName} "${key}" sentence ${j}`, 'sentence must be a string');
          return;
        }
        samples.push({
          refId: obj.index,
          sentId: firstSentId[obj.index]! + j,
          sentence: s,
          imageId: obj.imageId,
          file: obj.file,
          annId: obj.index,
          segmentation,
          height: obj.mask.height,
          width: obj.mask.width,
          category: 'object',
          categoryId: -1,
          split: o.split,
          extra: { referit: key },
        });
      });
    });
    o.onProgress?.(start + batch.length, objects.length);
  }

  if (o.checkImages ?? true) await checkImagesExist(samples);
  return {
    dataset: o.dataset,
    splitBy: '',
    split: o.split,
    root,
    imageDir,
    refsFile: queryFile,
    samples,
    splits,
    categories: new Map(),
    budget,
  };
}
