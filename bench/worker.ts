// Child-process entry of `runIsolated` (bench/util.ts): imports a bench module, runs one of its
// `cases` with the parameters sent by the parent, and replies with the result and this process's
// VmHWM. One case per process, so the peak belongs to that case alone (see MemoryProbe).

import { peakRssMiB } from './util.js';

interface Request {
  module: string;
  case: string;
  params: unknown;
}

type CaseFn = (params: unknown) => Promise<unknown>;

process.once('message', (req: Request) => {
  const reply = (m: object) => process.send!(m, () => process.exit(0));
  (async () => {
    const mod = (await import(req.module)) as { cases?: Record<string, CaseFn> };
    const fn = mod.cases?.[req.case];
    if (!fn) throw new Error(`${req.module} has no case '${req.case}'`);
    const result = await fn(req.params);
    reply({ ok: true, result, finalPeakRssMiB: peakRssMiB() });
  })().catch((e: unknown) => {
    reply({
      ok: false,
      error: e instanceof Error ? (e.stack ?? e.message) : String(e),
      finalPeakRssMiB: peakRssMiB(),
    });
  });
});
