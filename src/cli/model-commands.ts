// Model commands (model-agnostic, any registered ModelDef): `init` writes a randomly initialized
// checkpoint (for ReSTR optionally with a pretrained ViT, GloVe vectors and a dataset's vocabulary:
// src/models/restr/pretrained.ts; for Shared-RIS optionally a BEiT-3 encoder and its SentencePiece
// model: src/models/shared-ris/import.ts), `inspect` reports parameters and MACs per part beside the
// paper's numbers, `export` writes the ONNX inference graph (optionally split into image and text parts),
// `resample` carries a trained ReSTR checkpoint to a finer patch grid (src/models/restr/resample.ts).

import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../io/atomic.js';
import { POS_INITS, initModel } from '../models/build.js';
import { loadModelCheckpoint, saveModelCheckpoint } from '../models/checkpoint.js';
import { type ExportParts, exportModel, splitPaths } from '../models/export.js';
import { formatInspect, inspectModel } from '../models/inspect.js';
import type { AnyModelDef, ModelDef } from '../models/model.js';
import { applyOverrides, setPath } from '../models/overrides.js';
import { presetNames, resolveConfig } from '../models/registry.js';
import { type DatasetName } from '../data/datasets.js';
import { loadRefer } from '../data/refer.js';
import { sentencePieceEncoder } from '../data/sentencepiece.js';
import { buildTextEncoder, vocabTableSize } from '../data/text.js';
import { Vocabulary } from '../data/tokenizer.js';
import type { RestrConfig } from '../models/restr/config.js';
import { initRestrPretrained } from '../models/restr/pretrained.js';
import { resampleRestr } from '../models/restr/resample.js';
import type { SharedRisConfig } from '../models/shared-ris/config.js';
import { initFromBeit3 } from '../models/shared-ris/import.js';
import { UsageError, choiceFlag, datasetFlag, intFlag, required, runCommand } from './args.js';
import type { Command } from './commands.js';

/** `--config` as a preset, a JSON file or a checkpoint (its stored config), with `--set` overrides. */
function configFrom(
  spec: string | undefined,
  sets: readonly string[],
): { def: AnyModelDef; config: unknown; label: string } {
  if (!spec)
    throw new UsageError(`--config is required (a preset: ${presetNames().join(', ')}; or a .json file)`);
  if (spec.endsWith('.safetensors')) {
    const ck = loadModelCheckpoint(spec);
    return {
      def: ck.def,
      config: sets.length ? ck.def.validate(applyOverrides(ck.config, sets)) : ck.config,
      label: spec,
    };
  }
  const r = resolveConfig(spec, sets);
  return { ...r, label: spec };
}

const INIT_HELP = `refseg init --config <preset|file.json> [--set key=value ...] [--vocab-size N | --vocab vocab.json]
            [--pos-init trunc_normal|sincos] --seed N --out model.safetensors [--float16]
refseg init --config restr-b16 --vit VIT [--glove GLOVE.txt] --data DIR --dataset NAME [--split S]
            [--split-by S] --seed N --out model.safetensors
refseg init --config shared-ris-b16 [--beit3 BEIT3.pth] --spm beit3.spm --seed N --out model.safetensors

Writes a randomly initialized checkpoint (timm init: trunc normal 0.02 weights, zero biases, unit
LayerNorm scales). --vocab stores the vocabulary in the checkpoint and sets the vocabulary size
from it; --vocab-size sets the size alone. --pos-init sincos starts ReSTR's patch position table
as a 2-D sine-cosine table instead (still trained; as 'refseg train --pos-init').

Ready-to-train ReSTR checkpoints (docs/datasets.md says where the files come from):
  --data DIR --dataset NAME  build the vocabulary from the dataset's training split (as 'refseg train'
                             does), store it and set language.vocabSize from it; --split S names that
                             split (default train, as train's --split), --split-by S the refs file
                             variant (default: the dataset's)
  --vit FILE                 vision encoder from a timm ViT: safetensors (Hugging Face hub), torch
                             .pth/.bin, or Google's .npz (augreg); the class token is dropped and
                             pos_embed resampled bicubically to the config's grid. Patch size, width,
                             depth and MLP width must match the config (vision.heads cannot be
                             checked: 12 for ViT-B)
  --glove FILE               word-embedding rows of the vocabulary's words from a GloVe text file
                             (.txt or .txt.gz) of language.wordDim dimensions; needs a vocabulary
                             (--data/--dataset or --vocab); prints the coverage
Then: refseg train --init model.safetensors --data DIR --dataset NAME ...

Ready-to-train Shared-RIS checkpoints (--data/--dataset also work for Shared-RIS: they store the word
vocabulary 'refseg train' builds from scratch, framed [CLS] words [EOT] and padded with <pad> = 1):
  --beit3 FILE               the encoder (every beit3.* tensor) from a BEiT-3 checkpoint (microsoft/unilm
                             beit3 .pth, e.g. beit3_base_patch16_224.pth); the vision position table
                             is resampled bicubically to the config's grid, task heads are skipped; the
                             FPN and decoder are initialized from --seed. Needs --spm. Shapes must match
                             the config (encoder.vocabSize = the text_embed rows: 64010 for BEiT-3)
  --spm FILE                 the SentencePiece model the encoder was trained with (beit3.spm), stored in
                             the checkpoint: text is encoded [CLS] pieces [EOT] with BEiT-3's ids,
                             padded with 1. Its ids must fit encoder.vocabSize (without --beit3, the
                             size is set from the model unless --vocab-size is given)
Then: refseg train --init model.safetensors --data DIR --dataset NAME ...`;

const init: Command = {
  summary:
    'write a new model checkpoint (random init; ReSTR: optionally a pretrained ViT and GloVe; Shared-RIS: BEiT-3)',
  run: (argv) =>
    runCommand(INIT_HELP, argv, async () => {
      const { values: o } = parseArgs({
        args: argv,
        options: {
          config: { type: 'string' },
          set: { type: 'string', multiple: true, default: [] },
          'vocab-size': { type: 'string' },
          vocab: { type: 'string' },
          seed: { type: 'string' },
          'pos-init': { type: 'string' },
          out: { type: 'string' },
          float16: { type: 'boolean', default: false },
          vit: { type: 'string' },
          glove: { type: 'string' },
          data: { type: 'string' },
          dataset: { type: 'string' },
          split: { type: 'string' },
          'split-by': { type: 'string' },
          beit3: { type: 'string' },
          spm: { type: 'string' },
        },
        strict: true,
      });
      const seed = intFlag('seed', o.seed);
      if (seed === undefined) throw new UsageError('--seed is required');
      if (!o.out) throw new UsageError('--out is required');
      if (o.vocab && o['vocab-size']) throw new UsageError('give --vocab or --vocab-size, not both');
      const posInit = choiceFlag('pos-init', o['pos-init'], POS_INITS);
      if (posInit && (o.vit || o.beit3))
        throw new UsageError(
          `--pos-init is for random init; ${o.vit ? '--vit' : '--beit3'} brings the position table`,
        );
      if ((o.data === undefined) !== (o.dataset === undefined))
        throw new UsageError('--data and --dataset go together');
      if (o.data && (o.vocab || o['vocab-size']))
        throw new UsageError(
          '--data/--dataset build the vocabulary: give them or --vocab/--vocab-size, not both',
        );
      if ((o['split-by'] || o.split) && !o.data)
        throw new UsageError('--split and --split-by need --data and --dataset');
      if (o.glove && !o.data && !o.vocab)
        throw new UsageError('--glove needs a vocabulary: --data DIR --dataset NAME, or --vocab vocab.json');
      if (o.dataset) datasetFlag(o.dataset);
      if (o.beit3 && !o.spm)
        throw new UsageError('--beit3 needs --spm (the SentencePiece model the encoder reads: beit3.spm)');
      if (o.spm && (o.data || o.vocab))
        throw new UsageError('--spm is the vocabulary: give it or --data/--dataset or --vocab, not both');
      if (o.beit3 && o['vocab-size'])
        throw new UsageError(
          '--beit3 fixes the vocabulary size (its text_embed rows): set encoder.vocabSize with --set',
        );
      let { def, config } = configFrom(o.config, o.set ?? []);
      if ((o.vit || o.glove) && def.kind !== 'restr')
        throw new UsageError(`--vit and --glove initialize ReSTR; the config is a ${def.kind} model`);
      if ((o.beit3 || o.spm) && def.kind !== 'shared-ris')
        throw new UsageError(`--beit3 and --spm initialize Shared-RIS; the config is a ${def.kind} model`);

      // The vocabulary: from the dataset's train split (as train.ts builds it), or a file.
      let vocab: unknown;
      let vocabulary: Vocabulary | undefined;
      let vocabSize = intFlag('vocab-size', o['vocab-size']);
      if (o.data && o.dataset) {
        const train = await loadRefer({
          root: o.data,
          dataset: o.dataset as DatasetName,
          split: o.split ?? 'train',
          ...(o['split-by'] ? { splitBy: o['split-by'] } : {}),
        });
        const sentences = train.samples.map((s) => s.sentence);
        const from = `from ${train.samples.length} expressions of ${o.dataset} (${train.splitBy}) ${train.split}`;
        if ((def.textFraming ?? 'words') === 'words') {
          vocabulary = Vocabulary.build(sentences);
          console.log(`vocabulary: ${vocabulary.size} words ${from}`);
        } else {
          // the model's own layout (src/data/text.ts), exactly what 'refseg train' builds from scratch
          const built = buildTextEncoder(def, config, sentences);
          vocab = built.encoder.toJSON();
          vocabSize = built.vocabSize;
          console.log(
            `vocabulary: ${built.vocabSize} ids (${def.kind} framing: 4 specials and ${built.vocabSize - 4} words) ${from}`,
          );
        }
      } else if (o.spm) {
        let bytes: Uint8Array;
        try {
          bytes = new Uint8Array(readFileSync(o.spm));
        } catch (e) {
          throw new Error(`--spm '${o.spm}': ${(e as Error).message}`);
        }
        vocab = sentencePieceEncoder(bytes, def.maxTokens(config), o.spm).toJSON();
        const need = vocabTableSize(vocab, o.spm);
        if (o.beit3 || vocabSize !== undefined) {
          const rows = vocabSize ?? (config as SharedRisConfig).encoder.vocabSize;
          if (need > rows)
            throw new Error(
              `--spm '${o.spm}': its ${need - 1} pieces give BEiT-3 ids up to ${need - 1}, but the text table has ${rows} rows (encoder.vocabSize${o.beit3 ? ", the checkpoint's text_embed" : ''}); use the SentencePiece model the encoder was trained with`,
            );
        } else {
          vocabSize = need;
        }
        console.log(
          `vocabulary: SentencePiece model ${basename(o.spm)}, ${need - 1} pieces (BEiT-3 ids, [CLS] … [EOT], padding 1)`,
        );
      } else if (o.vocab) {
        try {
          vocab = JSON.parse(readFileSync(o.vocab, 'utf8'));
        } catch (e) {
          throw new Error(`vocabulary '${o.vocab}': ${(e as Error).message}`);
        }
        const words = (vocab as { words?: unknown } | null)?.words;
        if (!Array.isArray(words)) throw new Error(`vocabulary '${o.vocab}': no "words" list`);
        vocabSize = words.length;
        if (o.glove) {
          try {
            vocabulary = Vocabulary.fromJSON(vocab);
          } catch (e) {
            throw new Error(`vocabulary '${o.vocab}': ${(e as Error).message}`);
          }
        }
      }
      if (vocabulary) {
        vocab = vocabulary.toJSON();
        vocabSize = vocabulary.size;
      }
      if (vocabSize !== undefined)
        config = def.validate(setPath(config, def.configPaths.vocabSize, vocabSize));

      let params: Map<string, Float32Array>;
      if (o.beit3) {
        const r = initFromBeit3(config as SharedRisConfig, seed, o.beit3);
        const resampled = r.import.resampled
          ? `; vision positions resampled ${r.import.resampled.from}×${r.import.resampled.from} → ${r.import.resampled.to}×${r.import.resampled.to} (bicubic)`
          : '';
        console.log(
          `encoder: ${r.import.params.size} tensors from ${o.beit3}${resampled}; not imported: ${r.import.skipped.join(', ') || 'none'}`,
        );
        params = r.params;
      } else if (o.vit || o.glove) {
        const r = await initRestrPretrained(config as RestrConfig, seed, {
          ...(o.vit ? { vit: o.vit } : {}),
          ...(o.glove ? { glove: o.glove } : {}),
          ...(vocabulary ? { vocab: vocabulary } : {}),
        });
        for (const line of r.report) console.log(line);
        params = r.params;
      } else {
        params = initModel(def, config, seed, posInit ? { posInit } : {});
      }
      await saveModelCheckpoint(o.out, def, config, params, {
        ...(vocab !== undefined ? { vocab } : {}),
        dtype: o.float16 ? 'float16' : 'float32',
      });
      const n = [...params.values()].reduce((a, v) => a + v.length, 0);
      console.log(`wrote ${o.out}: ${def.kind}, ${(n / 1e6).toFixed(2)}M parameters, seed ${seed}`);
      return 0;
    }),
};

const INSPECT_HELP = `refseg inspect --config <preset|file.json|model.safetensors> [--set key=value ...] [--image-size S] [--json]

Parameters (total and per part, with and without the word-embedding table) and multiply-accumulates
(total and per part) of the inference graph at S×S, batch 1, beside the paper's numbers for the
paper's configurations. Nothing runs: the graph is only traced.`;

const inspect: Command = {
  summary: 'parameters and MACs per part, beside the paper',
  run: (argv) =>
    runCommand(INSPECT_HELP, argv, async () => {
      const { values: o } = parseArgs({
        args: argv,
        options: {
          config: { type: 'string' },
          set: { type: 'string', multiple: true, default: [] },
          'image-size': { type: 'string' },
          json: { type: 'boolean', default: false },
        },
        strict: true,
      });
      const { def, config, label } = configFrom(o.config, o.set ?? []);
      const report = inspectModel(def, config, intFlag('image-size', o['image-size']));
      console.log(
        o.json ? JSON.stringify({ config: label, ...report }, null, 2) : formatInspect(report, label),
      );
      return 0;
    }),
};

const EXPORT_HELP = `refseg export --checkpoint model.safetensors --out model.onnx [--parts full|split]
refseg export --checkpoint run/best.safetensors --out model.safetensors [--float16]

Writes the inference graph: inputs image float32 [B,3,S,S] and the token ids int64 [B,L], outputs
mask_logits [B,1,S,S] and the model's extra outputs, parameters as initializers, config and
vocabulary in metadata_props. --parts split also writes <out>.image.onnx (image → image features)
and <out>.text.onnx (features + token ids → logits), so one image serves many expressions.

With --out *.safetensors it writes the checkpoint itself (config, vocabulary, weights), in float16
with --float16: half the size, for shipping (how models/default.safetensors is made).`;

const exportCmd: Command = {
  summary: 'export the inference graph to ONNX',
  run: (argv) =>
    runCommand(EXPORT_HELP, argv, async () => {
      const { values: o } = parseArgs({
        args: argv,
        options: {
          checkpoint: { type: 'string' },
          out: { type: 'string' },
          parts: { type: 'string', default: 'full' },
          float16: { type: 'boolean', default: false },
        },
        strict: true,
      });
      if (!o.checkpoint) throw new UsageError('--checkpoint is required');
      if (!o.out) throw new UsageError('--out is required');
      if (o.parts !== 'full' && o.parts !== 'split')
        throw new UsageError(`--parts must be full or split, got '${o.parts}'`);
      const toCheckpoint = o.out.endsWith('.safetensors');
      if (o.float16 && !toCheckpoint)
        throw new UsageError('--float16 needs --out *.safetensors (a checkpoint)');
      if (toCheckpoint && o.parts !== 'full')
        throw new UsageError('--parts applies to ONNX output, not to a checkpoint');
      const ck = loadModelCheckpoint(o.checkpoint);
      if (toCheckpoint) {
        await saveModelCheckpoint(o.out, ck.def as ModelDef<unknown>, ck.config, ck.params, {
          dtype: o.float16 ? 'float16' : 'float32',
          ...(ck.vocab !== undefined ? { vocab: ck.vocab } : {}),
        });
        console.log(
          `wrote ${o.out} (${o.float16 ? 'float16' : 'float32'}, ${(statSync(o.out).size / 2 ** 20).toFixed(1)} MiB)`,
        );
        return 0;
      }
      const parts = o.parts as ExportParts;
      const models = exportModel(ck.def, ck.config, ck.params, {
        parts,
        ...(ck.vocab !== undefined ? { vocab: ck.vocab } : {}),
      });
      const written: [string, Uint8Array][] = [[o.out, models.full]];
      if (parts === 'split') {
        const p = splitPaths(o.out);
        written.push([p.image, models.image!], [p.text, models.text!]);
      }
      for (const [path, bytes] of written) {
        await writeFileAtomic(path, bytes);
        console.log(`wrote ${path} (${(bytes.length / 2 ** 20).toFixed(1)} MiB)`);
      }
      return 0;
    }),
};

const RESAMPLE_HELP = `refseg resample --checkpoint model.safetensors --out finer.safetensors [--patch-size P] [--image-size S]

Carries a trained ReSTR checkpoint to a finer patch grid (--patch-size: the checkpoint's patch side
divided by a power of two) and/or another input size (--image-size), to fine-tune there with
'refseg train --init finer.safetensors'. The patch embedding is resized so that a token of a P×P
patch equals the old token of that patch upsampled bilinearly (FlexiViT's resize), the position
table is resampled bicubically, and the decoder blocks a finer grid does not need are folded into
its head. Vocabulary and every other weight are kept.`;

const resample: Command = {
  summary: 'carry a ReSTR checkpoint to a finer patch grid or another input size',
  run: (argv) =>
    runCommand(RESAMPLE_HELP, argv, async () => {
      const { values: o } = parseArgs({
        args: argv,
        options: {
          checkpoint: { type: 'string' },
          out: { type: 'string' },
          'patch-size': { type: 'string' },
          'image-size': { type: 'string' },
        },
        strict: true,
      });
      const checkpoint = required('checkpoint', o.checkpoint);
      const out = required('out', o.out);
      const patchSize = intFlag('patch-size', o['patch-size'], { min: 1 });
      const imageSize = intFlag('image-size', o['image-size'], { min: 1 });
      if (patchSize === undefined && imageSize === undefined)
        throw new UsageError('give --patch-size, --image-size or both');
      const ck = loadModelCheckpoint(checkpoint);
      if (ck.def.kind !== 'restr')
        throw new UsageError(
          `${checkpoint} is a ${ck.def.kind} checkpoint; resample carries ReSTR checkpoints`,
        );
      const r = resampleRestr(
        ck.config as RestrConfig,
        ck.params,
        { ...(patchSize ? { patchSize } : {}), ...(imageSize ? { imageSize } : {}) },
        checkpoint,
      );
      await saveModelCheckpoint(out, ck.def as ModelDef<RestrConfig>, r.config, r.params, {
        ...(ck.vocab !== undefined ? { vocab: ck.vocab } : {}),
      });
      for (const line of r.changes) console.log(line);
      console.log(
        `wrote ${out}: ${r.config.imageSize} px, patch ${r.config.patchSize} (${r.config.imageSize / r.config.patchSize}×${r.config.imageSize / r.config.patchSize} grid)`,
      );
      return 0;
    }),
};

export const modelCommands: Record<string, Command> = { init, inspect, export: exportCmd, resample };
