// The one error type every reader in src/io throws for bad input.
//
// reliability.md: bad input gets a clear error naming the file and the offset or field. Readers
// raise `FormatError` at every check they make; their entry points also catch anything else that
// escapes (a RangeError from a typed array, a zlib error) and wrap it, so callers only ever see
// FormatError for a bad file. Wrapped errors say "unexpected" so tests can tell a deliberate check
// from a gap in the checks.

export class FormatError extends Error {
  override readonly name = 'FormatError';
  constructor(
    /** The file (or a description of the bytes) being read. */
    readonly source: string,
    message: string,
    /** Byte offset in `source` where the problem was found, when there is one. */
    readonly offset?: number,
    options?: { cause?: unknown },
  ) {
    super(`${source}: ${offset === undefined ? '' : `offset ${offset}: `}${message}`, options);
  }
}

/** Runs `fn`; any error that is not already a FormatError becomes one naming `source`. */
export function guard<T>(source: string, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof FormatError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new FormatError(source, `unexpected error while reading ${what}: ${msg}`, undefined, { cause: e });
  }
}
