// What a checkpoint's masks look like at a given IoU: a gallery of predictions on a refer-layout
// split, each tile the image with the predicted mask filled (magenta) and the target's outline
// (green), its IoU and expression under it. The expressions are those whose IoU lies in [LO, HI)
// (HI = 1 included), spread evenly over the split's order, so a reader sees what kind of error a
// number hides.
//
//   node dist/scripts/error-gallery.js CKPT DATA DATASET [SPLIT] --out PNG [--iou LO,HI] [--count N]
//     [--columns N] [--tile PX] [--threads N]
//
// Scores exactly as `refseg eval` does (evaluate(), the model's threshold, the original resolution).

import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import type { DatasetName } from '../src/data/datasets.js';
import { decodeImage } from '../src/data/image.js';
import { loadRefer, sampleMask, type ReferSample } from '../src/data/refer.js';
import { textEncoderFromCheckpoint } from '../src/data/text.js';
import { evaluate, type EvaluateOptions } from '../src/eval/evaluate.js';
import { maskOutline, overlayMask, type Color } from '../src/infer/draw.js';
import { Predictor } from '../src/infer/predictor.js';
import { loadModelCheckpoint } from '../src/models/checkpoint.js';
import { writeGallery, type GalleryTile } from './gallery.js';

const TARGET_COLOR: Color = [40, 230, 60];

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    out: { type: 'string' },
    iou: { type: 'string', default: '0,1' },
    count: { type: 'string', default: '12' },
    columns: { type: 'string', default: '4' },
    tile: { type: 'string', default: '256' },
    threads: { type: 'string' },
  },
});
const [ckpt, root, dataset, split = 'val'] = positionals;
const [lo, hi] = values.iou!.split(',').map(Number);
const [count, columns, tile] = [values.count, values.columns, values.tile].map(Number);
if (!ckpt || !root || !dataset || !values.out) {
  console.error(
    'usage: node dist/scripts/error-gallery.js CKPT DATA DATASET [SPLIT] --out PNG [--iou LO,HI] [--count N] [--columns N] [--tile PX] [--threads N]',
  );
  process.exit(2);
}
if (!(lo! >= 0 && hi! > lo! && hi! <= 1))
  throw new Error(`--iou ${values.iou}: expected LO,HI with 0 ≤ LO < HI ≤ 1`);
for (const [name, v] of [
  ['count', count],
  ['columns', columns],
  ['tile', tile],
] as const)
  if (!Number.isInteger(v) || v! < 1) throw new Error(`--${name} must be a positive integer`);

const ck = loadModelCheckpoint(ckpt);
const set = await loadRefer({ root, dataset: dataset as DatasetName, split });
const predictor = await Predictor.create(
  ck.def,
  ck.config,
  ck.params,
  values.threads ? { threads: Number(values.threads) } : {},
);
const encoder = textEncoderFromCheckpoint(ck.vocab, ck.def.maxTokens(ck.config), ckpt);
const run = (samples: readonly ReferSample[], label: string, onPrediction: EvaluateOptions['onPrediction']) =>
  evaluate({
    predictor,
    encoder,
    samples,
    dataset: dataset as DatasetName,
    split,
    threshold: ck.def.threshold(ck.config),
    progress: { label },
    onPrediction,
  });

// Pass 1: which expressions fall in the range; pass 2 predicts again for the chosen few only, so
// no mask is held for the whole split.
const inRange: ReferSample[] = [];
await run(set.samples, `IoU of ${split}`, (s, _p, _m, r) => {
  if (r.iou >= lo! && (r.iou < hi! || hi === 1)) inRange.push(s);
});
if (inRange.length === 0)
  throw new Error(`no expression of ${dataset} ${split} has an IoU in [${lo}, ${hi})`);
const n = Math.min(count!, inRange.length);
const chosen = Array.from({ length: n }, (_, k) => inRange[Math.floor((k * inRange.length) / n)]!);
const tiles = new Map<ReferSample, GalleryTile>();
await run(chosen, 'drawing', async (s, _p, pred, r) => {
  const image = await decodeImage(await readFile(s.file), { source: s.file });
  image.data.forEach((v, i) => (image.data[i] = v >> 1)); // dimmed, so the fill shows on any colour
  const predicted = overlayMask(
    image,
    { width: s.width, height: s.height, data: pred },
    { alpha: 0.7, outline: 0 },
  );
  const edge = maskOutline(sampleMask(s), Math.max(1, Math.round(Math.min(s.width, s.height) / 128)));
  for (let i = 0; i < edge.length; i++) if (edge[i]) predicted.data.set(TARGET_COLOR, 3 * i);
  const rgb = await sharp(predicted.data, { raw: { width: s.width, height: s.height, channels: 3 } })
    .resize(tile!, tile!, { fit: 'contain', kernel: 'nearest', background: { r: 0, g: 0, b: 0 } })
    .removeAlpha()
    .raw()
    .toBuffer();
  tiles.set(s, { rgb, header: `IoU ${r.iou.toFixed(2)}`, caption: s.sentence });
});
await predictor.dispose();

const [width, height] = await writeGallery(
  chosen.map((s) => tiles.get(s)!),
  { out: values.out, size: tile!, columns: columns! },
);
console.log(
  `wrote ${values.out} (${width}×${height}): ${n} of the ${inRange.length} expressions of ${dataset} ${split} ` +
    `with IoU in [${lo}, ${hi}); fill: the prediction, green outline: the target`,
);
