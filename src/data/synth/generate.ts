// The synthetic referring benchmark (spec/data.md §4) written in the `refer` layout (§1):
//
//   <out>/images/synth/<flavor>/synth_000001.png
//   <out>/<flavor>/instances.json          COCO; segmentation = compressed RLE of the VISIBLE mask
//   <out>/<flavor>/refs(unc|umd).json      refer records + a `synth` block per ref for analysis
//
// Flavors mirror the real datasets: synth-refcoco (attributes + location words, splitBy unc),
// synth-refcoco+ (appearance only: no location or relation words, unc) and synth-refcocog
// (relations to a landmark, umd). Splits are per image, like RefCOCO. As RefCOCO's testA holds
// only people and testB only other objects, testA refs here target shapes with curved or concave
// outlines (circle, heart, star, cross) and testB refs convex polygons (square, triangle, diamond,
// hexagon); train/val refs target any shape. Scene i is drawn from its own stream derived from
// (seed, flavor, i), so output is identical whatever the concurrency; only PNG encoding runs in
// parallel (sharp's thread pool), bounded so memory stays flat.

import { mkdir, readdir, rename, rm, writeFile, access } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { Rng } from '../random.js';
import { countsToString, encodeLabelCounts } from '../rle.js';
import { referringSentences, type Grammar } from './expressions.js';
import { normalizeSentence, rawForm, type Expression } from './language.js';
import { composeScene, renderScene, sceneRng, type ComposeOptions, type Scene } from './scene.js';
import { SHAPES, type ShapeName } from './shapes.js';

export const FLAVORS = ['synth-refcoco', 'synth-refcoco+', 'synth-refcocog'] as const;
export type Flavor = (typeof FLAVORS)[number];

export interface FlavorSpec {
  splitBy: 'unc' | 'umd';
  /** Split names and their share of the images; train takes the remainder. */
  splits: readonly (readonly [string, number])[];
  grammar: Grammar;
  compose: Omit<ComposeOptions, 'size'>;
  refsPerImage: readonly [number, number];
  sentencesPerRef: readonly [number, number];
}

const UNC_SPLITS = [
  ['train', 0],
  ['val', 0.07],
  ['testA', 0.065],
  ['testB', 0.065],
] as const;
const UMD_SPLITS = [
  ['train', 0],
  ['val', 0.06],
  ['test', 0.12],
] as const;

export const FLAVOR_SPECS: Record<Flavor, FlavorSpec> = {
  // Many same-shape-and-colour twins: only a location word tells them apart.
  'synth-refcoco': {
    splitBy: 'unc',
    splits: UNC_SPLITS,
    grammar: 'location',
    compose: {
      minObjects: 3,
      maxObjects: 5,
      shareShape: 0.3,
      shareColor: 0.3,
      shareBoth: 0.25,
      patternRate: 0.15,
      overlapRate: 0.3,
    },
    refsPerImage: [2, 3],
    sentencesPerRef: [2, 3],
  },
  // No location: twins differ in size or pattern, so more patterns are drawn.
  'synth-refcoco+': {
    splitBy: 'unc',
    splits: UNC_SPLITS,
    grammar: 'appearance',
    compose: {
      minObjects: 3,
      maxObjects: 5,
      shareShape: 0.33,
      shareColor: 0.33,
      shareBoth: 0.2,
      patternRate: 0.3,
      overlapRate: 0.3,
    },
    refsPerImage: [2, 3],
    sentencesPerRef: [2, 3],
  },
  'synth-refcocog': {
    splitBy: 'umd',
    splits: UMD_SPLITS,
    grammar: 'relation',
    compose: {
      minObjects: 3,
      maxObjects: 5,
      shareShape: 0.3,
      shareColor: 0.3,
      shareBoth: 0.2,
      patternRate: 0.15,
      overlapRate: 0.45,
    },
    refsPerImage: [1, 3],
    sentencesPerRef: [1, 3],
  },
};

/** The shapes testA / testB refs may target (RefCOCO's people / other objects split). */
export const TEST_A_SHAPES: readonly ShapeName[] = ['circle', 'heart', 'star', 'cross'];
export const TEST_B_SHAPES: readonly ShapeName[] = SHAPES.filter((s) => !TEST_A_SHAPES.includes(s));

export function isFlavor(s: string): s is Flavor {
  return (FLAVORS as readonly string[]).includes(s);
}

/**
 * The split of each image: exact counts (round(share × N), at least one per split once there are
 * two images per split) over a seeded permutation, so every split is present even in tiny sets.
 */
export function assignSplits(flavor: Flavor, images: number, seed: number): string[] {
  const spec = FLAVOR_SPECS[flavor];
  const others = spec.splits.filter(([name]) => name !== 'train');
  const counts = others.map(([, share]) => {
    const n = Math.round(share * images);
    return images >= 2 * spec.splits.length ? Math.max(1, n) : n;
  });
  const order = Rng.from('synth-splits', flavor, seed).permutation(images);
  const out = new Array<string>(images).fill('train');
  let k = 0;
  others.forEach(([name], j) => {
    for (let c = 0; c < counts[j]!; c++) out[order[k++]!] = name;
  });
  return out;
}

export interface SynthSentence {
  sent: string;
  raw: string;
  tokens: string[];
  expression: Expression;
}

export interface SynthRef {
  /** Index of the target in scene.objects. */
  object: number;
  sentences: SynthSentence[];
}

export interface SynthImage {
  index: number;
  split: string;
  scene: Scene;
  refs: SynthRef[];
}

function eligibleShapes(split: string): readonly ShapeName[] {
  return split === 'testA' ? TEST_A_SHAPES : split === 'testB' ? TEST_B_SHAPES : SHAPES;
}

/** Scene `index` of a dataset with its refs: a pure function of its arguments. */
export function generateImage(
  flavor: Flavor,
  seed: number,
  index: number,
  size: number,
  split: string,
): SynthImage {
  const spec = FLAVOR_SPECS[flavor];
  const rng = sceneRng(seed, flavor, index);
  const shapes = eligibleShapes(split);
  for (let attempt = 0; attempt < 200; attempt++) {
    const scene = composeScene(rng, { ...spec.compose, size });
    const objs = scene.objects;
    const hasTwin = (i: number): boolean =>
      objs.some((o, j) => j !== i && (o.shape === objs[i]!.shape || o.color === objs[i]!.color));
    // Targets with a same-shape or same-colour distractor first: those are the ones that need language.
    const order = rng.shuffle(objs.map((_, i) => i).filter((i) => shapes.includes(objs[i]!.shape)));
    order.sort((a, b) => Number(hasTwin(b)) - Number(hasTwin(a)));
    const cap = rng.int(spec.refsPerImage[0], spec.refsPerImage[1]);
    const refs: SynthRef[] = [];
    for (const t of order) {
      if (refs.length >= cap) break;
      const want = rng.int(spec.sentencesPerRef[0], spec.sentencesPerRef[1]);
      const found = referringSentences(scene, t, spec.grammar, want, rng);
      if (found.length === 0) continue;
      refs.push({
        object: t,
        sentences: found.map(({ sentence, expression }) => {
          const raw = rawForm(sentence, rng);
          return { ...normalizeSentence(raw), raw, expression };
        }),
      });
    }
    if (refs.length > 0) return { index, split, scene, refs };
  }
  throw new Error(`synth: no referable object in 200 scenes for image ${index} (size ${size} too small?)`);
}

export interface SynthOptions {
  flavor: Flavor;
  out: string;
  images: number;
  size: number;
  seed: number;
  /** Replace an existing dataset of this flavor in `out`. */
  force?: boolean;
  /** PNG encodes in flight; default: available parallelism. */
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface SplitCounts {
  images: number;
  refs: number;
  sentences: number;
}

export interface SynthSummary {
  flavor: Flavor;
  splitBy: 'unc' | 'umd';
  annotations: number;
  splits: Record<string, SplitCounts>;
  total: SplitCounts;
  /** Share of refs whose target has a distractor of the same shape or the same colour. */
  withDistractor: number;
  meanWords: number;
  instancesPath: string;
  refsPath: string;
  imageDir: string;
}

export const IMAGE_ROOT = 'images/synth';

export function imageFileName(imageId: number): string {
  return `synth_${String(imageId).padStart(6, '0')}.png`;
}

export const MIN_SIZE = 64;
export const MAX_SIZE = 2048;

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** Write via a temp file and rename so a crash never leaves half a JSON file. */
async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

const round4 = (x: number): number => Math.round(x * 1e4) / 1e4;

/** Generate a whole dataset of one flavor and write it in the refer layout. */
export async function writeSynthDataset(opt: SynthOptions): Promise<SynthSummary> {
  const { flavor, out, images, size, seed } = opt;
  if (!isFlavor(flavor)) throw new Error(`unknown flavor '${flavor}' (known: ${FLAVORS.join(', ')})`);
  if (!Number.isInteger(images) || images < 1)
    throw new Error(`images must be a positive integer, got ${images}`);
  if (!Number.isInteger(size) || size < MIN_SIZE || size > MAX_SIZE) {
    throw new Error(`size must be an integer in [${MIN_SIZE}, ${MAX_SIZE}], got ${size}`);
  }
  if (!Number.isInteger(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER) {
    throw new Error(`seed must be a non-negative integer, got ${seed}`);
  }
  const spec = FLAVOR_SPECS[flavor];
  const imageDir = join(out, IMAGE_ROOT, flavor);
  const annDir = join(out, flavor);
  const instancesPath = join(annDir, 'instances.json');
  const refsPath = join(annDir, `refs(${spec.splitBy}).json`);
  if (!opt.force && ((await exists(instancesPath)) || (await exists(refsPath)))) {
    throw new Error(`${annDir} already holds a dataset; pass --force to replace it`);
  }
  await mkdir(imageDir, { recursive: true });
  await mkdir(annDir, { recursive: true });
  if (opt.force) {
    // Only our own file names: a smaller regeneration must not leave stale images behind.
    for (const f of await readdir(imageDir)) if (/^synth_\d{6,}\.png$/.test(f)) await rm(join(imageDir, f));
  }

  const splits = assignSplits(flavor, images, seed);
  const imageRecords: object[] = [];
  const annotations: object[] = [];
  const refs: object[] = [];
  const counts: Record<string, SplitCounts> = {};
  for (const [name] of spec.splits) counts[name] = { images: 0, refs: 0, sentences: 0 };
  let annId = 0;
  let refId = 0;
  let sentId = 0;
  let withDistractor = 0;
  let words = 0;

  const limit = Math.max(1, opt.concurrency ?? availableParallelism());
  const inFlight = new Set<Promise<void>>();
  let done = 0;
  let failure: unknown = null;

  for (let index = 0; index < images; index++) {
    const split = splits[index]!;
    const img = generateImage(flavor, seed, index, size, split);
    const { scene } = img;
    const imageId = index + 1;
    const fileName = imageFileName(imageId);
    imageRecords.push({ id: imageId, file_name: fileName, height: size, width: size, split });
    const runs = encodeLabelCounts(scene.labels, size, size, scene.objects.length);
    const firstAnn = annId + 1;
    const annOf = (k: number): number => firstAnn + k;
    scene.objects.forEach((o, k) => {
      annotations.push({
        id: annOf(k),
        image_id: imageId,
        category_id: SHAPES.indexOf(o.shape) + 1,
        segmentation: { size: [size, size], counts: countsToString(runs[k]!) },
        bbox: o.bbox,
        area: o.visibleArea,
        iscrowd: 0,
        synth: {
          shape: o.shape,
          color: o.color,
          size: o.size,
          pattern: o.pattern,
          rgb: o.rgb,
          shade: o.shade,
          z: k,
          fullArea: o.fullArea,
          // [ann_id of an object below, share of its full area where this one is seen instead]
          covers: [...o.covers].map(([below, f]) => [annOf(below), round4(f)]),
        },
      });
    });
    annId += scene.objects.length;
    const c = counts[split]!;
    c.images++;
    for (const ref of img.refs) {
      const o = scene.objects[ref.object]!;
      const others = scene.objects.filter((_, j) => j !== ref.object);
      const sameShape = others.filter((x) => x.shape === o.shape).length;
      const sameColor = others.filter((x) => x.color === o.color).length;
      if (sameShape + sameColor > 0) withDistractor++;
      const sentIds = ref.sentences.map(() => ++sentId);
      refs.push({
        ref_id: ++refId,
        ann_id: annOf(ref.object),
        image_id: imageId,
        category_id: SHAPES.indexOf(o.shape) + 1,
        file_name: fileName,
        split,
        sent_ids: sentIds,
        sentences: ref.sentences.map((s, j) => ({
          sent_id: sentIds[j],
          sent: s.sent,
          raw: s.raw,
          tokens: s.tokens,
        })),
        synth: {
          sameShapeDistractors: sameShape,
          sameColorDistractors: sameColor,
          sameShapeAndColorDistractors: others.filter((x) => x.shape === o.shape && x.color === o.color)
            .length,
          objects: scene.objects.length,
          visibleFraction: round4(o.visibleArea / o.fullArea),
          areaRatio: round4(o.visibleArea / (size * size)),
          // What each sentence relies on: 'appearance', 'location' or 'relation'.
          kinds: ref.sentences.map((s) => s.expression.kind),
        },
      });
      c.refs++;
      c.sentences += ref.sentences.length;
      for (const s of ref.sentences) words += s.tokens.length;
    }

    const rgb = renderScene(scene);
    const p = sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), {
      raw: { width: size, height: size, channels: 3 },
    })
      .png({ compressionLevel: 6 })
      .toFile(join(imageDir, fileName))
      .then(
        () => {
          done++;
          opt.onProgress?.(done, images);
        },
        (e: unknown) => {
          failure ??= e;
        },
      )
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= limit) await Promise.race(inFlight);
    if (failure) break;
  }
  await Promise.all(inFlight);
  if (failure) throw failure instanceof Error ? failure : new Error(String(failure));

  const instances = {
    info: {
      description: `refseg synthetic referring benchmark, ${flavor}`,
      flavor,
      seed,
      size,
      images,
      // Where the loader finds images[].file_name, relative to the dataset root.
      image_root: `${IMAGE_ROOT}/${flavor}`,
    },
    images: imageRecords,
    annotations,
    categories: SHAPES.map((name, i) => ({ id: i + 1, name, supercategory: 'shape' })),
  };
  await writeAtomic(instancesPath, JSON.stringify(instances));
  await writeAtomic(refsPath, JSON.stringify(refs));

  const total: SplitCounts = { images: 0, refs: 0, sentences: 0 };
  for (const s of Object.values(counts)) {
    total.images += s.images;
    total.refs += s.refs;
    total.sentences += s.sentences;
  }
  return {
    flavor,
    splitBy: spec.splitBy,
    annotations: annId,
    splits: counts,
    total,
    withDistractor: total.refs ? withDistractor / total.refs : 0,
    meanWords: total.sentences ? words / total.sentences : 0,
    instancesPath,
    refsPath,
    imageDir,
  };
}
