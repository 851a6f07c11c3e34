// Library example: segment the bundled example scene (examples/scene.png) with every expression
// that is true for it (examples/scene.json), encoding the image ONCE, and print a summary with the
// IoU of each mask against the object the expression refers to.
//
//   npx tsc -p . && node dist/examples/segment.js [model.safetensors]
//
// Without an argument it uses the built-in model (models/default.safetensors). In your own code,
// import from 'refseg' instead of '../src/index.js'.

import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { type CompressedRle, decodeRle, examplePaths, loadSegmenter } from '../src/index.js';

interface ExampleJson {
  objects: { id: number; shape: string; color: string; mask: CompressedRle }[];
  expressions: { text: string; object: number; kind: string }[];
}

function iou(a: Uint8Array, b: Uint8Array): number {
  let inter = 0;
  let union = 0;
  for (let i = 0; i < a.length; i++) {
    inter += a[i]! & b[i]!;
    union += a[i]! | b[i]!;
  }
  return union === 0 ? 1 : inter / union;
}

export async function main(
  argv: string[] = process.argv.slice(2),
  print: (line: string) => void = console.log,
): Promise<void> {
  const seg = await loadSegmenter(argv[0]); // undefined → the built-in model
  try {
    const paths = examplePaths();
    const example = JSON.parse(await readFile(paths.expressions, 'utf8')) as ExampleJson;
    const image = await seg.encodeImage(await readFile(paths.image));
    const t = image.timings;
    print(
      `scene.png ${image.width}×${image.height}: decoded in ${t.decode.toFixed(1)} ms, letterboxed to ` +
        `${seg.imageSize}×${seg.imageSize} in ${t.preprocess.toFixed(1)} ms, encoded in ${t.imageEncoder.toFixed(1)} ms (once)`,
    );
    let sum = 0;
    for (const e of example.expressions) {
      const r = await seg.segment(image, e.text); // reuses the encoded image
      const truth = decodeRle(example.objects[e.object]!.mask).data;
      const score = iou(r.mask.data, truth);
      sum += score;
      print(
        `${JSON.stringify(e.text).padEnd(60)} IoU ${score.toFixed(3)}  area ${String(r.area).padStart(6)} px  ` +
          `score ${r.score.toFixed(3)}  ${r.timings.total.toFixed(1)} ms`,
      );
    }
    print(
      `mean IoU ${(sum / example.expressions.length).toFixed(3)} over ${example.expressions.length} expressions`,
    );
  } finally {
    await seg.dispose();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exitCode = 1;
  });
}
