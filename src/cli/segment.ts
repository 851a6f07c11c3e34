// `refseg segment`: one image, one or more expressions → mask PNG(s) at the image's original size,
// optionally the mask drawn over the image and ReSTR's patch-probability heatmap. The image is
// decoded and encoded once for all expressions (design.md §3.8).
//
// Also home of the flag helpers `serve` and `demo` share (usage errors exit 2 naming the flag, as
// model-commands.ts does).

import { extname } from 'node:path';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { heatmapOverlay, overlayMask } from '../infer/draw.js';
import { maskPng, rgbPng } from '../infer/png.js';
import { type SegmentResult, defaultCheckpointPath, loadSegmenter } from '../infer/segmenter.js';
import { writeFileAtomic } from '../io/atomic.js';
import { UsageError, intFlag, numberFlag, runCommand } from './args.js';
import type { Command } from './commands.js';


/** `mask.png` → `mask-2.png` for the second of several expressions; unchanged when there is one. */
export function numberedPath(path: string, k: number, count: number): string {
  if (count <= 1) return path;
  const ext = extname(path);
  return `${path.slice(0, path.length - ext.length)}-${k + 1}${ext}`;
}

const HELP = `refseg segment [--checkpoint model.safetensors] --image FILE --text "..." [--text "..." ...]
               [--out mask.png] [--overlay overlay.png] [--heatmap patch.png]
               [--threshold t] [--threads N] [--json]

Segments the object each --text refers to in --image (JPEG, PNG, WebP, GIF or BMP; EXIF
orientation applied). The image is encoded once for all expressions.

  --checkpoint  model checkpoint (default: the built-in model, models/default.safetensors)
  --out         mask PNG at the image's original size (255 = object, 0 = background)
  --overlay     the image with the mask drawn over it (tinted fill and outline)
  --heatmap     ReSTR's patch probabilities (viridis, one square per patch) over the image
  --threshold   probability at or above which a pixel is in the mask (default: the model's, 0.5)
  --threads     ONNX Runtime threads (default: all cores)
  --json        print the results as JSON instead of text
With several --text, files get -1, -2, ... before the extension (mask-1.png, mask-2.png).`;

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

function summary(r: SegmentResult): object {
  const { width, height } = r.mask;
  const t = r.timings;
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    text: r.text,
    width,
    height,
    area: r.area,
    areaFraction: r.area / (width * height),
    score: r.score,
    threshold: r.threshold,
    timingsMs: Object.fromEntries(Object.entries(t).map(([k, v]) => [k, round(v)])),
  };
}

export const segmentCommand: Command = {
  summary: 'segment the object a sentence refers to in an image',
  run: (argv) =>
    runCommand(HELP, argv, async () => {
      const { values: o } = parseArgs({
        args: argv,
        options: {
          checkpoint: { type: 'string' },
          image: { type: 'string' },
          text: { type: 'string', multiple: true, default: [] },
          out: { type: 'string' },
          overlay: { type: 'string' },
          heatmap: { type: 'string' },
          threshold: { type: 'string' },
          threads: { type: 'string' },
          json: { type: 'boolean', default: false },
        },
        strict: true,
        allowPositionals: false,
      });
      if (!o.image) throw new UsageError('--image is required');
      const texts = o.text ?? [];
      if (texts.length === 0) throw new UsageError('--text is required (give it once per expression)');
      const empty = texts.findIndex((t) => t.trim() === '');
      if (empty >= 0) throw new UsageError(`--text number ${empty + 1} is empty`);
      const threshold = numberFlag('threshold', o.threshold, { min: 0, max: 1 });
      const threads = intFlag('threads', o.threads, { min: 1, max: 1024 });

      let bytes: Uint8Array;
      try {
        bytes = await readFile(o.image);
      } catch (e) {
        throw new Error(
          `cannot read --image ${o.image}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        );
      }
      const seg = await loadSegmenter(o.checkpoint ?? defaultCheckpointPath(), threads ? { threads } : {});
      try {
        if (o.heatmap && !seg.hasPatchProbability)
          throw new UsageError(
            `--heatmap needs a model with patch probabilities (ReSTR); this one is ${seg.kind}`,
          );
        const encoded = await seg.encodeImage(bytes, { source: o.image });
        const results: SegmentResult[] = [];
        const written: string[] = [];
        for (const [k, text] of texts.entries()) {
          const r = await seg.segment(encoded, text, threshold !== undefined ? { threshold } : {});
          results.push(r);
          const files: [string | undefined, () => Promise<Uint8Array>][] = [
            [o.out, () => maskPng(r.mask)],
            [o.overlay, () => rgbPng(overlayMask(encoded.rgb, r.mask))],
            [o.heatmap, () => rgbPng(heatmapOverlay(encoded.rgb, r.patchProbability!, r.letterbox))],
          ];
          for (const [path, make] of files) {
            if (!path) continue;
            const p = numberedPath(path, k, texts.length);
            await writeFileAtomic(p, await make());
            written.push(p);
          }
        }
        const enc = encoded.timings;
        if (o.json) {
          console.log(
            JSON.stringify(
              {
                image: o.image,
                width: encoded.width,
                height: encoded.height,
                model: seg.kind,
                encodeMs: { decode: enc.decode, preprocess: enc.preprocess, imageEncoder: enc.imageEncoder },
                results: results.map(summary),
                files: written,
              },
              null,
              2,
            ),
          );
        } else {
          console.log(
            `${o.image}: ${encoded.width}×${encoded.height}, ${seg.kind} ${seg.imageSize} px; image encoded once in ` +
              `${(enc.decode + enc.preprocess + enc.imageEncoder).toFixed(1)} ms`,
          );
          for (const r of results) {
            console.log(
              `  "${r.text}": ${r.area} px (${pct(r.area / (encoded.width * encoded.height))}), score ${r.score.toFixed(3)}, ` +
                `${r.timings.text.toFixed(1)} ms text + ${r.timings.postprocess.toFixed(1)} ms post`,
            );
          }
          for (const p of written) console.log(`wrote ${p}`);
        }
        return 0;
      } finally {
        await seg.dispose();
      }
    }),
};
