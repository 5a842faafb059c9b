/**
 * A strict reader of one HTTP/1.1 request head (RFC 9112 §2–§6) for the raw
 * OCSP path (wire.ts). It understands only the plain shapes an OCSP client
 * sends: `GET` or `POST`, an origin-form target, HTTP/1.0 or 1.1, header
 * lines of token, colon and visible value, CRLF line ends, at most one
 * Content-Length of digits. Anything else (another method, obs-fold, a bare
 * CR or LF, Transfer-Encoding, Expect, Upgrade, a repeated header this path
 * reads, bytes outside visible ASCII, a missing Host in 1.1, an incomplete
 * head or body) is `fallback`: node:http reads those bytes instead and says
 * what HTTP says about them.
 */

/** One request the raw path may answer; `end` is the offset just past its body. */
export interface WireRequest {
  method: 'GET' | 'POST';
  /** The request target as received (origin-form). */
  target: string;
  /** HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive` (RFC 9112 §9.3). */
  keepAlive: boolean;
  /** Header lines in the head. */
  headerCount: number;
  contentType: string | undefined;
  ifNoneMatch: string | undefined;
  xRequestId: string | undefined;
  xForwardedFor: string | undefined;
  /** The POST body (Content-Length octets); null for GET. */
  body: Buffer | null;
  end: number;
}

/** What the reader makes of the bytes from `start`: a request, or hand them to node:http. */
export type WireParse = WireRequest | 'fallback';

// RFC 9110 §5.6.2 token characters, then the rest of the line. No lazy value between white space runs: that form
// backtracks in the square of a line's length (a 16 KiB line of spaces: ~0.1 s), this one reads a line once.
const headerLine = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):(.*)$/;
const requestLine = /^(GET|POST) (\/[!-~]*) HTTP\/1\.([01])$/;
// Visible ASCII, space and tab, and CRLF: nothing else may appear in a head this path reads.
const plainHead = /^[\t\x20-\x7e\r\n]*$/;
const digits = /^[0-9]{1,9}$/;

/**
 * Reads the request that starts at `start` in `buf`. `maxHeaderBytes` bounds
 * the head as node:http's maxHeaderSize does; a longer one goes to node:http,
 * which answers 431.
 */
export function parseRequest(buf: Buffer, start: number, maxHeaderBytes: number): WireParse {
  const headEnd = buf.indexOf('\r\n\r\n', start, 'latin1');
  if (headEnd === -1 || headEnd - start > maxHeaderBytes) return 'fallback';
  const head = buf.toString('latin1', start, headEnd);
  if (!plainHead.test(head)) return 'fallback';
  const lines = head.split('\r\n');
  const first = requestLine.exec(lines[0]!);
  // A bare CR or LF left inside a line, or a line that is not a request line.
  if (first === null) return 'fallback';
  const http11 = first[3] === '1';
  let host = 0;
  let contentLength = -1;
  let connection: string | undefined;
  let contentType: string | undefined;
  let ifNoneMatch: string | undefined;
  let xRequestId: string | undefined;
  let xForwardedFor: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    // A bare CR or LF left inside a line.
    if (line.includes('\r') || line.includes('\n')) return 'fallback';
    const m = headerLine.exec(line);
    // obs-fold (a line starting with white space), a malformed line.
    if (m === null) return 'fallback';
    // The head holds no white space but space and tab (plainHead), so trim() takes exactly the OWS around the value.
    const value = m[2]!.trim();
    switch (m[1]!.toLowerCase()) {
      case 'host':
        if (++host > 1) return 'fallback';
        break;
      case 'content-length':
        if (contentLength !== -1 || !digits.test(value)) return 'fallback';
        contentLength = Number(value);
        break;
      case 'connection':
        if (connection !== undefined) return 'fallback';
        connection = value.toLowerCase();
        break;
      case 'content-type':
        if (contentType !== undefined) return 'fallback';
        contentType = value;
        break;
      case 'if-none-match':
        if (ifNoneMatch !== undefined) return 'fallback';
        ifNoneMatch = value;
        break;
      case 'x-request-id':
        if (xRequestId !== undefined) return 'fallback';
        xRequestId = value;
        break;
      case 'x-forwarded-for':
        if (xForwardedFor !== undefined) return 'fallback';
        xForwardedFor = value;
        break;
      case 'transfer-encoding':
      case 'expect':
      case 'upgrade':
      case 'trailer':
      case 'te':
      case 'http2-settings':
      case 'proxy-connection':
      case 'keep-alive':
        return 'fallback';
    }
  }
  // RFC 9112 §3.2: a 1.1 request without Host is answered 400 (node:http does that).
  if (http11 && host === 0) return 'fallback';
  let keepAlive: boolean;
  if (connection === undefined) keepAlive = http11;
  else if (connection === 'close') keepAlive = false;
  else if (connection === 'keep-alive') keepAlive = true;
  else return 'fallback';
  const method = first[1] as 'GET' | 'POST';
  const bodyStart = headEnd + 4;
  let body: Buffer | null = null;
  let end = bodyStart;
  if (method === 'GET') {
    if (contentLength !== -1) return 'fallback';
  } else {
    if (contentLength === -1 || buf.length - bodyStart < contentLength) return 'fallback';
    end = bodyStart + contentLength;
    body = buf.subarray(bodyStart, end);
  }
  return { method, target: first[2]!, keepAlive, headerCount: lines.length - 1, contentType, ifNoneMatch, xRequestId, xForwardedFor, body, end };
}
