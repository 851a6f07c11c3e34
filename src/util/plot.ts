// Line charts as PNG (training curves, breakdown plots): an SVG drawn here, rasterized by sharp.
// No plotting dependency: axes with "nice" ticks, several series, a legend.

import sharp from 'sharp';

export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
  color?: string;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  logY?: boolean;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** About `n` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function fmt(v: number): string {
  if (v !== 0 && (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3)) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

export function lineChartSvg(series: readonly Series[], o: ChartOptions): string {
  const W = o.width ?? 720;
  const H = o.height ?? 420;
  const m = { l: 70, r: 20, t: 40, b: 50 };
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logY || y > 0));
  const tf = (y: number) => (o.logY ? Math.log10(y) : y);
  let [x0, x1] = all.length ? [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))] : [0, 1];
  let [y0, y1] = all.length ? [Math.min(...all.map((p) => tf(p[1]))), Math.max(...all.map((p) => tf(p[1])))] : [0, 1];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const pad = (y1 - y0) * 0.05;
  [y0, y1] = [y0 - pad, y1 + pad];
  const px = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - ((tf(y) - y0) / (y1 - y0)) * (H - m.t - m.b);
  const parts: string[] = [];
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-family="DejaVu Sans, sans-serif" font-size="16">${esc(o.title)}</text>`);
  for (const t of niceTicks(x0, x1)) {
    const x = px(t);
    parts.push(`<line x1="${x}" y1="${m.t}" x2="${x}" y2="${H - m.b}" stroke="#eee"/>`);
    parts.push(`<text x="${x}" y="${H - m.b + 18}" text-anchor="middle" font-family="DejaVu Sans, sans-serif" font-size="11">${fmt(t)}</text>`);
  }
  for (const t of niceTicks(y0, y1)) {
    const y = H - m.b - ((t - y0) / (y1 - y0)) * (H - m.t - m.b);
    parts.push(`<line x1="${m.l}" y1="${y}" x2="${W - m.r}" y2="${y}" stroke="#eee"/>`);
    const label = o.logY ? fmt(Math.pow(10, t)) : fmt(t);
    parts.push(`<text x="${m.l - 6}" y="${y + 4}" text-anchor="end" font-family="DejaVu Sans, sans-serif" font-size="11">${label}</text>`);
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#444"/>`);
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle" font-family="DejaVu Sans, sans-serif" font-size="13">${esc(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(18,${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle" font-family="DejaVu Sans, sans-serif" font-size="13">${esc(o.yLabel)}</text>`);
  const drawn = series.map((s) =>
    s.points
      .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logY || y > 0))
      .map(([x, y]) => [px(x), py(y)] as const),
  );
  const colors = series.map((s, i) => s.color ?? PALETTE[i % PALETTE.length]!);
  series.forEach((s, i) => {
    const color = colors[i]!;
    const pts = drawn[i]!;
    if (pts.length) {
      const d = pts.map(([x, y], k) => `${k ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`).join('');
      parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.6"/>`);
      if (pts.length < 40) for (const [x, y] of pts) parts.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="2.5" fill="${color}"/>`);
    }
  });
  const box = legendBox(drawn, series.map((s) => s.name), { x0: m.l, x1: W - m.r, y0: m.t, y1: H - m.b });
  parts.push(`<rect x="${box.x}" y="${box.y}" width="${box.w}" height="${box.h}" fill="white" fill-opacity="0.85" stroke="#ccc"/>`);
  series.forEach((s, i) => {
    const ly = box.y + 14 + i * 16;
    parts.push(`<line x1="${box.x + 5}" y1="${ly - 4}" x2="${box.x + 25}" y2="${ly - 4}" stroke="${colors[i]}" stroke-width="2"/>`);
    parts.push(`<text x="${box.x + 30}" y="${ly}" font-family="DejaVu Sans, sans-serif" font-size="12">${esc(s.name)}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">${parts.join('')}</svg>`;
}

/**
 * Where the legend of the series `names` goes: the corner of the plot area whose box the drawn lines
 * cross least (each segment sampled every 2 px), top right first on ties, so it does not hide the
 * data. The box is as wide as the longest name at 12 px (about 7 px a character) needs.
 */
export function legendBox(
  lines: readonly (readonly (readonly [number, number])[])[],
  names: readonly string[],
  area: { x0: number; x1: number; y0: number; y1: number },
): { x: number; y: number; w: number; h: number; corner: string } {
  const w = 38 + 7 * Math.max(0, ...names.map((n) => n.length));
  const h = 8 + 16 * names.length;
  const corners = [
    { corner: 'top right', x: area.x1 - w - 5, y: area.y0 + 5 },
    { corner: 'bottom right', x: area.x1 - w - 5, y: area.y1 - h - 5 },
    { corner: 'top left', x: area.x0 + 5, y: area.y0 + 5 },
    { corner: 'bottom left', x: area.x0 + 5, y: area.y1 - h - 5 },
  ];
  const hits = corners.map(({ x, y }) => {
    let k = 0;
    const inside = (px: number, py: number) => px >= x && px <= x + w && py >= y && py <= y + h;
    for (const pts of lines)
      pts.forEach(([px, py], i) => {
        if (inside(px, py)) k++;
        const next = pts[i + 1];
        if (!next) return;
        const steps = Math.ceil(Math.hypot(next[0] - px, next[1] - py) / 2);
        for (let t = 1; t < steps; t++)
          if (inside(px + ((next[0] - px) * t) / steps, py + ((next[1] - py) * t) / steps)) k++;
      });
    return k;
  });
  const best = hits.indexOf(Math.min(...hits));
  return { ...corners[best]!, w, h };
}

export async function lineChartPng(series: readonly Series[], o: ChartOptions): Promise<Buffer> {
  return sharp(Buffer.from(lineChartSvg(series, o))).png().toBuffer();
}

// ---------- bar charts (histograms, per-split counts) ----------

export interface BarSeries {
  name: string;
  /** One value per category. */
  values: readonly number[];
  color?: string;
}

/**
 * Grouped bars: one group per category, one bar per series (with a legend when there are several).
 * The y axis starts at 0; `logY` is ignored.
 */
export function barChartSvg(categories: readonly string[], series: readonly BarSeries[], o: ChartOptions): string {
  const W = o.width ?? 720;
  const H = o.height ?? 420;
  const m = { l: 70, r: 20, t: 40, b: 50 };
  const font = 'font-family="DejaVu Sans, sans-serif"';
  const values = series.flatMap((s) => s.values).filter((v) => Number.isFinite(v));
  const top = (Math.max(0, ...values) || 1) * 1.08; // headroom above the tallest bar
  const ticks = niceTicks(0, top);
  const y1 = Math.max(ticks[ticks.length - 1]!, top);
  const py = (v: number) => H - m.b - (v / y1) * (H - m.t - m.b);
  const band = (W - m.l - m.r) / Math.max(1, categories.length);
  const barW = (band * 0.8) / Math.max(1, series.length);
  const parts: string[] = [];
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${W / 2}" y="24" text-anchor="middle" ${font} font-size="16">${esc(o.title)}</text>`);
  for (const t of ticks) {
    const y = py(t);
    parts.push(`<line x1="${m.l}" y1="${y}" x2="${W - m.r}" y2="${y}" stroke="#eee"/>`);
    parts.push(`<text x="${m.l - 6}" y="${y + 4}" text-anchor="end" ${font} font-size="11">${fmt(t)}</text>`);
  }
  series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length]!;
    categories.forEach((_, k) => {
      const v = s.values[k] ?? 0;
      if (!(Number.isFinite(v) && v > 0)) return;
      const x = m.l + k * band + band * 0.1 + i * barW;
      parts.push(`<rect x="${x.toFixed(1)}" y="${py(v).toFixed(1)}" width="${barW.toFixed(1)}" height="${(H - m.b - py(v)).toFixed(1)}" fill="${color}"/>`);
    });
    if (series.length > 1) {
      const ly = m.t + 14 + i * 16;
      parts.push(`<rect x="${W - m.r - 150}" y="${ly - 9}" width="20" height="10" fill="${color}"/>`);
      parts.push(`<text x="${W - m.r - 125}" y="${ly}" ${font} font-size="12">${esc(s.name)}</text>`);
    }
  });
  const fontSize = band < 24 ? 9 : 11;
  categories.forEach((c, k) => {
    parts.push(`<text x="${(m.l + (k + 0.5) * band).toFixed(1)}" y="${H - m.b + 16}" text-anchor="middle" ${font} font-size="${fontSize}">${esc(c)}</text>`);
  });
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#444"/>`);
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle" ${font} font-size="13">${esc(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(18,${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle" ${font} font-size="13">${esc(o.yLabel)}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">${parts.join('')}</svg>`;
}

export async function barChartPng(categories: readonly string[], series: readonly BarSeries[], o: ChartOptions): Promise<Buffer> {
  return sharp(Buffer.from(barChartSvg(categories, series, o))).png().toBuffer();
}
