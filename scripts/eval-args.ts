// The command line of the diagnostic scripts that score a checkpoint on one split (breakdown,
// oracle-gate, flip-tta):
//
//   node dist/scripts/NAME.js CKPT DATA DATASET [SPLIT] [--limit N] [--threads N]

import { parseArgs } from 'node:util';
import type { DatasetName } from '../src/data/datasets.js';
import { type ReferDataset, type ReferSample, loadRefer } from '../src/data/refer.js';
import { type ModelCheckpoint, loadModelCheckpoint } from '../src/models/checkpoint.js';
import type { SessionOptions } from '../src/runtime/session.js';

export interface EvalScript {
  ckpt: string;
  ck: ModelCheckpoint;
  dataset: DatasetName;
  split: string;
  set: ReferDataset;
  /** The split's samples, the first --limit of them when given. */
  samples: ReferSample[];
  /** ONNX Runtime's threads (--threads), for Predictor.create or Session.create. */
  session: SessionOptions;
}

/** Parses the command line (usage and exit code 2 when it is short) and loads what it names. */
export async function evalScript(name: string, o: { withObjects?: boolean } = {}): Promise<EvalScript> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { limit: { type: 'string' }, threads: { type: 'string' } },
  });
  const [ckpt, root, dataset, split = 'val'] = positionals;
  if (!ckpt || !root || !dataset) {
    console.error(`usage: node dist/scripts/${name}.js CKPT DATA DATASET [SPLIT] [--limit N] [--threads N]`);
    process.exit(2);
  }
  const ck = loadModelCheckpoint(ckpt);
  const set = await loadRefer({ root, dataset: dataset as DatasetName, split, ...o });
  return {
    ckpt,
    ck,
    dataset: dataset as DatasetName,
    split,
    set,
    samples: values.limit ? set.samples.slice(0, Number(values.limit)) : set.samples,
    session: values.threads ? { threads: Number(values.threads) } : {},
  };
}
