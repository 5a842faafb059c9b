/**
 * http-01 (RFC 8555 §8.3; RFC 8738 §5 for IP identifiers): GET
 * http://{identifier}:{port}/.well-known/acme-challenge/{token}, following
 * redirects under the rule in redirect.ts, and compare the body with the key
 * authorization.
 */
import http from 'node:http';
import net from 'node:net';
import { connect, hostPort, type ConnectContext } from './connect.js';
import { describeError, ValidationFailure } from './failure.js';
import { bareHostname, effectivePort, REDIRECT_STATUSES, redirectTarget } from './redirect.js';
import type { ValidationTarget } from './request.js';
import { handshake } from './tls-handshake.js';

/** The limits of one http-01 validation. */
export interface Http01Settings {
  /** Port of the first request and of `http:` redirect targets. */
  httpPort: number;
  /** Port of `https:` redirect targets. */
  httpsPort: number;
  maxRedirects: number;
  maxBodyBytes: number;
}

/** Sent on every request so that logs on the responder can tell who asked. */
export const USER_AGENT = 'Trellis-VA (ACME http-01, RFC 8555 section 8.3)';

interface Fetched {
  status: number;
  statusMessage: string;
  location: string | undefined;
  /** Only read for 200 answers. */
  body: Buffer;
  from: string;
  address: string;
}

/** URL text for a host: IPv6 literals in brackets (RFC 3986 §3.2.2). */
const urlHost = (host: string) => (net.isIPv6(host) ? `[${host}]` : host);

/** Validates one http-01 challenge; throws a ValidationFailure, else returns the address of the final answer. */
export async function validateHttp01(ctx: ConnectContext, target: ValidationTarget, token: string, keyAuthorization: string, settings: Http01Settings): Promise<string> {
  // RFC 8738 §4: for an IP identifier there is no DNS step; the URL holds the address.
  const host = target.type === 'dns' ? target.name : target.address;
  let url = new URL(`http://${urlHost(host)}:${settings.httpPort}/.well-known/acme-challenge/${token}`);
  const fetched = new Set<string>();
  for (let redirects = 0; ; redirects++) {
    fetched.add(url.href);
    const res = await fetchOnce(ctx, url, settings.maxBodyBytes);
    if (REDIRECT_STATUSES.has(res.status)) {
      const next = redirectTarget(res.location, url, res.status, { http: settings.httpPort, https: settings.httpsPort });
      if (fetched.has(next.href)) throw new ValidationFailure('connection', `redirect loop: ${url.href} (from ${res.from}) redirects (HTTP ${res.status}) to ${next.href}, which was already fetched`);
      if (redirects >= settings.maxRedirects) throw new ValidationFailure('connection', `too many redirects: ${url.href} (from ${res.from}) redirects again, to ${next.href}, after ${settings.maxRedirects}`);
      url = next;
      continue;
    }
    const what = `GET ${url.href} from ${res.from}`;
    if (res.status !== 200) throw new ValidationFailure('incorrectResponse', `${what} answered HTTP ${res.status}${res.statusMessage ? ` ${res.statusMessage}` : ''}, not 200 with the key authorization`);
    checkBody(res.body, keyAuthorization, what);
    return res.address;
  }
}

/** Trailing ASCII whitespace: HTAB, LF, VT, FF, CR, SP. */
const isTrailingSpace = (b: number) => b === 0x20 || (b >= 0x09 && b <= 0x0d);

/**
 * RFC 8555 §8.3: the body must be the key authorization; "The server SHOULD
 * ignore whitespace characters at the end of the body." Compared as bytes, so
 * no decoding can make two different bodies equal.
 */
function checkBody(body: Buffer, keyAuthorization: string, what: string): void {
  let end = body.length;
  while (end > 0 && isTrailingSpace(body[end - 1]!)) end--;
  const trimmed = body.subarray(0, end);
  if (trimmed.equals(Buffer.from(keyAuthorization, 'ascii'))) return;
  // Long enough to show a whole key authorization (87 characters), short enough for a problem detail.
  const PREFIX = 128;
  const shown = JSON.stringify(trimmed.subarray(0, PREFIX).toString('utf8')) + (trimmed.length > PREFIX ? '…' : '');
  throw new ValidationFailure('incorrectResponse', `${what} answered ${shown} (${body.length} bytes), not the key authorization ${JSON.stringify(keyAuthorization)}`);
}

/** One GET on a fresh connection (no keep-alive: each hop is checked on its own). */
async function fetchOnce(ctx: ConnectContext, url: URL, maxBodyBytes: number): Promise<Fetched> {
  const host = bareHostname(url);
  const port = effectivePort(url);
  const conn = await connect(ctx, host, port, url.href);
  const from = hostPort(conn.address, port);
  const socket =
    url.protocol === 'https:'
      ? await handshake(ctx.budget, conn, port, { servername: net.isIP(host) ? undefined : host, alpnProtocols: ['http/1.1'] })
      : conn.socket;
  const what = `GET ${url.href} from ${from}`;
  return ctx.budget.step<Fetched>(`fetching ${url.href} from ${from}`, (resolve, reject) => {
    const fail = (err: unknown) => reject(new ValidationFailure('connection', `${what} failed: ${describeError(err)}`, { cause: err }));
    const req = http.request({
      createConnection: () => socket,
      method: 'GET',
      path: url.pathname + url.search,
      // Host is the identifier (or redirect host), never the address connected to (RFC 9110 §7.2, RFC 8738 §5).
      setHost: false,
      headers: { Host: url.host, 'User-Agent': USER_AGENT, Accept: '*/*', Connection: 'close' },
    });
    req.on('error', fail);
    req.on('response', (res) => {
      const base = { status: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', location: res.headers.location, from, address: conn.address };
      if (base.status !== 200) return resolve({ ...base, body: Buffer.alloc(0) });
      const tooLarge = (size: string) =>
        reject(new ValidationFailure('unauthorized', `${what} answered a body of ${size}, over the ${maxBodyBytes}-byte limit; a key authorization is under 100 bytes`));
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBodyBytes) return tooLarge(`${declared} bytes (Content-Length)`);
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBodyBytes) tooLarge(`more than ${maxBodyBytes} bytes`);
        else chunks.push(chunk);
      });
      res.on('end', () => resolve({ ...base, body: Buffer.concat(chunks) }));
      res.on('error', fail);
      res.on('close', () => {
        if (!res.complete) fail(new Error(`the connection closed after ${size} bytes of the body`));
      });
    });
    req.end();
    return () => {
      req.destroy();
      socket.destroy();
    };
  });
}
