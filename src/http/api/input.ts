/** What more than one API route reads from its input, and the 400 for input a schema refused. */
import { z } from 'zod';
import { PkiError } from '../../errors/pki-error.js';

/** A CA id, as a query parameter or a body field. */
export const caId = z.string().min(1).max(64);

/** A 400 naming the first parameter at fault. */
export function invalidInput(error: z.ZodError, where: 'query' | 'body'): PkiError {
  const i = error.issues[0]!;
  const name = i.path.join('.') || (i.code === 'unrecognized_keys' ? i.keys.join(', ') : where);
  return new PkiError('malformed', `${where === 'query' ? 'query parameter ' : ''}${name}: ${i.message}`);
}
