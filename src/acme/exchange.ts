/**
 * One ACME request and its answer on node:http, without express: the
 * answer's status and headers are collected here and written when it is
 * sent, as express's res.json / res.send wrote them (Content-Type with
 * charset=utf-8, Content-Length, no ETag; HEAD gets the headers alone).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AcmeRequest } from './pipeline.js';

export class AcmeExchange {
  statusCode = 200;
  /** The answer's headers, by name as written. */
  readonly headers: Record<string, string | string[]> = {};
  /** The route's path parameters, decoded. */
  params: Record<string, string> = {};
  /** Set by the pipeline once the JWS verified. */
  acme: AcmeRequest | undefined;

  /**
   * `url`: the request target as received (path and query), which the JWS
   * "url" is checked against. `write` sends the answer (the dispatcher's:
   * a POST answer waits for the store's writes, see dispatch.ts).
   */
  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly url: string,
    private readonly write: (x: AcmeExchange, body: string | Buffer | undefined) => void,
  ) {}

  status(code: number): this {
    this.statusCode = code;
    return this;
  }

  set(name: string, value: string): this {
    this.headers[name] = value;
    return this;
  }

  /** Adds a value to a header that may repeat (Link). */
  append(name: string, value: string): this {
    const prev = this.headers[name];
    this.headers[name] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
    return this;
  }

  location(url: string): this {
    return this.set('Location', url);
  }

  json(value: unknown, type = 'application/json'): void {
    this.send(JSON.stringify(value), type);
  }

  /** A text body (sent as UTF-8) of media type `type`. */
  send(text: string, type: string): void {
    this.headers['Content-Type'] = `${type}; charset=utf-8`;
    this.headers['Content-Length'] = String(Buffer.byteLength(text));
    this.write(this, this.req.method === 'HEAD' ? undefined : text);
  }

  /** An answer without a body. */
  end(): void {
    this.write(this, undefined);
  }
}
