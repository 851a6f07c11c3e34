// Where the package's own files are: its root folder, the built-in model and the bundled example.
// A module of its own (no ONNX Runtime import) so the server's main thread and the demo can find
// files without loading the inference engine.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/**
 * The refseg package folder (the one holding its package.json), found from this module's own
 * location so it works from the source tree, from dist/ and from node_modules alike.
 */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'refseg')
          return (root = dir);
      } catch {
        // not ours (or unreadable): keep walking up
      }
    }
    const up = dirname(dir);
    if (up === dir)
      throw new Error(
        'cannot find the refseg package folder (no package.json named "refseg" above this module)',
      );
    dir = up;
  }
}

/** The built-in model, `models/default.safetensors` in the package (float16, trained on synthetic scenes). */
export function defaultCheckpointPath(): string {
  return join(packageRoot(), 'models', 'default.safetensors');
}

/** The bundled example: `examples/scene.png` and the expressions that are true for it. */
export function examplePaths(): { image: string; expressions: string } {
  const dir = join(packageRoot(), 'examples');
  return { image: join(dir, 'scene.png'), expressions: join(dir, 'scene.json') };
}

/**
 * Throws when no file is at `path`, saying so; for the built-in model, also that it ships with
 * trained releases and how to pass another one.
 */
export function assertCheckpointExists(path: string): void {
  if (existsSync(path)) return;
  throw new Error(
    path === defaultCheckpointPath()
      ? `the built-in model ${path} is not there (it ships with trained releases); pass a checkpoint (--checkpoint model.safetensors)`
      : `checkpoint ${path} does not exist`,
  );
}
