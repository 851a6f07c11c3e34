// Writes the bundled example: examples/scene.png (one 320 px synthetic scene, spec/data.md §4) and
// examples/scene.json (its objects with their visible masks as COCO RLE, and referring expressions
// that are TRUE for the scene: each refers to exactly one object, checked by the generator).
//
//   npx tsc -p . && node dist/scripts/make-example.js [--out examples] [--seed 7]
//
// The scene comes from generateImage (the code path of `refseg data synth`), so a model trained on
// the synthetic benchmark has seen scenes like it. We walk the scenes of one seed until one has
// several objects with a same-shape or same-colour twin (the case where the words matter), then
// ask every grammar (appearance, location, relation) for sentences about every object.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { Rng } from '../src/data/random.js';
import { encodeRle } from '../src/data/rle.js';
import { type Grammar, referringSentences } from '../src/data/synth/expressions.js';
import { type Flavor, generateImage } from '../src/data/synth/generate.js';
import { renderScene, visibleMask } from '../src/data/synth/scene.js';

const SIZE = 320;
const FLAVOR: Flavor = 'synth-refcocog';
const GRAMMARS: readonly Grammar[] = ['appearance', 'location', 'relation'];
const PER_GRAMMAR = 2;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: 'examples' },
      seed: { type: 'string', default: '7' },
    },
  });
  const seed = Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new Error(`--seed must be a non-negative integer, got '${values.seed}'`);

  for (let index = 0; index < 1000; index++) {
    const { scene } = generateImage(FLAVOR, seed, index, SIZE, 'train');
    const objs = scene.objects;
    if (objs.length < 5) continue;
    const twins = objs.filter((o, i) =>
      objs.some((p, j) => j !== i && (p.shape === o.shape || p.color === o.color)),
    );
    if (twins.length < 2) continue;

    const rng = Rng.from('example', seed, index);
    const expressions: { text: string; object: number; kind: string }[] = [];
    const seen = new Set<string>();
    objs.forEach((_, k) => {
      for (const g of GRAMMARS) {
        for (const s of referringSentences(scene, k, g, PER_GRAMMAR, rng)) {
          if (seen.has(s.sentence)) continue;
          seen.add(s.sentence);
          expressions.push({ text: s.sentence, object: k, kind: s.expression.kind });
        }
      }
    });
    // Every object should be referable, so the demo can show each of them.
    if (new Set(expressions.map((e) => e.object)).size < objs.length) continue;

    const json = {
      description:
        'A synthetic scene (refseg src/data/synth) and referring expressions that are true for it.',
      image: 'scene.png',
      width: SIZE,
      height: SIZE,
      source: { generator: 'scripts/make-example.ts', flavor: FLAVOR, seed, index },
      objects: objs.map((o, k) => ({
        id: k,
        shape: o.shape,
        color: o.color,
        size: o.size,
        pattern: o.pattern,
        bbox: o.bbox,
        area: o.visibleArea,
        mask: encodeRle(visibleMask(scene, k)),
      })),
      expressions,
    };
    const rgb = renderScene(scene);
    await mkdir(values.out!, { recursive: true });
    const png = join(values.out!, 'scene.png');
    await sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), {
      raw: { width: SIZE, height: SIZE, channels: 3 },
    })
      .png({ compressionLevel: 9 })
      .toFile(png);
    const jsonPath = join(values.out!, 'scene.json');
    await writeFile(jsonPath, `${JSON.stringify(json, null, 2)}\n`);
    console.log(
      `wrote ${png} and ${jsonPath}: scene ${index} of ${FLAVOR} seed ${seed}, ${objs.length} objects, ${expressions.length} expressions`,
    );
    return;
  }
  throw new Error(`no suitable scene among the first 1000 of seed ${seed}`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exitCode = 1;
});
