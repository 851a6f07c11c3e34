// The command table. Each command parses its own flags (node:util parseArgs) and calls the library.
export interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
}

export const commands: Record<string, Command> = {};
