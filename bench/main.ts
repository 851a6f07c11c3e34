// `npm run bench -- <name> [flags]`: a dispatcher over named benchmarks. Adding one is one line
// in BENCHES: a module exporting `run(args: BenchArgs): Promise<number>` (the exit code).
//
// Performance targets are benchmarks, not timed tests (design.md §4): each benchmark measures
// refseg side by side with its PyTorch peer in the same run and reports the ratios.

import { type BenchArgs, parseBenchArgs } from './util.js';

export interface BenchModule {
  run(args: BenchArgs): Promise<number>;
  /** Benchmark-specific flags for --help. */
  usage?: string;
}

const BENCHES: Record<string, { summary: string; load: () => Promise<BenchModule> }> = {
  engine: {
    summary: 'ViT-B/16 forward, training step, state round trip vs PyTorch eager',
    load: () => import('./engine.js'),
  },
  restr: {
    summary: 'ReSTR (restr-b16, 480×480) inference forward, whole and split, vs PyTorch eager',
    load: () => import('./restr.js'),
  },
  serve: {
    summary: 'the HTTP server (refseg serve) under load: requests/s, p50/p95 latency, memory growth',
    load: () => import('./serve.js'),
  },
};

const COMMON = `Common flags:
  --json        machine-readable output (every number with its unit)
  --repeat N    timed repeats per case
  --warmup N    untimed runs before the repeats
  --threads N   intra-op threads for ONNX Runtime and PyTorch (default: all cores)
  --quick       small sizes, for a smoke run
  --help        this text`;

function usage(): string {
  const w = Math.max(...Object.keys(BENCHES).map((k) => k.length));
  const list = Object.entries(BENCHES).map(([k, b]) => `  ${k.padEnd(w)}  ${b.summary}`);
  return `Usage: npm run bench -- <benchmark> [flags]\n\nBenchmarks:\n${list.join('\n')}\n\n${COMMON}`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    console.log(usage());
    return 0;
  }
  const entry = BENCHES[name];
  if (!entry) {
    console.error(`bench: unknown benchmark '${name}'\n\n${usage()}`);
    return 2;
  }
  const mod = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(
      `Usage: npm run bench -- ${name} [flags]\n\n${entry.summary}\n\n${COMMON}${mod.usage ? `\n\n${mod.usage}` : ''}`,
    );
    return 0;
  }
  const args = parseBenchArgs(rest);
  return mod.run(args);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exitCode = 1;
  },
);
