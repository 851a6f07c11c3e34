// Renders docs/images/synth-samples.png: a grid of synthetic benchmark scenes (spec/data.md §4),
// one referring expression under each, its target outlined and everything else dimmed, so a
// reader sees at a glance what the three flavors ask of a model.
//
//   npx tsc -p . && node dist/scripts/synth-samples.js [--out docs/images/synth-samples.png] [--seed 7]
//
// Scenes come from generateImage (the same code path as `refseg data synth`), preferring refs
// whose target has a same-shape or same-colour distractor: those show why the words matter.

import { parseArgs } from 'node:util';
import { generateImage, type Flavor } from '../src/data/synth/generate.js';
import { renderScene } from '../src/data/synth/scene.js';
import { writeGallery } from './gallery.js';

const TILE = 224;
const COLUMNS = 4;
const PICKS: Flavor[] = [
  'synth-refcoco',
  'synth-refcoco',
  'synth-refcoco',
  'synth-refcoco+',
  'synth-refcoco+',
  'synth-refcocog',
  'synth-refcocog',
  'synth-refcocog',
];

interface Sample {
  flavor: Flavor;
  rgb: Uint8Array;
  text: string;
}

/** Dim everything but the target and outline it in white, 2 px, outside its visible mask. */
function highlight(rgb: Uint8Array, labels: Uint8Array, size: number, label: number): Uint8Array {
  const out = new Uint8Array(rgb.length);
  const inside = (x: number, y: number): boolean =>
    x >= 0 && y >= 0 && x < size && y < size && labels[y * size + x] === label;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = y * size + x;
      let near = false;
      if (!inside(x, y))
        for (let d = 1; d <= 2 && !near; d++)
          near = inside(x - d, y) || inside(x + d, y) || inside(x, y - d) || inside(x, y + d);
      for (let c = 0; c < 3; c++) {
        const v = rgb[3 * i + c]!;
        out[3 * i + c] = inside(x, y) ? v : near ? 255 : Math.round(v * 0.4);
      }
    }
  }
  return out;
}

function pickSamples(seed: number): Sample[] {
  const used = new Map<Flavor, number>();
  return PICKS.map((flavor) => {
    // Walk the flavor's scenes until one has a ref with a distractor (usually the first).
    for (let index = used.get(flavor) ?? 0; ; index++) {
      const img = generateImage(flavor, seed, index, TILE, 'train');
      const objs = img.scene.objects;
      const ref = img.refs.find((r) =>
        objs.some(
          (o, j) =>
            j !== r.object && (o.shape === objs[r.object]!.shape || o.color === objs[r.object]!.color),
        ),
      );
      if (!ref) continue;
      used.set(flavor, index + 1);
      const rgb = highlight(renderScene(img.scene), img.scene.labels, TILE, ref.object + 1);
      return { flavor, rgb, text: ref.sentences[0]!.sent };
    }
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: 'docs/images/synth-samples.png' },
      seed: { type: 'string', default: '7' },
    },
  });
  const samples = pickSamples(Number(values.seed));
  const [width, height] = await writeGallery(
    samples.map((s) => ({ rgb: s.rgb, header: s.flavor, caption: s.text })),
    { out: values.out!, size: TILE, columns: COLUMNS },
  );
  console.log(`wrote ${values.out} (${width}×${height}, ${samples.length} samples)`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exitCode = 1;
});
