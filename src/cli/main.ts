#!/usr/bin/env node
// The `refseg` command line: a thin dispatcher over the library (train/, eval/, infer/, models/).
import { commands } from './commands.js';

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((k) => k.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `refseg — referring image segmentation (ReSTR, Shared-RIS) on ONNX Runtime\n\nUsage: refseg <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun 'refseg <command> --help' for a command's options.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return 0;
  }
  const cmd = commands[name];
  if (!cmd) {
    console.error(`refseg: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  return cmd.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`refseg: ${msg}`);
    if (process.env.REFSEG_DEBUG && e instanceof Error) console.error(e.stack);
    process.exitCode = 1;
  },
);
