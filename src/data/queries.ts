// Queries: extra training samples whose sentence is one word or name that several objects of the
// image may share, and whose mask is every object that has it (the union of their visible masks):
// a category's name ("star"), or the value of an annotation field the dataset's objects carry (the
// synthetic benchmark's synth.color: "red"). They teach what each such word selects without the
// location, size or colour words that real expressions mix in, the binding the built-in model's
// seeds learned unevenly (docs/restr-tiny-experiments.md, session 14). Built from instances.json
// alone, as `refseg pretrain` is: no expression of any split is added or changed.

import { Rng } from './random.js';
import {
  annotationField,
  decodeSegmentation,
  type ReferDataset,
  type ReferObject,
  type ReferSample,
} from './refer.js';
import { emptyMask, encodeRle } from './rle.js';

/** The query field that names an object's category; any other is a dotted annotation field path. */
const CATEGORY_FIELD = 'category';

/**
 * One query per image of `set` (loaded `withObjects`), in the order of the images' first samples:
 * a value that one or more of the image's objects have in one of `fields` (values by field in the
 * order given, then by category id or by string), chosen by `seed` and the image id. Objects of a
 * category without a name are left out of category queries. The query's `annId` is −1 (no
 * annotation holds it: `pickPerImage` counts it as an object of its own), its `refId` and `sentId`
 * are −1, its category that of a category query and −1 otherwise.
 */
export function imageQueries(set: ReferDataset, fields: readonly string[], seed: number): ReferSample[] {
  if (fields.length === 0) throw new Error('queries: no fields named');
  if (!set.objects)
    throw new Error(
      `${set.dataset}: queries need the images' objects from instances.json, which this layout lacks`,
    );
  const out: ReferSample[] = [];
  const seen = new Set<number>();
  for (const s of set.samples) {
    if (seen.has(s.imageId)) continue;
    seen.add(s.imageId);
    const objects = set.objects.get(s.imageId) ?? [];
    const candidates = fields.flatMap((field) => fieldValues(set, objects, field));
    if (candidates.length === 0) continue;
    // the stream's name predates field queries; kept, so the built-in model's draws stay the same
    const q = Rng.from('category-query', seed, s.imageId).choice(candidates);
    const union = emptyMask(s.height, s.width);
    for (const o of q.objects) {
      const m = decodeSegmentation(o.segmentation, s.height, s.width).data;
      for (let i = 0; i < m.length; i++) if (m[i]) union.data[i] = 1;
    }
    out.push({
      refId: -1,
      sentId: -1,
      sentence: q.text,
      imageId: s.imageId,
      file: s.file,
      annId: -1,
      segmentation: encodeRle(union),
      height: s.height,
      width: s.width,
      category: q.categoryId >= 0 ? q.text : '',
      categoryId: q.categoryId,
      split: s.split,
    });
  }
  return out;
}

interface Candidate {
  text: string;
  categoryId: number;
  objects: ReferObject[];
}

/** The values `objects` have in `field`, each with the objects that have it. */
function fieldValues(set: ReferDataset, objects: readonly ReferObject[], field: string): Candidate[] {
  const by = new Map<string | number, Candidate>();
  const category = field === CATEGORY_FIELD;
  for (const o of objects) {
    if (category && !set.categories.has(o.categoryId)) continue;
    const key = category ? o.categoryId : annotationField(o, field, '--queries');
    let c = by.get(key);
    if (!c) {
      const text = category ? set.categories.get(o.categoryId)! : (key as string);
      by.set(key, (c = { text, categoryId: category ? o.categoryId : -1, objects: [] }));
    }
    c.objects.push(o);
  }
  return [...by].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, c]) => c);
}
