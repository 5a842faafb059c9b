/**
 * The raw path: plain-HTTP connections read by hand before node:http sees
 * them, so that the requests of one hot endpoint (OCSP, wire-ocsp.ts) are
 * answered with one preformatted write instead of node's request and
 * response objects. Only whole requests that wire-parse.ts fully
 * understands and the handler takes are answered here; at the first one
 * that is not, the connection is handed to node:http for good, with the
 * bytes read so far put back first, and node answers it and every request
 * after it on that connection.
 *
 * An answer here is what node:http would write for the same response
 * (status line, the handler's fields, Date, then `Connection: keep-alive` and
 * `Keep-Alive: timeout=N`, or `Connection: close`), and a connection lives
 * as node's would: closed after an answer that does not keep it (RFC 9112
 * §9.3), after `keepAliveTimeout` (+1 s, as node) idle between requests,
 * after `headersTimeout` without a first request, and by close().
 */
import type { Socket } from 'node:net';
import { parseRequest, type WireRequest } from './wire-parse.js';

/** The answer to one request: a status this path writes, its header lines (each ending CRLF), the body as latin1. */
export interface WireReply {
  status: 200 | 304;
  headerLines: string;
  body: string;
}

/** The endpoint answered on the raw path. */
export interface WireHandler {
  /**
   * The answer to `req` (now, or a promise that never rejects), or undefined
   * when node:http should answer it instead; nothing has been written then.
   */
  answer(req: WireRequest, socket: Socket): WireReply | Promise<WireReply> | undefined;
  /** Told once the answer was handed to the socket (the access line, metrics). */
  written(req: WireRequest, reply: WireReply): void;
}

export interface WireTimeouts {
  maxHeaderBytes: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

/** The raw path of one server: `accept` each new socket; `closeIdle`/`destroyAll` for a graceful close. */
export interface WireConnections {
  accept(socket: Socket): void;
  /** Stop keeping connections: idle ones are closed now, busy ones after their answer. */
  closeIdle(): void;
  destroyAll(): void;
}

/** Bytes read ahead while an answer is awaited, before reading stops. */
const maxPendingBytes = 64 * 1024;

const reasons = { 200: 'OK', 304: 'Not Modified' } as const;

// node's `Date` value: the same toUTCString, cached for the rest of the second.
let dateText = '';
let dateUntil = 0;
function httpDate(): string {
  const now = Date.now();
  if (now >= dateUntil) {
    dateText = new Date(now).toUTCString();
    dateUntil = now - (now % 1000) + 1000;
  }
  return dateText;
}

/** The raw path over `handler`; `handOver(socket)` gives a socket to node:http (its own `connection` listener). */
export function wireConnections(handler: WireHandler, timeouts: WireTimeouts, handOver: (socket: Socket) => void): WireConnections {
  // node writes `timeout=` in whole seconds and keeps an idle socket one second longer than it says (HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER).
  const keepAliveHeader = timeouts.keepAliveTimeoutMs > 0 ? `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(timeouts.keepAliveTimeoutMs / 1000)}\r\n\r\n` : 'Connection: keep-alive\r\n\r\n';
  const idleMs = timeouts.keepAliveTimeoutMs > 0 ? timeouts.keepAliveTimeoutMs + 1000 : 0;
  const open = new Set<WireConnection>();
  let closing = false;

  class WireConnection {
    /** Bytes read and not yet answered or handed over. */
    pending: Buffer | null = null;
    busy = false;
    done = false;
    /** The client sent FIN while an answer was awaited: write it, then end. */
    ended = false;

    constructor(readonly socket: Socket) {
      open.add(this);
      socket.setTimeout(timeouts.headersTimeoutMs);
      socket.on('data', this.onData);
      socket.on('timeout', this.onTimeout);
      socket.on('end', this.onEnd);
      socket.on('error', this.onError);
      socket.on('close', this.onClose);
    }

    onData = (chunk: Buffer): void => {
      if (this.done) return;
      this.pending = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
      if (!this.busy) this.serve();
      // Pipelined requests behind a slow answer: read no more than one can answer next (the rest waits in the kernel).
      else if (this.pending.length > maxPendingBytes) this.socket.pause();
    };

    /**
     * Answers the whole requests in `pending`, in order, one at a time. A batch (bytes read together) with a request
     * this path does not read, or with bytes after a request that closes the connection (llhttp's "data after close"),
     * goes to node whole: how node answers the requests before a bad one depends on when their answers are ready, and
     * it ends such a batch with its own 400.
     */
    serve(): void {
      if (this.pending === null || this.done) return;
      const reqs: WireRequest[] = [];
      if (this.read(reqs)) this.answerFrom(reqs, 0);
      else this.handOver();
    }

    /**
     * Reads onto `reqs` (the requests already read from the start of `pending`) the whole requests after them;
     * false if the bytes after them hold one this path does not read, or follow a request that closes the connection.
     */
    read(reqs: WireRequest[]): boolean {
      const buf = this.pending!;
      for (let at = reqs.length === 0 ? 0 : reqs[reqs.length - 1]!.end; at < buf.length; ) {
        if (reqs.length > 0 && !reqs[reqs.length - 1]!.keepAlive) return false;
        const req = parseRequest(buf, at, timeouts.maxHeaderBytes);
        if (req === 'fallback') return false;
        reqs.push(req);
        at = req.end;
      }
      return true;
    }

    /** Answers `reqs[i]` and those after it; `pending` holds the bytes they were read from, from its start. */
    answerFrom(reqs: WireRequest[], i: number): void {
      for (; i < reqs.length && !this.done; i++) {
        const req = reqs[i]!;
        // An answer that node would hold back (the client reads slowly) goes to node's backpressure instead.
        const reply = this.socket.writableNeedDrain ? undefined : handler.answer(req, this.socket);
        if (reply === undefined) {
          this.handOverFrom(i === 0 ? 0 : reqs[i - 1]!.end);
          return;
        }
        if (reply instanceof Promise) {
          this.busy = true;
          const rest = reqs.slice(i + 1);
          void reply.then((r) => {
            this.busy = false;
            if (this.socket.isPaused()) this.socket.resume();
            this.write(req, r);
            if (this.done) return;
            // What was answered is let go (a pipeline that never runs dry would otherwise keep, and copy at every read,
            // every byte it ever sent); the rest of this batch and the bytes that came while waiting are read as one
            // batch, the rest not again (a long pipeline of awaited answers would be read once per answer): node takes
            // all of it or none.
            this.pending = this.pending!.subarray(req.end);
            for (const next of rest) next.end -= req.end;
            if (this.read(rest)) this.answerFrom(rest, 0);
            else this.handOver();
          });
          return;
        }
        this.write(req, reply);
      }
      if (!this.done) this.pending = null;
    }

    handOverFrom(offset: number): void {
      if (offset > 0) this.pending = this.pending!.subarray(offset);
      this.handOver();
    }

    write(req: WireRequest, reply: WireReply): void {
      if (this.done) return;
      const keep = req.keepAlive && !closing && !this.ended;
      const head = `HTTP/1.1 ${reply.status} ${reasons[reply.status]}\r\n${reply.headerLines}Date: ${httpDate()}\r\n${keep ? keepAliveHeader : 'Connection: close\r\n\r\n'}`;
      this.socket.write(reply.body === '' ? head : head + reply.body, 'latin1');
      handler.written(req, reply);
      if (!keep) {
        // As node after its last answer: nothing more is read, the socket ends once the answer is out. The listeners
        // stay (the socket is going): `done` makes them ignore what comes, `close` takes it out of `open`.
        this.done = true;
        this.pending = null;
        this.socket.end();
      } else this.socket.setTimeout(this.pending === null || req.end >= this.pending.length ? idleMs : timeouts.headersTimeoutMs);
    }

    /** node:http reads this socket from here on, starting with the bytes not answered here. */
    handOver(): void {
      const rest = this.pending;
      this.finish(false);
      this.socket.setTimeout(0);
      handOver(this.socket);
      // After node's listeners are on: node's `data` listener receives these bytes at once, before anything newer.
      if (rest !== null) this.socket.unshift(rest);
    }

    /** This path lets go of the socket. */
    finish(ownErrors = true): void {
      this.done = true;
      this.pending = null;
      open.delete(this);
      const s = this.socket;
      s.removeListener('data', this.onData);
      s.removeListener('timeout', this.onTimeout);
      s.removeListener('end', this.onEnd);
      s.removeListener('error', this.onError);
      s.removeListener('close', this.onClose);
      // Errors after the last answer (a reset while it is written) end the socket, as node's own listener does.
      if (ownErrors) s.on('error', destroyOnError);
    }

    onTimeout = (): void => {
      if (this.done) {
        this.socket.destroy();
        return;
      }
      // Idle, or no whole request within headersTimeout: partial requests are never held here (they go to node).
      this.finish();
      this.socket.destroy();
    };

    onEnd = (): void => {
      if (this.done) return;
      // The client will send nothing more. An answer still awaited is written first (node drops it or writes it,
      // depending on which comes first, its answer or the FIN); then the socket ends.
      if (this.busy) {
        this.ended = true;
        return;
      }
      this.finish();
      this.socket.end();
    };

    onError = (): void => {
      if (!this.done) this.finish();
      this.socket.destroy();
    };

    onClose = (): void => {
      this.done = true;
      open.delete(this);
    };

    /** Waiting for a request; not one that is ending by itself after its last answer. */
    idle(): boolean {
      return !this.done && !this.busy && this.pending === null;
    }
  }

  return {
    accept: (socket) => void new WireConnection(socket),
    closeIdle: () => {
      closing = true;
      for (const c of open) {
        if (c.idle()) {
          c.finish();
          c.socket.destroy();
        }
      }
    },
    destroyAll: () => {
      for (const c of open) {
        c.finish();
        c.socket.destroy();
      }
    },
  };
}

function destroyOnError(this: Socket): void {
  this.destroy();
}
