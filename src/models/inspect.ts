// Model cost report (model-agnostic): parameters in total and per part (by name prefix), with and
// without the word-embedding table, and multiply-accumulates in total and per part (by the graph
// scope of each node, `graph.scope`) of the inference graph traced at one image size with batch 1
// (graph/cost.ts counts every matrix product, attention included: the papers' "MACs"). Nothing
// runs; the graph is only traced. The paper's numbers, where the model knows them, sit beside ours.

import { nodeMacs } from '../graph/cost.js';
import { liveNodes } from '../graph/onnx.js';
import { countParams } from '../nn/params.js';
import { buildInference } from './build.js';
import type { ModelDef, PaperNumber } from './model.js';
import { getPath, setPath } from './overrides.js';

export interface InspectRow {
  name: string;
  params: number;
  /** Parameters without the word-embedding table. */
  paramsWithoutWords: number;
  macs: number;
  /** A breakdown inside an earlier row, not part of the sum. */
  sub: boolean;
}

export interface InspectReport {
  model: string;
  imageSize: number;
  batch: 1;
  vocabSize: number | null;
  wordEmbedding: number;
  rows: InspectRow[];
  total: InspectRow;
  paper: PaperNumber[];
}

const startsWithAny = (s: string, prefixes: readonly string[]) => prefixes.some((p) => s.startsWith(p));

/** Costs of `c` at `imageSize` (default: the config's own). */
export function inspectModel<C>(def: ModelDef<C>, config: C, imageSize?: number): InspectReport {
  const c =
    imageSize === undefined ? config : def.validate(setPath(config, def.configPaths.imageSize, imageSize));
  const built = buildInference(def, c, 1);
  const specs = [...built.registry.specs.values()].filter((s) => !s.buffer);
  const words = new Set(def.wordEmbeddingParams(c));
  const nodes = liveNodes(built.graph, built.outputs).map((n) => ({
    name: n.outputs[0]!.name,
    macs: nodeMacs(n),
  }));

  const row = (name: string, prefixes: string[] | null, scopes: string[] | null, sub = false): InspectRow => {
    const inPart = (n: string) => prefixes === null || startsWithAny(n, prefixes);
    const inScope = (n: string) =>
      scopes === null ||
      startsWithAny(
        n,
        scopes.map((s) => `${s}/`),
      );
    return {
      name,
      params: countParams(specs, (s) => inPart(s.name)),
      paramsWithoutWords: countParams(specs, (s) => inPart(s.name) && !words.has(s.name)),
      macs: nodes.filter((n) => inScope(n.name)).reduce((a, n) => a + n.macs, 0),
      sub,
    };
  };

  const parts = def.parts(c);
  const rows = parts.map((p) => row(p.name, p.paramPrefix, p.scope, p.sub ?? false));
  const total = row('total', null, null);
  // Whatever no top-level part claims (should be nothing) is shown, so the rows add up.
  const top = rows.filter((r) => !r.sub);
  const rest = {
    name: 'other',
    params: total.params - top.reduce((a, r) => a + r.params, 0),
    paramsWithoutWords: total.paramsWithoutWords - top.reduce((a, r) => a + r.paramsWithoutWords, 0),
    macs: total.macs - top.reduce((a, r) => a + r.macs, 0),
    sub: false,
  };
  if (rest.params !== 0 || rest.macs !== 0) rows.push(rest);
  const vocab = getPath(c, def.configPaths.vocabSize);
  return {
    model: def.kind,
    imageSize: def.imageSize(c),
    batch: 1,
    vocabSize: typeof vocab === 'number' ? vocab : null,
    wordEmbedding: total.params - total.paramsWithoutWords,
    rows,
    total,
    paper: def.paperNumbers?.(c) ?? [],
  };
}

/** 123.59M, 40.3k; 52.29G, 118.4M MACs. */
const M = (n: number) =>
  Math.abs(n) >= 1e6 || n === 0 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}k`;
const G = (n: number) =>
  Math.abs(n) >= 1e9 || n === 0 ? `${(n / 1e9).toFixed(2)}G` : `${(n / 1e6).toFixed(1)}M`;
const pct = (ours: number, paper: number) =>
  `${ours >= paper ? '+' : ''}${(((ours - paper) / paper) * 100).toFixed(1)}%`;

/** The report as an aligned text table. */
export function formatInspect(r: InspectReport, title = r.model): string {
  const head = ['part', 'params', 'w/o word table', 'MACs', 'paper'];
  const lines: string[][] = [head];
  for (const row of [...r.rows, r.total]) {
    const paper = r.paper
      .filter((p) => p.row === row.name)
      .map((p) => {
        if (p.params !== undefined)
          return `${M(p.params)} params (ours ${pct(row.name === 'total' && !p.withWordTable ? row.paramsWithoutWords : row.params, p.params)}; ${p.source})`;
        const at =
          p.imageSize === r.imageSize ? `ours ${pct(row.macs, p.macs!)}` : `at ${p.imageSize}×${p.imageSize}`;
        const line = `${G(p.macs!)} MACs (${at}; ${p.source})`;
        if (!p.reordered || p.imageSize !== r.imageSize) return line;
        const paperOrder = row.macs + p.reordered.macs;
        return [line, `${G(paperOrder)} in the paper's order (ours ${pct(paperOrder, p.macs!)}): ${p.reordered.what}`];
      })
      .flat();
    const name = row.sub ? `  ${row.name}` : row.name;
    lines.push([name, M(row.params), M(row.paramsWithoutWords), G(row.macs), paper[0] ?? '']);
    for (const extra of paper.slice(1)) lines.push(['', '', '', '', extra]);
  }
  const widths = head.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const fmt = (l: string[]) =>
    l
      .map((cell, i) => (i === 0 || i === l.length - 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const vocab = r.vocabSize === null ? '' : `, vocabulary ${r.vocabSize} (word table ${M(r.wordEmbedding)})`;
  return [`${title} at ${r.imageSize}×${r.imageSize}, batch 1${vocab}`, ...lines.map(fmt)].join('\n');
}
