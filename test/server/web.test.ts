// The web demo in headless Chromium (playwright-core, /usr/bin/chromium, no GPU → the WASM
// execution provider): the page loads the exported model with onnxruntime-web, shows the example,
// segments an expression typed into the form, draws the overlay at the image's size and reports
// the latency; its probabilities and mask agree with the Node segmenter on the same checkpoint
// (the page runs the project's own tokenizer/letterbox/post-processing modules), for ReSTR (image
// and text parts, word vocabulary) and Shared-RIS (one full model, SentencePiece in the page).
// SKIPS, saying why, when Chromium (Debian's `chromium` package), playwright-core or
// onnxruntime-web is missing.
// Also checks, without a browser, what the demo server serves and refuses.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { ModelCheckpoint } from '../../src/models/checkpoint.js';
import { loadSegmenter } from '../../src/infer/segmenter.js';
import { ORT_BUNDLE, type RunningDemo, findOrtWeb, startDemo } from '../../src/server/demo.js';
import { bundledExample, sharedRisTestModel, testModel } from '../infer/helpers.js';
import { CHROMIUM, openDemoPage, typeExpression } from '../helpers/demo-page.js';

const example = bundledExample();

async function withDemo<T>(fn: (d: RunningDemo) => Promise<T>): Promise<T> {
  const demo = await startDemo({ checkpoint: testModel(), port: 0 });
  try {
    return await fn(demo);
  } finally {
    await demo.close();
  }
}

test('demo server: page, browser modules, model parts, manifest; nothing outside its roots', async () => {
  await withDemo(async (d) => {
    assert.match(d.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const get = (p: string) => fetch(new URL(p, d.url));
    const page = await get('/');
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('cross-origin-embedder-policy'), 'require-corp');
    assert.match(await page.text(), /importmap[\s\S]*\/web\/app\.js/);
    for (const p of [
      '/web/app.js',
      '/web/style.css',
      '/web/sharp-stub.js',
      '/lib/data/text.js',
      '/lib/data/sentencepiece.js',
      '/lib/data/tokenizer.js',
      '/lib/data/image.js',
      '/lib/infer/draw.js',
      '/lib/infer/postprocess.js',
      '/example/scene.png',
      '/example/scene.json',
      '/model/image.onnx',
      '/model/text.onnx',
    ]) {
      const r = await get(p);
      assert.equal(r.status, 200, p);
      await r.arrayBuffer();
    }
    const m = (await (await get('/model/manifest.json')).json()) as {
      imageSize: number;
      maxTokens: number;
      tokenInput: string;
      vocab: { words: string[] };
      parts: { features: string[] };
    };
    assert.equal(m.imageSize, 32);
    assert.equal(m.tokenInput, 'words');
    assert.deepEqual(m.parts.features, ['v']);
    assert.ok(m.vocab.words.includes(example.expressions[0]!.text.split(' ')[1]!)); // built from the example's expressions
    // Only the listed browser modules, no path tricks, no other files.
    for (const p of [
      '/lib/runtime/session.js',
      '/lib/../package.json',
      '/web/../package.json',
      '/web/%2e%2e/package.json',
      '/web/..%2fpackage.json',
      '/model/other.onnx',
      '/etc/passwd',
    ]) {
      const r = await get(p);
      assert.equal(r.status, 404, p);
      await r.arrayBuffer();
    }
    assert.equal((await fetch(new URL('/model/manifest.json', d.url), { method: 'POST' })).status, 405);

    // onnxruntime-web's files come from node_modules (nothing is fetched from a CDN): the bundle the
    // manifest names and the WASM binaries next to it, with types the browser accepts.
    assert.equal(d.ort, findOrtWeb() !== null);
    if (d.ort) {
      const bundle = await get(`/ort/${ORT_BUNDLE}`);
      assert.equal(bundle.status, 200);
      assert.match(bundle.headers.get('content-type') ?? '', /^text\/javascript/);
      await bundle.arrayBuffer();
      const wasm = await get('/ort/ort-wasm-simd-threaded.jsep.wasm');
      assert.equal(wasm.status, 200);
      assert.equal(wasm.headers.get('content-type'), 'application/wasm');
      assert.deepEqual(
        new Uint8Array((await wasm.arrayBuffer()).slice(0, 4)),
        Uint8Array.of(0, 0x61, 0x73, 0x6d),
      );
      for (const p of ['/ort/../package.json', '/ort/%2e%2e/package.json']) {
        const r = await get(p);
        assert.equal(r.status, 404, p);
        await r.arrayBuffer();
      }
    }
  });
});

test('demo server, model without a split (Shared-RIS): one full model file', async () => {
  const demo = await startDemo({ checkpoint: sharedRisTestModel(), port: 0 });
  try {
    const m = (await (await fetch(new URL('/model/manifest.json', demo.url))).json()) as {
      kind: string;
      tokenInput: string;
      parts: Record<string, string>;
    };
    assert.equal(m.kind, 'shared-ris');
    assert.equal(m.tokenInput, 'text');
    assert.deepEqual(m.parts, { full: '/model/model.onnx' });
    const onnx = await fetch(new URL('/model/model.onnx', demo.url));
    assert.equal(onnx.status, 200);
    assert.ok((await onnx.arrayBuffer()).byteLength > 1000);
    assert.equal((await fetch(new URL('/model/image.onnx', demo.url))).status, 404);
  } finally {
    await demo.close();
  }
});

/** Why the browser test cannot run here, or null when it can. */
async function browserMissing(): Promise<string | null> {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} not found (apt-get install -y chromium)`;
  if (!findOrtWeb()) return 'onnxruntime-web is not installed (npm install onnxruntime-web)';
  try {
    const name = 'playwright-core'; // a variable: the type checker must not require the package
    await import(name);
  } catch {
    return 'playwright-core is not installed (npm install -D playwright-core)';
  }
  return null;
}

interface PageResult {
  text: string;
  width: number;
  height: number;
  area: number;
  score: number;
  probabilityMean: number;
  ep: string;
}

/** What the page computed for one expression typed into its form. */
interface PageRun {
  result: PageResult;
  /** The mask the overlay shows, one 0/1 per image pixel. */
  mask: number[];
  latency: string;
  resultLine: string;
  overlaySize: number[];
  manifestKind: string;
  errors: string[];
}

/** Opens the page on `checkpoint` (test/helpers/demo-page.ts), types `text` and reads what the page computed. */
async function runPage(checkpoint: ModelCheckpoint, text: string): Promise<PageRun> {
  const { page, errors, pageError, close } = await openDemoPage(checkpoint);
  try {
    assert.equal(pageError, null);
    await typeExpression(page, text);
    const latency = (await page.textContent('#latency')) as string;
    const resultLine = (await page.textContent('#result')) as string;
    const overlaySize = (await page.evaluate(() => {
      const c = (globalThis as any).document.getElementById('overlay');
      return [c.width, c.height];
    })) as number[];
    const mask = (await page.evaluate(() => Array.from((globalThis as any).__refseg.mask.data))) as number[];
    // The same expression once more through the exposed function (the image part is cached now).
    const result = (await page.evaluate(
      (s: string) => (globalThis as any).__refseg.segment(s),
      text,
    )) as PageResult;
    const manifestKind = (await page.evaluate(() => (globalThis as any).__refseg.manifest.kind)) as string;
    return { result, mask, latency, resultLine, overlaySize, manifestKind, errors };
  } finally {
    await close();
  }
}

/** The page's result and mask agree with the Node segmenter on the same checkpoint, image and text. */
async function assertAgreesWithNode(checkpoint: ModelCheckpoint, text: string, got: PageRun): Promise<void> {
  // WASM and native kernels differ in the last bits: pixels right at the threshold may flip.
  const seg = await loadSegmenter(checkpoint);
  try {
    const want = await seg.segment(example.image, text);
    const pixels = example.width * example.height;
    const mean = want.probability.reduce((a, p) => a + p, 0) / want.probability.length;
    const r = got.result;
    assert.ok(Math.abs(r.probabilityMean - mean) < 1e-3, `mean probability ${r.probabilityMean} vs ${mean}`);
    assert.ok(Math.abs(r.area - want.area) <= 0.002 * pixels, `area ${r.area} vs ${want.area}`);
    assert.ok(Math.abs(r.score - want.score) < 1e-3, `score ${r.score} vs ${want.score}`);
    assert.equal(got.mask.length, pixels);
    assert.equal(want.mask.data.length, pixels);
    let differ = 0;
    for (let i = 0; i < pixels; i++) if (got.mask[i] !== want.mask.data[i]) differ++;
    assert.ok(differ <= 0.002 * pixels, `${differ} of ${pixels} mask pixels differ from Node's`);
    assert.ok(want.area > 0 && want.area < pixels, `a non-trivial mask (${want.area} px)`);
  } finally {
    await seg.dispose();
  }
}

function assertPage(got: PageRun, text: string, kind: string): void {
  assert.equal(got.manifestKind, kind);
  assert.equal(got.result.ep, 'wasm', 'no GPU in headless Chromium: WASM');
  assert.match(
    got.latency,
    /^WASM · (image [\d.]+ ms \+ |image cached · )text [\d.]+ ms \+ post [\d.]+ ms \+ draw [\d.]+ ms = [\d.]+ ms$/,
  );
  assert.match(got.resultLine, new RegExp(`“${text}”: \\d+ px`));
  assert.deepEqual(got.overlaySize, [example.width, example.height]);
  assert.deepEqual(got.errors, []);
}

test('browser: the page segments the example with onnxruntime-web and agrees with Node', async (t) => {
  const missing = await browserMissing();
  if (missing) {
    t.skip(`browser test skipped: ${missing}`);
    return;
  }
  const text = example.expressions.find((e) => e.object === 4)!.text;
  const ck = testModel();
  const got = await runPage(ck, text);
  assertPage(got, text, 'restr');
  // A fresh image: the first expression pays for the image encoder.
  assert.match(got.latency, /^WASM · image [\d.]+ ms \+ /);
  await assertAgreesWithNode(ck, text, got);
});

test('browser: Shared-RIS (one full model, SentencePiece tokenizer in the page) agrees with Node', async (t) => {
  const missing = await browserMissing();
  if (missing) {
    t.skip(`browser test skipped: ${missing}`);
    return;
  }
  // The micro model has random weights and a 6-token text window ([CLS] + 4 byte pieces + [EOT]), so
  // every "the …" expression reads alike; seed 4 with an expression that does not start with "the"
  // gives a partial mask on the bundled scene (assertAgreesWithNode checks that it is partial).
  const text = example.expressions.find((e) => !e.text.startsWith('the '))!.text;
  const ck = sharedRisTestModel(4);
  const got = await runPage(ck, text);
  assertPage(got, text, 'shared-ris');
  await assertAgreesWithNode(ck, text, got);
});
