// Draws the README's screenshot, docs/images/demo.png: the web demo (`npm start`) with the built-in
// model in headless Chromium (Debian's `chromium`, driven by playwright-core, as the browser test
// drives it: test/helpers/demo-page.ts), the bundled example loaded and one expression typed into
// the form, as a newcomer would.
//
//   npx tsc -p . && node dist/scripts/screenshot-demo.js [--text "the large blue shape on the right"]
//       [--out docs/images/demo.png] [--checkpoint models/default.safetensors]

import { parseArgs } from 'node:util';
import { defaultCheckpointPath } from '../src/infer/paths.js';
import { openDemoPage, typeExpression } from '../test/helpers/demo-page.js';

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      text: { type: 'string', default: 'the large blue shape on the right' },
      out: { type: 'string', default: 'docs/images/demo.png' },
      checkpoint: { type: 'string' },
    },
    strict: true,
  });
  const { page, pageError, close } = await openDemoPage(v.checkpoint ?? defaultCheckpointPath(), {
    viewport: { width: 1200, height: 1180 },
  });
  try {
    if (pageError) throw new Error(`the page failed: ${pageError}`);
    await typeExpression(page, v.text!);
    await page.screenshot({ path: v.out!, fullPage: true });
    console.log(`wrote ${v.out} ("${v.text}")`);
  } finally {
    await close();
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
