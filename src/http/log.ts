/** One JSON log line per event. Never pass key material or secrets. */
import type { Clock } from '../clock/clock.js';

export type Logger = (event: Record<string, unknown>) => void;

export const jsonLogger =
  (clock: Clock, out: NodeJS.WritableStream = process.stdout): Logger =>
  (event) => {
    out.write(JSON.stringify({ t: clock.now().toISOString(), ...event }) + '\n');
  };

export const silentLogger: Logger = () => {};
