/**
 * One enrollment of a device at a time, whatever the protocol (EST, ACME):
 * across processes and nodes through the device's lease in the registry
 * (DeviceRepository.beginEnrollment), and within a process through a queue per
 * device, so that a second request waits for the first instead of finding
 * the lease busy.
 */
import { PkiError } from '../../errors/pki-error.js';

/** How long an enrollment holds its device (longer than any issuance takes; a crashed holder's lease lapses then). */
export const enrollmentLeaseMs = 60_000;

/** Retry-After for a device whose other enrollment is in progress (on another process or node). */
export const retryBusySeconds = 2;

/** The refusal for a device whose lease another enrollment holds. */
export const deviceBusy = (deviceId: string): PkiError =>
  new PkiError('conflict', `another enrollment of device "${deviceId}" is in progress`, { retryAfterSeconds: retryBusySeconds });

/** Runs one task per key at a time in this process. */
export class PerKeyQueue {
  readonly #tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(key) ?? Promise.resolve();
    const run = before.then(task, task);
    const settled = run.catch(() => undefined);
    this.#tails.set(key, settled);
    try {
      return await run;
    } finally {
      if (this.#tails.get(key) === settled) this.#tails.delete(key);
    }
  }
}
