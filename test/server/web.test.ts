// The web demo in headless Chromium (playwright-core, /usr/bin/chromium, no GPU → the WASM
// execution provider): the page loads the exported model with onnxruntime-web, shows the example,
// segments an expression typed into the form, draws the overlay at the image's size and reports
// the latency; its probabilities and mask agree with the Node segmenter on the same checkpoint
// (the page runs the project's own tokenizer/letterbox/post-processing modules).
// SKIPS, saying why, when Chromium, playwright-core or onnxruntime-web is missing.
// Also checks, without a browser, what the demo server serves and refuses.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { loadSegmenter } from '../../src/infer/segmenter.js';
import { type RunningDemo, findOrtWeb, startDemo } from '../../src/server/demo.js';
import { bundledExample, sharedRisTestModel, testModel } from '../infer/helpers.js';

const CHROMIUM = '/usr/bin/chromium';
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
    assert.ok(m.vocab.words.includes('green'));
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

test('browser: the page segments the example with onnxruntime-web and agrees with Node', async (t) => {
  const missing = await browserMissing();
  if (missing) {
    t.skip(`browser test skipped: ${missing}`);
    return;
  }
  const name = 'playwright-core';
  const { chromium } = (await import(name)) as { chromium: { launch(o: object): Promise<any> } };
  const text = example.expressions.find((e) => e.object === 4)!.text;
  await withDemo(async (d) => {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--headless',
        '--disable-background-networking',
        '--disable-extensions',
        '--disable-dev-shm-usage',
        '--no-first-run',
      ],
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e: Error) => errors.push(e.message));
      page.on('console', (m: { type(): string; text(): string }) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      await page.goto(d.url);
      await page.waitForFunction(
        () => {
          const s = (globalThis as any).__refseg;
          return s && (s.error || (s.ready && s.image));
        },
        null,
        { timeout: 30_000 },
      );
      assert.equal(await page.evaluate(() => (globalThis as any).__refseg.error), null);
      assert.equal(
        await page.evaluate(() => (globalThis as any).__refseg.ep),
        'wasm',
        'no GPU in headless Chromium: WASM',
      );

      // The UI path: type, press Enter, wait for the latency line.
      await page.fill('#text', text);
      await page.press('#text', 'Enter');
      await page.waitForFunction(
        () => /text [\d.]+ ms/.test((globalThis as any).document.getElementById('latency').textContent ?? ''),
        null,
        { timeout: 20_000 },
      );
      const latency = await page.textContent('#latency');
      assert.match(
        latency,
        /^WASM · image [\d.]+ ms \+ text [\d.]+ ms \+ post [\d.]+ ms \+ draw [\d.]+ ms = [\d.]+ ms$/,
      );
      assert.match(await page.textContent('#result'), new RegExp(`“${text}”: \\d+ px`));
      const size = await page.evaluate(() => {
        const c = (globalThis as any).document.getElementById('overlay');
        return [c.width, c.height];
      });
      assert.deepEqual(size, [example.width, example.height]);

      // Same checkpoint, same image, same text: the page and Node agree (WASM vs native kernels
      // differ in the last bits; pixels right at the threshold may flip).
      const got = (await page.evaluate(
        (s: string) => (globalThis as any).__refseg.segment(s),
        text,
      )) as PageResult;
      const seg = await loadSegmenter(testModel());
      try {
        const want = await seg.segment(example.image, text);
        const mean = want.probability.reduce((a, p) => a + p, 0) / want.probability.length;
        assert.ok(
          Math.abs(got.probabilityMean - mean) < 1e-3,
          `mean probability ${got.probabilityMean} vs ${mean}`,
        );
        assert.ok(
          Math.abs(got.area - want.area) <= 0.002 * example.width * example.height,
          `area ${got.area} vs ${want.area}`,
        );
        assert.ok(Math.abs(got.score - want.score) < 1e-3, `score ${got.score} vs ${want.score}`);
      } finally {
        await seg.dispose();
      }
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });
});
