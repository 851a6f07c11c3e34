// `refseg pretrain`: flags → PretrainOptions → src/train/pretrain.ts.

import { parseArgs } from 'node:util';
import { DATASET_NAMES } from '../data/datasets.js';
import { pretrainVision } from '../train/pretrain.js';
import { datasetFlag, intFlag, listFlag, numberFlag, required, runCommand } from './args.js';
import type { Command } from './commands.js';

const HELP = `Usage: refseg pretrain --init CKPT --data DIR --dataset NAME --out CKPT [options]

Pretrains ReSTR's vision encoder on the instance categories of the training images (every object
instances.json lists for them, referred or not), as a COCO-pretrained backbone would come: each
patch predicts, for each of its cells, the share of pixels each category covers (BCE), through a
linear head that is then dropped. Writes --init's checkpoint again with the trained vision.*
tensors; its other tensors, config and vocabulary are unchanged. Then: refseg train --init OUT
(with --vision-lr-mult 0.1, as for any pretrained vision encoder).

  --init CKPT           a ReSTR checkpoint, e.g. from 'refseg init --config ... --data ... --dataset ...'
  --data DIR            dataset root (refer layout with instances.json)
  --dataset NAME        ${DATASET_NAMES.join(', ')}
  --split S             the split whose images are used (default train)
  --split-by S          refs file variant (default: the dataset's)
  --out CKPT            the checkpoint to write
  --steps N             optimizer steps (default 2500)
  --batch B             images per step (default 32)
  --lr X                base learning rate (default 1e-3)
  --warmup F            linear warm-up over this fraction of steps, then poly decay (default 0.03)
  --weight-decay X      AdamW decoupled weight decay (default 5e-4)
  --clip-norm X         clip the global gradient norm (default 1; 0 = off)
  --cells K             cells per patch side whose shares each patch predicts (default 4)
  --attributes F,...    also predict each value of these annotation fields as a class, e.g.
                        synth.size,synth.pattern (the built-in model's recipe; every object needs them)
  --seed N              seed of the head's init and the image order (default 0)
  --threads N           ONNX Runtime intra-op threads (default: all cores)
  --cache-mb N          MiB of memory for the images and targets of the first epoch, kept for the
                        later ones (default 4096, the built-in recipe's 16,000 images at 128 px, or a
                        quarter of the machine's memory if less); the rest are made again each epoch;
                        the weights are the same either way
  --quiet               no progress output`;

export const pretrainCommand: Command = {
  summary: "pretrain ReSTR's vision encoder on the training images' instance categories",
  run: (argv) =>
    runCommand(HELP, argv, async () => {
      const { values: v } = parseArgs({
        args: argv,
        options: {
          init: { type: 'string' },
          data: { type: 'string' },
          dataset: { type: 'string' },
          split: { type: 'string' },
          'split-by': { type: 'string' },
          out: { type: 'string' },
          steps: { type: 'string' },
          batch: { type: 'string' },
          lr: { type: 'string' },
          warmup: { type: 'string' },
          'weight-decay': { type: 'string' },
          'clip-norm': { type: 'string' },
          cells: { type: 'string' },
          attributes: { type: 'string' },
          seed: { type: 'string' },
          threads: { type: 'string' },
          'cache-mb': { type: 'string' },
          quiet: { type: 'boolean' },
        },
        strict: true,
        allowPositionals: false,
      });
      const dataset = datasetFlag(v.dataset);
      const clip = numberFlag('clip-norm', v['clip-norm'] ?? '1', { min: 0 })!;
      const r = await pretrainVision({
        init: required('init', v.init, "a ReSTR checkpoint (see 'refseg init')"),
        data: required('data', v.data),
        dataset,
        split: v.split ?? 'train',
        ...(v['split-by'] ? { splitBy: v['split-by'] } : {}),
        out: required('out', v.out),
        steps: intFlag('steps', v.steps ?? '2500', { min: 1 })!,
        batch: intFlag('batch', v.batch ?? '32', { min: 1 })!,
        lr: numberFlag('lr', v.lr ?? '1e-3', { min: 0 })!,
        warmup: numberFlag('warmup', v.warmup ?? '0.03', { min: 0, max: 1 })!,
        weightDecay: numberFlag('weight-decay', v['weight-decay'] ?? '5e-4', { min: 0 })!,
        clipNorm: clip > 0 ? clip : null,
        cells: intFlag('cells', v.cells ?? '4', { min: 1 })!,
        ...(v.attributes !== undefined ? { attributes: listFlag('attributes', v.attributes)! } : {}),
        seed: intFlag('seed', v.seed ?? '0')!,
        ...(v.threads ? { threads: intFlag('threads', v.threads, { min: 1 })! } : {}),
        ...(v['cache-mb'] !== undefined
          ? { cacheBytes: intFlag('cache-mb', v['cache-mb'], { min: 0 })! * 2 ** 20 }
          : {}),
        quiet: v.quiet ?? false,
      });
      console.log(
        `pretrained the vision encoder on ${r.images} images, ${r.categories} categories` +
          (r.classes > r.categories ? ` and ${r.classes - r.categories} attribute values` : '') +
          `: ${r.steps} steps, ` +
          `last loss ${r.lastLoss.toFixed(4)}, ${r.imagesPerSecond.toFixed(1)} images/s` +
          (r.kept.images
            ? ` (${r.kept.images} kept in memory, ${(r.kept.bytes / 2 ** 20).toFixed(1)} MiB)`
            : '') +
          ` → ${v.out}`,
      );
      return 0;
    }),
};
