// Renders docs/images/synth-samples.png: a grid of synthetic benchmark scenes (spec/data.md §4),
// one referring expression under each, its target outlined and everything else dimmed, so a
// reader sees at a glance what the three flavors ask of a model.
//
//   npx tsc -p . && node dist/scripts/synth-samples.js [--out docs/images/synth-samples.png] [--seed 7]
//
// Scenes come from generateImage (the same code path as `refseg data synth`), preferring refs
// whose target has a same-shape or same-colour distractor: those show why the words matter.

import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { generateImage, type Flavor } from '../src/data/synth/generate.js';
import { renderScene } from '../src/data/synth/scene.js';

const TILE = 224;
const CAPTION = 70;
const GAP = 10;
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

/** Greedy word wrap to lines of at most `width` characters. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const w of text.split(' ')) {
    if (line && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines;
}

const escapeXml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: 'docs/images/synth-samples.png' },
      seed: { type: 'string', default: '7' },
    },
  });
  const samples = pickSamples(Number(values.seed));
  const rows = Math.ceil(samples.length / COLUMNS);
  const width = COLUMNS * TILE + (COLUMNS + 1) * GAP;
  const height = rows * (TILE + CAPTION) + (rows + 1) * GAP;
  const text: string[] = [];
  const tiles = samples.map((s, k) => {
    const left = GAP + (k % COLUMNS) * (TILE + GAP);
    const top = GAP + Math.floor(k / COLUMNS) * (TILE + CAPTION + GAP);
    text.push(`<text x="${left}" y="${top + TILE + 14}" class="flavor">${escapeXml(s.flavor)}</text>`);
    wrap(`“${s.text}”`, 29)
      .slice(0, 3)
      .forEach((line, j) => {
        text.push(`<text x="${left}" y="${top + TILE + 30 + 15 * j}" class="sent">${escapeXml(line)}</text>`);
      });
    return {
      input: Buffer.from(s.rgb.buffer),
      raw: { width: TILE, height: TILE, channels: 3 as const },
      left,
      top,
    };
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
<style>
  .flavor { font: bold 11px 'DejaVu Sans'; fill: #777; }
  .sent { font: 13px 'DejaVu Sans'; fill: #111; }
</style>
${text.join('\n')}
</svg>`;
  await mkdir(dirname(values.out!), { recursive: true });
  await sharp({ create: { width, height, channels: 3, background: { r: 255, g: 255, b: 255 } } })
    .composite([...tiles, { input: Buffer.from(svg), left: 0, top: 0 }])
    .png({ compressionLevel: 9, palette: true, quality: 90 })
    .toFile(values.out!);
  console.log(`wrote ${values.out} (${width}×${height}, ${samples.length} samples)`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exitCode = 1;
});
