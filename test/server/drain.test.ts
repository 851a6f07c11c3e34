// `refseg serve` as a real child process and SIGTERM (reliability.md "Server"): readiness turns
// off at once (/readyz 503) while the process keeps answering, new segment requests get 503, the
// request in flight still completes with 200, and the process then exits with code 0.
// A slow model comes from the server's test hook (REFSEG_TEST_INFERENCE_DELAY_MS).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnCli } from '../helpers/cli.js';
import { bundledExample, tempCheckpoint } from '../infer/helpers.js';

const example = bundledExample();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function form(text: string): FormData {
  const f = new FormData();
  f.append('image', new Blob([example.image], { type: 'image/png' }), 'scene.png');
  f.append('text', text);
  return f;
}

test('SIGTERM: readiness off, in-flight request finishes, new ones refused, exit 0', async (t) => {
  const ck = await tempCheckpoint();
  t.after(ck.cleanup);
  const server = spawnCli(t, ['serve', '--checkpoint', ck.path, '--port', '0', '--threads', '1'], {
    ...process.env,
    REFSEG_TEST_INFERENCE_DELAY_MS: '1500',
  });

  // The URL is printed once listening; readiness follows model load + warm-up.
  let url = '';
  for (let i = 0; i < 200 && !url; i++) {
    url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(server.out)?.[1] ?? '';
    if (!url) await sleep(50);
  }
  assert.ok(url, `no URL printed; stdout: ${server.out} stderr: ${server.err}`);
  let ready = false;
  for (let i = 0; i < 200 && !ready; i++) {
    ready = (await fetch(`${url}/readyz`)).status === 200;
    if (!ready) await sleep(50);
  }
  assert.ok(ready, `never ready; stderr: ${server.err}`);

  const inFlight = fetch(`${url}/v1/segment`, { method: 'POST', body: form(example.expressions[0]!.text) });
  inFlight.catch(() => {}); // awaited below; this only keeps an early failure from going unhandled
  await sleep(300); // the request is in the worker now (it sleeps 1.5 s there)
  server.child.kill('SIGTERM');
  await sleep(150);

  const readyz = await fetch(`${url}/readyz`);
  assert.equal(readyz.status, 503);
  assert.equal(((await readyz.json()) as { status: string }).status, 'draining');
  assert.equal((await fetch(`${url}/healthz`)).status, 200, 'still live while draining');
  const refused = await fetch(`${url}/v1/segment`, { method: 'POST', body: form('another one') });
  assert.equal(refused.status, 503);
  assert.ok(refused.headers.get('retry-after'));
  assert.match(((await refused.json()) as { error: string }).error, /shutting down/);

  const res = await inFlight;
  assert.equal(res.status, 200);
  const body = (await res.json()) as { width: number; height: number };
  assert.deepEqual([body.width, body.height], [example.width, example.height]);

  assert.equal((await server.ended).code, 0, `exit code; stderr: ${server.err}`);
  assert.match(server.out, /SIGTERM, draining[\s\S]*stopped/);
});
