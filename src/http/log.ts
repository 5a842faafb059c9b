/**
 * Structured logs: one JSON line per event, written by pino. Call sites pass
 * plain objects (`{ level: 'error', msg: '…', …fields }`) to a {@link Logger};
 * `level` picks the pino level (default info). Each line carries `level` (its
 * name), `time` (ISO 8601, from the clock), `pid`, `msg` and the event's
 * fields; a line written while a request is served carries its id because the
 * caller passes it (`reqId: req.requestId`, see request-context.ts). Fields named
 * like secrets ({@link redactedFields}), at the top or one level down, come
 * out as "[redacted]"; still, never pass key material or secrets.
 *
 * With TRELLIS_LOG_CAPTURE_DIR set (the test run sets it), every line of this
 * process is also appended to one file (`<pid>.ndjson`) in that directory, silentLogger's
 * included, so a test can check that no secret ever reaches a log.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pino, type DestinationStream, type Level } from 'pino';
import { systemClock, type Clock } from '../clock/clock.js';

export type Logger = (event: Record<string, unknown>) => void;

const levels: readonly Level[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

/** The pino level an event asks for: its `level` when that is a pino level name, else info. */
export function levelOf(event: Record<string, unknown>): Level {
  return levels.includes(event.level as Level) ? (event.level as Level) : 'info';
}

// Field names (compared in lower case) that hold secrets or key material
// somewhere in Trellis: passphrases, PKCS#11 PINs, bearer tokens, HTTP
// credentials, private keys.
const secretFields = new Set([
  'passphrase', 'rootpassphrase', 'keypassphrase', 'password', 'pin', 'pkcs11pin', 'sopin',
  'secret', 'secrets', 'token', 'authorization', 'cookie', 'set-cookie',
  'privatekey', 'privatekeypem', 'pkcs8', 'pkcs8der', 'keypkcs8', 'keypem', 'keyder',
]);

/** The fields whose values come out as "[redacted]", at the top of an event or one level down. */
export const redactedFields: readonly string[] = [...secretFields];

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);

/** `fields` with {@link redactedFields} censored at depth 1 and 2 (`headers.authorization`); copies only what it changes. */
function redact<T extends Record<string, unknown>>(fields: T, depth = 1): T {
  let out = fields;
  for (const key of Object.keys(fields)) {
    const value = fields[key];
    let censored: unknown = value;
    if (secretFields.has(key.toLowerCase())) censored = '[redacted]';
    else if (depth === 1 && isPlainObject(value)) censored = redact(value, 2);
    if (censored === value) continue;
    if (out === fields) out = { ...fields };
    (out as Record<string, unknown>)[key] = censored;
  }
  return out;
}

/** Appends `line` to this process's capture file when TRELLIS_LOG_CAPTURE_DIR names a directory (tests). */
function capture(line: string): void {
  const dir = process.env.TRELLIS_LOG_CAPTURE_DIR;
  // Opened per line (O_APPEND): a process's threads and vitest's re-imported modules share the file safely, and no descriptor is held.
  if (dir) fs.appendFileSync(path.join(dir, `${process.pid}.ndjson`), line);
}

/** The fields of the access line the front writes once per request (front.ts), in the order they are written after `msg`. */
export interface AccessEvent {
  reqId: string;
  address: string | undefined;
  method: string | undefined;
  path: string;
  status: number;
  ms: number;
  /** The problem type sent (a string), or undefined. */
  problem: unknown;
}

/** Access-line writers of the loggers made by {@link jsonLogger}, built by hand (see {@link accessLogger}). */
const accessWriters = new WeakMap<Logger, (e: AccessEvent) => void>();

/**
 * The writer of the access line: what `log({ msg: 'request', ...fields })`
 * writes. For a {@link jsonLogger} the line is built here, byte for byte
 * the one pino writes, and goes to the same destination: pino's generic
 * serialiser (copy, redaction walk, mixin, per-field dispatch) was the
 * largest cost of a cached OCSP answer. The fields hold no secret (none is
 * named in {@link redactedFields}). Any other Logger gets the event itself.
 */
export function accessLogger(log: Logger): (e: AccessEvent) => void {
  return accessWriters.get(log) ?? ((e) => log({ msg: 'request', ...e }));
}

/** How long an access line may wait to be written with the next ones (see toLogger). */
const accessFlushMs = 10;

/** Loggers holding access lines not yet written: the process writes them out as it exits. */
const unflushed = new Set<() => void>();
let flushOnExit = false;

function toLogger(clock: Clock, write: (line: string) => void): Logger {
  // Access lines wait up to accessFlushMs (or until 64 KiB wait) and go out in one write: a turn of the event loop often
  // answers a single request (one per new connection), so the end of the turn alone would see each line written by
  // itself. Any other line first writes out those waiting, so lines keep their order; the process's 'exit' writes them
  // out too. A process killed outright loses at most accessFlushMs of access lines.
  let waiting = '';
  let timer: NodeJS.Timeout | undefined;
  const onTimer = () => {
    timer = undefined;
    flush();
  };
  const flush = () => {
    if (waiting === '') return;
    const lines = waiting;
    waiting = '';
    unflushed.delete(flush);
    write(lines);
  };
  const defer = (line: string) => {
    waiting += line;
    if (waiting.length >= 64 * 1024) return flush();
    if (unflushed.has(flush)) return;
    unflushed.add(flush);
    // One timer at a time: a write that came first (size, another line) leaves it to fire on nothing or on newer lines.
    if (timer === undefined) timer = setTimeout(onTimer, accessFlushMs).unref();
    if (!flushOnExit) {
      flushOnExit = true;
      process.once('exit', () => unflushed.forEach((f) => f()));
    }
  };
  const destination: DestinationStream = {
    write: (line) => {
      flush();
      write(line);
    },
  };
  const logger = pino(
    {
      level: 'trace',
      base: { pid: process.pid },
      timestamp: () => `,"time":"${clock.now().toISOString()}"`,
      // Not pino's `redact`: its wildcard paths (`*.pin`) cost about ten times a whole line, and the access line is on the OCSP hot path.
      formatters: { level: (label) => ({ level: label }), log: redact },
    },
    destination,
  );
  const log: Logger = (event) => {
    // `level` becomes the line's pino level; `msg` stays one of the fields, so a line keeps the call site's order (msg first).
    const fields = { ...event };
    delete fields.level;
    logger[levelOf(event)](fields);
  };
  // The line pino writes for { msg: 'request', ...e } at info; fields that are undefined are left out.
  const head = `{"level":"info","time":"`;
  const pid = `","pid":${process.pid}`;
  // toISOString once a second (a C++ call, and the millisecond changes with nearly every line under load): the
  // second's text up to its '.', then the milliseconds from a table.
  let secondMs = NaN;
  let secondIso = '';
  accessWriters.set(log, (e) => {
    if (e.problem !== undefined && typeof e.problem !== 'string') return log({ msg: 'request', ...e });
    const now = clock.now();
    const t = now.getTime();
    const ms = t - secondMs;
    if (!(ms >= 0 && ms < 1000)) {
      secondMs = t - (((t % 1000) + 1000) % 1000);
      secondIso = new Date(secondMs).toISOString().slice(0, -4);
    }
    const reqId = JSON.stringify(e.reqId);
    let line = head + secondIso + millis[t - secondMs]! + pid + `,"msg":"request","reqId":${reqId}`;
    if (e.address !== undefined) line += `,"address":${JSON.stringify(e.address)}`;
    if (e.method !== undefined) line += `,"method":${JSON.stringify(e.method)}`;
    line += `,"path":${JSON.stringify(e.path)},"status":${json(e.status)},"ms":${json(e.ms)}`;
    if (e.problem !== undefined) line += `,"problem":${JSON.stringify(e.problem)}`;
    defer(line + '}\n');
  });
  return log;
}

/** '000Z' to '999Z': the end of an ISO 8601 time by its milliseconds. */
const millis = Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(3, '0')}Z`);

/** A number as pino writes it: null when not finite. */
const json = (n: number): string => (Number.isFinite(n) ? String(n) : 'null');

/** A logger writing one JSON line per event to `out` (stdout by default), and to the capture file when there is one. */
export function jsonLogger(clock: Clock, out: NodeJS.WritableStream = process.stdout): Logger {
  return toLogger(clock, (line) => {
    out.write(line);
    capture(line);
  });
}

let silentCapture: Logger | undefined;

/** Writes nothing; under TRELLIS_LOG_CAPTURE_DIR its lines go to the capture file only, so the secret check sees what in-process servers log. */
export const silentLogger: Logger = (event) => {
  if (!process.env.TRELLIS_LOG_CAPTURE_DIR) return;
  silentCapture ??= toLogger(systemClock, capture);
  silentCapture(event);
};
