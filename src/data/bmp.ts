// BMP decoder (Windows bitmap, all DIB header versions: CORE, INFO, V2–V5) to 8-bit RGB.
//
// sharp's prebuilt libvips has no BMP loader (it would need ImageMagick), yet reliability.md lists
// BMP among the accepted formats, so we decode it here. Supported: 1/4/8-bit palettes, RLE8/RLE4,
// 16/32-bit BI_RGB and BI_BITFIELDS (with or without alpha), 24-bit, bottom-up and top-down rows.
// Embedded JPEG/PNG payloads (BI_JPEG/BI_PNG) and V4/V5 colour-space fields are not supported: the
// former are refused with a clear error, the latter ignored (pixels are taken as sRGB, as browsers do).
// Every declared extent is checked against the bytes present before anything is allocated.

export interface BmpOptions {
  /** Refuse images with more pixels than this before allocating them. */
  maxPixels: number;
  /** RGB the alpha channel (when the file has one) is composited onto. */
  background: readonly [number, number, number];
}

export interface DecodedRgb {
  width: number;
  height: number;
  /** RGB, HWC, row-major, 8 bits per channel. */
  data: Uint8Array;
}

const BI_RGB = 0;
const BI_RLE8 = 1;
const BI_RLE4 = 2;
const BI_BITFIELDS = 3;
const BI_JPEG = 4;
const BI_PNG = 5;
const BI_ALPHABITFIELDS = 6;

export function isBmp(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x42 && bytes[1] === 0x4d; // 'BM'
}

/** One colour channel described by a bit mask (BI_BITFIELDS) and how to widen it to 8 bits. */
interface Channel {
  mask: number;
  shift: number;
  max: number;
}

function channelOf(mask: number): Channel | null {
  if (mask === 0) return null;
  let shift = 0;
  while (((mask >>> shift) & 1) === 0) shift++;
  return { mask: mask >>> 0, shift, max: (mask >>> 0) >>> shift };
}

function read8bit(px: number, ch: Channel): number {
  return Math.round((((px & ch.mask) >>> ch.shift) * 255) / ch.max);
}

export function decodeBmp(bytes: Uint8Array, o: BmpOptions): DecodedRgb {
  const fail = (msg: string): never => {
    throw new Error(`BMP ${msg}`); // the caller prefixes the source
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (end: number, what: string): void => {
    if (end > bytes.length) fail(`truncated: ${what} needs ${end} bytes, file has ${bytes.length}`);
  };
  if (!isBmp(bytes)) fail('signature missing');
  need(18, 'file header');
  const dataOffset = view.getUint32(10, true);
  const headerSize = view.getUint32(14, true);
  need(14 + headerSize, 'DIB header');

  let width: number;
  let height: number;
  let bpp: number;
  let compression = BI_RGB;
  let colorsUsed = 0;
  let paletteEntrySize = 4;
  let masks: number[] | null = null; // [r, g, b, a]
  if (headerSize === 12) {
    // BITMAPCOREHEADER (OS/2 1.x): unsigned 16-bit sizes, 3-byte palette entries.
    width = view.getUint16(18, true);
    height = view.getUint16(20, true);
    if (view.getUint16(22, true) !== 1) fail('planes must be 1');
    bpp = view.getUint16(24, true);
    paletteEntrySize = 3;
  } else if (headerSize >= 40) {
    width = view.getInt32(18, true);
    height = view.getInt32(22, true);
    if (view.getUint16(26, true) !== 1) fail('planes must be 1');
    bpp = view.getUint16(28, true);
    compression = view.getUint32(30, true);
    colorsUsed = view.getUint32(46, true);
    if (compression === BI_BITFIELDS || compression === BI_ALPHABITFIELDS) {
      // Masks live inside V2+ headers (size ≥ 52) or right after a 40-byte header.
      const withAlpha = compression === BI_ALPHABITFIELDS || headerSize >= 56;
      const count = withAlpha ? 4 : 3;
      need(54 + 4 * count, 'colour masks');
      masks = [];
      for (let i = 0; i < count; i++) masks.push(view.getUint32(54 + 4 * i, true));
      if (count === 3) masks.push(0);
    }
  } else {
    return fail(`unsupported DIB header size ${headerSize}`);
  }
  if (compression === BI_JPEG || compression === BI_PNG)
    fail('with an embedded JPEG/PNG payload is not supported');
  if (![BI_RGB, BI_RLE8, BI_RLE4, BI_BITFIELDS, BI_ALPHABITFIELDS].includes(compression)) {
    fail(`unknown compression ${compression}`);
  }
  const topDown = height < 0;
  height = Math.abs(height);
  if (width <= 0 || height <= 0) fail(`invalid size ${width}×${height}`);
  if (width * height > o.maxPixels) {
    fail(`is ${width}×${height} = ${width * height} pixels, over the limit of ${o.maxPixels}`);
  }
  if (![1, 4, 8, 16, 24, 32].includes(bpp)) fail(`unsupported bit depth ${bpp}`);
  if (compression === BI_RLE8 && bpp !== 8) fail('RLE8 requires 8 bits per pixel');
  if (compression === BI_RLE4 && bpp !== 4) fail('RLE4 requires 4 bits per pixel');
  if ((compression === BI_RLE8 || compression === BI_RLE4) && topDown) fail('RLE cannot be top-down');
  if (masks && bpp !== 16 && bpp !== 32) fail(`bit fields need 16 or 32 bits per pixel, got ${bpp}`);

  // Palette (bpp ≤ 8) follows the header and any masks stored after a 40-byte header.
  let palette: Uint8Array | null = null;
  if (bpp <= 8) {
    const paletteStart =
      14 + headerSize + (headerSize === 40 && masks ? (compression === BI_ALPHABITFIELDS ? 16 : 12) : 0);
    const n = colorsUsed || 1 << bpp;
    if (n > 1 << bpp) fail(`palette of ${n} colours for ${bpp}-bit pixels`);
    need(paletteStart + n * paletteEntrySize, 'palette');
    palette = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) {
      const p = paletteStart + i * paletteEntrySize;
      palette[i * 3] = bytes[p + 2]!;
      palette[i * 3 + 1] = bytes[p + 1]!;
      palette[i * 3 + 2] = bytes[p]!;
    }
  }
  if (dataOffset > bytes.length)
    fail(`pixel data offset ${dataOffset} is past the end (${bytes.length} bytes)`);

  const out = new Uint8Array(width * height * 3);
  const setIndex = (x: number, row: number, idx: number): void => {
    if (idx * 3 >= palette!.length) fail(`palette index ${idx} out of range at row ${row}, column ${x}`);
    const d = (row * width + x) * 3;
    out[d] = palette![idx * 3]!;
    out[d + 1] = palette![idx * 3 + 1]!;
    out[d + 2] = palette![idx * 3 + 2]!;
  };

  if (compression === BI_RLE8 || compression === BI_RLE4) {
    decodeRle(bytes, dataOffset, width, height, compression === BI_RLE4, setIndex, fail);
    return { width, height, data: out };
  }

  const stride = Math.floor((bpp * width + 31) / 32) * 4;
  need(dataOffset + stride * height, `pixel data (${height} rows of ${stride} bytes)`);
  if (bpp === 16 && !masks) masks = [0x7c00, 0x03e0, 0x001f, 0]; // BI_RGB 16-bit is 5-5-5
  const chans = masks ? masks.map(channelOf) : null;
  if (chans && (!chans[0] || !chans[1] || !chans[2])) fail('colour mask is zero');
  const alpha = new Uint8Array(chans?.[3] ? width * height : 0);

  for (let y = 0; y < height; y++) {
    const row = topDown ? y : height - 1 - y;
    const src = dataOffset + y * stride;
    for (let x = 0; x < width; x++) {
      const d = (row * width + x) * 3;
      if (bpp <= 8) {
        const bit = x * bpp;
        const byte = bytes[src + (bit >> 3)]!;
        setIndex(x, row, (byte >> (8 - bpp - (bit & 7))) & ((1 << bpp) - 1));
      } else if (bpp === 24 || (bpp === 32 && !chans)) {
        // 32-bit BI_RGB: the fourth byte is unused by definition (Windows ignores it too).
        const s = src + x * (bpp >> 3);
        out[d] = bytes[s + 2]!;
        out[d + 1] = bytes[s + 1]!;
        out[d + 2] = bytes[s]!;
      } else {
        const px = bpp === 16 ? view.getUint16(src + x * 2, true) : view.getUint32(src + x * 4, true);
        out[d] = read8bit(px, chans![0]!);
        out[d + 1] = read8bit(px, chans![1]!);
        out[d + 2] = read8bit(px, chans![2]!);
        if (chans![3]) alpha[row * width + x] = read8bit(px, chans![3]);
      }
    }
  }
  // Many writers leave an all-zero alpha channel meaning "unused"; browsers show such files opaque.
  if (alpha.length > 0 && alpha.some((a) => a !== 0)) {
    const [br, bg, bb] = o.background;
    for (let i = 0; i < alpha.length; i++) {
      const a = alpha[i]! / 255;
      out[i * 3] = Math.round(out[i * 3]! * a + br * (1 - a));
      out[i * 3 + 1] = Math.round(out[i * 3 + 1]! * a + bg * (1 - a));
      out[i * 3 + 2] = Math.round(out[i * 3 + 2]! * a + bb * (1 - a));
    }
  }
  return { width, height, data: out };
}

/**
 * RLE8/RLE4 (bottom-up only). Pixels the stream skips (deltas, early end of line) stay black.
 * A stream that ends before its end-of-bitmap marker is a truncated file.
 */
function decodeRle(
  bytes: Uint8Array,
  start: number,
  width: number,
  height: number,
  four: boolean,
  setIndex: (x: number, row: number, idx: number) => void,
  fail: (msg: string) => never,
): void {
  let p = start;
  let x = 0;
  let y = 0; // counted from the bottom
  const byte = (): number => {
    if (p >= bytes.length) fail(`truncated: RLE stream ends at byte ${p} before its end-of-bitmap marker`);
    return bytes[p++]!;
  };
  const put = (idx: number): void => {
    if (x < width && y < height) setIndex(x, height - 1 - y, idx);
    x++;
  };
  for (;;) {
    const count = byte();
    const value = byte();
    if (count > 0) {
      for (let i = 0; i < count; i++) put(four ? (i & 1 ? value & 15 : value >> 4) : value);
    } else if (value === 0) {
      x = 0;
      y++;
    } else if (value === 1) {
      return;
    } else if (value === 2) {
      x += byte();
      y += byte();
    } else {
      // Absolute mode: `value` literal pixels, padded to a 16-bit boundary.
      const n = four ? Math.ceil(value / 2) : value;
      for (let i = 0; i < value; i++) {
        if (four) {
          const b = bytes[p + (i >> 1)];
          if (b === undefined) fail('truncated: RLE literal run past the end of the file');
          put(i & 1 ? b & 15 : b >> 4);
        } else {
          put(byte());
        }
      }
      if (four) p += n;
      if (n & 1) p++;
    }
    if (y > height) fail('RLE stream runs past the last row');
  }
}
