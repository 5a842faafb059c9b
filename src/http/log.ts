/**
 * Structured logs: one JSON line per event, written by pino. Call sites pass
 * plain objects (`{ level: 'error', msg: '…', …fields }`) to a {@link Logger};
 * `level` picks the pino level (default info). Each line carries `level` (its
 * name), `time` (ISO 8601, from the clock), `pid`, `reqId` while a request is
 * served (see request-context.ts), `msg` and the event's fields. Fields named
 * like secrets ({@link redactedPaths}) come out as "[redacted]"; still, never
 * pass key material or secrets.
 *
 * With TRELLIS_LOG_CAPTURE_DIR set (the test run sets it), every line of this
 * process is also appended to one file (`<pid>.ndjson`) in that directory, silentLogger's
 * included, so a test can check that no secret ever reaches a log.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pino, type DestinationStream, type Level } from 'pino';
import { systemClock, type Clock } from '../clock/clock.js';
import { currentRequestId } from './request-context.js';

export type Logger = (event: Record<string, unknown>) => void;

const levels: readonly Level[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

/** The pino level an event asks for: its `level` when that is a pino level name, else info. */
export function levelOf(event: Record<string, unknown>): Level {
  return levels.includes(event.level as Level) ? (event.level as Level) : 'info';
}

// Field names that hold secrets or key material somewhere in Trellis
// (passphrases, PKCS#11 PINs, bearer tokens, HTTP credentials, private keys).
const secretFields = [
  'passphrase', 'rootPassphrase', 'keyPassphrase', 'password', 'pin', 'pkcs11Pin', 'soPin',
  'secret', 'secrets', 'token', 'authorization', 'cookie', 'set-cookie',
  'privateKey', 'privateKeyPem', 'pkcs8', 'pkcs8Der', 'keyPkcs8', 'keyPem', 'keyDer',
];

const segment = (name: string) => (/^[A-Za-z_$][\w$]*$/.test(name) ? `.${name}` : `["${name}"]`);

/** pino redact paths: each secret field at the top of an event and one level down (`headers.authorization`). */
export const redactedPaths: readonly string[] = secretFields.flatMap((f) => [segment(f).replace(/^\./, ''), `*${segment(f)}`]);

/** Appends `line` to this process's capture file when TRELLIS_LOG_CAPTURE_DIR names a directory (tests). */
function capture(line: string): void {
  const dir = process.env.TRELLIS_LOG_CAPTURE_DIR;
  // Opened per line (O_APPEND): a process's threads and vitest's re-imported modules share the file safely, and no descriptor is held.
  if (dir) fs.appendFileSync(path.join(dir, `${process.pid}.ndjson`), line);
}

function toLogger(clock: Clock, write: (line: string) => void): Logger {
  const destination: DestinationStream = { write };
  const logger = pino(
    {
      level: 'trace',
      base: { pid: process.pid },
      timestamp: () => `,"time":"${clock.now().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
      mixin: () => {
        const reqId = currentRequestId();
        return reqId === undefined ? {} : { reqId };
      },
      redact: { paths: [...redactedPaths], censor: '[redacted]' },
    },
    destination,
  );
  return (event) => {
    // `level` becomes the line's pino level; `msg` stays one of the fields, so a line keeps the call site's order (msg first).
    const fields = { ...event };
    delete fields.level;
    logger[levelOf(event)](fields);
  };
}

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
