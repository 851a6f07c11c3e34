// Meaning and uniqueness of referring expressions in a synthetic scene (spec/data.md §4: "every
// expression refers to exactly one object").
//
// Attributes are crisp (an object is red or not). Spatial words are three-valued: true, false or
// UNCLEAR, with margins, because a person cannot tell "left of" when two objects are nearly in a
// column. An expression is accepted only when it is TRUE of the target and FALSE (not merely
// "not true") of every other candidate, so an evaluator using any threshold inside the margins
// agrees. Location words pick an extreme among the objects matching the attributes ("the red
// circle on the left" = the leftmost red circle, which must beat the runner-up by a clear gap);
// with a single candidate they must also hold of the image (it really is in the left part).

import type { Rng } from '../random.js';
import type { Scene, SceneObject } from './scene.js';
import { realize, type Description, type Expression, type Loc, type Rel } from './language.js';

export type Grammar = 'location' | 'appearance' | 'relation';
export type Truth = 'true' | 'false' | 'unclear';

export const LOCS: readonly Loc[] = ['left', 'right', 'top', 'bottom', 'middle'];
export const RELS: readonly Rel[] = ['leftOf', 'rightOf', 'above', 'below', 'inFrontOf', 'behind'];

/** Clear separation between the chosen object and the runner-up, as a share of the image side. */
export const LOCATION_GAP = 0.1;
/** Below this a direction is clearly not the case (share of the image side). */
const FALSE_GAP = 0.04;
/** Share of the lower object's area the upper one must visibly cover to be "in front of" it. */
const COVER_TRUE = 0.12;
const COVER_FALSE = 0.02;

// Descriptions are bit sets over these attributes: bit i set = ATTRS[i] is named.
const ATTRS = ['size', 'pattern', 'color', 'shape'] as const;

/** The description of `o` naming the attributes in the bit set `mask` (bit i = ATTRS[i]). */
function describe(o: SceneObject, mask: number): Description {
  const d: Description = {};
  if (mask & 1) d.size = o.size;
  if (mask & 2) d.pattern = o.pattern;
  if (mask & 4) d.color = o.color;
  if (mask & 8) d.shape = o.shape;
  return d;
}

function count(mask: number): number {
  let n = 0;
  for (let i = 0; i < ATTRS.length; i++) if (mask & (1 << i)) n++;
  return n;
}

export function matches(o: SceneObject, d: Description): boolean {
  return (
    (d.shape === undefined || o.shape === d.shape) &&
    (d.color === undefined || o.color === d.color) &&
    (d.size === undefined || o.size === d.size) &&
    (d.pattern === undefined || o.pattern === d.pattern)
  );
}

export function matching(scene: Scene, d: Description): number[] {
  const out: number[] = [];
  scene.objects.forEach((o, i) => {
    if (matches(o, d)) out.push(i);
  });
  return out;
}

/** The object of `candidates` that `loc` clearly picks, or -1. */
export function locate(scene: Scene, loc: Loc, candidates: readonly number[]): number {
  const S = scene.size;
  const pos = (i: number): [number, number] => scene.objects[i]!.centroid;
  if (candidates.length === 0) return -1;
  if (candidates.length === 1) {
    const i = candidates[0]!;
    const [x, y] = pos(i);
    const ok =
      loc === 'left'
        ? x < 0.3 * S
        : loc === 'right'
          ? x > 0.7 * S
          : loc === 'top'
            ? y < 0.3 * S
            : loc === 'bottom'
              ? y > 0.7 * S
              : x > 0.38 * S && x < 0.62 * S;
    return ok ? i : -1;
  }
  const axis = loc === 'top' || loc === 'bottom' ? 1 : 0;
  const sorted = [...candidates].sort((a, b) => pos(a)[axis] - pos(b)[axis]);
  const at = (k: number): number => pos(sorted[k]!)[axis];
  const gap = LOCATION_GAP * S;
  const n = sorted.length;
  if (loc === 'left' || loc === 'top') return at(1) - at(0) >= gap ? sorted[0]! : -1;
  if (loc === 'right' || loc === 'bottom') return at(n - 1) - at(n - 2) >= gap ? sorted[n - 1]! : -1;
  // "middle" of exactly three, clearly apart; with more it would need counting.
  return n === 3 && at(1) - at(0) >= gap && at(2) - at(1) >= gap ? sorted[1]! : -1;
}

/** Is `rel(a, b)` ("a is <rel> b") true, false or unclear? */
export function relationTruth(scene: Scene, rel: Rel, a: number, b: number): Truth {
  if (a === b) return 'false';
  const A = scene.objects[a]!;
  const B = scene.objects[b]!;
  if (rel === 'inFrontOf' || rel === 'behind') {
    const [top, bottom] = rel === 'inFrontOf' ? [A, b] : [B, a];
    const f = top.covers.get(bottom) ?? 0;
    return f >= COVER_TRUE ? 'true' : f < COVER_FALSE ? 'false' : 'unclear';
  }
  // Along: how far a is in the named direction from b; across: the perpendicular offset.
  const [ax, ay] = A.centroid;
  const [bx, by] = B.centroid;
  const along =
    rel === 'leftOf' ? bx - ax : rel === 'rightOf' ? ax - bx : rel === 'above' ? by - ay : ay - by;
  const across = rel === 'leftOf' || rel === 'rightOf' ? Math.abs(ay - by) : Math.abs(ax - bx);
  const S = scene.size;
  if (along >= LOCATION_GAP * S && across <= 0.9 * along) return 'true';
  if (along < FALSE_GAP * S || across > 1.4 * along) return 'false';
  return 'unclear';
}

/**
 * Attribute subsets worth saying. "plain" and "medium sized" are only said next to a colour or
 * shape and when they are what tells the target apart (people say "the striped one", rarely "the
 * plain one" unprompted).
 */
function sayable(o: SceneObject, mask: number, unique: (m: number) => boolean): boolean {
  const named = (mask & 12) !== 0; // a colour or a shape: "the plain ones" alone reads oddly
  if (mask & 2 && o.pattern === 'plain' && (!named || unique(mask & ~2))) return false;
  if (mask & 1 && o.size === 'medium' && (!named || unique(mask & ~1))) return false;
  return true;
}

interface Candidate {
  weight: number;
  make: (rng: Rng) => Expression;
}

const APPEARANCE_WEIGHT = [0, 1, 1.2, 0.5, 0.15];
const LOCATION_WEIGHT = [0.6, 1.2, 1, 0.4, 0.1];
const TARGET_WEIGHT = [0, 0.6, 1.5, 1, 0.3];
const LANDMARK_WEIGHT = [0, 0.5, 1.5, 0.8, 0.2];

function appearanceCandidates(scene: Scene, t: number): Candidate[] {
  const o = scene.objects[t]!;
  const unique = (m: number): boolean => m !== 0 && matching(scene, describe(o, m)).length === 1;
  const out: Candidate[] = [];
  for (let m = 1; m < 16; m++) {
    if (!unique(m) || !sayable(o, m, unique)) continue;
    const target = describe(o, m);
    out.push({
      weight: APPEARANCE_WEIGHT[count(m)]! * (m & 8 ? 2 : 1),
      make: () => ({ kind: 'appearance', target }),
    });
  }
  return out;
}

function locationCandidates(scene: Scene, t: number): Candidate[] {
  const o = scene.objects[t]!;
  const out: Candidate[] = [];
  for (const loc of LOCS) {
    const picks = (m: number): boolean => locate(scene, loc, matching(scene, describe(o, m))) === t;
    for (let m = 0; m < 16; m++) {
      if (!picks(m) || !sayable(o, m, picks)) continue;
      const target = describe(o, m);
      const candidates = matching(scene, target).length;
      // Favour expressions where the location word is what disambiguates.
      const w =
        LOCATION_WEIGHT[count(m)]! *
        (candidates >= 2 ? 2 : 1) *
        (m & 8 ? 1.5 : 1) *
        (loc === 'middle' ? 0.7 : 1);
      out.push({ weight: w, make: () => ({ kind: 'location', target, loc, candidates }) });
    }
  }
  return out;
}

function relationCandidates(scene: Scene, t: number): Candidate[] {
  const o = scene.objects[t]!;
  const out: Candidate[] = [];
  const n = scene.objects.length;
  for (let l = 0; l < n; l++) {
    if (l === t) continue;
    const lo = scene.objects[l]!;
    const lUnique = (m: number): boolean => m !== 0 && matching(scene, describe(lo, m)).length === 1;
    // The landmark must be named by what it looks like (no nested relations), with a noun or colour.
    const landmarks: number[] = [];
    for (let m = 1; m < 16; m++) if (m & 12 && lUnique(m) && sayable(lo, m, lUnique)) landmarks.push(m);
    if (landmarks.length === 0) continue;
    for (const rel of RELS) {
      if (relationTruth(scene, rel, t, l) !== 'true') continue;
      const holds = (m: number): boolean =>
        m !== 0 &&
        matching(scene, describe(o, m)).every((c) => c === t || relationTruth(scene, rel, c, l) === 'false');
      for (let m = 1; m < 16; m++) {
        if (!(m & 12) || !holds(m) || !sayable(o, m, holds)) continue;
        const target = describe(o, m);
        const ambiguousAlone = matching(scene, target).length >= 2;
        const w =
          TARGET_WEIGHT[count(m)]! *
          (ambiguousAlone ? 3 : 1) *
          (rel === 'inFrontOf' || rel === 'behind' ? 1.5 : 1);
        out.push({
          weight: w,
          make: (rng) => {
            const lm = rng.weighted(
              landmarks,
              landmarks.map((k) => LANDMARK_WEIGHT[count(k)]!),
            );
            return { kind: 'relation', target, rel, landmark: describe(lo, lm) };
          },
        });
      }
    }
  }
  return out;
}

/** Every checked meaning that refers to object `t` alone, with sampling weights. */
function meanings(scene: Scene, t: number, grammar: Grammar): Candidate[] {
  switch (grammar) {
    case 'appearance':
      return appearanceCandidates(scene, t);
    case 'relation':
      return relationCandidates(scene, t);
    case 'location':
      // RefCOCO style: mostly location words, sometimes appearance alone.
      return [
        ...locationCandidates(scene, t),
        ...appearanceCandidates(scene, t).map((c) => ({ ...c, weight: 0.35 * c.weight })),
      ];
  }
}

export interface ReferringSentence {
  sentence: string;
  expression: Expression;
}

/** Up to `want` distinct sentences that refer to object `t` alone; [] when it cannot be referred to. */
export function referringSentences(
  scene: Scene,
  t: number,
  grammar: Grammar,
  want: number,
  rng: Rng,
): ReferringSentence[] {
  const cands = meanings(scene, t, grammar);
  if (cands.length === 0) return [];
  const weights = cands.map((c) => c.weight);
  const out: ReferringSentence[] = [];
  const seen = new Set<string>();
  for (let tries = 0; tries < 8 * want && out.length < want; tries++) {
    const k = rng.weighted(
      cands.map((_, i) => i),
      weights,
    );
    weights[k] = weights[k]! * 0.35; // spread the sentences over different meanings
    const expression = cands[k]!.make(rng);
    const sentence = realize(expression, rng);
    if (seen.has(sentence)) continue;
    seen.add(sentence);
    out.push({ sentence, expression });
  }
  return out;
}
