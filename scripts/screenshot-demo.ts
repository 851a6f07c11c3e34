// Draws the README's screenshot, docs/images/demo.png: the web demo (`npm start`) with the built-in
// model in headless Chromium (Debian's `chromium`, driven by playwright-core), the bundled example
// loaded and one expression typed into the form, as a newcomer would.
//
//   npx tsc -p . && node dist/scripts/screenshot-demo.js [--text "the red diamond"] [--out docs/images/demo.png]
//       [--checkpoint models/default.safetensors]

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultCheckpointPath } from '../src/infer/paths.js';
import { startDemo } from '../src/server/demo.js';

const CHROMIUM = '/usr/bin/chromium';

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      text: { type: 'string', default: 'the red diamond' },
      out: { type: 'string', default: 'docs/images/demo.png' },
      checkpoint: { type: 'string' },
    },
    strict: true,
  });
  const name = 'playwright-core'; // a dev dependency: resolved at run time
  const { chromium } = (await import(name)) as {
    chromium: { launchPersistentContext(dir: string, o: object): Promise<any> };
  };
  const profile = await mkdtemp(join(tmpdir(), 'refseg-shot-'));
  const demo = await startDemo({ checkpoint: v.checkpoint ?? defaultCheckpointPath(), port: 0 });
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1200, height: 1180 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    try {
      const page = await context.newPage();
      await page.goto(demo.url);
      await page.waitForFunction(
        () => {
          const s = (globalThis as any).__refseg;
          return s && (s.error || (s.ready && s.image));
        },
        null,
        { timeout: 60_000 },
      );
      const error = await page.evaluate(() => (globalThis as any).__refseg.error);
      if (error) throw new Error(`the page failed: ${String(error)}`);
      await page.fill('#text', v.text!);
      await page.press('#text', 'Enter');
      await page.waitForFunction(
        () => /text [\d.]+ ms/.test((globalThis as any).document.getElementById('latency').textContent ?? ''),
        null,
        { timeout: 60_000 },
      );
      await page.screenshot({ path: v.out!, fullPage: true });
      console.log(`wrote ${v.out} ("${v.text}")`);
    } finally {
      await context.close();
    }
  } finally {
    await demo.close();
    await rm(profile, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
