// Word tokenizer and vocabulary of restr.md §5: lowercase, split on non-alphanumerics, unknown →
// `<unk>` (id 1), padding id 0, truncate to maxWords (20), right-padded.
//
// "Alphanumeric" is Unicode letters and digits (\p{L}\p{N}), so "café" stays one word; text is
// NFC-normalized first so composed and decomposed accents map to the same word. The underscore is a
// separator (it is not alphanumeric), unlike Python's \w.
// The vocabulary order is a pure function of the training expressions: by count (descending), ties
// broken by code-point order of the word (not locale order, which differs between machines).

export const PAD_ID = 0;
export const UNK_ID = 1;
export const PAD = '<pad>';
export const UNK = '<unk>';
export const DEFAULT_MAX_WORDS = 20;
export const VOCAB_FORMAT = 'refseg.vocab/1';

/** Lowercased words of a sentence, in order; no truncation. */
export function tokenizeWords(sentence: string): string[] {
  return sentence
    .normalize('NFC')
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((w) => w.length > 0);
}

export interface VocabularyBuildOptions {
  /** Words seen fewer times than this become `<unk>` (default 1: keep every word). */
  minCount?: number;
  /** Keep at most this many words besides `<pad>` and `<unk>` (the most frequent). */
  maxSize?: number;
}

export interface VocabularyJson {
  format: typeof VOCAB_FORMAT;
  /** words[id]; words[0] = '<pad>', words[1] = '<unk>'. */
  words: string[];
}

export class Vocabulary {
  private readonly ids: Map<string, number>;

  private constructor(readonly words: readonly string[]) {
    this.ids = new Map(words.map((w, i) => [w, i]));
    if (this.ids.size !== words.length) throw new Error('vocabulary: duplicate words');
    if (words[PAD_ID] !== PAD || words[UNK_ID] !== UNK)
      throw new Error(`vocabulary: ids 0 and 1 must be ${PAD} and ${UNK}`);
  }

  /** Builds the vocabulary from training expressions (deterministic, see the file header). */
  static build(sentences: Iterable<string>, o: VocabularyBuildOptions = {}): Vocabulary {
    const minCount = o.minCount ?? 1;
    const counts = new Map<string, number>();
    for (const s of sentences) for (const w of tokenizeWords(s)) counts.set(w, (counts.get(w) ?? 0) + 1);
    let words = [...counts]
      .filter(([, n]) => n >= minCount)
      .sort(([a, na], [b, nb]) => nb - na || (a < b ? -1 : a > b ? 1 : 0))
      .map(([w]) => w);
    if (o.maxSize !== undefined) words = words.slice(0, o.maxSize);
    return new Vocabulary([PAD, UNK, ...words]);
  }

  static fromJSON(json: unknown): Vocabulary {
    const j = json as Partial<VocabularyJson> | null;
    if (!j || j.format !== VOCAB_FORMAT) throw new Error(`vocabulary: format must be "${VOCAB_FORMAT}"`);
    if (!Array.isArray(j.words) || !j.words.every((w) => typeof w === 'string')) {
      throw new Error('vocabulary: "words" must be an array of strings');
    }
    return new Vocabulary(j.words);
  }

  toJSON(): VocabularyJson {
    return { format: VOCAB_FORMAT, words: [...this.words] };
  }

  get size(): number {
    return this.words.length;
  }

  id(word: string): number {
    return this.ids.get(word) ?? UNK_ID;
  }

  /** Word ids of a sentence: truncated to maxWords, right-padded with 0. */
  encode(sentence: string, maxWords = DEFAULT_MAX_WORDS): Int32Array {
    const out = new Int32Array(maxWords); // zero-filled = padding
    const words = tokenizeWords(sentence);
    for (let i = 0; i < Math.min(words.length, maxWords); i++) out[i] = this.id(words[i]!);
    return out;
  }
}
