// A small multipart/form-data parser (RFC 7578 over RFC 2046 §5.1) for the segment endpoint: the
// body is already in memory and bounded by the server's body limit, so the parser works on one
// buffer — no streaming state machine and no dependency (busboy would be one). Errors are
// HttpError 400 naming what is wrong.
//
// Body layout: [preamble] "--B" CRLF headers CRLF CRLF content CRLF "--B" ... "--B--" [epilogue];
// the delimiter is CRLF "--B", so content may hold anything but that sequence.

import { HttpError } from './errors.js';

export interface MultipartPart {
  /** The form field name (Content-Disposition name). */
  name: string;
  /** The file name, for file fields. */
  filename?: string;
  /** The part's Content-Type, when given. */
  contentType?: string;
  data: Uint8Array;
}

export interface MultipartLimits {
  /** At most this many parts (default 16): a form here has two or three. */
  maxParts?: number;
  /** At most this many bytes of headers per part (default 8 KiB). */
  maxHeaderBytes?: number;
}

const bad = (m: string): never => {
  throw new HttpError(400, `multipart body: ${m}`);
};

/** `name=value` parameters of a header value (`form-data; name="a"; filename="b.png"`), names lowercased. */
export function headerParams(value: string): { type: string; params: Map<string, string> } {
  const params = new Map<string, string>();
  const semi = value.indexOf(';');
  const type = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  let i = semi < 0 ? value.length : semi + 1;
  while (i < value.length) {
    while (i < value.length && (value[i] === ' ' || value[i] === '\t' || value[i] === ';')) i++;
    const eq = value.indexOf('=', i);
    if (eq < 0) break;
    const key = value.slice(i, eq).trim().toLowerCase();
    i = eq + 1;
    let v = '';
    if (value[i] === '"') {
      // quoted-string: backslash escapes one character
      i++;
      while (i < value.length && value[i] !== '"') {
        if (value[i] === '\\' && i + 1 < value.length) i++;
        v += value[i++];
      }
      i++;
    } else {
      const end = value.indexOf(';', i);
      v = value.slice(i, end < 0 ? value.length : end).trim();
      i = end < 0 ? value.length : end;
    }
    if (key) params.set(key, v);
  }
  return { type, params };
}

/** The boundary of a `multipart/form-data` Content-Type (400 when missing or malformed). */
export function multipartBoundary(contentType: string): string {
  const b = headerParams(contentType).params.get('boundary');
  if (!b) return bad('Content-Type has no boundary parameter');
  if (b.length > 70 || !/^[0-9A-Za-z'()+_,\-./:=? ]+$/.test(b))
    return bad('invalid boundary in Content-Type');
  return b;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function parseHeaders(raw: Uint8Array): Map<string, string> {
  let text: string;
  try {
    text = utf8.decode(raw); // RFC 7578 §5.1: field names and file names may be UTF-8
  } catch {
    return bad('part headers are not valid UTF-8');
  }
  const headers = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    if (!line) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) bad(`malformed part header '${line.slice(0, 40)}'`);
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

/** Splits a complete multipart/form-data body into its parts. */
export function parseMultipart(
  body: Uint8Array,
  boundary: string,
  limits: MultipartLimits = {},
): MultipartPart[] {
  const maxParts = limits.maxParts ?? 16;
  const maxHeaderBytes = limits.maxHeaderBytes ?? 8192;
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const dash = Buffer.from(`--${boundary}`, 'latin1');
  const delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');

  // The first boundary opens the body or follows the preamble's last CRLF.
  let p = buf.indexOf(dash);
  while (p > 0 && !(buf[p - 2] === 13 && buf[p - 1] === 10)) p = buf.indexOf(dash, p + 1);
  if (p < 0) return bad('no opening boundary');

  const parts: MultipartPart[] = [];
  for (;;) {
    let q = p + dash.length;
    if (buf[q] === 45 && buf[q + 1] === 45) return parts; // "--B--": the close delimiter
    while (buf[q] === 32 || buf[q] === 9) q++; // transport padding (RFC 2046 §5.1.1)
    if (!(buf[q] === 13 && buf[q + 1] === 10)) return bad(`boundary at byte ${p} is not followed by CRLF`);
    const headerStart = q + 2;
    const headerEnd = buf.indexOf('\r\n\r\n', headerStart, 'latin1');
    const emptyHeaders = buf[headerStart] === 13 && buf[headerStart + 1] === 10;
    const hEnd = emptyHeaders ? headerStart : headerEnd;
    if (hEnd < 0 || hEnd - headerStart > maxHeaderBytes)
      return bad(`part ${parts.length + 1}: headers missing or over ${maxHeaderBytes} bytes`);
    const headers = parseHeaders(buf.subarray(headerStart, hEnd));
    const contentStart = hEnd + (emptyHeaders ? 2 : 4);
    const next = buf.indexOf(delimiter, contentStart);
    if (next < 0) return bad(`part ${parts.length + 1} is not closed by a boundary (truncated body?)`);

    const disposition = headers.get('content-disposition');
    if (!disposition) return bad(`part ${parts.length + 1} has no Content-Disposition header`);
    const { type, params } = headerParams(disposition);
    const name = params.get('name');
    if (type !== 'form-data' || name === undefined)
      return bad(`part ${parts.length + 1}: Content-Disposition must be form-data with a name`);
    if (parts.length === maxParts) return bad(`more than ${maxParts} parts`);
    const filename = params.get('filename');
    const contentType = headers.get('content-type');
    parts.push({
      name,
      ...(filename !== undefined ? { filename } : {}),
      ...(contentType !== undefined ? { contentType } : {}),
      data: new Uint8Array(buf.buffer, buf.byteOffset + contentStart, next - contentStart),
    });
    p = next + 2;
  }
}
