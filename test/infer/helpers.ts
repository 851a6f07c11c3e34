// Shared by the inference, server and CLI tests: a random-init ReSTR checkpoint that carries a
// vocabulary built from the bundled example's expressions (the trained built-in model is not part
// of the repository's tests), a random Shared-RIS one with a SentencePiece vocabulary (a model
// that cannot be split), and the bundled example itself.

import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Vocabulary } from '../../src/data/tokenizer.js';
import { initModel } from '../../src/models/build.js';
import {
  type ModelCheckpoint,
  encodeModelCheckpoint,
  saveModelCheckpoint,
} from '../../src/models/checkpoint.js';
import type { RestrConfig } from '../../src/models/restr/config.js';
import { restrModel } from '../../src/models/restr/model.js';
import { examplePaths } from '../../src/infer/segmenter.js';
import { type DeepPartial, microConfig } from '../models/restr-helpers.js';
import { sentencePieceEncoder } from '../../src/data/sentencepiece.js';
import { sharedRisModel } from '../../src/models/shared-ris/model.js';
import { livelyParams, microConfig as sharedRisMicroConfig } from '../models/shared-ris-helpers.js';

export interface Example {
  imagePath: string;
  image: Uint8Array;
  width: number;
  height: number;
  expressions: { text: string; object: number; kind: string }[];
}

export function bundledExample(): Example {
  const p = examplePaths();
  const json = JSON.parse(readFileSync(p.expressions, 'utf8')) as Omit<Example, 'imagePath' | 'image'>;
  return {
    imagePath: p.image,
    image: readFileSync(p.image),
    width: json.width,
    height: json.height,
    expressions: json.expressions,
  };
}

/** A tiny ReSTR config (32 px, 8 px patches) whose vocabulary holds the example's words. */
export function testModel(o: DeepPartial<RestrConfig> = {}, seed = 5): ModelCheckpoint {
  const vocab = Vocabulary.build(bundledExample().expressions.map((e) => e.text));
  const config = microConfig({ ...o, language: { vocabSize: vocab.size, maxWords: 12, ...o.language } });
  const params = initModel(restrModel, config, seed);
  // timm's init gives the seed std 0.02, so patch logits sit within ±0.01 of 0: every patch
  // probability ≈ 0.5, flipping on rounding noise. A scaled seed gives the spread a trained model
  // has, so thresholds, scores and cross-runtime comparisons test something. (The decoder already
  // starts at torch.nn.Linear's scale.)
  const seedToken = params.get('fusion.seed')!;
  for (let i = 0; i < seedToken.length; i++) seedToken[i]! *= 300;
  // The decoder's first layer reads [v, v' ⊙ yp]; damping its v columns lets the gated, patch-wise
  // varying half decide the mask (a random v half gives one sign over the whole image).
  const first = params.get('decoder.blocks.0.proj.weight');
  if (first) {
    const inCh = 2 * config.fusion.dim;
    for (let i = 0; i < first.length; i++) if (i % inCh < config.fusion.dim) first[i]! *= 0.01;
  }
  return { def: restrModel as never, config, params, vocab: vocab.toJSON(), metadata: {} };
}

export function testCheckpointBytes(o: DeepPartial<RestrConfig> = {}, seed = 5): Uint8Array {
  const m = testModel(o, seed);
  return encodeModelCheckpoint(restrModel, m.config as RestrConfig, m.params, { vocab: m.vocab });
}

/** A temporary folder with `model.safetensors` in it; `cleanup` removes it. */
export async function tempCheckpoint(
  o: DeepPartial<RestrConfig> = {},
  seed = 5,
): Promise<{ dir: string; path: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'refseg-infer-'));
  const m = testModel(o, seed);
  const path = join(dir, 'model.safetensors');
  await saveModelCheckpoint(path, restrModel, m.config as RestrConfig, m.params, { vocab: m.vocab });
  return { dir, path, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A micro Shared-RIS (no image/text split, no patch output) with the SentencePiece test tokenizer. */
export function sharedRisTestModel(seed = 3): ModelCheckpoint {
  const spm = new Uint8Array(
    readFileSync(fileURLToPath(new URL('../../../test/fixtures/spm/bytes.model', import.meta.url))),
  );
  // 512 ≥ the fixture's 400 pieces plus BEiT-3's special ids, so every id has an embedding row.
  const config = sharedRisMicroConfig({ encoder: { vocabSize: 512 } });
  const vocab = sentencePieceEncoder(spm, config.maxTokens).toJSON();
  return { def: sharedRisModel as never, config, params: livelyParams(config, seed), vocab, metadata: {} };
}
