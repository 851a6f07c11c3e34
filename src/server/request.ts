// Reading and validating a segment request (reliability.md "Server" limits): the body under a byte
// limit (413), multipart/form-data (`image` file + `text` field) or JSON ({image: base64, text}),
// anything else 415; the text non-empty, within the character limit and valid UTF-8 (400); an
// optional threshold in [0, 1]. Every refusal is an HttpError whose message names the field.

import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors.js';
import { headerParams, multipartBoundary, parseMultipart } from './multipart.js';

export interface SegmentRequest {
  /** The image file's bytes (not decoded yet). */
  image: Uint8Array;
  text: string;
  threshold?: number;
}

/**
 * The whole body, refused with 413 as soon as it passes `maxBytes` (by Content-Length before
 * reading anything, or while streaming a chunked body). On refusal the request is left flowing:
 * the caller discards the rest (discardBody) before answering.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const tooLarge = () => new HttpError(413, `request body is over the limit of ${maxBytes} bytes`);
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) return Promise.reject(tooLarge());
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      n += chunk.length;
      if (n <= maxBytes) return void chunks.push(chunk);
      cleanup();
      reject(tooLarge());
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, n));
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    const onClose = () => {
      cleanup();
      reject(new HttpError(400, 'request body ended early (connection closed)'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/**
 * Reads and drops what is left of a refused request's body, up to `maxBytes` or `graceMs`, so
 * the answer reaches a client that writes its whole body before reading (closing the socket under
 * a writing client gives it EPIPE instead of our 413). Resolves true when the body was consumed.
 */
export function discardBody(req: IncomingMessage, maxBytes: number, graceMs: number): Promise<boolean> {
  if (req.complete) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    let n = 0;
    const finish = (complete: boolean) => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onFail);
      req.off('close', onFail);
      resolve(complete);
    };
    const onData = (chunk: Buffer) => {
      n += chunk.length;
      if (n > maxBytes) finish(false);
    };
    const onEnd = () => finish(true);
    const onFail = () => finish(false);
    const timer = setTimeout(() => finish(false), graceMs);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onFail);
    req.on('close', onFail);
    req.resume();
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new HttpError(400, `${what} is not valid UTF-8`);
  }
}

// In a /u regex a surrogate pair is one code point, so \p{Cs} matches only LONE surrogates: what a
// JSON "\ud800" escape produces, and what no UTF-8 byte sequence can encode.
const LONE_SURROGATE = /\p{Cs}/u;

/** The expression: a string, non-empty once trimmed, at most `maxChars` Unicode code points. */
export function validateText(text: unknown, maxChars: number): string {
  if (typeof text !== 'string') throw new HttpError(400, "field 'text' must be a string");
  if (LONE_SURROGATE.test(text)) throw new HttpError(400, "field 'text' is not valid UTF-8 (lone surrogate)");
  if (text.trim().length === 0) throw new HttpError(400, "field 'text' is empty");
  let chars = 0;
  for (const _ of text) chars++;
  if (chars > maxChars)
    throw new HttpError(400, `field 'text' is ${chars} characters, over the limit of ${maxChars}`);
  return text;
}

function validateThreshold(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !(n >= 0 && n <= 1))
    throw new HttpError(400, "field 'threshold' must be a number in [0, 1]");
  return n;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeBase64Image(v: unknown): Uint8Array {
  if (typeof v !== 'string') throw new HttpError(400, "field 'image' must be a base64 string");
  // A data URL (what a browser's FileReader gives) is accepted as well as bare base64.
  const s = v.replace(/^data:[^,]{0,100};base64,/, '').replace(/\s+/g, '');
  if (s.length % 4 !== 0 || !BASE64.test(s)) throw new HttpError(400, "field 'image' is not valid base64");
  const bytes = Buffer.from(s, 'base64');
  if (bytes.length === 0) throw new HttpError(400, "field 'image' is empty");
  return bytes;
}

/** Parses a segment request body by its Content-Type. */
export function parseSegmentRequest(
  body: Uint8Array,
  contentType: string | undefined,
  maxTextChars: number,
): SegmentRequest {
  const type = headerParams(contentType ?? '').type;
  if (type === 'multipart/form-data') {
    const parts = parseMultipart(body, multipartBoundary(contentType!));
    const fields = new Map<string, (typeof parts)[number]>();
    for (const p of parts) {
      if (fields.has(p.name)) throw new HttpError(400, `field '${p.name}' is given twice`);
      fields.set(p.name, p);
    }
    const image = fields.get('image');
    if (!image) throw new HttpError(400, "missing field 'image' (the image file)");
    if (image.data.length === 0) throw new HttpError(400, "field 'image' is empty");
    const text = fields.get('text');
    if (!text) throw new HttpError(400, "missing field 'text' (the referring expression)");
    const threshold = fields.get('threshold');
    const t = validateThreshold(threshold ? decodeUtf8(threshold.data, "field 'threshold'") : undefined);
    return {
      image: image.data,
      text: validateText(decodeUtf8(text.data, "field 'text'"), maxTextChars),
      ...(t !== undefined ? { threshold: t } : {}),
    };
  }
  if (type === 'application/json') {
    let json: unknown;
    try {
      json = JSON.parse(decodeUtf8(body, 'request body'));
    } catch (e) {
      if (e instanceof HttpError) throw e;
      throw new HttpError(400, 'request body is not valid JSON');
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json))
      throw new HttpError(400, 'request body must be a JSON object {image, text}');
    const o = json as Record<string, unknown>;
    if (o.image === undefined) throw new HttpError(400, "missing field 'image' (base64 image file)");
    if (o.text === undefined) throw new HttpError(400, "missing field 'text' (the referring expression)");
    const image = decodeBase64Image(o.image);
    const t = validateThreshold(o.threshold);
    return { image, text: validateText(o.text, maxTextChars), ...(t !== undefined ? { threshold: t } : {}) };
  }
  throw new HttpError(
    415,
    'Content-Type must be multipart/form-data (image file + text field) or application/json ({image: base64, text})',
  );
}

/** Whether the client asked for a PNG mask rather than JSON (Accept with q-values; JSON wins ties and is the default). */
export function wantsPng(accept: string | undefined): boolean {
  if (!accept) return false;
  let png = -1;
  let json = -1;
  for (const range of accept.split(',')) {
    const { type, params } = headerParams(range);
    const q = params.has('q') ? Number(params.get('q')) : 1;
    if (!Number.isFinite(q)) continue;
    if (type === 'image/png') png = Math.max(png, q);
    else if (type === 'application/json') json = Math.max(json, q);
    else if (type === 'image/*') png = Math.max(png, q);
    else if (type === '*/*' || type === 'application/*') json = Math.max(json, q);
  }
  return png > 0 && png > json;
}
