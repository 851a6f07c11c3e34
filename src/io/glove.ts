// GloVe word vectors in their text format (https://nlp.stanford.edu/projects/glove/): one line per
// word, `word v1 v2 ... vd`, single spaces, UTF-8. glove.840B.300d.txt has 2.2M lines (5.6 GB),
// so the file is streamed line by line (node:readline) and only the words asked for are parsed.
//
// Format details handled here:
// - The dimension d is the first line's field count − 1; every other line must have d values, else
//   an error naming the line (a truncated download ends in a short line). A caller that knows the
//   dimension it needs (the model's language.wordDim) passes it and gets a clear error at line 1.
// - A few glove.840B lines have a word containing spaces (". . .", "at name@domain.com"): a line
//   with more than d + 1 fields whose extra leading fields are not numbers is such a word (the
//   word is everything before the last d fields). More fields than that are a dimension error.
// - A word2vec-style header line `<count> <dim>` (gensim's glove2word2vec writes one) is skipped.
// - 840B is cased ("The", "the"), 6B is lowercased. A requested word matches its exact form; when
//   the file has no exact form, the first line whose word lowercases (after NFC, as the tokenizer
//   does) to it is used instead, and counted as a cased match.
// - `.gz` files are decompressed on the fly; a `.zip` (as 840B is distributed) must be unzipped
//   first (its single entry is larger than a Node buffer).
// - Values must be finite numbers; CRLF line ends and trailing spaces are tolerated.

import * as fs from 'node:fs';
import * as readline from 'node:readline';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { FormatError } from './errors.js';

export interface GloveOptions {
  /** The dimension the caller needs; a file of another dimension is refused at line 1. */
  dim?: number;
}

export interface GloveResult {
  /** Vector dimension of the file. */
  dim: number;
  /** vectors[i] is the vector of words[i], or undefined when the file has no form of it. */
  vectors: (Float32Array | undefined)[];
  /** How many words matched exactly, and how many only through a cased form. */
  exact: number;
  cased: number;
  /** Lines read (the whole file). */
  lines: number;
}

/** Lowercase form used for cased matches (NFC + toLowerCase, as src/data/tokenizer.ts). */
const fold = (w: string): string => w.normalize('NFC').toLowerCase();

const isNumber = (s: string): boolean => s.length > 0 && Number.isFinite(Number(s));

/** Number of space-separated fields of `line` (no empty fields in valid GloVe lines). */
function countFields(line: string): number {
  let n = 1;
  for (let i = line.indexOf(' '); i >= 0; i = line.indexOf(' ', i + 1)) n++;
  return n;
}

/** Opens the file as a text stream, decompressing gzip; refuses zip archives by magic bytes. */
function openText(path: string): Readable {
  const magic = Buffer.alloc(4);
  const fd = fs.openSync(path, 'r');
  let got: number;
  try {
    got = fs.readSync(fd, magic, 0, 4, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (got >= 2 && magic[0] === 0x50 && magic[1] === 0x4b)
    throw new FormatError(path, 'is a zip archive: unzip it first (e.g. unzip glove.840B.300d.zip)', 0);
  const raw = fs.createReadStream(path);
  if (got >= 2 && magic[0] === 0x1f && magic[1] === 0x8b) return raw.pipe(createGunzip());
  return raw;
}

/**
 * Streams a GloVe text file and returns the vectors of `words` (in the order given). Words the file
 * lacks are undefined in `vectors`; bad lines throw a FormatError naming the file and line.
 */
export async function readGlove(
  path: string,
  words: readonly string[],
  o: GloveOptions = {},
): Promise<GloveResult> {
  const index = new Map<string, number>(); // exact word → position in `words`
  const foldIndex = new Map<string, number[]>(); // folded word → positions (for cased matches)
  words.forEach((w, i) => {
    index.set(w, i);
    const f = fold(w);
    foldIndex.set(f, [...(foldIndex.get(f) ?? []), i]);
  });
  const vectors: (Float32Array | undefined)[] = new Array<Float32Array | undefined>(words.length).fill(
    undefined,
  );
  const isExact = new Uint8Array(words.length);

  const stream = openText(path);
  const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
  let dim = -1;
  let lineNo = 0;
  const fail = (msg: string): never => {
    throw new FormatError(path, `line ${lineNo}: ${msg}`);
  };
  try {
    for await (const rawLine of lines) {
      lineNo++;
      const line = rawLine.endsWith(' ') || rawLine.endsWith('\r') ? rawLine.trimEnd() : rawLine;
      if (line.length === 0) continue;
      const fields = countFields(line);
      if (dim < 0) {
        // word2vec-style header "<count> <dim>": take the dimension from it and go on.
        const header = /^(\d+) (\d+)$/.exec(line);
        dim = header ? Number(header[2]) : fields - 1;
        if (dim < 1) fail(`no vector values (expected "word v1 ... vd", space-separated)`);
        if (o.dim !== undefined && dim !== o.dim)
          fail(`the vectors are ${dim}-dimensional, ${o.dim} are needed (language.wordDim of the config)`);
        if (header) continue;
      }
      if (fields < dim + 1) fail(`${fields - 1} values, expected ${dim} (as line 1); is the file truncated?`);
      // The word: the first field, or the first fields - dim fields when it contains spaces.
      const firstSpace = line.indexOf(' ');
      let word = line.slice(0, firstSpace);
      let valuesAt = firstSpace + 1;
      if (fields > dim + 1) {
        let end = firstSpace;
        for (let k = 1; k < fields - dim; k++) end = line.indexOf(' ', end + 1);
        word = line.slice(0, end);
        const lastWordPart = word.slice(word.lastIndexOf(' ') + 1);
        if (isNumber(lastWordPart)) fail(`${fields - 1} values, expected ${dim} (as line 1)`);
        valuesAt = end + 1;
      }
      // Which requested word this line serves: an exact form always wins over a cased one.
      let target = index.get(word);
      let exact = true;
      if (target === undefined) {
        exact = false;
        target = foldIndex.get(fold(word))?.find((i) => vectors[i] === undefined);
      } else if (isExact[target]) continue; // duplicate line of a word already read
      if (target === undefined) continue;
      const parts = line.slice(valuesAt).split(' ');
      const v = new Float32Array(dim);
      for (let k = 0; k < dim; k++) {
        const x = Number(parts[k]);
        if (parts[k] === '' || !Number.isFinite(x))
          fail(`value ${k + 1} of '${word}' is ${JSON.stringify(parts[k])}, not a finite number`);
        v[k] = x;
      }
      vectors[target] = v;
      isExact[target] = exact ? 1 : 0;
    }
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw new FormatError(path, `reading line ${lineNo + 1}: ${(e as Error).message}`, undefined, {
      cause: e,
    });
  } finally {
    lines.close();
    stream.destroy();
  }
  if (dim < 0) throw new FormatError(path, 'no word vectors (empty file)');
  let exact = 0;
  let cased = 0;
  vectors.forEach((v, i) => {
    if (v) isExact[i] ? exact++ : cased++;
  });
  return { dim, vectors, exact, cased, lines: lineNo };
}
