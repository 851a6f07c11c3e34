// How good would a ReSTR checkpoint's masks be if its patch-level grounding were right? The decoder
// reads x = [v, v' ⊙ yp] (restr.md §1.6); this script replaces the gate yp = sigmoid(patch logits)
// and scores the masks exactly as `refseg eval` does (evaluate(): original resolution, the model's
// threshold). Gates:
//   model   the model's own yp (must equal `refseg eval`: the check that the surgery is sound)
//   masked  the model's yp on the target's patches, 0 elsewhere (no leak onto other objects)
//   oracle  1 on the target's patches, 0 elsewhere (the model's training label: makeTargets over the
//           letterboxed mask, as a training batch makes it)
// A ceiling on what the decoder makes of a right answer, apart from the grounding that picks it.
//
//   node dist/scripts/oracle-gate.js CKPT DATA DATASET [SPLIT] [--limit N] [--threads N]

import { letterboxMask } from '../src/data/image.js';
import { type ReferSample, sampleMask } from '../src/data/refer.js';
import { textEncoderFromCheckpoint } from '../src/data/text.js';
import { evaluate, evaluationGroups } from '../src/eval/evaluate.js';
import type { Node } from '../src/graph/graph.js';
import { toModelProto } from '../src/graph/onnx.js';
import { buildInference } from '../src/models/build.js';
import type { RestrConfig } from '../src/models/restr/config.js';
import { Session } from '../src/runtime/session.js';
import { evalScript } from './eval-args.js';

const GATES = ['model', 'masked', 'oracle'] as const;
const OFF = -30; // a logit whose sigmoid is 0 in float32 terms (9e-14)
const ON = 30;

const { ckpt, ck, dataset, split, samples, session: sessionOptions } = await evalScript('oracle-gate');
if (ck.def.kind !== 'restr') throw new Error(`${ckpt}: a ${ck.def.kind} checkpoint; the gate is ReSTR's`);
const config = ck.config as RestrConfig;
if (!config.decoder) throw new Error(`${ckpt}: decoder = false, there is no gate to replace`);
const S = config.imageSize;
const P = config.patchSize;
const Nv = (S / P) ** 2;

// The inference graph with the gate's Sigmoid reading a new input `gate_logits` [B, Nv, 1] instead
// of the patch logits (ReSTR's only Sigmoid: GELU is erf-based). `patch_logits` stays an output.
const built = buildInference(ck.def, ck.config);
const sigmoids = built.graph.nodes.filter((n) => n.op === 'Sigmoid');
if (sigmoids.length !== 1) throw new Error(`expected one Sigmoid in the graph, found ${sigmoids.length}`);
const gateIn = built.graph.input('gate_logits', 'float32', ['B', Nv, 1]);
(sigmoids[0] as { -readonly [K in keyof Node]: Node[K] }).inputs = [gateIn];
const session = await Session.create(
  toModelProto(built.graph, { outputs: built.outputs, paramValues: ck.params }),
  sessionOptions,
);

const encoder = textEncoderFromCheckpoint(ck.vocab, ck.def.maxTokens(ck.config), ckpt);
const threshold = ck.def.threshold(ck.config);

/** The target's patches as training labels them. */
const targetPatches = (s: ReferSample): Float32Array =>
  ck.def.makeTargets(ck.config, letterboxMask(sampleMask(s), S)).patch_labels!;

// evaluate() runs the samples grouped by image, batch by batch: `order[cursor + k]` is row k of a
// batch, checked against the batch's token ids.
const order = evaluationGroups(samples).flat();
const L = ck.def.maxTokens(ck.config);
const rows: string[] = [];
for (const gate of GATES) {
  let cursor = 0;
  const acc = await evaluate({
    predictor: {
      def: ck.def,
      config: ck.config,
      imageSize: S,
      maxTokens: L,
      async predict(images: Float32Array, tokens: BigInt64Array, n: number) {
        const feeds = {
          image: { dtype: 'float32' as const, shape: [n, 3, S, S], data: images },
          [ck.def.tokenInput]: { dtype: 'int64' as const, shape: [n, L], data: tokens },
        };
        const gates = new Float32Array(n * Nv).fill(OFF);
        // pass 1 gives the model's patch logits (they do not depend on the gate)
        const first = await session.run({
          ...feeds,
          gate_logits: { dtype: 'float32', shape: [n, Nv, 1], data: gates },
        });
        const logits = first.patch_logits!.data as Float32Array;
        for (let k = 0; k < n; k++) {
          const s = order[cursor + k]!;
          const ids = encoder.encode(s.sentence);
          if (ids.some((id, j) => id !== tokens[k * L + j]))
            throw new Error(`batch row ${k} is not '${s.sentence}': evaluate()'s order changed`);
          const target = gate === 'model' ? null : targetPatches(s);
          for (let i = 0; i < Nv; i++) {
            const j = k * Nv + i;
            gates[j] = target === null ? logits[j]! : target[i] ? (gate === 'oracle' ? ON : logits[j]!) : OFF;
          }
        }
        cursor += n;
        const out = await session.run({
          ...feeds,
          gate_logits: { dtype: 'float32', shape: [n, Nv, 1], data: gates },
        });
        return { maskLogits: out.mask_logits!.data as Float32Array, extra: {} };
      },
    },
    encoder,
    samples,
    dataset,
    split,
    threshold,
    progress: { label: `gate ${gate}` },
  });
  const m = acc.summary();
  const pc = (x: number) => (100 * x).toFixed(2);
  rows.push(
    `| ${gate} | ${pc(m.oIoU)} | ${pc(m.mIoU)} | ${pc(m.precision['0.5']!)} | ${pc(m.precision['0.7']!)} | ${m.pointing === null ? '–' : `${pc(m.pointing)}%`} |`,
  );
}
await session.dispose();
console.log(`${ckpt} on ${dataset} ${split} (${samples.length} expressions, threshold ${threshold})\n`);
console.log('| gate | oIoU | mIoU | P@0.5 | P@0.7 | pointing |\n|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
