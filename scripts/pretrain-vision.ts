// Experiment (session 9, docs/restr-tiny-experiments.md): pretrain ReSTR's vision encoder on the
// training images' instance categories before `refseg train --init`, as a COCO-pretrained backbone
// would be. Each patch predicts, for each SUB×SUB sub-cell, the share of its pixels that each
// category covers (BCE; a low-resolution semantic segmentation); the init checkpoint is written back
// with the trained vision.* tensors, everything else unchanged. Measured: the head start it gives
// ReSTR is gone by step 4,000 and is worth less time than the pretraining costs, so no shipped
// recipe uses it.
//
//   node dist/scripts/pretrain-vision.js INIT DATA DATASET OUT [--steps N] [--batch B] [--lr X]
//     [--threads T] [--sub SUB]
//   (INIT from `refseg init --config ... --data DATA --dataset DATASET`; then
//    `refseg train --init OUT ...`)

import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { DatasetName } from '../src/data/datasets.js';
import { decodeImage, letterbox, letterboxMask } from '../src/data/image.js';
import { Rng } from '../src/data/random.js';
import { decodeSegmentation, loadRefer, type Segmentation } from '../src/data/refer.js';
import { Graph } from '../src/graph/graph.js';
import { loadModelCheckpoint, saveModelCheckpoint } from '../src/models/checkpoint.js';
import { type RestrConfig } from '../src/models/restr/config.js';
import { visionEncoder } from '../src/models/restr/model.js';
import { initParams } from '../src/nn/init.js';
import { bceWithLogits, linear } from '../src/nn/layers.js';
import { Scope } from '../src/nn/params.js';
import { StepRunner } from '../src/train/runner.js';
import { learningRate } from '../src/train/schedule.js';
import { buildTrainStep, TORCH_ADAMW_DEFAULTS } from '../src/train/step.js';
import { Progress } from '../src/util/progress.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    steps: { type: 'string' },
    batch: { type: 'string' },
    lr: { type: 'string' },
    threads: { type: 'string' },
    sub: { type: 'string' },
  },
});
const [initPath, root, dataset, outPath] = positionals;
if (!initPath || !root || !dataset || !outPath) {
  console.error(
    'usage: node dist/scripts/pretrain-vision.js INIT DATA DATASET OUT [--steps N] [--batch B] [--lr X] [--threads T] [--sub SUB]',
  );
  process.exit(2);
}
const steps = Number(values.steps ?? 2000);
const B = Number(values.batch ?? 32);
const baseLr = Number(values.lr ?? 1e-3);
const SUB = Number(values.sub ?? 4); // sub-cells per patch side

const ck = loadModelCheckpoint(initPath);
const c = ck.config as RestrConfig;
const S = c.imageSize;
const P = c.patchSize;
const G = S / P;
const N = G * G;

// Training images (those with a train ref) and all their instances.
const train = await loadRefer({ root, dataset: dataset as DatasetName, split: 'train' });
const fileOf = new Map(train.samples.map((s) => [s.imageId, s.file]));
const trainIds = new Set(fileOf.keys());
const inst = JSON.parse(await readFile(join(dirname(train.refsFile), 'instances.json'), 'utf8')) as {
  images: { id: number; height: number; width: number }[];
  annotations: { image_id: number; category_id: number; segmentation: Segmentation }[];
  categories: { id: number }[];
};
const catIndex = new Map(inst.categories.map((k, i) => [k.id, i]));
const C = catIndex.size;
const byImage = new Map<number, { category_id: number; segmentation: Segmentation }[]>();
for (const a of inst.annotations) {
  if (!trainIds.has(a.image_id)) continue;
  const list = byImage.get(a.image_id) ?? [];
  list.push(a);
  byImage.set(a.image_id, list);
}
const images = inst.images.filter((im) => trainIds.has(im.id));
console.error(`${images.length} training images, ${C} categories, ${inst.annotations.length} instances`);

const OUT = SUB * SUB * C; // per patch: sub-cell × category shares
async function makeBatch(idx: number[]): Promise<{ image: Float32Array; target: Float32Array }> {
  const image = new Float32Array(B * 3 * S * S);
  const target = new Float32Array(B * N * OUT);
  const cell = P / SUB;
  await Promise.all(
    idx.map(async (k, b) => {
      const im = images[k]!;
      const file = fileOf.get(im.id)!;
      const dec = await decodeImage(await readFile(file), { source: file });
      image.set(letterbox(dec, S).tensor, b * 3 * S * S);
      for (const a of byImage.get(im.id) ?? []) {
        const m = letterboxMask(decodeSegmentation(a.segmentation, im.height, im.width), S);
        const ci = catIndex.get(a.category_id)!;
        for (let y = 0; y < S; y++)
          for (let x = 0; x < S; x++) {
            if (!m[y * S + x]) continue;
            const patch = Math.floor(y / P) * G + Math.floor(x / P);
            const sc = Math.floor((y % P) / cell) * SUB + Math.floor((x % P) / cell);
            target[(b * N + patch) * OUT + sc * C + ci]! += 1 / (cell * cell);
          }
      }
    }),
  );
  return { image, target };
}

const g = new Graph();
const s = Scope.root(g);
const imageIn = g.input('image', 'float32', [B, 3, S, S]);
const targetIn = g.input('target', 'float32', [B, N, OUT]);
const zv = visionEncoder(s.sub('vision', 'vision'), c, imageIn, undefined);
const logits = linear(s.sub('pretrain_head'), zv, c.vision.dim, OUT);
const loss = bceWithLogits(logits, targetIn);
const step = buildTrainStep({
  registry: s.registry,
  loss,
  adamw: { ...TORCH_ADAMW_DEFAULTS, weightDecay: 5e-4, clipNorm: 1 },
});
const rng = Rng.from('pretrain', 0);
const headInit = initParams(
  step.params.filter((p) => !p.name.startsWith('vision.')),
  () => rng.next(),
);
const values0 = new Map<string, Float32Array>();
for (const p of step.params) values0.set(p.name, ck.params.get(p.name) ?? headInit.get(p.name)!);
const runner = await StepRunner.create(step, values0, { threads: Number(values.threads ?? 2) });

const order = (epoch: number) => Rng.from('pretrain-order', epoch).shuffle(images.map((_, i) => i));
let ord = order(0);
let pos = 0;
let epoch = 0;
const bar = new Progress('pretrain', steps, { unit: 'steps' });
let avg = 0;
for (let t = 0; t < steps; t++) {
  if (pos + B > ord.length) {
    ord = order(++epoch);
    pos = 0;
  }
  const batch = await makeBatch(ord.slice(pos, pos + B));
  pos += B;
  const lr = learningRate(
    { kind: 'poly', baseLr, totalSteps: steps, warmupSteps: Math.round(0.03 * steps), power: 0.9 },
    t,
  );
  const r = await runner.step(
    {
      image: { dtype: 'float32', shape: [B, 3, S, S], data: batch.image },
      target: { dtype: 'float32', shape: [B, N, OUT], data: batch.target },
    },
    lr,
  );
  avg = t === 0 ? r.loss : 0.98 * avg + 0.02 * r.loss;
  bar.setStatus(`loss ${avg.toFixed(4)} lr ${lr.toExponential(2)}`);
  bar.tick();
  if ((t + 1) % 250 === 0) console.error(JSON.stringify({ step: t + 1, loss: avg }));
}
bar.finish();
const trained = runner.state().params;
const out = new Map(ck.params);
for (const [k, v] of trained) if (k.startsWith('vision.')) out.set(k, Float32Array.from(v));
await saveModelCheckpoint(outPath, ck.def, ck.config, out, { vocab: ck.vocab });
console.error(`wrote ${outPath}`);
await runner.dispose();
