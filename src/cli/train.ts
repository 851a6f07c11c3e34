// `refseg train`: flags → TrainOptions → src/train/train.ts.

import { parseArgs } from 'node:util';
import { DATASET_NAMES } from '../data/datasets.js';
import { presetNames } from '../models/registry.js';
import { POS_INITS } from '../models/build.js';
import { SCHEDULE_KINDS } from '../train/schedule.js';
import { type TrainOptions, train } from '../train/train.js';
import {
  UsageError,
  choiceFlag,
  datasetFlag,
  intFlag,
  listFlag,
  numberFlag,
  required,
  runCommand,
} from './args.js';
import type { Command } from './commands.js';

const HELP = `Usage: refseg train --config <preset|file.json> --data DIR --dataset NAME --out RUN [options]
       refseg train --init CKPT --data DIR --dataset NAME --out RUN [options]

Trains a model: forward + loss + backward as one ONNX Runtime graph, then AdamW in place.
Writes RUN/last.safetensors and RUN/best.safetensors (model checkpoints with the vocabulary),
RUN/train-state.safetensors (everything needed to resume exactly), RUN/log.jsonl, RUN/loss.png, RUN/val.png.

  --config C            preset (${presetNames().join(', ')}) or config JSON file
  --set key=value       override a config field (repeatable), e.g. --set fusion.depth=2
  --init CKPT           start from these weights (e.g. made by 'refseg init --vit'): the checkpoint's
                        config and vocabulary are used, so --config and --set are refused with it
  --data DIR            dataset root (refer layout)
  --dataset NAME        ${DATASET_NAMES.join(', ')}
  --split S             training split (default train)
  --val-split S         validation split (default val)
  --val-data DIR        dataset root of the validation split (default: --data), e.g. the benchmark's
                        val beside a larger training set generated with another seed
  --split-by S          refs file variant (default: the dataset's)
  --out RUN             run folder
  --steps N             optimizer steps (default 1000)
  --batch B             batch size in expressions (default 8)
  --per-image K         K expressions of each image per batch (distinct objects first), batch/K images:
                        the image half runs once per image (ReSTR only; default 1)
  --lr X                base learning rate (default 1e-4)
  --vision-lr-mult X    learning-rate multiplier of the vision encoder (default 1; 0.1 for a pretrained ViT;
                        0 freezes it: no gradient, no backward pass through it, its weights kept)
  --mask-dice X         add X·Dice(σ(mask logits), target) to ReSTR's loss (Shared-RIS's Dice term;
                        the ReSTR paper's loss has none; default 0)
  --queries F,...       add one sample per training image: a category's name ("star"; F = category) or
                        the value of an annotation field (F = synth.color: "red") that objects of the
                        image have, masked as all of them (from instances.json; default none)
  --weight-decay X      AdamW decoupled weight decay (default 5e-4)
  --warmup F            linear warm-up over this fraction of steps (default 0.1)
  --schedule K          poly (power 0.9) | cosine | constant (default poly)
  --clip-norm X         clip the global gradient norm (default off)
  --ema D               keep an exponential moving average of the weights with decay D (warmed up as
                        min(D, (1+t)/(10+t)) after update t); checkpoints and validation use it (default off)
  --seed N              seed of initialization, data order, augmentation and drop path (default 0)
  --pos-init K          ReSTR's patch position table from scratch: trunc_normal (timm, default) or
                        sincos (a 2-D sine-cosine table, still trained; learns location words faster)
  --no-augment          no flips / photometric jitter
  --eval-every N        validate every N steps (default 500; 0 = never)
  --eval-limit N        validate on at most N expressions (default 0 = all)
  --checkpoint-every N  write checkpoints every N steps (default 200)
  --threads N           ONNX Runtime intra-op threads (default: all cores; with --workers, per worker, default 1)
  --workers N           data-parallel worker threads, each running batch/N expressions (default 1); on 2
                        cores '--workers 2 --threads 1' measured 4-16% more samples/s than one 2-thread session
  --resume              continue RUN from RUN/train-state.safetensors (same options; --steps may extend)
  --stop-at N           stop after step N as if interrupted (for testing resume)
  --quiet               no progress output`;

/** --ema: a decay in [0, 1); 1 would keep the initial weights forever. */
function emaFlag(v: string): number {
  const d = numberFlag('ema', v, { min: 0, max: 1 })!;
  if (d === 1)
    throw new UsageError(`--ema must be below 1 (a decay of 1 never moves from the initial weights)`);
  return d;
}

export const trainCommand: Command = {
  summary: 'train a model on a referring dataset (progress, validation, checkpoints, exact resume)',
  run: (argv) =>
    runCommand(HELP, argv, async () => {
      const { values: v } = parseArgs({
        args: argv,
        options: {
          config: { type: 'string' },
          set: { type: 'string', multiple: true },
          init: { type: 'string' },
          data: { type: 'string' },
          dataset: { type: 'string' },
          split: { type: 'string' },
          'val-split': { type: 'string' },
          'val-data': { type: 'string' },
          'split-by': { type: 'string' },
          out: { type: 'string' },
          steps: { type: 'string' },
          batch: { type: 'string' },
          'per-image': { type: 'string' },
          lr: { type: 'string' },
          'vision-lr-mult': { type: 'string' },
          'mask-dice': { type: 'string' },
          queries: { type: 'string' },
          'weight-decay': { type: 'string' },
          warmup: { type: 'string' },
          schedule: { type: 'string' },
          'clip-norm': { type: 'string' },
          ema: { type: 'string' },
          seed: { type: 'string' },
          'pos-init': { type: 'string' },
          'no-augment': { type: 'boolean' },
          'eval-every': { type: 'string' },
          'eval-limit': { type: 'string' },
          'checkpoint-every': { type: 'string' },
          threads: { type: 'string' },
          workers: { type: 'string' },
          resume: { type: 'boolean' },
          'stop-at': { type: 'string' },
          quiet: { type: 'boolean' },
        },
        strict: true,
        allowPositionals: false,
      });
      const resume = v.resume ?? false;
      if (v.init && (v.config || v.set)) {
        throw new UsageError(
          `--init ${v.init} brings its own config; drop ${v.config ? '--config' : '--set'} (the checkpoint's config is the one trained)`,
        );
      }
      const dataset = datasetFlag(v.dataset);
      const posInit = choiceFlag('pos-init', v['pos-init'], POS_INITS);
      if (posInit && v.init)
        throw new UsageError(`--pos-init initializes from scratch; --init ${v.init} brings its own weights`);
      const schedule = choiceFlag('schedule', v.schedule ?? 'poly', SCHEDULE_KINDS)!;
      const o: TrainOptions = {
        config:
          resume || v.init
            ? (v.config ?? '')
            : required(
                'config',
                v.config,
                `a preset: ${presetNames().join(', ')}; or a .json file (or --init CKPT)`,
              ),
        sets: v.set ?? [],
        ...(v.init ? { init: v.init } : {}),
        data: required('data', v.data),
        dataset,
        split: v.split ?? 'train',
        valSplit: v['val-split'] ?? 'val',
        ...(v['val-data'] ? { valData: v['val-data'] } : {}),
        ...(v['split-by'] ? { splitBy: v['split-by'] } : {}),
        out: required('out', v.out),
        steps: resume && v.steps === undefined ? 0 : intFlag('steps', v.steps ?? '1000', { min: 1 })!,
        batch: intFlag('batch', v.batch ?? '8', { min: 1 })!,
        ...(v['per-image'] ? { perImage: intFlag('per-image', v['per-image'], { min: 1 })! } : {}),
        lr: numberFlag('lr', v.lr ?? '1e-4', { min: 0 })!,
        visionLrMult: numberFlag('vision-lr-mult', v['vision-lr-mult'] ?? '1', { min: 0 })!,
        maskDice: numberFlag('mask-dice', v['mask-dice'] ?? '0', { min: 0 })!,
        ...(v.queries !== undefined ? { queries: listFlag('queries', v.queries)! } : {}),
        weightDecay: numberFlag('weight-decay', v['weight-decay'] ?? '5e-4', { min: 0 })!,
        warmup: numberFlag('warmup', v.warmup ?? '0.1', { min: 0, max: 1 })!,
        schedule,
        clipNorm: v['clip-norm'] ? numberFlag('clip-norm', v['clip-norm'], { min: 0 })! : null,
        ...(v.ema ? { ema: emaFlag(v.ema) } : {}),
        seed: intFlag('seed', v.seed ?? '0')!,
        ...(posInit ? { posInit } : {}),
        augment: !v['no-augment'],
        evalEvery: intFlag('eval-every', v['eval-every'] ?? '500')!,
        evalLimit: intFlag('eval-limit', v['eval-limit'] ?? '0')!,
        checkpointEvery: intFlag('checkpoint-every', v['checkpoint-every'] ?? '200', { min: 1 })!,
        stopAt: intFlag('stop-at', v['stop-at'] ?? '0')!,
        maxNonFinite: 5,
        ...(v.threads ? { threads: intFlag('threads', v.threads, { min: 1 })! } : {}),
        ...(v.workers ? { workers: intFlag('workers', v.workers, { min: 1 })! } : {}),
        resume,
        quiet: v.quiet ?? false,
      };
      const r = await train(o);
      console.log(
        `trained ${r.steps} steps: last loss ${r.lastLoss.toFixed(4)}, ${r.samplesPerSecond.toFixed(1)} samples/s` +
          (r.bestOIoU >= 0 ? `, best val oIoU ${(100 * r.bestOIoU).toFixed(2)}` : ''),
      );
      return 0;
    }),
};
