// The web demo driven in headless Chromium (Debian's `chromium`, playwright-core): one way to open
// the page and type an expression, for the browser test (test/server/web.test.ts) and the README
// screenshot (scripts/screenshot-demo.ts).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DemoOptions, startDemo } from '../../src/server/demo.js';

export const CHROMIUM = '/usr/bin/chromium';

/** A playwright Page (typed loosely: playwright-core is an optional dev dependency). */
export type Page = any;

export interface OpenPage {
  page: Page;
  /** Page errors and console errors seen so far. */
  errors: string[];
  /** The page's own error (`__refseg.error`) once it settled, or null. */
  pageError: string | null;
  close(): Promise<void>;
}

/**
 * Serves `checkpoint` with the demo server, opens the page in headless Chromium (fresh profile, no
 * network: without the background-networking flags Chromium waits on refused connections) and waits
 * until the model and the example are loaded or the page reports an error.
 */
export async function openDemoPage(
  checkpoint: DemoOptions['checkpoint'],
  o: { viewport?: { width: number; height: number } } = {},
): Promise<OpenPage> {
  const name = 'playwright-core'; // a variable: the type checker must not require the package
  const { chromium } = (await import(name)) as {
    chromium: { launchPersistentContext(dir: string, o: object): Promise<any> };
  };
  const profile = await mkdtemp(join(tmpdir(), 'refseg-chromium-'));
  const demo = await startDemo({ checkpoint, port: 0 });
  let context: any = null;
  const close = async () => {
    if (context) await context.close();
    await demo.close();
    await rm(profile, { recursive: true, force: true });
  };
  try {
    // launchPersistentContext: playwright passes the profile as --user-data-dir itself (it refuses
    // the flag in `args`).
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      ...(o.viewport ? { viewport: o.viewport } : {}),
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-extensions',
        '--disable-dev-shm-usage',
      ],
    });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e: Error) => errors.push(e.message));
    page.on('console', (m: { type(): string; text(): string }) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(demo.url);
    await page.waitForFunction(
      () => {
        const s = (globalThis as any).__refseg;
        return s && (s.error || (s.ready && s.image));
      },
      null,
      { timeout: 60_000 },
    );
    const pageError = (await page.evaluate(() => (globalThis as any).__refseg.error)) as string | null;
    return { page, errors, pageError, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** The UI path: type `text` into the form, press Enter, wait for the latency line. */
export async function typeExpression(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
  await page.waitForFunction(
    () => /text [\d.]+ ms/.test((globalThis as any).document.getElementById('latency').textContent ?? ''),
    null,
    { timeout: 30_000 },
  );
}
