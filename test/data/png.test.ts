// The plain-PNG fast path (src/data/png.ts): byte-assembled PNGs with every row filter, compared
// pixel for pixel with sharp's decode of the same bytes; and every case it must leave to sharp.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { decodeImage } from '../../src/data/image.js';
import { decodePlainPng } from '../../src/data/png.js';

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(head.subarray(4))), 0);
  return Buffer.concat([head, data, crc]);
}

/**
 * A PNG of `rows` (each row's filter byte, then its filtered bytes, as stored), colour type 0 or 2,
 * with the compressed data split over `parts` IDAT chunks and `extra` chunks before the first.
 */
function assemble(
  w: number,
  h: number,
  colorType: 0 | 2,
  rows: Uint8Array,
  parts = 1,
  extra: Buffer[] = [],
): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, colorType, 0, 0, 0], 8);
  const z = deflateSync(rows);
  const cut = Math.ceil(z.length / parts);
  const idats = Array.from({ length: parts }, (_, i) => chunk('IDAT', z.subarray(i * cut, (i + 1) * cut)));
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), ...extra, ...idats, chunk('IEND', new Uint8Array(0))]);
}

/** Filtered rows with pseudo-random bytes and the given filter per row (wrapping sums included). */
function rows(w: number, h: number, channels: number, filters: number[]): Uint8Array {
  const stride = w * channels;
  const out = new Uint8Array(h * (stride + 1));
  let s = 12345;
  for (let y = 0; y < h; y++) {
    out[y * (stride + 1)] = filters[y % filters.length]!;
    for (let x = 0; x < stride; x++) {
      s = (s * 1103515245 + 12345) >>> 0;
      out[y * (stride + 1) + 1 + x] = s >>> 24;
    }
  }
  return out;
}

async function sharpRgb(png: Buffer): Promise<Uint8Array> {
  const { data } = await sharp(png)
    .toColourspace('srgb')
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return new Uint8Array(data);
}

test('plain PNG: every row filter (None, Sub, Up, Average, Paeth), RGB and grey, equals sharp', async () => {
  for (const [colorType, channels] of [
    [2, 3],
    [0, 1],
  ] as const) {
    // filters in every order, including Paeth and Average on the first row (no row above)
    for (const filters of [
      [0, 1, 2, 3, 4],
      [4, 3, 2, 1, 0],
      [3, 4, 1],
    ]) {
      const png = assemble(9, 7, colorType, rows(9, 7, channels, filters), 3);
      const fast = decodePlainPng(png, 1e6);
      assert.ok(fast, `colour type ${colorType}, filters ${filters}: the fast path declined`);
      assert.equal(fast.width, 9);
      assert.equal(fast.height, 7);
      assert.deepEqual(fast.data, await sharpRgb(png), `colour type ${colorType}, filters ${filters}`);
      const viaDecode = await decodeImage(png, { source: 'x.png' });
      assert.deepEqual(viaDecode.data, fast.data);
      assert.equal(viaDecode.format, 'png');
    }
  }
});

test('plain PNG: sharp-encoded images (its own filter choice) decode as sharp does', async () => {
  const w = 40;
  const h = 23;
  const px = Buffer.alloc(w * h * 3);
  for (let i = 0; i < px.length; i++) px[i] = (i * 37 + ((i / 3) | 0) * 11) & 255;
  for (const level of [0, 6, 9]) {
    const png = await sharp(px, { raw: { width: w, height: h, channels: 3 } })
      .png({ compressionLevel: level, adaptiveFiltering: true })
      .toBuffer();
    const fast = decodePlainPng(png, 1e6);
    assert.ok(fast, `compression ${level}: the fast path declined`);
    assert.deepEqual(fast.data, new Uint8Array(px));
  }
});

test('plain PNG: what it leaves to sharp (alpha, palette, 16-bit, interlace, ICC/gamma/tRNS/EXIF, damage, size)', async () => {
  const w = 6;
  const h = 5;
  const px = Buffer.alloc(w * h * 3, 100);
  const enc = (o: sharp.PngOptions, channels: 3 | 4 = 3) =>
    sharp(channels === 3 ? px : Buffer.alloc(w * h * 4, 200), { raw: { width: w, height: h, channels } })
      .png(o)
      .toBuffer();
  const declined: [string, Buffer][] = [
    ['RGBA', await enc({}, 4)],
    ['palette', await enc({ palette: true })],
    ['interlaced', await enc({ progressive: true })],
    [
      '16-bit',
      await sharp(px, { raw: { width: w, height: h, channels: 3 } })
        .toColourspace('rgb16')
        .png()
        .toBuffer(),
    ],
  ];
  const plain = rows(w, h, 3, [0]);
  for (const type of ['tRNS', 'iCCP', 'gAMA', 'cHRM', 'sBIT', 'eXIf'])
    declined.push([type, assemble(w, h, 2, plain, 1, [chunk(type, new Uint8Array(6))])]);
  const good = assemble(w, h, 2, plain);
  const badCrc = Buffer.from(good);
  badCrc[badCrc.length - 13] ^= 1; // last byte of the IDAT CRC (IEND is the final 12 bytes)
  declined.push(['a bad IDAT CRC', badCrc]);
  const badFilter = Buffer.from(plain);
  badFilter[0] = 5;
  declined.push(['filter type 5', assemble(w, h, 2, badFilter)]);
  declined.push(['short image data', assemble(w, h, 2, plain.subarray(0, plain.length - 1))]);
  for (const [what, png] of declined) assert.equal(decodePlainPng(png, 1e6), null, what);
  assert.equal(decodePlainPng(good, w * h - 1), null, 'over the pixel limit');
  assert.ok(decodePlainPng(good, w * h), 'at the pixel limit');
  // an ancillary chunk that changes no pixel does not send the image to sharp
  assert.ok(decodePlainPng(assemble(w, h, 2, plain, 1, [chunk('pHYs', new Uint8Array(9))]), 1e6));
  // a damaged file still fails, through sharp, naming the file
  await assert.rejects(decodeImage(assemble(w, h, 2, badFilter), { source: 'bad.png' }), /bad\.png/);
});
