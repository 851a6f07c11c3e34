// Loader for the `refer` layout (spec/data.md §1): instances.json + refs(<splitBy>).json|.p, one
// sample per sentence, with the dataset-loading rules of reliability.md. `loadRefer` hands datasets
// of the ReferIt layout (data.md §2) to src/data/referit.ts, which yields the same samples.
//
// - The refs file is read by a pluggable reader chosen by extension: JSON (what the project and the
//   synthetic generator write) is preferred when both exist; `.p` goes through src/io/pickle.ts with
//   NO globals allowed (these pickles need none). Tests or tools can pass their own readers.
// - A pre-pass checks that every image the selected split references exists and stays under the
//   dataset root: absolute names and `..` segments are refused, errors name the file. Symbolic links
//   are followed and not judged: people commonly link images/mscoco to a shared COCO copy.
// - A malformed record (missing annotation or image, bad segmentation, wrong field types) is
//   skipped and counted with its reason, never silently; past `maxCorruptFraction` of the split's
//   samples the load fails. Consumers count decode failures (image, mask) with the same CorruptBudget.
// - Masks: COCO RLE (compressed string or uncompressed counts, via rle.ts) and polygons
//   (pycocotools semantics, via polygon.ts); a segmentation with several parts is their union.

import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { unpickle, toPlain } from '../io/pickle.js';
import { datasetInfo, type DatasetName } from './datasets.js';
import { decodeImage, type DecodedImage } from './image.js';
import { polygonsToMask } from './polygon.js';
import { decodeRle, type Mask, type Rle } from './rle.js';

/** COCO segmentation: polygons [[x1,y1,x2,y2,...], ...] or RLE {size:[h,w], counts}. */
export type Segmentation = number[][] | Rle;

export interface ReferSample {
  refId: number;
  sentId: number;
  sentence: string;
  imageId: number;
  /** Absolute path of the image file. */
  file: string;
  annId: number;
  segmentation: Segmentation;
  /** Image size as instances.json gives it (the mask's size). */
  height: number;
  width: number;
  category: string;
  categoryId: number;
  split: string;
  /**
   * The ref record's fields beyond the refer API's (the synthetic benchmark's `synth` block:
   * distractor counts for subset evaluation); absent when there are none. Shared by the ref's sentences.
   */
  extra?: Record<string, unknown>;
}

export interface SkippedSample {
  /** "refs(unc).json ref_id 12" or similar: where the problem is. */
  where: string;
  reason: string;
  /** Samples (sentences) lost. */
  samples: number;
}

/** Counts skipped samples and fails once more than `maxFraction` of `total` are lost. */
export class CorruptBudget {
  readonly skipped: SkippedSample[] = [];
  private lost = 0;

  constructor(
    readonly total: number,
    readonly maxFraction: number,
  ) {
    if (!(maxFraction >= 0 && maxFraction <= 1))
      throw new Error(`maxCorruptFraction must be in [0, 1], got ${maxFraction}`);
  }

  get count(): number {
    return this.lost;
  }

  get limit(): number {
    return Math.floor(this.maxFraction * this.total);
  }

  skip(where: string, reason: string, samples = 1): void {
    this.skipped.push({ where, reason, samples });
    this.lost += samples;
    if (this.lost > this.limit) {
      const list = this.skipped.slice(0, 5).map((s) => `  ${s.where}: ${s.reason}`);
      throw new Error(
        `${this.lost} of ${this.total} samples are corrupt, over the limit of ${this.limit} ` +
          `(maxCorruptFraction ${this.maxFraction}); first ones:\n${list.join('\n')}`,
      );
    }
  }
}

/** Reads a refs file's bytes into the plain list of ref records. */
export type RefsReader = (bytes: Uint8Array, source: string) => unknown | Promise<unknown>;

const utf8Fatal = new TextDecoder('utf-8', { fatal: true });

/** Python 2 `str` arrives latin-1 decoded (pickle.ts); recover UTF-8 text when it is valid UTF-8. */
function fixPy2Text(s: string): string {
  if (!/[\x80-\xff]/.test(s) || /[^\x00-\xff]/.test(s)) return s;
  try {
    return utf8Fatal.decode(Buffer.from(s, 'latin1'));
  } catch {
    return s;
  }
}

export const REFS_READERS: Readonly<Record<'json' | 'p', RefsReader>> = {
  json: (bytes, source) => parseJson(bytes, source),
  p: (bytes, source) => toPlain(unpickle(bytes, { source })),
};

function parseJson(bytes: Uint8Array, source: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new Error(`${source}: invalid JSON: ${(e as Error).message}`);
  }
}

export interface ReferOptions {
  /** Dataset root (holds images/ and <dataset>/). */
  root: string;
  dataset: DatasetName;
  /** Default: the dataset's (datasets.ts). */
  splitBy?: string;
  /** train, val, testA, ... */
  split: string;
  /** Image folder relative to root. Default: instances.json info.image_root, else the dataset's. */
  imageDir?: string;
  /** Override or add refs readers by extension. */
  readers?: Partial<Record<'json' | 'p', RefsReader>>;
  /** Share of the split's samples that may be skipped as corrupt before the load fails (default 0.01). */
  maxCorruptFraction?: number;
  /** Run the image pre-pass (default true). */
  checkImages?: boolean;
  /** Progress of the slow part of a load, for a progress bar (ReferIt: one .mat mask per object). */
  onProgress?: (done: number, total: number) => void;
  /** Also return every object of the split's images (ReferDataset.objects), referred or not. */
  withObjects?: boolean;
}

/** One object of an image as instances.json lists it, whether or not an expression refers to it. */
export interface ReferObject {
  annId: number;
  categoryId: number;
  segmentation: Segmentation;
  /** The annotation's fields beyond COCO's (the synthetic benchmark's `synth` attributes). */
  extra?: Record<string, unknown>;
}

export interface ReferDataset {
  dataset: DatasetName;
  splitBy: string;
  split: string;
  root: string;
  /** Absolute image folder. */
  imageDir: string;
  refsFile: string;
  samples: ReferSample[];
  /** Splits present in the refs file with their sentence counts. */
  splits: Record<string, number>;
  categories: Map<number, string>;
  budget: CorruptBudget;
  /** With `withObjects`: image_id → its objects with a valid segmentation, for the split's images. */
  objects?: Map<number, ReferObject[]>;
}

type Obj = Record<string, unknown>;

/** The refer API's ref fields; anything else is passed through as ReferSample.extra. */
const REF_KEYS = new Set([
  'ref_id',
  'ann_id',
  'image_id',
  'category_id',
  'file_name',
  'split',
  'sent_ids',
  'sentences',
]);
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * `name` joined under `base`, refusing absolute names and `..` segments (path traversal): a
 * dataset file must not make us read outside the dataset root.
 */
export function resolveUnder(base: string, name: string, what: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.includes('\0'))
    throw new Error(`${what}: invalid file name ${JSON.stringify(name)}`);
  if (path.isAbsolute(name) || path.win32.isAbsolute(name))
    throw new Error(`${what}: absolute path ${JSON.stringify(name)} refused`);
  if (name.split(/[\\/]/).includes('..'))
    throw new Error(`${what}: path ${JSON.stringify(name)} leaves the dataset root`);
  const full = path.resolve(base, name);
  const rel = path.relative(base, full);
  if (rel.startsWith('..') || path.isAbsolute(rel))
    throw new Error(`${what}: path ${JSON.stringify(name)} leaves the dataset root`);
  return full;
}

/** Where a segmentation is malformed, or null when its shape is valid for an h×w image. */
export function segmentationProblem(seg: unknown, h: number, w: number): string | null {
  if (Array.isArray(seg)) {
    if (seg.length === 0) return 'empty polygon list';
    for (let i = 0; i < seg.length; i++) {
      const p = seg[i] as unknown;
      if (!Array.isArray(p) || p.length < 2 || p.length % 2 !== 0)
        return `polygon ${i} must be a list of an even number of coordinates`;
      if (!p.every((v) => typeof v === 'number' && Number.isFinite(v)))
        return `polygon ${i} has a non-numeric coordinate`;
    }
    return null;
  }
  if (isObj(seg)) {
    const size = seg.size;
    if (!Array.isArray(size) || size.length !== 2) return 'RLE size must be [height, width]';
    if (size[0] !== h || size[1] !== w)
      return `RLE size [${size.join(', ')}] differs from the image's [${h}, ${w}]`;
    if (typeof seg.counts !== 'string' && !Array.isArray(seg.counts))
      return 'RLE counts must be a string or a list';
    return null;
  }
  return 'segmentation is neither polygons nor RLE';
}

/** The mask of a segmentation at h×w (union of its parts). Throws on malformed input. */
export function decodeSegmentation(seg: Segmentation, h: number, w: number): Mask {
  const problem = segmentationProblem(seg, h, w);
  if (problem) throw new Error(problem);
  return Array.isArray(seg) ? polygonsToMask(seg, h, w) : decodeRle(seg);
}

/** The sample's ground-truth mask at the original resolution. Errors name the sample. */
export function sampleMask(s: ReferSample): Mask {
  try {
    return decodeSegmentation(s.segmentation, s.height, s.width);
  } catch (e) {
    throw new Error(`ann_id ${s.annId} (image ${s.file}): ${(e as Error).message}`);
  }
}

/**
 * Reads and decodes the sample's image (decodeImage's rules) and checks it has the size
 * instances.json gives, which the mask has: an image whose EXIF orientation swaps its sides no
 * longer lines up with its annotation and is refused here, naming the file.
 */
export async function readSampleImage(s: ReferSample, o: { maxPixels?: number } = {}): Promise<DecodedImage> {
  const img = await decodeImage(await readFile(s.file), { source: s.file, ...o });
  if (img.width !== s.width || img.height !== s.height) {
    throw new Error(
      `${s.file}: decoded image is ${img.width}×${img.height} (EXIF orientation ${img.orientation}) but ` +
        `its annotation gives ${s.width}×${s.height}`,
    );
  }
  return img;
}

/** Path of refs(<splitBy>).json, else refs(<splitBy>).p, under <root>/<dataset>. */
async function findRefsFile(dir: string, splitBy: string): Promise<{ file: string; kind: 'json' | 'p' }> {
  const base = resolveUnder(dir, `refs(${splitBy}).json`, `splitBy ${splitBy}`);
  if (await exists(base)) return { file: base, kind: 'json' };
  const p = base.replace(/\.json$/, '.p');
  if (await exists(p)) return { file: p, kind: 'p' };
  throw new Error(`no refs file for splitBy ${splitBy}: neither ${base} nor ${p} exists`);
}

const splitOf = (ref: Obj): string => (typeof ref.split === 'string' ? ref.split : '?');
const sentenceCount = (ref: Obj): number => (Array.isArray(ref.sentences) ? ref.sentences.length : 1);

/** Sentences per split of a list of ref records. */
export function countSplits(refs: readonly unknown[]): Record<string, number> {
  const splits: Record<string, number> = {};
  for (const ref of refs)
    if (isObj(ref)) splits[splitOf(ref)] = (splits[splitOf(ref)] ?? 0) + sentenceCount(ref);
  return splits;
}

/** The refs file of a refer-layout dataset (refs(<splitBy>).json, else .p) read into its list of refs. */
export async function readRefs(
  o: Pick<ReferOptions, 'root' | 'dataset' | 'splitBy' | 'readers'>,
): Promise<{ refsFile: string; splitBy: string; refs: unknown[] }> {
  const splitBy = o.splitBy ?? datasetInfo(o.dataset).defaultSplitBy;
  const annDir = resolveUnder(path.resolve(o.root), o.dataset, 'dataset');
  const { file: refsFile, kind } = await findRefsFile(annDir, splitBy);
  const reader = o.readers?.[kind] ?? REFS_READERS[kind];
  const refs = await reader(await readFile(refsFile), refsFile);
  if (!Array.isArray(refs)) throw new Error(`${refsFile}: expected a list of refs`);
  return { refsFile, splitBy, refs };
}

const ANN_KEYS = new Set(['id', 'image_id', 'category_id', 'segmentation', 'bbox', 'area', 'iscrowd']);

/** Every annotation of the samples' images; one whose segmentation is broken is an error naming it. */
function objectsOf(
  samples: readonly ReferSample[],
  anns: ReadonlyMap<number, Obj>,
  images: ReadonlyMap<number, Obj>,
  instancesFile: string,
): Map<number, ReferObject[]> {
  const out = new Map<number, ReferObject[]>();
  for (const s of samples) out.set(s.imageId, []);
  for (const a of anns.values()) {
    const list = isId(a.image_id) ? out.get(a.image_id) : undefined;
    if (!list) continue;
    const image = images.get(a.image_id as number)!;
    const problem = segmentationProblem(a.segmentation, image.height as number, image.width as number);
    if (problem) throw new Error(`${instancesFile}: ann_id ${String(a.id)}: ${problem}`);
    const extraEntries = Object.entries(a).filter(([k]) => !ANN_KEYS.has(k));
    list.push({
      annId: a.id as number,
      categoryId: isId(a.category_id) ? a.category_id : -1,
      segmentation: a.segmentation as Segmentation,
      ...(extraEntries.length > 0 ? { extra: Object.fromEntries(extraEntries) } : {}),
    });
  }
  return out;
}

/**
 * The string at the dotted `path` of an object's extra annotation fields (`synth.color`); an error
 * naming the annotation, and the option (`flag`) that asked for it, when there is none.
 */
export function annotationField(ob: ReferObject, path: string, flag: string): string {
  let v: unknown = ob.extra;
  for (const key of path.split('.'))
    v = v && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined;
  if (typeof v !== 'string')
    throw new Error(
      `annotation ${ob.annId}: no string field '${path}' (${flag} names fields every object has)`,
    );
  return v;
}

/** Loads one split of a refer-layout dataset (or of a ReferIt-layout one, through referit.ts). */
export async function loadRefer(o: ReferOptions): Promise<ReferDataset> {
  const info = datasetInfo(o.dataset);
  // Imported on use: referit.ts builds on this module's helpers.
  if (info.layout === 'referit') return (await import('./referit.js')).loadReferit(o);
  const root = path.resolve(o.root);
  const annDir = resolveUnder(root, o.dataset, 'dataset');

  const instancesFile = path.join(annDir, 'instances.json');
  if (!(await exists(instancesFile))) throw new Error(`${instancesFile}: not found`);
  const instances = parseJson(await readFile(instancesFile), instancesFile);
  if (!isObj(instances))
    throw new Error(`${instancesFile}: expected an object with images, annotations, categories`);
  const list = (key: string): unknown[] => {
    const v = instances[key];
    if (!Array.isArray(v)) throw new Error(`${instancesFile}: "${key}" must be an array`);
    return v;
  };
  const images = new Map<number, Obj>();
  for (const im of list('images')) if (isObj(im) && isId(im.id)) images.set(im.id, im);
  const anns = new Map<number, Obj>();
  for (const a of list('annotations')) if (isObj(a) && isId(a.id)) anns.set(a.id, a);
  const categories = new Map<number, string>();
  for (const c of list('categories'))
    if (isObj(c) && isId(c.id) && typeof c.name === 'string') categories.set(c.id, c.name);

  const infoRoot =
    isObj(instances.info) && typeof instances.info.image_root === 'string'
      ? instances.info.image_root
      : undefined;
  const imageDir = resolveUnder(root, o.imageDir ?? infoRoot ?? info.imageDir, 'image folder');

  const { refsFile, splitBy, refs } = await readRefs(o);
  const refsName = path.basename(refsFile);

  // Splits present, and the selected split's records (the budget is relative to its size).
  const splits = countSplits(refs);
  const selected: { ref: Obj; index: number }[] = [];
  let total = 0;
  refs.forEach((ref, index) => {
    if (!isObj(ref) || splitOf(ref) !== o.split) return;
    selected.push({ ref, index });
    total += sentenceCount(ref);
  });
  if (selected.length === 0) {
    throw new Error(
      `${refsFile}: no refs in split "${o.split}" (splits present: ${Object.keys(splits).join(', ') || 'none'})`,
    );
  }
  const budget = new CorruptBudget(total, o.maxCorruptFraction ?? 0.01);

  const samples: ReferSample[] = [];
  for (const { ref, index } of selected) {
    const where = `${refsName}[${index}] ref_id ${String(ref.ref_id)}`;
    const sentences = Array.isArray(ref.sentences) ? ref.sentences : [];
    const lose = (reason: string): void => budget.skip(where, reason, Math.max(1, sentences.length));
    if (!isId(ref.ref_id) || !isId(ref.ann_id) || !isId(ref.image_id)) {
      lose('ref_id, ann_id and image_id must be non-negative integers');
      continue;
    }
    if (!Array.isArray(ref.sentences) || sentences.length === 0) {
      lose('no sentences');
      continue;
    }
    const ann = anns.get(ref.ann_id);
    const image = images.get(ref.image_id);
    if (!ann) {
      lose(`ann_id ${ref.ann_id} is not in instances.json`);
      continue;
    }
    if (!image) {
      lose(`image_id ${ref.image_id} is not in instances.json`);
      continue;
    }
    if (ann.image_id !== ref.image_id) {
      lose(`ann_id ${ref.ann_id} belongs to image ${String(ann.image_id)}, not ${ref.image_id}`);
      continue;
    }
    const { height, width } = image;
    if (!isId(height) || !isId(width) || height === 0 || width === 0) {
      lose(`image ${ref.image_id} has no valid height/width`);
      continue;
    }
    const problem = segmentationProblem(ann.segmentation, height, width);
    if (problem) {
      lose(`ann_id ${ref.ann_id}: ${problem}`);
      continue;
    }
    let file: string;
    try {
      file = resolveUnder(imageDir, image.file_name as string, `image ${ref.image_id}`);
    } catch (e) {
      // A file name that escapes the root is an attack or a broken file, not a corrupt sample.
      throw new Error(`${instancesFile}: ${(e as Error).message}`);
    }
    const categoryId = isId(ref.category_id) ? ref.category_id : isId(ann.category_id) ? ann.category_id : -1;
    const extraEntries = Object.entries(ref).filter(([k]) => !REF_KEYS.has(k));
    const extra = extraEntries.length > 0 ? Object.fromEntries(extraEntries) : undefined;
    for (const [k, s] of sentences.entries()) {
      if (!isObj(s) || !isId(s.sent_id) || (typeof s.sent !== 'string' && typeof s.raw !== 'string')) {
        budget.skip(`${where} sentence ${k}`, 'sentence needs an integer sent_id and a string sent');
        continue;
      }
      samples.push({
        refId: ref.ref_id,
        sentId: s.sent_id,
        sentence: fixPy2Text((typeof s.sent === 'string' ? s.sent : s.raw) as string),
        imageId: ref.image_id,
        file,
        annId: ref.ann_id,
        segmentation: ann.segmentation as Segmentation,
        height,
        width,
        category: categories.get(categoryId) ?? `category ${categoryId}`,
        categoryId,
        split: o.split,
        ...(extra ? { extra } : {}),
      });
    }
  }

  if (o.checkImages ?? true) await checkImagesExist(samples);
  const objects = o.withObjects ? objectsOf(samples, anns, images, instancesFile) : undefined;
  return {
    dataset: o.dataset,
    splitBy,
    split: o.split,
    root,
    imageDir,
    refsFile,
    samples,
    splits,
    categories,
    budget,
    ...(objects ? { objects } : {}),
  };
}

/** The pre-pass: every referenced image is an existing file. Lists the missing ones (first 10). */
export async function checkImagesExist(samples: readonly ReferSample[]): Promise<void> {
  const files = [...new Set(samples.map((s) => s.file))];
  const missing: string[] = [];
  const chunk = 64;
  for (let i = 0; i < files.length; i += chunk) {
    await Promise.all(
      files.slice(i, i + chunk).map(async (f) => {
        try {
          if (!(await stat(f)).isFile()) missing.push(`${f} (not a file)`);
        } catch {
          missing.push(f);
        }
      }),
    );
  }
  if (missing.length > 0) {
    missing.sort();
    const more = missing.length > 10 ? `\n  … and ${missing.length - 10} more` : '';
    throw new Error(
      `${missing.length} of ${files.length} referenced images are missing:\n  ${missing.slice(0, 10).join('\n  ')}${more}`,
    );
  }
}
