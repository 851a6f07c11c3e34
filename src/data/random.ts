// Seeded pseudo-random numbers: sfc32 (Chris Doty-Humphrey's Small Fast Counting generator, 128-bit
// state, passes PractRand to terabytes) with splitmix32 seeding.
//
// Everything random in data generation, batching and dropout masks goes through `Rng` so a run is
// reproducible from its seed, and the state is four plain uint32 numbers so checkpoints can save
// and restore it exactly (reliability.md "Training state": resume must equal a straight run).
// `Rng.from('synth', seed, i)` derives independent streams from labels, which lets work be done in
// any order (or in parallel) and still give the same result per item.

/** The generator state: four uint32 words [a, b, c, d]. */
export type RngState = [number, number, number, number];

const TWO_32 = 4294967296;

/** splitmix32 finalizer: a bijective avalanche mix of one 32-bit word. */
function mix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** FNV-1a over UTF-16 code units: labels only need to be distinct, not cryptographic. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function wordsOf(part: number | string): number[] {
  if (typeof part === 'string') return [hashString(part), part.length];
  if (!Number.isFinite(part)) throw new Error(`Rng seed part must be finite, got ${part}`);
  // Integers up to 2^53 keep both halves, so seeds 1 and 2^32+1 differ; fractions are refused
  // because two nearby floats would silently collide.
  if (!Number.isInteger(part)) throw new Error(`Rng seed part must be an integer, got ${part}`);
  const lo = part >>> 0;
  const hi = Math.floor(part / TWO_32) >>> 0;
  return [lo, hi];
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  private constructor(state: RngState) {
    [this.a, this.b, this.c, this.d] = state;
  }

  /** A generator seeded from any mix of integers and labels: `Rng.from(seed)`, `Rng.from('split', seed)`. */
  static from(...parts: (number | string)[]): Rng {
    let h = 0x6a09e667;
    for (const p of parts) for (const w of wordsOf(p)) h = mix32(h ^ w);
    const s: RngState = [0, 0, 0, 0];
    for (let i = 0; i < 4; i++) {
      h = mix32(h + i);
      s[i] = h;
    }
    if ((s[0] | s[1] | s[2] | s[3]) === 0) s[3] = 1;
    const r = new Rng(s);
    // sfc32's first outputs are still correlated with the seed words; the reference discards 12.
    for (let i = 0; i < 12; i++) r.uint32();
    return r;
  }

  /** Restore a generator saved with `state()`; the next draws continue the saved sequence. */
  static fromState(state: readonly number[]): Rng {
    if (state.length !== 4 || !state.every((w) => Number.isInteger(w) && w >= 0 && w < TWO_32)) {
      throw new Error(`Rng state must be four uint32 integers, got ${JSON.stringify(state)}`);
    }
    return new Rng([state[0]!, state[1]!, state[2]!, state[3]!]);
  }

  /** The current state (a copy), JSON-serializable. */
  state(): RngState {
    return [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0];
  }

  /** A new independent stream; advances this one by four draws. */
  fork(label: number | string = 0): Rng {
    return Rng.from(this.uint32(), this.uint32(), this.uint32(), this.uint32(), label);
  }

  /** Uniform uint32 in [0, 2^32). */
  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  next(): number {
    return this.uint32() / TWO_32;
  }

  /** Uniform float in [lo, hi). */
  float(lo = 0, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [lo, hi], both inclusive; exact (rejection sampling), ranges up to 2^32. */
  int(lo: number, hi: number): number {
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi < lo || hi - lo >= TWO_32) {
      throw new Error(`Rng.int: bad range [${lo}, ${hi}]`);
    }
    const n = hi - lo + 1;
    if (n === TWO_32) return lo + this.uint32();
    // Reject the top partial bucket so every value is equally likely.
    const limit = TWO_32 - (TWO_32 % n);
    let x = this.uint32();
    while (x >= limit) x = this.uint32();
    return lo + (x % n);
  }

  /** True with probability p. */
  bool(p = 0.5): boolean {
    return this.next() < p;
  }

  /** Standard normal (Box–Muller; no cached second value, so the state stays the four words). */
  normal(mean = 0, std = 1): number {
    const u = 1 - this.next(); // (0, 1]: log(0) is never taken
    const v = this.next();
    return mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** A uniformly chosen element. */
  choice<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Rng.choice: empty list');
    return items[this.int(0, items.length - 1)]!;
  }

  /** An element chosen with probability proportional to its (non-negative) weight. */
  weighted<T>(items: readonly T[], weights: readonly number[]): T {
    if (items.length === 0 || items.length !== weights.length) {
      throw new Error(`Rng.weighted: ${items.length} items vs ${weights.length} weights`);
    }
    let total = 0;
    for (const w of weights) {
      if (!(w >= 0) || !Number.isFinite(w)) throw new Error(`Rng.weighted: bad weight ${w}`);
      total += w;
    }
    if (total <= 0) throw new Error('Rng.weighted: all weights are zero');
    let r = this.next() * total;
    for (let i = 0; i < items.length; i++) {
      r -= weights[i]!;
      if (r < 0) return items[i]!;
    }
    // Rounding can leave r a hair above zero: return the last item with positive weight.
    for (let i = items.length - 1; i >= 0; i--) if (weights[i]! > 0) return items[i]!;
    return items[items.length - 1]!;
  }

  /** Fisher–Yates shuffle in place; returns the same array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const t = items[i]!;
      items[i] = items[j]!;
      items[j] = t;
    }
    return items;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }

  /** Fill `out` with uniform [0, 1) floats (dropout masks, noise). */
  fill<A extends Float32Array | Float64Array>(out: A): A {
    if (out instanceof Float32Array) {
      // 24 bits: a 32-bit fraction close to 1 would round UP to 1.0 in float32, breaking [0, 1).
      for (let i = 0; i < out.length; i++) out[i] = (this.uint32() >>> 8) / 16777216;
    } else {
      for (let i = 0; i < out.length; i++) out[i] = this.next();
    }
    return out;
  }
}
