// The synthetic referring benchmark (spec/data.md §4) as written to disk: refer layout and
// records (§1), determinism, masks that match the pixels, RLE that decodes to the visible masks,
// expressions that an independent reader (synth-reader.ts) resolves to exactly their target,
// flavor rules (no location words in synth-refcoco+), splits, distractors, minimum visibility.
// Tiny datasets (40 images of 128², a few seconds) are generated into a temp folder once.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { decodeRle, encodeRle, maskArea, maskBbox, type Rle } from '../../src/data/rle.js';
import {
  FLAVORS,
  TEST_A_SHAPES,
  TEST_B_SHAPES,
  assignSplits,
  generateImage,
  writeSynthDataset,
  type Flavor,
} from '../../src/data/synth/generate.js';
import { minVisiblePixels, visibleMask } from '../../src/data/synth/scene.js';
import { lexicon } from '../../src/data/synth/language.js';
import { SPATIAL_WORDS, denote, objectsOf, parse, wordsOfKind } from './synth-reader.js';

const N = 40;
const SIZE = 128;
const SEED = 3;
let root = '';

interface Dataset {
  instances: any;
  refs: any[];
  dir: string;
}
const data = new Map<Flavor, Dataset>();

const refsName = (f: Flavor): string => (f === 'synth-refcocog' ? 'refs(umd).json' : 'refs(unc).json');

async function load(dir: string, flavor: Flavor): Promise<Dataset> {
  return {
    instances: JSON.parse(await readFile(join(dir, flavor, 'instances.json'), 'utf8')),
    refs: JSON.parse(await readFile(join(dir, flavor, refsName(flavor)), 'utf8')),
    dir,
  };
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'refseg-synth-'));
  for (const flavor of FLAVORS) {
    await writeSynthDataset({
      flavor,
      out: join(root, 'a'),
      images: N,
      size: SIZE,
      seed: SEED,
      concurrency: 1,
    });
    data.set(flavor, await load(join(root, 'a'), flavor));
  }
  // The same dataset again with more PNG encodes in flight, and once with another seed.
  await writeSynthDataset({
    flavor: 'synth-refcoco',
    out: join(root, 'b'),
    images: N,
    size: SIZE,
    seed: SEED,
    concurrency: 6,
  });
  await writeSynthDataset({
    flavor: 'synth-refcoco',
    out: join(root, 'c'),
    images: N,
    size: SIZE,
    seed: SEED + 1,
  });
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

async function filesUnder(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile())
      out.set(join(e.parentPath, e.name).slice(dir.length), await readFile(join(e.parentPath, e.name)));
  }
  return out;
}

test('same seed → identical bytes (JSON and every PNG), whatever the concurrency; other seed → different', async () => {
  const a = await filesUnder(join(root, 'a'));
  const b = await filesUnder(join(root, 'b'));
  const refcoco = [...a.keys()].filter((k) => k.includes('/synth-refcoco/'));
  assert.equal(refcoco.length, N + 2); // N images + instances.json + refs(unc).json
  for (const k of refcoco) assert.ok(b.get(k)?.equals(a.get(k)!), `${k} differs between two runs`);
  const c = await filesUnder(join(root, 'c'));
  for (const k of [
    '/synth-refcoco/instances.json',
    '/synth-refcoco/refs(unc).json',
    '/images/synth/synth-refcoco/synth_000001.png',
  ]) {
    assert.ok(c.has(k) && !c.get(k)!.equals(a.get(k)!), `${k}: another seed must draw other scenes`);
  }
});

test('refer layout and record format (spec/data.md §1)', async () => {
  for (const flavor of FLAVORS) {
    const { instances, refs, dir } = data.get(flavor)!;
    assert.equal(instances.images.length, N);
    assert.deepEqual(
      instances.categories.map((c: any) => c.name),
      ['circle', 'square', 'triangle', 'star', 'heart', 'diamond', 'hexagon', 'cross'],
    );
    const anns = new Map<number, any>(instances.annotations.map((a: any) => [a.id, a]));
    const images = new Map<number, any>(instances.images.map((i: any) => [i.id, i]));
    for (const img of instances.images) {
      assert.deepEqual([img.height, img.width], [SIZE, SIZE]);
      const meta = await sharp(join(dir, instances.info.image_root, img.file_name)).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ['png', SIZE, SIZE, 3]);
    }
    assert.equal(instances.info.image_root, `images/synth/${flavor}`);
    for (const a of instances.annotations) {
      assert.equal(a.iscrowd, 0);
      assert.equal(typeof a.segmentation.counts, 'string');
      assert.ok(images.has(a.image_id));
      assert.equal(instances.categories[a.category_id - 1].name, a.synth.shape);
    }
    const sentIds = new Set<number>();
    for (const r of refs) {
      assert.deepEqual(Object.keys(r).sort(), [
        'ann_id',
        'category_id',
        'file_name',
        'image_id',
        'ref_id',
        'sent_ids',
        'sentences',
        'split',
        'synth',
      ]);
      const ann = anns.get(r.ann_id);
      assert.equal(ann.image_id, r.image_id);
      assert.equal(ann.category_id, r.category_id);
      assert.equal(r.file_name, images.get(r.image_id).file_name);
      assert.equal(r.split, images.get(r.image_id).split);
      assert.deepEqual(
        r.sent_ids,
        r.sentences.map((s: any) => s.sent_id),
      );
      assert.ok(r.sentences.length >= 1);
      for (const s of r.sentences) {
        assert.ok(!sentIds.has(s.sent_id), 'sent ids are unique');
        sentIds.add(s.sent_id);
        assert.equal(s.sent, s.tokens.join(' '));
        assert.equal(
          s.sent,
          s.raw
            .toLowerCase()
            .replace(/[^a-z0-9 ]+/g, ' ')
            .split(' ')
            .filter(Boolean)
            .join(' '),
        );
      }
      assert.equal(r.synth.kinds.length, r.sentences.length);
    }
    assert.equal(new Set(refs.map((r: any) => r.ref_id)).size, refs.length);
  }
});

test('masks match the rendered pixels: every object pixel has its colour, nothing else is saturated', async () => {
  for (const flavor of FLAVORS) {
    const { instances, dir } = data.get(flavor)!;
    for (const img of instances.images.slice(0, 20)) {
      const { data: px } = await sharp(join(dir, instances.info.image_root, img.file_name))
        .raw()
        .toBuffer({ resolveWithObject: true });
      const owner = new Int32Array(SIZE * SIZE).fill(-1);
      for (const a of instances.annotations.filter((x: any) => x.image_id === img.id)) {
        const m = decodeRle(a.segmentation);
        const [rgb, shade] = [a.synth.rgb, a.synth.shade];
        for (let i = 0; i < m.data.length; i++) {
          if (!m.data[i]) continue;
          assert.equal(owner[i], -1, `pixel ${i} of image ${img.id} in two visible masks`);
          owner[i] = a.id;
          const c = [px[3 * i], px[3 * i + 1], px[3 * i + 2]];
          assert.ok(
            (c[0] === rgb[0] && c[1] === rgb[1] && c[2] === rgb[2]) ||
              (c[0] === shade[0] && c[1] === shade[1] && c[2] === shade[2]),
            `image ${img.id} pixel ${i}: ${c} is neither ${rgb} nor ${shade} (ann ${a.id})`,
          );
        }
      }
      // Backgrounds are desaturated; every object colour is strongly saturated (chroma ≥ 60).
      for (let i = 0; i < SIZE * SIZE; i++) {
        if (owner[i] !== -1) continue;
        const c = [px[3 * i]!, px[3 * i + 1]!, px[3 * i + 2]!];
        assert.ok(
          Math.max(...c) - Math.min(...c) < 60,
          `image ${img.id} pixel ${i} outside every mask looks like an object: ${c}`,
        );
      }
    }
  }
});

test('instances.json RLE decodes to the visible mask of a regenerated scene (area, bbox too)', () => {
  for (const flavor of FLAVORS) {
    const { instances } = data.get(flavor)!;
    for (const img of instances.images.slice(0, 15)) {
      const { scene } = generateImage(flavor, SEED, img.id - 1, SIZE, img.split);
      const anns = instances.annotations.filter((a: any) => a.image_id === img.id);
      assert.equal(anns.length, scene.objects.length);
      anns.forEach((a: any) => {
        const k = a.synth.z;
        const want = visibleMask(scene, k);
        assert.deepEqual(decodeRle(a.segmentation as Rle), want);
        assert.equal(a.segmentation.counts, encodeRle(want).counts);
        assert.equal(a.area, maskArea(want));
        assert.deepEqual(a.bbox, maskBbox(want));
      });
    }
  }
});

test('every expression refers to exactly its target (independent reader over the files)', () => {
  let sentences = 0;
  for (const flavor of FLAVORS) {
    const { instances, refs } = data.get(flavor)!;
    const byImage = new Map<number, any[]>();
    for (const a of instances.annotations) byImage.set(a.image_id, [...(byImage.get(a.image_id) ?? []), a]);
    for (const r of refs) {
      const objs = objectsOf(byImage.get(r.image_id)!);
      for (const s of r.sentences) {
        assert.deepEqual(
          denote(s.sent, objs, SIZE),
          [r.ann_id],
          `${flavor} image ${r.image_id}: "${s.sent}"`,
        );
        sentences++;
      }
    }
  }
  assert.ok(sentences > 3 * N, `only ${sentences} sentences`);
});

test('the reader itself rejects what it should (guards the guard)', () => {
  const objs = [
    {
      annId: 1,
      shape: 'circle',
      color: 'red',
      size: 'small',
      pattern: 'plain',
      cx: 20,
      cy: 50,
      covers: new Map(),
    },
    {
      annId: 2,
      shape: 'circle',
      color: 'red',
      size: 'large',
      pattern: 'plain',
      cx: 80,
      cy: 50,
      covers: new Map([[1, 0.3]]),
    },
  ];
  assert.deepEqual(denote('the red circle', objs, 100), [1, 2]);
  assert.deepEqual(denote('the red circle on the left', objs, 100), [1]);
  assert.deepEqual(denote('the leftmost of the three red circles', objs, 100), []);
  assert.deepEqual(denote('the circle to the right of the small circle', objs, 100), [2]);
  assert.deepEqual(denote('the circle with the small circle behind it', objs, 100), [2]);
  assert.throws(() => parse('the red circle near the box'), /unknown word 'near'/);
});

test('synth-refcoco+ has no location or relation words; synth-refcoco mostly has them; synth-refcocog always relates', () => {
  const sents = (f: Flavor): string[] =>
    data.get(f)!.refs.flatMap((r: any) => r.sentences.map((s: any) => s.sent));
  for (const s of sents('synth-refcoco+')) {
    for (const w of s.split(' ')) assert.ok(!SPATIAL_WORDS.has(w), `"${s}" uses '${w}'`);
  }
  const coco = sents('synth-refcoco');
  const withLoc = coco.filter((s) => parse(s).target.loc !== undefined).length;
  assert.ok(
    withLoc / coco.length > 0.6,
    `only ${withLoc}/${coco.length} refcoco expressions use a location word`,
  );
  assert.ok(coco.every((s) => parse(s).relation === undefined));
  const g = sents('synth-refcocog');
  assert.ok(g.every((s) => parse(s).relation !== undefined));
  const len = (xs: string[]): number => xs.reduce((a, s) => a + s.split(' ').length, 0) / xs.length;
  assert.ok(
    len(g) > len(coco) + 2,
    `refcocog expressions should be longer (${len(g)} vs ${len(coco)} words)`,
  );
  // Several expressions per object, with synonyms: more distinct words than one per concept.
  assert.ok(new Set(coco.flatMap((s) => s.split(' '))).size > 40);
});

test('splits: per image, every split present, testA/testB targets from their shape groups', () => {
  for (const flavor of FLAVORS) {
    const { instances, refs } = data.get(flavor)!;
    const want = flavor === 'synth-refcocog' ? ['test', 'train', 'val'] : ['testA', 'testB', 'train', 'val'];
    assert.deepEqual([...new Set(instances.images.map((i: any) => i.split))].sort(), want);
    assert.deepEqual([...new Set(refs.map((r: any) => r.split))].sort(), want);
    const shape = (r: any): string => instances.categories[r.category_id - 1].name;
    for (const r of refs) {
      if (r.split === 'testA')
        assert.ok(TEST_A_SHAPES.includes(shape(r) as never), `testA ref ${r.ref_id} is a ${shape(r)}`);
      if (r.split === 'testB')
        assert.ok(TEST_B_SHAPES.includes(shape(r) as never), `testB ref ${r.ref_id} is a ${shape(r)}`);
    }
  }
  const count = (xs: string[], s: string): number => xs.filter((x) => x === s).length;
  const unc = assignSplits('synth-refcoco', 1000, 0);
  assert.deepEqual(
    ['train', 'val', 'testA', 'testB'].map((s) => count(unc, s)),
    [800, 70, 65, 65],
  );
  const umd = assignSplits('synth-refcocog', 1000, 0);
  assert.deepEqual(
    ['train', 'val', 'test'].map((s) => count(umd, s)),
    [820, 60, 120],
  );
  assert.deepEqual(assignSplits('synth-refcoco', 3, 0), ['train', 'train', 'train']);
  assert.notDeepEqual(assignSplits('synth-refcoco', 1000, 1), unc);
});

test('targets are visible enough, and most have a same-shape or same-colour distractor', () => {
  for (const flavor of FLAVORS) {
    const { instances, refs } = data.get(flavor)!;
    const anns = new Map<number, any>(instances.annotations.map((a: any) => [a.id, a]));
    for (const a of instances.annotations) {
      assert.ok(a.area >= 0.4 * a.synth.fullArea, `ann ${a.id}: ${a.area} of ${a.synth.fullArea} visible`);
      assert.ok(a.area >= minVisiblePixels(SIZE));
    }
    let withDistractor = 0;
    for (const r of refs) {
      const t = anns.get(r.ann_id);
      const others = instances.annotations.filter((a: any) => a.image_id === r.image_id && a.id !== r.ann_id);
      const sameShape = others.filter((a: any) => a.synth.shape === t.synth.shape).length;
      const sameColor = others.filter((a: any) => a.synth.color === t.synth.color).length;
      assert.equal(r.synth.sameShapeDistractors, sameShape);
      assert.equal(r.synth.sameColorDistractors, sameColor);
      if (sameShape + sameColor > 0) withDistractor++;
    }
    assert.ok(
      withDistractor / refs.length > 0.75,
      `${flavor}: ${withDistractor}/${refs.length} refs have a distractor`,
    );
    // Occlusion happens: some objects are partly hidden.
    assert.ok(instances.annotations.some((a: any) => a.area < a.synth.fullArea));
  }
});

test('writeSynthDataset refuses to overwrite without force, and force removes stale images', async () => {
  const out = join(root, 'b');
  await assert.rejects(
    writeSynthDataset({ flavor: 'synth-refcoco', out, images: 2, size: SIZE, seed: 0 }),
    /already holds a dataset; pass --force/,
  );
  await writeSynthDataset({ flavor: 'synth-refcoco', out, images: 3, size: SIZE, seed: 0, force: true });
  const pngs = (await readdir(join(out, 'images/synth/synth-refcoco'))).sort();
  assert.deepEqual(pngs, ['synth_000001.png', 'synth_000002.png', 'synth_000003.png']);
  await assert.rejects(
    writeSynthDataset({ flavor: 'synth-refcoco', out, images: 2, size: 16, seed: 0, force: true }),
    /size must be an integer in \[64, 2048\]/,
  );
});

test('lexicon(): shape, colour, size, pattern and location words are those the independent reader knows', () => {
  const lex = lexicon();
  // shape phrases less the words that also serve elsewhere: generic nouns ("round shape") and counts
  const elsewhere = new Set(['shape', 'shapes', 'five', 'six']);
  assert.deepEqual(
    [...lex.shape].sort(),
    wordsOfKind('shape').filter((w) => !elsewhere.has(w)),
  );
  for (const kind of ['color', 'size', 'pattern'] as const)
    assert.deepEqual([...lex[kind]].sort(), wordsOfKind(kind), kind);
  for (const [loc, words] of Object.entries(lex.loc))
    assert.deepEqual([...words].sort(), wordsOfKind('loc', loc), loc);
  assert.deepEqual(Object.keys(lex.loc).sort(), ['bottom', 'left', 'middle', 'right', 'top']);
});
