// Where a checkpoint fails on the synthetic benchmark: pointing (the most probable pixel on the
// target) and oIoU at the model's threshold, overall and by what the expression names (colour, size,
// pattern: the generator's own words, src/data/synth/language.ts), by location word and by target
// area; and the oIoU of the expressions whose pointing hits (mask quality apart from grounding).
// Prints a Markdown table.
//
//   node dist/scripts/breakdown.js CKPT DATA DATASET [SPLIT] [--limit N] [--threads N]

import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { DatasetName } from '../src/data/datasets.js';
import { loadRefer, sampleMask } from '../src/data/refer.js';
import { lexicon } from '../src/data/synth/language.js';
import { tokenizeWords } from '../src/data/tokenizer.js';
import { loadSegmenter } from '../src/infer/segmenter.js';

interface Tally {
  n: number;
  hit: number;
  I: number;
  U: number;
  hitI: number;
  hitU: number;
}

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { limit: { type: 'string' }, threads: { type: 'string' } },
});
const [ckpt, root, dataset, split = 'val'] = positionals;
if (!ckpt || !root || !dataset) {
  console.error('usage: node dist/scripts/breakdown.js CKPT DATA DATASET [SPLIT] [--limit N] [--threads N]');
  process.exit(2);
}
const seg = await loadSegmenter(ckpt, values.threads ? { threads: Number(values.threads) } : {});
const set = await loadRefer({ root, dataset: dataset as DatasetName, split });
const samples = values.limit ? set.samples.slice(0, Number(values.limit)) : set.samples;
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

for (const s of samples) {
  const r = await seg.segment(await readFile(s.file), s.sentence);
  const gt = sampleMask(s).data;
  const p = r.probability;
  let best = 0;
  for (let i = 1; i < p.length; i++) if (p[i]! > p[best]!) best = i;
  let [I, U, area] = [0, 0, 0];
  for (let i = 0; i < p.length; i++) {
    const [a, b] = [r.mask.data[i] === 1, gt[i] === 1];
    area += b ? 1 : 0;
    I += a && b ? 1 : 0;
    U += a || b ? 1 : 0;
  }
  const hit = gt[best] === 1;
  const words = tokenizeWords(s.sentence);
  const named = (['color', 'size', 'pattern'] as const).filter((k) => words.some((w) => lex[k].has(w)));
  const loc = (Object.keys(lex.loc) as (keyof typeof lex.loc)[]).find((l) =>
    words.some((w) => lex.loc[l].has(w)),
  );
  const frac = area / p.length;
  add('all', hit, I, U);
  add(
    named.length === 0
      ? 'names no colour, size or pattern'
      : `names ${named.length} of colour, size, pattern`,
    hit,
    I,
    U,
  );
  add(`location word: ${loc ?? 'none'}`, hit, I, U);
  add(
    `target ${frac < 0.02 ? '< 2%' : frac < 0.04 ? '2-4%' : frac < 0.08 ? '4-8%' : '≥ 8%'} of the image`,
    hit,
    I,
    U,
  );
}

const pct = (a: number, b: number) => (b ? ((100 * a) / b).toFixed(1) : '–');
console.log(`${ckpt} on ${dataset} ${split} (${samples.length} expressions, threshold ${seg.threshold})\n`);
console.log('| expressions | n | pointing | oIoU | oIoU where pointing hits |\n|---|---|---|---|---|');
for (const [k, g] of [...groups].sort((a, b) =>
  a[0] === 'all' ? -1 : b[0] === 'all' ? 1 : a[0].localeCompare(b[0]),
))
  console.log(`| ${k} | ${g.n} | ${pct(g.hit, g.n)}% | ${pct(g.I, g.U)} | ${pct(g.hitI, g.hitU)} |`);
