// What would averaging over a mirror image at test time give? For each expression that names no
// horizontal direction (data/batching.ts HORIZONTAL_WORDS: the same rule that keeps such
// expressions from being flipped in training), the mask logits of the letterboxed image and of its
// mirror (flipped back) are averaged; the rest keep their plain logits. Both are scored exactly as
// `refseg eval` scores (evaluate(): original resolution, the model's threshold). The letterbox is
// centred, so mirroring the letterboxed tensor mirrors the image up to one pixel of padding (none
// for square images such as synth-refcoco's). Costs one more inference per flipped expression.
//
//   node dist/scripts/flip-tta.js CKPT DATA DATASET [SPLIT] [--limit N] [--threads N]

import { hasHorizontalWord } from '../src/data/batching.js';
import { flipHorizontal } from '../src/data/image.js';
import { textEncoderFromCheckpoint } from '../src/data/text.js';
import { type EvalPredictor, evaluate, evaluationGroups } from '../src/eval/evaluate.js';
import { Predictor } from '../src/infer/predictor.js';
import { evalScript } from './eval-args.js';

const { ckpt, ck, dataset, split, samples, session } = await evalScript('flip-tta');
const predictor = await Predictor.create(ck.def, ck.config, ck.params, session);
const S = predictor.imageSize;
const encoder = textEncoderFromCheckpoint(ck.vocab, predictor.maxTokens, ckpt);
const threshold = ck.def.threshold(ck.config);

/** Each S×S plane of `planes` (planes after one another) mirrored left↔right. */
const mirror = (planes: Float32Array) =>
  flipHorizontal({ width: S, height: planes.length / S, data: planes }, 1).data;

// evaluate() runs the samples grouped by image, batch by batch: `order[cursor + k]` is row k.
const order = evaluationGroups(samples).flat();
let cursor = 0;
let flipped = 0;
const flip: EvalPredictor = {
  def: ck.def,
  config: ck.config,
  imageSize: S,
  maxTokens: predictor.maxTokens,
  async predict(images: Float32Array, tokens: BigInt64Array, n: number) {
    const plain = await predictor.predict(images, tokens, n);
    const back = mirror((await predictor.predict(mirror(images), tokens, n)).maskLogits);
    const out = plain.maskLogits.slice();
    for (let k = 0; k < n; k++) {
      if (hasHorizontalWord(order[cursor + k]!.sentence)) continue;
      flipped++;
      for (let i = k * S * S; i < (k + 1) * S * S; i++) out[i] = (out[i]! + back[i]!) / 2;
    }
    cursor += n;
    return { maskLogits: out, extra: plain.extra };
  },
};

const pc = (x: number) => (100 * x).toFixed(2);
const rows: string[] = [];
for (const [name, p] of [
  ['plain', predictor],
  ['flip', flip],
] as const) {
  const m = (
    await evaluate({
      predictor: p,
      encoder,
      samples,
      dataset,
      split,
      threshold,
      progress: { label: name },
    })
  ).summary();
  rows.push(
    `| ${name} | ${pc(m.oIoU)} | ${pc(m.mIoU)} | ${pc(m.precision['0.5']!)} | ${pc(m.precision['0.7']!)} | ${m.pointing === null ? '–' : `${pc(m.pointing)}%`} |`,
  );
}
await predictor.dispose();
console.log(`${ckpt} on ${dataset} ${split} (${samples.length} expressions, threshold ${threshold})`);
console.log(
  `${flipped} expressions averaged with their mirror image; the others name a horizontal direction\n`,
);
console.log('| test time | oIoU | mIoU | P@0.5 | P@0.7 | pointing |\n|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
