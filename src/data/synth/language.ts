// Surface realization of referring expressions for the synthetic benchmark (spec/data.md §4).
//
// An expression is first chosen as MEANING (`Expression`: attributes of the target, optionally a
// location word or a relation to a landmark) and checked for uniqueness against the scene
// (expressions.ts); only then is it put into words here. Keeping meaning and words apart is what
// lets one checked meaning come out as many sentences: synonyms ("circle", "disc", "round
// shape"), terse RefCOCO-style phrases ("left red circle") or full ones ("the circle that is
// small and red"), location before or after the noun, relation clauses in either direction ("the
// square below the star" / "the square with the star above it"). Word weights make the first
// synonym the most common, as in human data. Every word a sentence can contain is in the tables
// below; tests parse sentences back with their own vocabulary to check this.

import type { Rng } from '../random.js';
import type { ColorName, PatternName, SizeName } from './scene.js';
import type { ShapeName } from './shapes.js';

export type Loc = 'left' | 'right' | 'top' | 'bottom' | 'middle';
export type Rel = 'leftOf' | 'rightOf' | 'above' | 'below' | 'inFrontOf' | 'behind';

/** The attributes an expression names (absent = not mentioned). */
export interface Description {
  shape?: ShapeName;
  color?: ColorName;
  size?: SizeName;
  pattern?: PatternName;
}

export type Expression =
  | { kind: 'appearance'; target: Description }
  /** `candidates`: how many objects match `target` (location picks one of them); wording depends on it. */
  | { kind: 'location'; target: Description; loc: Loc; candidates: number }
  | { kind: 'relation'; target: Description; rel: Rel; landmark: Description };

export const INVERSE: Record<Rel, Rel> = {
  leftOf: 'rightOf',
  rightOf: 'leftOf',
  above: 'below',
  below: 'above',
  inFrontOf: 'behind',
  behind: 'inFrontOf',
};

type Choices = readonly (readonly [string, number])[];

// [singular, plural, weight]
const SHAPE_NOUNS: Record<ShapeName, readonly (readonly [string, string, number])[]> = {
  circle: [
    ['circle', 'circles', 6],
    ['disc', 'discs', 1],
    ['round shape', 'round shapes', 1],
  ],
  square: [
    ['square', 'squares', 6],
    ['box', 'boxes', 1],
    ['block', 'blocks', 1],
  ],
  triangle: [
    ['triangle', 'triangles', 6],
    ['triangular shape', 'triangular shapes', 1],
  ],
  star: [
    ['star', 'stars', 6],
    ['five pointed star', 'five pointed stars', 1],
  ],
  heart: [
    ['heart', 'hearts', 6],
    ['heart shape', 'heart shapes', 1],
  ],
  diamond: [
    ['diamond', 'diamonds', 6],
    ['rhombus', 'rhombuses', 1],
    ['lozenge', 'lozenges', 1],
  ],
  hexagon: [
    ['hexagon', 'hexagons', 6],
    ['six sided shape', 'six sided shapes', 1],
  ],
  cross: [
    ['cross', 'crosses', 6],
    ['plus sign', 'plus signs', 2],
  ],
};

const GENERIC_NOUNS = [
  ['shape', 'shapes', 3],
  ['object', 'objects', 2],
  ['thing', 'things', 1],
  ['one', 'ones', 2],
] as const;

const COLOR_WORDS: Record<ColorName, Choices> = {
  red: [['red', 1]],
  orange: [['orange', 1]],
  yellow: [['yellow', 1]],
  green: [['green', 1]],
  cyan: [
    ['cyan', 3],
    ['turquoise', 1],
  ],
  blue: [['blue', 1]],
  purple: [
    ['purple', 3],
    ['violet', 1],
  ],
  pink: [['pink', 1]],
};

const SIZE_WORDS: Record<SizeName, Choices> = {
  small: [
    ['small', 4],
    ['little', 1],
    ['tiny', 1],
  ],
  medium: [
    ['medium sized', 2],
    ['medium', 2],
    ['mid sized', 1],
  ],
  large: [
    ['large', 3],
    ['big', 3],
    ['huge', 1],
  ],
};

const PATTERN_ADJECTIVES: Record<PatternName, Choices> = {
  plain: [
    ['plain', 2],
    ['solid', 1],
  ],
  striped: [
    ['striped', 3],
    ['stripy', 1],
  ],
  dotted: [
    ['dotted', 2],
    ['spotted', 1],
    ['polka dot', 1],
  ],
};
const PATTERN_WITH: Record<PatternName, Choices> = {
  plain: [],
  striped: [['with stripes', 1]],
  dotted: [
    ['with dots', 2],
    ['with spots', 1],
  ],
};

/** "the red circle on the left" */
const LOC_AFTER: Record<Loc, Choices> = {
  left: [
    ['on the left', 4],
    ['at the left', 1],
    ['on the left side', 1],
  ],
  right: [
    ['on the right', 4],
    ['at the right', 1],
    ['on the right side', 1],
  ],
  top: [
    ['at the top', 4],
    ['on the top side', 1],
  ],
  bottom: [
    ['at the bottom', 4],
    ['on the bottom side', 1],
  ],
  middle: [
    ['in the middle', 4],
    ['in the center', 1],
  ],
};
/** "red circle left" — RefCOCO's terse style, only without a determiner. */
const LOC_TERSE: Record<Loc, Choices> = {
  left: [['left', 1]],
  right: [['right', 1]],
  top: [['top', 1]],
  bottom: [['bottom', 1]],
  middle: [['middle', 1]],
};
/** "the leftmost red circle" */
const LOC_BEFORE: Record<Loc, Choices> = {
  left: [
    ['left', 3],
    ['leftmost', 2],
  ],
  right: [
    ['right', 3],
    ['rightmost', 2],
  ],
  top: [
    ['top', 3],
    ['topmost', 1],
    ['upper', 1],
  ],
  bottom: [
    ['bottom', 3],
    ['bottommost', 1],
    ['lower', 1],
  ],
  middle: [
    ['middle', 3],
    ['central', 1],
  ],
};
/** "the leftmost of the red circles" */
// Not "the one on the left of the red circles": that also reads as the relation "left of".
const LOC_OF: Record<Loc, Choices> = {
  left: [
    ['leftmost', 3],
    ['left one', 1],
  ],
  right: [
    ['rightmost', 3],
    ['right one', 1],
  ],
  top: [
    ['topmost', 2],
    ['highest', 2],
    ['top one', 1],
  ],
  bottom: [
    ['bottommost', 2],
    ['lowest', 2],
    ['bottom one', 1],
  ],
  middle: [['middle one', 1]],
};
const COUNT_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven'];

const REL_WORDS: Record<Rel, Choices> = {
  above: [['above', 1]],
  below: [
    ['below', 3],
    ['beneath', 1],
  ],
  leftOf: [
    ['to the left of', 4],
    ['left of', 1],
    ['on the left side of', 1],
  ],
  rightOf: [
    ['to the right of', 4],
    ['right of', 1],
    ['on the right side of', 1],
  ],
  inFrontOf: [
    ['in front of', 3],
    ['partly covering', 2],
  ],
  behind: [
    ['behind', 3],
    ['partly hidden by', 2],
    ['partly covered by', 1],
  ],
};
const CONNECTIVES: Choices = [
  ['', 3],
  ['that is', 3],
  ['which is', 2],
  ['located', 1],
  ['that is located', 1],
];

function pick(rng: Rng, choices: Choices): string {
  return rng.weighted(
    choices.map((c) => c[0]),
    choices.map((c) => c[1]),
  );
}

function noun(d: Description, rng: Rng, plural: boolean): string {
  const table = d.shape ? SHAPE_NOUNS[d.shape] : GENERIC_NOUNS;
  const row = rng.weighted(
    table,
    table.map((r) => r[2]),
  );
  return plural ? row[1] : row[0];
}

/** Adjectives in English order: size, pattern, colour ("small striped red"). */
function adjectives(d: Description, rng: Rng, withPattern: boolean): string[] {
  const out: string[] = [];
  if (d.size) out.push(pick(rng, SIZE_WORDS[d.size]));
  if (d.pattern && withPattern) out.push(pick(rng, PATTERN_ADJECTIVES[d.pattern]));
  if (d.color) out.push(pick(rng, COLOR_WORDS[d.color]));
  return out;
}

function joinAnd(words: string[]): string {
  if (words.length <= 1) return words.join('');
  return `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}

/** Noun phrase without determiner: "small red circle", "red circle with stripes", "circle". */
function nounPhrase(d: Description, rng: Rng, opts: { plural?: boolean; allowWith?: boolean } = {}): string {
  const plural = opts.plural ?? false;
  // A pattern can follow the noun ("with stripes") instead of preceding it.
  const patternAfter = opts.allowWith !== false && d.pattern && d.pattern !== 'plain' && rng.bool(0.35);
  const words = [...adjectives(d, rng, !patternAfter), noun(d, rng, plural)];
  if (patternAfter) words.push(pick(rng, PATTERN_WITH[d.pattern!]));
  return words.join(' ');
}

function determiner(rng: Rng, terse: number): string {
  return rng.bool(terse) ? '' : 'the';
}

function words(...parts: string[]): string {
  return parts.filter((p) => p.length > 0).join(' ');
}

function realizeAppearance(d: Description, rng: Rng): string {
  // "the circle that is small and red": only when there is an adjective to move after the noun.
  if ((d.size || d.pattern || d.color) && rng.bool(0.25)) {
    const adjs = adjectives(d, rng, true);
    return words('the', noun(d, rng, false), rng.choice(['that is', 'which is']), joinAnd(adjs));
  }
  return words(determiner(rng, 0.3), nounPhrase(d, rng));
}

function realizeLocation(d: Description, loc: Loc, candidates: number, rng: Rng): string {
  const bare = !d.shape && !d.color && !d.size && !d.pattern;
  if (bare && rng.bool(0.15)) return pick(rng, LOC_TERSE[loc]); // RefCOCO has many one-word expressions
  const templates: [string, number][] = [
    ['after', 4],
    ['before', 3],
    ['terse', bare ? 0 : 1], // "one left" would read as "one remaining"
    ['of', candidates >= 2 && !bare ? 2 : 0],
  ];
  const t = rng.weighted(
    templates.map((x) => x[0]),
    templates.map((x) => x[1]),
  );
  switch (t) {
    case 'after':
      return words(determiner(rng, 0.3), nounPhrase(d, rng), pick(rng, LOC_AFTER[loc]));
    case 'before':
      return words(determiner(rng, 0.3), pick(rng, LOC_BEFORE[loc]), nounPhrase(d, rng));
    case 'terse':
      return words(nounPhrase(d, rng, { allowWith: false }), pick(rng, LOC_TERSE[loc]));
    default: {
      // "the leftmost of the (two) red circles": the count must be the true number of candidates.
      const count = rng.bool(0.3) && candidates < COUNT_WORDS.length ? COUNT_WORDS[candidates]! : '';
      return words('the', pick(rng, LOC_OF[loc]), 'of the', count, nounPhrase(d, rng, { plural: true }));
    }
  }
}

function realizeRelation(target: Description, rel: Rel, landmark: Description, rng: Rng): string {
  const t = words(rng.weighted(['the', 'a'], [3, 1]), nounPhrase(target, rng, { allowWith: false }));
  const l = words('the', nounPhrase(landmark, rng, { allowWith: false }));
  if (rng.bool(0.25)) {
    // Reversed: "the blue square with the yellow star above it" (the star is above the square).
    return words(t, 'with', l, pick(rng, REL_WORDS[INVERSE[rel]]), 'it');
  }
  return words(t, pick(rng, CONNECTIVES), pick(rng, REL_WORDS[rel]), l);
}

/** Put a checked meaning into words (lower case, single spaces, no punctuation except commas). */
export function realize(e: Expression, rng: Rng): string {
  switch (e.kind) {
    case 'appearance':
      return realizeAppearance(e.target, rng);
    case 'location':
      return realizeLocation(e.target, e.loc, e.candidates, rng);
    case 'relation':
      return realizeRelation(e.target, e.rel, e.landmark, rng);
  }
}

/** The refer `sent`/`tokens` normalization: lower case, punctuation removed, single spaces. */
export function normalizeSentence(raw: string): { sent: string; tokens: string[] } {
  const tokens = raw
    .toLowerCase()
    .replace(/[^a-z0-9 ]+/g, ' ')
    .split(' ')
    .filter((t) => t.length > 0);
  return { sent: tokens.join(' '), tokens };
}

/** What an annotator might have typed: sometimes capitalized, sometimes with a full stop. */
export function rawForm(sentence: string, rng: Rng): string {
  let s = sentence;
  if (rng.bool(0.3)) s = s.charAt(0).toUpperCase() + s.slice(1);
  if (rng.bool(0.15)) s += '.';
  return s;
}

/** Words that only join a phrase ("medium sized", "with stripes", "on the left side"). */
const FILLER = new Set(['with', 'sized', 'on', 'at', 'the', 'in', 'side', 'one', 'of']);

/** The words of these phrase lists, each phrase split on spaces, fillers left out. */
function wordsOf(lists: readonly Choices[]): Set<string> {
  const out = new Set<string>();
  for (const choices of lists)
    for (const [p] of choices) for (const w of p.split(' ')) if (w && !FILLER.has(w)) out.add(w);
  return out;
}

/**
 * The words that name a shape, a colour, a size or a pattern, and those of each location, as the tables above
 * write them: what an analysis of a model's errors by what an expression says (scripts/breakdown.ts)
 * needs. Location words also occur in relation phrases of synth-refcocog ("left of").
 */
export function lexicon(): {
  /** Words of the shape nouns ("star", "rhombus", "plus"), not generic nouns or count words. */
  shape: Set<string>;
  color: Set<string>;
  size: Set<string>;
  pattern: Set<string>;
  loc: Record<Loc, Set<string>>;
} {
  const loc = {} as Record<Loc, Set<string>>;
  for (const l of ['left', 'right', 'top', 'bottom', 'middle'] as const)
    loc[l] = wordsOf([LOC_AFTER[l], LOC_TERSE[l], LOC_BEFORE[l], LOC_OF[l]]);
  const forms = (rows: readonly (readonly [string, string, number])[]): Choices =>
    rows.flatMap(([one, many]) => [[one, 1] as const, [many, 1] as const]);
  const generic = wordsOf([forms(GENERIC_NOUNS)]);
  const nouns = wordsOf(Object.values(SHAPE_NOUNS).map(forms));
  return {
    // "five pointed star": "five" is also a count word ("the two stars"), "shape" a generic noun
    shape: new Set([...nouns].filter((w) => !generic.has(w) && !COUNT_WORDS.includes(w))),
    color: wordsOf(Object.values(COLOR_WORDS)),
    size: wordsOf(Object.values(SIZE_WORDS)),
    pattern: wordsOf([...Object.values(PATTERN_ADJECTIVES), ...Object.values(PATTERN_WITH)]),
    loc,
  };
}
