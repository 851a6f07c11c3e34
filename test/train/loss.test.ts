// The Dice term: `diceLoss` against hand-computed values, and `refseg train --mask-dice W` adding
// W·Dice to ReSTR's own loss (linear in W, nothing else changed), refused for Shared-RIS whose
// loss has the term already.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSynthDataset } from '../../src/data/synth/generate.js';
import { Graph } from '../../src/graph/graph.js';
import { diceLoss } from '../../src/nn/layers.js';
import { type TrainOptions, train } from '../../src/train/train.js';
import { testTrainOptions, trainLog } from '../helpers/cli.js';
import { evaluate, f64 } from '../helpers/gradcheck.js';

test('diceLoss: per sample 1 − (2Σpy + 1)/(Σp + Σy + 1) over all but the batch axis, then the mean', async () => {
  const g = new Graph('dice');
  const z = g.input('z', 'float64', [2, 1, 1, 2]);
  const y = g.input('y', 'float64', [2, 1, 1, 2]);
  const [out] = await evaluate(g, [diceLoss(z, y)], {
    // sample 0: p = [0.5, 0.5], y = [1, 0] → 1 − (1 + 1)/(1 + 1 + 1) = 1/3
    // sample 1: p ≈ [1, 0],   y = [1, 0] → 1 − (2 + 1)/(1 + 1 + 1) = 0
    z: f64([2, 1, 1, 2], [0, 0, 40, -40]),
    y: f64([2, 1, 1, 2], [1, 0, 1, 0]),
  });
  assert.deepEqual(out!.shape, []);
  assert.ok(Math.abs(Number(out!.data[0]) - 1 / 6) < 1e-12, `dice ${out!.data[0]}`);
});

const root = mkdtempSync(join(tmpdir(), 'refseg-loss-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

test('train --mask-dice W adds W·Dice to the loss; refused for Shared-RIS', async () => {
  const data = join(root, 'data');
  await writeSynthDataset({ flavor: 'synth-refcoco', out: data, images: 8, size: 64, seed: 2 });
  const run = async (maskDice: number, extra: Partial<TrainOptions> = {}) => {
    const out = join(root, `w${maskDice}`);
    await train(
      testTrainOptions({
        config: 'restr-tiny',
        sets: ['imageSize=64', 'vision.depth=1', 'language.depth=1', 'fusion.depth=2'],
        data,
        out,
        steps: 1,
        maskDice,
        ...extra,
      }),
    );
    return trainLog(out)[0]!.loss;
  };
  const [l0, l1, l2] = [await run(0), await run(1), await run(2)];
  const dice = l1 - l0; // the same start and batch: the difference is the Dice term alone
  assert.ok(dice > 0.05 && dice < 1, `Dice term ${dice} (a loss in (0, 1), far from 0 at init)`);
  assert.ok(Math.abs(l2 - l0 - 2 * dice) < 1e-5, `W = 2 adds ${l2 - l0}, twice ${dice}`);

  await assert.rejects(
    run(1, { config: 'shared-ris-tiny', sets: [] }),
    /--mask-dice: shared-ris's loss has its Dice term already \(config loss\.dice\)/,
  );
});
