// The segmenter (src/infer/segmenter.ts): an image encoded once gives exactly what single-shot
// segmentation gives; masks and probabilities come back at the ORIGINAL size whatever the aspect;
// the threshold and score mean what their docs say; models that cannot be split (full graph per
// expression) agree with split ones; bad input fails with a message that says what is wrong.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import sharp from 'sharp';
import { ImageDecodeError } from '../../src/data/image.js';
import { type Segmenter, defaultCheckpointPath, loadSegmenter } from '../../src/infer/segmenter.js';
import type { ModelCheckpoint } from '../../src/models/checkpoint.js';
import { main as exampleMain } from '../../examples/segment.js';
import {
  bundledExample,
  sharedRisTestModel,
  tempCheckpoint,
  testCheckpointBytes,
  testModel,
} from './helpers.js';
import { maxAbsDiff } from '../models/restr-helpers.js';

const example = bundledExample();
const texts = example.expressions.slice(0, 3).map((e) => e.text);

async function png(width: number, height: number, seed = 1): Promise<Uint8Array> {
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7919 + seed * 104729) % 251;
  return sharp(data, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

async function withSegmenter<T>(
  ck: ModelCheckpoint | Uint8Array,
  fn: (s: Segmenter) => Promise<T>,
): Promise<T> {
  const seg = await loadSegmenter(ck, { threads: 1 });
  try {
    return await fn(seg);
  } finally {
    await seg.dispose();
  }
}

test('encodeImage once, segment many: identical to single-shot segmentation, image encoder not rerun', async () => {
  await withSegmenter(testModel(), async (seg) => {
    assert.equal(seg.split, true);
    const encoded = await seg.encodeImage(example.image);
    assert.equal(encoded.width, example.width);
    assert.ok(encoded.timings.imageEncoder > 0);
    const all = await seg.segmentAll(example.image, texts);
    for (const [k, text] of texts.entries()) {
      const single = await seg.segment(example.image, text);
      const reused = await seg.segment(encoded, text);
      assert.deepEqual(reused.probability, single.probability, text);
      assert.deepEqual(reused.mask.data, single.mask.data, text);
      assert.deepEqual(reused.patchProbability, single.patchProbability, text);
      assert.deepEqual(all[k]!.probability, single.probability, text);
      assert.equal(reused.score, single.score);
      // The reused call spent nothing on the image; the single-shot one did.
      assert.equal(reused.timings.decode + reused.timings.preprocess + reused.timings.imageEncoder, 0);
      assert.ok(single.timings.decode > 0 && single.timings.imageEncoder > 0);
      assert.ok(reused.timings.total >= reused.timings.text + reused.timings.postprocess - 1e-9);
    }
    // segmentAll reports the one encoding on its first result only.
    assert.ok(all[0]!.timings.imageEncoder > 0);
    assert.equal(all[1]!.timings.imageEncoder, 0);
  });
});

test('results are at the original size for any aspect; score is the mean probability inside the mask', async () => {
  await withSegmenter(testCheckpointBytes(), async (seg) => {
    for (const [w, h] of [
      [50, 30],
      [17, 64],
      [320, 320],
    ] as const) {
      const r = await seg.segment(await png(w, h), 'the green shape');
      assert.equal(r.mask.width, w);
      assert.equal(r.mask.height, h);
      assert.equal(r.mask.data.length, w * h);
      assert.equal(r.probability.length, w * h);
      assert.ok(r.mask.data.every((v) => v === 0 || v === 1));
      assert.ok(r.probability.every((p) => p >= 0 && p <= 1));
      let inside = 0;
      let n = 0;
      r.probability.forEach((p, i) => {
        assert.equal(r.mask.data[i], p >= r.threshold ? 1 : 0, `pixel ${i}`);
        if (r.mask.data[i]) ((inside += p), n++);
      });
      assert.equal(r.area, n);
      assert.ok(Math.abs(r.score - (n ? inside / n : 0)) < 1e-9);
      // ReSTR's patch grid covers the 32 px letterbox with 8 px patches.
      assert.equal(r.patchProbability?.grid, 4);
      assert.equal(r.patchProbability?.data.length, 16);
      assert.equal(r.letterbox.size, seg.imageSize);
      assert.equal(Math.max(r.letterbox.newW, r.letterbox.newH), seg.imageSize);
    }
  });
});

test('threshold: default is the model’s (0.5); a higher one gives a subset of the mask', async () => {
  await withSegmenter(testModel(), async (seg) => {
    assert.equal(seg.threshold, 0.5);
    const img = await seg.encodeImage(example.image);
    const base = await seg.segment(img, texts[0]!);
    assert.equal(base.threshold, 0.5);
    assert.ok(
      base.area > 0 && base.area < example.width * example.height,
      `area ${base.area}: the test model should give a partial mask`,
    );
    const strict = await seg.segment(img, texts[0]!, { threshold: 0.8 });
    assert.ok(strict.area < base.area);
    for (let i = 0; i < strict.mask.data.length; i++)
      if (strict.mask.data[i]) assert.equal(base.mask.data[i], 1);
    assert.deepEqual(strict.probability, base.probability);
    assert.equal((await seg.segment(img, texts[0]!, { threshold: 0 })).area, example.width * example.height);
    await assert.rejects(seg.segment(img, texts[0]!, { threshold: 1.5 }), /threshold must be in \[0, 1\]/);
  });
});

test('a model that cannot be split runs its full graph per expression and agrees with the split one', async () => {
  const m = testModel();
  const unsplit: ModelCheckpoint = { ...m, def: { ...m.def, split: undefined } };
  const [a, b] = await Promise.all([
    withSegmenter(m, (s) => s.segmentAll(example.image, texts)),
    withSegmenter(unsplit, async (s) => {
      assert.equal(s.split, false);
      assert.equal(s.hasPatchProbability, true);
      const img = await s.encodeImage(example.image);
      assert.equal(img.timings.imageEncoder, 0); // nothing to run before the text is known
      return Promise.all(texts.map((t) => s.segment(img, t)));
    }),
  ]);
  for (let k = 0; k < texts.length; k++) {
    assert.ok(maxAbsDiff(a[k]!.probability, b[k]!.probability) < 1e-5, texts[k]);
    assert.ok(maxAbsDiff(a[k]!.patchProbability!.data, b[k]!.patchProbability!.data) < 1e-5, texts[k]);
  }
});

test('Shared-RIS (one encoder, no split, SentencePiece): full graph per expression, its own threshold, no patches', async () => {
  const m = sharedRisTestModel();
  await withSegmenter(m, async (seg) => {
    assert.equal(seg.kind, 'shared-ris');
    assert.equal(seg.split, false);
    assert.equal(seg.hasPatchProbability, false);
    assert.equal(seg.threshold, (m.config as { threshold: number }).threshold);
    const img = await seg.encodeImage(example.image);
    const reused = await seg.segment(img, texts[0]!);
    const single = await seg.segment(example.image, texts[0]!);
    assert.deepEqual(reused.probability, single.probability);
    assert.equal(reused.patchProbability, undefined);
    assert.equal(reused.mask.width, example.width);
    assert.equal(reused.threshold, seg.threshold);
    // the micro model reads 4 byte pieces: a text that does not start with "the " differs in them
    const other = await seg.segment(img, example.expressions.find((e) => !e.text.startsWith('the '))!.text);
    assert.ok(maxAbsDiff(other.probability, reused.probability) > 0, 'the text reaches the model');
  });
});

test('checkpoint sources: path, bytes, loaded; a missing file names itself', async () => {
  const ck = await tempCheckpoint();
  try {
    const fromPath = await withSegmenter(ck.path as never, (s) => s.segment(example.image, texts[0]!));
    const fromBytes = await withSegmenter(testCheckpointBytes(), (s) => s.segment(example.image, texts[0]!));
    assert.deepEqual(fromPath.probability, fromBytes.probability);
  } finally {
    await ck.cleanup();
  }
  await assert.rejects(
    loadSegmenter('/nonexistent/model.safetensors'),
    /checkpoint \/nonexistent\/model\.safetensors does not exist/,
  );
  if (!existsSync(defaultCheckpointPath()))
    await assert.rejects(loadSegmenter(), /built-in model .*--checkpoint/);
});

test('bad input: empty text, undecodable image, pixel limit, foreign or disposed encodings', async () => {
  const seg = await loadSegmenter(testModel(), { maxPixels: 1000 });
  const other = await loadSegmenter(testModel());
  try {
    await assert.rejects(seg.segment(example.image, '   '), /text is empty/);
    await assert.rejects(seg.segment(new TextEncoder().encode('not an image at all'), 'x'), (e: unknown) => {
      assert.ok(e instanceof ImageDecodeError);
      assert.match((e as Error).message, /^image: not a JPEG, PNG, WebP, GIF or BMP file/);
      return true;
    });
    await assert.rejects(seg.segment(await png(40, 30), 'x'), /1200 pixels, over the limit of 1000/);
    const img = await other.encodeImage(await png(20, 20));
    await assert.rejects(seg.segment(img, 'x'), /encoded by another segmenter/);
  } finally {
    await seg.dispose();
    await other.dispose();
  }
  await assert.rejects(seg.segment(await png(8, 8), 'x'), /after dispose/);
});

test('the library example runs on the bundled scene and prints one line per expression', async () => {
  const ck = await tempCheckpoint();
  try {
    const lines: string[] = [];
    await exampleMain([ck.path], (l) => lines.push(l));
    assert.match(lines[0]!, /^scene\.png 320×320: .* encoded in [\d.]+ ms \(once\)/);
    assert.equal(lines.length, example.expressions.length + 2);
    assert.match(
      lines.at(-1)!,
      new RegExp(`^mean IoU [\\d.]+ over ${example.expressions.length} expressions`),
    );
  } finally {
    await ck.cleanup();
  }
});
