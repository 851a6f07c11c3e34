// The ReferIt-layout loader (src/data/referit.ts, spec/data.md §2) over the fixture dataset that
// scripts/make-referit-fixtures.py writes with scipy: every split loads through loadRefer, every
// mask has exactly the pixels scipy.io.loadmat gives (segimg_t == 0), and broken datasets (a
// truncated or missing mask, a missing image, bad records) are refused or skipped with the file named.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRefer, readSampleImage, sampleMask, type ReferOptions } from '../../src/data/refer.js';
import { loadReferit, referitMask } from '../../src/data/referit.js';
import { readMat } from '../../src/io/mat.js';
import { FormatError } from '../../src/io/errors.js';

const ROOT = fileURLToPath(new URL('../../../test/fixtures/referit', import.meta.url));
const expected = JSON.parse(await readFile(join(ROOT, 'expected.json'), 'utf8')) as {
  masks: Record<string, { height: number; width: number; dtype: string; rows: string[] }>;
  splits: Record<string, { objects: number; sentences: number }>;
};
const queries = async (split: string): Promise<Record<string, string[]>> =>
  JSON.parse(await readFile(join(ROOT, `referit_query_${split}.json`), 'utf8'));

const opts = (root: string, o: Partial<ReferOptions> = {}): ReferOptions => ({
  root,
  dataset: 'referit',
  split: 'trainval',
  ...o,
});

let tmp = '';
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'refseg-referit-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A copy of the fixture dataset to break. */
async function copy(name: string): Promise<string> {
  const root = join(tmp, name);
  await cp(ROOT, root, { recursive: true });
  return root;
}

const rowsOf = (m: { height: number; width: number; data: Uint8Array }): string[] =>
  Array.from({ length: m.height }, (_, y) =>
    Array.from(m.data.subarray(y * m.width, (y + 1) * m.width)).join(''),
  );

test('every split loads; masks are pixel-identical to scipy.io.loadmat(...)["segimg_t"] == 0', async () => {
  for (const [split, want] of Object.entries(expected.splits)) {
    const ds = await loadRefer(opts(ROOT, { split }));
    assert.equal(ds.dataset, 'referit');
    assert.equal(ds.splitBy, '');
    assert.equal(ds.budget.count, 0);
    assert.deepEqual(ds.splits, { trainval: 5, test: 3 });
    assert.equal(ds.samples.length, want.sentences);
    assert.equal(new Set(ds.samples.map((s) => s.refId)).size, want.objects);
    const q = await queries(split);
    const keys = Object.keys(q);
    let sentId = 0;
    for (const s of ds.samples) {
      const key = s.extra!.referit as string;
      assert.equal(keys[s.refId], key);
      assert.equal(
        s.sentence,
        q[key]![s.sentId - keys.slice(0, s.refId).reduce((n, k) => n + q[k]!.length, 0)],
      );
      assert.equal(s.sentId, sentId++);
      assert.equal(s.imageId, Number(key.split('_')[0]));
      assert.equal(s.file, join(ROOT, 'referit/images', `${key.split('_')[0]}.jpg`));
      const e = expected.masks[key]!;
      const m = sampleMask(s);
      assert.deepEqual([m.height, m.width, s.height, s.width], [e.height, e.width, e.height, e.width]);
      assert.deepEqual(rowsOf(m), e.rows, `${key}: mask differs from scipy's`);
      assert.equal(s.split, split);
    }
  }
});

test('the masks of every storage form (compressed, uncompressed, big-endian, several variables)', async () => {
  const CLASS: Record<string, string> = { uint8: 'uint8', float64: 'double', int32: 'int32' };
  for (const [key, e] of Object.entries(expected.masks)) {
    const file = join(ROOT, 'referit/mask', `${key}.mat`);
    const bytes = await readFile(file);
    assert.deepEqual(rowsOf(referitMask(bytes, file)), e.rows, key);
    const seg = readMat(bytes).variables.get('segimg_t');
    assert.ok(seg?.kind === 'numeric');
    assert.equal(seg.className, CLASS[e.dtype], `${key} class`);
  }
  assert.equal(readMat(await readFile(join(ROOT, 'referit/mask/1002_1.mat'))).endian, 'big');
  assert.deepEqual(
    [...readMat(await readFile(join(ROOT, 'referit/mask/2040_1.mat'))).variables.keys()],
    ['info', 'segimg_t', 'version'],
  );
});

test('images decode to their masks size; a mask of another size is refused when the image is read', async () => {
  const ds = await loadRefer(opts(ROOT));
  for (const s of ds.samples) {
    const img = await readSampleImage(s);
    assert.deepEqual([img.width, img.height], [s.width, s.height]);
  }
  const wrong = { ...ds.samples[0]!, width: ds.samples[0]!.width + 1 };
  await assert.rejects(
    readSampleImage(wrong),
    /1001\.jpg: decoded image is 24×16 .* its annotation gives 25×16/,
  );
});

test('query files in <root>/referit/ are found too; a splitBy or an unknown split is refused', async () => {
  const root = await copy('nested');
  for (const split of ['trainval', 'test'])
    await rename(
      join(root, `referit_query_${split}.json`),
      join(root, 'referit', `referit_query_${split}.json`),
    );
  const ds = await loadRefer(opts(root, { split: 'test' }));
  assert.equal(ds.samples.length, 3);
  assert.equal(ds.refsFile, join(root, 'referit', 'referit_query_test.json'));
  await assert.rejects(
    loadRefer(opts(root, { splitBy: 'unc' })),
    /the ReferIt layout has no splitBy \(got 'unc'\)/,
  );
  await assert.rejects(
    loadRefer(opts(root, { split: 'val' })),
    /no referit_query_val\.json \(splits present: test, trainval\)/,
  );
  await assert.rejects(loadRefer(opts(join(tmp, 'nowhere'))), /no referit_query_<split>\.json in /);
});

test('a truncated mask: refused past the corrupt budget, else skipped and counted, naming the file', async () => {
  const root = await copy('truncated');
  const file = join(root, 'referit/mask/1001_2.mat');
  const bytes = await readFile(file);
  await writeFile(file, bytes.subarray(0, 300));
  await assert.rejects(loadRefer(opts(root)), (e: Error) => {
    assert.match(e.message, /1 of 5 samples are corrupt/);
    assert.match(
      e.message,
      /referit_query_trainval\.json "1001_2": .*1001_2\.mat: offset 128: variable 0: miMATRIX element of \d+ bytes, only \d+ left/,
    );
    return true;
  });
  const ds = await loadReferit(opts(root, { maxCorruptFraction: 0.5 }));
  assert.equal(ds.samples.length, 4);
  assert.equal(ds.budget.count, 1);
  assert.deepEqual(
    ds.samples.map((s) => s.sentId),
    [0, 1, 3, 4],
    'ids stay those of the file',
  );
});

test('a mask cut at every byte offset is refused with a FormatError', async () => {
  const file = join(ROOT, 'referit/mask/1001_1.mat');
  const bytes = await readFile(file);
  for (let n = 0; n < bytes.length; n++) {
    assert.throws(
      () => referitMask(bytes.subarray(0, n), file),
      (e: unknown) =>
        e instanceof FormatError && e.message.startsWith(file) && !/unexpected error/.test(e.message),
      `cut at ${n}`,
    );
  }
});

test('missing masks and images, bad records and non-mask .mat files: skipped with the reason, or refused', async () => {
  const root = await copy('broken');
  const q = await queries('trainval');
  q['../../etc/passwd_1'] = ['escape'];
  q['1001_9'] = ['no such mask'];
  q['1002_2'] = [];
  (q['1002_1'] as unknown[]).push(42);
  // A .mat without segimg_t.
  await cp(join(ROOT, 'formats/classes.mat'), join(root, 'referit/mask/1002_3.mat'));
  q['1002_3'] = ['not a mask'];
  await writeFile(join(root, 'referit_query_trainval.json'), JSON.stringify(q));
  const ds = await loadRefer(opts(root, { maxCorruptFraction: 1 }));
  const reasons = ds.budget.skipped.map((s) => `${s.where}: ${s.reason}`);
  assert.equal(reasons.length, 5, reasons.join('\n'));
  assert.match(reasons[0]!, /"1002_1" sentence 2: sentence must be a string/);
  assert.match(reasons[1]!, /"\.\.\/\.\.\/etc\/passwd_1": object name must be "<image>_<annotation>"/);
  assert.match(reasons[2]!, /"1001_9": mask .*referit\/mask\/1001_9\.mat is missing/);
  assert.match(reasons[3]!, /"1002_2": expected a non-empty list of sentences/);
  assert.match(reasons[4]!, /"1002_3": .*1002_3\.mat: no variable "segimg_t" \(variables: "d", "s", /);
  assert.equal(ds.samples.length, 5);

  const cube = new Uint8Array(await readFile(join(ROOT, 'formats/big_endian.mat')));
  assert.throws(() => referitMask(cube, 'x.mat'), /no variable "segimg_t"/);

  await unlink(join(root, 'referit/images/1002.jpg'));
  await assert.rejects(
    loadRefer(opts(root, { maxCorruptFraction: 1 })),
    /1 of 2 referenced images are missing:\n.*1002\.jpg/,
  );
  await writeFile(join(root, 'referit_query_test.json'), '[1, 2]');
  await assert.rejects(
    loadRefer(opts(root, { split: 'test' })),
    /referit_query_test\.json: expected an object mapping/,
  );
  await writeFile(join(root, 'referit_query_test.json'), '{');
  await assert.rejects(loadRefer(opts(root, { split: 'test' })), /referit_query_test\.json: invalid JSON/);
});
