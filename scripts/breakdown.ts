// Where a checkpoint fails on the synthetic benchmark: pointing (the most probable pixel on the
// target) and oIoU at the model's threshold, overall and by what the expression names (colour, size,
// pattern: the generator's own words, src/data/synth/language.ts), by location word and by target
// area; and the oIoU of the expressions whose pointing hits (mask quality apart from grounding).
// Then, over every object of the image (the generator's `synth` attributes), which object each predicted mask covers most: the
// target, none, or another object (of the target's shape or not, and whether the expression names
// a shape), and for masks on another shape although the sentence names the target's, which shape
// pairs; for masks on another object of the target's shape although the sentence names a size,
// which size classes (target → covered). Prints Markdown tables.
//
//   node dist/scripts/breakdown.js CKPT DATA DATASET [SPLIT] [--limit N] [--threads N]

import { decodeSegmentation, type ReferObject, sampleMask } from '../src/data/refer.js';
import { lexicon } from '../src/data/synth/language.js';
import { textEncoderFromCheckpoint } from '../src/data/text.js';
import { tokenizeWords } from '../src/data/tokenizer.js';
import { evaluate } from '../src/eval/evaluate.js';
import { pointingHit } from '../src/eval/metrics.js';
import { Predictor } from '../src/infer/predictor.js';
import { evalScript } from './eval-args.js';

interface Tally {
  n: number;
  hit: number;
  I: number;
  U: number;
  hitI: number;
  hitU: number;
}

const { ckpt, ck, dataset, split, set, samples, session } = await evalScript('breakdown', {
  withObjects: true,
});
const threshold = ck.def.threshold(ck.config);
const lex = lexicon();
const groups = new Map<string, Tally>();
const add = (key: string, hit: boolean, I: number, U: number) => {
  const g = groups.get(key) ?? { n: 0, hit: 0, I: 0, U: 0, hitI: 0, hitU: 0 };
  g.n++;
  g.I += I;
  g.U += U;
  if (hit) [g.hit, g.hitI, g.hitU] = [g.hit + 1, g.hitI + I, g.hitU + U];
  groups.set(key, g);
};

const covers = new Map<string, number>();
const confusions = new Map<string, number>(); // "target's shape → covered object's shape", shape named
const sizeConfusions = new Map<string, number>(); // "target's size → covered object's size", size named
let masksOf: { imageId: number; masks: Uint8Array[] } | null = null; // samples come grouped by image

/** The target object of an expression, from instances.json. */
const targetOf = (s: (typeof samples)[number]) =>
  set.objects?.get(s.imageId)?.find((o) => o.annId === s.annId);

/** A generator attribute of an object (`synth.shape`, `synth.size`). */
const synthOf = (o: ReferObject | undefined, key: 'shape' | 'size') =>
  (o?.extra?.synth as Record<string, string> | undefined)?.[key];

/** The object the predicted mask overlaps most, as a verdict on the expression's grounding. */
function coverage(s: (typeof samples)[number], pred: Uint8Array, words: string[]): string {
  const objects = set.objects?.get(s.imageId) ?? [];
  if (masksOf?.imageId !== s.imageId)
    masksOf = {
      imageId: s.imageId,
      masks: objects.map((o) => decodeSegmentation(o.segmentation, s.height, s.width).data),
    };
  let best = -1;
  let most = 0;
  masksOf.masks.forEach((m, i) => {
    let n = 0;
    for (let p = 0; p < m.length; p++) n += m[p]! & pred[p]!;
    if (n > most) [most, best] = [n, i];
  });
  if (best < 0) return 'no object';
  const picked = objects[best]!;
  if (picked.annId === s.annId) return 'the target';
  const target = targetOf(s);
  const [mine, theirs] = [synthOf(target, 'shape'), synthOf(picked, 'shape')];
  if (mine === undefined || theirs === undefined) return 'another object';
  if (mine === theirs) {
    if (words.some((w) => lex.size.has(w))) {
      const pair = `${synthOf(target, 'size') ?? '?'} → ${synthOf(picked, 'size') ?? '?'}`;
      sizeConfusions.set(pair, (sizeConfusions.get(pair) ?? 0) + 1);
    }
    return "another object of the target's shape";
  }
  if (!words.some((w) => lex.shape.has(w)))
    return 'another object of another shape (the expression names no shape)';
  const pair = `${mine} → ${theirs}`;
  confusions.set(pair, (confusions.get(pair) ?? 0) + 1);
  return 'another object of another shape, though the expression names the shape';
}

// evaluate() scores exactly as `refseg eval` does; each expression is then filed under its groups
const predictor = await Predictor.create(ck.def, ck.config, ck.params, session);
await evaluate({
  predictor,
  encoder: textEncoderFromCheckpoint(ck.vocab, ck.def.maxTokens(ck.config), ckpt),
  samples,
  dataset,
  split,
  threshold,
  progress: true,
  onPrediction: (s, probability, pred, { intersection: I, union: U }) => {
    const gt = sampleMask(s).data;
    const hit = pointingHit(probability, gt) === true;
    let area = 0;
    for (const v of gt) area += v;
    const words = tokenizeWords(s.sentence);
    const named = (['color', 'size', 'pattern'] as const).filter((k) => words.some((w) => lex[k].has(w)));
    const loc = (Object.keys(lex.loc) as (keyof typeof lex.loc)[]).find((l) =>
      words.some((w) => lex.loc[l].has(w)),
    );
    const frac = area / gt.length;
    const c = coverage(s, pred, words);
    covers.set(c, (covers.get(c) ?? 0) + 1);
    add('all', hit, I, U);
    add(
      named.length === 0
        ? 'names no colour, size or pattern'
        : `names ${named.length} of colour, size, pattern`,
      hit,
      I,
      U,
    );
    for (const k of named) add(`names a ${k === 'color' ? 'colour' : k} word`, hit, I, U);
    if (named.includes('size')) {
      add(`names a size word: the target is ${synthOf(targetOf(s), 'size') ?? '?'}`, hit, I, U);
    }
    add(`location word: ${loc ?? 'none'}`, hit, I, U);
    add(
      `target ${frac < 0.02 ? '< 2%' : frac < 0.04 ? '2-4%' : frac < 0.08 ? '4-8%' : '≥ 8%'} of the image`,
      hit,
      I,
      U,
    );
  },
});
await predictor.dispose();

const pct = (a: number, b: number) => (b ? ((100 * a) / b).toFixed(1) : '–');
console.log(`${ckpt} on ${dataset} ${split} (${samples.length} expressions, threshold ${threshold})\n`);
console.log('| expressions | n | pointing | oIoU | oIoU where pointing hits |\n|---|---|---|---|---|');
for (const [k, g] of [...groups].sort((a, b) =>
  a[0] === 'all' ? -1 : b[0] === 'all' ? 1 : a[0].localeCompare(b[0]),
))
  console.log(`| ${k} | ${g.n} | ${pct(g.hit, g.n)}% | ${pct(g.I, g.U)} | ${pct(g.hitI, g.hitU)} |`);
console.log('\n| what the predicted mask covers most | n | share |\n|---|---|---|');
for (const [k, n] of [...covers].sort((a, b) => b[1] - a[1]))
  console.log(`| ${k} | ${n} | ${pct(n, samples.length)}% |`);
console.log('\n| shape named → shape covered (most frequent) | n |\n|---|---|');
for (const [k, n] of [...confusions].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`| ${k} | ${n} |`);
console.log(
  "\n| size named, mask on another object of the target's shape: target's size → covered size | n |\n|---|---|",
);
for (const [k, n] of [...sizeConfusions].sort((a, b) => b[1] - a[1])) console.log(`| ${k} | ${n} |`);
