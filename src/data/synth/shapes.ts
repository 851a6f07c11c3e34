// Shape outlines and their exact rasterization for the synthetic benchmark (spec/data.md §4).
//
// Every shape is a unit outline centred on its area centroid; `rasterize` scales it so that its AREA
// equals that of a circle of radius `rEq`, so one size class looks equally big whatever the shape
// (a triangle and a square of the same circumradius differ 2× in area, and "the small triangle"
// must mean the same thing as "the small square"). A pixel belongs to a shape when its CENTRE is
// inside (scanline fill, even–odd rule): no anti-aliasing, so masks and rendered pixels agree
// exactly. Rasters are row spans, compact and fast to intersect for occlusion bookkeeping.

export const SHAPES = [
  'circle',
  'square',
  'triangle',
  'star',
  'heart',
  'diamond',
  'hexagon',
  'cross',
] as const;
export type ShapeName = (typeof SHAPES)[number];

/** Row spans: row `y0 + j` covers pixels [xs[2i], xs[2i+1]) for each pair in `rows[j]`. */
export interface Spans {
  y0: number;
  rows: number[][];
}

type Point = readonly [number, number];

function regular(n: number, radius: number, phase: number): Point[] {
  return Array.from({ length: n }, (_, i) => {
    const a = phase + (2 * Math.PI * i) / n;
    return [radius * Math.cos(a), radius * Math.sin(a)] as const;
  });
}

function star(points: number, inner: number): Point[] {
  return Array.from({ length: 2 * points }, (_, i) => {
    const r = i % 2 === 0 ? 1 : inner;
    const a = -Math.PI / 2 + (Math.PI * i) / points; // first tip straight up (y grows downwards)
    return [r * Math.cos(a), r * Math.sin(a)] as const;
  });
}

function heart(n: number): Point[] {
  // The classic parametric heart; y negated because image y grows downwards.
  return Array.from({ length: n }, (_, i) => {
    const t = (2 * Math.PI * i) / n;
    const x = 16 * Math.sin(t) ** 3;
    const y = -(13 * Math.cos(t) - 5 * Math.cos(2 * t) - 2 * Math.cos(3 * t) - Math.cos(4 * t));
    return [x, y] as const;
  });
}

function cross(arm: number): Point[] {
  const a = arm;
  return [
    [-a, -1],
    [a, -1],
    [a, -a],
    [1, -a],
    [1, a],
    [a, a],
    [a, 1],
    [-a, 1],
    [-a, a],
    [-1, a],
    [-1, -a],
    [-a, -a],
  ];
}

/** Signed area and area centroid of a simple polygon (shoelace). */
function areaCentroid(p: readonly Point[]): { area: number; cx: number; cy: number } {
  let a = 0;
  let cx = 0;
  let cy = 0;
  for (let i = 0; i < p.length; i++) {
    const [x0, y0] = p[i]!;
    const [x1, y1] = p[(i + 1) % p.length]!;
    const cr = x0 * y1 - x1 * y0;
    a += cr;
    cx += (x0 + x1) * cr;
    cy += (y0 + y1) * cr;
  }
  return { area: a / 2, cx: cx / (3 * a), cy: cy / (3 * a) };
}

interface UnitShape {
  /** Outline centred on its centroid, farthest vertex at distance 1; null for the circle. */
  polygon: Point[] | null;
  /** Area of the unit outline (π for the circle). */
  area: number;
}

function normalize(p: Point[]): UnitShape {
  const { cx, cy } = areaCentroid(p);
  const centred = p.map(([x, y]) => [x - cx, y - cy] as const);
  const r = Math.max(...centred.map(([x, y]) => Math.hypot(x, y)));
  const unit = centred.map(([x, y]) => [x / r, y / r] as const);
  return { polygon: unit, area: Math.abs(areaCentroid(unit).area) };
}

const UNIT: Record<ShapeName, UnitShape> = {
  circle: { polygon: null, area: Math.PI },
  square: normalize(regular(4, 1, Math.PI / 4)),
  triangle: normalize(regular(3, 1, -Math.PI / 2)),
  // Inner radius 0.45 rather than the pentagram's 0.38: chunkier arms survive small sizes.
  star: normalize(star(5, 0.45)),
  heart: normalize(heart(72)),
  // Taller than wide so that it never reads as a square turned by 45°.
  diamond: normalize([
    [0, -1],
    [0.62, 0],
    [0, 1],
    [-0.62, 0],
  ]),
  hexagon: normalize(regular(6, 1, 0)),
  cross: normalize(cross(0.34)),
};

/** Rotation range (radians, ±) per shape: squares and diamonds must not turn into each other. */
export const MAX_ROTATION: Record<ShapeName, number> = {
  circle: 0,
  square: (12 * Math.PI) / 180,
  triangle: (15 * Math.PI) / 180,
  star: (18 * Math.PI) / 180,
  heart: (15 * Math.PI) / 180,
  diamond: (10 * Math.PI) / 180,
  hexagon: (15 * Math.PI) / 180,
  cross: (15 * Math.PI) / 180,
};

/** Distance from the centre to the farthest point of the shape drawn with equivalent radius rEq. */
export function boundingRadius(shape: ShapeName, rEq: number): number {
  return rEq * Math.sqrt(Math.PI / UNIT[shape].area);
}

/**
 * Rasterize a shape of area π·rEq² centred at (cx, cy), turned by `angle` radians, into an image
 * of `width`×`height` pixels (clipped to it).
 */
export function rasterize(
  shape: ShapeName,
  cx: number,
  cy: number,
  rEq: number,
  angle: number,
  width: number,
  height: number,
): Spans {
  const unit = UNIT[shape];
  if (unit.polygon === null) return rasterizeCircle(cx, cy, rEq, width, height);
  const s = boundingRadius(shape, rEq);
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const pts = unit.polygon.map(
    ([x, y]) => [cx + s * (x * cos - y * sin), cy + s * (x * sin + y * cos)] as const,
  );
  return rasterizePolygon(pts, width, height);
}

function rasterizeCircle(cx: number, cy: number, r: number, width: number, height: number): Spans {
  const y0 = Math.max(0, Math.ceil(cy - r - 0.5));
  const y1 = Math.min(height - 1, Math.floor(cy + r - 0.5));
  const rows: number[][] = [];
  for (let y = y0; y <= y1; y++) {
    const dy = y + 0.5 - cy;
    const h2 = r * r - dy * dy;
    if (h2 <= 0) {
      rows.push([]);
      continue;
    }
    const h = Math.sqrt(h2);
    rows.push(clipSpan(cx - h, cx + h, width));
  }
  return { y0, rows };
}

/** Scanline fill at pixel centres; edges are half-open in y so shared vertices count once. */
function rasterizePolygon(pts: readonly Point[], width: number, height: number): Spans {
  let minY = Infinity;
  let maxY = -Infinity;
  for (const [, y] of pts) {
    minY = Math.min(minY, y);
    maxY = Math.max(maxY, y);
  }
  const y0 = Math.max(0, Math.ceil(minY - 0.5));
  const y1 = Math.min(height - 1, Math.floor(maxY - 0.5));
  const rows: number[][] = [];
  const xs: number[] = [];
  for (let y = y0; y <= y1; y++) {
    const yc = y + 0.5;
    xs.length = 0;
    for (let i = 0; i < pts.length; i++) {
      const [ax, ay] = pts[i]!;
      const [bx, by] = pts[(i + 1) % pts.length]!;
      if ((ay <= yc && yc < by) || (by <= yc && yc < ay)) xs.push(ax + ((yc - ay) * (bx - ax)) / (by - ay));
    }
    xs.sort((a, b) => a - b);
    const row: number[] = [];
    for (let i = 0; i + 1 < xs.length; i += 2) row.push(...clipSpan(xs[i]!, xs[i + 1]!, width));
    rows.push(mergeRow(row));
  }
  return { y0, rows };
}

/** Pixels whose centre x + 0.5 lies in [xa, xb), clipped to [0, width). */
function clipSpan(xa: number, xb: number, width: number): number[] {
  const a = Math.max(0, Math.ceil(xa - 0.5));
  const b = Math.min(width, Math.ceil(xb - 0.5));
  return b > a ? [a, b] : [];
}

/** Merge touching/overlapping sorted spans so that every pixel is listed once. */
function mergeRow(row: number[]): number[] {
  if (row.length <= 2) return row;
  const out: number[] = [row[0]!, row[1]!];
  for (let i = 2; i < row.length; i += 2) {
    const a = row[i]!;
    const b = row[i + 1]!;
    if (a <= out[out.length - 1]!) out[out.length - 1] = Math.max(out[out.length - 1]!, b);
    else out.push(a, b);
  }
  return out;
}

export function spansArea(s: Spans): number {
  let n = 0;
  for (const row of s.rows) for (let i = 0; i < row.length; i += 2) n += row[i + 1]! - row[i]!;
  return n;
}

/** Call f(x, y) for every pixel of the spans, row by row. */
export function forEachPixel(s: Spans, f: (x: number, y: number) => void): void {
  for (let j = 0; j < s.rows.length; j++) {
    const row = s.rows[j]!;
    const y = s.y0 + j;
    for (let i = 0; i < row.length; i += 2) for (let x = row[i]!; x < row[i + 1]!; x++) f(x, y);
  }
}
