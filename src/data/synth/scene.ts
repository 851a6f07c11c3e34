// Scenes of the synthetic benchmark (spec/data.md §4): objects on a textured background, their
// exact VISIBLE masks, and the RGB rendering.
//
// Objects are painted in z-order into a label map (0 = background, k+1 = object k); the visible
// mask of object k is `labels == k+1`, and the image is rendered from the same label map, so image
// and masks agree pixel for pixel. Placement is rejection sampling: a new object (always on top)
// is accepted only if every object below keeps ≥ 40% of its area and a minimum pixel count
// visible, so no referent is a sliver. Attributes are drawn so that most scenes hold distractors
// sharing the target's shape or colour (the expression, not saliency, must pick the object).
// Backgrounds are desaturated (noise, stripes, gradient) and objects saturated: finding objects is
// easy, telling them apart needs the language.

import { Rng } from '../random.js';
import type { Mask } from '../rle.js';
import {
  MAX_ROTATION,
  SHAPES,
  boundingRadius,
  rasterize,
  spansArea,
  type ShapeName,
  type Spans,
} from './shapes.js';

export type RGB = [number, number, number];

export const COLORS = {
  red: [215, 40, 40],
  orange: [245, 135, 25],
  yellow: [240, 215, 35],
  green: [45, 165, 65],
  cyan: [40, 200, 215],
  blue: [40, 85, 215],
  purple: [135, 60, 195],
  pink: [240, 120, 185],
} satisfies Record<string, RGB>;
export type ColorName = keyof typeof COLORS;
export const COLOR_NAMES = Object.keys(COLORS) as ColorName[];

export const SIZES = ['small', 'medium', 'large'] as const;
export type SizeName = (typeof SIZES)[number];
/** Equivalent radius (√(area/π)) as a fraction of the image side; 1.5× apart so classes never overlap. */
const SIZE_RADIUS: Record<SizeName, number> = { small: 0.08, medium: 0.115, large: 0.165 };
const SIZE_JITTER = 0.07;

export const PATTERNS = ['plain', 'striped', 'dotted'] as const;
export type PatternName = (typeof PATTERNS)[number];

export interface Attributes {
  shape: ShapeName;
  color: ColorName;
  size: SizeName;
  pattern: PatternName;
}

export interface SceneObject extends Attributes {
  /** Fill colour (the palette colour with a little brightness jitter) and the stripe/dot colour. */
  rgb: RGB;
  shade: RGB;
  cx: number;
  cy: number;
  rEq: number;
  angle: number;
  spans: Spans;
  fullArea: number;
  visibleArea: number;
  /** Centroid of the VISIBLE pixels (pixel centres): what location words are judged on. */
  centroid: [number, number];
  /** COCO [x, y, w, h] of the visible pixels. */
  bbox: [number, number, number, number];
  /** index of an object below → share of ITS full area where this object is what one sees. */
  covers: Map<number, number>;
}

export type BackgroundKind = 'noise' | 'stripes' | 'gradient';

export interface Background {
  kind: BackgroundKind;
  c1: RGB;
  c2: RGB;
  angle: number;
  /** stripes: band width as a share of the image side; noise: lattice cells per side. */
  scale: number;
  /** noise: lattice values, (scale+1)² per octave, two octaves. */
  lattice: number[];
}

export interface Scene {
  size: number;
  background: Background;
  objects: SceneObject[];
  /** Row-major label map: 0 background, k+1 = object k visible there. */
  labels: Uint8Array;
}

export interface ComposeOptions {
  size: number;
  minObjects: number;
  maxObjects: number;
  /** Probability that a new object copies an existing object's shape (new colour), colour (new shape), or both. */
  shareShape: number;
  shareColor: number;
  shareBoth: number;
  /** Probability that an object is striped or dotted rather than plain. */
  patternRate: number;
  /** Probability that a position is tried right next to an existing object (so it may overlap it). */
  overlapRate: number;
}

/** Visible area must stay ≥ this share of the full area... */
export const MIN_VISIBLE_FRACTION = 0.4;
/** ...and ≥ this many pixels (scaled with the image: 154 px at 320²). */
export function minVisiblePixels(size: number): number {
  return Math.max(12, Math.round(0.0015 * size * size));
}

function clampByte(v: number): number {
  return Math.max(0, Math.min(255, Math.round(v)));
}

function hsv(h: number, s: number, v: number): RGB {
  const f = (n: number): number => {
    const k = (n + h * 6) % 6;
    return clampByte(255 * (v - v * s * Math.max(0, Math.min(k, 4 - k, 1))));
  };
  return [f(5), f(3), f(1)];
}

function sampleBackground(rng: Rng): Background {
  const kind = rng.choice<BackgroundKind>(['noise', 'stripes', 'gradient']);
  // Desaturated, mid-brightness: objects (saturated) stand out, background never looks like a colour word.
  const hue = rng.next();
  const v1 = rng.float(0.35, 0.8);
  const v2 = Math.min(0.9, Math.max(0.25, v1 + rng.choice([-1, 1]) * rng.float(0.12, 0.3)));
  const c1 = hsv(hue, rng.float(0.03, 0.22), v1);
  const c2 = hsv((hue + rng.float(-0.08, 0.08) + 1) % 1, rng.float(0.03, 0.22), v2);
  const angle = rng.float(0, Math.PI);
  const scale = kind === 'noise' ? rng.int(3, 7) : kind === 'stripes' ? rng.float(0.04, 0.12) : 0;
  const lattice: number[] = [];
  if (kind === 'noise') {
    const n = (scale + 1) ** 2 + (2 * scale + 1) ** 2;
    for (let i = 0; i < n; i++) lattice.push(rng.next());
  }
  return { kind, c1, c2, angle, scale, lattice };
}

// The background is a blend weight t ∈ [0, 1] per pixel between c1 and c2. The loops live in
// top-level functions with plain arguments: captured variables would sit in a closure context
// that V8 reloads on every access, which made these loops 2–3× slower.
function gradientWeights(t: Float32Array, size: number, angle: number): void {
  const cos = Math.cos(angle) / (0.75 * size);
  const sin = Math.sin(angle) / (0.75 * size);
  const h = size / 2;
  for (let y = 0, i = 0; y < size; y++) {
    const dy = (y + 0.5 - h) * sin + 0.5;
    for (let x = 0; x < size; x++, i++) {
      const w = (x + 0.5 - h) * cos + dy;
      t[i] = w < 0 ? 0 : w > 1 ? 1 : w;
    }
  }
}

function stripeWeights(t: Float32Array, size: number, angle: number, band: number): void {
  const cos = Math.cos(angle) / band;
  const sin = Math.sin(angle) / band;
  const h = size / 2;
  for (let y = 0, i = 0; y < size; y++) {
    const dy = (y + 0.5 - h) * sin;
    for (let x = 0; x < size; x++, i++) t[i] = Math.floor((x + 0.5 - h) * cos + dy) & 1;
  }
}

/** Adds weight × value noise (smoothstep-bilinear over a cells×cells lattice at L[base..]). */
function addNoiseOctave(
  t: Float32Array,
  size: number,
  L: Float64Array,
  cells: number,
  base: number,
  weight: number,
): void {
  // Interpolation is separable: lattice index and weight per row/column are tabulated once.
  const i0 = new Int32Array(size);
  const f = new Float64Array(size);
  for (let x = 0; x < size; x++) {
    const u = ((x + 0.5) / size) * cells;
    const k = Math.min(cells - 1, Math.floor(u));
    const r = u - k;
    i0[x] = k;
    f[x] = r * r * (3 - 2 * r);
  }
  const stride = cells + 1;
  for (let y = 0, i = 0; y < size; y++) {
    const r0 = base + i0[y]! * stride;
    const r1 = r0 + stride;
    const fy = f[y]!;
    for (let x = 0; x < size; x++, i++) {
      const a = r0 + i0[x]!;
      const b = r1 + i0[x]!;
      const fx = f[x]!;
      const top = L[a]! + (L[a + 1]! - L[a]!) * fx;
      const bot = L[b]! + (L[b + 1]! - L[b]!) * fx;
      t[i] = t[i]! + weight * (top + (bot - top) * fy);
    }
  }
}

function blend(t: Float32Array, c1: RGB, c2: RGB, out: Uint8Array): void {
  const [r1, g1, b1] = c1;
  const dr = c2[0] - r1;
  const dg = c2[1] - g1;
  const db = c2[2] - b1;
  for (let i = 0, o = 0; i < t.length; i++, o += 3) {
    const w = t[i]!;
    // (v + 0.5) | 0 rounds (all values are in [0, 255]); integer stores are V8's fast path.
    out[o] = (r1 + dr * w + 0.5) | 0;
    out[o + 1] = (g1 + dg * w + 0.5) | 0;
    out[o + 2] = (b1 + db * w + 0.5) | 0;
  }
}

function renderBackground(bg: Background, size: number, out: Uint8Array): void {
  const t = new Float32Array(size * size);
  if (bg.kind === 'gradient') gradientWeights(t, size, bg.angle);
  else if (bg.kind === 'stripes') stripeWeights(t, size, bg.angle, bg.scale * size);
  else {
    // Two octaves: the coarse lattice (weight 0.7) and one at twice the rate (0.3).
    const L = Float64Array.from(bg.lattice);
    addNoiseOctave(t, size, L, bg.scale, 0, 0.7);
    addNoiseOctave(t, size, L, 2 * bg.scale, (bg.scale + 1) ** 2, 0.3);
  }
  blend(t, bg.c1, bg.c2, out);
}

function sampleAttributes(rng: Rng, placed: readonly Attributes[], opt: ComposeOptions): Attributes {
  const size = rng.weighted(SIZES, [0.36, 0.36, 0.28]);
  const pattern: PatternName = rng.bool(opt.patternRate)
    ? rng.choice(['striped', 'dotted'] as const)
    : 'plain';
  const r = rng.next();
  if (placed.length > 0 && r < opt.shareShape + opt.shareColor + opt.shareBoth) {
    const ref = rng.choice(placed);
    if (r < opt.shareShape) {
      return {
        shape: ref.shape,
        color: rng.choice(COLOR_NAMES.filter((c) => c !== ref.color)),
        size,
        pattern,
      };
    }
    if (r < opt.shareShape + opt.shareColor) {
      return { shape: rng.choice(SHAPES.filter((s) => s !== ref.shape)), color: ref.color, size, pattern };
    }
    return { shape: ref.shape, color: ref.color, size, pattern };
  }
  return { shape: rng.choice(SHAPES), color: rng.choice(COLOR_NAMES), size, pattern };
}

/**
 * Compose one scene. Objects that find no acceptable position in 40 tries are dropped; a scene
 * with fewer than `minObjects` is re-drawn (from the same stream, so still deterministic).
 */
export function composeScene(rng: Rng, opt: ComposeOptions): Scene {
  const S = opt.size;
  const minPixels = minVisiblePixels(S);
  if (opt.maxObjects > 255) throw new Error(`composeScene: at most 255 objects (the label map is 8-bit)`);
  for (let attempt = 0; ; attempt++) {
    if (attempt > 100)
      throw new Error(`composeScene: cannot place ${opt.minObjects} objects in a ${S}² image`);
    const background = sampleBackground(rng);
    const labels = new Uint8Array(S * S);
    const objects: SceneObject[] = [];
    const visible: number[] = [];
    const want = rng.int(opt.minObjects, opt.maxObjects);
    const hist = new Int32Array(256);
    for (let n = 0; n < want; n++) {
      const attrs = sampleAttributes(rng, objects, opt);
      const rEq = SIZE_RADIUS[attrs.size] * S * rng.float(1 - SIZE_JITTER, 1 + SIZE_JITTER);
      const angle = rng.float(-1, 1) * MAX_ROTATION[attrs.shape];
      const R = boundingRadius(attrs.shape, rEq);
      for (let tries = 0; tries < 40; tries++) {
        let cx = rng.float(R + 1, S - R - 1);
        let cy = rng.float(R + 1, S - R - 1);
        if (objects.length > 0 && rng.bool(opt.overlapRate)) {
          // Uniform positions rarely overlap; occlusion (and "in front of") needs this nudge.
          const q = rng.choice(objects);
          const d = (boundingRadius(q.shape, q.rEq) + R) * rng.float(0.5, 1);
          const a = rng.float(0, 2 * Math.PI);
          cx = Math.min(S - R - 1, Math.max(R + 1, q.cx + d * Math.cos(a)));
          cy = Math.min(S - R - 1, Math.max(R + 1, q.cy + d * Math.sin(a)));
        }
        const spans = rasterize(attrs.shape, cx, cy, rEq, angle, S, S);
        // How many pixels of each object below would this one hide?
        hist.fill(0, 0, objects.length + 1);
        forSpans(spans, S, (i) => hist[labels[i]!]!++);
        let ok = true;
        for (let k = 0; k < objects.length && ok; k++) {
          const left = visible[k]! - hist[k + 1]!;
          ok = left >= MIN_VISIBLE_FRACTION * objects[k]!.fullArea && left >= minPixels;
        }
        if (!ok) continue;
        for (let k = 0; k < objects.length; k++) visible[k] = visible[k]! - hist[k + 1]!;
        const label = objects.length + 1;
        forSpans(spans, S, (i) => (labels[i] = label));
        const fullArea = spansArea(spans);
        visible.push(fullArea);
        const jitter = rng.float(0.92, 1.06);
        const base = COLORS[attrs.color];
        const rgb: RGB = [
          clampByte(base[0] * jitter),
          clampByte(base[1] * jitter),
          clampByte(base[2] * jitter),
        ];
        const shade: RGB = [clampByte(rgb[0] * 0.62), clampByte(rgb[1] * 0.62), clampByte(rgb[2] * 0.62)];
        objects.push({
          ...attrs,
          rgb,
          shade,
          cx,
          cy,
          rEq,
          angle,
          spans,
          fullArea,
          visibleArea: 0,
          centroid: [0, 0],
          bbox: [0, 0, 0, 0],
          covers: new Map(),
        });
        break;
      }
    }
    if (objects.length < opt.minObjects) continue;
    // A shape smaller than the minimum even when fully visible (tiny images) cannot be referred to.
    if (objects.some((o) => o.fullArea < minPixels)) continue;
    const scene: Scene = { size: S, background, objects, labels };
    measure(scene);
    return scene;
  }
}

function forSpans(s: Spans, width: number, f: (i: number) => void): void {
  for (let j = 0; j < s.rows.length; j++) {
    const row = s.rows[j]!;
    const base = (s.y0 + j) * width;
    for (let i = 0; i < row.length; i += 2) for (let x = row[i]!; x < row[i + 1]!; x++) f(base + x);
  }
}

/** Fill visibleArea, centroid, bbox and covers from the final label map. */
function measure(scene: Scene): void {
  const { size: S, labels, objects } = scene;
  const n = objects.length;
  const area = new Float64Array(n + 1);
  const sx = new Float64Array(n + 1);
  const sy = new Float64Array(n + 1);
  const x0 = new Int32Array(n + 1).fill(S);
  const y0 = new Int32Array(n + 1).fill(S);
  const x1 = new Int32Array(n + 1).fill(-1);
  const y1 = new Int32Array(n + 1).fill(-1);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const l = labels[y * S + x]!;
      if (l === 0) continue;
      area[l]++;
      sx[l] += x + 0.5;
      sy[l] += y + 0.5;
      if (x < x0[l]!) x0[l] = x;
      if (x > x1[l]!) x1[l] = x;
      if (y < y0[l]!) y0[l] = y;
      if (y > y1[l]!) y1[l] = y;
    }
  }
  objects.forEach((o, k) => {
    const l = k + 1;
    o.visibleArea = area[l]!;
    o.centroid = [sx[l]! / area[l]!, sy[l]! / area[l]!];
    o.bbox = [x0[l]!, y0[l]!, x1[l]! - x0[l]! + 1, y1[l]! - y0[l]! + 1];
  });
  // Who is seen where each object's full shape lies: that is the visible evidence of "in front of".
  const seen = new Int32Array(n + 1);
  objects.forEach((below, k) => {
    seen.fill(0);
    forSpans(below.spans, S, (i) => seen[labels[i]!]!++);
    for (let j = k + 1; j < n; j++)
      if (seen[j + 1]! > 0) objects[j]!.covers.set(k, seen[j + 1]! / below.fullArea);
  });
}

/** Render the scene to RGB (row-major, 3 bytes per pixel) from the label map. */
export function renderScene(scene: Scene): Uint8Array {
  const S = scene.size;
  const out = new Uint8Array(S * S * 3);
  renderBackground(scene.background, S, out);
  scene.objects.forEach((o, k) => {
    const label = k + 1;
    // Stripes run diagonally in the object's own frame; dots sit on a lattice in that frame.
    const phi = o.angle + Math.PI / 4;
    const cos = Math.cos(phi);
    const sin = Math.sin(phi);
    const period = Math.max(4, o.rEq * 0.45);
    const spacing = Math.max(5, o.rEq * 0.55);
    const dotR2 = (0.3 * spacing) ** 2;
    const { spans } = o;
    for (let j = 0; j < spans.rows.length; j++) {
      const row = spans.rows[j]!;
      const y = spans.y0 + j;
      const py = y + 0.5 - o.cy;
      for (let s = 0; s < row.length; s += 2) {
        for (let x = row[s]!; x < row[s + 1]!; x++) {
          const i = y * S + x;
          if (scene.labels[i] !== label) continue; // hidden by an object above
          let dark = false;
          if (o.pattern !== 'plain') {
            const px = x + 0.5 - o.cx;
            const u = px * cos + py * sin;
            if (o.pattern === 'striped') {
              dark = (Math.floor(u / period) & 1) === 1;
            } else {
              const v = -px * sin + py * cos;
              const du = u - spacing * Math.round(u / spacing);
              const dv = v - spacing * Math.round(v / spacing);
              dark = du * du + dv * dv < dotR2;
            }
          }
          const c = dark ? o.shade : o.rgb;
          out[3 * i] = c[0];
          out[3 * i + 1] = c[1];
          out[3 * i + 2] = c[2];
        }
      }
    }
  });
  return out;
}

/** The visible mask of object k. */
export function visibleMask(scene: Scene, k: number): Mask {
  const S = scene.size;
  const data = new Uint8Array(S * S);
  const label = k + 1;
  for (let i = 0; i < data.length; i++) data[i] = scene.labels[i] === label ? 1 : 0;
  return { height: S, width: S, data };
}

/** A fresh generator for scene `index` of a dataset: scenes do not depend on each other. */
export function sceneRng(seed: number, flavor: string, index: number): Rng {
  return Rng.from('synth-scene', flavor, seed, index);
}
