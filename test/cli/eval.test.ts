// `refseg eval` (src/cli/eval.ts) on a tiny synthetic dataset and a tiny jittered model: the report
// files and stdout agree; shards 0/3, 1/3, 2/3 merged give the unsharded report byte for byte;
// saved masks are the predictions (their IoU against the ground truth, recomputed here, is the one
// in predictions.jsonl and in the report); --blank-text really hides the sentence; --subset keeps
// exactly the refs the generator marked; mistakes name the flag or the file.

import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli.js';
import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { commands } from '../../src/cli/commands.js';
import { evalCommand, shardSamples } from '../../src/cli/eval.js';
import { loadRefer, sampleMask } from '../../src/data/refer.js';
import { makeEvalFixture, type EvalFixture } from './eval-fixture.js';

let dir: string;
let fx: EvalFixture;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'refseg-cli-eval-'));
  fx = await makeEvalFixture(dir);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `refseg eval ...argv` in-process, console and stderr captured. */
const run = (t: TestContext, ...argv: string[]) => runCli(t, evalCommand, argv);

const common = (): string[] => [
  '--checkpoint',
  fx.checkpoint,
  '--data',
  fx.root,
  '--dataset',
  'synth-refcoco',
];

interface Report {
  count: number;
  split: string;
  threshold: number;
  resolution: string;
  notes: string[];
  oIoU: number;
  byLength: { count: number }[];
  byArea: { count: number }[];
  expressions: { refId: number; sentId: number; iou: number }[];
}

async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(file, 'utf8')) as T;
}

/** The val refs as written by the generator (read here, not through the loader). */
async function valRefs(): Promise<
  { ref_id: number; sentences: unknown[]; synth: { sameShapeDistractors: number } }[]
> {
  const refs = await readJson<{ split: string }[]>(join(fx.root, 'synth-refcoco', 'refs(unc).json'));
  return refs.filter((r) => r.split === 'val') as never;
}

test('report: Markdown and JSON next to --out, the table on stdout, breakdowns cover every expression', async (t) => {
  const base = join(dir, 'full');
  const r = await run(t, ...common(), '--out', base, '--batch', '3');
  assert.equal(r.code, 0, r.err);
  const md = await readFile(`${base}.md`, 'utf8');
  assert.equal(r.out, md, 'stdout is the Markdown report');
  assert.match(md, /threshold: probability ≥ 0\.5/);
  assert.match(md, /\| all \| \d+ \|/);
  const report = await readJson<Report>(`${base}.json`);
  const expected = (await valRefs()).reduce((a, ref) => a + ref.sentences.length, 0);
  assert.equal(report.count, expected);
  assert.equal(report.split, 'val');
  assert.equal(report.resolution, 'original');
  assert.equal(
    report.byLength.reduce((a, b) => a + b.count, 0),
    expected,
  );
  assert.equal(
    report.byArea.reduce((a, b) => a + b.count, 0),
    expected,
  );
  assert.equal(report.expressions.length, expected);
  assert.ok(report.oIoU > 0, 'a non-trivial prediction, so the equality tests below mean something');

  const j = await run(t, ...common(), '--out', join(dir, 'full-json'), '--batch', '3', '--json');
  assert.equal(j.code, 0, j.err);
  assert.deepEqual(JSON.parse(j.out), report, '--json prints the JSON report, identical numbers');
});

test('shards 0/3, 1/3, 2/3 partition the split and merge into the unsharded report exactly', async (t) => {
  const full = join(dir, 'ref');
  assert.equal((await run(t, ...common(), '--out', full)).code, 0);
  const base = join(dir, 'sharded');
  const files: string[] = [];
  const keys: string[][] = [];
  for (let i = 0; i < 3; i++) {
    const r = await run(t, ...common(), '--out', base, '--shard', `${i}/3`, '--json');
    assert.equal(r.code, 0, r.err);
    const file = `${base}.shard-${i}-of-3.json`;
    files.push(file);
    const state = await readJson<{ records: number[][] }>(file);
    keys.push(state.records.map(([ref, sent]) => `${ref}/${sent}`));
    assert.ok(
      /partial result/.test((JSON.parse(r.out) as Report).notes.join()),
      'a shard says it is partial',
    );
  }
  const all = keys.flat();
  const report = await readJson<Report>(`${full}.json`);
  assert.equal(new Set(all).size, all.length, 'no expression in two shards');
  assert.equal(all.length, report.count, 'every expression in some shard');
  for (const k of keys) assert.ok(Math.abs(k.length - report.count / 3) < 1, 'shards are even');

  // Given in any order; BASE defaults to the shard name without .shard-i-of-n.json.
  const m = await run(t, 'merge', files[2]!, files[0]!, files[1]!);
  assert.equal(m.code, 0, m.err);
  assert.equal(await readFile(`${base}.json`, 'utf8'), await readFile(`${full}.json`, 'utf8'));
  assert.equal(await readFile(`${base}.md`, 'utf8'), await readFile(`${full}.md`, 'utf8'));

  const missing = await run(t, 'merge', files[0]!, files[1]!);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /shard 2\/3 missing/);
  const twice = await run(t, 'merge', files[0]!, files[0]!, files[1]!, '--out', join(dir, 'x'));
  assert.match(twice.err, /both shard 0\/3/);
  // A shard of another evaluation (other threshold) is refused, naming what differs.
  const other = join(dir, 'other');
  assert.equal((await run(t, ...common(), '--out', other, '--shard', '2/3', '--threshold', '0.4')).code, 0);
  const mixed = await run(t, 'merge', files[0]!, files[1]!, `${other}.shard-2-of-3.json`);
  assert.equal(mixed.code, 1);
  assert.match(
    mixed.err,
    /other\.shard-2-of-3\.json and .* are not shards of the same evaluation \(threshold 0\.4 vs 0\.5\)/,
  );
  const notShard = await run(t, 'merge', `${full}.json`, '--out', join(dir, 'y'));
  assert.equal(notShard.code, 1);
  assert.match(notShard.err, /ref\.json: not a shard state/);
});

test('--save-predictions: one decodable PNG per expression at the image size, IoUs as in the report', async (t) => {
  const preds = join(dir, 'preds');
  const base = join(dir, 'withpreds');
  const r = await run(t, ...common(), '--out', base, '--save-predictions', preds);
  assert.equal(r.code, 0, r.err);
  const report = await readJson<Report>(`${base}.json`);
  const lines = (await readFile(join(preds, 'predictions.jsonl'), 'utf8'))
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as { ref_id: number; sent_id: number; sentence: string; iou: number });
  assert.deepEqual(
    lines.map((l) => ({ refId: l.ref_id, sentId: l.sent_id, iou: l.iou })),
    report.expressions,
  );
  const pngs = (await readdir(preds)).filter((f) => f.endsWith('.png'));
  assert.equal(pngs.length, report.count);

  const data = await loadRefer({ root: fx.root, dataset: 'synth-refcoco', split: 'val' });
  for (const s of data.samples) {
    const line = lines.find((l) => l.ref_id === s.refId && l.sent_id === s.sentId)!;
    assert.equal(line.sentence, s.sentence);
    const file = join(preds, `${s.refId}_${s.sentId}.png`);
    const meta = await sharp(file).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ['png', s.width, s.height, 1]);
    const px = await sharp(file).extractChannel(0).raw().toBuffer();
    assert.equal(px.length, s.width * s.height);
    // The saved mask scored against the ground truth here gives the recorded IoU.
    const gt = sampleMask(s).data;
    let i = 0;
    let u = 0;
    for (let k = 0; k < px.length; k++) {
      assert.ok(px[k] === 0 || px[k] === 255, 'a binary mask');
      const p = px[k] === 255;
      if (p && gt[k]) i++;
      if (p || gt[k]) u++;
    }
    assert.equal(u === 0 ? 1 : i / u, line.iou, `IoU of ${s.refId}_${s.sentId}.png`);
  }
});

/** PNG bytes per image id: the set of distinct masks predicted for that image's expressions. */
async function masksPerImage(preds: string): Promise<Map<number, Set<string>>> {
  const data = await loadRefer({ root: fx.root, dataset: 'synth-refcoco', split: 'val' });
  const out = new Map<number, Set<string>>();
  for (const s of data.samples) {
    const png = await readFile(join(preds, `${s.refId}_${s.sentId}.png`));
    if (!out.has(s.imageId)) out.set(s.imageId, new Set());
    out.get(s.imageId)!.add(png.toString('base64'));
  }
  return out;
}

test('--blank-text: the model sees no sentence, so every expression of an image gets the same mask', async (t) => {
  const withText = await masksPerImage(join(dir, 'preds')); // written by the previous test
  assert.ok(
    [...withText.values()].some((m) => m.size > 1),
    'with text, the masks of an image differ',
  );
  const preds = join(dir, 'preds-blank');
  const r = await run(t, ...common(), '--blank-text', '--save-predictions', preds, '--json');
  assert.equal(r.code, 0, r.err);
  for (const [image, masks] of await masksPerImage(preds)) assert.equal(masks.size, 1, `image ${image}`);
  const report = JSON.parse(r.out) as Report;
  assert.match(report.notes.join(), /text-blind control/);
  // Default report location: next to the checkpoint, named after the setting.
  assert.deepEqual(
    JSON.parse(await readFile(join(dir, 'model.eval.synth-refcoco.val.blank-text.json'), 'utf8')),
    report,
  );
});

test('--subset same-shape keeps exactly the refs with a same-shape distractor', async (t) => {
  const r = await run(t, ...common(), '--subset', 'same-shape', '--json', '--out', join(dir, 'subset'));
  assert.equal(r.code, 0, r.err);
  const report = JSON.parse(r.out) as Report;
  const refs = await valRefs();
  const want = refs.filter((x) => x.synth.sameShapeDistractors >= 1);
  assert.ok(want.length < refs.length || want.length > 0);
  assert.equal(
    report.count,
    want.reduce((a, x) => a + x.sentences.length, 0),
  );
  assert.deepEqual(
    [...new Set(report.expressions.map((e) => e.refId))].sort((a, b) => a - b),
    want.map((x) => x.ref_id).sort((a, b) => a - b),
  );
  assert.match(report.notes.join(), /subset same-shape/);

  // Refs without the generator's metadata (a real dataset): a clear error naming the flag.
  const plain = join(dir, 'plain');
  await cp(fx.root, plain, { recursive: true });
  const refsFile = join(plain, 'synth-refcoco', 'refs(unc).json');
  const stripped = (await readJson<Record<string, unknown>[]>(refsFile)).map(
    ({ synth: _s, ...rest }) => rest,
  );
  await writeFile(refsFile, JSON.stringify(stripped));
  const e = await run(
    t,
    '--checkpoint',
    fx.checkpoint,
    '--data',
    plain,
    '--dataset',
    'synth-refcoco',
    '--subset',
    'same-shape',
  );
  assert.equal(e.code, 1);
  assert.match(
    e.err,
    /--subset same-shape needs .*refs\(unc\)\.json ref_id \d+ has no synth\.sameShapeDistractors/,
  );
});

test('usage mistakes exit 2 naming the flag; failures exit 1 naming the file', async (t) => {
  const usage: [string[], RegExp][] = [
    [[], /--checkpoint is required/],
    [['--checkpoint', fx.checkpoint], /--data is required/],
    [['--checkpoint', fx.checkpoint, '--data', fx.root], /--dataset is required/],
    [['--checkpoint', 'c', '--data', 'd', '--dataset', 'coco'], /--dataset 'coco' is not one of/],
    [[...common(), '--threshold', '1.5'], /--threshold must be a number in \[0, 1\], got '1\.5'/],
    [[...common(), '--batch', '0'], /--batch must be an integer ≥ 1/],
    [[...common(), '--shard', '3/3'], /--shard 3\/3: need n ≥ 1 and 0 ≤ i < n/],
    [[...common(), '--shard', 'half'], /--shard must be i\/n/],
    [[...common(), '--subset', 'round'], /--subset 'round' is not one of same-shape, same-color/],
    [[...common(), '--thresold', '0.3'], /--thresold/],
    [['merge'], /merge needs the shard files/],
  ];
  for (const [argv, re] of usage) {
    const r = await run(t, ...argv);
    assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
    assert.match(r.err, re);
  }
  const failures: [string[], RegExp][] = [
    [
      ['--checkpoint', join(dir, 'nope.safetensors'), '--data', fx.root, '--dataset', 'synth-refcoco'],
      /nope\.safetensors/,
    ],
    [
      ['--checkpoint', fx.noVocab, '--data', fx.root, '--dataset', 'synth-refcoco'],
      /novocab\.safetensors: the checkpoint carries no vocabulary/,
    ],
    [
      ['--checkpoint', fx.checkpoint, '--data', join(dir, 'nodata'), '--dataset', 'synth-refcoco'],
      /nodata.*instances\.json: not found/,
    ],
    [[...common(), '--split', 'tset'], /no refs in split "tset"/],
    [['merge', join(dir, 'absent.shard-0-of-1.json')], /absent\.shard-0-of-1\.json/],
  ];
  for (const [argv, re] of failures) {
    const r = await run(t, ...argv);
    assert.equal(r.code, 1, `${argv.join(' ')}: ${r.err}`);
    assert.match(r.err, re);
  }
  const h = await run(t, '--help');
  assert.equal(h.code, 0);
  for (const flag of [
    '--checkpoint',
    '--data',
    '--dataset',
    '--split',
    '--split-by',
    '--threshold',
    '--batch',
    '--json',
    '--save-predictions',
    '--shard',
    '--out',
    '--blank-text',
    '--subset',
    'merge',
  ])
    assert.ok(h.out.includes(flag), `help lacks ${flag}`);
});

test('shard i/n is index ≡ i (mod n) after sorting by (ref_id, sent_id), whatever the input order', () => {
  const ids = [
    [3, 7],
    [1, 2],
    [2, 5],
    [1, 1],
    [3, 6],
    [2, 4],
    [1, 3],
  ].map(([refId, sentId]) => ({ refId: refId!, sentId: sentId! }));
  const key = (xs: { refId: number; sentId: number }[]) => xs.map((x) => `${x.refId}/${x.sentId}`);
  assert.deepEqual(key(shardSamples(ids, { index: 0, count: 3 })), ['1/1', '2/4', '3/7']);
  assert.deepEqual(key(shardSamples(ids, { index: 1, count: 3 })), ['1/2', '2/5']);
  assert.deepEqual(key(shardSamples([...ids].reverse(), { index: 2, count: 3 })), ['1/3', '3/6']);
  assert.equal(commands.eval, evalCommand, "'refseg eval' is registered");
});
