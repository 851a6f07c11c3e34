// Writes docs/comparison.md from the runs of scripts/compare-models.sh: per flavor of the synthetic
// benchmark, ReSTR and Shared-RIS (the CPU presets, trained from scratch with the same budget),
// their val metrics from `refseg eval --json` (src/eval/report.ts: oIoU, mIoU, precision["0.5"…"0.9"]),
// the training wall time from each run's log.jsonl (elapsed_s of the last step), the budget, the
// machine, the exact commands, and what the numbers do and do not say.
//
//   node dist/scripts/compare-table.js --runs RUNS --out docs/comparison.md --steps N --batch B \
//     --lr X --warmup F --schedule K --seed N --clip X|off --threads N --parallel 0|1 --images N --size S \
//     --eval-split val
//
// Runs are read from RUNS/<model>-<flavor>/: eval.<split>.json, log.jsonl, best.safetensors, and the
// commands that made them, train.cmd and eval.cmd (RUNS/data-<flavor>.cmd for the dataset).

import { closeSync, existsSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { EvalReport } from '../src/eval/report.js';

const MODELS = ['restr-tiny', 'shared-ris-tiny'] as const;
const FLAVORS = ['synth-refcoco', 'synth-refcoco+', 'synth-refcocog'] as const;
const PREC = ['0.5', '0.6', '0.7', '0.8', '0.9'];

interface Run {
  model: string;
  flavor: string;
  report: EvalReport;
  /** Training wall time (s): elapsed_s of the last logged step. */
  wallS: number;
  steps: number;
  lastLoss: number;
  /** Step and val oIoU of best.safetensors (its metadata). */
  bestStep: number | null;
  params: number | null;
}

/** The header of a safetensors file: metadata and tensor shapes, without reading the tensors. */
function safetensorsHeader(path: string): { metadata: Record<string, string>; params: number } {
  const fd = openSync(path, 'r');
  try {
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    const buf = Buffer.alloc(n);
    readSync(fd, buf, 0, n, 8);
    const h = JSON.parse(buf.toString('utf8')) as Record<
      string,
      { shape?: number[] } | Record<string, string>
    >;
    let params = 0;
    for (const [k, v] of Object.entries(h)) {
      if (k === '__metadata__') continue;
      // BatchNorm running statistics are buffers, not parameters
      if (/\.running_(mean|var)$/.test(k)) continue;
      params += ((v as { shape: number[] }).shape ?? []).reduce((a, b) => a * b, 1);
    }
    return { metadata: (h.__metadata__ as Record<string, string>) ?? {}, params };
  } finally {
    closeSync(fd);
  }
}

function readRun(runs: string, model: string, flavor: string, split: string): Run | null {
  const dir = join(runs, `${model}-${flavor}`);
  const reportPath = join(dir, `eval.${split}.json`);
  if (!existsSync(reportPath)) return null;
  const report = JSON.parse(readFileSync(reportPath, 'utf8')) as EvalReport;
  if (report.format !== 'refseg.eval-report/1') throw new Error(`${reportPath}: not a refseg eval report`);
  let wallS = NaN;
  let steps = 0;
  let lastLoss = NaN;
  const logPath = join(dir, 'log.jsonl');
  if (existsSync(logPath)) {
    for (const line of readFileSync(logPath, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const l = JSON.parse(line) as { step?: number; loss?: number; elapsed_s?: number };
      if (l.elapsed_s === undefined || l.step === undefined) continue; // validation lines
      if (l.step >= steps) {
        steps = l.step;
        wallS = l.elapsed_s;
        lastLoss = l.loss ?? NaN;
      }
    }
  }
  let bestStep: number | null = null;
  let params: number | null = null;
  const best = join(dir, 'best.safetensors');
  if (existsSync(best)) {
    const h = safetensorsHeader(best);
    bestStep = h.metadata.step !== undefined ? Number(h.metadata.step) : null;
    params = h.params;
  }
  return { model, flavor, report, wallS, steps, lastLoss, bestStep, params };
}

const pct = (x: number) => (100 * x).toFixed(2);
const fmtTime = (s: number) => {
  if (!Number.isFinite(s)) return '—';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.round(s % 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
};
const millions = (n: number | null) => (n === null ? '—' : `${(n / 1e6).toFixed(2)}M`);

function main(): void {
  const { values: v } = parseArgs({
    options: {
      runs: { type: 'string' },
      out: { type: 'string', default: 'docs/comparison.md' },
      data: { type: 'string', default: '' },
      steps: { type: 'string', default: '' },
      batch: { type: 'string', default: '' },
      lr: { type: 'string', default: '' },
      warmup: { type: 'string', default: '' },
      schedule: { type: 'string', default: '' },
      seed: { type: 'string', default: '' },
      clip: { type: 'string', default: 'off' },
      threads: { type: 'string', default: '' },
      parallel: { type: 'string', default: '0' },
      images: { type: 'string', default: '' },
      size: { type: 'string', default: '' },
      'eval-split': { type: 'string', default: 'val' },
      'eval-every': { type: 'string', default: '' },
      'total-wall': { type: 'string', default: '' },
    },
    strict: true,
  });
  if (!v.runs) throw new Error('--runs is required');
  const split = v['eval-split']!;
  const runs: Run[] = [];
  const missing: string[] = [];
  for (const flavor of FLAVORS)
    for (const model of MODELS) {
      const r = readRun(v.runs, model, flavor, split);
      if (r) runs.push(r);
      else missing.push(`${model}-${flavor}`);
    }
  if (runs.length === 0) throw new Error(`${v.runs}: no eval.${split}.json in any run folder`);

  const thresholds = MODELS.map((m) => {
    const r = runs.find((x) => x.model === m);
    return r ? `${m} ${r.report.threshold}` : null;
  })
    .filter(Boolean)
    .join(', ');
  const cpu = cpus();
  const parallel = v.parallel === '1';
  const lines: string[] = [];
  lines.push(
    '# ReSTR vs Shared-RIS on the synthetic benchmark',
    '',
    `Written by \`scripts/compare-models.sh\` (table: \`scripts/compare-table.ts\`) on ${new Date().toISOString().slice(0, 10)}.`,
    `Both CPU presets (\`restr-tiny\`, \`shared-ris-tiny\`) trained **from scratch** on each flavor of the synthetic`,
    `benchmark (spec/data.md §4) with the same budget, then scored on its **${split}** split with \`refseg eval\``,
    `(spec/data.md §5: metrics at the original resolution, each model at its own threshold: ${thresholds}).`,
    '',
    `## Results (${split}, %)`,
    '',
    `| flavor | model | params | oIoU | mIoU | ${PREC.map((t) => `P@${t}`).join(' | ')} | n | best step | train wall |`,
    `|${' --- |'.repeat(7 + PREC.length)}`,
  );
  for (const r of runs) {
    const p = r.report;
    lines.push(
      `| ${r.flavor} | ${r.model} | ${millions(r.params)} | ${pct(p.oIoU)} | ${pct(p.mIoU)} | ${PREC.map((t) => pct(p.precision[t] ?? NaN)).join(' | ')} | ${p.count} | ${r.bestStep ?? '—'} / ${r.steps} | ${fmtTime(r.wallS)} |`,
    );
  }
  if (missing.length) lines.push('', `Missing (no eval report): ${missing.join(', ')}.`);
  const gaps = FLAVORS.flatMap((f) => {
    const a = runs.find((r) => r.flavor === f && r.model === 'restr-tiny');
    const b = runs.find((r) => r.flavor === f && r.model === 'shared-ris-tiny');
    if (!a || !b) return [];
    const d = 100 * (b.report.oIoU - a.report.oIoU);
    return [`${f} ${d >= 0 ? '+' : ''}${d.toFixed(2)}`];
  });
  if (gaps.length) lines.push('', `oIoU of Shared-RIS minus ReSTR, in points: ${gaps.join('; ')}.`);

  lines.push(
    '',
    '"params" counts trainable parameters (word/text embedding table included; it depends on the',
    'flavor\'s vocabulary). "best step" is the step of `best.safetensors` (best in-training val oIoU) out of',
    'the steps trained; "train wall" is `elapsed_s` of the last step in the run\'s `log.jsonl` (training plus',
    'in-training validation, without the final evaluation).',
    '',
    '## Budget',
    '',
    `- steps: ${v.steps}, batch ${v.batch}, learning rate ${v.lr} (AdamW, weight decay 5e-4), warm-up ${v.warmup} of the steps, schedule ${v.schedule}, seed ${v.seed}, global-norm gradient clip ${v.clip} — identical for both models`,
    `- data: ${v.images} images per flavor at ${v.size} px (\`refseg data synth --seed 0\`), models at their presets' 128×128 input`,
    `- validation during training every ${v['eval-every']} steps on the full val split (picks \`best.safetensors\`)`,
    `- ONNX Runtime threads per run: ${v.threads}; ${parallel ? 'the two models of a flavor trained **in parallel** (one process each)' : 'runs one after another'}`,
  );
  if (v['total-wall']) lines.push(`- total wall time of the script: ${fmtTime(Number(v['total-wall']))}`);
  lines.push(
    '',
    '## Machine',
    '',
    `- ${cpu.length} logical cores (${cpu[0]?.model.trim() ?? 'unknown CPU'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB memory`,
    `- Node ${process.version}, ONNX Runtime (onnxruntime-node) CPU execution provider`,
    `- load average when this file was written: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(', ')}; other jobs on the machine make the wall times indicative, not benchmarks`,
    '',
    '## Commands',
    '',
    '```sh',
    '# refseg = node dist/src/cli/main.js',
  );
  const cmd = (path: string, missing: string) =>
    existsSync(path) ? readFileSync(path, 'utf8').trimEnd().split('\n') : [`# ${missing}`];
  for (const flavor of FLAVORS) {
    if (!runs.some((r) => r.flavor === flavor)) continue;
    lines.push(
      ...cmd(
        join(v.runs, `data-${flavor}.cmd`),
        `${flavor}: dataset found in ${v.data || 'DATA'}, not generated by this script`,
      ),
    );
    for (const r of runs.filter((x) => x.flavor === flavor)) {
      const dir = join(v.runs, `${r.model}-${flavor}`);
      lines.push(...cmd(join(dir, 'train.cmd'), `${r.model}: train command not recorded`));
      lines.push(...cmd(join(dir, 'eval.cmd'), `${r.model}: eval command not recorded`));
    }
  }
  lines.push(
    '```',
    '',
    '## What this does and does not show',
    '',
    "- These are the **CPU presets trained from scratch**, not the papers' models: ReSTR's paper model is",
    "  ViT-B/16 (ImageNet-21k) with GloVe vectors trained 400k iterations of batch 8, Shared-RIS's is",
    '  BEiT-3 base with its SentencePiece tokenizer trained 35 epochs of batch 14 (cosine decay), both at',
    '  480×480 on RefCOCO/+/g. Neither pretraining is used here, and both models share one recipe (the',
    "  options under Budget), which is neither paper's; Shared-RIS reads a word vocabulary of the",
    "  training split in BEiT-3's framing (`[CLS] words [EOT]`, padding 1) instead of SentencePiece pieces.",
    '- The synthetic flavors imitate what RefCOCO, RefCOCO+ and RefCOCOg ask (location words, appearance',
    "  only, relations); numbers here say nothing about the real datasets or about the papers' tables.",
    `- One seed per run: no variance estimate. Differences of a few points are within what another seed`,
    '  or another data order can change; only large, consistent gaps across the three flavors mean much.',
    `- \`best.safetensors\` is chosen on the same ${split} split that is reported, which flatters both models`,
    '  alike (a held-out choice would use testA/testB or test).',
    '- The same step budget is not the same compute: the two presets differ in parameters and',
    '  multiply-accumulates per step (`refseg inspect --config restr-tiny` / `shared-ris-tiny`); the wall',
    `  times above show the cost${parallel ? ', measured with the two runs of a flavor sharing the cores' : ''}.`,
    '- A short budget favours whichever model converges faster, not the better model at convergence.',
    '',
  );
  writeFileSync(v.out!, lines.join('\n'));
  console.log(
    `wrote ${v.out}: ${runs.length} runs${missing.length ? `, missing ${missing.join(', ')}` : ''}`,
  );
}

main();
