// decodeImage (reliability.md "Images"), BMP decoding, letterbox and its inverse (restr.md §5).
// Every fixture is generated here with sharp or assembled byte by byte.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import {
  ImageDecodeError,
  binarize,
  decodeImage,
  letterbox,
  letterboxGeometry,
  letterboxMask,
  resizeBilinear,
  sniffFormat,
  unletterboxProbability,
  type RgbImage,
} from '../../src/data/image.js';

const raw = (w: number, h: number, f: (x: number, y: number) => [number, number, number]): Buffer => {
  const b = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) b.set(f(x, y), (y * w + x) * 3);
  return b;
};
const fromRaw = (b: Buffer, w: number, h: number, c = 3) =>
  sharp(b, { raw: { width: w, height: h, channels: c as 3 } });
const px = (img: RgbImage, x: number, y: number): number[] => [
  ...img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3),
];

// A pattern with distinct, well-separated values so lossless formats can be compared exactly.
const W = 24;
const H = 16;
const pattern = raw(W, H, (x, y) => [x * 10, y * 15, (x + y) % 2 ? 200 : 50]);

test('lossless formats decode to the exact pixels; sizes and format reported', async () => {
  for (const [fmt, enc] of [
    ['png', fromRaw(pattern, W, H).png()],
    ['webp', fromRaw(pattern, W, H).webp({ lossless: true })],
  ] as const) {
    const img = await decodeImage(await enc.toBuffer(), { source: `x.${fmt}` });
    assert.equal(img.format, fmt);
    assert.equal(img.width, W);
    assert.equal(img.height, H);
    assert.deepEqual(Buffer.from(img.data), pattern, fmt);
  }
  const jpg = await decodeImage(await fromRaw(pattern, W, H).jpeg({ quality: 100 }).toBuffer(), {
    source: 'x.jpg',
  });
  assert.equal(jpg.format, 'jpeg');
  assert.equal(jpg.data.length, W * H * 3);
});

test('refuses by magic bytes what is not JPEG/PNG/WebP/GIF/BMP, naming the source', async () => {
  const tiff = await fromRaw(pattern, W, H).tiff().toBuffer(); // sharp could decode it: the allow-list must refuse it
  const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>');
  for (const [name, bytes] of [
    ['a.tiff', tiff],
    ['b.svg', svg],
    ['c.bin', Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9])],
    ['empty', Buffer.alloc(0)],
  ] as const) {
    await assert.rejects(decodeImage(bytes, { source: name }), (e: Error) => {
      assert.ok(e instanceof ImageDecodeError);
      assert.match(e.message, new RegExp(`^${name.replace('.', '\\.')}: not a JPEG, PNG, WebP, GIF or BMP`));
      return true;
    });
  }
  assert.equal(sniffFormat(Buffer.from('GIF89a......')), 'gif');
  assert.equal(sniffFormat(Buffer.from('RIFF\0\0\0\0WEBPVP8 ')), 'webp');
  assert.equal(sniffFormat(Buffer.from('RIFF\0\0\0\0AVI LIST')), null);
});

test('pixel limit refuses big images before decoding, default and explicit', async () => {
  const png = await fromRaw(pattern, W, H).png().toBuffer();
  await assert.rejects(
    decodeImage(png, { source: 'big.png', maxPixels: W * H - 1 }),
    /^ImageDecodeError: big\.png: image is 24×16 = 384 pixels, over the limit of 383|big\.png: image is 24×16 = 384 pixels, over the limit of 383/,
  );
  assert.equal((await decodeImage(png, { source: 'ok.png', maxPixels: W * H })).width, W);
  const bmp = makeBmp({ width: 4, height: 4, bpp: 24, rows: () => new Uint8Array(12) });
  await assert.rejects(
    decodeImage(bmp, { source: 'big.bmp', maxPixels: 15 }),
    /big\.bmp: BMP is 4×4 = 16 pixels, over the limit of 15/,
  );
});

test('EXIF orientation is applied first (orientation 6 = rotate 90° clockwise)', async () => {
  // Red top-left quadrant on blue; after a clockwise quarter turn it is the top-right quadrant.
  const w = 32;
  const h = 16;
  const src = raw(w, h, (x, y) => (x < w / 2 && y < h / 2 ? [255, 0, 0] : [0, 0, 255]));
  const jpg = await fromRaw(src, w, h).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
  assert.equal((await sharp(jpg).metadata()).orientation, 6);
  const img = await decodeImage(jpg, { source: 'exif.jpg' });
  assert.equal(img.orientation, 6);
  assert.equal(img.width, h);
  assert.equal(img.height, w);
  const red = (p: number[]): boolean => p[0]! > 200 && p[2]! < 60;
  assert.ok(red(px(img, img.width - 3, 3)), 'top-right is red');
  assert.ok(!red(px(img, 2, 2)), 'top-left is not red');
  assert.ok(!red(px(img, img.width - 3, img.height - 3)), 'bottom-right is not red');
});

test('truncated JPEG, PNG, WebP and GIF are errors, not gray images', async () => {
  const encs = {
    jpeg: await fromRaw(pattern, W, H).jpeg().toBuffer(),
    png: await fromRaw(pattern, W, H).png().toBuffer(),
    webp: await fromRaw(pattern, W, H).webp().toBuffer(),
    gif: await fromRaw(pattern, W, H).gif().toBuffer(),
  };
  for (const [fmt, full] of Object.entries(encs)) {
    await decodeImage(full, { source: `whole.${fmt}` }); // the untruncated file decodes
    // 1 byte (JPEG EOI / PNG IEND incomplete), 16 bytes (PNG: IEND and the IDAT CRC gone; libspng
    // alone accepts that), and half the file.
    for (const cut of [1, 16, Math.floor(full.length / 2)]) {
      await assert.rejects(
        decodeImage(full.subarray(0, full.length - cut), { source: `cut.${fmt}` }),
        new RegExp(`^ImageDecodeError: cut\\.${fmt}: .*(truncated|premature|end of|corrupt|unable)`, 'i'),
        `${fmt} cut by ${cut}`,
      );
    }
  }
});

test('16-bit, gray, alpha: all become 8-bit sRGB RGB; alpha over white by default', async () => {
  const png8 = await fromRaw(pattern, W, H).png().toBuffer();
  const png16 = await fromRaw(pattern, W, H).toColourspace('rgb16').png().toBuffer();
  assert.equal((await sharp(png16).metadata()).depth, 'ushort');
  const a = await decodeImage(png8, { source: '8.png' });
  const b = await decodeImage(png16, { source: '16.png' });
  assert.deepEqual(b.data, a.data);

  const gray = await sharp(Buffer.alloc(6, 77), { raw: { width: 3, height: 2, channels: 1 } })
    .png()
    .toBuffer();
  const g = await decodeImage(gray, { source: 'g.png' });
  assert.deepEqual([...g.data], new Array(18).fill(77));

  // CMYK JPEG → sRGB: a red image stays red.
  const redRaw = raw(8, 8, () => [255, 0, 0]);
  const cmyk = await fromRaw(redRaw, 8, 8).toColourspace('cmyk').jpeg({ quality: 100 }).toBuffer();
  assert.equal((await sharp(cmyk).metadata()).space, 'cmyk');
  const c = px(await decodeImage(cmyk, { source: 'c.jpg' }), 4, 4);
  assert.ok(c[0]! > 200 && c[1]! < 60 && c[2]! < 60, `cmyk red decoded as ${c}`);

  // RGBA: pixel 0 transparent, pixel 1 opaque green, pixel 2 half-transparent black.
  const rgba = Buffer.from([10, 20, 30, 0, 0, 255, 0, 255, 0, 0, 0, 128]);
  const png = await sharp(rgba, { raw: { width: 3, height: 1, channels: 4 } })
    .png()
    .toBuffer();
  const white = await decodeImage(png, { source: 'a.png' });
  assert.deepEqual(px(white, 0, 0), [255, 255, 255]);
  assert.deepEqual(px(white, 1, 0), [0, 255, 0]);
  assert.ok(Math.abs(px(white, 2, 0)[0]! - 127) <= 1);
  const black = await decodeImage(png, { source: 'a.png', background: 'black' });
  assert.deepEqual(px(black, 0, 0), [0, 0, 0]);
});

test('GIF: first frame only', async () => {
  const red = await sharp({ create: { width: 8, height: 6, channels: 3, background: '#ff0000' } })
    .png()
    .toBuffer();
  const blue = await sharp({ create: { width: 8, height: 6, channels: 3, background: '#0000ff' } })
    .png()
    .toBuffer();
  const gif = await sharp([red, blue], { join: { animated: true } })
    .gif()
    .toBuffer();
  assert.equal((await sharp(gif).metadata()).pages, 2);
  const img = await decodeImage(gif, { source: 'anim.gif' });
  assert.equal(img.height, 6);
  assert.deepEqual(px(img, 4, 3), [255, 0, 0]);
});

// ---------- BMP, assembled byte by byte ----------

interface BmpSpec {
  width: number;
  height: number;
  bpp: number;
  topDown?: boolean;
  headerSize?: number;
  compression?: number;
  palette?: [number, number, number][];
  masks?: number[];
  /** Row y (top to bottom) as stored, without padding; or `data` for the whole pixel array. */
  rows?: (y: number) => Uint8Array;
  data?: Uint8Array;
}

function makeBmp(s: BmpSpec): Buffer {
  const headerSize = s.headerSize ?? 40;
  const stride = Math.floor((s.bpp * s.width + 31) / 32) * 4;
  let pixels = s.data;
  if (!pixels) {
    pixels = new Uint8Array(stride * s.height);
    for (let i = 0; i < s.height; i++) {
      const y = s.topDown ? i : s.height - 1 - i;
      pixels.set(s.rows!(y), i * stride);
    }
  }
  const masksAfter = headerSize === 40 && s.masks ? s.masks.length * 4 : 0;
  const pal = (s.palette ?? []).length * 4;
  const offset = 14 + headerSize + masksAfter + pal;
  const b = Buffer.alloc(offset + pixels.length);
  b.write('BM', 0, 'latin1');
  b.writeUInt32LE(b.length, 2);
  b.writeUInt32LE(offset, 10);
  b.writeUInt32LE(headerSize, 14);
  b.writeInt32LE(s.width, 18);
  b.writeInt32LE(s.topDown ? -s.height : s.height, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(s.bpp, 28);
  b.writeUInt32LE(s.compression ?? 0, 30);
  b.writeUInt32LE(s.palette?.length ?? 0, 46);
  s.masks?.forEach((m, i) => b.writeUInt32LE(m >>> 0, 54 + 4 * i));
  (s.palette ?? []).forEach(([r, g, bl], i) => b.set([bl, g, r, 0], 14 + headerSize + masksAfter + 4 * i));
  b.set(pixels, offset);
  return b;
}

test('BMP: 24-bit bottom-up, 8-bit and 1-bit palettes, 16-bit 555, 32-bit bitfields with alpha, RLE8', async () => {
  const expect = (w: number, h: number, f: (x: number, y: number) => number[]): number[] => {
    const out: number[] = [];
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out.push(...f(x, y));
    return out;
  };
  const dec = async (b: Buffer) => {
    const img = await decodeImage(b, { source: 't.bmp' });
    assert.equal(img.format, 'bmp');
    return img;
  };
  // 24-bit, 3×2 (rows padded from 9 to 12 bytes), stored bottom-up as BGR.
  const c24 = (x: number, y: number) => [x * 80, y * 100, 7];
  const b24 = makeBmp({
    width: 3,
    height: 2,
    bpp: 24,
    rows: (y) => Uint8Array.from(expect(3, 1, (x) => c24(x, y).reverse())),
  });
  assert.deepEqual([...(await dec(b24)).data], expect(3, 2, c24));

  const pal: [number, number, number][] = [
    [0, 0, 0],
    [255, 0, 0],
    [0, 255, 0],
    [9, 8, 7],
  ];
  const b8 = makeBmp({
    width: 3,
    height: 2,
    bpp: 8,
    palette: pal,
    topDown: true,
    rows: (y) => Uint8Array.from([y, y + 1, 3]),
  });
  assert.deepEqual(
    [...(await dec(b8)).data],
    expect(3, 2, (x, y) => pal[[y, y + 1, 3][x]!]!),
  );

  // 1-bit: 10 pixels per row, MSB first: pattern 1010000011.
  const b1 = makeBmp({
    width: 10,
    height: 1,
    bpp: 1,
    palette: [
      [0, 0, 0],
      [255, 255, 255],
    ],
    rows: () => Uint8Array.from([0b10100000, 0b11000000]),
  });
  assert.deepEqual(
    [...(await dec(b1)).data],
    expect(10, 1, (x) => ([0, 2, 8, 9].includes(x) ? [255, 255, 255] : [0, 0, 0])),
  );

  // 16-bit BI_RGB is 5-5-5: 0x7c00 is pure red, 0x001f pure blue.
  const b16 = makeBmp({
    width: 2,
    height: 1,
    bpp: 16,
    rows: () => Uint8Array.from([0x00, 0x7c, 0x1f, 0x00]),
  });
  assert.deepEqual([...(await dec(b16)).data], [255, 0, 0, 0, 0, 255]);

  // 32-bit V4 header, BI_BITFIELDS BGRA: an opaque red, a transparent pixel (→ white), a half-alpha black.
  const b32 = makeBmp({
    width: 3, height: 1, bpp: 32, headerSize: 108, compression: 3, topDown: true,
    masks: [0x00ff0000, 0x0000ff00, 0x000000ff, 0xff000000],
    rows: () => Uint8Array.from([0, 0, 255, 255, 1, 2, 3, 0, 0, 0, 0, 128]),
  }); // prettier-ignore
  const d32 = await dec(b32);
  assert.deepEqual(px(d32, 0, 0), [255, 0, 0]);
  assert.deepEqual(px(d32, 1, 0), [255, 255, 255]);
  assert.deepEqual(px(d32, 2, 0), [127, 127, 127]);

  // RLE8 4×2 bottom-up: row 0 (bottom) = run of 4 × index 1; row 1 = literal [2, 3, 2] then a run of 1 × 1.
  const rle = Uint8Array.from([4, 1, 0, 0, 0, 3, 2, 3, 2, 0, 1, 1, 0, 1]);
  const brle = makeBmp({ width: 4, height: 2, bpp: 8, compression: 1, palette: pal, data: rle });
  assert.deepEqual(
    [...(await dec(brle)).data],
    [...[2, 3, 2, 1].flatMap((i) => pal[i]!), ...[1, 1, 1, 1].flatMap((i) => pal[i]!)],
  );
  // The same stream without its end-of-bitmap marker is truncated.
  const cut = makeBmp({
    width: 4,
    height: 2,
    bpp: 8,
    compression: 1,
    palette: pal,
    data: rle.subarray(0, 10),
  });
  await assert.rejects(decodeImage(cut, { source: 'rle.bmp' }), /rle\.bmp: BMP truncated: RLE stream/);
});

test('BMP: truncated pixel data and unsupported payloads are errors naming the file', async () => {
  const ok = makeBmp({ width: 4, height: 4, bpp: 24, rows: () => new Uint8Array(12) });
  await decodeImage(ok, { source: 'ok.bmp' });
  await assert.rejects(
    decodeImage(ok.subarray(0, ok.length - 1), { source: 'cut.bmp' }),
    /cut\.bmp: BMP truncated: pixel data/,
  );
  await assert.rejects(
    decodeImage(ok.subarray(0, 20), { source: 'hdr.bmp' }),
    /hdr\.bmp: BMP truncated: DIB header/,
  );
  const jpegInBmp = makeBmp({ width: 4, height: 4, bpp: 24, compression: 4, rows: () => new Uint8Array(12) });
  await assert.rejects(
    decodeImage(jpegInBmp, { source: 'j.bmp' }),
    /j\.bmp: BMP with an embedded JPEG\/PNG payload/,
  );
});

// ---------- letterbox ----------

test('letterbox geometry: scale = S/max(h,w), centered, long side exactly S', () => {
  assert.deepEqual(letterboxGeometry(640, 480, 480), {
    size: 480,
    scale: 0.75,
    padX: 0,
    padY: 60,
    newW: 480,
    newH: 360,
  });
  assert.deepEqual(letterboxGeometry(300, 500, 100), {
    size: 100,
    scale: 0.2,
    padX: 20,
    padY: 0,
    newW: 60,
    newH: 100,
  });
  // Odd padding: the extra pixel goes right/bottom.
  assert.deepEqual(letterboxGeometry(10, 3, 10), { size: 10, scale: 1, padX: 0, padY: 3, newW: 10, newH: 3 });
  assert.deepEqual(letterboxGeometry(2, 5, 10), { size: 10, scale: 2, padX: 3, padY: 0, newW: 4, newH: 10 });
});

test('letterbox tensor: normalized, zero padding in pixel space, CHW', () => {
  const img: RgbImage = { width: 8, height: 4, data: Uint8Array.from(raw(8, 4, () => [255, 0, 51])) };
  const lb = letterbox(img, 4); // → 4×2 at rows 1..2
  assert.equal(lb.tensor.length, 3 * 16);
  const at = (c: number, y: number, x: number): number => lb.tensor[c * 16 + y * 4 + x]!;
  for (let x = 0; x < 4; x++) {
    for (const y of [0, 3])
      for (let c = 0; c < 3; c++) assert.equal(at(c, y, x), -1, 'padding = (0/255-0.5)/0.5');
    for (const y of [1, 2]) {
      assert.ok(Math.abs(at(0, y, x) - 1) < 1e-6);
      assert.ok(Math.abs(at(1, y, x) + 1) < 1e-6);
      assert.ok(Math.abs(at(2, y, x) - (51 / 255 - 0.5) / 0.5) < 1e-6);
    }
  }
  const custom = letterbox(img, 4, { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
  assert.ok(Math.abs(custom.tensor[0]! - -0.485 / 0.229) < 1e-6);
});

test('letterbox resampling is antialiased bilinear (PIL semantics), hand-computed', () => {
  // One row 4 → 2 (S = 2 gives newW 2, newH 1 from a 4×2 image; both rows equal).
  const vals = [0, 100, 200, 255];
  const img: RgbImage = { width: 4, height: 2, data: Uint8Array.from(raw(4, 2, (x) => [vals[x]!, 0, 0])) };
  const lb = letterbox(img, 2, { mean: [0, 0, 0], std: [1 / 255, 1, 1] }); // channel 0 in 0..255 units
  // Output 0: center 1.0, support 2 → taps 0,1,2 with triangle weights 0.75, 0.75, 0.25 (÷1.75).
  const o0 = (0 * 0.75 + 100 * 0.75 + 200 * 0.25) / 1.75;
  // Output 1: center 3.0 → taps 1,2,3 with 0.25, 0.75, 0.75.
  const o1 = (100 * 0.25 + 200 * 0.75 + 255 * 0.75) / 1.75;
  assert.equal(lb.padY, 0);
  assert.ok(Math.abs(lb.tensor[0]! - o0) < 1e-3, `${lb.tensor[0]} vs ${o0}`);
  assert.ok(Math.abs(lb.tensor[1]! - o1) < 1e-3, `${lb.tensor[1]} vs ${o1}`);
});

test('letterbox at scale 1 keeps every pixel (non-square too: padding only along the short side)', () => {
  const w = 6;
  const h = 4;
  const data = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 37) % 256);
  const lb = letterbox({ width: w, height: h, data }, 6);
  assert.equal(lb.padY, 1);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        assert.equal(
          lb.tensor[c * 36 + (y + 1) * 6 + x],
          Math.fround((data[(y * w + x) * 3 + c]! / 255 - 0.5) / 0.5),
        );
});

test('resizeBilinear: half-pixel upsampling, hand-computed', () => {
  // [0, 1] → 4: source coords -0.25 (clamped 0), 0.25, 0.75, 1.25 (clamped 1).
  const out = resizeBilinear(Float32Array.from([0, 1]), 2, 0, 0, 2, 1, 4, 1);
  assert.deepEqual([...out], [0, 0.25, 0.75, 1]);
});

function rectMask(w: number, h: number, x0: number, y0: number, x1: number, y1: number) {
  const data = new Uint8Array(w * h);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) data[y * w + x] = 1;
  return { width: w, height: h, data };
}

test('letterboxMask nearest: binary, placed with the image geometry; area: exact coverage', () => {
  const m = rectMask(8, 4, 0, 0, 4, 4); // left half of an 8×4 mask
  const s = 4; // → 4×2 at rows 1..2, left half = columns 0..1
  const near = letterboxMask(m, s);
  assert.deepEqual([...near], [0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0]);
  const m2 = rectMask(8, 4, 0, 0, 3, 4); // 3 of 8 columns → output column 1 covers source 2..3: half covered
  const area = letterboxMask(m2, s, 'area');
  assert.deepEqual([...area.subarray(4, 8)], [1, 0.5, 0, 0]);
  // scale 1 (a 4×2 mask into 4): each pixel is its source pixel, padded rows above and below
  const same = letterboxMask(rectMask(4, 2, 1, 0, 3, 1), s, 'area');
  assert.deepEqual([...same], [0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
});

test('unletterbox inverts letterbox: identity at scale 1, round trip IoU near 1 otherwise', () => {
  // Scale 1 (long side = S): the crop comes back exactly.
  const m = rectMask(6, 4, 1, 1, 4, 3);
  const lb1 = letterboxMask(m, 6);
  const g1 = letterboxGeometry(6, 4, 6);
  assert.deepEqual(binarize(unletterboxProbability(lb1, g1, 6, 4), 0.5), m.data);

  for (const [w, h, s] of [
    [640, 427, 480],
    [333, 500, 96],
    [50, 30, 96],
  ] as const) {
    const gt = rectMask(
      w,
      h,
      Math.floor(w * 0.3),
      Math.floor(h * 0.2),
      Math.floor(w * 0.8),
      Math.floor(h * 0.9),
    );
    const g = letterboxGeometry(w, h, s);
    const back = binarize(unletterboxProbability(letterboxMask(gt, s, 'area'), g, w, h), 0.5);
    let i = 0;
    let u = 0;
    for (let k = 0; k < back.length; k++) {
      if (back[k] && gt.data[k]) i++;
      if (back[k] || gt.data[k]) u++;
    }
    assert.ok(i / u > 0.97, `${w}×${h} via ${s}: IoU ${i / u}`);
    // Pixels well inside and well outside come back exactly.
    assert.equal(back[Math.floor(h * 0.55) * w + Math.floor(w * 0.55)], 1);
    assert.equal(back[0], 0);
  }
  assert.throws(() => unletterboxProbability(new Float32Array(10), g1, 6, 4), /expected 6×6/);
});
