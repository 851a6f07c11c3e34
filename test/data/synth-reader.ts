// An INDEPENDENT reader of the synthetic benchmark for tests: it knows only what is on disk
// (instances.json attributes, RLE masks, refs sentences) and its own vocabulary and semantics,
// written here from spec/data.md §4 rather than imported from src/data/synth. Each sentence is
// parsed back to a meaning and evaluated against the scene; a generator that wrote an ambiguous
// or wrong sentence, or a word outside the language, fails here.
//
// Thresholds are deliberately looser than the generator's margins (gap 0.08 vs 0.10 of the
// side, "in front" from 5% vs 12% covered): an expression the generator accepted must still pick
// exactly its target under any reasonable reading, not just under the generator's own numbers.

import { decodeRle, type Rle } from '../../src/data/rle.js';

export interface ObjectInfo {
  annId: number;
  shape: string;
  color: string;
  size: string;
  pattern: string;
  cx: number;
  cy: number;
  /** ann id of an object below → share of its area this one visibly covers. */
  covers: Map<number, number>;
}

type Item =
  | { t: 'shape'; v: string }
  | { t: 'generic' }
  | { t: 'color' | 'size' | 'pattern' | 'loc' | 'rel'; v: string }
  | { t: 'count'; v: number }
  | { t: 'with' | 'it' | 'filler' };

const PHRASES = new Map<string, Item>();
function add(words: string[], item: Item): void {
  for (const w of words) PHRASES.set(w, item);
}
const shapes: Record<string, string[]> = {
  circle: ['circle', 'circles', 'disc', 'discs', 'round shape', 'round shapes'],
  square: ['square', 'squares', 'box', 'boxes', 'block', 'blocks'],
  triangle: ['triangle', 'triangles', 'triangular shape', 'triangular shapes'],
  star: ['star', 'stars', 'five pointed star', 'five pointed stars'],
  heart: ['heart', 'hearts', 'heart shape', 'heart shapes'],
  diamond: ['diamond', 'diamonds', 'rhombus', 'rhombuses', 'lozenge', 'lozenges'],
  hexagon: ['hexagon', 'hexagons', 'six sided shape', 'six sided shapes'],
  cross: ['cross', 'crosses', 'plus sign', 'plus signs'],
};
for (const [v, ws] of Object.entries(shapes)) add(ws, { t: 'shape', v });
add(['shape', 'shapes', 'object', 'objects', 'thing', 'things', 'one', 'ones'], { t: 'generic' });
for (const c of ['red', 'orange', 'yellow', 'green', 'cyan', 'blue', 'purple', 'pink'])
  add([c], { t: 'color', v: c });
add(['turquoise'], { t: 'color', v: 'cyan' });
add(['violet'], { t: 'color', v: 'purple' });
add(['small', 'little', 'tiny'], { t: 'size', v: 'small' });
add(['medium', 'medium sized', 'mid sized'], { t: 'size', v: 'medium' });
add(['large', 'big', 'huge'], { t: 'size', v: 'large' });
add(['plain', 'solid'], { t: 'pattern', v: 'plain' });
add(['striped', 'stripy', 'with stripes'], { t: 'pattern', v: 'striped' });
add(['dotted', 'spotted', 'polka dot', 'with dots', 'with spots'], { t: 'pattern', v: 'dotted' });
add(['left', 'leftmost'], { t: 'loc', v: 'left' });
add(['right', 'rightmost'], { t: 'loc', v: 'right' });
add(['top', 'topmost', 'upper', 'highest'], { t: 'loc', v: 'top' });
add(['bottom', 'bottommost', 'lower', 'lowest'], { t: 'loc', v: 'bottom' });
add(['middle', 'central', 'center'], { t: 'loc', v: 'middle' });
['two', 'three', 'four', 'five', 'six', 'seven'].forEach((w, i) => add([w], { t: 'count', v: i + 2 }));
add(['to the left of', 'left of', 'on the left side of'], { t: 'rel', v: 'leftOf' });
add(['to the right of', 'right of', 'on the right side of'], { t: 'rel', v: 'rightOf' });
add(['above'], { t: 'rel', v: 'above' });
add(['below', 'beneath'], { t: 'rel', v: 'below' });
add(['in front of', 'partly covering'], { t: 'rel', v: 'inFrontOf' });
add(['behind', 'partly hidden by', 'partly covered by'], { t: 'rel', v: 'behind' });
add(['with'], { t: 'with' });
add(['it'], { t: 'it' });
add(['the', 'a', 'that', 'is', 'which', 'located', 'of', 'on', 'at', 'in', 'side', 'and'], { t: 'filler' });

const INVERSE: Record<string, string> = {
  leftOf: 'rightOf',
  rightOf: 'leftOf',
  above: 'below',
  below: 'above',
  inFrontOf: 'behind',
  behind: 'inFrontOf',
};

/** The words of the phrases of one kind (and value), split on spaces, without "with" and "sized". */
export function wordsOfKind(kind: 'shape' | 'color' | 'size' | 'pattern' | 'loc', value?: string): string[] {
  const out = new Set<string>();
  for (const [phrase, item] of PHRASES)
    if (item.t === kind && (value === undefined || ('v' in item && item.v === value)))
      for (const w of phrase.split(' ')) if (w !== 'with' && w !== 'sized') out.add(w);
  return [...out].sort();
}

/** Every location or relation word (the refcoco+ ban list). */
export const SPATIAL_WORDS = new Set([
  'left',
  'right',
  'top',
  'bottom',
  'middle',
  'center',
  'centre',
  'central',
  'upper',
  'lower',
  'leftmost',
  'rightmost',
  'topmost',
  'bottommost',
  'highest',
  'lowest',
  'above',
  'below',
  'beneath',
  'under',
  'over',
  'behind',
  'front',
  'near',
  'next',
  'corner',
  'side',
  'between',
  'covering',
  'hidden',
  'covered',
  'beside',
]);

/** Longest-match tokenization into meaning items; throws on a word outside the language. */
export function lex(tokens: readonly string[]): Item[] {
  const out: Item[] = [];
  for (let i = 0; i < tokens.length;) {
    let found = false;
    for (let n = Math.min(5, tokens.length - i); n >= 1 && !found; n--) {
      const item = PHRASES.get(tokens.slice(i, i + n).join(' '));
      if (item) {
        out.push(item);
        i += n;
        found = true;
      }
    }
    if (!found) throw new Error(`unknown word '${tokens[i]}' in "${tokens.join(' ')}"`);
  }
  return out;
}

interface NP {
  attrs: Partial<Record<'shape' | 'color' | 'size' | 'pattern', string>>;
  loc?: string;
  count?: number;
}

function nounPhrase(items: Item[], sentence: string): NP {
  const np: NP = { attrs: {} };
  for (const it of items) {
    if (it.t === 'shape' || it.t === 'color' || it.t === 'size' || it.t === 'pattern') {
      if (np.attrs[it.t] !== undefined) throw new Error(`two ${it.t}s in "${sentence}"`);
      np.attrs[it.t] = it.v;
    } else if (it.t === 'loc') {
      if (np.loc) throw new Error(`two locations in "${sentence}"`);
      np.loc = it.v;
    } else if (it.t === 'count') np.count = it.v;
    else if (it.t !== 'generic' && it.t !== 'filler')
      throw new Error(`unexpected '${it.t}' in "${sentence}"`);
  }
  return np;
}

export interface Parsed {
  target: NP;
  relation?: { rel: string; landmark: NP };
}

export function parse(sentence: string): Parsed {
  const items = lex(sentence.split(' '));
  const rels = items.flatMap((it, i) => (it.t === 'rel' ? [i] : []));
  if (rels.length > 1) throw new Error(`two relations in "${sentence}"`);
  if (rels.length === 0) {
    if (items.some((it) => it.t === 'with' || it.t === 'it'))
      throw new Error(`stray with/it in "${sentence}"`);
    return { target: nounPhrase(items, sentence) };
  }
  const r = rels[0]!;
  const rel = (items[r] as { v: string }).v;
  const w = items.findIndex((it) => it.t === 'with');
  if (w >= 0 && w < r && items[items.length - 1]!.t === 'it' && r === items.length - 2) {
    // "the square with the star above it": the star is above the square.
    return {
      target: nounPhrase(items.slice(0, w), sentence),
      relation: { rel: INVERSE[rel]!, landmark: nounPhrase(items.slice(w + 1, r), sentence) },
    };
  }
  if (w >= 0) throw new Error(`unexpected 'with' in "${sentence}"`);
  return {
    target: nounPhrase(items.slice(0, r), sentence),
    relation: { rel, landmark: nounPhrase(items.slice(r + 1), sentence) },
  };
}

/** Visible centroids from the RLE masks, attributes from the annotation's synth block. */
export function objectsOf(annotations: readonly Record<string, any>[]): ObjectInfo[] {
  return annotations.map((a) => {
    const m = decodeRle(a.segmentation as Rle);
    let n = 0;
    let sx = 0;
    let sy = 0;
    for (let y = 0; y < m.height; y++) {
      for (let x = 0; x < m.width; x++) {
        if (m.data[y * m.width + x]) {
          n++;
          sx += x + 0.5;
          sy += y + 0.5;
        }
      }
    }
    return {
      annId: a.id,
      shape: a.synth.shape,
      color: a.synth.color,
      size: a.synth.size,
      pattern: a.synth.pattern,
      cx: sx / n,
      cy: sy / n,
      covers: new Map((a.synth.covers as [number, number][]).map(([id, f]) => [id, f])),
    };
  });
}

const GAP = 0.08;

function locate(objs: ObjectInfo[], loc: string, side: number): ObjectInfo[] {
  if (objs.length === 1) {
    const o = objs[0]!;
    const third = side / 3;
    const ok =
      loc === 'left'
        ? o.cx < third
        : loc === 'right'
          ? o.cx > 2 * third
          : loc === 'top'
            ? o.cy < third
            : loc === 'bottom'
              ? o.cy > 2 * third
              : o.cx >= third && o.cx <= 2 * third;
    return ok ? [o] : [];
  }
  const key = (o: ObjectInfo): number => (loc === 'top' || loc === 'bottom' ? o.cy : o.cx);
  const s = [...objs].sort((a, b) => key(a) - key(b));
  const gap = GAP * side;
  const n = s.length;
  if (n === 0) return [];
  if (loc === 'left' || loc === 'top') return key(s[1]!) - key(s[0]!) >= gap ? [s[0]!] : [];
  if (loc === 'right' || loc === 'bottom') return key(s[n - 1]!) - key(s[n - 2]!) >= gap ? [s[n - 1]!] : [];
  return n === 3 && key(s[1]!) - key(s[0]!) >= gap && key(s[2]!) - key(s[1]!) >= gap ? [s[1]!] : [];
}

function holds(rel: string, a: ObjectInfo, b: ObjectInfo, side: number): boolean {
  if (a === b) return false;
  if (rel === 'inFrontOf') return (a.covers.get(b.annId) ?? 0) >= 0.05;
  if (rel === 'behind') return (b.covers.get(a.annId) ?? 0) >= 0.05;
  const dx = a.cx - b.cx;
  const dy = a.cy - b.cy;
  const [along, across] =
    rel === 'leftOf'
      ? [-dx, Math.abs(dy)]
      : rel === 'rightOf'
        ? [dx, Math.abs(dy)]
        : rel === 'above'
          ? [-dy, Math.abs(dx)]
          : [dy, Math.abs(dx)];
  return along >= GAP * side && across <= along;
}

function evalNP(np: NP, objs: ObjectInfo[], side: number): ObjectInfo[] {
  const a = np.attrs;
  const matching = objs.filter(
    (o) =>
      (a.shape === undefined || o.shape === a.shape) &&
      (a.color === undefined || o.color === a.color) &&
      (a.size === undefined || o.size === a.size) &&
      (a.pattern === undefined || o.pattern === a.pattern),
  );
  if (np.count !== undefined && np.count !== matching.length) return [];
  return np.loc ? locate(matching, np.loc, side) : matching;
}

/** The ann ids a sentence denotes in a scene of side `side`. */
export function denote(sentence: string, objs: ObjectInfo[], side: number): number[] {
  const p = parse(sentence);
  const targets = evalNP(p.target, objs, side);
  if (!p.relation) return targets.map((o) => o.annId);
  const landmarks = evalNP(p.relation.landmark, objs, side);
  if (landmarks.length !== 1) return []; // "the yellow star" must itself be one object
  const l = landmarks[0]!;
  return targets.filter((o) => holds(p.relation!.rel, o, l, side)).map((o) => o.annId);
}
