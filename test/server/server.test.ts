// The HTTP server (src/server/) over real HTTP on 127.0.0.1, ephemeral ports, a random-init model:
// the happy path (multipart and JSON in; JSON RLE and PNG out, equal to the library's mask), the
// health endpoints, and every limit of reliability.md "Server": 413 body and pixels, 415 format,
// 400 undecodable image / empty / too long / invalid UTF-8 text, 429 + Retry-After when the queue
// is full, 504 past the deadline. Error bodies are {error} with no stack trace or path.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { decodeRle } from '../../src/data/rle.js';
import { loadSegmenter } from '../../src/infer/segmenter.js';
import { type RunningServer, startServer } from '../../src/server/server.js';
import { bundledExample, testCheckpointBytes } from '../infer/helpers.js';

const example = bundledExample();
const TEXT = example.expressions[0]!.text;
const checkpoint = testCheckpointBytes();
let server: RunningServer;
let expectedMask: Uint8Array;

before(async () => {
  server = await startServer({
    checkpoint,
    port: 0,
    maxBodyBytes: 256 * 1024,
    maxPixels: 400 * 400,
    maxTextChars: 40,
    threads: 1,
  });
  const seg = await loadSegmenter(checkpoint, { threads: 1 });
  expectedMask = (await seg.segment(example.image, TEXT)).mask.data;
  await seg.dispose();
  await server.ready;
});
after(() => server.close());

function form(image: Uint8Array | null, text: string | null, extra: Record<string, string> = {}): FormData {
  const f = new FormData();
  if (image) f.append('image', new Blob([image], { type: 'image/png' }), 'scene.png');
  if (text !== null) f.append('text', text);
  for (const [k, v] of Object.entries(extra)) f.append(k, v);
  return f;
}

const post = (
  body: NonNullable<RequestInit['body']>,
  headers: Record<string, string> = {},
  url = server.url,
) => fetch(`${url}/v1/segment`, { method: 'POST', body, headers });

/** An error answer: the status, a JSON {error} body without stack traces or file-system paths. */
async function expectError(res: Response, status: number, message: RegExp): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const body = JSON.parse(text) as { error: string };
  assert.deepEqual(Object.keys(body), ['error']);
  assert.match(body.error, message);
  assert.doesNotMatch(body.error, /\n\s+at |\/work\/|\/tmp\/|node_modules|\.js:\d+/);
}

test('health: /healthz live, /readyz ready once the model is warmed up; unknown paths 404, wrong methods 405', async () => {
  assert.equal(server.isReady(), true);
  const h = await fetch(`${server.url}/healthz`);
  assert.equal(h.status, 200);
  assert.deepEqual(await h.json(), { status: 'ok' });
  const r = await fetch(`${server.url}/readyz`);
  assert.equal(r.status, 200);
  assert.equal(((await r.json()) as { status: string }).status, 'ready');
  await expectError(await fetch(`${server.url}/v1/nothing`), 404, /not found/);
  const g = await fetch(`${server.url}/v1/segment`);
  assert.equal(g.headers.get('allow'), 'POST');
  await expectError(g, 405, /POST/);
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'binds 127.0.0.1 by default');
});

test('multipart → JSON: RLE of the mask at the image size, equal to the library’s mask', async () => {
  const res = await post(form(example.image, TEXT));
  assert.equal(res.status, 200);
  const j = (await res.json()) as {
    width: number;
    height: number;
    rle: { size: [number, number]; counts: string };
    score: number;
    area: number;
    timings: Record<string, number>;
  };
  assert.equal(j.width, example.width);
  assert.equal(j.height, example.height);
  assert.deepEqual(j.rle.size, [example.height, example.width]);
  assert.deepEqual(decodeRle(j.rle).data, expectedMask);
  assert.equal(
    j.area,
    expectedMask.reduce((a, v) => a + v, 0),
  );
  assert.ok(j.score > 0 && j.score <= 1);
  for (const k of ['decode', 'text', 'queueAndInference', 'request'])
    assert.equal(typeof j.timings[k], 'number', k);
});

test('JSON {image: base64, text} → PNG mask with Accept: image/png', async () => {
  const body = JSON.stringify({ image: Buffer.from(example.image).toString('base64'), text: TEXT });
  const res = await post(body, { 'content-type': 'application/json', accept: 'image/png' });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'image/png');
  assert.ok(Number(res.headers.get('x-refseg-score')) > 0);
  const png = Buffer.from(await res.arrayBuffer());
  const { data, info } = await sharp(png).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height], [example.width, example.height]);
  assert.ok(data.every((v, i) => v === expectedMask[i]! * 255));
  // A data URL (what a browser FileReader gives) is accepted too, and JSON wins when asked for.
  const dataUrl = JSON.stringify({
    image: `data:image/png;base64,${Buffer.from(example.image).toString('base64')}`,
    text: TEXT,
  });
  const j = await post(dataUrl, {
    'content-type': 'application/json',
    accept: 'application/json, image/png;q=0.5',
  });
  assert.equal(j.status, 200);
  assert.deepEqual(
    decodeRle(((await j.json()) as { rle: { size: [number, number]; counts: string } }).rle).data,
    expectedMask,
  );
});

test('limits: body over max-body-bytes → 413 (declared or streamed), image over max-pixels → 413', async () => {
  const big = new Uint8Array(300 * 1024);
  big.set(example.image);
  await expectError(await post(form(big, TEXT)), 413, /request body is over the limit of 262144 bytes/);
  // Chunked, no Content-Length: refused while streaming.
  const stream = new ReadableStream({
    start(c) {
      for (let i = 0; i < 10; i++) c.enqueue(new Uint8Array(64 * 1024));
      c.close();
    },
  });
  const res = await fetch(`${server.url}/v1/segment`, {
    method: 'POST',
    body: stream,
    headers: { 'content-type': 'application/json' },
    duplex: 'half',
  } as RequestInit);
  await expectError(res, 413, /over the limit/);
  const large = await sharp({ create: { width: 500, height: 400, channels: 3, background: '#808080' } })
    .png()
    .toBuffer();
  await expectError(await post(form(large, TEXT)), 413, /500×400 = 200000 pixels, over the limit of 160000/);
});

test('images: unsupported format → 415, undecodable → 400, missing → 400', async () => {
  await expectError(
    await post(form(new TextEncoder().encode('just text, no image'), TEXT)),
    415,
    /unsupported format/,
  );
  const truncated = example.image.subarray(0, 2000); // a PNG signature, then nothing whole
  await expectError(await post(form(truncated, TEXT)), 400, /truncated PNG/);
  await expectError(await post(form(null, TEXT)), 400, /missing field 'image'/);
  await expectError(
    await post('text=x', { 'content-type': 'application/x-www-form-urlencoded' }),
    415,
    /multipart\/form-data/,
  );
  await expectError(
    await post('{"image": 12, "text": "x"}', { 'content-type': 'application/json' }),
    400,
    /base64/,
  );
  await expectError(
    await post('{"image": "%%%", "text": "x"}', { 'content-type': 'application/json' }),
    400,
    /not valid base64/,
  );
  await expectError(await post('{nope', { 'content-type': 'application/json' }), 400, /not valid JSON/);
});

test('text: empty, too long, invalid UTF-8, missing → 400', async () => {
  await expectError(await post(form(example.image, '')), 400, /field 'text' is empty/);
  await expectError(await post(form(example.image, ' \t ')), 400, /field 'text' is empty/);
  await expectError(
    await post(form(example.image, 'x'.repeat(41))),
    400,
    /41 characters, over the limit of 40/,
  );
  assert.equal(
    (await post(form(example.image, '😀'.repeat(40)))).status,
    200,
    'the limit counts characters, not UTF-16 units or bytes',
  );
  await expectError(await post(form(example.image, null)), 400, /missing field 'text'/);
  // Multipart with raw bytes 0xff 0xfe in the text field.
  const boundary = 'refsegtestboundary';
  const parts = [
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`,
    ),
    Buffer.from(example.image),
    Buffer.from(
      `\r\n--${boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\nthe \xff\xfe cup\r\n--${boundary}--\r\n`,
      'latin1',
    ),
  ];
  await expectError(
    await post(Buffer.concat(parts), { 'content-type': `multipart/form-data; boundary=${boundary}` }),
    400,
    /field 'text' is not valid UTF-8/,
  );
  await expectError(
    await post('{"image": "AAAA", "text": "\\ud800 cup"}', { 'content-type': 'application/json' }),
    400,
    /not valid UTF-8/,
  );
  await expectError(await post(form(example.image, TEXT, { threshold: '2' })), 400, /threshold/);
  const cut = Buffer.concat(parts).subarray(0, 300);
  await expectError(
    await post(cut, { 'content-type': `multipart/form-data; boundary=${boundary}` }),
    400,
    /multipart body: part 1 is not closed/,
  );
});

test('overload: queue full → 429 with Retry-After; past the deadline → 504', async () => {
  const slow = await startServer({ checkpoint, port: 0, queue: 1, workers: 1, threads: 1, testDelayMs: 700 });
  try {
    await slow.ready;
    // One runs, one waits in the queue, the third is refused at once.
    const results = await Promise.all(
      [0, 1, 2].map(async (k) => {
        await new Promise((r) => setTimeout(r, 30 * k)); // arrive in order
        return post(form(example.image, TEXT), {}, slow.url);
      }),
    );
    const statuses = results.map((r) => r.status);
    assert.deepEqual(statuses, [200, 200, 429]);
    const refused = results[2]!;
    assert.match(refused.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    await expectError(refused, 429, /busy/);
    for (const r of results.slice(0, 2)) await r.arrayBuffer();
  } finally {
    await slow.close();
  }
  const late = await startServer({ checkpoint, port: 0, timeoutMs: 200, threads: 1, testDelayMs: 1000 });
  try {
    await late.ready;
    await expectError(
      await post(form(example.image, TEXT), {}, late.url),
      504,
      /no result within the 200 ms request timeout/,
    );
  } finally {
    await late.close();
  }
});
