// A ready-to-train ReSTR checkpoint's weights (spec/restr.md §5): timm init everywhere, then the
// vision encoder from a pretrained ViT (src/models/vit-import.ts) and the word-embedding rows of
// the vocabulary's words from GloVe (src/io/glove.ts). Rows of words GloVe lacks, and of `<pad>`
// (id 0) and `<unk>` (id 1), keep their random init (trunc normal 0.02, like every other row: the
// model masks padding as attention keys, so row 0 needs no special value). Returns the parameters
// and one human-readable line per import for the CLI to print.

import { readGlove } from '../../io/glove.js';
import { PAD_ID, UNK_ID, type Vocabulary } from '../../data/tokenizer.js';
import { initModel } from '../build.js';
import { loadVitForRestr } from '../vit-import.js';
import { type RestrConfig, gridSize } from './config.js';
import { restrModel } from './model.js';

export interface RestrPretrainedOptions {
  /** ViT checkpoint (safetensors, torch .pth, Google .npz). */
  vit?: string;
  /** GloVe text file; needs `vocab`. */
  glove?: string;
  /** The vocabulary whose words' rows GloVe fills (its size must be language.vocabSize). */
  vocab?: Vocabulary;
}

export interface GloveCoverage {
  /** Vocabulary words besides <pad> and <unk>. */
  words: number;
  found: number;
  /** Of `found`, matched only through a cased form ("Paris" for "paris"). */
  cased: number;
  /** Missing words, most frequent first (vocabulary order), at most 10. */
  missing: string[];
  /** Lines read from the file. */
  lines: number;
}

export interface RestrPretrained {
  params: Map<string, Float32Array>;
  /** What was loaded, one line per source. */
  report: string[];
  vit?: ReturnType<typeof loadVitForRestr>;
  glove?: GloveCoverage;
}

const pct = (a: number, b: number) => (b === 0 ? '0.0' : ((100 * a) / b).toFixed(1));

export async function initRestrPretrained(
  c: RestrConfig,
  seed: number,
  o: RestrPretrainedOptions,
): Promise<RestrPretrained> {
  const params = initModel(restrModel, c, seed);
  const report: string[] = [];
  const out: RestrPretrained = { params, report };

  if (o.vit) {
    const v = loadVitForRestr(o.vit, c);
    for (const [k, t] of v.params) params.set(k, t);
    out.vit = v;
    const pos = v.resampled
      ? `pos_embed resampled ${v.resampled.from}×${v.resampled.from} → ${v.resampled.to}×${v.resampled.to} (bicubic)`
      : `pos_embed grid ${gridSize(c)}×${gridSize(c)} kept`;
    report.push(
      `vision: ${v.params.size} tensors from ${o.vit} (${v.format}${v.note ? `, ${v.note}` : ''}); ${pos}; ` +
        `${v.prefixTokens} prefix position${v.prefixTokens === 1 ? '' : 's'} dropped; not imported: ${v.skipped.join(', ') || 'nothing'}`,
    );
  }

  if (o.glove) {
    const vocab = o.vocab;
    if (!vocab) throw new Error('GloVe import needs a vocabulary (--data/--dataset or --vocab)');
    if (vocab.size !== c.language.vocabSize)
      throw new Error(`vocabulary has ${vocab.size} words, language.vocabSize is ${c.language.vocabSize}`);
    const ids = vocab.words.map((_, i) => i).filter((i) => i !== PAD_ID && i !== UNK_ID);
    const g = await readGlove(
      o.glove,
      ids.map((i) => vocab.words[i]!),
      { dim: c.language.wordDim },
    );
    const table = params.get('language.embed.weight')!;
    const D = c.language.wordDim;
    const missing: string[] = [];
    ids.forEach((id, k) => {
      const v = g.vectors[k];
      if (v) table.set(v, id * D);
      else if (missing.length < 10) missing.push(vocab.words[id]!);
    });
    const found = g.exact + g.cased;
    out.glove = { words: ids.length, found, cased: g.cased, missing, lines: g.lines };
    report.push(
      `GloVe: ${found} of ${ids.length} vocabulary words found (${pct(found, ids.length)}%` +
        `${g.cased ? `, ${g.cased} through a cased form` : ''}) in ${g.lines} lines of ${o.glove}; ` +
        (found < ids.length
          ? `missing (most frequent first): ${missing.join(', ')}${ids.length - found > missing.length ? ', ...' : ''}; `
          : '') +
        'their rows and <pad>, <unk> keep the random init',
    );
  }
  return out;
}
