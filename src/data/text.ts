// Sentence → token ids for a model, from what its checkpoint carries: ReSTR's word vocabulary
// (spec/restr.md §5) today; Shared-RIS's SentencePiece model plugs in here too. Every consumer
// (train, eval, segment, serve) encodes text through this one function.

import { isSentencePieceVocab, sentencePieceEncoderFromJSON } from './sentencepiece.js';
import { Vocabulary } from './tokenizer.js';

export interface TextEncoder {
  /** Token ids for one sentence, padded/truncated to `length` (0 = padding). */
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

/** The encoder stored in a checkpoint's `vocab` metadata (error if there is none). */
export function textEncoderFromCheckpoint(vocab: unknown, length: number, source: string): TextEncoder {
  if (vocab === undefined || vocab === null) {
    throw new Error(`${source}: the checkpoint carries no vocabulary; train one with 'refseg train' or build it with 'refseg init --data'`);
  }
  if (isSentencePieceVocab(vocab)) return sentencePieceEncoderFromJSON(vocab, length, source); // Shared-RIS (BEiT-3 ids, padding 1)
  return wordEncoder(Vocabulary.fromJSON(vocab as never), length);
}
