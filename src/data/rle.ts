// COCO run-length encoding with pycocotools semantics (cocoapi/common/maskApi.c).
//
// Runs are taken over the mask in COLUMN-MAJOR (Fortran) order, as pycocotools does because it
// encodes numpy arrays with order='F'; they alternate 0-runs and 1-runs and always start with a
// 0-run (of length 0 when pixel (0,0) is set). The compressed string form is rleToString: each
// count (after index 2, as the difference from the count two places back, since runs of the same
// kind have similar lengths) is written 5 bits at a time, least significant first, as chars
// 48 + (bits | 0x20 when more follow); the last group's 0x10 bit is the sign. Masks here are
// row-major `{height, width, data}` with one byte per pixel (0 or 1), the layout the rest of
// the project uses; only the runs are column-major.

/** A binary mask, row-major, one byte per pixel (0 = background, nonzero = object). */
export interface Mask {
  height: number;
  width: number;
  data: Uint8Array;
}

/** A COCO RLE segmentation: `counts` as a list of ints (uncompressed) or the compressed string. */
export interface Rle {
  size: [number, number]; // [height, width], COCO's order
  counts: number[] | string;
}

/** A compressed COCO RLE, the form COCO json files (and `instances.json` here) hold. */
export interface CompressedRle {
  size: [number, number];
  counts: string;
}

export function emptyMask(height: number, width: number): Mask {
  return { height, width, data: new Uint8Array(height * width) };
}

/** Runs of `mask` in column-major order, starting with a (possibly empty) run of zeros. */
export function encodeCounts(mask: Mask): number[] {
  const { height: h, width: w, data } = mask;
  checkMask(mask);
  const counts: number[] = [];
  let prev = 0;
  let run = 0;
  for (let x = 0; x < w; x++) {
    for (let y = 0, i = x; y < h; y++, i += w) {
      const v = data[i] !== 0 ? 1 : 0;
      if (v !== prev) {
        counts.push(run);
        run = 0;
        prev = v;
      }
      run++;
    }
  }
  // maskApi.c always closes the last run, so an empty image is [0] and a full one [0, h*w].
  counts.push(run);
  return counts;
}

/**
 * Runs of every mask `labels == k`, k = 1..n, of a row-major label map in ONE column-major pass
 * (instead of n full-image masks, each walked with a cache-hostile column stride). Result[k-1]
 * equals encodeCounts of that mask.
 */
export function encodeLabelCounts(
  labels: ArrayLike<number>,
  height: number,
  width: number,
  n: number,
): number[][] {
  checkSize(height, width);
  if (labels.length !== height * width)
    throw new Error(`label map has ${labels.length} entries, expected ${height}×${width}`);
  // Positions where each mask toggles; the runs are the differences between them.
  const toggles: number[][] = Array.from({ length: n + 1 }, () => []);
  let prev = 0;
  let p = 0;
  for (let x = 0; x < width; x++) {
    for (let y = 0, i = x; y < height; y++, i += width, p++) {
      const l = labels[i]!;
      if (l === prev) continue;
      if (!(l >= 0 && l <= n && Number.isInteger(l)))
        throw new Error(`label map: value ${l} at pixel ${i} is not in 0..${n}`);
      if (prev > 0) toggles[prev]!.push(p);
      if (l > 0) toggles[l]!.push(p);
      prev = l;
    }
  }
  const total = height * width;
  return toggles.slice(1).map((t) => {
    const counts: number[] = [];
    let last = 0;
    for (const q of t) {
      counts.push(q - last);
      last = q;
    }
    counts.push(total - last);
    return counts;
  });
}

/** The row-major mask described by uncompressed counts; the counts must cover exactly h×w pixels. */
export function decodeCounts(counts: readonly number[], height: number, width: number): Mask {
  checkSize(height, width);
  const n = height * width;
  let total = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (!Number.isInteger(c) || c < 0) throw new Error(`RLE: count ${i} is ${c}, expected an integer ≥ 0`);
    total += c;
  }
  if (total !== n) {
    throw new Error(`RLE: counts sum to ${total} but the mask is ${height}×${width} = ${n} pixels`);
  }
  const mask = emptyMask(height, width);
  let pos = 0; // column-major position
  for (let k = 0; k < counts.length; k++) {
    const c = counts[k]!;
    if (k % 2 === 1) {
      let x = Math.floor(pos / height);
      let y = pos - x * height;
      for (let j = 0; j < c; j++) {
        mask.data[y * width + x] = 1;
        if (++y === height) {
          y = 0;
          x++;
        }
      }
    }
    pos += c;
  }
  return mask;
}

/** pycocotools rleToString: counts → compressed string (chars '0'..'o'). */
export function countsToString(counts: readonly number[]): string {
  let s = '';
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i]!;
    if (i > 2) x -= counts[i - 2]!;
    let more = true;
    while (more) {
      // Arithmetic (not 32-bit bitwise) so deltas beyond ±2^31 would still round-trip.
      let c = ((x % 32) + 32) % 32;
      x = (x - c) / 32; // floor division: x >>= 5 on a signed long
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
    }
  }
  return s;
}

/** pycocotools rleFrString: compressed string → counts. Throws on characters outside '0'..'o'. */
export function countsFromString(s: string): number[] {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new Error(`RLE string: truncated count at char ${p}`);
      const code = s.charCodeAt(p);
      const c = code - 48;
      if (c < 0 || c > 63)
        throw new Error(`RLE string: char ${JSON.stringify(s[p])} at ${p} is outside '0'..'o'`);
      if (k > 10) throw new Error(`RLE string: count at char ${p} is longer than 55 bits`);
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      // Sign-extend: x |= -1 << 5k, i.e. subtract 2^(5k) since x < 2^(5k).
      if (!more && c & 0x10) x -= 2 ** (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2]!;
    counts.push(x);
  }
  return counts;
}

/** The compressed RLE of a mask, as COCO annotation files store it. */
export function encodeRle(mask: Mask): CompressedRle {
  return { size: [mask.height, mask.width], counts: countsToString(encodeCounts(mask)) };
}

/** Decode either RLE form to a row-major mask. */
export function decodeRle(rle: Rle): Mask {
  const [h, w] = rleSize(rle);
  const counts = typeof rle.counts === 'string' ? countsFromString(rle.counts) : rle.counts;
  if (!Array.isArray(counts)) throw new Error('RLE: counts must be a list of ints or a string');
  return decodeCounts(counts, h, w);
}

/** Foreground pixel count of an RLE (pycocotools area): the sum of the odd-indexed runs. */
export function rleArea(rle: Rle): number {
  const counts = typeof rle.counts === 'string' ? countsFromString(rle.counts) : rle.counts;
  let a = 0;
  for (let i = 1; i < counts.length; i += 2) a += counts[i]!;
  return a;
}

export function maskArea(mask: Mask): number {
  let a = 0;
  for (let i = 0; i < mask.data.length; i++) if (mask.data[i] !== 0) a++;
  return a;
}

/** COCO bbox [x, y, width, height] of the foreground (pycocotools toBbox); [0,0,0,0] when empty. */
export function maskBbox(mask: Mask): [number, number, number, number] {
  const { height: h, width: w, data } = mask;
  let x0 = w;
  let y0 = h;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      if (data[row + x] === 0) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      y1 = y;
    }
  }
  return x1 < 0 ? [0, 0, 0, 0] : [x0, y0, x1 - x0 + 1, y1 - y0 + 1];
}

function rleSize(rle: Rle): [number, number] {
  const size = rle.size as unknown;
  if (!Array.isArray(size) || size.length !== 2) throw new Error(`RLE: size must be [height, width]`);
  const [h, w] = size as [number, number];
  checkSize(h, w);
  return [h, w];
}

function checkSize(h: number, w: number): void {
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 0 || w < 0) {
    throw new Error(`RLE: bad mask size [${h}, ${w}]`);
  }
}

function checkMask(mask: Mask): void {
  checkSize(mask.height, mask.width);
  if (mask.data.length !== mask.height * mask.width) {
    throw new Error(`mask data has ${mask.data.length} bytes, expected ${mask.height}×${mask.width}`);
  }
}
