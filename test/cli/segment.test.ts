// `refseg segment` (src/cli/segment.ts) on the bundled example image with a random-init checkpoint:
// the files it writes (mask at the image's size and equal to the library's mask, overlay, heatmap,
// -1/-2 suffixes for several expressions), its text and JSON summaries, one image encoding for
// all expressions, and usage errors that exit 2 naming the flag.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli.js';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { segmentCommand } from '../../src/cli/segment.js';
import { loadSegmenter } from '../../src/infer/segmenter.js';
import { bundledExample, tempCheckpoint } from '../infer/helpers.js';

const example = bundledExample();
const [t1, t2] = [example.expressions[0]!.text, example.expressions[6]!.text];

const run = (t: TestContext, ...argv: string[]) => runCli(t, segmentCommand, argv);

/** Pixels as stored: channels from the file's header (sharp's raw output would expand gray to RGB). */
async function raw(path: string) {
  const { channels } = await sharp(path).metadata();
  const img = channels === 1 ? sharp(path).toColourspace('b-w') : sharp(path);
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: channels! };
}

test('two expressions: numbered mask/overlay/heatmap files at the image size, the mask equal to the library’s', async (t) => {
  const ck = await tempCheckpoint();
  t.after(ck.cleanup);
  const out = join(ck.dir, 'out');
  const r = await run(
    t,
    '--checkpoint',
    ck.path,
    '--image',
    example.imagePath,
    '--text',
    t1,
    '--text',
    t2,
    '--out',
    join(out, 'mask.png'),
    '--overlay',
    join(out, 'overlay.png'),
    '--heatmap',
    join(out, 'heat.png'),
  );
  assert.equal(r.code, 0, r.err);
  assert.deepEqual((await readdir(out)).sort(), [
    'heat-1.png',
    'heat-2.png',
    'mask-1.png',
    'mask-2.png',
    'overlay-1.png',
    'overlay-2.png',
  ]);
  for (const f of await readdir(out)) {
    const img = await raw(join(out, f));
    assert.equal(img.width, example.width, f);
    assert.equal(img.height, example.height, f);
    assert.equal(img.channels, f.startsWith('mask') ? 1 : 3, f);
  }
  const seg = await loadSegmenter(ck.path);
  try {
    for (const [k, text] of [t1, t2].entries()) {
      const expected = (await seg.segment(example.image, text)).mask.data;
      const png = await raw(join(out, `mask-${k + 1}.png`));
      assert.ok(
        png.data.every((v, i) => v === expected[i]! * 255),
        `mask-${k + 1}.png differs from the library's mask`,
      );
      // The overlay differs from the image exactly where the mask is (fill or outline).
      const ov = await raw(join(out, `overlay-${k + 1}.png`));
      const src = await raw(example.imagePath);
      for (let i = 0; i < expected.length; i += 97) {
        const same =
          ov.data[3 * i] === src.data[3 * i] &&
          ov.data[3 * i + 1] === src.data[3 * i + 1] &&
          ov.data[3 * i + 2] === src.data[3 * i + 2];
        if (!expected[i]) assert.ok(same, `overlay pixel ${i} outside the mask changed`);
      }
    }
  } finally {
    await seg.dispose();
  }
  assert.match(r.out, /scene\.png: 320×320, restr 32 px; image encoded once in [\d.]+ ms/);
  assert.match(r.out, new RegExp(`"${t1}": \\d+ px \\([\\d.]+%\\), score [\\d.]+`));
  assert.equal((r.out.match(/^wrote /gm) ?? []).length, 6);
});

test('--json: one encoding for all expressions, per-expression timings without image work', async (t) => {
  const ck = await tempCheckpoint();
  t.after(ck.cleanup);
  const mask = join(ck.dir, 'm.png');
  const r = await run(
    t,
    '--checkpoint',
    ck.path,
    '--image',
    example.imagePath,
    '--text',
    t1,
    '--text',
    t2,
    '--json',
    '--threshold',
    '0.7',
    '--out',
    mask,
  );
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as {
    width: number;
    height: number;
    encodeMs: { imageEncoder: number };
    results: {
      text: string;
      width: number;
      area: number;
      threshold: number;
      timingsMs: Record<string, number>;
    }[];
    files: string[];
  };
  assert.equal(j.width, 320);
  assert.ok(j.encodeMs.imageEncoder > 0);
  assert.deepEqual(
    j.results.map((x) => x.text),
    [t1, t2],
  );
  for (const x of j.results) {
    assert.equal(x.threshold, 0.7);
    assert.equal(x.timingsMs.imageEncoder, 0);
    assert.equal(x.timingsMs.decode, 0);
  }
  assert.deepEqual(j.files, [join(ck.dir, 'm-1.png'), join(ck.dir, 'm-2.png')]);
});

test('one expression: file names as given', async (t) => {
  const ck = await tempCheckpoint();
  t.after(ck.cleanup);
  const r = await run(
    t,
    '--checkpoint',
    ck.path,
    '--image',
    example.imagePath,
    '--text',
    t1,
    '--out',
    join(ck.dir, 'mask.png'),
  );
  assert.equal(r.code, 0, r.err);
  assert.ok((await readdir(ck.dir)).includes('mask.png'));
});

test('usage errors exit 2 and name the flag; a bad image names the file', async (t) => {
  const ck = await tempCheckpoint();
  t.after(ck.cleanup);
  const base = ['--checkpoint', ck.path];
  const cases: [string[], RegExp][] = [
    [[...base, '--text', 'x'], /--image is required/],
    [[...base, '--image', example.imagePath], /--text is required/],
    [[...base, '--image', example.imagePath, '--text', ' '], /--text number 1 is empty/],
    [
      [...base, '--image', example.imagePath, '--text', 'x', '--threshold', '2'],
      /--threshold must be a number in \[0, 1\], got '2'/,
    ],
    [
      [...base, '--image', example.imagePath, '--text', 'x', '--threads', 'many'],
      /--threads must be an integer/,
    ],
    [[...base, '--image', example.imagePath, '--text', 'x', '--mask', 'm.png'], /unknown option '--mask'/i],
  ];
  for (const [argv, re] of cases) {
    const r = await run(t, ...argv);
    assert.equal(r.code, 2, argv.join(' '));
    assert.match(r.err, re);
    assert.match(r.err, /Usage|refseg segment/);
  }
  const help = await run(t, '--help');
  assert.equal(help.code, 0);
  for (const flag of [
    '--checkpoint',
    '--image',
    '--text',
    '--out',
    '--overlay',
    '--heatmap',
    '--threshold',
    '--json',
  ])
    assert.ok(help.out.includes(flag), flag);

  const notImage = join(ck.dir, 'notes.txt');
  await writeFile(notImage, 'hello');
  await assert.rejects(
    run(t, ...base, '--image', notImage, '--text', 'x'),
    new RegExp(`${notImage.replace(/[.]/g, '\\.')}: not a JPEG, PNG`),
  );
  await assert.rejects(
    run(t, ...base, '--image', join(ck.dir, 'missing.png'), '--text', 'x'),
    /cannot read --image .*missing\.png: ENOENT/,
  );
});
