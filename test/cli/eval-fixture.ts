// A tiny evaluation setup shared by the eval tests: a 64 px synthetic refcoco dataset, its train
// vocabulary, and a restr-tiny checkpoint at 64×64 whose weights are jittered away from the init.
// At init the mask head's logits sit at ≈0 for every pixel (probability 0.5 everywhere), which
// would make every prediction the same empty mask and every equality test vacuous; the jitter gives
// masks that depend on the image and the sentence.

import { join } from 'node:path';
import { writeSynthDataset } from '../../src/data/synth/generate.js';
import { loadRefer } from '../../src/data/refer.js';
import { Vocabulary } from '../../src/data/tokenizer.js';
import { initModel } from '../../src/models/build.js';
import { saveModelCheckpoint } from '../../src/models/checkpoint.js';
import { setPath } from '../../src/models/overrides.js';
import { resolveConfig } from '../../src/models/registry.js';

export interface EvalFixture {
  root: string;
  /** Checkpoint with the vocabulary. */
  checkpoint: string;
  /** Same weights, no vocabulary. */
  noVocab: string;
}

export async function makeEvalFixture(dir: string): Promise<EvalFixture> {
  const root = join(dir, 'data');
  await writeSynthDataset({
    flavor: 'synth-refcoco',
    out: root,
    images: 30,
    size: 64,
    seed: 0,
    concurrency: 2,
  });
  const train = await loadRefer({ root, dataset: 'synth-refcoco', split: 'train' });
  const vocab = Vocabulary.build(train.samples.map((s) => s.sentence));
  const { def, config: preset } = resolveConfig('restr-tiny', ['imageSize=64']);
  const config = def.validate(setPath(preset, def.configPaths.vocabSize, vocab.size));
  const params = initModel(def, config, 0);
  let s = 1;
  const uniform = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  for (const v of params.values()) for (let i = 0; i < v.length; i++) v[i]! += (uniform() * 2 - 1) * 0.2;
  const checkpoint = join(dir, 'model.safetensors');
  const noVocab = join(dir, 'novocab.safetensors');
  await saveModelCheckpoint(checkpoint, def, config, params, { vocab: vocab.toJSON() });
  await saveModelCheckpoint(noVocab, def, config, params);
  return { root, checkpoint, noVocab };
}
