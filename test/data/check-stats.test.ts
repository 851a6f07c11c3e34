// `refseg data check` and `refseg data stats` (src/cli/data.ts over src/data/check.ts and
// src/data/stats.ts) on a small synthetic dataset (refer layout) and on the ReferIt fixture, intact
// and broken: a missing image, masks that do not decode, records pointing nowhere, a file name
// leaving the dataset root.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSynthDataset } from '../../src/data/synth/generate.js';
import { runDataCli as run } from './run-data-cli.js';

const REFERIT = fileURLToPath(new URL('../../../test/fixtures/referit', import.meta.url));
const FLAVOR = 'synth-refcocog';

let tmp = '';
let synth = '';
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'refseg-check-'));
  synth = join(tmp, 'synth');
  await writeSynthDataset({ flavor: FLAVOR, out: synth, images: 10, size: 96, seed: 3 });
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function copy(from: string, name: string): Promise<string> {
  const root = join(tmp, name);
  await cp(from, root, { recursive: true });
  return root;
}

test('check and stats: help, and usage mistakes exit 2 naming the flag', async (t) => {
  for (const sub of ['check', 'stats']) {
    const h = await run(t, sub, '--help');
    assert.equal(h.code, 0);
    for (const flag of ['--data', '--dataset', '--split-by', '--json'])
      assert.ok(h.out.includes(flag), `${sub} help lacks ${flag}`);
    const cases: [string[], RegExp][] = [
      [['--dataset', 'referit'], /--data is required/],
      [['--data', tmp], /--dataset is required \(refcoco, .*referit/],
      [['--data', tmp, '--dataset', 'coco'], /--dataset 'coco' is not one of/],
      [['--data', tmp, '--dataset', 'referit', '--bogus'], /unknown option '--bogus'/],
    ];
    for (const [argv, re] of cases) {
      const r = await run(t, sub, ...argv);
      assert.equal(r.code, 2, `${sub} ${argv.join(' ')}`);
      assert.match(r.err, re);
      assert.match(r.err, new RegExp(`^refseg data ${sub}: `));
    }
  }
});

test('check: a generated synthetic dataset is clean (exit 0), with counts per split', async (t) => {
  const r = await run(t, 'check', '--data', synth, '--dataset', FLAVOR);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /synth-refcocog \(splitBy umd\) at .*: splits from refs\(umd\)\.json/);
  assert.match(r.out, /^train\s+(\d+)\s+\1\s+\d+\s+\d+\s+0$/m);
  assert.match(r.out, /OK: no problems found/);
  assert.match(r.err, /train: images \d+\/\d+ in /, 'progress lines on stderr');

  const j = await run(t, 'check', '--data', synth, '--dataset', FLAVOR, '--json', '--decode-images');
  assert.equal(j.code, 0);
  const report = JSON.parse(j.out);
  assert.equal(report.ok, true);
  assert.deepEqual(report.problems, []);
  const refs = JSON.parse(await readFile(join(synth, FLAVOR, 'refs(umd).json'), 'utf8')) as {
    split: string;
    sentences: unknown[];
  }[];
  const bySplit: Record<string, number> = {};
  for (const ref of refs) bySplit[ref.split] = (bySplit[ref.split] ?? 0) + ref.sentences.length;
  assert.deepEqual(Object.fromEntries(report.splits.map((s: any) => [s.split, s.expressions])), bySplit);
  assert.equal(
    report.splits.reduce((n: number, s: any) => n + s.images, 0),
    10,
  );
});

test('check: a broken synthetic dataset exits 1 and names every problem', async (t) => {
  const root = await copy(synth, 'broken-synth');
  const instFile = join(root, FLAVOR, 'instances.json');
  const refsFile = join(root, FLAVOR, 'refs(umd).json');
  const inst = JSON.parse(await readFile(instFile, 'utf8'));
  const refs = JSON.parse(await readFile(refsFile, 'utf8'));
  // 1. a missing image (the first ref's)
  const firstImage = inst.images.find((im: any) => im.id === refs[0].image_id);
  await unlink(join(root, 'images/synth', FLAVOR, firstImage.file_name));
  // 2. a mask that does not decode: RLE runs that do not cover the image
  const other = refs.find((ref: any) => ref.image_id !== refs[0].image_id);
  const ann = inst.annotations.find((a: any) => a.id === other.ann_id);
  ann.segmentation.counts = [5, 3];
  // 3. a ref pointing to an annotation that does not exist
  refs[refs.length - 1].ann_id = 999999;
  await writeFile(instFile, JSON.stringify(inst));
  await writeFile(refsFile, JSON.stringify(refs));

  const r = await run(t, 'check', '--data', root, '--dataset', FLAVOR);
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, new RegExp(`\\] .*${firstImage.file_name}: image is missing`));
  assert.match(r.out, new RegExp(`ann_id ${ann.id}: mask does not decode: .*`));
  assert.match(r.out, /refs\(umd\)\.json\[\d+\] ref_id \d+: ann_id 999999 is not in instances\.json/);
  assert.match(r.out, /^3 problems:/m);

  // A file name leaving the dataset root is a problem of its split, not a crash.
  inst.images[0].file_name = '../../../../etc/passwd';
  await writeFile(instFile, JSON.stringify(inst));
  const escape = await run(t, 'check', '--data', root, '--dataset', FLAVOR, '--json');
  assert.equal(escape.code, 1);
  const report = JSON.parse(escape.out);
  assert.equal(report.ok, false);
  assert.ok(
    report.problems.some((p: any) =>
      /cannot load: .*instances\.json: image \d+: path "\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd" leaves the dataset root/.test(
        p.problem,
      ),
    ),
    JSON.stringify(report.problems),
  );

  // Nothing to check at all.
  const none = await run(t, 'check', '--data', join(tmp, 'empty'), '--dataset', FLAVOR);
  assert.equal(none.code, 1);
  assert.match(none.out, /1 problem:\n .*no refs file for splitBy umd/);
});

test('check: the ReferIt fixture is clean; a missing image and an undecodable mask exit 1, named', async (t) => {
  const ok = await run(t, 'check', '--data', REFERIT, '--dataset', 'referit', '--decode-images');
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, /^test\s+3\s+3\s+2\s+1\s+0$/m);
  assert.match(ok.out, /^trainval\s+5\s+5\s+3\s+2\s+0$/m);

  const root = await copy(REFERIT, 'broken-referit');
  await unlink(join(root, 'referit/images/1002.jpg'));
  const mat = join(root, 'referit/mask/2040_3.mat');
  await writeFile(mat, (await readFile(mat)).subarray(0, 150));
  const r = await run(t, 'check', '--data', root, '--dataset', 'referit');
  assert.equal(r.code, 1);
  assert.match(r.out, /^2 problems:$/m);
  assert.match(
    r.out,
    /\[test\] referit_query_test\.json "2040_3": .*referit\/mask\/2040_3\.mat: offset 128: variable 0: miCOMPRESSED element of \d+ bytes, only 14 left/,
  );
  assert.match(r.out, /\[trainval\] .*referit\/images\/1002\.jpg: image is missing/);
  assert.match(r.out, /^test\s+3\s+2\s+1\s+1\s+1$/m);
  assert.match(r.out, /^trainval\s+5\s+3\s+2\s+1\s+2$/m);
  // A mask of another size than its image: found when the images are decoded.
  const sized = await copy(REFERIT, 'sized-referit');
  await cp(join(REFERIT, 'referit/mask/2040_3.mat'), join(sized, 'referit/mask/1001_2.mat'));
  assert.equal((await run(t, 'check', '--data', sized, '--dataset', 'referit')).code, 0);
  const d = await run(t, 'check', '--data', sized, '--dataset', 'referit', '--decode-images');
  assert.equal(d.code, 1);
  assert.match(
    d.out,
    /\[trainval\] .*1001\.jpg: decoded image is 24×16 but the mask of object 1001_2 is 16×16/,
  );

  const split = await run(t, 'check', '--data', root, '--dataset', 'referit', '--split-by', 'unc');
  assert.equal(split.code, 1);
  assert.match(split.out, /the ReferIt layout has no splitBy/);
});

test('stats on the ReferIt fixture: counts, histograms and target sizes as scipy sees the masks', async (t) => {
  const out = join(tmp, 'stats-referit');
  const r = await run(t, 'stats', '--data', REFERIT, '--dataset', 'referit', '--out', out);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^# referit$/m);
  assert.match(r.out, /^\| trainval \| 5 \| 3 \| 2 \| 0 \| /m);
  assert.deepEqual((await readdir(out)).sort(), [
    'areas.png',
    'lengths.png',
    'splits.png',
    'stats.json',
    'stats.md',
  ]);
  for (const png of ['areas.png', 'lengths.png', 'splits.png'])
    assert.deepEqual([...(await readFile(join(out, png))).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  const md = await readFile(join(out, 'stats.md'), 'utf8');
  assert.match(md, /!\[lengths\.png\]\(lengths\.png\)/);
  const stats = JSON.parse(await readFile(join(out, 'stats.json'), 'utf8'));

  const expected = JSON.parse(await readFile(join(REFERIT, 'expected.json'), 'utf8'));
  for (const split of ['trainval', 'test']) {
    const q = JSON.parse(await readFile(join(REFERIT, `referit_query_${split}.json`), 'utf8')) as Record<
      string,
      string[]
    >;
    const s = stats.splits.find((x: any) => x.split === split);
    const ratios: number[] = [];
    const words: number[] = [];
    for (const [key, sentences] of Object.entries(q)) {
      const m = expected.masks[key];
      const fg = m.rows
        .join('')
        .split('')
        .filter((c: string) => c === '1').length;
      for (const sentence of sentences) {
        ratios.push(fg / (m.height * m.width));
        words.push(sentence.split(/\s+/).length);
      }
    }
    assert.equal(s.expressions, ratios.length);
    assert.ok(Math.abs(s.meanAreaRatio - ratios.reduce((a, b) => a + b, 0) / ratios.length) < 1e-12);
    assert.equal(
      s.lengthHistogram.reduce((a: number, b: number) => a + b, 0),
      ratios.length,
    );
    assert.equal(
      s.areaHistogram.reduce((a: number, b: number) => a + b, 0),
      ratios.length,
    );
    for (const w of new Set(words)) assert.equal(s.lengthHistogram[w], words.filter((x) => x === w).length);
    assert.equal(s.words.max, Math.max(...words));
  }
  const json = await run(t, 'stats', '--data', REFERIT, '--dataset', 'referit', '--json');
  assert.deepEqual(JSON.parse(json.out), stats);
});

test('stats on a synthetic dataset: every expression counted once per split, skipped records counted', async (t) => {
  const r = await run(t, 'stats', '--data', synth, '--dataset', FLAVOR, '--json');
  assert.equal(r.code, 0, r.err);
  const stats = JSON.parse(r.out);
  const check = JSON.parse((await run(t, 'check', '--data', synth, '--dataset', FLAVOR, '--json')).out);
  assert.deepEqual(
    stats.splits.map((s: any) => [s.split, s.expressions, s.refs, s.images, s.skipped]),
    check.splits.map((s: any) => [s.split, s.expressions, s.refs, s.images, s.skipped]),
  );
  for (const s of stats.splits) {
    assert.equal(
      s.lengthBuckets.reduce((n: number, b: any) => n + b.count, 0),
      s.expressions,
    );
    assert.deepEqual(
      s.lengthBuckets.map((b: any) => b.label),
      ['1-5', '6-7', '8-10', '11-20'],
    );
    assert.equal(
      s.areaBuckets.reduce((n: number, b: any) => n + b.count, 0),
      s.expressions,
    );
    assert.ok(s.meanAreaRatio > 0 && s.meanAreaRatio < 1);
  }

  const root = await copy(synth, 'stats-broken');
  const instFile = join(root, FLAVOR, 'instances.json');
  const inst = JSON.parse(await readFile(instFile, 'utf8'));
  const refs = JSON.parse(await readFile(join(root, FLAVOR, 'refs(umd).json'), 'utf8'));
  inst.annotations.find((a: any) => a.id === refs[0].ann_id).segmentation.counts = [1, 2];
  await writeFile(instFile, JSON.stringify(inst));
  const b = JSON.parse((await run(t, 'stats', '--data', root, '--dataset', FLAVOR, '--json')).out);
  const split = b.splits.find((s: any) => s.split === refs[0].split);
  const before = stats.splits.find((s: any) => s.split === refs[0].split);
  assert.equal(split.skipped, refs[0].sentences.length);
  assert.equal(split.expressions, before.expressions - refs[0].sentences.length);
});
