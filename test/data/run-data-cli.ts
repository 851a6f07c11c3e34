// Runs `refseg data ...argv` in-process for the CLI tests (test/helpers/cli.ts captures the output).

import type { TestContext } from 'node:test';
import { dataCommand } from '../../src/cli/data.js';
import { type CliResult, runCli } from '../helpers/cli.js';

export type { CliResult };

export const runDataCli = (t: TestContext, ...argv: string[]): Promise<CliResult> =>
  runCli(t, dataCommand, argv);
