// The command table. Each command parses its own flags (node:util parseArgs) and calls the library.
import { modelCommands } from './model-commands.js';
import { dataCommand } from './data.js';

export interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
}

export const commands: Record<string, Command> = {
  init: modelCommands.init!,
  inspect: modelCommands.inspect!,
  export: modelCommands.export!,
  data: dataCommand,
};
