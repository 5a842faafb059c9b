/** Awaits a promise that must be refused with a PkiError, and returns that error. */
import { isPkiError, type PkiError } from '../../src/errors/pki-error.js';

export async function refusal(p: Promise<unknown>): Promise<PkiError> {
  try {
    await p;
  } catch (err) {
    if (isPkiError(err)) return err;
    throw err;
  }
  throw new Error('expected a PkiError');
}
