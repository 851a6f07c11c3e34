// Checkpoint names and shapes (spec/restr.md §3): the parameters the traced model registers are
// exactly the list below, written from the spec's text, for every variant, with and without
// weight sharing and the decoder; plus the optimizer attributes (decay, lr group) of each.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parameterSpecs } from '../../src/models/build.js';
import { type RestrConfig, restrPreset } from '../../src/models/restr/config.js';
import { restrModel } from '../../src/models/restr/model.js';
import { microConfig } from './restr-helpers.js';

/** Spec §3, spelled out: name → shape. */
function expectedNames(c: RestrConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const block = (p: string, d: number, hidden: number) => {
    m.set(`${p}.norm1.weight`, [d]).set(`${p}.norm1.bias`, [d]);
    m.set(`${p}.attn.qkv.weight`, [3 * d, d]).set(`${p}.attn.qkv.bias`, [3 * d]);
    m.set(`${p}.attn.proj.weight`, [d, d]).set(`${p}.attn.proj.bias`, [d]);
    m.set(`${p}.norm2.weight`, [d]).set(`${p}.norm2.bias`, [d]);
    m.set(`${p}.mlp.fc1.weight`, [hidden, d]).set(`${p}.mlp.fc1.bias`, [hidden]);
    m.set(`${p}.mlp.fc2.weight`, [d, hidden]).set(`${p}.mlp.fc2.bias`, [d]);
  };
  const norm = (p: string, d: number) => m.set(`${p}.weight`, [d]).set(`${p}.bias`, [d]);
  const { vision: v, language: l, fusion: f, patchSize: P } = c;
  const nv = (c.imageSize / P) ** 2;
  m.set('vision.patch_embed.proj.weight', [v.dim, 3, P, P]).set('vision.patch_embed.proj.bias', [v.dim]);
  m.set('vision.pos_embed', [1, nv, v.dim]);
  for (let i = 0; i < v.depth; i++) block(`vision.blocks.${i}`, v.dim, v.mlpDim);
  norm('vision.norm', v.dim);
  m.set('language.embed.weight', [l.vocabSize, l.wordDim]);
  for (let i = 0; i < l.depth; i++) block(`language.blocks.${i}`, l.wordDim, l.mlpDim);
  norm('language.norm', l.wordDim);
  m.set('fusion.proj_v.weight', [f.dim, v.dim]).set('fusion.proj_v.bias', [f.dim]);
  m.set('fusion.proj_l.weight', [f.dim, l.wordDim]).set('fusion.proj_l.bias', [f.dim]);
  m.set('fusion.seed', [1, 1, f.dim]);
  const encoders: [string, number][] =
    f.variant === 'vme'
      ? [['fusion.vl', f.depth]]
      : [
          ['fusion.vl', f.depth / 2],
          ['fusion.ls', f.depth / 2],
        ];
  for (const [p, n] of encoders) {
    for (let i = 0; i < (f.share ? 1 : n); i++) block(`${p}.blocks.${i}`, f.dim, f.mlpDim);
    norm(`${p}.norm`, f.dim);
  }
  if (c.decoder) {
    let ch = 2 * f.dim;
    for (let k = 0; k < Math.log2(P); k++, ch /= 2) m.set(`decoder.blocks.${k}.proj.weight`, [ch / 2, ch]);
    m.set('decoder.head.weight', [1, ch]);
  }
  return m;
}

function registered(c: RestrConfig): Map<string, number[]> {
  return new Map(parameterSpecs(restrModel, c).map((s) => [s.name, [...s.shape]]));
}

const sorted = (m: Map<string, number[]>) => [...m].sort(([a], [b]) => (a < b ? -1 : 1));

test('restr-b16: names and shapes are spec §3 (286 tensors, timm ViT-B/16 names under vision.*)', () => {
  const c = restrPreset('restr-b16');
  const got = registered(c);
  assert.deepEqual(sorted(got), sorted(expectedNames(c)));
  assert.equal(got.size, 3 + 12 * 12 + 2 + (1 + 6 * 12 + 2) + (5 + 4 * 12 + 4) + 5);
  assert.deepEqual(got.get('vision.patch_embed.proj.weight'), [768, 3, 16, 16]);
  assert.deepEqual(got.get('vision.pos_embed'), [1, 900, 768]);
  assert.deepEqual(got.get('fusion.ls.blocks.1.attn.qkv.weight'), [2304, 768]);
  assert.deepEqual(got.get('language.blocks.5.mlp.fc1.weight'), [1200, 300]);
  assert.deepEqual(got.get('decoder.blocks.0.proj.weight'), [768, 1536]);
  assert.deepEqual(got.get('decoder.blocks.3.proj.weight'), [96, 192]);
  assert.deepEqual(got.get('decoder.head.weight'), [1, 96]);
});

test('restr-b16-shared (CME†): only blocks.0 in VL and LS', () => {
  const c = restrPreset('restr-b16-shared');
  const got = registered(c);
  assert.deepEqual(sorted(got), sorted(expectedNames(c)));
  const fusionBlocks = new Set(
    [...got.keys()]
      .filter((n) => /^fusion\.(vl|ls)\.blocks\./.test(n))
      .map((n) => n.split('.').slice(0, 4).join('.')),
  );
  assert.deepEqual([...fusionBlocks].sort(), ['fusion.ls.blocks.0', 'fusion.vl.blocks.0']);
});

for (const variant of ['cme', 'ime', 'vme'] as const) {
  for (const share of [false, true]) {
    for (const decoder of [true, false]) {
      test(`names per spec §3: ${variant}${share ? ' shared' : ''}, decoder ${decoder ? 'on' : 'off'}`, () => {
        const c = microConfig({ fusion: { variant, share, depth: 4 }, decoder });
        const got = registered(c);
        assert.deepEqual(sorted(got), sorted(expectedNames(c)));
        assert.equal(
          [...got.keys()].some((n) => n.startsWith('fusion.ls.')),
          variant !== 'vme',
          'fusion.ls.* exists for cme/ime only',
        );
        assert.equal(
          [...got.keys()].some((n) => n.startsWith('decoder.')),
          decoder,
        );
      });
    }
  }
}

test('optimizer attributes: decay for weight matrices only, learning-rate group per part', () => {
  const specs = parameterSpecs(restrModel, microConfig());
  for (const s of specs) {
    const noDecay = s.shape.length < 2 || s.name === 'vision.pos_embed' || s.name === 'fusion.seed';
    assert.equal(s.decay, !noDecay, `${s.name} decay`);
    assert.equal(s.group, s.name.split('.')[0], `${s.name} group`);
    assert.equal(s.buffer, undefined);
  }
  const init = new Map(specs.map((s) => [s.name, s.init.kind]));
  assert.equal(init.get('vision.blocks.0.attn.qkv.weight'), 'trunc_normal');
  assert.equal(init.get('vision.blocks.0.attn.qkv.bias'), 'zeros');
  assert.equal(init.get('vision.norm.weight'), 'ones');
  assert.equal(init.get('fusion.seed'), 'trunc_normal');
});
