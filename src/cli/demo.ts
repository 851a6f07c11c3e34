// `refseg demo` (what `npm start` runs): serves the browser demo (web/) with the model exported to
// ONNX, and prints the URL. The model runs in the browser (onnxruntime-web); this process only
// serves files (src/server/demo.ts).

import { parseArgs } from 'node:util';
import { defaultCheckpointPath } from '../infer/paths.js';
import { startDemo } from '../server/demo.js';
import type { Command } from './commands.js';
import { UsageError, intFlag, runCommand } from './args.js';

const HELP = `refseg demo [--checkpoint model.safetensors] [--host 127.0.0.1] [--port 8080]

Serves the web demo: pick the example scene or drop an image, type an expression, and see the mask
drawn over the image, ReSTR's patch-probability heatmap and the latency. The model is exported to
ONNX at start and runs in the browser with onnxruntime-web (WebGPU when available, WASM otherwise).

  --checkpoint  model checkpoint (default: the built-in model, models/default.safetensors)
  --host        interface to bind (default 127.0.0.1: this machine only)
  --port        TCP port (default 8080; 0 = any free port)
Stop with Ctrl-C.`;

export const demoCommand: Command = {
  summary: 'serve the web demo (the model runs in the browser)',
  run: (argv) =>
    runCommand(HELP, argv, async () => {
      const { values: o } = parseArgs({
        args: argv,
        options: {
          checkpoint: { type: 'string' },
          host: { type: 'string', default: '127.0.0.1' },
          port: { type: 'string' },
        },
        strict: true,
      });
      if (!o.host) throw new UsageError('--host must not be empty');
      const port = intFlag('port', o.port, { min: 0, max: 65535 }) ?? 8080;
      const demo = await startDemo({
        checkpoint: o.checkpoint ?? defaultCheckpointPath(),
        host: o.host,
        port,
      });
      console.log(`refseg demo: open ${demo.url}`);
      if (!demo.ort)
        console.log(
          'refseg demo: onnxruntime-web is not installed, the page cannot run the model (npm install onnxruntime-web)',
        );
      await new Promise<void>((resolve) => {
        const stop = () => void demo.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      return 0;
    }),
};
