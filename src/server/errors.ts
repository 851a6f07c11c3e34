// Errors that become HTTP responses. The message is what the client reads, so it names the field
// or limit and never carries a stack trace or a file-system path (reliability.md "Server").

export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    /** Extra response headers (Retry-After, Allow). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}
