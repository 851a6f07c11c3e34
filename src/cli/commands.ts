// The command table. Each command parses its own flags (node:util parseArgs) and calls the library.
import { modelCommands } from './model-commands.js';
import { dataCommand } from './data.js';
import { evalCommand } from './eval.js';
import { trainCommand } from './train.js';
import { pretrainCommand } from './pretrain.js';
import { segmentCommand } from './segment.js';
import { serveCommand } from './serve.js';
import { demoCommand } from './demo.js';

export interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
}

export const commands: Record<string, Command> = {
  init: modelCommands.init!,
  inspect: modelCommands.inspect!,
  export: modelCommands.export!,
  resample: modelCommands.resample!,
  data: dataCommand,
  eval: evalCommand,
  train: trainCommand,
  pretrain: pretrainCommand,
  segment: segmentCommand,
  serve: serveCommand,
  demo: demoCommand,
};
