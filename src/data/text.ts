// Sentence → token ids for a model. One place decides how a model's text is encoded:
//  - `buildTextEncoder(def, config, sentences)`: the vocabulary a run trained from scratch builds
//    from its training expressions (`refseg train`, `refseg init --data`), laid out as the model's
//    `textFraming` says: ReSTR's word ids padded with 0 (spec/restr.md §5), or for Shared-RIS the
//    same word vocabulary in BEiT-3's layout, `[CLS] words [EOT]` padded with <pad> = 1
//    (spec/shared-ris.md §1; the model masks padding by id 1).
//  - `textEncoderFromCheckpoint(vocab, length)`: the encoder a checkpoint's `vocab` metadata
//    describes, whichever of the three it is (word vocabulary, BEiT-3-framed word vocabulary,
//    SentencePiece model). Every consumer (train on --init/--resume, eval, segment, serve, the web
//    demo) reads text through it, so a checkpoint tokenizes exactly as its training did.
//  - `textEncoderFor(def, config, vocab)`: the same, checked against the model (framing and
//    embedding-table size) before training starts from a checkpoint.
// This module is also loaded by the browser demo: no Node APIs.

import type { AnyModelDef, TextFraming } from '../models/model.js';
import {
  BEIT3_TOKENS,
  FAIRSEQ_OFFSET,
  base64Decode,
  isSentencePieceVocab,
  parseModelProto,
  sentencePieceEncoderFromJSON,
} from './sentencepiece.js';
import { PAD, UNK, VOCAB_FORMAT, Vocabulary, tokenizeWords } from './tokenizer.js';

export interface TextEncoder {
  /** Token ids for one sentence, padded/truncated to `length` (padding id: the model's framing). */
  encode(sentence: string): BigInt64Array;
  readonly length: number;
  /** What goes into the checkpoint's `vocab` metadata. */
  toJSON(): unknown;
}

export function wordEncoder(vocab: Vocabulary, length: number): TextEncoder {
  return {
    length,
    encode: (s) => BigInt64Array.from(vocab.encode(s, length), (v) => BigInt(v)),
    toJSON: () => vocab.toJSON(),
  };
}

// ---------------------------------------------------------------- BEiT-3-framed word vocabulary

/** Checkpoint `vocab` format of a word vocabulary in BEiT-3's id layout. */
export const BEIT3_WORDS_FORMAT = 'refseg.vocab-beit3/1';
/** ids 0–3 of a BEiT-3-framed word vocabulary (fairseq's dictionary names). */
const BEIT3_SPECIALS = ['<s>', '<pad>', '</s>', '<unk>'] as const;

export interface Beit3WordsJson {
  format: typeof BEIT3_WORDS_FORMAT;
  /** words[id]: '<s>' ([CLS]), '<pad>', '</s>' ([EOT]), '<unk>', then the words (ids 4…). */
  words: string[];
}

/** Word id in `vocab` (`<unk>` = 1, words from 2) → BEiT-3 layout (`<unk>` = 3, words from 4). */
const beit3WordId = (id: number): number => (id < 2 ? BEIT3_TOKENS.unk : id + 2);

/**
 * A word vocabulary (tokenizer.ts: lowercase, split on non-alphanumerics) in BEiT-3's layout:
 * `[CLS]` + the first length − 2 word ids + `[EOT]`, right-padded with `<pad>` = 1. Its embedding
 * table has vocab.size + 2 rows.
 */
export function beit3WordEncoder(vocab: Vocabulary, length: number): TextEncoder {
  if (length < 3) throw new Error(`beit3WordEncoder: length ${length} cannot hold [CLS], a word and [EOT]`);
  const json: Beit3WordsJson = {
    format: BEIT3_WORDS_FORMAT,
    words: [...BEIT3_SPECIALS, ...vocab.words.slice(2)],
  };
  return {
    length,
    encode: (s) => {
      const out = new BigInt64Array(length).fill(BigInt(BEIT3_TOKENS.pad));
      const words = tokenizeWords(s).slice(0, length - 2);
      out[0] = BigInt(BEIT3_TOKENS.cls);
      words.forEach((w, i) => (out[i + 1] = BigInt(beit3WordId(vocab.id(w)))));
      out[words.length + 1] = BigInt(BEIT3_TOKENS.eot);
      return out;
    },
    toJSON: () => structuredClone(json),
  };
}

function isBeit3WordsJson(v: unknown): v is Beit3WordsJson {
  return typeof v === 'object' && v !== null && (v as { format?: unknown }).format === BEIT3_WORDS_FORMAT;
}

function beit3WordEncoderFromJSON(v: Beit3WordsJson, length: number, source: string): TextEncoder {
  const words = v.words;
  if (!Array.isArray(words) || !words.every((w) => typeof w === 'string'))
    throw new Error(`${source}: vocabulary: "words" must be an array of strings`);
  if (BEIT3_SPECIALS.some((s, i) => words[i] !== s))
    throw new Error(`${source}: vocabulary: ids 0–3 must be ${BEIT3_SPECIALS.join(', ')}`);
  let vocab: Vocabulary;
  try {
    vocab = Vocabulary.fromJSON({ format: VOCAB_FORMAT, words: [PAD, UNK, ...words.slice(4)] });
  } catch (e) {
    throw new Error(`${source}: ${(e as Error).message}`);
  }
  return beit3WordEncoder(vocab, length);
}

// ---------------------------------------------------------------- the one choice

const framingOf = (def: AnyModelDef): TextFraming => def.textFraming ?? 'words';

/** The framing a checkpoint's `vocab` metadata produces. */
export function vocabFraming(vocab: unknown): TextFraming {
  return isSentencePieceVocab(vocab) || isBeit3WordsJson(vocab) ? 'beit3' : 'words';
}

/**
 * Rows of the token-embedding table that every id the vocabulary produces fits in: the word count
 * of a word vocabulary (specials included); for a SentencePiece model, fairseq ids reach
 * pieces − 1 + FAIRSEQ_OFFSET, so pieces + 1 rows (at least the 4 specials).
 */
export function vocabTableSize(vocab: unknown, source = '<vocab>'): number {
  if (isSentencePieceVocab(vocab)) {
    const bytes = typeof vocab.model === 'string' ? base64Decode(vocab.model) : null;
    if (bytes === null) throw new Error(`${source}: vocab.model is not valid base64`);
    return Math.max(parseModelProto(bytes, source).pieces.length + FAIRSEQ_OFFSET, BEIT3_SPECIALS.length);
  }
  const words = (vocab as { words?: unknown } | null)?.words;
  if (!Array.isArray(words)) throw new Error(`${source}: the vocabulary has no "words" list`);
  return words.length;
}

/**
 * The vocabulary a run trained from scratch builds from its training expressions, in the model's
 * framing, and the embedding-table size to configure (`def.configPaths.vocabSize`).
 */
export function buildTextEncoder(
  def: AnyModelDef,
  config: unknown,
  sentences: Iterable<string>,
): { encoder: TextEncoder; vocabSize: number } {
  const vocab = Vocabulary.build(sentences);
  const length = def.maxTokens(config);
  return framingOf(def) === 'beit3'
    ? { encoder: beit3WordEncoder(vocab, length), vocabSize: vocab.size + 2 }
    : { encoder: wordEncoder(vocab, length), vocabSize: vocab.size };
}

/** The encoder stored in a checkpoint's `vocab` metadata (error if there is none). */
export function textEncoderFromCheckpoint(vocab: unknown, length: number, source: string): TextEncoder {
  if (vocab === undefined || vocab === null) {
    throw new Error(
      `${source}: the checkpoint carries no vocabulary; train one with 'refseg train' or build it with 'refseg init --data'`,
    );
  }
  if (isSentencePieceVocab(vocab)) return sentencePieceEncoderFromJSON(vocab, length, source); // Shared-RIS (BEiT-3 ids, padding 1)
  if (isBeit3WordsJson(vocab)) return beit3WordEncoderFromJSON(vocab, length, source); // Shared-RIS from scratch
  return wordEncoder(Vocabulary.fromJSON(vocab as never), length);
}

const FRAMING_NAME: Record<TextFraming, string> = {
  words: 'word ids padded with 0',
  beit3: '[CLS] … [EOT] ids padded with 1',
};

/**
 * `textEncoderFromCheckpoint`, checked against the model it feeds: the vocabulary's framing must be
 * the model's, and its ids must fit the model's embedding table.
 */
export function textEncoderFor(
  def: AnyModelDef,
  config: unknown,
  vocab: unknown,
  source: string,
): TextEncoder {
  const encoder = textEncoderFromCheckpoint(vocab, def.maxTokens(config), source);
  const want = framingOf(def);
  const got = vocabFraming(vocab);
  if (got !== want)
    throw new Error(
      `${source}: the vocabulary gives ${FRAMING_NAME[got]}, but ${def.kind} reads ${FRAMING_NAME[want]}; ` +
        `build a vocabulary for it ('refseg init --config … --data DIR --dataset NAME'${want === 'beit3' ? " or '--spm beit3.spm'" : ''})`,
    );
  const rows = readVocabSize(def, config);
  const need = vocabTableSize(vocab, source);
  if (rows !== undefined && need > rows)
    throw new Error(
      `${source}: the vocabulary needs ${need} embedding rows, but ${def.configPaths.vocabSize} is ${rows}`,
    );
  return encoder;
}

function readVocabSize(def: AnyModelDef, config: unknown): number | undefined {
  let cur: unknown = config;
  for (const k of def.configPaths.vocabSize.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return typeof cur === 'number' ? cur : undefined;
}
