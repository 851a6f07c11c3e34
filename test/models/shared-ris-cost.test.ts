// Shared-RIS cost against the paper (spec/shared-ris.md §3 "Checks against the paper"; 480×480,
// random weights, vocabulary 64,010, T = 22; the paper's fvcore "FLOPs" are MACs). Only tracing.
//
// Ours beside the paper (shared-ris-b16):
//   part      params (paper)             MACs (paper)
//   encoder   221.52M                    94.63G
//   fpn         6.83M (8M, −14.6%)        9.78G (9G, +8.7%; the paper rounds: 9 ∈ [8.5, 9.5))
//   decoder     8.40M (9M, −6.7%; ∈ rounding ±5%)   46.25G (50G, −7.5%)
//   total     236.75M (239M, −0.9%)     150.66G (155G, −2.8%)
// The totals agree within ±5% (spec §3). Of the parts, the spec's design reproduces the paper's
// ablation increments (Table VIII(a): +3M / +4G per shared decoder layer, ours 3.15M / 3.78G;
// Table VII(a): 5 / 7 / 9 GFLOPs for 2 / 3 / 4 FPN stages, ours 4.89 / 7.33 / 9.78G) but not two
// absolute part counts: the FPN's parameters (ours 1.45M per stage + fuse, the paper's ≈ 2M per
// stage) and the decoder's MACs (the paper's "No Fusion" decoder costs 46G where the spec's two
// 3×3 convs cost 42.5G; a 512→512 per-pixel projection at S/4 would add the missing 3.8G). The paper
// gives no code; those two are asserted at their measured values as known departures.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type InspectReport, inspectModel } from '../../src/models/inspect.js';
import { type SharedRisConfig, sharedRisPreset } from '../../src/models/shared-ris/config.js';
import { sharedRisModel } from '../../src/models/shared-ris/model.js';

const row = (r: InspectReport, name: string) => {
  const x = r.rows.find((q) => q.name === name);
  assert.ok(x, `no row '${name}'`);
  return x;
};
const rel = (ours: number, paper: number) => (ours - paper) / paper;
function near(ours: number, paper: number, tol: number, what: string): void {
  const e = rel(ours, paper);
  assert.ok(
    Math.abs(e) <= tol,
    `${what}: ours ${ours.toExponential(4)}, paper ${paper.toExponential(4)} (${(e * 100).toFixed(2)}%, allowed ±${tol * 100}%)`,
  );
}
/** A number the paper prints rounded to an integer unit: ours within ±5% of its rounding interval. */
function roundedNear(ours: number, paper: number, unit: number, what: string): void {
  const [lo, hi] = [(paper - unit / 2) * 0.95, (paper + unit / 2) * 1.05];
  assert.ok(
    ours >= lo && ours <= hi,
    `${what}: ours ${ours.toExponential(4)}, paper ${paper} (±${unit / 2} rounding, ±5%)`,
  );
}

const b16 = (): SharedRisConfig => sharedRisPreset('shared-ris-b16');

test('closed forms at 480×480: every part is exactly the spec design (parts add up to the total)', () => {
  const c = b16();
  const r = inspectModel(sharedRisModel, c);
  const [n, T, P, D, F, L, V] = [900, 22, 16, 768, 3072, 12, 64010];
  const [dw, M, K] = [512, 2048, 4];
  const N = n + 1 + T;
  // encoder: patch embedding + L × (multiway q/k/v/out, FFN: N·D·(4D + 2F); joint QKᵀ and AV: 2N²D)
  assert.equal(row(r, 'encoder').macs, n * 3 * P * P * D + L * (N * D * (4 * D + 2 * F) + 2 * N * N * D));
  const layer = 2 * (4 * (D * D + D) + 2 * 2 * D + (F * D + F) + 2 * F + (D * F + D) + 2 * D);
  assert.equal(row(r, 'encoder').params, D * 3 * P * P + D + D + V * D + (n + 3) * D + 1024 * D + L * layer);
  // FPN: per stage proj D → dw, qkv, QKᵀ/AV, proj; fuse K·dw → dw
  const stageMacs = N * D * dw + N * dw * 3 * dw + 2 * N * N * dw + N * dw * dw;
  assert.equal(row(r, 'fpn').macs, K * stageMacs + N * K * dw * dw);
  const stageParams = D * dw + dw + 2 * dw + 3 * dw * dw + 3 * dw + dw * dw + dw;
  assert.equal(row(r, 'fpn').params, K * stageParams + K * dw * dw + dw);
  // decoder: the block; Conv3×3 at 60² and 120²; t' MLP on one token; F_2 · t' at 120²
  const blockMacs = N * dw * 3 * dw + 2 * N * N * dw + N * dw * dw + 2 * N * dw * M;
  const convMacs = (60 * 60 + 120 * 120) * dw * dw * 9;
  assert.equal(row(r, 'decoder').macs, blockMacs + convMacs + 2 * dw * dw + 120 * 120 * dw);
  const blockParams = 4 * dw + 3 * dw * dw + 3 * dw + dw * dw + dw + M * dw + M + dw * M + dw;
  assert.equal(row(r, 'decoder').params, blockParams + 2 * (9 * dw * dw + 2 * dw) + 2 * (dw * dw + dw));
  assert.equal(
    r.rows.reduce((a, q) => a + q.macs, 0),
    r.total.macs,
  );
  assert.equal(
    r.rows.reduce((a, q) => a + q.params, 0),
    r.total.params,
  );
  assert.ok(!r.rows.some((q) => q.name === 'other'), 'every parameter and MAC belongs to a part');
  assert.equal(r.wordEmbedding, V * D, 'the word table is BEiT-3 text_embed, 64,010 × 768');
});

test('Table VI: Shared-RIS totals 239M parameters and 155 GFLOPs at 480×480 (±5%)', () => {
  const r = inspectModel(sharedRisModel, b16());
  near(r.total.params, 239e6, 0.05, 'total parameters (with BEiT-3 text table)'); // ours 236.75M, −0.9%
  near(r.total.macs, 155e9, 0.05, 'total MACs'); // ours 150.66G, −2.8%
});

test('Tables IV, V, VII(a), VIII(a): shared FPN and shared decoder beside the paper', () => {
  const r = inspectModel(sharedRisModel, b16());
  const [fpn, dec] = [row(r, 'fpn'), row(r, 'decoder')];
  roundedNear(fpn.macs, 9e9, 1e9, 'Table IV FPN MACs'); // 9.78G
  roundedNear(dec.params, 9e6, 1e6, 'Table V decoder parameters'); // 8.40M
  // Table VIII(a): each shared decoder layer adds 3M parameters and 4 GFLOPs; ours (the block alone):
  const N = 923;
  const blockParams = 4 * 512 + 4 * (512 * 512 + 512) + 2 * 512 * 2048 + 2048 + 512;
  const blockMacs = N * 512 * 4 * 512 + 2 * N * N * 512 + 2 * N * 512 * 2048;
  roundedNear(blockParams, 3e6, 1e6, 'Table VIII(a) per decoder layer, parameters'); // 3.15M
  roundedNear(blockMacs, 4e9, 1e9, 'Table VIII(a) per decoder layer, MACs'); // 3.78G
  // Table VII(a): the FPN over 2, 3, 4 stages costs 5, 7, 9 GFLOPs
  for (const [stages, paper] of [
    [[6, 12], 5e9],
    [[4, 8, 12], 7e9],
  ] as const) {
    const c = b16();
    c.fpn.stages = [...stages];
    roundedNear(
      row(inspectModel(sharedRisModel, c), 'fpn').macs,
      paper,
      1e9,
      `Table VII(a) FPN {${stages}} MACs`,
    );
  }
  // Known departures (see the header): FPN parameters −14.6% (8M), decoder MACs −7.5% (50G).
  assert.ok(Math.abs(rel(fpn.params, 8e6) - -0.146) < 0.002, `FPN parameters ${fpn.params}`);
  assert.ok(Math.abs(rel(dec.macs, 50e9) - -0.075) < 0.002, `decoder MACs ${dec.macs}`);
});

test('inspect: the paper numbers come only with the paper configuration; the tiny preset costs about restr-tiny', () => {
  const r = inspectModel(sharedRisModel, b16());
  assert.deepEqual(r.paper.map((p) => `${p.row} ${p.source}`).sort(), [
    'decoder Table V Shared Decoder',
    'decoder Table V Shared Decoder',
    'fpn Table IV Shared FPN',
    'fpn Table IV Shared FPN',
    'total Table VI Shared-RIS',
    'total Table VI Shared-RIS',
  ]);
  assert.equal(r.paper.find((p) => p.row === 'total' && p.params)!.withWordTable, true);
  const tiny = inspectModel(sharedRisModel, sharedRisPreset('shared-ris-tiny'));
  assert.deepEqual(tiny.paper, []);
  assert.ok(tiny.total.macs > 0.1e9 && tiny.total.macs < 0.2e9, `shared-ris-tiny ${tiny.total.macs} MACs`);
  // --image-size resamples the vision position table: 20×20 patches at 320
  assert.equal(
    row(inspectModel(sharedRisModel, b16(), 320), 'encoder').params,
    row(r, 'encoder').params - (900 - 400) * 768,
  );
});
