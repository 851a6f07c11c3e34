// PNG encoding of what the segmenter draws (masks, overlays, heatmaps), for the CLI and the server.
// Node only (sharp); draw.ts stays browser-safe, the browser encodes with its canvas.

import sharp from 'sharp';
import { writeFileAtomic } from '../io/atomic.js';
import type { BinaryMask, RgbImage } from '../data/image.js';
import { maskToGray } from './draw.js';

/** A raw 8-bit image with 1 (gray) or 3 (RGB) channels, HWC row-major. */
export interface RawImage {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Uint8Array;
}

/** Encodes raw pixels as PNG. sharp runs on libuv's pool, so a server's main thread stays free. */
export async function encodePng(img: RawImage): Promise<Uint8Array> {
  const { width, height, channels, data } = img;
  if (data.length !== width * height * channels)
    throw new Error(`png: ${data.length} bytes for ${width}×${height}×${channels}`);
  let pipeline = sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), {
    raw: { width, height, channels },
  });
  // sharp writes raw input as sRGB unless told: a mask stays one gray channel (a third of the size).
  if (channels === 1) pipeline = pipeline.toColourspace('b-w');
  const buf = await pipeline.png({ compressionLevel: 6 }).toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** A binary mask as a gray PNG: 255 inside, 0 outside, at the mask's own size. */
export function maskPng(mask: BinaryMask): Promise<Uint8Array> {
  return encodePng({ width: mask.width, height: mask.height, channels: 1, data: maskToGray(mask) });
}

export function rgbPng(image: RgbImage): Promise<Uint8Array> {
  return encodePng({ width: image.width, height: image.height, channels: 3, data: image.data });
}

/** Writes a PNG atomically: an interrupted run never leaves half a file where a mask was. */
export async function writePng(path: string, img: RawImage): Promise<void> {
  await writeFileAtomic(path, await encodePng(img));
}
