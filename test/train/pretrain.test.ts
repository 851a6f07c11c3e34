// `refseg pretrain`: the category-share targets against hand-computed cases, the attribute
// classes beside the categories, the images of each step, and the command
// end to end: only vision.* changes, the rest of the checkpoint (vocabulary, config) is kept, the
// same seed gives the same weights, and bad input is refused naming what.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pretrainCommand } from '../../src/cli/pretrain.js';
import { writeSynthDataset } from '../../src/data/synth/generate.js';
import { loadModelCheckpoint } from '../../src/models/checkpoint.js';
import { modelCommands } from '../../src/cli/model-commands.js';
import type { ReferObject } from '../../src/data/refer.js';
import { attributeClasses, categoryShares, imageBatches, pretrainVision } from '../../src/train/pretrain.js';
import { runCli } from '../helpers/cli.js';

test('categoryShares: each cell gets the share of its pixels each category covers', () => {
  // 4×4 image, 2×2 patches, category 0 on three pixels of the top-left patch, category 1 at half
  // strength on the bottom-right pixel (a soft letterboxed edge)
  const a = new Float32Array(16);
  a[0] = a[1] = a[4] = 1;
  const b = new Float32Array(16);
  b[15] = 0.5;
  const objects = [
    { mask: a, classes: [0] },
    { mask: b, classes: [1] },
  ];
  // one cell per pixel: [patch][cell][category], patches and cells row-major
  const fine = categoryShares(objects, 4, 2, 2, 2);
  assert.equal(fine.length, 4 * 4 * 2);
  const at = (patch: number, cell: number, c: number) => fine[(patch * 4 + cell) * 2 + c];
  assert.deepEqual([at(0, 0, 0), at(0, 1, 0), at(0, 2, 0), at(0, 3, 0)], [1, 1, 1, 0]);
  assert.equal(at(3, 3, 1), 0.5);
  assert.equal(
    fine.reduce((s, v) => s + v, 0),
    3.5,
  );
  // one cell per patch: the patch's mean
  const coarse = categoryShares(objects, 4, 2, 1, 2);
  assert.deepEqual(Array.from(coarse), [0.75, 0, 0, 0, 0, 0, 0, 0.125]);
  // an object with several classes (a category and an attribute value) counts for each
  const both = categoryShares([{ mask: a, classes: [0, 2] }], 4, 2, 1, 3);
  assert.deepEqual(Array.from(both.subarray(0, 3)), [0.75, 0, 0.75]);
});

test('attributeClasses: each value of each field is a class after the categories, in sorted order', () => {
  const ob = (annId: number, synth: Record<string, unknown>): ReferObject => ({
    annId,
    categoryId: 1,
    segmentation: [],
    extra: { synth },
  });
  const objects = new Map([
    [1, [ob(1, { size: 'small', color: 'red' }), ob(2, { size: 'large', color: 'blue' })]],
    [2, [ob(3, { size: 'medium', color: 'red' })]],
  ]);
  const a = attributeClasses(objects, ['synth.size', 'synth.color'], 8);
  assert.deepEqual(a.values, [
    'synth.size=large',
    'synth.size=medium',
    'synth.size=small',
    'synth.color=blue',
    'synth.color=red',
  ]);
  assert.deepEqual(a.of(objects.get(1)![0]!), [10, 12]); // small, red
  assert.deepEqual(a.of(objects.get(2)![0]!), [9, 12]); // medium, red
  assert.deepEqual(attributeClasses(objects, [], 8).values, []);
  assert.throws(
    () => attributeClasses(objects, ['synth.pattern'], 8),
    /annotation 1: no string field 'synth.pattern'/,
  );
  objects.get(2)![0]!.extra = { synth: { size: 3, color: 'red' } };
  assert.throws(
    () => attributeClasses(objects, ['synth.size'], 8),
    /annotation 3: no string field 'synth.size'/,
  );
});

test('imageBatches: each epoch in its own order, batch by batch, its remainder left out', () => {
  const orders: number[][] = [
    [4, 0, 3, 1, 2],
    [2, 3, 0, 4, 1],
    [1, 2, 3, 4, 0],
  ];
  const asked: number[] = [];
  const it = imageBatches(5, 2, (epoch) => (asked.push(epoch), orders[epoch]!));
  const got = Array.from({ length: 6 }, () => it.next().value);
  assert.deepEqual(got, [
    [4, 0],
    [3, 1],
    [2, 3],
    [0, 4],
    [1, 2],
    [3, 4],
  ]);
  assert.deepEqual(asked, [0, 1, 2]); // each epoch's order drawn once, when its first batch is
  assert.deepEqual(imageBatches(4, 4, () => [3, 2, 1, 0]).next().value, [3, 2, 1, 0]);
});

const root = mkdtempSync(join(tmpdir(), 'refseg-pretrain-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

async function setup(t: TestContext): Promise<{ data: string; init: string }> {
  const data = join(root, 'data');
  const init = join(root, 'init.safetensors');
  await writeSynthDataset({ flavor: 'synth-refcoco', out: data, images: 8, size: 64, seed: 4, force: true });
  const made = await runCli(t, modelCommands.init!, [
    '--config',
    'restr-tiny',
    '--set',
    'imageSize=64',
    '--set',
    'vision.depth=1',
    '--data',
    data,
    '--dataset',
    'synth-refcoco',
    '--seed',
    '0',
    '--out',
    init,
  ]);
  assert.equal(made.code, 0, made.err);
  return { data, init };
}

const args = (init: string, data: string, out: string, ...extra: string[]) => [
  '--init',
  init,
  '--data',
  data,
  '--dataset',
  'synth-refcoco',
  '--out',
  out,
  '--steps',
  '3',
  '--batch',
  '2',
  '--threads',
  '1',
  '--quiet',
  ...extra,
];

test('CLI: pretrain changes every vision tensor and nothing else; the same seed gives the same weights', async (t) => {
  const { data, init } = await setup(t);
  const [outA, outB] = [join(root, 'a.safetensors'), join(root, 'b.safetensors')];
  const a = await runCli(t, pretrainCommand, args(init, data, outA));
  assert.equal(a.code, 0, a.err);
  assert.match(a.out, /pretrained the vision encoder on \d+ images, 8 categories: 3 steps/);
  assert.equal((await runCli(t, pretrainCommand, args(init, data, outB))).code, 0);

  const [before, after, again] = [init, outA, outB].map((p) => loadModelCheckpoint(p));
  assert.deepEqual(after!.config, before!.config);
  assert.deepEqual(after!.vocab, before!.vocab);
  assert.match(
    after!.metadata.pretrained ?? '',
    /vision on 8 categories of synth-refcoco train: 3 steps of 2 images/,
  );
  assert.deepEqual([...after!.params.keys()], [...before!.params.keys()]);
  for (const [name, v] of before!.params) {
    if (name.startsWith('vision.')) assert.notDeepEqual(after!.params.get(name), v, `${name} unchanged`);
    else assert.deepEqual(after!.params.get(name), v, `${name} changed`);
    assert.deepEqual(again!.params.get(name), after!.params.get(name), `${name} differs between equal runs`);
  }

  // with the generator's attributes as classes too: other targets, so other vision weights
  const outC = join(root, 'c.safetensors');
  const c = await runCli(
    t,
    pretrainCommand,
    args(init, data, outC, '--attributes', 'synth.size,synth.pattern'),
  );
  assert.equal(c.code, 0, c.err);
  assert.match(c.out, /8 categories and [1-6] attribute values: 3 steps/);
  const withAttributes = loadModelCheckpoint(outC);
  assert.match(
    withAttributes.metadata.pretrained ?? '',
    /vision on 8 categories and the values of synth.size, synth.pattern of synth-refcoco train/,
  );
  assert.notDeepEqual(
    withAttributes.params.get('vision.patch_embed.proj.weight'),
    after!.params.get('vision.patch_embed.proj.weight'),
  );
});

test('CLI: pretrain refuses cells that do not divide the patch, a non-ReSTR checkpoint and missing flags, writing nothing', async (t) => {
  const { data, init } = await setup(t);
  const out = join(root, 'bad.safetensors');
  await assert.rejects(
    runCli(t, pretrainCommand, args(init, data, out, '--cells', '3')),
    /--cells 3 must divide the patch size 16/,
  );
  await assert.rejects(
    runCli(t, pretrainCommand, [...args(init, data, out), '--batch', '1000']),
    /--batch 1000 is more than the \d+ images of split train/,
  );
  await assert.rejects(
    runCli(t, pretrainCommand, args(init, data, out, '--attributes', 'synth.colour')),
    /annotation \d+: no string field 'synth.colour'/,
  );

  const shared = join(root, 'shared.safetensors');
  const made = await runCli(t, modelCommands.init!, [
    '--config',
    'shared-ris-tiny',
    '--vocab-size',
    '50',
    '--seed',
    '0',
    '--out',
    shared,
  ]);
  assert.equal(made.code, 0, made.err);
  await assert.rejects(
    runCli(t, pretrainCommand, args(shared, data, out)),
    /a 'shared-ris' checkpoint; pretraining is for ReSTR's vision encoder/,
  );

  // an unreadable image fails the pretraining, named
  const broken = join(root, 'broken');
  cpSync(data, broken, { recursive: true });
  const dir = join(broken, 'images', 'synth', 'synth-refcoco');
  for (const f of readdirSync(dir)) writeFileSync(join(dir, f), Buffer.from('not a png'));
  await assert.rejects(
    runCli(t, pretrainCommand, args(init, broken, out)),
    /synth-refcoco[/\\]synth_\d+\.png/,
  );

  const empty = await runCli(t, pretrainCommand, args(init, data, out, '--attributes', 'synth.size,'));
  assert.equal(empty.code, 2);
  assert.match(empty.err, /--attributes must be a comma-separated list of names, got 'synth.size,'/);

  const missing = await runCli(t, pretrainCommand, args(init, data, out).slice(2)); // no --init
  assert.equal(missing.code, 2);
  assert.match(missing.err, /--init is required/);
  assert.equal(existsSync(out), false);
});

test('pretrain keeps the first epoch of images in memory within its budget, and the weights stay the same', async (t) => {
  const { data, init } = await setup(t);
  const run = async (name: string, ...extra: string[]) => {
    const out = join(root, `${name}.safetensors`);
    const r = await runCli(t, pretrainCommand, args(init, data, out, '--steps', '9', ...extra));
    assert.equal(r.code, 0, r.err);
    return { out: r.out, params: loadModelCheckpoint(out).params };
  };
  // 9 steps of 2 images: more than one epoch of the fixture's training images. An image's input
  // and class shares (float32): 3×64×64 values and 16 patches × 4×4 cells × 8 categories.
  const entry = 4 * (3 * 64 * 64 + 16 * (4 * 4 * 8));
  const all = await run('kept-all');
  const images = Number(/on (\d+) images/.exec(all.out)![1]);
  assert.ok(images < 18, `${images} images: the run must reach a second epoch`);
  const mib = ((images * entry) / 2 ** 20).toFixed(1);
  assert.match(all.out, new RegExp(`\\(${images} kept in memory, ${mib} MiB\\)`));
  const none = await run('kept-none', '--cache-mb', '0');
  assert.doesNotMatch(none.out, /kept in memory/);
  assert.deepEqual(none.params, all.params);

  // a budget for two images: those two are kept, the rest made again each epoch
  const partial = join(root, 'kept-two.safetensors');
  const r = await pretrainVision({
    init,
    data,
    dataset: 'synth-refcoco',
    out: partial,
    steps: 9,
    batch: 2,
    lr: 1e-3,
    warmup: 0.03,
    weightDecay: 5e-4,
    clipNorm: 1,
    cells: 4,
    seed: 0,
    threads: 1,
    cacheBytes: 2 * entry + entry - 1,
    quiet: true,
  });
  assert.deepEqual(r.kept, { images: 2, bytes: 2 * entry });
  assert.deepEqual(loadModelCheckpoint(partial).params, all.params);
});
