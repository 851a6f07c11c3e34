// Training resumes exactly (spec/reliability.md "Training state"): N steps, a stop, a resume and N
// more steps give the same losses and the same weights as 2N straight steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRefer } from '../../src/data/refer.js';
import { writeSynthDataset } from '../../src/data/synth/generate.js';
import { loadModelCheckpoint } from '../../src/models/checkpoint.js';
import { type TrainOptions, train } from '../../src/train/train.js';
import { spawnCli, testTrainOptions, trainLog as losses } from '../helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'refseg-resume-'));
test.before(() =>
  writeSynthDataset({ flavor: 'synth-refcoco', out: join(root, 'data'), images: 24, size: 64, seed: 1 }),
);
test.after(() => rmSync(root, { recursive: true, force: true }));

const SETS = ['imageSize=64', 'vision.depth=1', 'language.depth=1', 'fusion.depth=2'];

function options(out: string, extra: Partial<TrainOptions> = {}): TrainOptions {
  return testTrainOptions({
    config: 'restr-tiny',
    sets: SETS,
    data: join(root, 'data'),
    out,
    steps: 6,
    lr: 1e-3,
    warmup: 0.2,
    schedule: 'poly',
    clipNorm: 1,
    seed: 3,
    augment: true,
    ...extra,
  });
}

test('N steps + stop + resume + N steps equals 2N straight steps', async () => {
  const straight = join(root, 'straight');
  const split = join(root, 'split');
  await train(options(straight));
  await train(options(split, { stopAt: 3 }));
  assert.ok(existsSync(join(split, 'train-state.safetensors')));
  assert.equal(losses(split).length, 3, 'the interrupted run stopped after 3 steps');
  await train(options(split, { resume: true, config: '', steps: 0 }));

  const a = losses(straight);
  const b = losses(split);
  assert.equal(a.length, 6);
  assert.deepEqual(
    b.map((l) => [l.step, l.loss]),
    a.map((l) => [l.step, l.loss]),
    'same losses, bit for bit',
  );
  assert.ok(a[0]!.loss !== a[5]!.loss, 'the weights moved');
  const wa = loadModelCheckpoint(join(straight, 'last.safetensors')).params;
  const wb = loadModelCheckpoint(join(split, 'last.safetensors')).params;
  assert.deepEqual([...wb.keys()], [...wa.keys()]);
  for (const [k, v] of wa) assert.deepEqual(wb.get(k), v, `weights of ${k} differ`);
});

test('--val-data: validation reads the val split of another root, and a resumed run keeps it', async () => {
  const valRoot = join(root, 'valdata');
  await writeSynthDataset({ flavor: 'synth-refcoco', out: valRoot, images: 40, size: 64, seed: 7 });
  const count = async (r: string) =>
    (await loadRefer({ root: r, dataset: 'synth-refcoco', split: 'val' })).samples.length;
  const [own, other] = [await count(join(root, 'data')), await count(valRoot)];
  assert.notEqual(own, other, 'the two val splits must differ in size for this test to tell them apart');
  const out = join(root, 'valdata-run');
  const o = options(out, { steps: 4, evalEvery: 2, valData: valRoot });
  await train({ ...o, stopAt: 2 });
  await train({ ...o, resume: true, config: '', steps: 0, valData: undefined });
  const vals = readFileSync(join(out, 'log.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { step: number; val?: { count: number } })
    .filter((l) => l.val);
  assert.deepEqual(
    vals.map((l) => [l.step, l.val!.count]),
    [
      [2, other],
      [4, other],
    ],
  );
  await assert.rejects(
    train(options(join(root, 'bad-val'), { evalEvery: 1, valData: join(root, 'nowhere') })),
    /nowhere/,
  );
});

test('a missing split fails with an error naming it', async () => {
  await assert.rejects(train(options(join(root, 'bad'), { split: 'nosuchsplit' })), /nosuchsplit/);
});

test('--queries: one per training image joins the samples, and a resumed run is still exact', async (t) => {
  const images = new Set(
    (await loadRefer({ root: join(root, 'data'), dataset: 'synth-refcoco', split: 'train' })).samples.map(
      (s) => s.imageId,
    ),
  ).size;
  const log: string[] = [];
  t.mock.method(process.stderr, 'write', (s: string | Uint8Array) => (log.push(String(s)), true));
  const queries = ['category', 'synth.color'];
  const straight = join(root, 'queries-straight');
  const split = join(root, 'queries-split');
  await train(options(straight, { queries, quiet: false }));
  t.mock.restoreAll();
  assert.match(log.join(''), new RegExp(`training expressions \\(train\\) and ${images} queries`));
  await train(options(split, { queries, stopAt: 3 }));
  await train(options(split, { queries, resume: true, config: '', steps: 0 }));
  assert.deepEqual(
    losses(split).map((l) => [l.step, l.loss]),
    losses(straight).map((l) => [l.step, l.loss]),
  );
  await assert.rejects(
    train(options(join(root, 'queries-bad'), { queries: ['synth.colour'] })),
    /annotation \d+: no string field 'synth.colour' \(--queries names fields every object has\)/,
  );
});

test('N steps + SIGKILL + resume + N steps equals 2N straight steps (two workers, as the recipe)', async (t) => {
  // `refseg train` as a child process, killed (no chance to clean up) once it is past its first
  // checkpoint (every 4 steps); `--resume` goes on from the last one, and its log holds each step once.
  const flags =
    '--steps 40 --batch 4 --per-image 2 --workers 2 --lr 1e-3 --warmup 0.2 --clip-norm 1 --seed 3 ' +
    '--eval-every 0 --checkpoint-every 4';
  const run = (out: string, extra: string[] = []) =>
    spawnCli(t, [
      ...['train', '--config', 'restr-tiny', ...SETS.flatMap((x) => ['--set', x])],
      ...['--data', join(root, 'data'), '--dataset', 'synth-refcoco', '--out', out],
      ...flags.split(' '),
      ...extra,
    ]);
  const straight = join(root, 'kill-straight');
  const killed = join(root, 'kill-split');
  const s = run(straight);
  assert.equal((await s.ended).code, 0, s.err);

  const k = run(killed);
  // complete lines only: the child may be halfway through writing one
  const logged = () =>
    existsSync(join(killed, 'log.jsonl'))
      ? readFileSync(join(killed, 'log.jsonl'), 'utf8').split('\n').length - 1
      : 0;
  while (logged() < 6 && k.child.exitCode === null) await new Promise((r) => setTimeout(r, 2));
  k.child.kill('SIGKILL');
  assert.equal((await k.ended).signal, 'SIGKILL', `the run ended before it was killed: ${k.err}`);
  const atKill = losses(killed).length;
  assert.ok(atKill < 40, 'killed before its last step');

  const r = run(killed, ['--resume']);
  assert.equal((await r.ended).code, 0, r.err);
  const from = Number(/resuming \S+ at step (\d+)\/40/.exec(r.err)?.[1]);
  assert.ok(
    from >= 4 && from % 4 === 0 && from <= atKill,
    `resumed at its last checkpoint (step ${from}, killed after ${atKill})`,
  );
  assert.deepEqual(
    losses(killed).map((l) => [l.step, l.loss]),
    losses(straight).map((l) => [l.step, l.loss]),
    'each step logged once, with the same loss',
  );
  const wa = loadModelCheckpoint(join(straight, 'last.safetensors')).params;
  const wb = loadModelCheckpoint(join(killed, 'last.safetensors')).params;
  for (const [name, v] of wa) assert.deepEqual(wb.get(name), v, `weights of ${name} differ`);
});
