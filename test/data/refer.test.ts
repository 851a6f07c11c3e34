// The refer-layout loader (spec/data.md §1, reliability.md "Dataset loading") over a small dataset
// written here, the polygon rasterizer, and the synthetic generator's output through the same loader.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { DATASETS } from '../../src/data/datasets.js';
import { polygonsToMask } from '../../src/data/polygon.js';
import { loadRefer, readSampleImage, sampleMask, type ReferOptions } from '../../src/data/refer.js';
import { encodeCounts, encodeRle, maskArea, type Mask } from '../../src/data/rle.js';
import { writeSynthDataset, FLAVOR_SPECS } from '../../src/data/synth/generate.js';

let tmp = '';
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'refseg-refer-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function rect(w: number, h: number, x0: number, y0: number, x1: number, y1: number): Mask {
  const data = new Uint8Array(w * h);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) data[y * w + x] = 1;
  return { width: w, height: h, data };
}

interface Fixture {
  root: string;
  masks: Record<number, Mask>;
}

/** A refcoco-like dataset: 3 images (12×8 PNG), one annotation per segmentation kind. */
async function writeDataset(
  name: string,
  edit: (inst: { images: any[]; annotations: any[]; categories: any[] }, refs: any[]) => void = () => {},
  refsExt: 'json' | 'none' = 'json',
): Promise<Fixture> {
  const root = join(tmp, name);
  const imgDir = join(root, 'images/mscoco/images/train2014');
  await mkdir(imgDir, { recursive: true });
  await mkdir(join(root, 'refcoco'), { recursive: true });
  const w = 12;
  const h = 8;
  const masks: Record<number, Mask> = {
    101: rect(w, h, 1, 1, 5, 4),
    102: rect(w, h, 6, 2, 12, 8),
    103: rect(w, h, 0, 0, 10, 5), // as the polygon below rasterizes
  };
  const images = [1, 2, 3].map((id) => ({ id, file_name: `COCO_train2014_${id}.png`, height: h, width: w }));
  for (const im of images) {
    const png = await sharp({
      create: { width: w, height: h, channels: 3, background: { r: im.id * 50, g: 0, b: 0 } },
    })
      .png()
      .toBuffer();
    await writeFile(join(imgDir, im.file_name), png);
  }
  const inst = {
    images,
    annotations: [
      {
        id: 101,
        image_id: 1,
        category_id: 1,
        segmentation: encodeRle(masks[101]!),
        bbox: [0, 0, 1, 1],
        area: 12,
        iscrowd: 0,
      },
      {
        id: 102,
        image_id: 2,
        category_id: 2,
        segmentation: { size: [h, w], counts: encodeCounts(masks[102]!) },
        area: 36,
        iscrowd: 1,
      },
      {
        id: 103,
        image_id: 3,
        category_id: 1,
        segmentation: [[0, 0, 10, 0, 10, 5, 0, 5]],
        area: 50,
        iscrowd: 0,
      },
    ],
    categories: [
      { id: 1, name: 'person' },
      { id: 2, name: 'dog' },
    ],
  };
  const sent = (id: number, s: string) => ({ sent_id: id, sent: s, raw: s, tokens: s.split(' ') });
  const refs = [
    {
      ref_id: 1,
      ann_id: 101,
      image_id: 1,
      category_id: 1,
      file_name: 'x_101.jpg',
      split: 'train',
      sent_ids: [1],
      sentences: [sent(1, 'man left')],
    },
    {
      ref_id: 2,
      ann_id: 102,
      image_id: 2,
      category_id: 2,
      file_name: 'x_102.jpg',
      split: 'val',
      sent_ids: [2, 3],
      sentences: [sent(2, 'dog on right'), sent(3, 'brown dog')],
    },
    {
      ref_id: 3,
      ann_id: 103,
      image_id: 3,
      category_id: 1,
      file_name: 'x_103.jpg',
      split: 'val',
      sent_ids: [4],
      sentences: [sent(4, 'woman top')],
    },
  ];
  edit(inst, refs);
  await writeFile(join(root, 'refcoco/instances.json'), JSON.stringify(inst));
  if (refsExt === 'json') await writeFile(join(root, 'refcoco/refs(unc).json'), JSON.stringify(refs));
  return { root, masks };
}

const opts = (root: string, o: Partial<ReferOptions> = {}): ReferOptions => ({
  root,
  dataset: 'refcoco',
  split: 'val',
  ...o,
});

test('one sample per sentence of the split, in file order, with resolved files and categories', async () => {
  const { root, masks } = await writeDataset('ok');
  const ds = await loadRefer(opts(root));
  assert.equal(ds.splitBy, 'unc');
  assert.deepEqual(ds.splits, { train: 1, val: 3 });
  assert.deepEqual(
    ds.samples.map((s) => [s.refId, s.sentId, s.sentence, s.annId, s.imageId, s.category]),
    [
      [2, 2, 'dog on right', 102, 2, 'dog'],
      [2, 3, 'brown dog', 102, 2, 'dog'],
      [3, 4, 'woman top', 103, 3, 'person'],
    ],
  );
  assert.equal(ds.samples[0]!.file, join(root, 'images/mscoco/images/train2014/COCO_train2014_2.png'));
  assert.equal(ds.budget.count, 0);
  // Masks: uncompressed RLE (102), polygon (103); compressed RLE (101) from the train split.
  assert.deepEqual(sampleMask(ds.samples[0]!).data, masks[102]!.data);
  assert.deepEqual(sampleMask(ds.samples[2]!).data, masks[103]!.data);
  const train = await loadRefer(opts(root, { split: 'train' }));
  assert.deepEqual(sampleMask(train.samples[0]!).data, masks[101]!.data);
  const img = await readSampleImage(ds.samples[0]!);
  assert.deepEqual([img.width, img.height, img.data[0]], [12, 8, 100]);
});

test('withObjects: every object of the split images, referred or not, with its extra fields', async () => {
  const { root } = await writeDataset('objects', (inst) => {
    inst.annotations.push({
      id: 104,
      image_id: 2,
      category_id: 1,
      segmentation: [[0, 0, 3, 0, 3, 3, 0, 3]],
      area: 9,
      iscrowd: 0,
      synth: { shape: 'star' },
    });
  });
  assert.equal((await loadRefer(opts(root))).objects, undefined);
  const ds = await loadRefer(opts(root, { withObjects: true }));
  const summary = [...ds.objects!].map(([image, list]) => [
    image,
    list.map((o) => [o.annId, o.categoryId, o.extra]),
  ]);
  assert.deepEqual(summary, [
    [
      2,
      [
        [102, 2, undefined],
        [104, 1, { synth: { shape: 'star' } }],
      ],
    ],
    [3, [[103, 1, undefined]]],
  ]);
  // an unreferred object's broken mask is an error naming it, not a silent skip
  const { root: bad } = await writeDataset('objects-bad', (inst) => {
    inst.annotations.push({
      id: 105,
      image_id: 3,
      category_id: 1,
      segmentation: { size: [2, 2], counts: [4] },
    });
  });
  await assert.rejects(loadRefer(opts(bad, { withObjects: true })), /instances\.json: ann_id 105: /);
});

test('unknown split names the splits present', async () => {
  const { root } = await writeDataset('split');
  await assert.rejects(
    loadRefer(opts(root, { split: 'testC' })),
    /no refs in split "testC" \(splits present: train, val\)/,
  );
});

test('pre-pass: a missing image fails the load, naming the file', async () => {
  const { root } = await writeDataset('missing', (inst) => {
    inst.images[2].file_name = 'COCO_train2014_404.png';
  });
  await assert.rejects(
    loadRefer(opts(root)),
    /1 of 2 referenced images are missing:\n.*COCO_train2014_404\.png/,
  );
});

test('path traversal and absolute image names are refused', async () => {
  for (const [name, bad] of [
    ['trav', '../../../../etc/passwd'],
    ['abs', '/etc/passwd'],
    ['trav2', 'sub/../../x.png'],
  ] as const) {
    const { root } = await writeDataset(name, (inst) => {
      inst.images[1].file_name = bad;
    });
    await assert.rejects(loadRefer(opts(root)), (e: Error) => {
      assert.match(
        e.message,
        /instances\.json: image 2: (absolute path|path) .* (refused|leaves the dataset root)/,
      );
      assert.ok(e.message.includes(JSON.stringify(bad)));
      return true;
    });
  }
});

test('corrupt records are skipped and counted; past the threshold the load fails', async () => {
  const { root } = await writeDataset('corrupt', (inst, refs) => {
    refs[1].ann_id = 999; // 2 sentences lost
    inst.annotations[2].segmentation = [[0, 0, 10]]; // odd coordinate count (ref 3, 1 sentence)
  });
  const ds = await loadRefer(opts(root, { maxCorruptFraction: 1 }));
  assert.equal(ds.samples.length, 0);
  assert.equal(ds.budget.count, 3);
  assert.deepEqual(
    ds.budget.skipped.map((s) => [s.where, s.samples]),
    [
      ['refs(unc).json[1] ref_id 2', 2],
      ['refs(unc).json[2] ref_id 3', 1],
    ],
  );
  assert.match(ds.budget.skipped[0]!.reason, /ann_id 999 is not in instances\.json/);
  assert.match(ds.budget.skipped[1]!.reason, /even number of coordinates/);
  // 3 of 3 lost > floor(0.5 · 3) = 1 allowed.
  // Fails as soon as the count passes floor(0.5 · 3) = 1 (the first bad ref already loses 2).
  await assert.rejects(
    loadRefer(opts(root, { maxCorruptFraction: 0.5 })),
    /2 of 3 samples are corrupt, over the limit of 1/,
  );
  await assert.rejects(loadRefer(opts(root)), /ann_id 999/);
});

test('RLE whose size differs from the image is corrupt; decoded image size must match instances.json', async () => {
  const { root } = await writeDataset('size', (inst) => {
    inst.annotations[1].segmentation.size = [8, 13];
    inst.images[2].width = 13; // the PNG is 12 wide
    inst.annotations[2].segmentation = [[0, 0, 10, 0, 10, 5]];
  });
  const ds = await loadRefer(opts(root, { maxCorruptFraction: 1 }));
  assert.match(ds.budget.skipped[0]!.reason, /RLE size \[8, 13\] differs from the image's \[8, 12\]/);
  await assert.rejects(
    readSampleImage(ds.samples[0]!),
    /COCO_train2014_3\.png: decoded image is 12×8 .* its annotation gives 13×8/,
  );
});

// ---------- refs(<splitBy>).p ----------

/** A protocol-2 pickle of JSON-like data (the subset refer's pickles use); str → Python 2 bytes str. */
function pickle(v: unknown, py2str = false): Buffer {
  const out: number[] = [0x80, 2];
  const u32 = (n: number) => out.push(n & 255, (n >> 8) & 255, (n >> 16) & 255, (n >>> 24) & 255);
  const emit = (x: unknown): void => {
    if (typeof x === 'number') {
      out.push(0x4a); // BININT
      u32(x);
    } else if (typeof x === 'string') {
      const b = Buffer.from(x, 'utf8');
      if (py2str && b.length < 256)
        out.push(0x55, b.length, ...b); // SHORT_BINSTRING
      else {
        out.push(0x58); // BINUNICODE
        u32(b.length);
        out.push(...b);
      }
    } else if (Array.isArray(x)) {
      out.push(0x5d, 0x28); // EMPTY_LIST, MARK
      x.forEach(emit);
      out.push(0x65); // APPENDS
    } else {
      out.push(0x7d, 0x28); // EMPTY_DICT, MARK
      for (const [k, val] of Object.entries(x as object)) {
        emit(k);
        emit(val);
      }
      out.push(0x75); // SETITEMS
    }
  };
  emit(v);
  out.push(0x2e); // STOP
  return Buffer.from(out);
}

test('refs(unc).p is read through the pickle reader; Python 2 UTF-8 strings recovered; globals refused', async () => {
  let refs: any[] = [];
  const { root } = await writeDataset(
    'pickle',
    (_, r) => {
      r[2].sentences[0].sent = 'café on top';
      refs = r;
    },
    'none',
  );
  await writeFile(join(root, 'refcoco/refs(unc).p'), pickle(refs, true));
  const ds = await loadRefer(opts(root));
  assert.deepEqual(
    ds.samples.map((s) => s.sentence),
    ['dog on right', 'brown dog', 'café on top'],
  );
  assert.ok(ds.refsFile.endsWith('refs(unc).p'));

  // `cos\nsystem\n` GLOBAL: refused before anything runs, naming the file.
  const evil = Buffer.concat([Buffer.from([0x80, 2]), Buffer.from('cos\nsystem\n'), Buffer.from([0x2e])]);
  await writeFile(join(root, 'refcoco/refs(unc).p'), evil);
  await assert.rejects(
    loadRefer(opts(root)),
    (e: Error) => e.message.includes('refs(unc).p') && /GLOBAL/.test(e.message),
  );

  // A reader can be plugged in per extension.
  const ds2 = await loadRefer(opts(root, { readers: { p: () => refs } }));
  assert.equal(ds2.samples.length, 3);
  await rm(join(root, 'refcoco/refs(unc).p'));
  await assert.rejects(
    loadRefer(opts(root)),
    /no refs file for splitBy unc: neither .*refs\(unc\)\.json nor .*refs\(unc\)\.p exists/,
  );
});

// ---------- polygons ----------

test('polygons rasterize with pycocotools semantics', () => {
  // An axis-aligned box [0,10]×[0,10] covers pixels 0..9 in both axes (area 100, as pycocotools gives).
  const box = polygonsToMask([[0, 0, 10, 0, 10, 10, 0, 10]], 12, 12);
  assert.equal(maskArea(box), 100);
  assert.deepEqual(box.data, rect(12, 12, 0, 0, 10, 10).data);
  // A part-covering union: two disjoint boxes.
  const two = polygonsToMask(
    [
      [0, 0, 2, 0, 2, 2, 0, 2],
      [5, 5, 8, 5, 8, 7, 5, 7],
    ],
    10,
    10,
  );
  assert.equal(maskArea(two), 4 + 6);
  // A triangle: the golden rows follow maskApi.c step by step (ported line by line). Column 3, by
  // hand: the top edge crosses it at upsampled y 9 → row ceil(9.5/5 - .5) = 2; the left edge, walked
  // downwards, leaves column 3 at upsampled y 28 → row ceil(28.5/5 - .5) = 6 (exclusive), so rows
  // 2..5, two more than pixel-center sampling gives: pycocotools masks run slightly large.
  const m = polygonsToMask([[2.5, 1.5, 9.2, 3.1, 4.4, 9.7]], 12, 12);
  const rows = Array.from({ length: 12 }, (_, y) => [...m.data.subarray(y * 12, y * 12 + 12)].join(''));
  assert.deepEqual(rows, [
    '000000000000', '000000000000', '000111000000', '000111111000', '000111110000', '000111100000',
    '000011100000', '000011000000', '000010000000', '000010000000', '000000000000', '000000000000',
  ]); // prettier-ignore
});

// ---------- the synthetic generator through the same loader ----------

test('synthetic datasets load with their default splitBy; masks match images', async () => {
  const out = join(tmp, 'synth');
  for (const flavor of ['synth-refcoco', 'synth-refcoco+', 'synth-refcocog'] as const) {
    assert.equal(DATASETS[flavor].defaultSplitBy, FLAVOR_SPECS[flavor].splitBy);
    await writeSynthDataset({ flavor, out, images: 8, size: 64, seed: 3 });
    const ds = await loadRefer({ root: out, dataset: flavor, split: 'train' });
    assert.ok(ds.samples.length > 0, flavor);
    assert.equal(ds.budget.count, 0);
    const s = ds.samples[0]!;
    const img = await readSampleImage(s);
    const mask = sampleMask(s);
    assert.deepEqual([mask.width, mask.height], [img.width, img.height]);
    assert.ok(maskArea(mask) > 0);
  }
});
