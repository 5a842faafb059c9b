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
 * with node's 408 after `headersTimeout` without a first request, and by
 * close().
 *
 * A request head still incomplete is node's from its first byte, so that
 * node's headersTimeout counts from there too: it is handed over at once.
 * Only bytes that come behind an awaited answer cannot be (that answer is
 * written here first): such a head is held, behind the answer and after it,
 * and gets node's headersTimeout from its first byte, with node's 408. A
 * request for node before it waits with it and goes to node once the head is
 * whole (with the 408, its answer is never written).
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

// What node:http writes when headersTimeout ends a connection (requestTimeoutResponse in _http_server.js).
const requestTimeoutResponse = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n';
// What node:http writes when the client's FIN cuts a head short (badRequestResponse, llhttp's HPE_INVALID_EOF_STATE).
const badRequestResponse = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n';

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
    /** While an answer is awaited (`busy`): the requests read behind it; `pending` then starts just after it. */
    ahead: WireRequest[] = [];
    busy = false;
    /** Some answer was written: a timeout with nothing pending is the keep-alive's (no 408). */
    answered = false;
    /**
     * Date.now() when the first byte of the head held here arrived (0: none held). A head is held only when it
     * came behind an awaited answer and is still incomplete; it is closed with 408 headersTimeout after that byte.
     */
    heldAt = 0;
    /**
     * -1, or where in `pending` the head held starts when all of `pending` goes to node once that head is whole: a
     * request before it is node's, and node would give the head a fresh headersTimeout if it had it now.
     */
    handOverAfter = -1;
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
      if (this.handOverAfter !== -1) {
        if (this.headEndsFrom(this.handOverAfter)) this.handOver();
        else this.armHeld();
        return;
      }
      if (!this.busy) {
        this.serve();
        return;
      }
      // Behind an awaited answer: read what came (each request once), and time a head still incomplete.
      const reqs = this.ahead;
      const before = reqs.length;
      const was = this.heldAt;
      if (!this.read(reqs) && this.holds(reqs, before)) this.armHeld();
      else if (was !== 0) {
        // Whole again, or a stop node reads at once: the answer is awaited as node awaits a handler, without a timeout.
        this.heldAt = 0;
        this.socket.setTimeout(0);
      }
      // Pipelined requests behind a slow answer: read no more than one can answer next (the rest waits in the kernel).
      if (this.pending.length > maxPendingBytes) this.socket.pause();
    };

    /**
     * Answers the whole requests in `pending`, in order, one at a time. A batch (bytes read together) with a request
     * this path does not read, or with bytes after a request that closes the connection (llhttp's "data after close"),
     * goes to node whole: how node answers the requests before a bad one depends on when their answers are ready, and
     * it ends such a batch with its own 400.
     */
    serve(): void {
      if (this.pending === null || this.done) return;
      this.next([]);
    }

    /**
     * Reads onto `reqs` (the requests already read from the start of `pending`) the rest of `pending`, then answers
     * them; a head still incomplete that is held (`holds`) waits for more bytes, any other stop goes to node.
     */
    next(reqs: WireRequest[]): void {
      const before = reqs.length;
      if (this.read(reqs)) {
        this.heldAt = 0;
        this.answerFrom(reqs);
      } else if (this.holds(reqs, before)) this.answerFrom(reqs);
      else this.handOver();
    }

    /**
     * After a `read` that stopped short: whether the bytes it stopped at are a head still incomplete (within
     * maxHeaderBytes, not after a request that closes the connection) that is held here, because it is held already
     * or came behind an awaited answer. `heldAt` is then when its first byte came (with the last read if that read got
     * past the requests before it), else 0.
     */
    holds(reqs: WireRequest[], before: number): boolean {
      const last = reqs.length === 0 ? undefined : reqs[reqs.length - 1]!;
      const at = last === undefined ? 0 : last.end;
      if ((this.heldAt === 0 && !this.busy) || (last !== undefined && !last.keepAlive) || this.headEndsFrom(at)) {
        this.heldAt = 0;
        return false;
      }
      if (this.heldAt === 0 || reqs.length !== before) this.heldAt = Date.now();
      return true;
    }

    /** Whether the head starting at `at` in `pending` is whole or past maxHeaderBytes: not one to hold any longer. */
    headEndsFrom(at: number): boolean {
      const buf = this.pending!;
      return buf.length - at > timeouts.maxHeaderBytes || buf.indexOf('\r\n\r\n', at, 'latin1') !== -1;
    }

    /**
     * Sets the socket's timeout (an idle one: every read restarts it) to what is left of the held head's
     * headersTimeout; at least 1 ms, so that the timeout always comes from the timer, never from inside a caller.
     */
    armHeld(): void {
      if (timeouts.headersTimeoutMs !== 0) this.socket.setTimeout(Math.max(1, this.heldAt + timeouts.headersTimeoutMs - Date.now()));
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

    /** Answers `reqs` in order; `pending` holds the bytes they were read from, from its start. */
    answerFrom(reqs: WireRequest[]): void {
      for (let i = 0; i < reqs.length && !this.done; i++) {
        const req = reqs[i]!;
        // An answer that node would hold back (the client reads slowly) goes to node's backpressure instead.
        const reply = this.socket.writableNeedDrain ? undefined : handler.answer(req, this.socket);
        if (reply === undefined) {
          const from = i === 0 ? 0 : reqs[i - 1]!.end;
          this.pending = from === 0 ? this.pending : this.pending!.subarray(from);
          if (this.heldAt === 0) this.handOver();
          else {
            // A head is held behind this request (`holds`): node takes both once the head is whole, or 408 at its time.
            this.handOverAfter = reqs[reqs.length - 1]!.end - from;
            this.armHeld();
          }
          return;
        }
        if (reply instanceof Promise) {
          this.busy = true;
          // What is answered is let go (a pipeline that never runs dry would otherwise keep, and copy at every read,
          // every byte it ever sent). The rest of this batch and the bytes that come while waiting are read as they
          // come, each request once (onData), and answered after this one as one batch: node takes all of it or none.
          this.pending = this.pending!.subarray(req.end);
          const ahead = reqs.slice(i + 1);
          for (const next of ahead) next.end -= req.end;
          this.ahead = ahead;
          // node awaits a handler without a timeout; a head held behind it keeps its own.
          if (this.heldAt !== 0) this.armHeld();
          else this.socket.setTimeout(0);
          void reply.then((r) => {
            this.busy = false;
            if (this.socket.isPaused()) this.socket.resume();
            this.write(req, r);
            if (this.done) return;
            const rest = this.ahead;
            this.ahead = [];
            this.next(rest);
          });
          return;
        }
        this.write(req, reply);
      }
      if (this.done) return;
      // Bytes after the last request are a head held (`holds`): kept, with what is left of its headersTimeout.
      const end = reqs.length === 0 ? 0 : reqs[reqs.length - 1]!.end;
      this.pending = end < this.pending!.length ? this.pending!.subarray(end) : null;
      if (this.heldAt !== 0) this.armHeld();
    }

    write(req: WireRequest, reply: WireReply): void {
      if (this.done) return;
      const keep = req.keepAlive && !closing && !this.ended;
      const head = `HTTP/1.1 ${reply.status} ${reasons[reply.status]}\r\n${reply.headerLines}Date: ${httpDate()}\r\n${keep ? keepAliveHeader : 'Connection: close\r\n\r\n'}`;
      this.socket.write(reply.body === '' ? head : head + reply.body, 'latin1');
      this.answered = true;
      handler.written(req, reply);
      if (!keep) {
        // As node after its last answer: nothing more is read, the socket ends once the answer is out. The listeners
        // stay (the socket is going): `done` makes them ignore what comes, `close` takes it out of `open`.
        this.done = true;
        this.pending = null;
        this.socket.end();
      }
      // Idle from here, unless what comes next (an awaited answer, a head held, a hand-over) sets its own timeout.
      else this.socket.setTimeout(idleMs);
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
      if (this.done) this.socket.destroy();
      else this.timedOut();
    };

    /**
     * The connection's time is up. A head held, or no request yet: node's headersTimeout, which writes its 408 first
     * (as node, even behind an answer still awaited). Idle after an answer: the keep-alive's end, closed without a word.
     */
    timedOut(): void {
      const head = this.heldAt !== 0 || !this.answered;
      this.finish();
      if (head) this.socket.write(requestTimeoutResponse, 'latin1');
      this.socket.destroy();
    }

    onEnd = (): void => {
      if (this.done) return;
      // A head held is cut short: node's parser fails at the FIN and answers 400 at once, before an answer still awaited.
      if (this.heldAt !== 0) {
        this.finish();
        this.socket.write(badRequestResponse, 'latin1');
        this.socket.destroy();
        return;
      }
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
