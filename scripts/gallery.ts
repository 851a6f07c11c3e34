// A grid of square RGB tiles, each with a small grey header line and a wrapped caption under it,
// written as one PNG: the layout of the pictures the docs show (synth-samples.ts, error-gallery.ts).

import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import sharp from 'sharp';

export interface GalleryTile {
  /** 8-bit RGB, row-major, `size`×`size` (the gallery's tile size). */
  rgb: Uint8Array;
  /** The grey line under the tile (e.g. the dataset flavor, or the IoU). */
  header: string;
  /** The caption under the header, wrapped, at most three lines. */
  caption: string;
}

export interface GalleryOptions {
  out: string;
  /** Tile side in pixels. */
  size: number;
  columns: number;
}

const CAPTION = 70;
const GAP = 10;

/** Greedy word wrap to lines of at most `width` characters. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const w of text.split(' ')) {
    if (line && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines;
}

const escapeXml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Writes the gallery; returns its width and height. */
export async function writeGallery(
  tiles: readonly GalleryTile[],
  o: GalleryOptions,
): Promise<[number, number]> {
  const { size, columns } = o;
  const rows = Math.ceil(tiles.length / columns);
  const width = columns * size + (columns + 1) * GAP;
  const height = rows * (size + CAPTION) + (rows + 1) * GAP;
  const perLine = Math.floor(size / 7.7); // characters of 13 px DejaVu Sans that fit a tile
  const text: string[] = [];
  const images = tiles.map((t, k) => {
    if (t.rgb.length !== size * size * 3)
      throw new Error(`tile ${k} holds ${t.rgb.length} bytes, expected ${size}×${size}×3`);
    const left = GAP + (k % columns) * (size + GAP);
    const top = GAP + Math.floor(k / columns) * (size + CAPTION + GAP);
    text.push(`<text x="${left}" y="${top + size + 14}" class="header">${escapeXml(t.header)}</text>`);
    wrap(`“${t.caption}”`, perLine)
      .slice(0, 3)
      .forEach((line, j) => {
        text.push(`<text x="${left}" y="${top + size + 30 + 15 * j}" class="sent">${escapeXml(line)}</text>`);
      });
    return {
      input: Buffer.from(t.rgb.buffer, t.rgb.byteOffset, t.rgb.byteLength),
      raw: { width: size, height: size, channels: 3 as const },
      left,
      top,
    };
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
<style>
  .header { font: bold 11px 'DejaVu Sans'; fill: #777; }
  .sent { font: 13px 'DejaVu Sans'; fill: #111; }
</style>
${text.join('\n')}
</svg>`;
  await mkdir(dirname(o.out), { recursive: true });
  await sharp({ create: { width, height, channels: 3, background: { r: 255, g: 255, b: 255 } } })
    .composite([...images, { input: Buffer.from(svg), left: 0, top: 0 }])
    .png({ compressionLevel: 9, palette: true, quality: 90 })
    .toFile(o.out);
  return [width, height];
}
