// Pretrained ViT import onto ReSTR's vision encoder (spec/restr.md §3, spec/data.md §3).
//
// ReSTR's `vision.*` names are timm's VisionTransformer names under a prefix, so a timm checkpoint
// maps by name: `patch_embed.proj.{weight,bias}` [D,3,P,P], `blocks.N.*`, `norm.*`, `pos_embed`.
// Three file formats are read, each with the reader of src/io:
// - safetensors (the Hugging Face hub's `timm/<model>/model.safetensors`);
// - PyTorch `.pth`/`.bin` (torch.save zip; allow-listed pickle). The state dict is the top level,
//   or under `model` (DeiT, unilm) or `state_dict` (training checkpoints); a `module.` prefix on
//   every key (DistributedDataParallel) is removed;
// - Google's `.npz` (the original ViT and "How to train your ViT" augreg releases), converted to
//   timm names exactly as timm's `_load_weights` does, see `googleToTimm`.
// Then, as timm's checkpoint_filter_fn + resample_abs_pos_embed do for another image size: the
// class token (and register / distillation tokens) and their rows of `pos_embed` are dropped (ReSTR
// has no class token), and the remaining g×g position grid is resampled bicubically to the model's
// G×G grid (torch F.interpolate mode='bicubic', align_corners=False, antialias=False: A = −0.75,
// clamped borders; the same routine as the BEiT-3 import). Note timm's npz loader itself resamples
// bilinearly and its state-dict filter antialiases when shrinking; upsampling (224/384 → 480, the
// paper's case) is identical either way, and we use one rule for every format.
// Classifier parts (`head.*`, `fc_norm.*`, `pre_logits.*`, `attn_pool.*`, `head_dist.*`) are
// ignored; any other tensor the ViT has and ReSTR lacks (layer scale, q/k norm, norm_pre, ...) is
// refused, because importing without it would silently change the network. The attention head
// count is not recorded in the weights: vision.heads must match the checkpoint's model (12 for
// ViT-B), which this import cannot check.

import * as fs from 'node:fs';
import { withFileSource } from '../io/bytes.js';
import { loadNpz } from '../io/npz.js';
import { loadSafetensors } from '../io/safetensors.js';
import { type IoTensor, bytesOf, floatDataAsF32, gatherStrided } from '../io/tensor.js';
import { TorchTensor, readTorchObject } from '../io/torch.js';
import { ZipReader } from '../io/zip.js';
import { buildInference } from './build.js';
import { type RestrConfig, gridSize } from './restr/config.js';
import { restrModel } from './restr/model.js';
import { resampleGridBicubic } from './shared-ris/import.js';

export class VitImportError extends Error {
  override name = 'VitImportError';
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(`${source}: ${message}`);
  }
}

export type VitFormat = 'safetensors' | 'torch' | 'npz';

/** A checkpoint as timm-named tensors. */
export interface TimmState {
  format: VitFormat;
  tensors: Map<string, IoTensor>;
  /** How the file held the state dict, when not plainly (e.g. "under key 'model'"). */
  note?: string;
}

export interface VitImport {
  /** Every `vision.*` parameter of the config, float32. */
  params: Map<string, Float32Array>;
  /** Checkpoint tensors not imported (classifier head, class token, ...), in file order. */
  skipped: string[];
  /** Rows of the checkpoint's pos_embed before its grid (class / register tokens), dropped. */
  prefixTokens: number;
  /** Patches per side of the checkpoint's position grid and of the model's, when they differ. */
  resampled?: { from: number; to: number };
}

/** Checkpoint tensors that belong to the classifier or to the prefix tokens: not imported. */
const IGNORED: readonly RegExp[] = [
  /^head\./,
  /^head_dist\./,
  /^fc_norm\./,
  /^pre_logits\./,
  /^attn_pool\./,
  /^(cls_token|reg_token|dist_token)$/,
];

const shapeStr = (s: readonly number[]) => `[${s.join(',')}]`;

function toFloat32(t: IoTensor, name: string, source: string): Float32Array {
  const data = floatDataAsF32(t);
  if (!data)
    throw new VitImportError(source, `tensor '${name}' is ${t.dtype}, expected a floating-point type`);
  return data;
}

/** `data` of `shape` with its axes permuted (out axis i = in axis perm[i]), in C order. */
function permute(data: Float32Array, shape: readonly number[], perm: readonly number[]): Float32Array {
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const out = gatherStrided(
    bytesOf(data),
    4,
    0,
    perm.map((p) => shape[p]!),
    perm.map((p) => strides[p]!),
  );
  return new Float32Array(out.buffer, out.byteOffset, out.length / 4);
}

// ---------------------------------------------------------------------------------------------
// Reading the three formats

/**
 * Google's ViT `.npz` → timm names, following timm's `_load_weights` (vision_transformer.py) for
 * the classic layout: optional `opt/target/` prefix (original ViT releases, which also carry
 * optimizer state outside it), `embedding/kernel` [P,P,3,D] (HWIO → OIHW), `cls` [1,1,D],
 * `Transformer/posembed_input/pos_embedding`, per block `Transformer/encoderblock_N/`
 * {`LayerNorm_0` → norm1, `MultiHeadDotProductAttention_1/{query,key,value}` kernels [D,H,Dh]
 * → rows of qkv.weight [3D,D] and biases [H,Dh] → qkv.bias, `out/kernel` [H,Dh,D] → proj.weight
 * [D,D], `LayerNorm_2` → norm2, `MlpBlock_3/Dense_{0,1}` kernels [in,out] → fc{1,2}.weight
 * [out,in]}, `Transformer/encoder_norm` → norm, `head` and `pre_logits` (classifier). LayerNorm
 * `scale` is timm's `weight`. big_vision's layout (`params/` prefix, stacked `encoderblock/`,
 * top-level `pos_embedding`; SigLIP-era checkpoints) is refused: convert it with timm.
 */
export function googleToTimm(w: ReadonlyMap<string, IoTensor>, source: string): Map<string, IoTensor> {
  const bigVision = ['params/embedding/kernel', 'params/img/embedding/kernel', 'pos_embedding'].some((k) =>
    w.has(k),
  );
  if (
    bigVision ||
    w.has('Transformer/encoderblock/LayerNorm_0/scale') ||
    w.has('opt/target/Transformer/encoderblock/LayerNorm_0/scale')
  )
    throw new VitImportError(
      source,
      "big_vision's .npz layout (params/ prefix, stacked encoderblock, top-level pos_embedding) is not supported: load it with timm and save model.state_dict() as safetensors",
    );
  const prefix = w.has('embedding/kernel') ? '' : w.has('opt/target/embedding/kernel') ? 'opt/target/' : null;
  if (prefix === null) {
    const some = [...w.keys()].slice(0, 5).join(', ');
    throw new VitImportError(
      source,
      `not a Google ViT .npz: no 'embedding/kernel' array (it holds: ${some}${w.size > 5 ? ', ...' : ''})`,
    );
  }
  const used = new Set<string>();
  const get = (name: string, rank: number): { data: Float32Array; shape: readonly number[] } => {
    const key = prefix + name;
    const t = w.get(key);
    if (!t) throw new VitImportError(source, `array '${key}' is missing`);
    if (t.shape.length !== rank)
      throw new VitImportError(source, `array '${key}' is ${shapeStr(t.shape)}, expected ${rank} dimensions`);
    used.add(key);
    return { data: toFloat32(t, key, source), shape: t.shape };
  };
  const out = new Map<string, IoTensor>();
  const put = (name: string, shape: readonly number[], data: Float32Array) =>
    out.set(name, { dtype: 'float32', shape: [...shape], data });
  const same = (name: string, from: string, rank: number) => {
    const t = get(from, rank);
    put(name, t.shape, t.data);
  };
  /** A Dense kernel [in, out] → a Linear weight [out, in]. */
  const linear = (name: string, from: string) => {
    const t = get(from, 2);
    put(name, [t.shape[1]!, t.shape[0]!], permute(t.data, t.shape, [1, 0]));
  };

  if (w.has(prefix + 'cls')) same('cls_token', 'cls', 3);
  same('pos_embed', 'Transformer/posembed_input/pos_embedding', 3);
  const k = get('embedding/kernel', 4); // [P, P, C, D] → [D, C, P, P]
  put(
    'patch_embed.proj.weight',
    [3, 2, 0, 1].map((p) => k.shape[p]!),
    permute(k.data, k.shape, [3, 2, 0, 1]),
  );
  same('patch_embed.proj.bias', 'embedding/bias', 1);

  for (let i = 0; w.has(`${prefix}Transformer/encoderblock_${i}/LayerNorm_0/scale`); i++) {
    const g = `Transformer/encoderblock_${i}/`;
    const mha = `${g}MultiHeadDotProductAttention_1/`;
    const b = `blocks.${i}.`;
    same(b + 'norm1.weight', g + 'LayerNorm_0/scale', 1);
    same(b + 'norm1.bias', g + 'LayerNorm_0/bias', 1);
    // q, k, v kernels [D, H, Dh] → each [H·Dh, D] (flatten(1).T), stacked as rows q; k; v.
    const qkv = (['query', 'key', 'value'] as const).map((n) => get(`${mha}${n}/kernel`, 3));
    const [din, heads, hd] = qkv[0]!.shape as [number, number, number];
    if (qkv.some((t) => shapeStr(t.shape) !== shapeStr(qkv[0]!.shape)))
      throw new VitImportError(source, `${prefix}${mha}{query,key,value}/kernel differ in shape`);
    const qkvW = new Float32Array(3 * heads * hd * din);
    qkv.forEach((t, j) => qkvW.set(permute(t.data, [din, heads * hd], [1, 0]), j * heads * hd * din));
    put(b + 'attn.qkv.weight', [3 * heads * hd, din], qkvW);
    const qkvB = new Float32Array(3 * heads * hd);
    (['query', 'key', 'value'] as const).forEach((n, j) => {
      const bias = get(`${mha}${n}/bias`, 2); // [H, Dh]
      if (bias.shape[0] !== heads || bias.shape[1] !== hd)
        throw new VitImportError(
          source,
          `array '${prefix}${mha}${n}/bias' is ${shapeStr(bias.shape)}, expected [${heads},${hd}]`,
        );
      qkvB.set(bias.data, j * heads * hd);
    });
    put(b + 'attn.qkv.bias', [3 * heads * hd], qkvB);
    // out kernel [H, Dh, D] → transpose (2, 0, 1) → [D, H, Dh] → flatten(1) → [D, H·Dh].
    const o = get(`${mha}out/kernel`, 3);
    put(
      b + 'attn.proj.weight',
      [o.shape[2]!, o.shape[0]! * o.shape[1]!],
      permute(o.data, o.shape, [2, 0, 1]),
    );
    same(b + 'attn.proj.bias', `${mha}out/bias`, 1);
    same(b + 'norm2.weight', g + 'LayerNorm_2/scale', 1);
    same(b + 'norm2.bias', g + 'LayerNorm_2/bias', 1);
    for (const r of [0, 1]) {
      linear(`${b}mlp.fc${r + 1}.weight`, `${g}MlpBlock_3/Dense_${r}/kernel`);
      same(`${b}mlp.fc${r + 1}.bias`, `${g}MlpBlock_3/Dense_${r}/bias`, 1);
    }
  }
  same('norm.weight', 'Transformer/encoder_norm/scale', 1);
  same('norm.bias', 'Transformer/encoder_norm/bias', 1);
  // Classifier parts, kept under their timm names so that they are reported as skipped.
  for (const [name, from] of [
    ['head', 'head'],
    ['pre_logits.fc', 'pre_logits'],
  ] as const) {
    if (w.has(`${prefix}${from}/kernel`)) linear(`${name}.weight`, `${from}/kernel`);
    if (w.has(`${prefix}${from}/bias`)) same(`${name}.bias`, `${from}/bias`, 1);
  }
  // Anything else inside the model's namespace is a part a plain ViT does not have.
  for (const key of w.keys()) {
    if (key.startsWith(prefix) && !used.has(key))
      throw new VitImportError(
        source,
        `unexpected array '${key}' (not part of a plain ViT, so ReSTR has no place for it)`,
      );
  }
  return out;
}

/** The state dict inside a torch.save object: top level, or under 'model' / 'state_dict'. */
function torchStateDict(obj: unknown, source: string): { tensors: Map<string, IoTensor>; note?: string } {
  let dict = obj;
  let note: string | undefined;
  if (dict instanceof Map) {
    for (const key of ['model', 'state_dict']) {
      if (dict.get(key) instanceof Map) {
        dict = dict.get(key);
        note = `state dict under key '${key}'`;
        break;
      }
    }
  }
  if (!(dict instanceof Map)) throw new VitImportError(source, 'expected a state dict (a dict of tensors)');
  const tensors = new Map<string, IoTensor>();
  for (const [k, v] of dict) {
    if (typeof k !== 'string' || !(v instanceof TorchTensor))
      throw new VitImportError(
        source,
        `entry ${JSON.stringify(String(k))} of the ${note ?? 'top-level dict'} is not a tensor (not a state dict)`,
      );
    tensors.set(k, v);
  }
  return { tensors, ...(note ? { note } : {}) };
}

/**
 * Reads a ViT checkpoint in any of the three formats (told apart by content, not by extension):
 * a zip holding `<archive>/data.pkl` is a torch.save file, a zip of `.npy` entries an npz, a
 * pickle (0x80) a legacy torch file (refused by the reader with a hint), a file whose 9th byte
 * opens the JSON header ('{') safetensors.
 */
export function readVitCheckpoint(path: string): TimmState {
  const magic = Buffer.alloc(9);
  const fd = fs.openSync(path, 'r');
  try {
    fs.readSync(fd, magic, 0, 9, 0);
  } finally {
    fs.closeSync(fd);
  }
  let state: TimmState;
  if (magic[0] === 0x50 && magic[1] === 0x4b) {
    const names = withFileSource(path, (src) => ZipReader.open(src, { source: path }).names());
    if (names.some((n) => /^[^/]+\/data\.pkl$/.test(n))) {
      const r = torchStateDict(
        withFileSource(path, (src) => readTorchObject(src, { source: path })),
        path,
      );
      state = { format: 'torch', ...r };
    } else if (names.length > 0 && names.every((n) => n.endsWith('.npy'))) {
      state = { format: 'npz', tensors: googleToTimm(loadNpz(path), path) };
    } else {
      throw new VitImportError(path, 'a zip archive that is neither a torch.save checkpoint nor an .npz');
    }
  } else if (magic[0] === 0x80) {
    state = {
      format: 'torch',
      ...torchStateDict(
        withFileSource(path, (src) => readTorchObject(src, { source: path })),
        path,
      ),
    };
  } else if (magic[8] === 0x7b) {
    // safetensors: u64 header length, then the JSON header's '{'
    state = { format: 'safetensors', tensors: loadSafetensors(path).tensors };
  } else {
    throw new VitImportError(
      path,
      'not a ViT checkpoint: neither a zip (torch .pth, Google .npz) nor safetensors',
    );
  }
  // DistributedDataParallel saves every key as `module.<name>`.
  const keys = [...state.tensors.keys()];
  if (keys.length > 0 && keys.every((k) => k.startsWith('module.'))) {
    state.tensors = new Map([...state.tensors].map(([k, v]) => [k.slice('module.'.length), v]));
    state.note = [state.note, "'module.' prefix removed"].filter(Boolean).join(', ');
  }
  return state;
}

// ---------------------------------------------------------------------------------------------
// Mapping onto ReSTR

/** Where to change the config when a checkpoint tensor's shape says it is another configuration. */
function hint(name: string): string {
  if (/mlp\.fc[12]\./.test(name)) return ' (set vision.mlpDim to the checkpoint MLP width)';
  return ' (vision.dim differs from the checkpoint width)';
}

/**
 * Maps a timm-named ViT state dict onto the `vision.*` parameters of `c` (see the file header).
 * Shapes are checked against the config with errors that name the tensor and the config field.
 */
export function importVit(
  state: ReadonlyMap<string, IoTensor>,
  c: RestrConfig,
  source = '<vit checkpoint>',
): VitImport {
  function fail(msg: string): never {
    throw new VitImportError(source, msg);
  }
  const specs = [...buildInference(restrModel, c, 1).registry.specs.values()].filter((s) =>
    s.name.startsWith('vision.'),
  );
  const wanted = new Set(specs.map((s) => s.name.slice('vision.'.length)));

  // The patch embedding fixes patch size, channels and width: check it first for clear messages.
  const pe = state.get('patch_embed.proj.weight');
  if (!pe) fail(`tensor 'patch_embed.proj.weight' is missing (not a timm ViT state dict?)`);
  if (pe.shape.length !== 4) fail(`'patch_embed.proj.weight' is ${shapeStr(pe.shape)}, expected [D,3,P,P]`);
  const [width, chans, ph, pw] = pe.shape;
  if (ph !== pw || ph !== c.patchSize)
    fail(
      `the checkpoint's patch size is ${ph}×${pw} ('patch_embed.proj.weight' ${shapeStr(pe.shape)}), the config's patchSize is ${c.patchSize}: use a /${c.patchSize} ViT or change patchSize`,
    );
  if (chans !== 3) fail(`'patch_embed.proj.weight' takes ${chans} input channels, expected 3 (RGB)`);
  if (width !== c.vision.dim)
    fail(
      `the checkpoint's width is ${width} ('patch_embed.proj.weight' ${shapeStr(pe.shape)}), the config's vision.dim is ${c.vision.dim}`,
    );
  const depth =
    1 + Math.max(-1, ...[...state.keys()].map((k) => Number(/^blocks\.(\d+)\./.exec(k)?.[1] ?? -1)));
  if (depth !== c.vision.depth)
    fail(`the checkpoint has ${depth} blocks, the config's vision.depth is ${c.vision.depth}`);

  const skipped: string[] = [];
  for (const k of state.keys()) {
    if (wanted.has(k)) continue;
    if (IGNORED.some((re) => re.test(k))) skipped.push(k);
    else
      fail(
        `unexpected tensor '${k}' ${shapeStr(state.get(k)!.shape)} (not part of a plain ViT, so ReSTR's vision encoder has no place for it)`,
      );
  }

  const params = new Map<string, Float32Array>();
  let prefixTokens = 0;
  let resampled: VitImport['resampled'];
  for (const s of specs) {
    const key = s.name.slice('vision.'.length);
    const t = state.get(key);
    if (!t)
      return fail(
        `tensor '${key}' ${shapeStr(s.shape)} is missing${key.startsWith('norm.') && state.has('fc_norm.weight') ? " (this checkpoint's final LayerNorm is fc_norm, applied after pooling: not a per-token ViT output)" : ''}`,
      );
    const data = toFloat32(t, key, source);
    const bad = data.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) fail(`tensor '${key}' has a non-finite value at index ${bad}`);
    if (key === 'pos_embed') {
      const r = posEmbedGrid(t.shape, data, state, c, source);
      params.set(s.name, r.grid);
      prefixTokens = r.prefixTokens;
      if (r.from !== r.to) resampled = { from: r.from, to: r.to };
      continue;
    }
    if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i]))
      fail(`tensor '${key}' is ${shapeStr(t.shape)}, the config needs ${shapeStr(s.shape)}${hint(key)}`);
    params.set(s.name, data);
  }
  return { params, skipped, prefixTokens, ...(resampled ? { resampled } : {}) };
}

/**
 * pos_embed [1, T, D] → the model's [1, G·G, D]: drop the prefix-token rows, resample the grid.
 * Prefix rows: one per class / distillation token and one per register token, unless T is a
 * square (timm's no_embed_class models, e.g. DeiT-3 and register ViTs, keep prefix tokens out of
 * pos_embed).
 */
function posEmbedGrid(
  shape: readonly number[],
  data: Float32Array,
  state: ReadonlyMap<string, IoTensor>,
  c: RestrConfig,
  source: string,
): { grid: Float32Array; prefixTokens: number; from: number; to: number } {
  const D = c.vision.dim;
  if (shape.length !== 3 || shape[0] !== 1 || shape[2] !== D)
    throw new VitImportError(source, `tensor 'pos_embed' is ${shapeStr(shape)}, expected [1,T,${D}]`);
  const T = shape[1]!;
  const tokens =
    (state.has('cls_token') ? 1 : 0) +
    (state.has('dist_token') ? 1 : 0) +
    (state.get('reg_token')?.shape[1] ?? 0);
  const isSquare = (n: number) => n >= 1 && Math.round(Math.sqrt(n)) ** 2 === n;
  const prefixTokens = isSquare(T - tokens) ? tokens : isSquare(T) ? 0 : -1;
  if (prefixTokens < 0)
    throw new VitImportError(
      source,
      `tensor 'pos_embed' has ${T} rows: neither ${tokens} prefix token${tokens === 1 ? '' : 's'} + a square grid nor a square grid`,
    );
  const g = Math.round(Math.sqrt(T - prefixTokens));
  const G = gridSize(c);
  const grid = data.subarray(prefixTokens * D);
  return {
    grid: g === G ? Float32Array.from(grid) : resampleGridBicubic(grid, g, G, D),
    prefixTokens,
    from: g,
    to: G,
  };
}

/** Reads a ViT checkpoint file and imports it for `c`. */
export function loadVitForRestr(
  path: string,
  c: RestrConfig,
): VitImport & { format: VitFormat; note?: string } {
  const state = readVitCheckpoint(path);
  return {
    ...importVit(state.tensors, c, path),
    format: state.format,
    ...(state.note ? { note: state.note } : {}),
  };
}
